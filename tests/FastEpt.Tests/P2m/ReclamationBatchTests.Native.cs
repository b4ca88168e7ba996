// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using FastEpt.Interop;
using FastEpt.Internal;

namespace FastEpt.Tests.P2mTests
{
    // C read sections (fastept_read_enter / fastept_read_exit) against a managed writer with
    // poisoned frees, and the reclamation instruments of the FastEpt meter.
    public sealed partial class ReclamationBatchTests
    {
        [Fact]
        public void NativeReaderParkedInSection_HoldsBackTheTable_UntilItExits()
        {
            NativeWalker.RegisterReadSections();
            using var w = new World();
            ulong pt = w.Split(w.A, 0);
            ulong[] contents = w.ReadFrame(pt);
            int token = 0;
            using ParkedSection reader = ParkedSection.Custom(park =>
            {
                token = FastEptNative.fastept_read_enter();
                try
                {
                    park();
                }
                finally
                {
                    FastEptNative.fastept_read_exit(token);
                    FastEptNative.fastept_read_release();
                }
            });
            Assert.True(token > 0, $"no native slot: token {token}");

            w.Merge(w.A, 0);

            Assert.Equal(1, w.A.Reclaim());
            P2m.ReclaimAll();
            Assert.Equal(1, w.A.PendingReclaimFrameCount);
            Assert.True(w.Memory.IsAllocated(pt));
            Assert.Equal(contents, w.ReadFrame(pt));

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(w.A));
            Assert.Equal(Enumerable.Repeat(HostMemory.PoisonPattern, 512), w.ReadFrame(pt));
        }

        [Fact]
        public void NativeReaderLoop_RacingMergeSplitWithPoisonedFrees_NeverReadsAFreedTable()
        {
            NativeWalker.RegisterReadSections();
            using var w = new World();
            var walker = new NativeWalker(w.A);
            var failures = new ConcurrentQueue<Exception>();
            int stop = 0;
            long sections = 0;

            void Reader()
            {
                try
                {
                    while (Volatile.Read(ref stop) == 0)
                    {
                        int token = FastEptNative.fastept_read_enter();
                        for (int k = 0; k < 64; k++)
                        {
                            int region = k % Regions;
                            ulong page = (ulong)(k * 37) % Pages2M;
                            EptTranslation t = walker.TranslateInCallerSection((World.Gfn(region) + page) << 12, AccessKind.Read);
                            if (t.Status != EptStatus.Ok || t.Hpa != (World.Frame(region) + page) << 12)
                            {
                                failures.Enqueue(new InvalidOperationException($"native walk of region {region} page {page}: {t.Status} hpa 0x{t.Hpa:X}"));
                                Volatile.Write(ref stop, 1);
                            }
                        }

                        SlowWalk(region: (int)(sections % Regions));
                        FastEptNative.fastept_read_exit(token);
                        sections++;
                    }
                }
                finally
                {
                    FastEptNative.fastept_read_release();
                }
            }

            // As a slow C walker would: read the region's level-2 entry, dwell, then read the
            // page table it named, all inside the same native section. A table freed under it
            // reads as the poison pattern.
            void SlowWalk(int region)
            {
                ulong gfn = World.Gfn(region);
                ulong table = w.A.RootMfn;
                for (int level = w.A.Levels; level > 2; level--)
                {
                    table = new EptEntry(w.Memory.ReadUInt64((table << 12) + 8 * ((gfn >> (9 * (level - 1))) & 511))).Mfn;
                }

                var pde = new EptEntry(w.Memory.ReadUInt64((table << 12) + 8 * ((gfn >> 9) & 511)));
                if (!pde.IsPresent || pde.SuperPage)
                {
                    return;
                }

                Thread.SpinWait(20_000);
                for (int i = 0; i < 512; i += 7)
                {
                    ulong pte = w.Memory.ReadUInt64((pde.Mfn << 12) + 8 * (ulong)i);
                    if (pte == HostMemory.PoisonPattern)
                    {
                        failures.Enqueue(new InvalidOperationException($"page table 0x{pde.Mfn:X} of region {region} was freed under the native reader"));
                        Volatile.Write(ref stop, 1);
                        return;
                    }
                }
            }

            void Writer()
            {
                long end = Environment.TickCount64 + 1500;     // about 1.5 s, or 2,000 rounds
                for (int round = 0; round < 2000 && Volatile.Read(ref stop) == 0 && Environment.TickCount64 < end; round++)
                {
                    w.MergeSplit(w.A, cycles: 2 * Regions);
                    w.A.Reclaim();
                }

                Volatile.Write(ref stop, 1);
            }

            List<string> hung = P2mConcurrencyTests.RunWithWatchdog(
                [("native reader", Reader), ("managed writer", Writer)], s_timeout, failures, () => Volatile.Write(ref stop, 1));

            Assert.Empty(hung);
            Assert.Empty(failures);
            Assert.True(sections > 0);
            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(w.A));
        }

        [Fact]
        public void Meter_CountsBarriersFramesPendingAndParkedReaders_Exactly()
        {
            using var w = new World();
            using var listener = new MeterListener();
            var values = new Dictionary<string, long>();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "FastEpt" && instrument.Name.StartsWith("fastept.reclaim.", StringComparison.Ordinal))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => values[instrument.Name] = value);
            listener.Start();
            Dictionary<string, long> Observe()
            {
                values.Clear();
                listener.RecordObservableInstruments();
                return new Dictionary<string, long>(values);
            }

            P2m.ReclaimAll();
            w.Split(w.A, 0);
            w.Split(w.A, 1);
            w.Merge(w.A, 0);
            w.Merge(w.A, 1);
            Dictionary<string, long> before = Observe();
            Assert.Equal(2, before["fastept.reclaim.pending"]);
            Assert.Equal(0, before["fastept.reclaim.parked_readers"]);

            w.A.Reclaim();
            w.A.Reclaim();      // nothing pending: no barrier
            Dictionary<string, long> after = Observe();
            Assert.Equal(1, after["fastept.reclaim.barriers"] - before["fastept.reclaim.barriers"]);
            Assert.Equal(2, after["fastept.reclaim.frames"] - before["fastept.reclaim.frames"]);
            Assert.Equal(0, after["fastept.reclaim.pending"]);

            using ParkedSection reader = ParkedSection.Managed(w.A.ReaderTag);
            for (int pass = 0; pass < 2; pass++)
            {
                w.Split(w.A, 0);
                w.Merge(w.A, 0);
                w.A.Reclaim();      // advances the epoch; the reader holds the frame back
            }

            Dictionary<string, long> parked = Observe();
            Assert.Equal(1, parked["fastept.reclaim.parked_readers"]);
            Assert.Equal(2, parked["fastept.reclaim.pending"]);
            Assert.Equal(2, parked["fastept.reclaim.barriers"] - after["fastept.reclaim.barriers"]);
            Assert.Equal(0, parked["fastept.reclaim.frames"] - after["fastept.reclaim.frames"]);

            reader.Release();
            w.A.Reclaim();
            Dictionary<string, long> end = Observe();
            Assert.Equal(0, end["fastept.reclaim.parked_readers"]);
            Assert.Equal(0, end["fastept.reclaim.pending"]);
            Assert.Equal(2, end["fastept.reclaim.frames"] - parked["fastept.reclaim.frames"]);
            Assert.Equal(1, end["fastept.reclaim.barriers"] - parked["fastept.reclaim.barriers"]);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace FastEpt.Tests.Diagnostics
{
    /// <summary>
    /// The <c>FastEpt</c> meter (docs/architecture.md, "Metrics"): a <see cref="MeterListener"/> sees exact counts of
    /// translations, violations, misconfigurations, software-TLB hits and misses, splits and
    /// entry writes, and nothing advances while no listener observes the meter.
    /// </summary>
    /// <remarks>
    /// The meter is process-global and its observable counters sum every thread's counts, so
    /// these tests run in the non-parallel <see cref="P2mConcurrencyCollection"/>: no other test
    /// runs (and translates) meanwhile, and each test compares the counters before and after its
    /// own work (deltas), never absolute values. The disabled-path test reads the calling
    /// thread's own counter node, which other threads never touch.
    /// </remarks>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class MetricsTests
    {
        private static readonly string[] s_names =
        [
            "fastept.translations", "fastept.violations", "fastept.misconfigs", "fastept.tlb.hits",
            "fastept.tlb.misses", "fastept.splits", "fastept.entry_writes",
            "fastept.reclaim.barriers", "fastept.reclaim.frames", "fastept.reclaim.pending", "fastept.reclaim.parked_readers",
        ];

        [Fact]
        public void Meter_PublishesEveryInstrument_WithUnitsAndDescriptions()
        {
            var seen = new Dictionary<string, Instrument>();
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "FastEpt")
                {
                    seen[instrument.Name] = instrument;
                }
            };
            listener.Start();
            _ = FastEptMetrics.Translations;    // the instruments exist once the class is initialized

            Assert.Equal(s_names.OrderBy(n => n).ToArray(), seen.Keys.OrderBy(n => n).ToArray());
            foreach (Instrument instrument in seen.Values)
            {
                Assert.True(instrument is ObservableCounter<long> || (instrument.Name.StartsWith("fastept.reclaim.", StringComparison.Ordinal)
                    && instrument is ObservableUpDownCounter<long> or ObservableGauge<long>), $"{instrument.Name} is a {instrument.GetType().Name}");
                Assert.StartsWith("{", instrument.Unit, StringComparison.Ordinal);
                Assert.False(string.IsNullOrWhiteSpace(instrument.Description));
            }

            Assert.Equal("FastEpt", FastEptMetrics.Meter.Name);
        }

        [SkippableFact]
        public void Translate_AndBatch_CountTranslationsViolationsAndMisconfigs()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            for (ulong gfn = 0; gfn < 64; gfn++)
            {
                p2m.SetEntry(0x100 + gfn, 0x200 + gfn, PageOrder.Size4K, P2mType.RamRw, gfn < 48 ? P2mAccess.RWX : P2mAccess.R);
            }

            using var probe = new Probe();
            Dictionary<string, long> before = probe.Observe();

            // 64 scalar walks: 48 Ok, 16 write violations on read-only pages; 8 violations on unmapped pages.
            for (ulong gfn = 0; gfn < 64; gfn++)
            {
                Assert.Equal(gfn < 48 ? EptStatus.Ok : EptStatus.Violation, p2m.Translate((0x100 + gfn) << 12, AccessKind.Write).Status);
            }

            for (ulong gfn = 0; gfn < 8; gfn++)
            {
                Assert.Equal(EptStatus.Violation, p2m.Translate((0x1000 + gfn) << 12, AccessKind.Read).Status);
            }

            // A batch of 1000 on every path: the same mix.
            ulong[] gpas = new ulong[1000];
            for (int i = 0; i < gpas.Length; i++)
            {
                gpas[i] = (0x100 + (ulong)(i % 64)) << 12;
            }

            var results = new EptTranslation[gpas.Length];
            long batchViolations = 0;
            foreach (BatchPath path in new[] { BatchPath.Auto, BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather })
            {
                if (!P2m.IsBatchPathSupported(path))
                {
                    continue;
                }

                Assert.Equal(gpas.Length, p2m.TranslateBatch(gpas, AccessKind.Write, results, path));
                batchViolations += results.Count(r => r.Status == EptStatus.Violation);
                Assert.Equal(1000 / 64 * 16 + Math.Max(0, 1000 % 64 - 48), results.Count(r => r.Status == EptStatus.Violation));
            }

            BatchPath[] unsupported = new[] { BatchPath.Auto, BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather }.Where(p => !P2m.IsBatchPathSupported(p)).ToArray();
            int batches = 4 - unsupported.Length;

            // A misconfiguration: a write-only leaf written behind the p2m's back.
            ulong leafHpa = LeafSlotHpa(p2m, memory, 0x100);
            memory.WriteUInt64(leafHpa, (memory.ReadUInt64(leafHpa) & ~7UL) | 2);   // W without R
            Assert.Equal(EptStatus.Misconfig, p2m.Translate(0x100UL << 12, AccessKind.Read).Status);

            Dictionary<string, long> delta = probe.Delta(before);
            Assert.Equal(64 + 8 + 1 + 1000L * batches, delta["fastept.translations"]);
            Assert.Equal(16 + 8 + batchViolations, delta["fastept.violations"]);
            Assert.Equal(1, delta["fastept.misconfigs"]);
            Assert.Equal(0, delta["fastept.tlb.hits"]);
            Assert.Equal(0, delta["fastept.tlb.misses"]);
            // Everything above held for the paths that ran; a path the hardware lacks did not run.
            Skip.If(unsupported.Length != 0, $"batch paths not exercised here: {string.Join(", ", unsupported)}");
        }

        [Fact]
        public void SoftTlb_CountsHitsAndMisses_ScalarAndBatch()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            // 4 KiB pages in TLB slots 0x80-0x9F; the superpage's pages used below fall in slots 0-63.
            for (ulong gfn = 0; gfn < 32; gfn++)
            {
                p2m.SetEntry(0x180 + gfn, 0x200 + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            p2m.SetEntry(0x400, 0x600, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m, 256);

            using var probe = new Probe();
            Dictionary<string, long> before = probe.Observe();

            // 32 misses, then 3 x 32 hits; a violation is never cached: 2 misses.
            for (int round = 0; round < 4; round++)
            {
                for (ulong gfn = 0; gfn < 32; gfn++)
                {
                    Assert.Equal(EptStatus.Ok, tlb.Translate((0x180 + gfn) << 12, AccessKind.Read).Status);
                }
            }

            Assert.Equal(EptStatus.Violation, tlb.Translate(0x9000UL << 12, AccessKind.Read).Status);
            Assert.Equal(EptStatus.Violation, tlb.Translate(0x9000UL << 12, AccessKind.Read).Status);

            // A superpage: one miss walks it, then a superpage hit serves another 4 KiB page of it.
            tlb.Translate(0x400UL << 12, AccessKind.Read);
            tlb.Translate(0x401UL << 12, AccessKind.Read);

            // A large batch (the chunked path) of cached 4 KiB pages and 4 KiB pages of the cached
            // 2 MiB page: every lookup hits.
            ulong[] gpas = new ulong[600];
            for (int i = 0; i < gpas.Length; i++)
            {
                gpas[i] = i < 300 ? (0x180 + (ulong)(i % 32)) << 12 : (0x400UL << 12) + ((ulong)((i - 300) % 64) << 12);
            }

            var results = new EptTranslation[gpas.Length];
            tlb.TranslateBatch(gpas, AccessKind.Read, results);
            Assert.All(results, r => Assert.Equal(EptStatus.Ok, r.Status));

            // And a batch of unmapped pages: every one misses and walks.
            ulong[] unmapped = new ulong[300];
            for (int i = 0; i < unmapped.Length; i++)
            {
                unmapped[i] = (0x9000 + (ulong)i) << 12;
            }

            tlb.TranslateBatch(unmapped, AccessKind.Read, new EptTranslation[unmapped.Length]);

            Dictionary<string, long> delta = probe.Delta(before);
            Assert.Equal(tlb.Hits, delta["fastept.tlb.hits"]);
            Assert.Equal(tlb.Misses, delta["fastept.tlb.misses"]);
            Assert.Equal(3 * 32 + 1 + 600, delta["fastept.tlb.hits"]);
            Assert.Equal(32 + 2 + 1 + 300, delta["fastept.tlb.misses"]);
            // Every miss walked once: scalar misses through Translate, batch misses through TranslateBatch.
            Assert.Equal(delta["fastept.tlb.misses"], delta["fastept.translations"]);
            Assert.Equal(2 + 300, delta["fastept.violations"]);
        }

        [Fact]
        public void SetEntry_CountsWritesAndSplits()
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            using var probe = new Probe();
            Dictionary<string, long> before = probe.Observe();

            p2m.SetEntry(0x40000, 0x40000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RWX); // 1 write
            p2m.SetEntry(0x40000, 0x40000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RWX); // unchanged: no write
            p2m.SetEntry(0x80000, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);        // 1 write
            p2m.SetEntry(0x80005, 0x9, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);          // 2M -> 4K: 1 split
            p2m.SetEntry(0x40005, 0x9, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);     // 1G -> 4K: 1 + 512 splits
            p2m.SetEntry(0x40205, 0x9, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);     // already 4K: no split
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);            // new tables, no split

            Dictionary<string, long> delta = probe.Delta(before);
            Assert.Equal(6, delta["fastept.entry_writes"]);
            Assert.Equal(1 + 1 + 512, delta["fastept.splits"]);
        }

        [Fact]
        public void NoListener_CountersDoNotAdvance()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x40000, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m, 16);

            Assert.False(FastEptMetrics.WalksEnabled);
            Assert.False(FastEptMetrics.WritesEnabled);
            FastEptMetrics.Counters mine = FastEptMetrics.Current;
            long[] before = Snapshot(mine);

            p2m.Translate(0x40000UL << 12, AccessKind.Read);
            p2m.Translate(0x99999UL << 12, AccessKind.Read);
            p2m.TranslateBatch(new ulong[] { 0x40000UL << 12, 0x99999UL << 12 }, AccessKind.Read, new EptTranslation[2]);
            tlb.Translate(0x40000UL << 12, AccessKind.Read);
            tlb.Translate(0x40000UL << 12, AccessKind.Read);
            p2m.SetEntry(0x40003, 0x5, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            Assert.Equal(before, Snapshot(mine));
            Assert.Equal(1, tlb.Hits);      // a TLB counts its lookups always (one extra load, no check)
            Assert.Equal(1, tlb.Misses);

            // Once observed, this thread's node counts; after the listener goes, it stops again.
            using (var probe = new Probe())
            {
                Assert.True(FastEptMetrics.WalksEnabled);
                p2m.Translate(0x40000UL << 12, AccessKind.Read);
            }

            Assert.Equal(before[0] + 1, mine.Translations);
            Assert.False(FastEptMetrics.WalksEnabled);
            p2m.Translate(0x40000UL << 12, AccessKind.Read);
            Assert.Equal(before[0] + 1, mine.Translations);
        }

        [Fact]
        public void Counters_OfExitedThreads_AreKeptAndTheirNodesReused()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            using var probe = new Probe();
            Dictionary<string, long> before = probe.Observe();
            int nodesBefore = CountNodes();

            // Eight threads one after another: each translates 100 times and exits; all but the
            // first can adopt an exited thread's node, so the list grows by at most one.
            for (int i = 0; i < 8; i++)
            {
                var thread = new Thread(() =>
                {
                    for (int k = 0; k < 100; k++)
                    {
                        p2m.Translate(0x10UL << 12, AccessKind.Read);
                    }
                });
                thread.Start();
                thread.Join();
            }

            Assert.Equal(800, probe.Delta(before)["fastept.translations"]);
            Assert.True(CountNodes() <= nodesBefore + 1, $"{CountNodes()} nodes, {nodesBefore} before");
        }

        [Fact]
        public void SoftTlb_CountsOfCollectedTlbs_AreKeptAndTheirNodesReused()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            using var probe = new Probe();
            Dictionary<string, long> before = probe.Observe();
            int nodesBefore = CountTlbNodes();

            for (int i = 0; i < 8; i++)
            {
                UseAndDropTlb(p2m);     // 1 miss, 9 hits
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            var kept = new SoftTlb(p2m);
            kept.ResetCounters();
            kept.Translate(0x10UL << 12, AccessKind.Read);
            Assert.Equal(0, kept.Hits);
            Assert.Equal(1, kept.Misses);

            Dictionary<string, long> delta = probe.Delta(before);
            Assert.Equal(8 * 9, delta["fastept.tlb.hits"]);
            Assert.Equal(8 + 1, delta["fastept.tlb.misses"]);
            Assert.True(CountTlbNodes() <= nodesBefore + 2, $"{CountTlbNodes()} TLB nodes, {nodesBefore} before");
            GC.KeepAlive(kept);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void UseAndDropTlb(P2m p2m)
        {
            var tlb = new SoftTlb(p2m, 4);
            for (int k = 0; k < 10; k++)
            {
                tlb.Translate(0x10UL << 12, AccessKind.Read);
            }

            Assert.Equal(9, tlb.Hits);
            Assert.Equal(1, tlb.Misses);
        }

        private static int CountTlbNodes() => (int)FastEptMetrics.SumTlbs(static _ => 1);

        private static long[] Snapshot(FastEptMetrics.Counters c)
            => [c.Translations, c.Violations, c.Misconfigs, c.Splits, c.EntryWrites];

        private static int CountNodes() => (int)FastEptMetrics.Sum(static _ => 1);

        // The HPA of the 4 KiB leaf slot of `gfn` (a 4-level hierarchy, every level present).
        private static ulong LeafSlotHpa(P2m p2m, HostMemory memory, ulong gfn)
        {
            ulong table = p2m.RootMfn << 12;
            for (int level = 4; level > 1; level--)
            {
                ulong slot = table + (((gfn >> (9 * (level - 1))) & 511) * 8);
                table = memory.ReadUInt64(slot) & 0x000F_FFFF_FFFF_F000UL;
            }

            return table + ((gfn & 511) * 8);
        }

        // A listener on every FastEpt instrument; Observe() reads them all.
        private sealed class Probe : IDisposable
        {
            private readonly MeterListener _listener = new();
            private readonly Dictionary<string, long> _last = new();

            public Probe()
            {
                _listener.InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Name == "FastEpt")
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                };
                _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => _last[instrument.Name] = value);
                _listener.Start();
            }

            public Dictionary<string, long> Observe()
            {
                _last.Clear();
                _listener.RecordObservableInstruments();
                Assert.Equal(s_names.Length, _last.Count);
                return new Dictionary<string, long>(_last);
            }

            public Dictionary<string, long> Delta(Dictionary<string, long> before)
            {
                Dictionary<string, long> now = Observe();
                return now.ToDictionary(kv => kv.Key, kv => kv.Value - before[kv.Key]);
            }

            public void Dispose() => _listener.Dispose();
        }
    }
}

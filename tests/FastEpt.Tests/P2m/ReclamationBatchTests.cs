// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Batched, process-wide reclamation (docs/model/p2m.md §3.1 (d)): writes issue no barrier of
    /// their own, a pass runs per batch of retired frames, memory stays bounded, a reader holds
    /// back only the p2m it is in, a parked reader is never freed under however many passes run,
    /// and the <c>FastEpt</c> meter counts barriers, frames and parked readers exactly.
    /// </summary>
    /// <remarks>
    /// In the non-parallel collection: the barrier count and the meter are process-wide, so no
    /// other test may reclaim meanwhile, and parked readers must not hold back other tests.
    /// </remarks>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed partial class ReclamationBatchTests
    {
        private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
        private const ulong Pages2M = 512;
        private const int Regions = 8;

        [Fact]
        public void MergeSplitWorkload_IssuesAtMostTenBarriersPerThousandWrites()
        {
            using var w = new World();
            P2m.ReclaimAll();       // leftovers of earlier tests: not this workload's barriers
            long before = Reclaimer.Barriers;
            long framesBefore = Reclaimer.FramesReclaimed;

            int writes = w.MergeSplit(w.A, cycles: 5000);

            long barriers = Reclaimer.Barriers - before;
            Assert.Equal(10_000, writes);
            Assert.True(barriers * 1000 <= 10L * writes, $"{barriers} barriers for {writes} writes (more than 10 per 1,000)");
            Assert.True(barriers >= writes / 2 / 64 - 1, $"only {barriers} barriers: reclamation did not run per batch");
            Assert.True(Reclaimer.FramesReclaimed - framesBefore >= 5000 - RetiredFrames.MinBatch, "the batches did not free the retired frames");
        }

        [Fact]
        public void LongMergeSplitRun_PendingFramesStayBelowOneBatch_EvenWithAReaderParkedInAnotherP2m()
        {
            using var w = new World();
            using ParkedSection other = ParkedSection.Managed(w.B.ReaderTag);   // parked in B for the whole run
            long peak = 0;
            long peakAllocated = 0;

            w.MergeSplit(w.A, cycles: 20_000, afterEachWrite: () =>
            {
                peak = Math.Max(peak, w.A.PendingReclaimFrameCount);
                peakAllocated = Math.Max(peakAllocated, w.Memory.AllocatedFrameCount - w.A.TableFrameCount - w.B.TableFrameCount);
            });

            // Bound: one batch (max(64, tables / 8) = 64 here) minus one; a write retires one frame
            // and the write that reaches the batch ends with a pass that frees it all.
            Assert.True(peak < RetiredFrames.MinBatch, $"pending frames peaked at {peak}, above one batch ({RetiredFrames.MinBatch})");
            Assert.True(peakAllocated <= w.GuestFrames + RetiredFrames.MinBatch, $"{peakAllocated - w.GuestFrames} frames beyond guest and live tables");
        }

        [Fact]
        public void ReaderInP2mB_DoesNotHoldBackA_ButHoldsBackB()
        {
            using var w = new World();
            ulong ptA = w.Split(w.A, 0);
            ulong ptB = w.Split(w.B, 0);
            ulong[] contentsB = w.ReadFrame(ptB);
            using ParkedSection reader = ParkedSection.Managed(w.B.ReaderTag);

            w.Merge(w.A, 0);
            w.Merge(w.B, 0);

            Assert.Equal(0, w.A.Reclaim());
            Assert.False(w.Memory.IsAllocated(ptA));
            Assert.Equal(Enumerable.Repeat(HostMemory.PoisonPattern, 512), w.ReadFrame(ptA));
            Assert.Equal(1, w.B.Reclaim());
            Assert.True(w.Memory.IsAllocated(ptB));
            Assert.Equal(contentsB, w.ReadFrame(ptB));

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(w.B));
            Assert.False(w.Memory.IsAllocated(ptB));
        }

        [Fact]
        public void ReaderNestedAcrossP2ms_HoldsBackBoth()
        {
            using var w = new World();
            ulong ptA = w.Split(w.A, 0);
            using ParkedSection reader = ParkedSection.Managed(w.B.ReaderTag, nestedTag: w.A.ReaderTag);

            w.Merge(w.A, 0);

            Assert.Equal(1, w.A.Reclaim());     // the inner section is in A: the slot now means "any p2m"
            Assert.True(w.Memory.IsAllocated(ptA));

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(w.A));
            Assert.False(w.Memory.IsAllocated(ptA));
        }

        [Fact]
        public void ReaderParkedAcrossManyBatches_NothingItCouldReadIsFreed_AndItShowsAsParked()
        {
            using var w = new World();
            ulong pt = w.Split(w.A, 0);
            ulong[] contents = w.ReadFrame(pt);
            using ParkedSection reader = ParkedSection.Managed(w.A.ReaderTag);
            long before = Reclaimer.Barriers;

            w.Merge(w.A, 0);
            w.MergeSplit(w.A, cycles: 20 * RetiredFrames.MinBatch, afterEachWrite: () =>
            {
                if (!w.Memory.IsAllocated(pt))
                {
                    Assert.Fail("a table the parked reader could be in was freed");
                }
            });

            Assert.True(Reclaimer.Barriers - before >= 10, $"only {Reclaimer.Barriers - before} passes ran under the reader");
            Assert.Equal(contents, w.ReadFrame(pt));
            Assert.Equal(1 + 20 * RetiredFrames.MinBatch, w.A.PendingReclaimFrameCount);  // every retire since it entered
            Assert.True(Epoch.ParkedReaders() >= 1, "the parked reader does not show as parked");

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(w.A));
            Assert.Equal(Enumerable.Repeat(HostMemory.PoisonPattern, 512), w.ReadFrame(pt));
            Assert.Equal(0, Epoch.ParkedReaders());
        }

        [Fact]
        public void DisposedP2m_FramesAReaderHoldsBack_FreedByTheNextPassFromAnywhere()
        {
            using var w = new World();
            ulong pt = w.Split(w.A, 0);
            var view = new P2m(w.Memory);
            view.SetEntry(0x200, 0, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            view.SetEntry(0x201, 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            using ParkedSection reader = ParkedSection.Managed(view.ReaderTag);     // a walk racing Dispose
            view.SetEntry(0x200, 0, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            long tables = view.TableFrameCount;
            long allocated = w.Memory.AllocatedFrameCount;

            view.Dispose();

            Assert.Equal(allocated - tables, w.Memory.AllocatedFrameCount);   // live tables go at once; the retired one waits
            Assert.Equal(1, view.PendingReclaimFrameCount);
            reader.Release();
            w.Merge(w.A, 0);
            Assert.Equal(0, w.A.Reclaim());      // A's pass serves the dead p2m too
            Assert.Equal(0, view.PendingReclaimFrameCount);
            Assert.Equal(allocated - tables - 1 - 1, w.Memory.AllocatedFrameCount);
            Assert.False(w.Memory.IsAllocated(pt));
        }

        [Fact]
        public void FullHostMemory_TableAllocation_ReclaimsPendingFramesAndRetries()
        {
            using var memory = new HostMemory(4L << 20) { PoisonFreedFrames = true };
            Assert.Equal(0UL, memory.AllocateFrames((long)Pages2M));
            using var p2m = new P2m(memory);
            p2m.SetEntry(0x200, 0, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x201, 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);     // a page table
            p2m.SetEntry(0x200, 0, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);   // retired: pending, below a batch
            var hog = new List<ulong>();
            while (memory.TryAllocateFrame(out ulong f))
            {
                hog.Add(f);
            }

            Assert.Equal(1, p2m.PendingReclaimFrameCount);
            long before = Reclaimer.Barriers;

            p2m.SetEntry(0x201, 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);     // needs a frame: only the pending one

            Assert.Equal(0, p2m.PendingReclaimFrameCount);
            Assert.Equal(1, Reclaimer.Barriers - before);
            Assert.Equal(new P2mEntry(1, P2mType.RamRw, P2mAccess.R, true, true, 0), p2m.GetEntry(0x201));
            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x401, 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R));
            Assert.Equal(1, Reclaimer.Barriers - before);     // nothing pending: no second barrier for the failure
            foreach (ulong f in hog)
            {
                memory.FreeFrame(f);
            }
        }

        // Host memory (poisoned frees) with guest frames for 8 regions, and two p2ms over it.
        private sealed class World : IDisposable
        {
            public World()
            {
                Memory = new HostMemory(64L << 20) { PoisonFreedFrames = true };
                GuestFrames = Regions * (long)Pages2M;
                Assert.Equal(0UL, Memory.AllocateFrames(GuestFrames));
                A = new P2m(Memory);
                B = new P2m(Memory);
                for (int r = 0; r < Regions; r++)
                {
                    Merge(A, r);
                    Merge(B, r);
                }
            }

            public HostMemory Memory { get; }

            public P2m A { get; }

            public P2m B { get; }

            public long GuestFrames { get; }

            public static ulong Gfn(int region) => Pages2M * (ulong)(region + 1);

            public static ulong Frame(int region) => Pages2M * (ulong)region;

            public void Merge(P2m p2m, int region)
                => p2m.SetEntry(Gfn(region), Frame(region), PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);

            // Splits the region's superpage with one 4K write (same frame) and returns the new page table.
            public ulong Split(P2m p2m, int region)
            {
                p2m.SetEntry(Gfn(region) + 1, Frame(region) + 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);
                ulong table = p2m.RootMfn;
                ulong gfn = Gfn(region);
                for (int level = p2m.Levels; level > 2; level--)
                {
                    table = new EptEntry(Memory.ReadUInt64((table << 12) + 8 * ((gfn >> (9 * (level - 1))) & 511))).Mfn;
                }

                var pde = new EptEntry(Memory.ReadUInt64((table << 12) + 8 * ((gfn >> 9) & 511)));
                Assert.True(pde.IsPresent && !pde.SuperPage);
                return pde.Mfn;
            }

            // `cycles` split + merge pairs round the regions; returns the writes made.
            public int MergeSplit(P2m p2m, int cycles, Action? afterEachWrite = null)
            {
                int writes = 0;
                for (int i = 0; i < cycles; i++)
                {
                    int region = i % Regions;
                    p2m.SetEntry(Gfn(region) + 1, Frame(region) + 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);
                    afterEachWrite?.Invoke();
                    Merge(p2m, region);
                    afterEachWrite?.Invoke();
                    writes += 2;
                }

                return writes;
            }

            public ulong[] ReadFrame(ulong mfn) => MemoryMarshal.Cast<byte, ulong>(Memory.Frame(mfn)).ToArray();

            public void Dispose()
            {
                A.Dispose();
                B.Dispose();
                Memory.Dispose();
            }
        }

        /// <summary>A thread parked inside a read section (managed, tagged, optionally nested, or native) until released.</summary>
        private sealed class ParkedSection : IDisposable
        {
            private readonly ManualResetEventSlim _parked = new();
            private readonly ManualResetEventSlim _release = new();
            private readonly Thread _thread;
            private Exception? _error;

            private ParkedSection(Action<Action> body)
            {
                _thread = new Thread(() =>
                {
                    try
                    {
                        body(() =>
                        {
                            _parked.Set();
                            _release.Wait(s_timeout);
                        });
                    }
                    catch (Exception e)
                    {
                        _error = e;
                        _parked.Set();
                    }
                })
                {
                    IsBackground = true,
                    Name = "parked section",
                };
                _thread.Start();
                Assert.True(_parked.Wait(s_timeout), "the reader never entered its section");
                Assert.Null(_error);
            }

            // A managed section tagged `tag`, with a section tagged `nestedTag` inside it when given.
            public static ParkedSection Managed(int tag, int? nestedTag = null) => new(park =>
            {
                long previous = Epoch.Enter(tag, out Epoch.ReaderSlot slot);
                long inner = nestedTag is int t ? Epoch.Enter(t, out _) : -1;
                try
                {
                    park();
                }
                finally
                {
                    if (nestedTag is not null)
                    {
                        Epoch.Exit(slot, inner);
                    }

                    Epoch.Exit(slot, previous);
                }
            });

            // Any code between entering and leaving a section, e.g. a native one.
            public static ParkedSection Custom(Action<Action> body) => new(body);

            public void Release()
            {
                _release.Set();
                Assert.True(_thread.Join(s_timeout), "the reader never left its section");
                Assert.Null(_error);
            }

            public void Dispose()
            {
                _release.Set();
                _thread.Join(s_timeout);
                _parked.Dispose();
                _release.Dispose();
            }
        }
    }
}

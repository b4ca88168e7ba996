// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// The reclamation rule (docs/model/p2m.md §3.1 (d), docs/model/README.md §0.6), step by step: a table
    /// unlinked while a reader may be inside it stays allocated and intact until that reader
    /// leaves, then is freed (and, with poisoning on, overwritten). Readers are parked inside
    /// <see cref="Epoch"/> sections on their own threads, so every interleaving is forced.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class EpochReclamationTests
    {
        private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
        private const ulong RegionA = 0x200;        // two 2M regions, each mapped as 512 4K pages
        private const ulong RegionB = 0x400;
        private const ulong Pages2M = 512;

        [Fact]
        public void Retire_ReaderInsideSinceBefore_KeepsTableIntactUntilItExits()
        {
            using var f = new Fixture();
            ulong pt = f.MapAs4K(RegionA);
            ulong[] contents = f.ReadFrame(pt);
            using ParkedReader reader = ParkedReader.Start();

            f.Merge(RegionA);

            Assert.Equal(1, f.P2m.PendingReclaimFrameCount);
            Assert.Equal(1, f.P2m.Reclaim());
            Assert.True(f.Memory.IsAllocated(pt));
            Assert.Equal(contents, f.ReadFrame(pt));       // not poisoned, not reused
            Assert.Equal(f.Leaf2M(RegionA + 7), f.P2m.GetEntry(RegionA + 7));

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m));
            Assert.False(f.Memory.IsAllocated(pt));
            Assert.Equal(Enumerable.Repeat(HostMemory.PoisonPattern, 512), f.ReadFrame(pt));
            Assert.Equal(f.Memory.AllocatedFrameCount, f.P2m.TableFrameCount + f.GuestFrames);
        }

        [Fact]
        public void Retire_ReaderEnteredAfterIt_DoesNotBlockReclaim()
        {
            using var f = new Fixture();
            ulong ptA = f.MapAs4K(RegionA);
            ulong ptB = f.MapAs4K(RegionB);
            using ParkedReader early = ParkedReader.Start();
            f.Merge(RegionA);
            Assert.Equal(1, f.P2m.Reclaim());       // a pass: the early reader holds it; the epoch moved on
            using ParkedReader late = ParkedReader.Start();
            Assert.True(late.EnteredEpoch > early.EnteredEpoch, $"late reader's epoch {late.EnteredEpoch} is not after the early one's {early.EnteredEpoch}");

            early.Release();

            // Only the late reader is inside, and it entered after a pass that followed the unlink
            // (a reader that enters between an unlink and the next pass counts as inside: one
            // stamp serves every unlink between two passes).
            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m));
            Assert.False(f.Memory.IsAllocated(ptA));

            // It is still a live reader, though: it holds back what is unlinked while it is inside.
            ulong[] contents = f.ReadFrame(ptB);
            f.Merge(RegionB);
            Assert.Equal(1, f.P2m.Reclaim());
            Assert.True(f.Memory.IsAllocated(ptB));
            Assert.Equal(contents, f.ReadFrame(ptB));

            late.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m));
            Assert.False(f.Memory.IsAllocated(ptB));
            Assert.Equal(Enumerable.Repeat(HostMemory.PoisonPattern, 512), f.ReadFrame(ptB));
        }

        [Fact]
        public void Enter_NestedInsideOpenSection_KeepsOuterEpoch()
        {
            using var f = new Fixture();
            ulong pt = f.MapAs4K(RegionA);
            using var retired = new ManualResetEventSlim();
            long innerPrevious = -1;
            long valueAfterInnerEnter = -1;
            long valueAfterInnerExit = -1;
            long valueAfterLibraryCalls = -1;
            P2mEntry seen = default;

            // Outer section, then (after the retire) an explicit nested section and two library
            // reads, which nest their own sections: none may move the slot off the outer epoch.
            using ParkedReader reader = ParkedReader.Start(slot =>
            {
                Assert.True(retired.Wait(s_timeout), "the main thread never retired the table");
                innerPrevious = Epoch.Enter(out Epoch.ReaderSlot inner);
                Assert.Same(slot, inner);
                valueAfterInnerEnter = Volatile.Read(ref slot.Value);
                Epoch.Exit(inner, innerPrevious);
                valueAfterInnerExit = Volatile.Read(ref slot.Value);
                seen = f.P2m.GetEntry(RegionA + 3);
                _ = f.P2m.Translate((RegionA + 3) << 12, AccessKind.Read);
                valueAfterLibraryCalls = Volatile.Read(ref slot.Value);
            });

            Assert.Equal(0, reader.Previous);               // outermost section
            f.Merge(RegionA);
            retired.Set();
            reader.WaitForSecondPark();

            Assert.Equal(reader.EnteredEpoch, innerPrevious);      // the inner Enter reports the outer epoch ...
            Assert.Equal(reader.EnteredEpoch, valueAfterInnerEnter);   // ... and does not refresh it,
            Assert.Equal(reader.EnteredEpoch, valueAfterInnerExit);    // the inner Exit does not clear it,
            Assert.Equal(reader.EnteredEpoch, valueAfterLibraryCalls); // nor do the library's own nested sections.
            Assert.Equal(f.Leaf2M(RegionA + 3), seen);   // the reader runs in the new tree
            Assert.Equal(1, f.P2m.Reclaim());
            Assert.True(f.Memory.IsAllocated(pt));

            reader.Release();

            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m));
            Assert.False(f.Memory.IsAllocated(pt));
        }

        [Fact]
        public void Slot_ThreadDiedInsideSection_GivesSlotBackOnceCollected()
        {
            using var f = new Fixture();
            ulong pt = f.MapAs4K(RegionA);
            Epoch.ReaderSlot? slot = null;
            long epoch = 0;
            var thread = new Thread(() =>
            {
                // Enter and never Exit: the thread dies inside its section.
                _ = Epoch.Enter(out Epoch.ReaderSlot s);
                slot = s;
                epoch = Volatile.Read(ref s.Value);
            })
            {
                IsBackground = true,
            };
            thread.Start();
            Assert.True(thread.Join(s_timeout));
            Assert.NotNull(slot);
            try
            {
                Assert.NotEqual(0, epoch);
                Assert.True(slot.InUse);
                f.Merge(RegionA);
                Assert.Equal(1, f.P2m.Reclaim());           // the dead thread still counts as a reader

                // Its thread-static owner is garbage now; finalising it gives the slot back.
                long end = Environment.TickCount64 + 10_000;
                while ((Volatile.Read(ref slot.Value) != 0 || slot.InUse) && Environment.TickCount64 < end)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    Thread.Sleep(10);
                }

                Assert.False(slot.InUse, "the dead thread's slot was never given back");
                Assert.Equal(0, Volatile.Read(ref slot.Value));
                Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m));
                Assert.False(f.Memory.IsAllocated(pt));
            }
            finally
            {
                // Never leave a stuck epoch behind: it would hold back every later test's frees.
                Volatile.Write(ref slot.Value, 0);
            }
        }

        // A host memory with poisoning, guest frames for two 2M regions, and an empty p2m.
        private sealed class Fixture : IDisposable
        {
            public Fixture()
            {
                Memory = new HostMemory(16L << 20) { PoisonFreedFrames = true };
                GuestFrames = 2 * (long)Pages2M;
                Assert.Equal(0UL, Memory.AllocateFrames(GuestFrames));
                P2m = new P2m(Memory);
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public long GuestFrames { get; }

            // Region r's guest frames: RegionA -> 0, RegionB -> 512.
            private static ulong FrameOf(ulong region) => region == RegionA ? 0 : Pages2M;

            // Maps the 2M region as 512 4K pages and returns the MFN of its page table.
            public ulong MapAs4K(ulong region)
            {
                for (ulong i = 0; i < Pages2M; i++)
                {
                    P2m.SetEntry(region + i, FrameOf(region) + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                // Walk down to the level-2 slot by hand; it must point at a table.
                ulong table = P2m.RootMfn;
                for (int level = P2m.Levels; level > 2; level--)
                {
                    table = new EptEntry(Memory.ReadUInt64((table << 12) + 8 * ((region >> (9 * (level - 1))) & 511))).Mfn;
                }

                var pde = new EptEntry(Memory.ReadUInt64((table << 12) + 8 * ((region >> 9) & 511)));
                Assert.True(pde.IsPresent && !pde.SuperPage, $"0x{region:X} is not mapped through a page table: {pde.Raw:X16}");
                Assert.Equal(0, P2m.PendingReclaimFrameCount);
                return pde.Mfn;
            }

            // Replaces the region's page table with one 2M superpage of the same frames.
            public void Merge(ulong region)
                => P2m.SetEntry(region, FrameOf(region), PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);

            // What GetEntry(gfn) reads once the region is one superpage.
            public P2mEntry Leaf2M(ulong gfn)
                => new(FrameOf(gfn & ~(Pages2M - 1)) + (gfn & (Pages2M - 1)), P2mType.RamRw, P2mAccess.RWX, true, true, 9);

            public ulong[] ReadFrame(ulong mfn) => MemoryMarshal.Cast<byte, ulong>(Memory.Frame(mfn)).ToArray();

            public void Dispose()
            {
                P2m.Dispose();
                Memory.Dispose();
            }
        }

        /// <summary>
        /// A thread that enters a read-side section, parks inside it on a
        /// <see cref="ManualResetEventSlim"/>, optionally runs more code inside it and parks
        /// again, and leaves the section when released.
        /// </summary>
        private sealed class ParkedReader : IDisposable
        {
            private readonly ManualResetEventSlim _parked = new();
            private readonly ManualResetEventSlim _parkedAgain = new();
            private readonly ManualResetEventSlim _release = new();
            private readonly Action<Epoch.ReaderSlot>? _whileInside;
            private readonly Thread _thread;
            private Exception? _error;

            private ParkedReader(Action<Epoch.ReaderSlot>? whileInside)
            {
                _whileInside = whileInside;
                _thread = new Thread(Body) { IsBackground = true, Name = "parked reader" };
            }

            public long EnteredEpoch { get; private set; }     // the slot's value once inside

            public long Previous { get; private set; } = -1;

            // Starts the thread and returns once it is inside its section. With `whileInside`,
            // the code runs inside the section right away; WaitForSecondPark waits for it.
            public static ParkedReader Start(Action<Epoch.ReaderSlot>? whileInside = null)
            {
                var reader = new ParkedReader(whileInside);
                reader._thread.Start();
                Assert.True(reader._parked.Wait(s_timeout), "the reader never entered its section");
                reader.ThrowIfFailed();
                return reader;
            }

            public void WaitForSecondPark()
            {
                Assert.True(_parkedAgain.Wait(s_timeout), "the reader never finished its inside work");
                ThrowIfFailed();
            }

            public void Release()
            {
                _release.Set();
                Assert.True(_thread.Join(s_timeout), "the reader never left its section");
                ThrowIfFailed();
            }

            public void Dispose()
            {
                _release.Set();
                _thread.Join(s_timeout);
                _parked.Dispose();
                _parkedAgain.Dispose();
                _release.Dispose();
            }

            private void Body()
            {
                long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
                try
                {
                    Previous = previous;
                    EnteredEpoch = Volatile.Read(ref slot.Value);
                    _parked.Set();
                    if (_whileInside is not null)
                    {
                        _whileInside(slot);
                        _parkedAgain.Set();
                    }

                    _release.Wait(s_timeout);
                }
                catch (Exception e)
                {
                    _error = e;
                    _parked.Set();
                    _parkedAgain.Set();
                }
                finally
                {
                    Epoch.Exit(slot, previous);
                }
            }

            private void ThrowIfFailed()
            {
                if (_error is not null)
                {
                    throw new InvalidOperationException("The parked reader failed: " + _error.Message, _error);
                }
            }
        }
    }
}

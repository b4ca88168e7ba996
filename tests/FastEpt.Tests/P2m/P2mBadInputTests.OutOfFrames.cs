// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mBadInputTests
    {
        // ---- Running out of frames --------------------------------------------------------------

        [Fact]
        public void SetEntry_SplitRunsOutOfFramesAtThe300thTable_ThrowsAndKeepsThe1GMapping()
        {
            // docs/model/p2m.md §3.9: a 4K set inside a 1G page needs 1 + 512 tables; only 299 frames are free.
            const long Guest = 1L << 18;
            using HostMemory memory = new HostMemory((Guest + 2 + 299) << 12);
            Assert.Equal(0UL, memory.AllocateFrames(Guest));
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x40000, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Clear);
            Assert.Equal(2, p2m.TableFrameCount);
            Assert.Equal(memory.FrameCount - 299, memory.AllocatedFrameCount);

            Snapshot before = Snapshot.Capture(p2m, memory, Guest);
            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x40005, 0x999, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            before.AssertSame(Snapshot.Capture(p2m, memory, Guest));

            for (ulong gfn = 0x40000; gfn < 0x80000; gfn++)
            {
                P2mEntry e = p2m.GetEntry(gfn);
                if (!e.IsMapped || e.Mfn != gfn - 0x40000 || e.Order != 18 || e.Type != P2mType.RamRw || e.Access != P2mAccess.RWX || e.SuppressVe)
                {
                    Assert.Fail($"GetEntry(0x{gfn:X}) after the failed split: {e}");
                }
            }

            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x5123, 3, 0), p2m.Translate(0x4000_5123, AccessKind.Write));

            p2m.Dispose();
            Assert.Equal(Guest, memory.AllocatedFrameCount);
        }

        [Fact]
        public void SetEntry_SplitOfPodSuperpageRunsOutOfFrames_KeepsPodAccounting()
        {
            const long Guest = 16;
            using HostMemory memory = new HostMemory((Guest + 2 + 100) << 12);
            memory.AllocateFrames(Guest);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x40000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.RWX);
            Assert.Equal(1L << 18, p2m.PodEntryCount);

            Snapshot before = Snapshot.Capture(p2m, memory, Guest);
            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x40005, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N));
            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x40005, 3, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            before.AssertSame(Snapshot.Capture(p2m, memory, Guest));
            Assert.Equal(P2mType.PopulateOnDemand, p2m.GetEntry(0x40005).Type);
            Assert.Equal(18, p2m.GetEntry(0x7FFFF).Order);
        }

        [Fact]
        public void GetEntryAlloc_RemarkOfPod1GRunsOutOfFrames_ReturnsHoleAndChangesNothing()
        {
            // Populating inside a 1G PoD entry first re-marks it as 2M PoD entries, which needs
            // one table; with no frame free the populate fails and nothing changes.
            const long Guest = 1024;
            using HostMemory memory = new HostMemory((Guest + 2) << 12);
            memory.AllocateFrames(Guest);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x40000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.RWX);
            p2m.Pod.AddPage(512, PageOrder.Size2M);
            Assert.Equal(memory.FrameCount, memory.AllocatedFrameCount);

            Snapshot before = Snapshot.Capture(p2m, memory, Guest);
            P2mEntry e = p2m.GetEntry(0x40123, P2mQuery.Alloc);
            Assert.False(e.IsMapped);
            Assert.Equal(Mfn.Invalid, e.Mfn);
            before.AssertSame(Snapshot.Capture(p2m, memory, Guest));
            Assert.Equal(512, p2m.Pod.FreeFrames);
            Assert.Equal(P2mType.PopulateOnDemand, p2m.GetEntry(0x40123).Type);
        }

        [Fact]
        public void SetEntry_NewTablesRunOutOfFrames_ChangesNothingIncludingMaxMappedPfn()
        {
            // API.md: "Running out of frames mid-operation throws InsufficientMemoryException
            // after undoing any partial work". Xen raises max_mapped_pfn only after a successful
            // store (docs/model/p2m.md §3.3 step 7); a failed set must not leave it raised, or holes below
            // the failed GFN change the order they report.
            using HostMemory memory = new HostMemory(2 << 12);
            memory.AllocateFrames(1);
            using P2m p2m = new P2m(memory);
            Assert.Equal(memory.FrameCount, memory.AllocatedFrameCount);
            P2mEntry holeBefore = p2m.GetEntry(0x800);

            Snapshot before = Snapshot.Capture(p2m, memory, 1);
            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x1000, 0, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            before.AssertSame(Snapshot.Capture(p2m, memory, 1));
            Assert.Equal(holeBefore, p2m.GetEntry(0x800));

            Assert.Throws<InsufficientMemoryException>(() => p2m.SetEntry(0x4000_0000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.RWX));
            before.AssertSame(Snapshot.Capture(p2m, memory, 1));
        }
    }
}

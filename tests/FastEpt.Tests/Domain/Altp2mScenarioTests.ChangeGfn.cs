// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mScenarioTests
    {
        [Fact]
        public void ChangeGfn_ThenHostRemovesSource_ViewResetAndNotified()
        {
            Host.SetEntry(0x10, 0x110, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Host.SetEntry(0x20, 0x120, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.ChangeGfn(v, 0x10, 0x20));
            P2mEntry e = Alt.View(v).GetEntry(0x10);
            Assert.Equal((0x120UL, true), (e.Mfn, e.SuppressVe));
            Assert.Equal((0x20UL, 0x20UL), Alt.RemappedRange(v));

            // A host change of the remapped GFN itself does not undo the view's remap.
            Host.SetEntry(0x10, 0x111, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x120UL, Alt.View(v).GetEntry(0x10).Mfn);

            Host.SetEntry(0x20, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            Assert.False(Alt.View(v).GetEntry(0x10).IsMapped);
            Assert.Equal(1, Alt.View(v).TableFrameCount);   // only the root is left
            Assert.Equal((ulong.MaxValue, 0UL), Alt.RemappedRange(v));
            Assert.True(Alt.IsActive(v));
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal((MemAccessEventKind.ViewReset, v), (ev.Kind, ev.View));
        }

        [Fact]
        public void ChangeGfn_TwoViewsCoverRemovedGfn_EveryActiveViewReset()
        {
            for (ulong g = 0x10; g < 0x30; g++)
            {
                Host.SetEntry(g, 0x100 + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            int v1 = Alt.CreateView(), v2 = Alt.CreateView(), v3 = Alt.CreateView();
            Alt.ChangeGfn(v1, 0x10, 0x20);
            Alt.ChangeGfn(v2, 0x11, 0x21);
            Alt.ChangeGfn(v2, 0x12, 0x1F);        // v2 range [0x1F, 0x21]
            Alt.SetMemAccess(v3, 0x15, P2mAccess.R);

            Host.SetEntry(0x20, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            foreach (int v in new[] { v1, v2, v3 })
            {
                Assert.False(Alt.View(v).GetEntry(0x15).IsMapped);
                Assert.False(Alt.View(v).GetEntry(0x10).IsMapped);
                Assert.False(Alt.View(v).GetEntry(0x11).IsMapped);
            }

            Assert.Equal(3, Alt.ViewResets);
        }

        [Fact]
        public void ChangeGfn_Undo_RemovesOnlyWhenMapped()
        {
            Host.SetEntry(0x10, 0x110, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Host.SetEntry(0x20, 0x120, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.ChangeGfn(v, 0x10, Mfn.Invalid));     // nothing there: Ok, no change
            Assert.False(Alt.View(v).GetEntry(0x10).IsMapped);
            Alt.ChangeGfn(v, 0x10, 0x20);
            Assert.Equal(P2mStatus.Ok, Alt.ChangeGfn(v, 0x10, Mfn.Invalid));
            Assert.False(Alt.View(v).GetEntry(0x10).IsMapped);
            Assert.Equal(P2mStatus.NoEntry, Alt.ChangeGfn(v, 0x10, 0x30));     // new GFN unmapped everywhere
            Assert.Equal(P2mStatus.NoEntry, Alt.ChangeGfn(v, 0x40, 0x20));     // old GFN unmapped everywhere
        }

        [Fact]
        public void ChangeGfn_OutOfTableFrames_ThrowsAndViewUnchanged()
        {
            using var small = new HostMemory(64L << 12);
            using var d = new Domain(small, new DomainOptions());
            d.HostP2m.SetEntry(0x10, 0x30, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            d.HostP2m.SetEntry(0x20, 0x31, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            var hog = new List<ulong>();
            while (small.AllocatedFrameCount < small.FrameCount)
            {
                hog.Add(small.AllocateFrame());
            }

            // Xen returned 0 when the final set failed (docs/model/altp2m.md §4.6 QUIRK); FastEpt reports it.
            Assert.Throws<InsufficientMemoryException>(() => d.Altp2m.ChangeGfn(v, 0x10, 0x20));
            Assert.False(d.Altp2m.View(v).GetEntry(0x10).IsMapped);
            Assert.Equal((ulong.MaxValue, 0UL), d.Altp2m.RemappedRange(v));
        }

        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public void ChangeGfn_SuperpageWriteMovesRemapSource_ViewReset(bool firstGfnMappedBefore)
        {
            // Found by the torture test: a 2M host write that keeps (or newly maps) its first GFN's
            // frame but moves another GFN of the block must still reset a view remapping to it.
            Host.SetEntry(0x10, 0x1800, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            if (firstGfnMappedBefore)
            {
                Host.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            }

            Host.SetEntry(0x210, 0x2000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.ChangeGfn(v, 0x10, 0x210));
            Assert.Equal(0x2000UL, Alt.View(v).GetEntry(0x10).Mfn);

            Host.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x1010UL, Host.GetEntry(0x210).Mfn);
            Assert.False(Alt.View(v).GetEntry(0x10).IsMapped);
            Assert.Equal(1, Alt.ViewResets);
        }
    }
}

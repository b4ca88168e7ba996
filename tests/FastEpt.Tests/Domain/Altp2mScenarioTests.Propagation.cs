// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mScenarioTests
    {
        [Fact]
        public void Propagation_HostRemapsGfnHeldByView_ViewGetsNewFrameButKeepsItsStricterAccess()
        {
            Host.SetEntry(0x234, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v1 = Alt.CreateView();
            int v2 = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.SetMemAccess(v1, 0x234, P2mAccess.RW));

            Host.SetEntry(0x234, 0x777, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            P2mEntry e = Alt.View(v1).GetEntry(0x234);
            Assert.Equal(0x777UL, e.Mfn);
            // FastEpt: the view's rw is not widened to the host's rwx (Xen would write rwx).
            Assert.Equal(P2mAccess.RW, e.Access);
            Assert.False(Alt.View(v2).GetEntry(0x234).IsMapped);    // a view without the GFN stays empty

            // A host restriction narrower than the view's reaches the view.
            Host.SetEntry(0x234, 0x777, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);
            Assert.Equal(P2mAccess.R, Alt.View(v1).GetEntry(0x234).Access);
        }

        [Fact]
        public void Propagation_HostRemovesGfn_ViewEntryRemoved()
        {
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Alt.Switch(_domain.Vcpus[0], v);
            _domain.HandleEptViolation(_domain.Vcpus[0], 0x200000, AccessKind.Read, null);
            Assert.True(Alt.View(v).GetEntry(0x2FF).IsMapped);

            Host.SetEntry(0x240, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            Assert.False(Alt.View(v).GetEntry(0x240).IsMapped);
            Assert.Equal(0x80041UL, Alt.View(v).GetEntry(0x241).Mfn);
        }

        [Fact]
        public void Propagation_ViewCannotSplit_ViewResetNotStale()
        {
            using var small = new HostMemory(0x800L << 12);
            using var d = new Domain(small, new DomainOptions());
            d.HostP2m.SetEntry(0x200, 0x600, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            d.Altp2m.Switch(d.Vcpus[0], v);
            Assert.Equal(FaultOutcome.Retry, d.HandleEptViolation(d.Vcpus[0], 0x200000, AccessKind.Read, null));
            Assert.Equal(9, d.Altp2m.View(v).GetEntry(0x200).Order);
            var hog = new List<ulong>();
            while (small.AllocatedFrameCount < small.FrameCount - 1)
            {
                hog.Add(small.AllocateFrame());
            }

            // The host split takes the last frame; the view cannot split its copy, so it is emptied
            // rather than left mapping the old frame for 0x234.
            d.HostP2m.SetEntry(0x234, 0x5FF, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x5FFUL, d.HostP2m.GetEntry(0x234).Mfn);
            Assert.False(d.Altp2m.View(v).GetEntry(0x234).IsMapped);
            Assert.False(d.Altp2m.View(v).GetEntry(0x200).IsMapped);
            Assert.True(d.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal(MemAccessEventKind.ViewReset, ev.Kind);
        }

        [Fact]
        public void Shatter_HostSuperpageWithActiveView_PropagatesWithoutReenteringTheListLock()
        {
            // Found by the torture test: the XSA-304 shatter on view 0 held the list lock while the
            // host write propagated (and took it again).
            using var d = new Domain(_memory, new DomainOptions { AltViews = 1, P2m = new P2mOptions { ExecutableSuperpages = false } });
            d.HostP2m.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            Assert.Equal(P2mStatus.Ok, d.Altp2m.SetMemAccess(v, 0x200, P2mAccess.RX));
            Assert.Equal(FaultOutcome.Retry, d.HandleEptViolation(d.Vcpus[0], 0x200000, AccessKind.Execute, null));
            Assert.Equal(0, d.HostP2m.GetEntry(0x200).Order);
            Assert.Equal((0x1000UL, P2mAccess.RX), (d.Altp2m.View(v).GetEntry(0x200).Mfn, d.Altp2m.View(v).GetEntry(0x200).Access));
        }
    }
}

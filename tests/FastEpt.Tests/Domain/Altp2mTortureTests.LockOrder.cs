// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mTortureTests
    {
        // ------------------------------------------------------------------------------------
        // The lock-order checker guards the altp2m paths
        // ------------------------------------------------------------------------------------

        [Fact]
        public void LockOrder_WrongOrderOnAltp2mPaths_ThrowsNamingBothLocks_AndChangesNothing()
        {
            Assert.True(OrderedLock.CheckOrder, "The lock-order checker must be on for the test run.");
            using var memory = new HostMemory(0x4000L << 12);
            using var d = new Domain(memory, new DomainOptions { Vcpus = 1, AltViews = 2 });
            d.HostP2m.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            Assert.Equal(P2mStatus.Ok, d.Altp2m.SetMemAccess(v, 0x234, P2mAccess.R));
            P2m view = d.Altp2m.View(v);
            P2mEntry host234 = d.HostP2m.GetEntry(0x234), host300 = d.HostP2m.GetEntry(0x300);
            P2mEntry view234 = view.GetEntry(0x234), view300 = view.GetEntry(0x300);
            string viewLock = $"'altp2m view {v}'";

            // View before host: a host write (which would propagate) under a view lock.
            InvalidOperationException e1;
            using (view.P2mLock.Enter())
            {
                e1 = Assert.Throws<InvalidOperationException>(
                    () => d.HostP2m.SetEntry(0x234, 0x1500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            }

            Assert.Contains("'host p2m stripe'", e1.Message);     // a 4K host write takes its region's stripe
            Assert.Contains(viewLock, e1.Message);

            // View list before host: a view operation under the list lock.
            InvalidOperationException e2;
            using (d.Altp2m.ListLock.Enter())
            {
                e2 = Assert.Throws<InvalidOperationException>(() => d.Altp2m.SetMemAccess(v, 0x300, P2mAccess.RX));
            }

            Assert.Contains("'host p2m'", e2.Message);
            Assert.Contains("'altp2m list'", e2.Message);

            // View before view list: a switch under a view lock.
            InvalidOperationException e3;
            using (view.P2mLock.Enter())
            {
                e3 = Assert.Throws<InvalidOperationException>(() => d.Altp2m.Switch(d.Vcpus[0], v));
            }

            Assert.Contains("'altp2m list'", e3.Message);
            Assert.Contains(viewLock, e3.Message);

            // The fault handler under a view lock: it takes the host lock first.
            InvalidOperationException e4;
            using (view.P2mLock.Enter())
            {
                e4 = Assert.Throws<InvalidOperationException>(() => d.HandleEptViolation(d.Vcpus[0], 0x300000, AccessKind.Read, null));
            }

            Assert.Contains("'host p2m'", e4.Message);
            Assert.Contains(viewLock, e4.Message);

            // Re-entering the host lock (a host write from inside a host-locked section).
            using (d.HostP2m.P2mLock.Enter())
            {
                LockRecursionException e5 = Assert.Throws<LockRecursionException>(
                    () => d.HostP2m.SetEntry(0x300, 0x1600, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
                Assert.Contains("'host p2m'", e5.Message);
            }

            // Nothing changed, and the right order still works afterwards.
            Assert.Equal(host234, d.HostP2m.GetEntry(0x234));
            Assert.Equal(host300, d.HostP2m.GetEntry(0x300));
            Assert.Equal(view234, view.GetEntry(0x234));
            Assert.Equal(view300, view.GetEntry(0x300));
            Assert.Equal(0, d.Vcpus[0].View);
            using (d.HostP2m.P2mLock.Enter())
            using (d.Altp2m.ListLock.Enter())
            using (view.P2mLock.Enter())
            {
                Assert.True(view.P2mLock.IsHeldByCurrentThread);
            }

            d.HostP2m.SetEntry(0x234, 0x1500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x1500UL, view.GetEntry(0x234).Mfn);      // propagated, under host -> list -> view
            Assert.Equal(P2mAccess.R, view.GetEntry(0x234).Access);
        }
    }
}

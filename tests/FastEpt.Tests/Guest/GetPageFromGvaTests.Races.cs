// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    public sealed partial class GetPageFromGvaTests
    {
        [Fact]
        public void FastPath_EntryRemappedBeforeTheReference_ReturnsTheFrameMappedNow()
        {
            // 4K writers share the p2m's read side with the fast path, so the data GFN can be
            // remapped between the translation and the reference: the page must then be the
            // frame mapped now (the reference re-checked against the entry), never the old one.
            using TwoDimensionalGuest g = new(ad: false);
            P2m host = g.Domain.HostP2m;
            ulong oldMfn = DataMfn(g);
            ulong newMfn = g.Memory.AllocateFrame();
            int calls = 0;
            g.Cpu.BeforeReference = () =>
            {
                if (calls++ == 0)
                {
                    OnOtherThread(() => host.SetEntry(TwoDimensionalGuest.DataGfn, newMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
                }
            };

            using (GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Write))
            {
                Assert.Equal(GuestPageStatus.Ok, page.Status);
                Assert.Equal(newMfn, page.Mfn);
                Assert.Equal(1, g.Memory.ReferenceCount(newMfn));
                Assert.Equal(0, g.Memory.ReferenceCount(oldMfn));      // the stale reference was dropped
            }

            Assert.Equal(2, calls);     // translated again once
            Assert.Equal(0, g.Memory.ReferenceCount(newMfn));
        }

        [Fact]
        public void FastPath_AccessRestrictedBeforeTheReference_TranslatesAgainAndFaults()
        {
            // The frame stays, but the access that allowed the write is taken away meanwhile:
            // the page must not be handed out under the old rights.
            using TwoDimensionalGuest g = new(ad: false);
            P2m host = g.Domain.HostP2m;
            ulong mfn = DataMfn(g);
            g.Cpu.BeforeReference = () => OnOtherThread(() => host.SetEntry(TwoDimensionalGuest.DataGfn, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R));

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Write);
            Assert.Equal(GuestPageStatus.EptViolation, page.Status);
            Assert.Equal(0, g.Memory.ReferenceCount(mfn));
        }

        // A 4K writer on another thread, while this one holds the view's read side (it must not wait).
        private static void OnOtherThread(Action write)
        {
            Exception? failure = null;
            var t = new Thread(() =>
            {
                try
                {
                    write();
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            t.Start();
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a 4K write waited for the fast path's read side");
            Assert.Null(failure);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    public sealed partial class TwoDimensionalWalkTests
    {
        [Fact]
        public void AlternateView_EmptyView_FaultsOnTheTopEntry_HostViewUnaffected()
        {
            using TwoDimensionalGuest g = new(ad: false);
            int view = g.Domain.Altp2m.CreateView();
            g.Domain.Altp2m.Switch(g.Cpu, view);

            GuestTranslation r = g.Walk(Gla, Sr);
            AssertEptViolation(r, g.EntryGpa(4), 4, QualRead | QualGlaValid);
            Assert.Equal(g.Domain.Altp2m.View(view).Levels, r.Ept.Level);

            g.Domain.Altp2m.Switch(g.Cpu, 0);
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Sr).Status);
        }

        [Fact]
        public void AlternateView_RestrictionOnATablePage_AppliesOnlyInThatView()
        {
            using TwoDimensionalGuest g = new(ad: false);
            int view = g.Domain.Altp2m.CreateView();
            foreach (ulong gfn in new[] { TwoDimensionalGuest.Pml4Gfn, TwoDimensionalGuest.PdptGfn, TwoDimensionalGuest.PdGfn, TwoDimensionalGuest.PtGfn, TwoDimensionalGuest.DataGfn })
            {
                g.SetAccess(view, gfn, P2mAccess.RWX);
            }

            g.SetAccess(view, TwoDimensionalGuest.PdGfn, P2mAccess.X);
            ulong[] before = g.Entries();

            g.Domain.Altp2m.Switch(g.Cpu, view);
            GuestTranslation r = g.Walk(Gla, Sr);
            AssertEptViolation(r, g.EntryGpa(2), 2, QualRead | QualX | QualGlaValid);
            Assert.Equal(before, g.Entries());

            // Read-only PT page in the view, PTE without A: the A write is refused there only.
            g.SetAccess(view, TwoDimensionalGuest.PdGfn, P2mAccess.RWX);
            g.SetAccess(view, TwoDimensionalGuest.PtGfn, P2mAccess.R);
            r = g.Walk(Gla, Sr);
            AssertEptViolation(r, g.EntryGpa(1), 1, QualAdDisabled | QualR | QualGlaValid);

            // The host view is untouched by the view's settings.
            Assert.Equal(P2mAccess.RWX, g.Domain.HostP2m.GetEntry(TwoDimensionalGuest.PdGfn).Access);
            Assert.Equal(P2mAccess.RWX, g.Domain.HostP2m.GetEntry(TwoDimensionalGuest.PtGfn).Access);
            g.Domain.Altp2m.Switch(g.Cpu, 0);
            r = g.Walk(Gla, Sr);
            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(g.FinalGpa, r.Gpa);
            Assert.Equal(before[3] | Pte.Accessed, g.ReadEntry(1));
        }

        [Fact]
        public void AlternateView_ChangeGfnOfATablePage_WalkReadsAndUpdatesTheViewsFrame()
        {
            using TwoDimensionalGuest g = new(ad: false);
            const ulong AltPtGfn = 0x14, AltDataGfn = 0x21;

            // Another PT whose PTE (same slot) maps a different data page.
            ulong slot = TwoDimensionalGuest.Index(Gla, 1) * 8;
            ulong altPte = (AltDataGfn << 12) | Pte.Present | Pte.Writable | Pte.User;
            g.Memory.WriteUInt64(((g.RamMfn + AltPtGfn) << 12) + slot, altPte);
            int view = g.Domain.Altp2m.CreateView();
            foreach (ulong gfn in new[] { TwoDimensionalGuest.Pml4Gfn, TwoDimensionalGuest.PdptGfn, TwoDimensionalGuest.PdGfn, AltDataGfn })
            {
                g.SetAccess(view, gfn, P2mAccess.RWX);
            }

            Assert.Equal(P2mStatus.Ok, g.Domain.Altp2m.ChangeGfn(view, TwoDimensionalGuest.PtGfn, AltPtGfn));
            ulong hostPte = g.ReadEntry(1);

            g.Domain.Altp2m.Switch(g.Cpu, view);
            GuestTranslation r = g.Walk(Gla, Sw);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal((AltDataGfn << 12) | (Gla & 0xFFF), r.Gpa);
            Assert.Equal(((g.RamMfn + AltDataGfn) << 12) | (Gla & 0xFFF), r.Hpa);

            // A and D went into the frame the view shows at the PT's GFN, not the host's PT.
            Assert.Equal(altPte | Pte.Accessed | Pte.Dirty, g.Memory.ReadUInt64(((g.RamMfn + AltPtGfn) << 12) + slot));
            Assert.Equal(hostPte, g.ReadEntry(1));
        }
    }
}

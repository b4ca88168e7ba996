// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// The combined TLB, one rule at a time: hits answer what the walk did; each invalidation of
    /// Intel SDM Vol. 3A 4.10.4 removes what it must (a changed guest entry then shows) and keeps
    /// what it may (global pages across CR3 loads, other PCIDs, other views); a write never hits
    /// an entry a read filled; a p2m restriction is never answered stale.
    /// </summary>
    public sealed class LinearTlbTests
    {
        private const PageFaultErrorCode Read = PageFaultErrorCode.None, Write = PageFaultErrorCode.Write;

        // Translated without a walk (a hit, or a global entry adopted by the miss path).
        private static bool Served(LinearTlbGuest g, ulong gla, PageFaultErrorCode pfec)
        {
            long misses = g.Tlb.Misses;
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(gla, pfec).Status);
            return g.Tlb.Misses == misses;
        }

        [Fact]
        public void Translate_SecondAccess_HitsWithTheWalksAnswer()
        {
            using var g = new LinearTlbGuest();
            ulong gla = PageGla(3) + 0x123;
            GuestTranslation walk = g.Cpu.TranslateLinear(gla, Read);
            GuestTranslation first = g.Tlb.Translate(gla, Read);
            long misses = g.Tlb.Misses;
            GuestTranslation second = g.Tlb.Translate(gla, Read);

            Assert.Equal(GuestStatus.Ok, walk.Status);
            Assert.Equal(walk, first);
            Assert.Equal(walk, second);
            Assert.Equal(misses, g.Tlb.Misses);
            Assert.True(g.Tlb.TryLookup(gla, Read, out ulong hpa));
            Assert.Equal(walk.Hpa, hpa);
        }

        [Fact]
        public void Invlpg_ChangedLeaf_StaleUntilInvalidated_OtherPagesStay()
        {
            using var g = new LinearTlbGuest();
            ulong old = g.Tlb.Translate(PageGla(0), Read).Hpa;
            g.Tlb.Translate(PageGla(1), Read);
            g.MapPage(0, FirstDataGfn + 9, Rwu);

            Assert.Equal(old, g.Tlb.Translate(PageGla(0), Read).Hpa);      // stale: allowed until INVLPG
            g.Tlb.Invlpg(PageGla(0) + 0x800);
            Assert.Equal(g.HpaOfGfn(FirstDataGfn + 9), g.Tlb.Translate(PageGla(0), Read).Hpa);
            Assert.True(g.Tlb.TryLookup(PageGla(1), Read, out _));
        }

        [Fact]
        public void Invlpg_AnyFragmentOfALargePage_RemovesEveryFragment()
        {
            using var g = new LinearTlbGuest();
            ulong a = LargeBase + 0x5008, b = LargeBase + 0x1F_F000;
            g.Tlb.Translate(a, Read);
            g.Tlb.Translate(b, Read);
            Assert.True(g.Tlb.TryLookup(a, Read, out _) && g.Tlb.TryLookup(b, Read, out _));
            g.Tables.Map(LargeBase, 0, PageOrder.Size2M, Rwu, TableFlags);

            g.Tlb.Invlpg(LargeBase + 0x1000);       // a third fragment, never cached itself

            Assert.False(g.Tlb.TryLookup(a, Read, out _));
            Assert.False(g.Tlb.TryLookup(b, Read, out _));
            Assert.Equal(g.HpaOfGfn(5) + 8, g.Tlb.Translate(a, Read).Hpa);
        }

        [Fact]
        public void Cr3Load_Flushing_RemovesNonGlobal_KeepsGlobal()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(0, FirstDataGfn, Rwu | Global);
            g.Tlb.Translate(PageGla(0), Read);
            g.Tlb.Translate(PageGla(1), Read);

            g.Tlb.LoadCr3(0, noFlush: false);

            Assert.True(Served(g, PageGla(0), Read));       // the global entry, adopted without a walk
            Assert.False(Served(g, PageGla(1), Read));
        }

        [Fact]
        public void Cr3Load_NoFlushBit_KeepsEverything()
        {
            using var g = new LinearTlbGuest();
            g.Tlb.Translate(PageGla(1), Read);

            g.Tlb.LoadCr3(0, noFlush: true);

            Assert.True(g.Tlb.TryLookup(PageGla(1), Read, out _));
        }

        [Fact]
        public void Pcid_EntriesTaggedByPcid_GlobalsServeEveryPcid()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(0, FirstDataGfn, Rwu | Global);
            g.Tlb.LoadCr3(1, noFlush: true);
            g.Tlb.Translate(PageGla(0), Read);
            g.Tlb.Translate(PageGla(1), Read);

            g.Tlb.LoadCr3(2, noFlush: true);
            Assert.False(g.Tlb.TryLookup(PageGla(1), Read, out _));     // PCID 1's entry
            long misses = g.Tlb.Misses;
            g.Tlb.Translate(PageGla(0), Read);                           // PCID 1's global entry, adopted
            Assert.Equal(misses, g.Tlb.Misses);

            g.Tlb.LoadCr3(1, noFlush: true);
            Assert.True(g.Tlb.TryLookup(PageGla(1), Read, out _));      // still there for PCID 1
        }

        [Fact]
        public void Invpcid_EachType_RemovesWhatTheSdmSays()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(0, FirstDataGfn, Rwu | Global);

            void Fill(int pcid)
            {
                g.Tlb.LoadCr3((ushort)pcid, noFlush: true);
                g.Tlb.Translate(PageGla(0), Read);
                g.Tlb.Translate(PageGla(1), Read);
                g.Tlb.Translate(PageGla(2), Read);
            }

            bool Has(int pcid, int page)
            {
                g.Tlb.LoadCr3((ushort)pcid, noFlush: true);
                return g.Tlb.TryLookup(PageGla(page), Read, out _);
            }

            // Type 0: one address of one PCID, not the global one.
            Fill(1);
            g.Tlb.Invpcid(InvpcidType.IndividualAddress, 1, PageGla(1));
            Assert.False(Has(1, 1));
            Assert.True(Has(1, 2));
            g.Tlb.Invpcid(InvpcidType.IndividualAddress, 1, PageGla(0));
            Assert.True(Has(1, 0));

            // Type 1: one PCID's non-global entries; another PCID's stay.
            Fill(2);
            Fill(1);
            g.Tlb.Invpcid(InvpcidType.SingleContext, 2, 0);
            Assert.False(Has(2, 2));
            Assert.True(Has(1, 2));

            // Type 3: every PCID's non-global entries; the global one stays.
            Fill(1);
            g.Tlb.Invpcid(InvpcidType.AllContext, 0, 0);
            Assert.False(Has(1, 1));
            Assert.True(Has(1, 0));

            // Type 2: everything.
            Fill(1);
            g.Tlb.Invpcid(InvpcidType.AllContextIncludingGlobal, 0, 0);
            Assert.False(Has(1, 0));
            Assert.False(Has(1, 1));
            Assert.Throws<ArgumentOutOfRangeException>(() => g.Tlb.Invpcid(InvpcidType.SingleContext, 4096, 0));
        }

        [Fact]
        public void Invvpid_EachType_RemovesWhatTheSdmSays()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(0, FirstDataGfn, Rwu | Global);
            void Fill()
            {
                g.Tlb.Translate(PageGla(0), Read);
                g.Tlb.Translate(PageGla(1), Read);
            }

            Fill();
            g.Tlb.Invvpid(InvvpidType.IndividualAddress, PageGla(0));      // globals included
            Assert.False(g.Tlb.TryLookup(PageGla(0), Read, out _));
            Assert.True(g.Tlb.TryLookup(PageGla(1), Read, out _));

            Fill();
            g.Tlb.Invvpid(InvvpidType.SingleContextRetainingGlobals, 0);
            Assert.True(g.Tlb.TryLookup(PageGla(0), Read, out _));
            Assert.False(g.Tlb.TryLookup(PageGla(1), Read, out _));

            foreach (InvvpidType all in new[] { InvvpidType.SingleContext, InvvpidType.AllContext })
            {
                Fill();
                g.Tlb.Invvpid(all, 0);
                Assert.False(g.Tlb.TryLookup(PageGla(0), Read, out _));
                Assert.False(g.Tlb.TryLookup(PageGla(1), Read, out _));
            }
        }

        [Fact]
        public void PagingControlChange_RemovesGlobalsToo()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(0, FirstDataGfn, Rwu | Global);
            g.Tlb.Translate(PageGla(0), Read);

            g.Tlb.PagingControlChanged(0);

            Assert.False(g.Tlb.TryLookup(PageGla(0), Read, out _));
        }

        [Fact]
        public void Write_AfterReadFill_WalksAndSetsDirty_ThenHits()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(4, FirstDataGfn + 4, Rwu);        // A and D clear
            g.Tlb.Translate(PageGla(4), Read);
            Assert.Equal(0UL, g.Leaf(4) & GuestPageTableBuilder.Dirty);
            Assert.False(g.Tlb.TryLookup(PageGla(4), Write, out _));

            long misses = g.Tlb.Misses;
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(4), Write).Status);

            Assert.Equal(misses + 1, g.Tlb.Misses);
            Assert.NotEqual(0UL, g.Leaf(4) & GuestPageTableBuilder.Dirty);
            Assert.True(g.Tlb.TryLookup(PageGla(4), Write, out _));
            Assert.True(g.Tlb.TryLookup(PageGla(4), Read, out _));      // a write walk proves the read
        }

        [Fact]
        public void Rights_NeverWiderThanTheWalk_UserAndFetchMissAfterASupervisorRead()
        {
            using var g = new LinearTlbGuest();
            g.MapPage(5, FirstDataGfn + 5, GuestPageTableBuilder.Present | Xd);     // supervisor, read-only, no execute
            g.Tlb.Translate(PageGla(5), Read);

            Assert.Equal(GuestStatus.PageFault, g.Tlb.Translate(PageGla(5), PageFaultErrorCode.User).Status);
            Assert.Equal(GuestStatus.PageFault, g.Tlb.Translate(PageGla(5), Write).Status);
            Assert.Equal(GuestStatus.PageFault, g.Tlb.Translate(PageGla(5), PageFaultErrorCode.InstructionFetch).Status);
            Assert.Throws<ArgumentOutOfRangeException>(() => g.Tlb.Translate(PageGla(5), PageFaultErrorCode.Reserved));
        }

        [Fact]
        public void P2mRestriction_NextLookupMisses_NeverAnswersStale()
        {
            using var g = new LinearTlbGuest();
            ulong gfn = FirstDataGfn + 6;
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(6), Write).Status);

            g.Domain.HostP2m.SetEntry(gfn, g.RamMfn + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);

            Assert.False(g.Tlb.TryLookup(PageGla(6), Write, out _));
            Assert.Equal(GuestStatus.EptViolation, g.Tlb.Translate(PageGla(6), Write).Status);
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(6), Read).Status);
        }

        [Fact]
        public void NotRam_IsNeverCached()
        {
            using var g = new LinearTlbGuest();
            ulong gfn = FirstDataGfn + 7;
            g.Domain.HostP2m.SetEntry(gfn, g.RamMfn + gfn, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(7), Read).Status);

            Assert.False(g.Tlb.TryLookup(PageGla(7), Read, out _));
        }

        [Fact]
        public void ViewSwitch_EntriesTaggedByView_EachViewKeepsItsOwn()
        {
            using var g = new LinearTlbGuest();
            Altp2m alt = g.Domain.Altp2m;
            int view = alt.CreateView();
            foreach (ulong gfn in g.Tables.TableGfns.Append(FirstDataGfn + 8).Append(FirstDataGfn + 9))
            {
                Assert.Equal(P2mStatus.Ok, alt.SetMemAccess(view, gfn, P2mAccess.RWX));
            }

            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(8), Write).Status);
            alt.Switch(g.Cpu, view);
            Assert.False(g.Tlb.TryLookup(PageGla(8), Write, out _));            // view 0's entry
            Assert.Equal(GuestStatus.Ok, g.Tlb.Translate(PageGla(9), Write).Status);
            Assert.Equal(P2mStatus.Ok, alt.SetMemAccess(view, FirstDataGfn + 9, P2mAccess.R));
            Assert.Equal(GuestStatus.EptViolation, g.Tlb.Translate(PageGla(9), Write).Status);

            alt.Switch(g.Cpu, 0);
            Assert.False(g.Tlb.TryLookup(PageGla(8), Write, out _));            // the hit path alone does not switch
            Assert.True(Served(g, PageGla(8), Write));                           // view 0's generation did not move: kept
            Assert.False(Served(g, PageGla(9), Write));                          // view 1's entry is not view 0's
        }
    }
}

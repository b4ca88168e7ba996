// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// The combined TLB driven by the vCPU's own registers, not by the TLB's methods: MOV to CR3
    /// with PCIDs and the no-flush bit (Intel SDM Vol. 3A 4.10.4.1), RFLAGS.AC as part of an
    /// access's class (SMAP is decided per access), and PKRU/CR4 writes, which the TLB must not
    /// answer across with rights the new register values refuse.
    /// </summary>
    public sealed class LinearTlbRegisterTests
    {
        private const PageFaultErrorCode Read = PageFaultErrorCode.None;

        [Fact]
        public void MovToCr3_TagsByPcid_AndTheNoFlushBitKeepsTheOldPcidsEntries()
        {
            using var g = new LinearTlbGuest();
            ulong root = g.Tables.Cr3;
            g.Cpu.Cr4 |= Cr4Flags.Pcide;
            g.Cpu.Cr3 = root | 1;
            ulong old = g.Cpu.TranslateLinearCached(PageGla(0), Read).Hpa;
            g.MapPage(0, FirstDataGfn + 9, Rwu);          // no INVLPG: PCID 1 may keep the old page
            ulong fresh = g.HpaOfGfn(FirstDataGfn + 9);

            g.Cpu.Cr3 = root | 2 | (1UL << 63);           // PCID 2, no flush
            Assert.Equal(2UL, g.Cpu.Cr3 & 0xFFF);
            Assert.False(g.Tlb.TryLookup(PageGla(0), Read, out _));                   // another PCID's entry

            g.Cpu.Cr3 = root | 1 | (1UL << 63);           // back to PCID 1, no flush: its entry may stay
            Assert.True(g.Tlb.TryLookup(PageGla(0), Read, out ulong kept));
            Assert.Equal(old, kept);

            g.Cpu.Cr3 = root | 1;                         // PCID 1 with a flush: the change shows
            Assert.False(g.Tlb.TryLookup(PageGla(0), Read, out _));
            Assert.Equal(fresh, g.Cpu.TranslateLinearCached(PageGla(0), Read).Hpa);
        }

        [Fact]
        public void Smap_SupervisorReadOfAUserPage_AllowedWithAc_NeverServedFromTheTlbOnceAcIsClear()
        {
            using var g = new LinearTlbGuest();
            g.Cpu.Cr4 |= Cr4Flags.Smap;
            g.Cpu.Ac = true;
            Assert.Equal(GuestStatus.Ok, g.Cpu.TranslateLinearCached(PageGla(2), Read).Status);
            Assert.True(g.Tlb.TryLookup(PageGla(2), Read, out _));

            g.Cpu.Ac = false;                              // STAC/CLAC flush nothing on a CPU
            Assert.False(g.Tlb.TryLookup(PageGla(2), Read, out _));
            GuestTranslation t = g.Cpu.TranslateLinearCached(PageGla(2), Read);
            Assert.Equal(GuestStatus.PageFault, t.Status);
            Assert.Equal(PageFaultErrorCode.Present, t.ErrorCode);
            Assert.Equal(t, g.Cpu.TranslateLinear(PageGla(2), Read));

            g.Cpu.Ac = true;                               // the AC=1 class may still be cached
            Assert.True(g.Tlb.TryLookup(PageGla(2), Read, out _));
        }

        [Fact]
        public void PkruWrite_ThatDisablesTheKey_IsNeverAnsweredFromAnEarlierFill()
        {
            using var g = new LinearTlbGuest();
            const ulong KeyShift = 59;
            g.MapPage(4, FirstDataGfn + 4, Rwu | (3UL << (int)KeyShift));     // protection key 3
            g.Cpu.Cr4 |= Cr4Flags.Pke;
            g.Cpu.Pkru = 0;
            Assert.Equal(GuestStatus.Ok, g.Cpu.TranslateLinearCached(PageGla(4), PageFaultErrorCode.User).Status);
            Assert.True(g.Tlb.TryLookup(PageGla(4), PageFaultErrorCode.User, out _));

            g.Cpu.Pkru = 1u << (2 * 3);                    // AD for key 3
            GuestTranslation t = g.Cpu.TranslateLinearCached(PageGla(4), PageFaultErrorCode.User);
            Assert.Equal(GuestStatus.PageFault, t.Status);
            Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.User | PageFaultErrorCode.ProtectionKey, t.ErrorCode);
        }

        [Fact]
        public void Cr0WpClear_ThenSet_ASupervisorWriteToAReadOnlyPageIsNotServedFromTheWpClearFill()
        {
            using var g = new LinearTlbGuest();
            const ulong ReadOnlyUser = GuestPageTableBuilder.Present | GuestPageTableBuilder.User;
            g.MapPage(5, FirstDataGfn + 5, ReadOnlyUser);
            g.Cpu.Wp = false;
            Assert.Equal(GuestStatus.Ok, g.Cpu.TranslateLinearCached(PageGla(5), PageFaultErrorCode.Write).Status);

            g.Cpu.Wp = true;
            GuestTranslation t = g.Cpu.TranslateLinearCached(PageGla(5), PageFaultErrorCode.Write);
            Assert.Equal(GuestStatus.PageFault, t.Status);
            Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write, t.ErrorCode);
        }
    }
}

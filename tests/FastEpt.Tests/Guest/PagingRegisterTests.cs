// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// The register model of docs/model/guest-paging.md §8.1 and the PDPTE loads of §8.4: the mode
    /// derived from CR0/CR4/EFER, the old properties as views, CR3 and the PCID, MOV to CR3's
    /// checks, and PAE PDPTE loads through the EPT (eager and lazy).
    /// </summary>
    public sealed class PagingRegisterTests
    {
        [Fact]
        public void Defaults_AreTheOldBehaviour_FlatWithWpNxeAndPge()
        {
            using IdentityRam ram = new(4, 48, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            Assert.Equal(GuestPagingMode.Flat, cpu.Mode);
            Assert.True(cpu.Wp && cpu.Nxe && cpu.Pge);
            Assert.Equal(Cr0Flags.PE | Cr0Flags.WP, cpu.Cr0);
            Assert.Equal(Cr4Flags.Pge, cpu.Cr4);
            Assert.Equal(EferFlags.Nxe, cpu.Efer);
        }

        [Theory]
        [InlineData(GuestPagingMode.Flat)]
        [InlineData(GuestPagingMode.Paging32)]
        [InlineData(GuestPagingMode.Pae)]
        [InlineData(GuestPagingMode.LongMode4)]
        [InlineData(GuestPagingMode.LongMode5)]
        public void Mode_SetsTheRegisterBits_AndIsDerivedFromThem(GuestPagingMode mode)
        {
            using IdentityRam ram = new(4, 48, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Cr4 |= Cr4Flags.Smep;
            cpu.Mode = mode;
            Assert.Equal(mode, cpu.Mode);
            Assert.Equal(mode != GuestPagingMode.Flat, (cpu.Cr0 & Cr0Flags.PG) != 0);
            Assert.Equal(mode is GuestPagingMode.Pae or GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5, (cpu.Cr4 & Cr4Flags.Pae) != 0);
            Assert.Equal(mode is GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5, (cpu.Efer & EferFlags.Lma) != 0);
            Assert.Equal(mode == GuestPagingMode.LongMode5, (cpu.Cr4 & Cr4Flags.La57) != 0);
            Assert.True((cpu.Cr4 & Cr4Flags.Smep) != 0, "other CR4 bits are kept");

            // The same mode from the registers written one by one.
            using IdentityRam other = new(4, 48, accessDirty: false);
            Vcpu c2 = other.Cpu;
            c2.Cr4 = cpu.Cr4;
            c2.Efer = cpu.Efer;
            c2.Cr0 = cpu.Cr0;
            Assert.Equal(mode, c2.Mode);
        }

        [Fact]
        public void Efer_LmaFollowsLmeAndPg()
        {
            using IdentityRam ram = new(4, 48, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Cr4 = Cr4Flags.Pae;
            cpu.Efer = EferFlags.Lme | EferFlags.Nxe;
            Assert.Equal(GuestPagingMode.Flat, cpu.Mode);
            cpu.Cr0 |= Cr0Flags.PG;
            Assert.Equal(EferFlags.Lme | EferFlags.Lma | EferFlags.Nxe, cpu.Efer);
            Assert.Equal(GuestPagingMode.LongMode4, cpu.Mode);
            cpu.Efer = EferFlags.Lma;                 // a written LMA without LME is replaced
            Assert.Equal(GuestPagingMode.Pae, cpu.Mode);
            Assert.False(cpu.Nxe);
        }

        [Fact]
        public void Cr3_UnderPcide_DropsTheNoFlushBit_AndGivesThePcid()
        {
            using IdentityRam ram = new(4, 48, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Mode = GuestPagingMode.LongMode4;
            cpu.Cr3 = (1UL << 63) | 0x12_3000 | 0xABC;
            Assert.Equal(0, cpu.Pcid);                  // PCIDE off: bits 11:0 are flags, bit 63 kept as written
            Assert.Equal((1UL << 63) | 0x12_3ABC, cpu.Cr3);
            cpu.Cr4 |= Cr4Flags.Pcide;
            cpu.Cr3 = (1UL << 63) | 0x12_3000 | 0xABC;
            Assert.Equal(0x12_3ABCUL, cpu.Cr3);
            Assert.Equal(0xABC, cpu.Pcid);
            Assert.Equal(GuestStatus.Ok, cpu.LoadCr3((1UL << 63) | 0x45_6001, out _));
            Assert.Equal(0x45_6001UL, cpu.Cr3);
        }

        [Fact]
        public void LoadCr3_LongModeReservedBits_AreGeneralProtection_AndChangeNothing()
        {
            using IdentityRam ram = new(4, 39, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Mode = GuestPagingMode.LongMode4;
            cpu.Cr3 = 0x1000;
            Assert.Equal(GuestStatus.GeneralProtection, cpu.LoadCr3(1UL << 39, out GuestTranslation f));    // bit 39 >= MAXPHYADDR 39
            Assert.Equal(GuestStatus.GeneralProtection, f.Status);
            Assert.Equal(GuestStatus.GeneralProtection, cpu.LoadCr3((1UL << 63) | 0x2000, out _));          // bit 63 without PCIDE
            Assert.Equal(0x1000UL, cpu.Cr3);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void PaePdpteLoad_IsAnEptRead_WithoutLinearAddress(bool accessDirty)
        {
            using IdentityRam ram = new(4, 48, accessDirty);
            Vcpu cpu = ram.Cpu;
            cpu.Mode = GuestPagingMode.Pae;
            ram.Write(0x40_0000, 0x20001);

            // Read-only in the EPT: the load is a read even with EPT A/D on (SDM 29.3.3.2).
            ram.Domain.HostP2m.SetEntry(0x400, (ram.RamHpa >> 12) + 0x400, PageOrder.Size2M, P2mType.RamRw, P2mAccess.R);
            Assert.Equal(GuestStatus.Ok, cpu.LoadCr3(0x40_0000, out _));
            Assert.Equal(0x20001UL, cpu.GetPdpte(0));

            // Not readable: an EPT violation naming the PDPTE, read (bit 0), bits 7 and 8 clear.
            ram.Domain.HostP2m.SetEntry(0x400, (ram.RamHpa >> 12) + 0x400, PageOrder.Size2M, P2mType.RamRw, P2mAccess.N);
            Assert.Equal(GuestStatus.EptViolation, cpu.LoadCr3(0x40_0020, out GuestTranslation f));
            Assert.Equal(0x40_0020UL, f.Gpa);
            Assert.Equal(1UL, f.Ept.Qualification);
            Assert.Equal(0x40_0000UL, cpu.Cr3);               // unchanged

            // The plain setter loads at the next translation, and that translation reports the failure.
            cpu.Cr3 = 0x40_0020;
            GuestTranslation t = cpu.TranslateLinear(0x1000, PageFaultErrorCode.None);
            Assert.Equal(GuestStatus.EptViolation, t.Status);
            Assert.Equal(1UL, t.Ept.Qualification);
            Assert.Equal(0x20001UL, cpu.GetPdpte(0));          // the registers kept the last good load
        }

        [Fact]
        public void PaePdpteReservedBit_LazyLoad_ReportsGeneralProtection()
        {
            using IdentityRam ram = new(4, 48, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Mode = GuestPagingMode.Pae;
            ram.Write(0x1018, 0x3001 | (1UL << 7));          // PDPTE3: P with bit 7 (reserved in 8:5)
            cpu.Cr3 = 0x1000;
            GuestTranslation t = cpu.TranslateLinear(0x1000, PageFaultErrorCode.None);
            Assert.Equal(GuestStatus.GeneralProtection, t.Status);
            Assert.Equal(0x1018UL, t.Gpa);
            Assert.Equal(GuestStatus.GeneralProtection, cpu.LoadPdptes(out _));
            Assert.Throws<ArgumentOutOfRangeException>(() => cpu.GetPdpte(4));

            // GetPageFromGva reports it as the #GP it is (the emulator raises vector 13).
            using GuestPage page = cpu.GetPageFromGva(0x1000, AccessKind.Read);
            Assert.Equal(GuestPageStatus.NonCanonical, page.Status);
            Assert.Equal(GuestStatus.GeneralProtection, page.Translation.Status);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// The 2D walk of <see cref="Vcpu.TranslateLinear"/>: every guest paging-structure read, every
    /// A/D write and the final access go through the vCPU's EPT view (docs/model/ept.md §1.5; SDM Vol. 3C
    /// 29.3.3.2 and table 28-7). Exact exit qualifications: bits 0-2 the access, 3-5 the EPT
    /// rights of the GPA (0 when not present), 7 = linear address valid, 8 = final translation
    /// (1) or guest paging-structure access (0). With EPTP A/D every paging-structure access is a
    /// write and reports bits 0 and 1.
    /// </summary>
    public sealed partial class TwoDimensionalWalkTests
    {
        private const ulong Gla = TwoDimensionalGuest.Gla;
        private const ulong QualRead = 0x1, QualWrite = 0x2, QualFetch = 0x4;
        private const ulong QualR = 0x8, QualW = 0x10, QualX = 0x20;
        private const ulong QualGlaValid = 0x80, QualFinal = 0x100;

        // EPT A/D off: a refused A/D write on a guest paging entry reports a read and a write (bits 0
        // and 1), as kvm-unit-tests' ept_access_test_paddr_*_ad_disabled expect.
        private const ulong QualAdDisabled = QualRead | QualWrite;
        private const PageFaultErrorCode Sr = PageFaultErrorCode.None;
        private const PageFaultErrorCode Sw = PageFaultErrorCode.Write;
        private const PageFaultErrorCode Sx = PageFaultErrorCode.InstructionFetch;
        private const PageFaultErrorCode Ur = PageFaultErrorCode.User;
        private const PageFaultErrorCode Uw = PageFaultErrorCode.User | PageFaultErrorCode.Write;
        private const PageFaultErrorCode Ux = PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch;

        public static TheoryData<int, bool, PageFaultErrorCode> LevelsAdAccesses()
        {
            TheoryData<int, bool, PageFaultErrorCode> data = new();
            foreach (int level in new[] { 4, 3, 2, 1 })
            {
                foreach (bool ad in new[] { false, true })
                {
                    foreach (PageFaultErrorCode pfec in new[] { Sr, Uw, Ux })
                    {
                        data.Add(level, ad, pfec);
                    }
                }
            }

            return data;
        }

        [Theory]
        [MemberData(nameof(LevelsAdAccesses))]
        public void TableWithoutEptRead_ViolationOnThePagingStructureRead(int level, bool ad, PageFaultErrorCode pfec)
        {
            using TwoDimensionalGuest g = new(ad);
            g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.N);
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, pfec);

            // The paging-structure access is a read (read+write with EPTP A/D) whatever the
            // instruction does; access N leaves rwx = 000, an EPT "not present": bits 3-5 = 0.
            AssertEptViolation(r, g.EntryGpa(level), level, (ad ? QualRead | QualWrite : QualRead) | QualGlaValid);
            Assert.Equal(1, r.Ept.Level);
            Assert.Equal(before, g.Entries());
        }

        [Theory]
        [InlineData(false, 4)]
        [InlineData(false, 1)]
        [InlineData(true, 3)]
        [InlineData(true, 2)]
        public void TableExecuteOnlyInEpt_RightsBitsShowX(bool ad, int level)
        {
            using TwoDimensionalGuest g = new(ad);
            g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.X);

            GuestTranslation r = g.Walk(Gla, Sr);

            AssertEptViolation(r, g.EntryGpa(level), level, (ad ? QualRead | QualWrite : QualRead) | QualX | QualGlaValid);
        }

        [Theory]
        [InlineData(Sr)]
        [InlineData(Ur)]
        [InlineData(Sx)]
        [InlineData(Ux)]
        public void ReadOnlyTables_AccessedAlreadySet_NeedOnlyEptRead(PageFaultErrorCode pfec)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: Pte.Accessed);
            for (int level = 4; level >= 1; level--)
            {
                g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.R);
            }

            ulong[] before = g.Entries();
            GuestTranslation r = g.Walk(Gla, pfec);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(g.FinalGpa, r.Gpa);
            Assert.Equal(g.FinalHpa, r.Hpa);
            Assert.Equal(1, r.Level);
            Assert.Equal(before, g.Entries());
        }

        [Fact]
        public void ReadOnlyTables_WriteWithAccessedAndDirtyAlreadySet_Succeeds()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: Pte.Accessed);
            g.WriteEntry(1, g.ReadEntry(1) | Pte.Dirty);
            for (int level = 4; level >= 1; level--)
            {
                g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.RX);
            }

            ulong[] before = g.Entries();
            GuestTranslation r = g.Walk(Gla, Uw);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(g.FinalGpa, r.Gpa);
            Assert.Equal(before, g.Entries());
        }

        [Theory]
        [InlineData(4)]
        [InlineData(3)]
        [InlineData(2)]
        [InlineData(1)]
        public void ReadOnlyTable_AccessedClear_ViolationOnTheAccessedWrite(int level)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.R);
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, Sr);

            // The read succeeded (EPT R); setting A is a write that EPT denies: bits 0, 1 (A/D off) and 3, 7.
            AssertEptViolation(r, g.EntryGpa(level), level, QualAdDisabled | QualR | QualGlaValid);

            // A is set top-down: the entries above the refused one have it, it and those below not.
            ulong[] after = g.Entries();
            for (int l = 4; l >= 1; l--)
            {
                ulong expected = l > level ? before[4 - l] | Pte.Accessed : before[4 - l];
                Assert.Equal(expected, after[4 - l]);
            }
        }

        [Fact]
        public void ReadOnlyTypeTable_AccessedClear_RightsBitsShowRX()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.PtGfn, g.RamMfn + TwoDimensionalGuest.PtGfn, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RWX);

            GuestTranslation r = g.Walk(Gla, Ux);

            AssertEptViolation(r, g.EntryGpa(1), 1, QualAdDisabled | QualR | QualX | QualGlaValid);
        }

        [Fact]
        public void ReadOnlyLeafTable_WriteNeedsDirty_4K()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: Pte.Accessed);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.R);
            ulong[] before = g.Entries();

            // Reads and fetches need no update.
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Ur).Status);
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Sx).Status);

            // A write must set D in the PTE: an EPT write to the PT page.
            GuestTranslation r = g.Walk(Gla, Uw);
            AssertEptViolation(r, g.EntryGpa(1), 1, QualAdDisabled | QualR | QualGlaValid);
            Assert.Equal(before, g.Entries());

            // With D already set the same write goes through.
            g.WriteEntry(1, before[3] | Pte.Dirty);
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Uw).Status);
        }

        [Fact]
        public void ReadOnlyLeafTable_WriteNeedsDirty_2M()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: Pte.Accessed, leafLevel: 2);
            g.SetAccess(0, TwoDimensionalGuest.PdGfn, P2mAccess.R);

            GuestTranslation ok = g.Walk(Gla, Sr);
            Assert.Equal(GuestStatus.Ok, ok.Status);
            Assert.Equal(2, ok.Level);
            Assert.Equal(TwoDimensionalGuest.Leaf2M | (Gla & 0x1F_FFFF), ok.Gpa);

            GuestTranslation r = g.Walk(Gla, Sw);
            AssertEptViolation(r, g.EntryGpa(2), 2, QualAdDisabled | QualR | QualGlaValid);
        }

        [Theory]
        [InlineData(4)]
        [InlineData(1)]
        public void EptpAccessDirty_PagingStructureReadsAreWrites(int level)
        {
            // The same read-only table with every A/D already set: fine without EPTP A/D ...
            using (TwoDimensionalGuest plain = new(ad: false))
            {
                plain.BuildTables(extra: Pte.Accessed | Pte.Dirty);
                plain.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.R);
                Assert.Equal(GuestStatus.Ok, plain.Walk(Gla, Sr).Status);
            }

            // ... but with it the read itself is a write (SDM: bits 0 and 1 both set).
            using TwoDimensionalGuest g = new(ad: true);
            g.BuildTables(extra: Pte.Accessed | Pte.Dirty);
            g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.R);
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, Sr);

            AssertEptViolation(r, g.EntryGpa(level), level, QualRead | QualWrite | QualR | QualGlaValid);
            Assert.Equal(before, g.Entries());
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void AllTablesWritable_WalkSucceeds_WithOrWithoutEptpAccessDirty(bool ad)
        {
            using TwoDimensionalGuest g = new(ad);
            GuestTranslation r = g.Walk(Gla, Uw);
            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(g.FinalGpa, r.Gpa);
            Assert.Equal(g.FinalHpa, r.Hpa);
            Assert.Equal(EptStatus.Ok, r.Ept.Status);
            Assert.Equal(g.FinalHpa, r.Ept.Hpa);
        }

        [Theory]
        [InlineData(false, Sw, P2mAccess.R, QualWrite | QualR)]
        [InlineData(false, Sr, P2mAccess.N, QualRead)]
        [InlineData(false, Sx, P2mAccess.RW, QualFetch | QualR | QualW)]
        [InlineData(false, Ux, P2mAccess.RW, QualFetch | QualR | QualW)]
        [InlineData(false, Uw, P2mAccess.RX, QualWrite | QualR | QualX)]
        [InlineData(false, Ur, P2mAccess.X, QualRead | QualX)]
        [InlineData(true, Sw, P2mAccess.R, QualWrite | QualR)]
        [InlineData(true, Ur, P2mAccess.N, QualRead)]
        [InlineData(true, Sx, P2mAccess.RW, QualFetch | QualR | QualW)]
        public void FinalAccess_EptViolation_Bits7And8(bool ad, PageFaultErrorCode pfec, P2mAccess dataAccess, ulong qual)
        {
            using TwoDimensionalGuest g = new(ad);
            g.SetAccess(0, TwoDimensionalGuest.DataGfn, dataAccess);
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, pfec);

            // The final access is reported as the access itself (never as a paging-structure
            // write, EPTP A/D or not), at the final GPA, with the guest leaf level.
            AssertEptViolation(r, g.FinalGpa, 1, qual | QualGlaValid | QualFinal);
            Assert.Equal(1, r.Ept.Level);

            // The stage-1 walk completed before the final access: A everywhere, D on the leaf of a write.
            ulong[] after = g.Entries();
            for (int i = 0; i < 4; i++)
            {
                ulong set = Pte.Accessed | (i == 3 && (pfec & PageFaultErrorCode.Write) != 0 ? Pte.Dirty : 0);
                Assert.Equal(before[i] | set, after[i]);
            }
        }

        [Fact]
        public void FinalAccess_AllowedByAccessOfTheView_ExecuteOnlyData()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.DataGfn, P2mAccess.X);
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Ux).Status);
            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Sx).Status);
        }

        [Theory]
        [InlineData(4)]
        [InlineData(2)]
        [InlineData(1)]
        public void PagingStructureEptMisconfig_QualificationZero(int level)
        {
            using TwoDimensionalGuest g = new(ad: false);

            // Memory type 2 is reserved in an EPT leaf (docs/model/ept.md §1.4 rule 7).
            g.PokeEptLeaf(TwoDimensionalGuest.TableGfn(level), e => (e & ~0x38UL) | (2UL << 3));
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, Uw);

            Assert.Equal(GuestStatus.EptMisconfig, r.Status);
            Assert.Equal(g.EntryGpa(level), r.Gpa);
            Assert.Equal(level, r.Level);
            Assert.Equal(EptStatus.Misconfig, r.Ept.Status);
            Assert.Equal(0UL, r.Ept.Qualification);
            Assert.Equal(0UL, r.Hpa);
            Assert.Equal(PageFaultErrorCode.None, r.ErrorCode);
            Assert.Equal(before, g.Entries());
        }

        [Fact]
        public void PagingStructureEptMisconfig_WriteWithoutRead()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.PokeEptLeaf(TwoDimensionalGuest.Pml4Gfn, e => (e & ~7UL) | 2UL);

            GuestTranslation r = g.Walk(Gla, Sr);

            Assert.Equal(GuestStatus.EptMisconfig, r.Status);
            Assert.Equal(g.EntryGpa(4), r.Gpa);
            Assert.Equal(0UL, r.Ept.Qualification);
        }

        [Fact]
        public void FinalAccessEptMisconfig_QualificationZero()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.PokeEptLeaf(TwoDimensionalGuest.DataGfn, e => e | (7UL << 3));

            GuestTranslation r = g.Walk(Gla, Sr);

            Assert.Equal(GuestStatus.EptMisconfig, r.Status);
            Assert.Equal(g.FinalGpa, r.Gpa);
            Assert.Equal(1, r.Level);
            Assert.Equal(EptStatus.Misconfig, r.Ept.Status);
            Assert.Equal(0UL, r.Ept.Qualification);
        }

        [Fact]
        public void TableInAnEptHole_ViolationNotPresent()
        {
            using TwoDimensionalGuest g = new(ad: false);
            const ulong HoleGfn = 0x4_0000;
            g.WriteEntry(4, (HoleGfn << 12) | Pte.Present | Pte.Writable | Pte.User);

            GuestTranslation r = g.Walk(Gla, Sw);

            ulong gpa = (HoleGfn << 12) | (TwoDimensionalGuest.Index(Gla, 3) * 8);
            AssertEptViolation(r, gpa, 3, QualRead | QualGlaValid);
            Assert.Equal(g.Domain.HostP2m.Translate(gpa, AccessKind.Read).Level, r.Ept.Level);
        }

        [Fact]
        public void TableInDeviceMemoryOutsideHostMemory_ReadsAsAllOnes_ReservedBitFault()
        {
            using TwoDimensionalGuest g = new(ad: false);
            ulong deviceMfn = (ulong)g.Memory.FrameCount + 0x100;
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.PdGfn, deviceMfn, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);

            GuestTranslation r = g.Walk(Gla, Uw);

            // All ones: present, with bits 51:48 (reserved at MAXPHYADDR 48) set.
            Assert.Equal(GuestStatus.PageFault, r.Status);
            Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.Reserved, r.ErrorCode);
            Assert.Equal(2, r.Level);
        }

        [Theory]
        [InlineData(Sr, QualRead)]
        [InlineData(Sw, QualWrite)]
        [InlineData(Ux, QualFetch)]
        public void Flat_LinearIsPhysical_BeyondTheEptWidthIsAFinalViolation(PageFaultErrorCode pfec, ulong qual)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.Cpu.Mode = GuestPagingMode.Flat;

            GuestTranslation ok = g.Walk(0x5123, pfec);
            Assert.Equal(GuestStatus.Ok, ok.Status);
            Assert.Equal(0x5123UL, ok.Gpa);
            Assert.Equal(((g.RamMfn + 5) << 12) | 0x123, ok.Hpa);
            Assert.Equal(0, ok.Level);

            // A GFN nothing maps: EPT not present, for the final access.
            GuestTranslation hole = g.Walk(0x4000_0123, pfec);
            AssertEptViolation(hole, 0x4000_0123, 0, qual | QualGlaValid | QualFinal);

            // Beyond 2^48: not present at the top level, never an exception.
            GuestTranslation wide = g.Walk(1UL << 48, pfec);
            AssertEptViolation(wide, 1UL << 48, 0, qual | QualGlaValid | QualFinal);
            Assert.Equal(4, wide.Ept.Level);
            Assert.Equal(GuestStatus.EptViolation, g.Walk(ulong.MaxValue, pfec).Status);
        }

        [Fact]
        public void Batch_MixOfOutcomes_EqualsOneByOne()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.DataGfn, P2mAccess.R);
            ulong otherSlotGla = Gla ^ (1UL << 21);       // another PDE slot: not present
            ulong[] glas = [Gla, otherSlotGla, 0x8000_0000_0000, Gla + 8, Gla ^ (1UL << 39), Gla];
            foreach (PageFaultErrorCode pfec in new[] { Sr, Sw, Ux })
            {
                GuestTranslation[] batch = new GuestTranslation[glas.Length];
                Assert.Equal(glas.Length, g.Cpu.TranslateLinearBatch(glas, pfec, batch));
                for (int i = 0; i < glas.Length; i++)
                {
                    Assert.Equal(g.Cpu.TranslateLinear(glas[i], pfec), batch[i]);
                }
            }
        }

        private static void AssertEptViolation(GuestTranslation r, ulong gpa, int level, ulong qualification)
        {
            Assert.Equal(GuestStatus.EptViolation, r.Status);
            Assert.Equal($"0x{gpa:X}", $"0x{r.Gpa:X}");
            Assert.Equal(level, r.Level);
            Assert.Equal(EptStatus.Violation, r.Ept.Status);
            Assert.Equal($"0x{qualification:X}", $"0x{r.Ept.Qualification:X}");
            Assert.Equal(0UL, r.Hpa);
            Assert.Equal(PageFaultErrorCode.None, r.ErrorCode);
        }
    }
}

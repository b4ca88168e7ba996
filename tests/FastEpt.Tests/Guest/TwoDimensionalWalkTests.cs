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
    public sealed class TwoDimensionalWalkTests
    {
        private const ulong Gla = TwoDimensionalGuest.Gla;
        private const ulong QualRead = 0x1, QualWrite = 0x2, QualFetch = 0x4;
        private const ulong QualR = 0x8, QualW = 0x10, QualX = 0x20;
        private const ulong QualGlaValid = 0x80, QualFinal = 0x100;
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

            // The read succeeded (EPT R); setting A is a write that EPT denies: bits 1 and 3, 7.
            AssertEptViolation(r, g.EntryGpa(level), level, QualWrite | QualR | QualGlaValid);

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

            AssertEptViolation(r, g.EntryGpa(1), 1, QualWrite | QualR | QualX | QualGlaValid);
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
            AssertEptViolation(r, g.EntryGpa(1), 1, QualWrite | QualR | QualGlaValid);
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
            AssertEptViolation(r, g.EntryGpa(2), 2, QualWrite | QualR | QualGlaValid);
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
            AssertEptViolation(r, g.EntryGpa(1), 1, QualWrite | QualR | QualGlaValid);

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

        [Theory]
        [InlineData(1, Sw)]
        [InlineData(1, Sr)]
        [InlineData(2, Uw)]
        [InlineData(2, Ux)]
        [InlineData(3, Ur)]
        [InlineData(3, Sw)]
        public void SuccessfulWalk_SetsAccessedAndDirtyExactly(int leafLevel, PageFaultErrorCode pfec)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: 0, leafLevel);

            // Neighbours in every table, which must stay as they are.
            for (int level = 4; level >= leafLevel; level--)
            {
                ulong neighbour = (TwoDimensionalGuest.TableGfn(level) << 12) | (((TwoDimensionalGuest.Index(Gla, level) + 1) & 511) * 8);
                g.WriteGuest(neighbour, 0x7777_0000 | Pte.Present | Pte.Writable);
            }

            ulong[][] before = g.TableFrames();
            GuestTranslation r = g.Walk(Gla, pfec);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(leafLevel, r.Level);
            ulong[][] after = g.TableFrames();
            for (int level = 4; level >= 1; level--)
            {
                for (int s = 0; s < 512; s++)
                {
                    ulong expected = before[4 - level][s];
                    if (level >= leafLevel && (ulong)s == TwoDimensionalGuest.Index(Gla, level))
                    {
                        expected |= Pte.Accessed;
                        if (level == leafLevel && (pfec & PageFaultErrorCode.Write) != 0)
                        {
                            expected |= Pte.Dirty;
                        }
                    }

                    Assert.True(expected == after[4 - level][s], $"level {level} slot {s}: expected 0x{expected:X}, found 0x{after[4 - level][s]:X}");
                }
            }
        }

        [Fact]
        public void TablePageRemappedInEpt_AccessedLandsInTheMappedFrame()
        {
            using TwoDimensionalGuest g = new(ad: false);
            ulong other = g.Memory.AllocateFrame();
            g.Memory.Frame(g.RamMfn + TwoDimensionalGuest.PtGfn).CopyTo(g.Memory.Frame(other));
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.PtGfn, other, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ulong slot = TwoDimensionalGuest.Index(Gla, 1) * 8;
            ulong pte = g.Memory.ReadUInt64((other << 12) + slot);

            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Sw).Status);

            Assert.Equal(pte | Pte.Accessed | Pte.Dirty, g.Memory.ReadUInt64((other << 12) + slot));
            Assert.Equal(pte, g.Memory.ReadUInt64(((g.RamMfn + TwoDimensionalGuest.PtGfn) << 12) + slot));
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void PagingWriteBit_LetsTheWalkersAccessedWriteThrough(bool ad)
        {
            // docs/model/ept.md §1.5 / 2.2: A/D writes by the walker count as writes "except where pw permits
            // them"; r_pw gives a read-only page the paging-write bit on a CPU that has it.
            using TwoDimensionalGuest g = new(ad, pagingWrite: true);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.R_PW);
            ulong epte = g.Memory.ReadUInt64(g.EptLeafHpa(TwoDimensionalGuest.PtGfn));
            Assert.Equal(1UL, epte & 7);                 // r only ...
            Assert.NotEqual(0UL, epte & (1UL << 58));    // ... with paging-write (docs/model/ept.md §1.1, 2.3)
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, Sw);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(before[3] | Pte.Accessed | Pte.Dirty, g.ReadEntry(1));
        }

        [Fact]
        public void PagingWriteBit_WithoutTheCpuFeature_RpwIsJustRead()
        {
            using TwoDimensionalGuest g = new(ad: false, pagingWrite: false);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.R_PW);

            GuestTranslation r = g.Walk(Gla, Sr);

            AssertEptViolation(r, g.EntryGpa(1), 1, QualWrite | QualR | QualGlaValid);
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

    /// <summary>
    /// A domain with 4 MiB of guest RAM (GFN g → MFN RamMfn + g, 4K RamRw RWX in the host p2m),
    /// a 4-level stage-1 hierarchy at GFNs 0x10..0x13 mapping <see cref="Gla"/> to data GFN 0x20,
    /// and vCPU 0 in LongMode4 on it (WP = NXE = 1).
    /// </summary>
    internal sealed class TwoDimensionalGuest : IDisposable
    {
        public const ulong Gla = 0x0000_1234_5678_9ABC;
        public const ulong Pml4Gfn = 0x10, PdptGfn = 0x11, PdGfn = 0x12, PtGfn = 0x13, DataGfn = 0x20;
        public const ulong Leaf2M = 0x20_0000, Leaf1G = 0;
        public const ulong RamFrames = 0x400;

        public TwoDimensionalGuest(bool ad, bool pagingWrite = false)
        {
            Memory = new HostMemory(0x1000L * 4096);
            Domain = new Domain(Memory, new DomainOptions { AltViews = 2, P2m = new P2mOptions { AccessDirty = ad, PagingWriteSupported = pagingWrite } });
            RamMfn = Memory.AllocateFrames((long)RamFrames);
            for (ulong g = 0; g < RamFrames; g++)
            {
                Domain.HostP2m.SetEntry(g, RamMfn + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            BuildTables(extra: 0);
            Cpu.Mode = GuestPagingMode.LongMode4;
            Cpu.Cr3 = Pml4Gfn << 12;
            Cpu.Wp = true;
            Cpu.Nxe = true;
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamMfn { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        public ulong FinalGpa { get; private set; }

        public ulong FinalHpa => (Domain.HostP2m.GetEntry(FinalGpa >> 12).Mfn << 12) | (FinalGpa & 0xFFF);

        public static ulong TableGfn(int level) => level switch
        {
            4 => Pml4Gfn,
            3 => PdptGfn,
            2 => PdGfn,
            1 => PtGfn,
            _ => throw new ArgumentOutOfRangeException(nameof(level)),
        };

        public static ulong Index(ulong gla, int level) => (gla >> (12 + (9 * (level - 1)))) & 511;

        public ulong EntryGpa(int level) => (TableGfn(level) << 12) | (Index(Gla, level) * 8);

        /// <summary>Writes the four tables (P|W|U plus <paramref name="extra"/>) down to a leaf at <paramref name="leafLevel"/>.</summary>
        public void BuildTables(ulong extra, int leafLevel = 1)
        {
            for (int level = 4; level >= 1; level--)
            {
                Memory.Frame(RamMfn + TableGfn(level)).Clear();
            }

            const ulong Flags = Pte.Present | Pte.Writable | Pte.User;
            for (int level = 4; level > leafLevel; level--)
            {
                WriteEntry(level, (TableGfn(level - 1) << 12) | Flags | extra);
            }

            switch (leafLevel)
            {
                case 1:
                    WriteEntry(1, (DataGfn << 12) | Flags | extra);
                    FinalGpa = (DataGfn << 12) | (Gla & 0xFFF);
                    break;
                case 2:
                    WriteEntry(2, Leaf2M | Pte.PageSize | Flags | extra);
                    FinalGpa = Leaf2M | (Gla & 0x1F_FFFF);
                    break;
                default:
                    WriteEntry(3, Leaf1G | Pte.PageSize | Flags | extra);
                    FinalGpa = Leaf1G | (Gla & 0x3FFF_FFFF);
                    break;
            }

            // The data page of a 1G leaf lies outside the 4 MiB of RAM: give it a frame of its own.
            if (!Domain.HostP2m.GetEntry(FinalGpa >> 12).IsMapped)
            {
                ulong extraMfn = Memory.AllocateFrame();
                Domain.HostP2m.SetEntry(FinalGpa >> 12, extraMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }
        }

        public ulong ReadEntry(int level) => ReadGuest(EntryGpa(level));

        public void WriteEntry(int level, ulong value) => WriteGuest(EntryGpa(level), value);

        public ulong ReadGuest(ulong gpa) => Memory.ReadUInt64(((RamMfn + (gpa >> 12)) << 12) | (gpa & 0xFFF));

        public void WriteGuest(ulong gpa, ulong value) => Memory.WriteUInt64(((RamMfn + (gpa >> 12)) << 12) | (gpa & 0xFFF), value);

        /// <summary>The four entries of the walk, PML4E first (as guest RAM holds them at the host's GFN → MFN).</summary>
        public ulong[] Entries() => [ReadEntry(4), ReadEntry(3), ReadEntry(2), ReadEntry(1)];

        /// <summary>The four table frames, PML4 first.</summary>
        public ulong[][] TableFrames()
        {
            ulong[][] frames = new ulong[4][];
            for (int level = 4; level >= 1; level--)
            {
                frames[4 - level] = new ulong[512];
                for (int s = 0; s < 512; s++)
                {
                    frames[4 - level][s] = ReadGuest((TableGfn(level) << 12) | ((ulong)s * 8));
                }
            }

            return frames;
        }

        public void SetAccess(int view, ulong gfn, P2mAccess access) => Assert.Equal(P2mStatus.Ok, Domain.Altp2m.SetMemAccess(view, gfn, access));

        /// <summary>Rewrites the host p2m's 4K leaf entry of <paramref name="gfn"/> in place (live tables, no API).</summary>
        public void PokeEptLeaf(ulong gfn, Func<ulong, ulong> change)
        {
            ulong hpa = EptLeafHpa(gfn);
            Memory.WriteUInt64(hpa, change(Memory.ReadUInt64(hpa)));
        }

        /// <summary>Where the host p2m's 4K leaf entry of <paramref name="gfn"/> lies in host memory.</summary>
        public ulong EptLeafHpa(ulong gfn)
        {
            const ulong MfnMask = 0x000F_FFFF_FFFF_F000;
            P2m p2m = Domain.HostP2m;
            ulong table = p2m.RootMfn;
            for (int level = p2m.Levels; level > 1; level--)
            {
                ulong e = Memory.ReadUInt64((table << 12) + (((gfn >> (9 * (level - 1))) & 511) * 8));
                Assert.True((e & 7) != 0 && (e & 0x80) == 0, $"EPT level {level} of GFN 0x{gfn:X} is not a table pointer");
                table = (e & MfnMask) >> 12;
            }

            return (table << 12) + ((gfn & 511) * 8);
        }

        /// <summary>
        /// <see cref="Vcpu.TranslateLinear"/>, checked against <see cref="Vcpu.TranslateLinearBatch"/>
        /// of the same address right after (the A/D bits the first call set never change an outcome).
        /// </summary>
        public GuestTranslation Walk(ulong gla, PageFaultErrorCode pfec)
        {
            GuestTranslation single = Cpu.TranslateLinear(gla, pfec);
            GuestTranslation[] batch = new GuestTranslation[1];
            Cpu.TranslateLinearBatch([gla], pfec, batch);
            Assert.Equal(single, batch[0]);
            return single;
        }

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }
}

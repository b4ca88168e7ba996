// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    // The scenarios of docs/model/ept.md §1.6 (walks) and 3.9 (set/get, splits, PoD) that apply to one p2m.
    public sealed class P2mScenarioTests : IDisposable
    {
        // 5 GiB of lazily committed host memory: frames up to 0x140000 exist (the spec's 1G case).
        private readonly HostMemory _memory = new(0x150000L << 12);
        private readonly P2m _p2m;

        public P2mScenarioTests() => _p2m = new P2m(_memory);

        public void Dispose()
        {
            _p2m.Dispose();
            _memory.Dispose();
        }

        [Fact]
        public void Eptp_DefaultOptions_RootWbFourLevels()
        {
            Assert.Equal((_p2m.RootMfn << 12) | (3 << 3) | 6, _p2m.Eptp);
            using var ad = new P2m(_memory, new P2mOptions { AccessDirty = true, Levels = 5, AddressBits = 57 });
            Assert.Equal((ad.RootMfn << 12) | (4 << 3) | 6 | 0x40, ad.Eptp);
        }

        [Fact]
        public void SetEntry_Gfn123456789_UsesSpecIndicesAtEachLevel()
        {
            const ulong gfn = 0x1_2345_6789;
            _p2m.SetEntry(gfn, 0x42, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ulong table = _p2m.RootMfn;
            ulong[] expected = [0x24, 0xD1, 0xB3, 0x189];
            for (int i = 0; i < 4; i++)
            {
                ulong pte = _memory.ReadUInt64((table << 12) + expected[i] * 8);
                Assert.True((pte & 7) != 0, $"level {4 - i} slot 0x{expected[i]:X} not present");
                table = (pte & EptEntry.MfnMask) >> 12;
            }

            Assert.Equal(0x42UL, table);
            Assert.Throws<ArgumentOutOfRangeException>("gfn", () => _p2m.SetEntry(1UL << 36, 0x42, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
        }

        [Fact]
        public void SetEntry_NewMiddleEntries_AreXenMiddleEntries()
        {
            using var ad = new P2m(_memory, new P2mOptions { AccessDirty = true });
            ad.SetEntry(0, 0x42, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            EptEntry root0 = TestTables.Read(ad, 0, 4);
            Assert.Equal(0xB800_0000_0000_0107UL, root0.Raw & ~EptEntry.MfnMask);
            // Every other slot of a new table is 0x8000_0000_0000_0000; the root is not pre-filled.
            Assert.Equal(0x8000_0000_0000_0000UL, _memory.ReadUInt64((root0.Mfn << 12) + 8));
            Assert.Equal(0UL, _memory.ReadUInt64((ad.RootMfn << 12) + 8));
        }

        private void MapOne4K(ulong gfn, ulong mfn) => _p2m.SetEntry(gfn, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

        [Theory]
        [InlineData(0b010UL, true)]
        [InlineData(0b110UL, true)]
        [InlineData(0b111UL | (2UL << 3), true)]
        [InlineData(0b111UL | (3UL << 3), true)]
        [InlineData(0b111UL | (7UL << 3), true)]
        [InlineData(0b111UL | (6UL << 3) | (1UL << 51), true)]
        [InlineData(0b111UL | (6UL << 3) | (1UL << 45), false)]
        [InlineData(0b111UL | (6UL << 3) | 0x80, false)]     // bit 7 of a PTE is ignored
        public void Translate_LeafBits_MisconfigAsSdm(ulong low, bool misconfig)
        {
            MapOne4K(0x10, 0x500);
            TestTables.Write(_p2m, 0x10, 1, (0x500UL << 12) | low);
            EptTranslation t = _p2m.Translate(0x10UL << 12, AccessKind.Read);
            Assert.Equal(misconfig ? EptStatus.Misconfig : EptStatus.Ok, t.Status);
            if (misconfig)
            {
                Assert.Equal(1, t.Level);
                Assert.Equal(0UL, t.Qualification);
            }
        }

        [Fact]
        public void Translate_ExecuteOnlyLeaf_MisconfigOnlyWithoutCapability()
        {
            using var noXo = new P2m(_memory, new P2mOptions { ExecuteOnly = false });
            // SetEntry refuses to build it (FastEpt decision); a forged one misconfigures.
            Assert.Throws<ArgumentException>("access", () => noXo.SetEntry(0x10, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.X));
            noXo.SetEntry(0x10, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            TestTables.Write(noXo, 0x10, 1, TestTables.Read(noXo, 0x10, 1).WithRwx(false, false, true).Raw);
            Assert.Equal(EptStatus.Misconfig, noXo.Translate(0x10000, AccessKind.Execute).Status);
            _p2m.SetEntry(0x10, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.X);
            Assert.Equal(EptStatus.Ok, _p2m.Translate(0x10000, AccessKind.Execute).Status);
            EptTranslation read = _p2m.Translate(0x10000, AccessKind.Read);
            Assert.Equal(EptStatus.Violation, read.Status);
            Assert.Equal(0x1UL | (0b100UL << 3), read.Qualification);
        }

        [Fact]
        public void Translate_NonLeafWithEmt7_Misconfig()
        {
            MapOne4K(0x10, 0x500);
            EptEntry pde = TestTables.Read(_p2m, 0x10, 2);
            TestTables.Write(_p2m, 0x10, 2, pde.WithMemoryType(7).Raw);
            EptTranslation t = _p2m.Translate(0x10000, AccessKind.Read);
            Assert.Equal(EptStatus.Misconfig, t.Status);
            Assert.Equal(2, t.Level);
        }

        [Fact]
        public void Translate_Pml4eWithBit7_Misconfig()
        {
            MapOne4K(0x10, 0x500);
            TestTables.Write(_p2m, 0x10, 4, TestTables.Read(_p2m, 0x10, 4).WithSuperPage(true).Raw);
            EptTranslation t = _p2m.Translate(0x10000, AccessKind.Read);
            Assert.Equal(EptStatus.Misconfig, t.Status);
            Assert.Equal(4, t.Level);
        }

        [Fact]
        public void Translate_2MLeafWithBit12_Misconfig()
        {
            _p2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(EptStatus.Ok, _p2m.Translate(0x200000, AccessKind.Read).Status);
            TestTables.Write(_p2m, 0x200, 2, TestTables.Read(_p2m, 0x200, 2).Raw | (1UL << 12));
            EptTranslation t = _p2m.Translate(0x200000, AccessKind.Read);
            Assert.Equal(EptStatus.Misconfig, t.Status);
            Assert.Equal(2, t.Level);
        }

        [Fact]
        public void Translate_1GLeafWithBit29_Misconfig()
        {
            _p2m.SetEntry(0x40000, 0x100000, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(EptStatus.Ok, _p2m.Translate(0x40000UL << 12, AccessKind.Read).Status);
            TestTables.Write(_p2m, 0x40000, 3, TestTables.Read(_p2m, 0x40000, 3).Raw | (1UL << 29));
            EptTranslation t = _p2m.Translate(0x40000UL << 12, AccessKind.Read);
            Assert.Equal(EptStatus.Misconfig, t.Status);
            Assert.Equal(3, t.Level);
        }

        [Fact]
        public void Translate_1GLeafWithout1GSupport_Misconfig()
        {
            using var no1G = new P2m(_memory, new P2mOptions { Support1G = false });
            no1G.SetEntry(0x40000, 0x100000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            // Forge a 1G leaf where the hardware has no 1G support.
            EptEntry pdpte = TestTables.Read(no1G, 0x40000, 3);
            TestTables.Write(no1G, 0x40000, 3, (pdpte.Raw & ~EptEntry.MfnMask) | (0x100000UL << 12) | 0x80 | (6 << 3));
            Assert.Equal(EptStatus.Misconfig, no1G.Translate(0x40000UL << 12, AccessKind.Read).Status);
        }

        [Fact]
        public void Translate_NotPresentEntryWithGarbage_ViolationNotMisconfig()
        {
            MapOne4K(0x10, 0x500);
            TestTables.Write(_p2m, 0x10, 1, 0x7FFF_FFFF_FFFF_FFF8);
            EptTranslation t = _p2m.Translate(0x10000, AccessKind.Write);
            Assert.Equal(EptStatus.Violation, t.Status);
            Assert.Equal(1, t.Level);
            Assert.Equal(0x2UL, t.Qualification);
        }

        [Fact]
        public void Translate_PdpteReadExecuteOnly_WriteViolationQualification0x2A()
        {
            // docs/model/ept.md §1.6: PML4E 111, PDPTE 101, PDE 111, PTE 111, write -> bits 1 and 3|5 = 0x2A.
            MapOne4K(0x10, 0x500);
            TestTables.Write(_p2m, 0x10, 3, TestTables.Read(_p2m, 0x10, 3).WithRwx(true, false, true).Raw);
            EptTranslation t = _p2m.Translate(0x10123, AccessKind.Write);
            Assert.Equal(EptStatus.Violation, t.Status);
            Assert.Equal(0x2AUL, t.Qualification);
            Assert.Equal(1, t.Level);
            EptTranslation r = _p2m.Translate(0x10123, AccessKind.Read);
            Assert.Equal(EptStatus.Ok, r.Status);
            Assert.Equal(0x500123UL, r.Hpa);
        }

        [Fact]
        public void Translate_EmptyP2m_ViolationAtTopLevel()
        {
            EptTranslation t = _p2m.Translate(0x1234_5678, AccessKind.Read | AccessKind.Execute);
            Assert.Equal(EptStatus.Violation, t.Status);
            Assert.Equal(4, t.Level);
            Assert.Equal(0x5UL, t.Qualification);
        }

        [Fact]
        public void Translate_TablePointerOutsideHostMemory_MisconfigNotWildRead()
        {
            MapOne4K(0x10, 0x500);
            EptEntry pde = TestTables.Read(_p2m, 0x10, 2);
            TestTables.Write(_p2m, 0x10, 2, pde.WithMfn((ulong)_memory.FrameCount).Raw);
            EptTranslation t = _p2m.Translate(0x10000, AccessKind.Read);
            Assert.Equal(EptStatus.Misconfig, t.Status);
            Assert.Equal(2, t.Level);
            Assert.False(_p2m.GetEntry(0x10).IsMapped);
        }

        [Fact]
        public void Translate_AccessDirtyOn_WalkSetsAccessedAndDirtyAtomically()
        {
            using var ad = new P2m(_memory, new P2mOptions { AccessDirty = true });
            ad.SetEntry(0x10, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            // Clear A/D everywhere on the path so the walk has to set them.
            for (int level = 4; level >= 1; level--)
            {
                TestTables.Write(ad, 0x10, level, TestTables.Read(ad, 0x10, level).WithAccessed(false).WithDirty(false).Raw);
            }

            Assert.Equal(EptStatus.Ok, ad.Translate(0x10000, AccessKind.Read).Status);
            for (int level = 4; level >= 1; level--)
            {
                Assert.True(TestTables.Read(ad, 0x10, level).Accessed, $"A at level {level}");
            }

            Assert.False(TestTables.Read(ad, 0x10, 1).Dirty);
            Assert.Equal(EptStatus.Ok, ad.Translate(0x10000, AccessKind.Write).Status);
            Assert.True(TestTables.Read(ad, 0x10, 1).Dirty);
            // Without A/D enabled the walk leaves the bits alone.
            MapOne4K(0x10, 0x500);
            TestTables.Write(_p2m, 0x10, 1, TestTables.Read(_p2m, 0x10, 1).WithAccessed(false).Raw);
            _p2m.Translate(0x10000, AccessKind.Write);
            Assert.False(TestTables.Read(_p2m, 0x10, 1).Accessed);
        }

        [Fact]
        public void SetEntry_SpecArgumentCases_RejectOrAccept()
        {
            Assert.Throws<ArgumentException>("gfn", () => _p2m.SetEntry(0x201, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX));
            Assert.Throws<ArgumentException>("mfn", () => _p2m.SetEntry(0x200, 0x80001, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX));
            Assert.Throws<ArgumentOutOfRangeException>("order", () => _p2m.SetEntry(0x200, 0x80000, (PageOrder)10, P2mType.RamRw, P2mAccess.RWX));
            Assert.Throws<ArgumentOutOfRangeException>("gfn", () => _p2m.SetEntry(1UL << 36, 0x80000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            _p2m.SetEntry(0x200, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            Assert.Equal(P2mType.PopulateOnDemand, _p2m.GetEntry(0x200).Type);
        }

        [Fact]
        public void GetEntry_EmptyWithMaxMapped0x1000_HoleOrdersAsXen()
        {
            _p2m.MaxMappedPfn = 0x1000;
            P2mEntry low = _p2m.GetEntry(0x800);
            Assert.Equal(Mfn.Invalid, low.Mfn);
            Assert.Equal(P2mType.MmioDm, low.Type);
            Assert.Equal(P2mAccess.N, low.Access);
            Assert.True(low.SuppressVe);
            Assert.False(low.IsMapped);
            Assert.Equal(27, low.Order);
            Assert.Equal(18, _p2m.GetEntry(0x200000).Order);
            Assert.Equal(0, _p2m.GetEntry(0x1001).Order);
        }

        [Fact]
        public void GetEntry_2MAnd1GMappings_OffsetMfnAndOrder()
        {
            _p2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(new P2mEntry(0x800AB, P2mType.RamRw, P2mAccess.RWX, true, true, 9), _p2m.GetEntry(0x2AB));
            _p2m.SetEntry(0x40000, 0x100000, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(new P2mEntry(0x101234, P2mType.RamRw, P2mAccess.RWX, true, true, 18), _p2m.GetEntry(0x41234));
        }

        [Fact]
        public void SetEntry_4KInside1G_SplitsAllTheWayWith513TablesAndKeepsFields()
        {
            _p2m.SetEntry(0x40000, 0x100000, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RX);
            EptEntry before = TestTables.Read(_p2m, 0x40000, 3);
            long tables = _p2m.TableFrameCount;
            long frames = _memory.AllocatedFrameCount;
            _p2m.SetEntry(0x40005, 0x999, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(tables + 513, _p2m.TableFrameCount);
            Assert.Equal(frames + 513, _memory.AllocatedFrameCount);
            Assert.Equal(new P2mEntry(0x999, P2mType.RamRw, P2mAccess.RWX, true, true, 0), _p2m.GetEntry(0x40005));
            Assert.Equal(new P2mEntry(0x100006, P2mType.RamRw, P2mAccess.RX, true, true, 0), _p2m.GetEntry(0x40006));
            Assert.Equal(new P2mEntry(0x13FFFF, P2mType.RamRw, P2mAccess.RX, true, true, 0), _p2m.GetEntry(0x7FFFF));
            EptEntry child = TestTables.Read(_p2m, 0x7FFFF, 1);
            Assert.Equal(before.MemoryType, child.MemoryType);
            Assert.Equal(before.IgnorePat, child.IgnorePat);
            Assert.Equal(before.Type, child.Type);
            Assert.Equal(before.Access, child.Access);
            Assert.False(child.SuperPage);
            Assert.Equal(EptStatus.Ok, _p2m.Translate(0x7FFFFUL << 12, AccessKind.Execute).Status);
            Assert.Equal(EptStatus.Violation, _p2m.Translate(0x7FFFFUL << 12, AccessKind.Write).Status);
        }

        [Fact]
        public void SetEntry_4KInside2MWithClearedSve_InheritKeepsSuperpageSve()
        {
            // FastEpt fix (docs/model/README.md §0.3): Xen's split loses suppress_ve=0 under Inherit.
            _p2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Clear);
            _p2m.SetEntry(0x2AB, 0x999, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.False(_p2m.GetEntry(0x2AB).SuppressVe);
            Assert.False(_p2m.GetEntry(0x2AC).SuppressVe);
            _p2m.SetEntry(0x2AB, 0x999, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Set);
            Assert.True(_p2m.GetEntry(0x2AB).SuppressVe);
        }

        [Fact]
        public void SetEntry_2MOverTable_TableFreedAfterReclaimAndNotBefore()
        {
            MapOne4K(0x200, 0x500);
            MapOne4K(0x201, 0x501);
            ulong pt = TestTables.Read(_p2m, 0x200, 2).Mfn;
            long tables = _p2m.TableFrameCount;
            _p2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(tables - 1, _p2m.TableFrameCount);
            Assert.Equal(0x800FFUL, _p2m.GetEntry(0x2FF).Mfn);
            // Readers of other tests may be inside an epoch section for a moment: retry briefly.
            Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(_p2m));
            Assert.False(_memory.IsAllocated(pt));
        }

        [Theory]
        [InlineData(SuppressVe.Clear, 0x0000_0000_0000_0000UL)]
        [InlineData(SuppressVe.Set, 0x8000_0000_0000_0000UL)]
        public void SetEntry_RemovalWithInherit_StoresXenWordAndReadsAsHole(SuppressVe original, ulong stored)
        {
            MapOne4K(0x10, 0x500);
            _p2m.SetEntry(0x10, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, original);
            ulong max = _p2m.MaxMappedPfn;
            _p2m.SetEntry(0x10, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.RWX);
            Assert.Equal(stored, TestTables.Read(_p2m, 0x10, 1).Raw);
            P2mEntry e = _p2m.GetEntry(0x10);
            Assert.Equal((Mfn.Invalid, P2mType.MmioDm, P2mAccess.N, false), (e.Mfn, e.Type, e.Access, e.IsMapped));
            Assert.Equal(max, _p2m.MaxMappedPfn);
            // A removal beyond everything mapped neither builds tables nor raises max_mapped_pfn.
            long tables = _p2m.TableFrameCount;
            _p2m.SetEntry(0x9000000, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            _p2m.SetEntry(0x9000000, Mfn.Invalid, PageOrder.Size4K, P2mType.MmioDm, P2mAccess.N);
            Assert.Equal(tables, _p2m.TableFrameCount);
            Assert.Equal(max, _p2m.MaxMappedPfn);
        }

        [Fact]
        public void GetEntry_Pod2MWithoutAlloc_ReportsPodAndChangesNothing()
        {
            _p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            Assert.Equal(512, _p2m.PodEntryCount);
            Assert.Equal(0xB86F_FFFF_FFFF_F080UL, TestTables.Read(_p2m, 0x400, 2).Raw);
            ulong hash = TestTables.HashTables(_memory);
            Assert.Equal(new P2mEntry(Mfn.Invalid, P2mType.PopulateOnDemand, P2mAccess.N, true, true, 9), _p2m.GetEntry(0x4AB));
            Assert.Equal(hash, TestTables.HashTables(_memory));
            Assert.Equal(EptStatus.Violation, _p2m.Translate(0x4ABUL << 12, AccessKind.Read).Status);
        }

        [Fact]
        public void GetEntry_Pod2MWithAllocAnd2MInCache_MapsTheCachedPage()
        {
            _p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            _p2m.Pod.AddPage(0x90000, PageOrder.Size2M);
            Assert.Equal(new P2mEntry(0x900AB, P2mType.RamRw, P2mAccess.RWX, true, true, 9), _p2m.GetEntry(0x4AB, P2mQuery.Alloc));
            Assert.Equal(0, _p2m.PodEntryCount);
            Assert.Equal(0, _p2m.Pod.Count2M);
            Assert.Equal(EptStatus.Ok, _p2m.Translate(0x4ABUL << 12, AccessKind.Write).Status);
        }

        [Fact]
        public void GetEntry_Pod2MWithOnly4KInCache_RemarksAs4KAndPopulatesOne()
        {
            _p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            _p2m.Pod.AddPage(0x777, PageOrder.Size4K);
            _p2m.Pod.AddPage(0x778, PageOrder.Size4K);
            P2mEntry e = _p2m.GetEntry(0x4AB, P2mQuery.Alloc);
            Assert.Equal(P2mType.RamRw, e.Type);
            Assert.Equal(0, e.Order);
            Assert.Contains(e.Mfn, new ulong[] { 0x777, 0x778 });
            Assert.Equal(511, _p2m.PodEntryCount);
            Assert.Equal(new P2mEntry(Mfn.Invalid, P2mType.PopulateOnDemand, P2mAccess.N, true, true, 0), _p2m.GetEntry(0x4AC));
            Assert.Equal(1, _p2m.Pod.Count4K);
        }

        [Fact]
        public void GetEntry_Pod1GWithAlloc_RemarksAs2MThenPopulates()
        {
            _p2m.SetEntry(0x40000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.RWX);
            Assert.Equal(1L << 18, _p2m.PodEntryCount);
            _p2m.Pod.AddPage(0x90000, PageOrder.Size2M);
            P2mEntry e = _p2m.GetEntry(0x40401, P2mQuery.Alloc);
            Assert.Equal(new P2mEntry(0x90001, P2mType.RamRw, P2mAccess.RWX, true, true, 9), e);
            Assert.Equal((1L << 18) - 512, _p2m.PodEntryCount);
            Assert.Equal(new P2mEntry(Mfn.Invalid, P2mType.PopulateOnDemand, P2mAccess.N, true, true, 9), _p2m.GetEntry(0x40601));
        }

        [Fact]
        public void GetEntry_PodWithEmptyCache_ReadsAsHoleAndKeepsPod()
        {
            _p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            P2mEntry e = _p2m.GetEntry(0x4AB, P2mQuery.Alloc);
            Assert.False(e.IsMapped);
            Assert.Equal(P2mType.MmioDm, e.Type);
            Assert.Equal(P2mType.PopulateOnDemand, _p2m.GetEntry(0x4AB).Type);
        }

        [Fact]
        public void GetEntry_ValidNotPresentSuperpage_ReportedNotHidden()
        {
            // FastEpt fix of the ept_next_level quirk: a 2M paging/MMIO placeholder is an entry.
            _p2m.SetEntry(0x600, Mfn.Invalid, PageOrder.Size2M, P2mType.RamPaged, P2mAccess.RWX);
            Assert.Equal(new P2mEntry(Mfn.Invalid, P2mType.RamPaged, P2mAccess.RWX, true, true, 9), _p2m.GetEntry(0x6AB));
            // A 4K set inside splits it rather than replacing it with an empty table.
            MapOne4K(0x6AB, 0x500);
            Assert.Equal(new P2mEntry(Mfn.Invalid, P2mType.RamPaged, P2mAccess.RWX, true, true, 0), _p2m.GetEntry(0x6AC));
            Assert.Equal(0x500UL, _p2m.GetEntry(0x6AB).Mfn);
        }

        [Fact]
        public void FiveLevels_HighGfn_MapsAndTranslates()
        {
            using var p5 = new P2m(_memory, new P2mOptions { Levels = 5, AddressBits = 57 });
            ulong gfn = (1UL << 44) + 0x12345;
            p5.SetEntry(gfn, 0x500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x500UL, p5.GetEntry(gfn).Mfn);
            EptTranslation t = p5.Translate((gfn << 12) | 0xABC, AccessKind.Read);
            Assert.Equal(EptStatus.Ok, t.Status);
            Assert.Equal(0x500ABCUL, t.Hpa);
            Assert.Equal(EptStatus.Violation, p5.Translate(1UL << 55, AccessKind.Read).Status);
            Assert.Equal(5, p5.Translate(1UL << 55, AccessKind.Read).Level);
            Assert.Equal(2, p5.Translate((gfn + 0x200) << 12, AccessKind.Read).Level);
        }

        [Fact]
        public void TranslateBatch_SameAsTranslateForEachAddress()
        {
            _p2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RX);
            MapOne4K(0x10, 0x500);
            ulong[] gpas = [0x10123, 0x200456, 0x2FF000, 0x300000, 0x0, 0x10FFF];
            var results = new EptTranslation[gpas.Length];
            Assert.Equal(gpas.Length, _p2m.TranslateBatch(gpas, AccessKind.Write, results));
            for (int i = 0; i < gpas.Length; i++)
            {
                Assert.Equal(_p2m.Translate(gpas[i], AccessKind.Write), results[i]);
            }
        }

        [Fact]
        public void Dispose_ReturnsEveryTableFrame()
        {
            long before = _memory.AllocatedFrameCount;
            var p = new P2m(_memory);
            p.SetEntry(0x40000, 0x100000, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            p.SetEntry(0x40005, 0x999, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p.SetEntry(0x40000, 0x100000, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            p.Dispose();
            Assert.Equal(before, _memory.AllocatedFrameCount);
            Assert.Throws<ObjectDisposedException>(() => p.Translate(0, AccessKind.Read));
        }
    }
}

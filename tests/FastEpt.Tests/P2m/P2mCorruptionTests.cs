// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Corrupted tables must never make a reader throw or leave host memory: random bit flips in
    /// live root, middle and leaf tables (seeded, with and without A/D), then deterministic
    /// corruptions whose outcome the SDM fixes (docs/model/ept.md §1.4: misconfiguration rules; API.md:
    /// "table pointers outside host memory give Misconfig").
    /// </summary>
    public sealed partial class P2mCorruptionTests
    {
        private const long GuestFrames = 1L << 18;      // MFNs [0, 1 GiB) back the RAM mappings
        private const long TableBudget = 4096;
        private const int Rounds = 1500;

        // GFNs the fixture maps with 4K, 2M and 1G leaves, in two PML4E slots.
        private const ulong Gfn4K = 0x1000;
        private const ulong Gfn2M = 0x80200;
        private const ulong Gfn1G = 0x40000;
        private const ulong GfnFar = (1UL << 27) + 0x600;

        // ---- Deterministic corruptions ----------------------------------------------------------

        [Theory]
        [InlineData(4, 0)]
        [InlineData(4, 1)]
        [InlineData(4, 0x12345)]
        [InlineData(3, 0)]
        [InlineData(3, 1)]
        [InlineData(2, 0)]
        [InlineData(2, 0x3_0000_0000)]
        public void MiddleEntry_PointsOutsideHostMemory_MisconfigAndHoleWithoutFollowing(int level, ulong framesPastEnd)
        {
            using Fixture f = new Fixture(new P2mOptions());
            ulong hpa = f.SlotHpa(Gfn4K, level);
            ulong pte = f.Memory.ReadUInt64(hpa);
            ulong bad = (ulong)f.Memory.FrameCount + framesPastEnd;   // below 2^34: not a reserved-bit case
            f.Memory.WriteUInt64(hpa, (pte & ~EptEntry.MfnMask) | (bad << 12));

            foreach (AccessKind kind in AllKinds())
            {
                Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, level, 0), f.P2m.Translate((Gfn4K << 12) | 0x10, kind));
            }

            AssertHole(f.P2m.GetEntry(Gfn4K), 9 * (level - 1));
            AssertHole(f.P2m.GetEntry(Gfn4K, P2mQuery.Alloc), 9 * (level - 1));
            f.Memory.WriteUInt64(hpa, pte);
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(4)]
        [InlineData(3)]
        [InlineData(2)]
        public void MiddleEntry_FrameFieldAllOnes_MisconfigAndHole(int level)
        {
            using Fixture f = new Fixture(new P2mOptions());
            ulong hpa = f.SlotHpa(Gfn4K, level);
            ulong pte = f.Memory.ReadUInt64(hpa);
            f.Memory.WriteUInt64(hpa, pte | EptEntry.MfnMask);     // MFN 2^40 - 1

            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, level, 0), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            AssertHole(f.P2m.GetEntry(Gfn4K), 9 * (level - 1));
            f.Memory.WriteUInt64(hpa, pte);
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(51)]
        [InlineData(48)]
        [InlineData(46)]
        public void Pte_ReservedAddressBitSet_MisconfigAtLevel1(int bit)
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, 1, pte => pte | (1UL << bit));
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 1, 0), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            f.AssertDisposesCleanly();
        }

        [Fact]
        public void Pte_AddressBitBelowMaxPhyAddr_IsNotReserved()
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, 1, pte => pte | (1UL << 45));
            Assert.Equal(new EptTranslation(EptStatus.Ok, (1UL << 45) | (Gfn4K << 12) | 0x10, 1, 0), f.P2m.Translate((Gfn4K << 12) | 0x10, AccessKind.Read));
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(7)]
        public void Leaf_ReservedMemoryType_Misconfig(int emt)
        {
            using Fixture f = new Fixture(new P2mOptions());
            ulong SetEmt(ulong pte) => (pte & ~0b0011_1000UL) | ((ulong)emt << 3);
            f.Poke(Gfn4K, 1, SetEmt);
            f.Poke(Gfn2M, 2, SetEmt);
            f.Poke(Gfn1G, 3, SetEmt);
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 1, 0), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 2, 0), f.P2m.Translate(Gfn2M << 12, AccessKind.Read));
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 3, 0), f.P2m.Translate(Gfn1G << 12, AccessKind.Execute));

            // GetEntry is the software view: the p2m fields are intact, so the entry is still mapped.
            Assert.True(f.P2m.GetEntry(Gfn4K).IsMapped);
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(0)]
        [InlineData(1)]
        [InlineData(4)]
        [InlineData(5)]
        [InlineData(6)]
        public void Leaf_ValidMemoryType_Translates(int emt)
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, 1, pte => (pte & ~0b0011_1000UL) | ((ulong)emt << 3));
            Assert.Equal(EptStatus.Ok, f.P2m.Translate(Gfn4K << 12, AccessKind.Read).Status);
            f.AssertDisposesCleanly();
        }

        [Fact]
        public void Pml4e_SuperPageBitSet_MisconfigAtLevel4AndHole()
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, 4, pte => pte | 0b1000_0000);
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 4, 0), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            AssertHole(f.P2m.GetEntry(Gfn4K), 27);
            AssertHole(f.P2m.GetEntry(Gfn1G), 27);
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(4, 0b0000_1000)]    // emt bit in a PML4E
        [InlineData(4, 0b0100_0000)]    // ipat in a PML4E
        [InlineData(3, 0b0011_1000)]    // Xen's emt 7 marker in a non-leaf PDPTE
        [InlineData(2, 0b0100_0000)]    // ipat in a non-leaf PDE
        public void NonLeaf_MemoryTypeOrIgnorePatBits_MisconfigAtThatLevel(int level, ulong bits)
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, level, pte => pte | bits);
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, level, 0), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(2, 12)]     // 2M leaf: bits 20:12 must be zero
        [InlineData(2, 20)]
        [InlineData(3, 12)]     // 1G leaf: bits 29:12 must be zero
        [InlineData(3, 29)]
        public void SuperPage_MisalignedFrame_Misconfig(int level, int bit)
        {
            using Fixture f = new Fixture(new P2mOptions());
            ulong gfn = level == 2 ? Gfn2M : Gfn1G;
            f.Poke(gfn, level, pte => pte | (1UL << bit));
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, level, 0), f.P2m.Translate(gfn << 12, AccessKind.Read));
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(0b010, true)]
        [InlineData(0b110, true)]
        [InlineData(0b100, false)]
        public void Leaf_BadPermissionCombination_Misconfig(ulong rwx, bool executeOnlySupported)
        {
            using Fixture f = new Fixture(new P2mOptions { ExecuteOnly = executeOnlySupported });
            f.Poke(Gfn4K, 1, pte => (pte & ~EptEntry.RwxMask) | rwx);
            foreach (AccessKind kind in AllKinds())
            {
                Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 1, 0), f.P2m.Translate(Gfn4K << 12, kind));
            }

            f.AssertDisposesCleanly();
        }

        [Fact]
        public void Leaf_NotPresentWithEverythingElseSet_ViolationNotMisconfig()
        {
            using Fixture f = new Fixture(new P2mOptions());
            f.Poke(Gfn4K, 1, _ => 0x7FFF_FFFF_FFFF_FFF8);
            Assert.Equal(new EptTranslation(EptStatus.Violation, 0, 1, 0b001), f.P2m.Translate(Gfn4K << 12, AccessKind.Read));
            f.Poke(Gfn4K, 1, _ => 0xFFFF_FFFF_FFFF_FFF8);
            Assert.Equal(new EptTranslation(EptStatus.Violation, 0, 1, 0b100), f.P2m.Translate(Gfn4K << 12, AccessKind.Execute));
            Assert.False(f.P2m.GetEntry(Gfn4K).IsMapped);   // type 63 and access 15 are outside the enums
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(63, 7)]
        [InlineData(16, 7)]
        [InlineData(0, 15)]
        [InlineData(0, 11)]
        public void Leaf_TypeOrAccessOutsideEnum_GetEntryHoleButHardwareIgnoresIt(int type, int access)
        {
            using Fixture f = new Fixture(new P2mOptions());
            ulong Rewrite(ulong pte) => (pte & ~(EptEntry.TypeMask | EptEntry.AccessMask))
                                        | ((ulong)type << EptEntry.TypeShift) | ((ulong)access << EptEntry.AccessShift);
            f.Poke(Gfn4K, 1, Rewrite);
            f.Poke(Gfn2M, 2, Rewrite);
            AssertHole(f.P2m.GetEntry(Gfn4K), 0);
            AssertHole(f.P2m.GetEntry(Gfn2M + 5), 9);

            // Bits 57:52 and 62:59 are software fields the CPU ignores.
            Assert.Equal(new EptTranslation(EptStatus.Ok, (Gfn4K << 12) | 0x10, 1, 0), f.P2m.Translate((Gfn4K << 12) | 0x10, AccessKind.Read));
            Assert.Equal(EptStatus.Ok, f.P2m.Translate((Gfn2M + 5) << 12, AccessKind.Read).Status);
            f.AssertDisposesCleanly();
        }

        [Theory]
        [InlineData(3)]
        [InlineData(2)]
        public void MiddleEntry_PointsBackToTheRoot_WalkTerminates(int level)
        {
            // A cycle: the walk still ends after Levels steps, reading only host memory.
            using Fixture f = new Fixture(new P2mOptions { AccessDirty = true });
            f.Poke(Gfn4K, level, pte => (pte & ~EptEntry.MfnMask) | (f.P2m.RootMfn << 12));
            foreach (AccessKind kind in AllKinds())
            {
                EptTranslation t = f.P2m.Translate(Gfn4K << 12, kind);
                AssertWellFormed(t, Gfn4K << 12, kind, "cycle");
            }

            AssertWellFormedEntry(f.P2m.GetEntry(Gfn4K), "cycle");
            f.AssertDisposesCleanly();
        }

        [Fact]
        public void Pdpte_SuperPageWithout1GSupport_Misconfig()
        {
            using Fixture f = new Fixture(new P2mOptions { Support1G = false });
            // Turn the PDPTE above the 2M mapping into a 1G leaf (its frame field is 1G-aligned
            // enough: the table frame number is below 2^18, so make it 0).
            f.Poke(Gfn2M, 3, pte => (pte & ~EptEntry.MfnMask) | 0b1000_0000 | (6UL << 3));
            Assert.Equal(new EptTranslation(EptStatus.Misconfig, 0, 3, 0), f.P2m.Translate(Gfn2M << 12, AccessKind.Read));
            f.AssertDisposesCleanly();
        }

        [Fact]
        public void SetEntry_ThroughPointerToForeignFrame_BuildsFreshTablesAndNeverFreesTheFrame()
        {
            // The writer only descends into tables it owns: a pointer to a guest frame is replaced
            // by a new chain, and the guest frame is neither written nor freed.
            using Fixture f = new Fixture(new P2mOptions());
            const ulong Foreign = 5;
            f.Memory.WriteUInt64((Foreign << 12) + 8, 0x0123_4567_89AB_CDEF);
            byte[] foreignBefore = f.Memory.Frame(Foreign).ToArray();
            f.Poke(Gfn4K, 3, pte => (pte & ~EptEntry.MfnMask) | (Foreign << 12));

            f.P2m.SetEntry(Gfn4K + 0x20, 0x1234, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            f.P2m.SetEntry(Gfn4K & ~511UL, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
            f.P2m.SetEntry(Gfn4K + 0x20, 0x1234, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x1234_010, 1, 0), f.P2m.Translate(((Gfn4K + 0x20) << 12) | 0x10, AccessKind.Read));
            Assert.True(f.Memory.IsAllocated(Foreign));
            Assert.Equal(foreignBefore, f.Memory.Frame(Foreign).ToArray());
            P2mConcurrencyTests.ReclaimUntilEmpty(f.P2m);     // any p2m's reclamation pass may free pending frames meanwhile
            Assert.Equal(GuestFrames + f.P2m.TableFrameCount + f.P2m.PendingReclaimFrameCount, f.Memory.AllocatedFrameCount);
            f.P2m.Dispose();
            Assert.Equal(GuestFrames, f.Memory.AllocatedFrameCount);
            Assert.Equal(foreignBefore, f.Memory.Frame(Foreign).ToArray());
        }

        // ---- Helpers ------------------------------------------------------------------------------

        private static IEnumerable<AccessKind> AllKinds() => Enumerable.Range(1, 7).Select(a => (AccessKind)a);

        private static void AssertWellFormed(EptTranslation t, ulong gpa, AccessKind kind, string where)
        {
            string what = $"{where}: Translate(0x{gpa:X}, {kind}) = {t}";
            Assert.True(t.Level is >= 1 and <= 4, what);
            switch (t.Status)
            {
                case EptStatus.Ok:
                    // A leaf at level 1..3 whose frame passed the reserved-bit check.
                    ulong pageMask = (1UL << (12 + 9 * (t.Level - 1))) - 1;
                    Assert.True(t.Level <= 3 && t.Qualification == 0, what);
                    Assert.True((t.Hpa & pageMask) == (gpa & pageMask), what);
                    Assert.True(t.Hpa < (1UL << 46), what);
                    break;
                case EptStatus.Violation:
                    // Bits 0-2 are the access, 3-5 the rights, which lack something the access needs.
                    ulong rights = (t.Qualification >> 3) & 7;
                    Assert.True(t.Hpa == 0 && t.Qualification >> 6 == 0, what);
                    Assert.True((t.Qualification & 7) == (ulong)kind, what);
                    Assert.True(((ulong)kind & ~rights) != 0, what);
                    break;
                case EptStatus.Misconfig:
                    Assert.True(t.Hpa == 0 && t.Qualification == 0, what);
                    break;
                default:
                    Assert.Fail($"{what}: unknown status");
                    break;
            }
        }

        private static void AssertWellFormedEntry(P2mEntry e, string where)
        {
            string what = $"{where} = {e}";
            if (!e.IsMapped)
            {
                Assert.True(e.Mfn == Mfn.Invalid && e.Type == P2mType.MmioDm && e.Access == P2mAccess.N && e.SuppressVe, what);
                Assert.True(e.Order is 0 or 9 or 18 or 27, what);
                return;
            }

            Assert.True(e.Order is 0 or 9 or 18, what);
            Assert.True(e.Type <= P2mType.IoreqServer && e.Type != P2mType.Invalid, what);
            Assert.True(e.Access <= P2mAccess.R_PW, what);
            if (e.Type == P2mType.PopulateOnDemand)
            {
                Assert.True(e.Mfn == Mfn.Invalid && e.Access == P2mAccess.N, what);
            }
            else if (e.Mfn != Mfn.Invalid)
            {
                Assert.True(e.Mfn < 1UL << 40, what);
            }
        }

        private static void AssertHole(P2mEntry e, int order)
        {
            Assert.False(e.IsMapped, e.ToString());
            Assert.Equal(Mfn.Invalid, e.Mfn);
            Assert.Equal(P2mType.MmioDm, e.Type);
            Assert.Equal(P2mAccess.N, e.Access);
            Assert.True(e.SuppressVe);
            Assert.Equal(order, e.Order);
        }
    }
}

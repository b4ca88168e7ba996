// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Tlb
{
    public sealed partial class SoftTlbTests
    {
        // ------------------------------------------------------------------------------------
        // Coherence: every kind of SetEntry invalidates before it returns
        // ------------------------------------------------------------------------------------

        public static TheoryData<string> Changes => new()
        {
            "remove 4K", "remap 4K", "restrict 4K", "change type 4K", "widen 4K", "not present 4K",
            "remove 2M", "remap 2M", "restrict 2M", "split 2M", "split 2M other page", "merge 4K into 2M",
            "remove 1G", "split 1G", "restrict 1G", "merge 2M into 1G",
        };

        [Theory]
        [MemberData(nameof(Changes))]
        public void SetEntry_EveryKindOfChange_IsSeenByTheNextLookup(string change)
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            const ulong g4 = Gfn4K + 5;
            const ulong g2 = Gfn2M;
            const ulong g1 = Gfn1G;
            p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(g4 + 1, 0x101, PageOrder.Size4K, P2mType.RamRo, P2mAccess.R);
            p2m.SetEntry(g2, 0x400, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(g1, 0x400000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RWX);
            var tlbs = new[] { new SoftTlb(p2m, 1), new SoftTlb(p2m, 64) };
            ulong[] probes = [g4 << 12, (g4 + 1) << 12, (g2 + 7) << 12, (g2 + 300) << 12, (g1 + 0x1234) << 12, (g1 + 0x3FFFF) << 12, g1 << 12];
            AccessKind[] accesses = [AccessKind.Read, AccessKind.Write, AccessKind.Execute, AccessKind.Read | AccessKind.Write | AccessKind.Execute];
            foreach (SoftTlb tlb in tlbs)
            {
                Warm(tlb, probes, accesses);
                Assert.True(tlb.Hits > 0);
            }

            Dictionary<(ulong, AccessKind), EptTranslation> before = Snapshot(p2m, probes, accesses);
            switch (change)
            {
                case "remove 4K": p2m.SetEntry(g4, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N); break;
                case "remap 4K": p2m.SetEntry(g4, 0x200, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "restrict 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R); break;
                case "change type 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX); break;
                case "widen 4K": p2m.SetEntry(g4 + 1, 0x101, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "not present 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.N); break;
                case "remove 2M": p2m.SetEntry(g2, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N); break;
                case "remap 2M": p2m.SetEntry(g2, 0x600, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX); break;
                case "restrict 2M": p2m.SetEntry(g2, 0x400, PageOrder.Size2M, P2mType.RamRo, P2mAccess.RX); break;
                case "split 2M": p2m.SetEntry(g2 + 7, 0x207, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "split 2M other page": p2m.SetEntry(g2 + 8, 0x208, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R); break;
                case "merge 4K into 2M": p2m.SetEntry(Gfn4K, 0x800, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX); break;
                case "remove 1G": p2m.SetEntry(g1, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.N); break;
                case "split 1G": p2m.SetEntry(g1 + 0x1234, 0x123, PageOrder.Size4K, P2mType.RamRo, P2mAccess.R); break;
                case "restrict 1G": p2m.SetEntry(g1, 0x400000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.X); break;
                case "merge 2M into 1G": p2m.SetEntry(Gfn2M, 0x800000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.R); break;
                default: throw new ArgumentOutOfRangeException(nameof(change));
            }

            Dictionary<(ulong, AccessKind), EptTranslation> after = Snapshot(p2m, probes, accesses);
            Assert.True(before.Any(kv => after[kv.Key] != kv.Value), "the change is invisible to a walk: the test would prove nothing");

            foreach (SoftTlb tlb in tlbs)
            {
                foreach (ulong gpa in probes)
                {
                    foreach (AccessKind access in accesses)
                    {
                        Assert.Equal(after[(gpa, access)], tlb.Translate(gpa, access));
                    }
                }
            }
        }

        [Fact]
        public void SetEntry_MergeTablesIntoSuperpage_CachedPagesOfTheOldTablesAreDropped()
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            for (ulong i = 0; i < 16; i++)
            {
                p2m.SetEntry(Gfn2M + i, 0x100 + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            var tlb = new SoftTlb(p2m);
            for (ulong i = 0; i < 16; i++)
            {
                Assert.Equal(((0x100 + i) << 12) | 0x10, tlb.Translate(((Gfn2M + i) << 12) | 0x10, AccessKind.Write).Hpa);
            }

            p2m.SetEntry(Gfn2M, 0xE00, PageOrder.Size2M, P2mType.RamRo, P2mAccess.RX);
            for (ulong i = 0; i < 16; i++)
            {
                ulong gpa = ((Gfn2M + i) << 12) | 0x10;
                Assert.Equal(new EptTranslation(EptStatus.Ok, ((0xE00 + i) << 12) | 0x10, 2, 0), tlb.Translate(gpa, AccessKind.Read));
                Assert.Equal(p2m.Translate(gpa, AccessKind.Write), tlb.Translate(gpa, AccessKind.Write));
                Assert.Equal(EptStatus.Violation, tlb.Translate(gpa, AccessKind.Write).Status);
            }
        }

        [Fact]
        public void SetEntry_UnchangedOrHoleFilling_DoesNotFlush()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            tlb.Translate(0x10_000, AccessKind.Read);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);     // same entry
            p2m.SetEntry(0x11, 0x21, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);     // a hole filled
            p2m.SetEntry(0x5000, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);   // removing nothing
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_000, AccessKind.Read).Status);
            Assert.Equal((1L, 1L, 0L), (tlb.Hits, tlb.Misses, tlb.Flushes));
        }

        [Fact]
        public void InvalidateTlbs_AfterWritingTablesBehindTheP2msBack_DropsTheStaleTranslation()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            using P2m other = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            other.SetEntry(0x10, 0x30, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            var otherTlb = new SoftTlb(other);
            Assert.Equal(0x20_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(0x30_000UL, otherTlb.Translate(0x10_000, AccessKind.Read).Hpa);

            // A raw table write is not a SetEntry: like hardware, the TLB keeps the old translation.
            TestTables.Write(p2m, 0x10, 1, TestTables.Read(p2m, 0x10, 1).WithMfn(0x21).Raw);
            Assert.Equal(0x21_000UL, p2m.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(0x20_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);

            p2m.InvalidateTlbs();
            Assert.Equal(0x21_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(1, tlb.Flushes);

            // Single-context: the other p2m's TLB keeps its entries.
            Assert.Equal(0x30_000UL, otherTlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal((1L, 1L, 0L), (otherTlb.Hits, otherTlb.Misses, otherTlb.Flushes));
        }

        [Fact]
        public void InvalidateAll_FlushesTlbsOfEveryP2m()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m a = new P2m(memory);
            using P2m b = new P2m(memory);
            a.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            b.SetEntry(0x10, 0x30, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlbA = new SoftTlb(a);
            var tlbB = new SoftTlb(b);
            tlbA.Translate(0x10_000, AccessKind.Read);
            tlbB.Translate(0x10_000, AccessKind.Read);
            TestTables.Write(a, 0x10, 1, TestTables.Read(a, 0x10, 1).WithMfn(0x22).Raw);
            TestTables.Write(b, 0x10, 1, 0);
            Assert.Equal(0x20_000UL, tlbA.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(EptStatus.Ok, tlbB.Translate(0x10_000, AccessKind.Read).Status);

            SoftTlb.InvalidateAll();
            Assert.Equal(0x22_000UL, tlbA.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(b.Translate(0x10_000, AccessKind.Read), tlbB.Translate(0x10_000, AccessKind.Read));
            Assert.Equal(EptStatus.Violation, tlbB.Translate(0x10_000, AccessKind.Read).Status);
            Assert.Equal(1, tlbA.Flushes);
            Assert.Equal(1, tlbB.Flushes);
        }

        [Fact]
        public void Flush_EpochWrapsAfter4095Flushes_OldEntriesNeverMatchAgain()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(Gfn2M, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            for (int round = 0; round < 3; round++)
            {
                tlb.Flush();
                tlb.ResetCounters();
                tlb.Translate(0x10_000, AccessKind.Read);
                tlb.Translate(Gfn2M << 12, AccessKind.Read);
                Assert.Equal(2, tlb.Misses);
                // After exactly one epoch cycle the epoch value repeats: stale tags must not match.
                for (int i = 0; i < 4095; i++)
                {
                    tlb.Flush();
                }

                TestTables.Write(p2m, 0x10, 1, TestTables.Read(p2m, 0x10, 1).WithMfn(0x21 + (ulong)round).Raw);
                Assert.Equal(((0x21UL + (ulong)round) << 12) | 8, tlb.Translate(0x10_008, AccessKind.Read).Hpa);
                Assert.Equal(0x200_000UL + 0x3000, tlb.Translate((Gfn2M + 3) << 12, AccessKind.Read).Hpa);
                Assert.Equal(4, tlb.Misses);
                Assert.Equal(4095, tlb.Flushes);
            }
        }

        [Fact]
        public void Dispose_CachedPagesThrowObjectDisposed()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            var p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(Gfn2M, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            tlb.Translate(0x10_000, AccessKind.Read);
            tlb.Translate(Gfn2M << 12, AccessKind.Read);
            tlb.Translate(0x10_000, AccessKind.Read);
            Assert.Equal(1, tlb.Hits);

            p2m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => tlb.Translate(0x10_000, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => tlb.Translate((Gfn2M + 1) << 12, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => tlb.TranslateBatch(new ulong[] { 0x10_000 }, AccessKind.Read, new EptTranslation[1]));
            Assert.Throws<ObjectDisposedException>(() => p2m.InvalidateTlbs());
            Assert.Equal(1, tlb.Hits);
        }

        private static void Warm(SoftTlb tlb, ulong[] gpas, AccessKind[] accesses)
        {
            for (int round = 0; round < 2; round++)
            {
                foreach (ulong gpa in gpas)
                {
                    foreach (AccessKind access in accesses)
                    {
                        tlb.Translate(gpa, access);
                    }
                }
            }
        }
    }
}

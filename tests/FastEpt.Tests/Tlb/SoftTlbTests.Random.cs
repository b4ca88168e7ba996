// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Tlb
{
    public sealed partial class SoftTlbTests
    {
        // ------------------------------------------------------------------------------------
        // Randomized model test: SetEntry interleaved with lookups
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(11, false)]
        [InlineData(12, false)]
        [InlineData(13, true)]
        public void RandomSetEntryAndLookups_EveryLookupEqualsTheWalk(int seed, bool accessDirty)
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory, new P2mOptions { AccessDirty = accessDirty });
            var rng = new Random(seed);
            SoftTlb[] tlbs = [new SoftTlb(p2m, 1), new SoftTlb(p2m, 16), new SoftTlb(p2m, 512), new SoftTlb(p2m, 16, 4, 1024)];
            // A small window (two 1G pages, four 2M slots of each, eight 4K pages of each 2M) so
            // that lookups revisit pages and changes hit cached ones.
            ulong[] gfns = Enumerable.Range(0, 2).SelectMany(g => Enumerable.Range(0, 4).SelectMany(s => Enumerable.Range(0, 8)
                .Select(p => Gfn1G + ((ulong)g << 18) + ((ulong)s * 37 << 9) + (ulong)p * 61))).ToArray();
            const int ops = 60_000;
            int sets = 0;
            var recent = new ulong[8];      // locality: most lookups revisit a recent page
            for (int op = 0; op < ops; op++)
            {
                if (rng.Next(1000) < 15)
                {
                    RandomSet(p2m, rng, gfns);
                    sets++;
                    continue;
                }

                ulong gfn = rng.Next(10) < 7 && op > 8 ? recent[rng.Next(recent.Length)] : gfns[rng.Next(gfns.Length)];
                recent[op & 7] = gfn;
                ulong gpa = (gfn << 12) + (uint)rng.Next(4096);
                AccessKind access = s_allAccesses[rng.Next(s_allAccesses.Length)];
                SoftTlb tlb = tlbs[rng.Next(tlbs.Length)];
                EptTranslation actual = tlb.Translate(gpa, access);
                EptTranslation expected = p2m.Translate(gpa, access);
                if (actual != expected)
                {
                    Assert.Fail($"op {op}: gpa 0x{gpa:X} {access} TLB {actual}, walk {expected}, entry {p2m.GetEntry(gfn)}");
                }

                if (accessDirty && actual.Status == EptStatus.Ok && (access & AccessKind.Write) != 0)
                {
                    Assert.True(TestTables.Read(p2m, gfn, actual.Level).Dirty, $"op {op}: write to 0x{gpa:X} left the leaf clean");
                }
            }

            long hits = tlbs.Sum(t => t.Hits);
            long misses = tlbs.Sum(t => t.Misses);
            Assert.Equal(ops - sets, hits + misses);
            // Many lookups are violations (random accesses on restricted pages) and are never cached.
            Assert.True(hits > (ops - sets) / 20, $"only {hits} hits of {ops - sets}");
            Assert.True(tlbs.All(t => t.Hits > 0 && t.Flushes > 0));
        }

        // ------------------------------------------------------------------------------------
        // Helpers
        // ------------------------------------------------------------------------------------

        private static void RandomSet(P2m p2m, Random rng, ulong[] gfns)
        {
            ulong gfn = gfns[rng.Next(gfns.Length)];
            int kind = rng.Next(10);
            PageOrder order = kind < 6 ? PageOrder.Size4K : kind < 9 ? PageOrder.Size2M : PageOrder.Size1G;
            ulong count = 1UL << (int)order;
            gfn &= ~(count - 1);
            (P2mType type, P2mAccess access) = s_combos[rng.Next(s_combos.Length)];
            if (rng.Next(5) == 0)
            {
                p2m.SetEntry(gfn, Mfn.Invalid, order, P2mType.Invalid, P2mAccess.N);
                return;
            }

            // RAM frames inside the 64 MiB host memory for 4K/2M; 1G pages (and some others) as MMIO.
            ulong mfn = order == PageOrder.Size1G || rng.Next(4) == 0
                ? ((ulong)rng.Next(1, 64) << 18)
                : ((ulong)rng.Next(8, 16) << 9) + (order == PageOrder.Size4K ? (ulong)rng.Next(512) : 0);
            if (mfn >= 1 << 18)
            {
                type = P2mType.MmioDirect;
            }

            p2m.SetEntry(gfn, mfn, order, type, access);
        }
    }
}

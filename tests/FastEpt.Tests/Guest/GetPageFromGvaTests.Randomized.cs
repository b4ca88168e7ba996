// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    public sealed partial class GetPageFromGvaTests
    {
        [Fact]
        public void Randomized_AccessOnTablesAndPage_MatchesTheRules()
        {
            // 3,000 random combinations of mem_access on the four table pages and the data page,
            // access kind and EPTP A/D, against a plain model of the 2D walk's EPT checks and of the
            // fallback's rules. Fresh tables each time (no A/D yet: the walk must write A).
            var rng = new Random(0x5EED);
            using TwoDimensionalGuest plain = new(ad: false);
            using TwoDimensionalGuest withAd = new(ad: true);
            for (int i = 0; i < 3000; i++)
            {
                TwoDimensionalGuest g = rng.Next(2) == 0 ? plain : withAd;
                bool ad = ReferenceEquals(g, withAd);
                g.BuildTables(extra: 0);
                var access = new P2mAccess[5];     // [level 4..1] tables, [0] data
                for (int j = 0; j < 5; j++)
                {
                    access[j] = rng.Next(3) == 0 ? UsableOnRam[rng.Next(UsableOnRam.Length)] : P2mAccess.RWX;
                    ulong gfn = j == 0 ? TwoDimensionalGuest.DataGfn : TwoDimensionalGuest.TableGfn(j);
                    g.SetAccess(0, gfn, access[j]);
                }

                AccessKind kind = (AccessKind)(1 << rng.Next(3));
                (GuestPageStatus want, bool wantVia) = Model(access, kind, ad);

                using GuestPage page = g.Cpu.GetPageFromGva(Gla, kind);

                string ctx = $"#{i} ad={ad} {kind} tables(4..1)={access[4]},{access[3]},{access[2]},{access[1]} data={access[0]} got {page}";
                Assert.True(want == page.Status, ctx);
                Assert.True(wantVia == page.ViaMemAccess, ctx);
                if (page.IsOk)
                {
                    Assert.True(DataMfn(g) == page.Mfn, ctx);
                }
            }

            Assert.Equal(0, plain.Memory.ReferenceCount(DataMfn(plain)));
            Assert.Equal(0, withAd.Memory.ReferenceCount(DataMfn(withAd)));
        }

        private static (GuestPageStatus, bool) Model(P2mAccess[] access, AccessKind kind, bool ad)
        {
            bool write = kind == AccessKind.Write;
            // The CPU's walk: reads of the four tables (writes too under EPTP A/D), then A on every
            // table entry (D on the leaf of a write), then the final access.
            int failedTable = 0;
            bool failedWrite = false;
            for (int level = 4; level >= 1 && failedTable == 0; level--)
            {
                string r = Rights[access[level]];
                if (!r.Contains('r') || (ad && !r.Contains('w')))
                {
                    failedTable = level;
                    failedWrite = ad;
                }
            }

            for (int level = 4; level >= 1 && failedTable == 0; level--)
            {
                if (!Rights[access[level]].Contains('w'))
                {
                    failedTable = level;
                    failedWrite = true;
                }
            }

            bool finalAllowed = Rights[access[0]].Contains(Letter(kind));
            if (failedTable == 0 && finalAllowed)
            {
                return (GuestPageStatus.Ok, false);
            }

            bool finalExplained = Explains(access[0], write);
            if (failedTable == 0)
            {
                return finalExplained ? (GuestPageStatus.Ok, true) : (GuestPageStatus.EptViolation, false);
            }

            if (!Explains(access[failedTable], failedWrite))
            {
                return (GuestPageStatus.EptViolation, false);
            }

            return finalAllowed || finalExplained ? (GuestPageStatus.Ok, true) : (GuestPageStatus.EptViolation, false);
        }
    }
}

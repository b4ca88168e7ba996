// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using Xunit.Abstractions;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// <see cref="Vcpu.TranslateLinear"/> in every paging mode against <see cref="PagingReference"/>
    /// (docs/model/guest-paging.md §8.6): random registers (CR0.WP, CR4.PSE/PGE/SMEP/SMAP/PKE/PKS,
    /// EFER.NXE, RFLAGS.AC, PKRU, IA32_PKRS), random entries on the path of a random linear address,
    /// random accesses (user, supervisor, implicit supervisor; read, write, fetch). Compared: status,
    /// GPA, HPA, #PF error code, level, EPT qualification, page size, G, and every A/D bit written;
    /// under PAE the PDPTE load of <see cref="Vcpu.LoadCr3"/> too. Every 16th case
    /// <see cref="Vcpu.TranslateLinearBatch"/> must agree with the scalar walk on four addresses.
    /// Fixed seeds; 1e6 cases per mode over the two rows of each mode.
    /// </summary>
    public sealed class PagingModeDifferentialTests(ITestOutputHelper output)
    {
        [Theory]
        [InlineData(GuestPagingMode.Paging32, 4, 36, false, 0x3201, 500_000)]
        [InlineData(GuestPagingMode.Paging32, 4, 40, true, 0x3202, 500_000)]
        [InlineData(GuestPagingMode.Pae, 4, 36, true, 0xAE01, 500_000)]
        [InlineData(GuestPagingMode.Pae, 4, 48, false, 0xAE02, 500_000)]
        [InlineData(GuestPagingMode.LongMode4, 4, 48, false, 0x6401, 500_000)]
        [InlineData(GuestPagingMode.LongMode4, 4, 39, true, 0x6402, 500_000)]
        [InlineData(GuestPagingMode.LongMode5, 5, 52, false, 0x5701, 500_000)]
        [InlineData(GuestPagingMode.LongMode5, 5, 48, true, 0x5702, 500_000)]
        public void RandomCases_MatchReference(GuestPagingMode mode, int eptLevels, int addressBits, bool accessDirty, int seed, int cases)
            => Run(mode, eptLevels, addressBits, accessDirty, seed, cases, restrictEpt: false);

        /// <summary>The same with the table pool's 2 MiB EPT leaf flipping between RWX and R: paging-structure
        /// reads (EPT A/D on), A/D writes (A/D off: read and write reported) and final writes meet EPT violations.</summary>
        [Theory]
        [InlineData(GuestPagingMode.Paging32, false, 0x3211)]
        [InlineData(GuestPagingMode.Paging32, true, 0x3212)]
        [InlineData(GuestPagingMode.Pae, false, 0xAE11)]
        [InlineData(GuestPagingMode.Pae, true, 0xAE12)]
        [InlineData(GuestPagingMode.LongMode4, false, 0x6411)]
        [InlineData(GuestPagingMode.LongMode4, true, 0x6412)]
        [InlineData(GuestPagingMode.LongMode5, false, 0x5711)]
        [InlineData(GuestPagingMode.LongMode5, true, 0x5712)]
        public void RandomCasesUnderEptRestrictions_MatchReference(GuestPagingMode mode, bool accessDirty, int seed)
            => Run(mode, mode == GuestPagingMode.LongMode5 ? 5 : 4, 48, accessDirty, seed, 20_000, restrictEpt: true);

        private void Run(GuestPagingMode mode, int eptLevels, int addressBits, bool accessDirty, int seed, int cases, bool restrictEpt)
        {
            using IdentityRam ram = new(eptLevels, addressBits, accessDirty);
            Random rng = new(seed);
            PagingModeGenerator gen = new(rng, ram, mode);
            bool poolReadOnly = false;
            int Perms(ulong gpa) => gpa >= IdentityRam.RamBytes ? 0
                                    : poolReadOnly && gpa >> 21 == PagingModeGenerator.PoolBase >> 21 ? 1 : 7;
            PagingReference reference = new(gen.Model, addressBits, Perms, accessDirty);
            Vcpu cpu = ram.Cpu;
            Dictionary<string, int> seen = new();
            List<string> failures = new();
            int mismatches = 0;
            ulong[] batchGlas = new ulong[4];
            GuestTranslation[] batch = new GuestTranslation[4];
            Stopwatch sw = Stopwatch.StartNew();
            for (int n = 0; n < cases; n++)
            {
                if (restrictEpt && rng.Next(4) == 0)
                {
                    poolReadOnly = !poolReadOnly;
                    ulong gfn = PagingModeGenerator.PoolBase >> 12;
                    ram.Domain.HostP2m.SetEntry(gfn, (ram.RamHpa >> 12) + gfn, PageOrder.Size2M, P2mType.RamRw, poolReadOnly ? P2mAccess.R : P2mAccess.RWX);
                }

                (PagingRegs regs, ulong gla, PageFaultErrorCode access) = gen.Next();
                reference.Regs = regs;
                Apply(cpu, regs);
                string? why = null;
                PagingOutcome expected;
                GuestTranslation actual = default;
                if (mode == GuestPagingMode.Pae)
                {
                    expected = reference.LoadPdptes();
                    GuestStatus load = cpu.LoadCr3(regs.Cr3, out actual);
                    if (expected.Status != GuestStatus.Ok || load != GuestStatus.Ok)
                    {
                        why = load != actual.Status && load != GuestStatus.Ok ? "LoadCr3's status and fault differ" : Compare(expected, actual, ram);
                        Count(seen, expected.Status == GuestStatus.Ok ? "load-ok" : "load-" + expected.Status);
                        Record(ref mismatches, failures, why, n, seed, expected, actual, regs, gla, access);
                        continue;
                    }
                }
                else
                {
                    cpu.Cr3 = regs.Cr3;
                }

                expected = reference.Translate(gla, access);
                actual = cpu.TranslateLinear(gla, access);
                why = Compare(expected, actual, ram) ?? gen.Compare(gen.Touched);
                if (why is null && n % 16 == 0)
                {
                    batchGlas[0] = gla;
                    batchGlas[1] = gla ^ 0x1000;
                    batchGlas[2] = gla ^ 0x20_0000;
                    batchGlas[3] = (ulong)rng.NextInt64();
                    cpu.TranslateLinearBatch(batchGlas, access, batch);
                    for (int i = 0; i < 4 && why is null; i++)
                    {
                        // The reference walks each address too, so its memory gets the same A/D bits.
                        why = Compare(reference.Translate(batchGlas[i], access), batch[i], ram) is string w ? $"batch [{i}] against the reference: {w}" : null;
                        GuestTranslation single = cpu.TranslateLinear(batchGlas[i], access);
                        if (why is null && (single != batch[i] || single.PageShift != batch[i].PageShift || single.Global != batch[i].Global))
                        {
                            why = $"batch [{i}] 0x{batchGlas[i]:X}: {batch[i]} (shift {batch[i].PageShift}, g {batch[i].Global}) vs scalar {single} (shift {single.PageShift}, g {single.Global})";
                        }
                    }
                }

                if (why is null && n % 4096 == 0)
                {
                    why = gen.Compare(PagingModeGenerator.PoolQuads());
                }

                Record(ref mismatches, failures, why, n, seed, expected, actual, regs, gla, access);
                Count(seen, Key(expected));
            }

            string? pool = gen.Compare(PagingModeGenerator.PoolQuads());
            Assert.True(mismatches == 0, $"{mismatches} of {cases} cases differ:\n{string.Join("\n", failures)}");
            Assert.Null(pool);

            // Every family of outcome the mode has is reached (else the comparison proves little).
            List<string> families = ["ok-l1", "ok-l2", "pf-np", "pf-rsvd", "pf-rights", "ept-final"];
            families.AddRange(mode switch
            {
                GuestPagingMode.Pae => ["load-GeneralProtection"],
                GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5 => ["ok-l3", "pf-pk", nameof(GuestStatus.NonCanonical)],
                _ => [],
            });
            if (restrictEpt)
            {
                families.Add("ept-struct");
            }

            foreach (string family in families)
            {
                Assert.True(seen.GetValueOrDefault(family) > 0, $"no case reached {family}: {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            }

            output.WriteLine($"{cases} cases in {sw.Elapsed.TotalSeconds:F1} s: {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            Assert.True(sw.Elapsed < TimeSpan.FromMinutes(2), $"{cases} cases took {sw.Elapsed}");
        }

        internal static void Apply(Vcpu cpu, in PagingRegs r)
        {
            cpu.Mode = r.Mode;
            Cr4Flags cr4 = cpu.Cr4 & (Cr4Flags.Pae | Cr4Flags.La57);
            cr4 |= (r.Pse ? Cr4Flags.Pse : 0) | (r.Pge ? Cr4Flags.Pge : 0) | (r.Smep ? Cr4Flags.Smep : 0) | (r.Smap ? Cr4Flags.Smap : 0)
                   | (r.Pke ? Cr4Flags.Pke : 0) | (r.Pks ? Cr4Flags.Pks : 0);
            cpu.Cr4 = cr4;
            cpu.Wp = r.Wp;
            cpu.Nxe = r.Nxe;
            cpu.Pkru = r.Pkru;
            cpu.Pkrs = r.Pkrs;
            cpu.Ac = r.Ac;
        }

        internal static string? Compare(PagingOutcome e, GuestTranslation a, IdentityRam ram)
        {
            if (a.Status != e.Status)
            {
                return "status";
            }

            switch (e.Status)
            {
                case GuestStatus.Ok:
                    return a.Gpa != e.Gpa ? "gpa" : a.Hpa != ram.RamHpa + e.Gpa ? "hpa" : a.Level != e.Level ? "level"
                           : a.PageShift != e.PageShift ? "page shift" : a.Global != e.Global ? "global" : null;
                case GuestStatus.PageFault:
                    return a.ErrorCode != e.ErrorCode ? "error code" : a.Level != e.Level ? "level" : null;
                case GuestStatus.EptViolation:
                    return a.Gpa != e.Gpa ? "gpa" : a.Ept.Qualification != e.Qualification ? "qualification" : a.Level != e.Level ? "level" : null;
                case GuestStatus.GeneralProtection:
                    return a.Gpa != e.Gpa ? "gpa" : null;
                default:
                    return null;
            }
        }

        private static string Key(PagingOutcome e) => e.Status switch
        {
            GuestStatus.Ok => $"ok-l{e.Level}",
            GuestStatus.PageFault => (e.ErrorCode & PageFaultErrorCode.Reserved) != 0 ? "pf-rsvd"
                                     : (e.ErrorCode & PageFaultErrorCode.ProtectionKey) != 0 ? "pf-pk"
                                     : (e.ErrorCode & PageFaultErrorCode.Present) != 0 ? "pf-rights" : "pf-np",
            GuestStatus.EptViolation => (e.Qualification & PagingReference.QualFinal) != 0 ? "ept-final" : "ept-struct",
            _ => e.Status.ToString(),
        };

        private static void Count(Dictionary<string, int> seen, string key) => seen[key] = seen.GetValueOrDefault(key) + 1;

        private static void Record(ref int mismatches, List<string> failures, string? why, int n, int seed, PagingOutcome expected, GuestTranslation actual,
                                   PagingRegs regs, ulong gla, PageFaultErrorCode access)
        {
            if (why is null)
            {
                return;
            }

            mismatches++;
            if (failures.Count < 5)
            {
                failures.Add($"case {n} (seed 0x{seed:X}): {why}\n  expected {expected}\n  actual   {actual} (shift {actual.PageShift}, g {actual.Global})\n"
                             + $"  gla=0x{gla:X} access={access} cr3=0x{regs.Cr3:X} wp={regs.Wp} nxe={regs.Nxe} pse={regs.Pse} pge={regs.Pge} smep={regs.Smep} "
                             + $"smap={regs.Smap} ac={regs.Ac} pke={regs.Pke} pks={regs.Pks} pkru=0x{regs.Pkru:X} pkrs=0x{regs.Pkrs:X}");
            }
        }
    }
}

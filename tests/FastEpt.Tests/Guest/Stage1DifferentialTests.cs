// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// <see cref="Vcpu.TranslateLinear"/> against <see cref="ReferenceStage1Walker"/> on random
    /// stage-1 shapes: random flags (reserved bits, PS at every level, XD, ignored bits), random
    /// accesses, CR0.WP / EFER.NXE, 4- and 5-level paging, table frames drawn from a small pool
    /// so that tables alias (a frame used at two levels, one slot read twice). The EPT maps
    /// guest-physical [0, 2 GiB) with 2 MiB RWX RAM leaves and every address the generator
    /// produces lies inside it, so the EPT never fails and only stage 1 is compared: status,
    /// error code, final GPA (and HPA), level, and every A/D bit written. Fixed seeds.
    /// </summary>
    public sealed class Stage1DifferentialTests
    {
        [Theory]
        [InlineData(4, 48, false, 0x5EED_0001, 60_000)]
        [InlineData(4, 39, true, 0x5EED_0002, 25_000)]
        [InlineData(5, 52, false, 0x5EED_0003, 25_000)]
        public void RandomShapes_MatchReference(int eptLevels, int addressBits, bool accessDirty, int seed, int cases)
        {
            using IdentityRam ram = new(eptLevels, addressBits, accessDirty);
            Random rng = new(seed);
            Stage1Generator gen = new(rng, ram, addressBits, leafLimit: IdentityRam.RamBytes, poolFrames: 8);
            Dictionary<string, int> seen = new();
            List<string> failures = new();
            int mismatches = 0;
            Stopwatch sw = Stopwatch.StartNew();
            for (int n = 0; n < cases; n++)
            {
                Stage1Shape s = gen.Next();
                ReferenceStage1Walker reference = new(gen.Model) { Levels = s.Levels, Wp = s.Wp, Nxe = s.Nxe, MaxPhysAddr = addressBits, Cr3 = s.Cr3 };
                Stage1Outcome expected = reference.Translate(s.Gla, s.Pfec);

                Vcpu cpu = ram.Cpu;
                cpu.Mode = s.Levels == 5 ? GuestPagingMode.LongMode5 : GuestPagingMode.LongMode4;
                cpu.Cr3 = s.Cr3;
                cpu.Wp = s.Wp;
                cpu.Nxe = s.Nxe;
                GuestTranslation actual = default;
                string? why;
                try
                {
                    actual = cpu.TranslateLinear(s.Gla, s.Pfec);
                    why = Compare(expected, actual, ram) ?? gen.CompareMemory();
                }
                catch (Exception e) when (e is OverflowException or InvalidOperationException or ArgumentException or IndexOutOfRangeException)
                {
                    why = $"threw {e.GetType().Name}: {e.Message}";
                }

                if (why is not null)
                {
                    mismatches++;
                    if (failures.Count < 5)
                    {
                        failures.Add($"case {n} (seed 0x{seed:X}): {why}\n  expected {expected}\n  actual   {actual}\n{gen.Describe(s)}");
                    }
                }

                string key = expected.Status == GuestStatus.PageFault
                    ? $"pf{((expected.ErrorCode & PageFaultErrorCode.Reserved) != 0 ? "-rsvd" : (expected.ErrorCode & PageFaultErrorCode.Present) != 0 ? "-rights" : "-np")}"
                    : expected.Status == GuestStatus.Ok ? $"ok-l{expected.Level}" : expected.Status.ToString();
                seen[key] = seen.GetValueOrDefault(key) + 1;
                if (s.Aliased)
                {
                    seen["aliased"] = seen.GetValueOrDefault("aliased") + 1;
                }

                gen.Clear();
            }

            Assert.True(mismatches == 0, $"{mismatches} of {cases} cases differ:\n{string.Join("\n", failures)}");
            Assert.True(gen.PoolIsZero(), "a pool table frame holds something nobody wrote (a stray A/D write?)");

            // The generator reaches every family of outcome (else the comparison proves little).
            foreach (string key in new[] { "ok-l1", "ok-l2", "ok-l3", "pf-np", "pf-rsvd", "pf-rights", nameof(GuestStatus.NonCanonical), "aliased" })
            {
                Assert.True(seen.GetValueOrDefault(key) >= cases / 1000, $"only {seen.GetValueOrDefault(key)} '{key}' cases: {string.Join(", ", seen.Select(kv => $"{kv.Key}={kv.Value}"))}");
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}");
        }

        public static TheoryData<GuestPagingMode, PageFaultErrorCode, bool, bool> BatchConfigs()
        {
            TheoryData<GuestPagingMode, PageFaultErrorCode, bool, bool> data = new();
            PageFaultErrorCode[] accesses =
            [
                PageFaultErrorCode.None,
                PageFaultErrorCode.Write,
                PageFaultErrorCode.InstructionFetch,
                PageFaultErrorCode.User,
                PageFaultErrorCode.User | PageFaultErrorCode.Write,
                PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch | PageFaultErrorCode.Present,
            ];
            foreach (GuestPagingMode mode in new[] { GuestPagingMode.LongMode4, GuestPagingMode.LongMode5, GuestPagingMode.Flat })
            {
                for (int i = 0; i < accesses.Length; i++)
                {
                    data.Add(mode, accesses[i], i % 2 == 0, i % 3 != 0);
                }
            }

            return data;
        }

        [Theory]
        [MemberData(nameof(BatchConfigs))]
        public void Batch_RandomGlas_EqualsOneByOne(GuestPagingMode mode, PageFaultErrorCode pfec, bool wp, bool nxe)
        {
            foreach ((int eptLevels, int addressBits, bool ad) in new[] { (4, 48, false), (5, 52, true) })
            {
                using IdentityRam ram = new(eptLevels, addressBits, ad);
                Random rng = new((eptLevels * 100_000) + ((int)mode * 1000) + ((int)pfec * 10) + (wp ? 2 : 0) + (nxe ? 1 : 0));

                // Leaves reach up to 4 GiB: half of the final GPAs are outside the EPT's RAM,
                // so the batch's final EPT failures are compared too.
                Stage1Generator gen = new(rng, ram, addressBits, leafLimit: 2 * IdentityRam.RamBytes, poolFrames: 256);
                int levels = mode == GuestPagingMode.LongMode5 ? 5 : 4;
                ulong cr3 = gen.RandomPoolFrame();
                List<ulong> glas = new();
                for (int k = 0; k < 200; k++)
                {
                    glas.Add(gen.Grow(levels, cr3));
                }

                while (glas.Count < 1031)
                {
                    glas.Add(mode == GuestPagingMode.Flat ? RandomFlatGla(rng) : rng.Next(3) == 0 ? gen.RandomGla(levels) : glas[rng.Next(200)] ^ (ulong)(uint)rng.Next(4096));
                }

                Vcpu cpu = ram.Cpu;
                cpu.Mode = mode;
                cpu.Cr3 = cr3;
                cpu.Wp = wp;
                cpu.Nxe = nxe;

                foreach (int length in new[] { 0, 1, 255, 256, 257, glas.Count })
                {
                    ulong[] input = glas.Take(length).ToArray();
                    gen.RestoreMemory();
                    GuestTranslation[] batch = new GuestTranslation[length + 3];
                    Assert.Equal(length, cpu.TranslateLinearBatch(input, pfec, batch));
                    Dictionary<ulong, ulong> afterBatch = gen.SnapshotMemory();
                    Assert.All(batch.Skip(length), r => Assert.Equal(default, r));

                    gen.RestoreMemory();
                    GuestTranslation[] singles = new GuestTranslation[length];
                    for (int i = 0; i < length; i++)
                    {
                        singles[i] = cpu.TranslateLinear(input[i], pfec);
                        if (singles[i] != batch[i])
                        {
                            Assert.Fail($"gla 0x{input[i]:X} (#{i} of {length}): batch {batch[i]} vs single {singles[i]}");
                        }
                    }

                    Assert.Equal(gen.SnapshotMemory(), afterBatch);

                    // Again, now that the walks have set their A/D flags: the batch's clean
                    // level-by-level path answers most addresses this time, and must agree too.
                    Assert.Equal(length, cpu.TranslateLinearBatch(input, pfec, batch));
                    for (int i = 0; i < length; i++)
                    {
                        if (singles[i] != batch[i])
                        {
                            Assert.Fail($"second pass, gla 0x{input[i]:X} (#{i} of {length}): batch {batch[i]} vs single {singles[i]}");
                        }
                    }

                    Assert.Equal(gen.SnapshotMemory(), afterBatch);
                    if (length == glas.Count)
                    {
                        // The mix is a real one: successes and final EPT violations both occur.
                        string mix = string.Join(", ", batch.Take(length).GroupBy(r => r.Status).Select(grp => $"{grp.Key}={grp.Count()}"));
                        Assert.True(batch.Any(r => r.Status == GuestStatus.Ok), mix);
                        Assert.True(batch.Any(r => r.Status == GuestStatus.EptViolation && (r.Ept.Qualification & 0x100) != 0), mix);
                        Assert.True(mode == GuestPagingMode.Flat || batch.Any(r => r.Status == GuestStatus.PageFault), mix);
                    }
                }
            }
        }

        private static ulong RandomFlatGla(Random rng) => rng.Next(8) switch
        {
            0 => (1UL << 48) + (ulong)rng.NextInt64(0, 1L << 40),
            1 => ulong.MaxValue - (ulong)(uint)rng.Next(4096),
            _ => (ulong)rng.NextInt64(0, 4L << 30),
        };

        private static string? Compare(Stage1Outcome e, GuestTranslation a, IdentityRam ram)
        {
            if (e.Status != a.Status)
            {
                return "status";
            }

            switch (e.Status)
            {
                case GuestStatus.Ok:
                    if (e.Gpa != a.Gpa || e.Level != a.Level || a.ErrorCode != PageFaultErrorCode.None)
                    {
                        return "gpa/level";
                    }

                    return a.Hpa == ram.RamHpa + e.Gpa ? null : "hpa";
                case GuestStatus.PageFault:
                    return e.ErrorCode == a.ErrorCode && e.Level == a.Level && a.Gpa == 0 && a.Hpa == 0 ? null : "error code/level";
                default:
                    return null;
            }
        }
    }
}

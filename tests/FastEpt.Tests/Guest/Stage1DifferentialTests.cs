// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.Text;

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

    /// <summary>One random stage-1 case: the registers and the access (the tables are in memory).</summary>
    internal sealed record Stage1Shape(int Levels, bool Wp, bool Nxe, ulong Cr3, ulong Gla, PageFaultErrorCode Pfec, bool Aliased);

    /// <summary>
    /// A domain whose host p2m maps guest-physical [0, <see cref="RamBytes"/>) as 2 MiB RamRw RWX
    /// leaves onto one 2 MiB-aligned run of host frames, so guest RAM is one flat span (reserved,
    /// not committed: only the pages the tests touch cost memory).
    /// </summary>
    internal sealed class IdentityRam : IDisposable
    {
        public const ulong RamBytes = 2UL << 30;
        private const ulong FramesPer2M = 512;

        public IdentityRam(int eptLevels, int addressBits, bool accessDirty)
        {
            Memory = new HostMemory((long)(RamBytes + (8UL << 20)));
            Domain = new Domain(Memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { Levels = eptLevels, AddressBits = addressBits, AccessDirty = accessDirty } });
            ulong next = Memory.AllocateFrames(1) + 1;
            ulong pad = (FramesPer2M - (next % FramesPer2M)) % FramesPer2M;
            if (pad != 0)
            {
                Memory.AllocateFrames((long)pad);
            }

            ulong ramMfn = Memory.AllocateFrames((long)(RamBytes >> 12));
            Assert.Equal(0UL, ramMfn % FramesPer2M);
            RamHpa = ramMfn << 12;
            for (ulong g = 0; g < RamBytes >> 12; g += FramesPer2M)
            {
                Domain.HostP2m.SetEntry(g, ramMfn + g, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            }
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamHpa { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        public ulong Read(ulong gpa) => Memory.ReadUInt64(RamHpa + gpa);

        public void Write(ulong gpa, ulong value) => Memory.WriteUInt64(RamHpa + gpa, value);

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }

    /// <summary>
    /// Writes random stage-1 walks into guest RAM and into a dictionary model at once (the
    /// model is what <see cref="ReferenceStage1Walker"/> reads and updates).
    /// </summary>
    internal sealed class Stage1Generator
    {
        private const ulong PoolBase = 0x10_0000;

        private static readonly PageFaultErrorCode[] s_accesses =
        [
            PageFaultErrorCode.None,
            PageFaultErrorCode.Write,
            PageFaultErrorCode.InstructionFetch,
            PageFaultErrorCode.User,
            PageFaultErrorCode.User | PageFaultErrorCode.Write,
            PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch,
        ];

        private readonly Random _rng;
        private readonly IdentityRam _ram;
        private readonly int _maxPhys;
        private readonly ulong _leafLimit;
        private readonly int _poolFrames;
        private readonly Dictionary<ulong, ulong> _original = new();

        /// <param name="leafLimit">Leaves map pages below this guest-physical address.</param>
        /// <param name="poolFrames">Table frames to draw from (few: tables alias often).</param>
        public Stage1Generator(Random rng, IdentityRam ram, int maxPhys, ulong leafLimit, int poolFrames)
        {
            _rng = rng;
            _ram = ram;
            _maxPhys = maxPhys;
            _leafLimit = leafLimit;
            _poolFrames = poolFrames;
        }

        /// <summary>The guest memory the reference sees: every slot written, updated by its A/D writes.</summary>
        public Dictionary<ulong, ulong> Model { get; } = new();

        public ulong RandomPoolFrame() => PoolBase + ((ulong)(uint)_rng.Next(_poolFrames) << 12);

        /// <summary>A fresh random case (call <see cref="Clear"/> after it).</summary>
        public Stage1Shape Next()
        {
            int levels = _rng.Next(2) == 0 ? 4 : 5;
            ulong cr3 = RandomPoolFrame() | (ulong)(uint)_rng.Next(4096);
            ulong gla = GrowFrom(levels, cr3, out bool aliased);
            if (_rng.Next(40) == 0)
            {
                // Not canonical: flip one bit above the linear-address width.
                int vaBits = levels == 5 ? 57 : 48;
                gla ^= 1UL << _rng.Next(vaBits, 64);
            }

            PageFaultErrorCode pfec = s_accesses[_rng.Next(s_accesses.Length)];
            if (_rng.Next(2) == 0)
            {
                pfec |= PageFaultErrorCode.Present;
            }

            return new Stage1Shape(levels, _rng.Next(2) == 0, _rng.Next(4) != 0, cr3, gla, pfec, aliased);
        }

        /// <summary>Adds one more random walk under <paramref name="cr3"/> (keeping what is there) and returns its GLA.</summary>
        public ulong Grow(int levels, ulong cr3) => GrowFrom(levels, cr3, out _);

        /// <summary>A canonical GLA with random indices.</summary>
        public ulong RandomGla(int levels)
        {
            ulong gla = (ulong)(uint)_rng.Next(4096);
            for (int level = 1; level <= levels; level++)
            {
                gla |= RandomIndex() << (12 + (9 * (level - 1)));
            }

            return Canonical(gla, levels);
        }

        public void Clear()
        {
            foreach (ulong gpa in _original.Keys)
            {
                _ram.Write(gpa, 0);
            }

            _original.Clear();
            Model.Clear();
        }

        /// <summary>Puts every written slot back to the value the generator wrote.</summary>
        public void RestoreMemory()
        {
            foreach ((ulong gpa, ulong value) in _original)
            {
                _ram.Write(gpa, value);
                Model[gpa] = value;
            }
        }

        public Dictionary<ulong, ulong> SnapshotMemory() => _original.Keys.ToDictionary(g => g, _ram.Read);

        /// <summary>null when guest RAM holds what the model holds at every written slot.</summary>
        public string? CompareMemory()
        {
            foreach ((ulong gpa, ulong value) in Model)
            {
                ulong actual = _ram.Read(gpa);
                if (actual != value)
                {
                    return $"guest RAM at 0x{gpa:X} is 0x{actual:X}, the reference has 0x{value:X}";
                }
            }

            return null;
        }

        public bool PoolIsZero()
        {
            for (ulong off = 0; off < (ulong)_poolFrames * 4096; off += 8)
            {
                if (_ram.Read(PoolBase + off) != 0)
                {
                    return false;
                }
            }

            return true;
        }

        public string Describe(Stage1Shape s)
        {
            StringBuilder sb = new();
            sb.Append($"  levels={s.Levels} wp={s.Wp} nxe={s.Nxe} cr3=0x{s.Cr3:X} gla=0x{s.Gla:X} pfec={s.Pfec}\n");
            foreach ((ulong gpa, ulong value) in _original.OrderBy(kv => kv.Key))
            {
                sb.Append($"  [0x{gpa:X}] = 0x{value:X16} (now 0x{_ram.Read(gpa):X16}, model 0x{Model[gpa]:X16})\n");
            }

            return sb.ToString();
        }

        private static ulong Canonical(ulong gla, int levels)
        {
            int vaBits = levels == 5 ? 57 : 48;
            return (gla & (1UL << (vaBits - 1))) != 0 ? gla | (ulong.MaxValue << vaBits) : gla;
        }

        private ulong RandomIndex() => _rng.Next(4) switch
        {
            0 => 0,
            1 => 511,
            2 => (ulong)(uint)_rng.Next(4),
            _ => (ulong)(uint)_rng.Next(512),
        };

        private void Write(ulong gpa, ulong value)
        {
            _ram.Write(gpa, value);
            Model[gpa] = value;
            _original[gpa] = value;
        }

        private ulong GrowFrom(int levels, ulong cr3, out bool aliased)
        {
            ulong gla = (ulong)(uint)_rng.Next(4096);
            ulong table = cr3 & ~0xFFFUL;
            HashSet<ulong> slots = new();
            aliased = false;
            ulong index = RandomIndex();
            int level = levels;
            for (; level >= 1; level--)
            {
                // Now and then the same index as the level above: with a self-referencing entry
                // (below) that is the same slot again, as in a recursive page-table mapping.
                index = _rng.Next(4) == 0 ? index : RandomIndex();
                gla |= index << (12 + (9 * (level - 1)));
                ulong slot = table + (index * 8);
                bool leaf;
                ulong next;
                if (!slots.Add(slot))
                {
                    // A slot this walk already wrote: the walk reads that value again at this level.
                    aliased = true;
                    ulong again = Model[slot];
                    leaf = level == 1 || (level is 2 or 3 && (again & Pte.PageSize) != 0);
                    next = again & Pte.Bits(_maxPhys - 1, 12);
                }
                else
                {
                    ulong pte = RandomEntry(level, out leaf, out next);
                    if (!leaf && _rng.Next(8) == 0)
                    {
                        // Point the entry at its own table.
                        pte = (pte & ~next) | table;
                        next = table;
                    }

                    Write(slot, pte);
                }

                if (leaf)
                {
                    break;
                }

                table = next;
            }

            // Below a large leaf the index bits are page offset: random as well.
            for (int below = level - 1; below >= 1; below--)
            {
                gla |= (ulong)(uint)_rng.Next(512) << (12 + (9 * (below - 1)));
            }

            return Canonical(gla, levels);
        }

        private ulong RandomEntry(int level, out bool leaf, out ulong next)
        {
            ulong pte = 0;
            pte |= _rng.Next(100) < 92 ? Pte.Present : 0;
            pte |= _rng.Next(100) < 85 ? Pte.Writable : 0;
            pte |= _rng.Next(100) < 85 ? Pte.User : 0;
            pte |= _rng.Next(2) == 0 ? Pte.Accessed : 0;
            pte |= _rng.Next(2) == 0 ? Pte.Dirty : 0;
            pte |= (ulong)(uint)_rng.Next(16) << 8;                                      // 11:8 ignored (G, AVL)
            pte |= _rng.Next(4) == 0 ? (ulong)(uint)_rng.Next(1 << 11) << 52 : 0;        // 62:52 ignored
            pte |= _rng.Next(100) < 15 ? Pte.ExecuteDisable : 0;
            int psPercent = level switch { 1 => 50, 2 or 3 => 35, _ => 4 };
            pte |= _rng.Next(100) < psPercent ? Pte.PageSize : 0;
            leaf = level == 1 || (level is 2 or 3 && (pte & Pte.PageSize) != 0);
            if (leaf)
            {
                int shift = 12 + (9 * (level - 1));
                next = (ulong)_rng.NextInt64(0, (long)(_leafLimit >> shift)) << shift;
                if (level > 1 && _rng.Next(2) == 0)
                {
                    pte |= 1UL << 12;                                                 // PAT of a large page
                }
            }
            else
            {
                next = RandomPoolFrame();
            }

            pte |= next;

            // Reserved bits now and then: 51:MAXPHYADDR anywhere, 20:13 / 29:13 in large leaves.
            if (_maxPhys <= 51 && _rng.Next(100) < 4)
            {
                pte |= 1UL << _rng.Next(_maxPhys, 52);
            }

            if (leaf && level == 2 && _rng.Next(100) < 5)
            {
                pte |= 1UL << _rng.Next(13, 21);
            }

            if (leaf && level == 3 && _rng.Next(100) < 5)
            {
                pte |= 1UL << _rng.Next(13, 30);
            }

            return pte;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// <see cref="Vcpu.TranslateLinear"/> against the hand-derived stage-1 vectors in
    /// tests/Data/stage1-cases.txt (format and layout in the file's header). Each case runs in a
    /// fresh domain whose EPT maps the guest table frames and the expected data page 4K RamRw
    /// RWX, so the EPT never interferes; the result, the A/D bits left in guest RAM, and
    /// <see cref="Vcpu.TranslateLinearBatch"/> of the same address are checked. Also the
    /// argument checks of both entry points.
    /// </summary>
    public sealed class Stage1TableTests
    {
        private const string FileName = "stage1-cases.txt";

        private static readonly Lazy<Stage1CaseSet> s_cases = new(() => Stage1CaseFile.Load(FindDataFile()));

        /// <summary>One row per case, shown as <c>file:line</c>.</summary>
        public static TheoryData<string> CaseIds()
        {
            TheoryData<string> data = new();
            foreach (Stage1Case c in s_cases.Value.Cases)
            {
                data.Add(c.Id);
            }

            return data;
        }

        [Fact]
        public void DataFile_ParsesCleanly_AndCoversEnoughCases()
        {
            Stage1CaseSet set = s_cases.Value;
            Assert.Empty(set.Errors);
            Assert.True(set.Cases.Count >= 40, $"only {set.Cases.Count} cases");

            // Every family of outcome is represented.
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 1);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 2);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.Ok && c.Expected.Level == 3);
            Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.NonCanonical);
            foreach (PageFaultErrorCode bit in new[] { PageFaultErrorCode.Present, PageFaultErrorCode.Write, PageFaultErrorCode.User, PageFaultErrorCode.Reserved, PageFaultErrorCode.InstructionFetch })
            {
                Assert.Contains(set.Cases, c => c.Expected.Status == GuestStatus.PageFault && (c.Expected.ErrorCode & bit) != 0);
            }

            Assert.Contains(set.Cases, c => c.Levels == 5);
            Assert.Contains(set.Cases, c => !c.Wp);
            Assert.Contains(set.Cases, c => !c.Nxe);
        }

        [Fact]
        public void Parser_RejectsMalformedLines()
        {
            string text = string.Join('\n',
                "config levels=6",
                "case sr PWU => ok 8K 0x0",
                "case sq PWU => pf 0x0 4",
                "case sr PWQ => pf 0x0 4",
                "case sr PWU PWUS PWU => ok 1G 0x0",
                "case sr PWU PWU PWU PWU PWU => ok 4K 0x0",
                "case sr PWU",
                "bogus line",
                "case sr PWU+64 => pf 0x9 4",
                "case sr P P P P => ok 4K 0x0");
            Stage1CaseSet set = Stage1CaseFile.Parse("t.txt", text);
            Assert.Equal(9, set.Errors.Count);
            Stage1Case only = Assert.Single(set.Cases);
            Assert.Equal("t.txt:10", only.Id);
            Assert.Equal(new[] { Pte.Present, Pte.Present, Pte.Present, Pte.Present }, only.Entries);
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void TranslateLinear_MatchesHandDerivedCase(string id)
        {
            Stage1Case c = s_cases.Value.Cases.Single(x => x.Id == id);
            using HostMemory memory = new(512L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { AddressBits = c.MaxPhysAddr } });
            Dictionary<ulong, ulong> mfnOf = new();
            for (int i = 0; i < c.Levels; i++)
            {
                ulong mfn = memory.AllocateFrame();
                mfnOf[Stage1Case.TableGfn + (ulong)i] = mfn;
                domain.HostP2m.SetEntry(Stage1Case.TableGfn + (ulong)i, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            ulong dataMfn = 0;
            if (c.Expected.Status == GuestStatus.Ok)
            {
                dataMfn = memory.AllocateFrame();
                domain.HostP2m.SetEntry(c.Expected.Gpa >> 12, dataMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            // Lay the entries out (see the file header) and remember every slot written.
            ulong[] slotHpa = new ulong[c.Entries.Length];
            for (int i = 0; i < c.Entries.Length; i++)
            {
                int level = c.Levels - i;
                slotHpa[i] = (mfnOf[Stage1Case.TableGfn + (ulong)i] << 12) + (Stage1Case.Index(c.Gla, level) * 8);
                memory.WriteUInt64(slotHpa[i], c.EntryValue(i));
            }

            ulong[][] before = mfnOf.Values.Select(m => ReadFrame(memory, m)).ToArray();

            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = c.Levels == 5 ? GuestPagingMode.LongMode5 : GuestPagingMode.LongMode4;
            cpu.Cr3 = Stage1Case.TableGfn << 12;
            cpu.Wp = c.Wp;
            cpu.Nxe = c.Nxe;
            GuestTranslation r = cpu.TranslateLinear(c.Gla, c.Access);

            Assert.Equal(c.Expected.Status, r.Status);
            switch (c.Expected.Status)
            {
                case GuestStatus.Ok:
                    Assert.Equal($"0x{c.Expected.Gpa:X}", $"0x{r.Gpa:X}");
                    Assert.Equal(c.Expected.Level, r.Level);
                    Assert.Equal((dataMfn << 12) | (c.Expected.Gpa & 0xFFF), r.Hpa);
                    Assert.Equal(PageFaultErrorCode.None, r.ErrorCode);
                    Assert.Equal(EptStatus.Ok, r.Ept.Status);
                    break;
                case GuestStatus.PageFault:
                    Assert.Equal($"0x{(uint)c.Expected.ErrorCode:X}", $"0x{(uint)r.ErrorCode:X}");
                    Assert.Equal(c.Expected.Level, r.Level);
                    Assert.Equal(0UL, r.Gpa);
                    Assert.Equal(0UL, r.Hpa);
                    break;
            }

            // Guest RAM afterwards: A on every entry of a successful walk, D on the leaf of a
            // write, nothing else; nothing at all after a fault.
            ulong[][] expected = before.Select(f => (ulong[])f.Clone()).ToArray();
            if (c.Expected.Status == GuestStatus.Ok)
            {
                for (int i = 0; i < c.Entries.Length; i++)
                {
                    bool leaf = i == c.Entries.Length - 1;
                    ulong set = Pte.Accessed | (leaf && (c.Access & PageFaultErrorCode.Write) != 0 ? Pte.Dirty : 0);
                    expected[i][Stage1Case.Index(c.Gla, c.Levels - i)] |= set;
                }
            }

            ulong[] mfns = mfnOf.Values.ToArray();
            for (int f = 0; f < mfns.Length; f++)
            {
                ulong[] now = ReadFrame(memory, mfns[f]);
                for (int s = 0; s < 512; s++)
                {
                    Assert.True(expected[f][s] == now[s], $"table {f} slot {s}: expected 0x{expected[f][s]:X}, found 0x{now[s]:X}");
                }
            }

            // The batch entry point gives the same answer (the tables now carry the A/D bits,
            // which never change an outcome).
            GuestTranslation[] batch = new GuestTranslation[1];
            Assert.Equal(1, cpu.TranslateLinearBatch([c.Gla], c.Access, batch));
            Assert.Equal(r, batch[0]);
        }

        [Theory]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_8000_0000_0000UL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_FFFF_FFFF_FFFFUL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode4, 0x8000_0000_0000_0000UL, GuestStatus.NonCanonical)]
        [InlineData(GuestPagingMode.LongMode4, 0xFFFF_7FFF_FFFF_FFFFUL, GuestStatus.NonCanonical)]
        [InlineData(GuestPagingMode.LongMode5, 0xFF00_0000_0000_0000UL, GuestStatus.EptViolation)]
        [InlineData(GuestPagingMode.LongMode5, 0xFE00_0000_0000_0000UL, GuestStatus.NonCanonical)]
        public void TranslateLinear_AddressesWithBit63_AreClassifiedNotThrown(GuestPagingMode mode, ulong gla, GuestStatus expected)
        {
            // Upper-half addresses are the kernel's: they must walk (here: CR3 = 0 is not mapped,
            // so the first paging-structure read fails in the EPT) in every build configuration,
            // the overflow-checked Debug build included.
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = mode;
            Assert.Equal(expected, cpu.TranslateLinear(gla, PageFaultErrorCode.None).Status);
            GuestTranslation[] batch = new GuestTranslation[1];
            cpu.TranslateLinearBatch([gla], PageFaultErrorCode.None, batch);
            Assert.Equal(expected, batch[0].Status);
        }

        [Theory]
        [InlineData(0, 52)]
        [InlineData(1, 56)]
        [InlineData(2, 54)]
        [InlineData(3, 52)]
        public void GuestPhysicalWidthAbove52_EntryBits52AndUpStayIgnored(int entry, int bit)
        {
            // A 5-level EPT may be 57 bits wide, but a guest paging entry can only name 52 bits
            // of physical address (MAXPHYADDR is at most 52, SDM Vol. 3A 4.1.4); bits 62:52 of
            // every IA-32e entry are ignored (tables 4-15 to 4-20, no protection keys).
            using HostMemory memory = new(512L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { Levels = 5, AddressBits = 57 } });
            ulong[] gfns = [0x10, 0x11, 0x12, 0x13, 0x20];
            ulong[] mfns = new ulong[gfns.Length];
            for (int i = 0; i < gfns.Length; i++)
            {
                mfns[i] = memory.AllocateFrame();
                domain.HostP2m.SetEntry(gfns[i], mfns[i], PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            const ulong Gla = 0x7FFF_89AB_CDEF;
            for (int i = 0; i < 4; i++)
            {
                ulong value = (gfns[i + 1] << 12) | Pte.Present | Pte.Writable | Pte.User | (i == entry ? 1UL << bit : 0);
                memory.WriteUInt64((mfns[i] << 12) + (Stage1Case.Index(Gla, 4 - i) * 8), value);
            }

            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = GuestPagingMode.LongMode4;
            cpu.Cr3 = 0x10000;
            GuestTranslation r = cpu.TranslateLinear(Gla, PageFaultErrorCode.User | PageFaultErrorCode.Write);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal($"0x{0x20DEF:X}", $"0x{r.Gpa:X}");
            Assert.Equal((mfns[4] << 12) | 0xDEF, r.Hpa);
        }

        [Theory]
        [InlineData(PageFaultErrorCode.Reserved)]
        [InlineData(PageFaultErrorCode.Write | PageFaultErrorCode.Reserved)]
        [InlineData((PageFaultErrorCode)0x20)]
        [InlineData((PageFaultErrorCode)0x8000)]
        [InlineData((PageFaultErrorCode)0x8000_0000)]
        public void TranslateLinear_PfecOutsidePWUI_Throws(PageFaultErrorCode pfec)
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            foreach (GuestPagingMode mode in new[] { GuestPagingMode.Flat, GuestPagingMode.LongMode4, GuestPagingMode.LongMode5 })
            {
                domain.Vcpus[0].Mode = mode;
                ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => domain.Vcpus[0].TranslateLinear(0x1000, pfec));
                Assert.Equal("pfec", e.ParamName);
            }
        }

        [Theory]
        [InlineData(PageFaultErrorCode.None)]
        [InlineData(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch)]
        public void TranslateLinear_PfecInsidePWUI_DoesNotThrow(PageFaultErrorCode pfec)
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            domain.Vcpus[0].Mode = GuestPagingMode.LongMode4;

            // CR3 = 0 and nothing mapped: the PML4E read fails in the EPT, but the access is accepted.
            Assert.Equal(GuestStatus.EptViolation, domain.Vcpus[0].TranslateLinear(0x1000, pfec).Status);
        }

        [Fact]
        public void TranslateLinearBatch_ShortResults_ThrowsAndWritesNothing()
        {
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            GuestTranslation[] results = new GuestTranslation[2];
            ArgumentException e = Assert.Throws<ArgumentException>(() => cpu.TranslateLinearBatch([0x1000, 0x2000, 0x3000], PageFaultErrorCode.None, results));
            Assert.Equal("results", e.ParamName);
            Assert.All(results, r => Assert.Equal(default, r));

            // Empty in, nothing out; a longer results span is fine.
            Assert.Equal(0, cpu.TranslateLinearBatch([], PageFaultErrorCode.None, []));
            Assert.Equal(2, cpu.TranslateLinearBatch([0x1000, 0x2000], PageFaultErrorCode.None, new GuestTranslation[5]));
        }

        [Theory]
        [InlineData(PageFaultErrorCode.Reserved)]
        [InlineData((PageFaultErrorCode)0x20)]
        public void TranslateLinearBatch_PfecOutsidePWUI_ThrowsLikeTranslateLinear(PageFaultErrorCode pfec)
        {
            // The batch documents that each result equals TranslateLinear of the same address,
            // so an access TranslateLinear refuses must be refused here as well.
            using HostMemory memory = new(64L * 4096);
            using Domain domain = new(memory, new DomainOptions { AltViews = 0 });
            Vcpu cpu = domain.Vcpus[0];
            cpu.Mode = GuestPagingMode.LongMode4;
            ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => cpu.TranslateLinearBatch([0x1000], pfec, new GuestTranslation[1]));
            Assert.Equal("pfec", e.ParamName);
        }

        private static ulong[] ReadFrame(HostMemory memory, ulong mfn)
        {
            ulong[] words = new ulong[512];
            for (int i = 0; i < 512; i++)
            {
                words[i] = memory.ReadUInt64((mfn << 12) + ((ulong)i * 8));
            }

            return words;
        }

        private static string FindDataFile()
        {
            string copied = Path.Combine(AppContext.BaseDirectory, "Data", FileName);
            return System.IO.File.Exists(copied) ? copied : Path.Combine(TestVectors.DataDirectory(), FileName);
        }
    }

    /// <summary>The expectation of one case.</summary>
    internal readonly record struct Stage1Expected(GuestStatus Status, ulong Gpa, PageFaultErrorCode ErrorCode, int Level);

    /// <summary>One line of stage1-cases.txt with its config.</summary>
    internal sealed record Stage1Case(string Id, int Levels, bool Wp, bool Nxe, int MaxPhysAddr, ulong Gla, PageFaultErrorCode Access, ulong[] Entries, Stage1Expected Expected)
    {
        /// <summary>Guest frame of the top table (CR3); table i is TableGfn + i.</summary>
        public const ulong TableGfn = 0x10;

        public const ulong Leaf4K = 0x6543_2000;
        public const ulong Leaf2M = 0x6540_0000;
        public const ulong Leaf1G = 0x4000_0000;

        public static ulong Index(ulong gla, int level) => (gla >> (12 + (9 * (level - 1)))) & 511;

        public static bool IsLeaf(ulong entry, int level) => level == 1 || (level is 2 or 3 && (entry & Pte.PageSize) != 0);

        /// <summary>The raw entry i with its address field filled in as the file header says.</summary>
        public ulong EntryValue(int i)
        {
            ulong e = Entries[i];
            if (e == 0)
            {
                return 0;
            }

            int level = Levels - i;
            ulong address = !IsLeaf(e, level) ? (TableGfn + (ulong)i + 1) << 12 : level == 1 ? Leaf4K : level == 2 ? Leaf2M : Leaf1G;
            return e | address;
        }
    }

    internal sealed record Stage1CaseSet(IReadOnlyList<Stage1Case> Cases, IReadOnlyList<string> Errors);

    /// <summary>Parser of the stage1-cases.txt format (see the file's header).</summary>
    internal static class Stage1CaseFile
    {
        private const ulong DefaultGla = 0x7FFF_89AB_CDEF;

        public static Stage1CaseSet Load(string path)
        {
            if (!System.IO.File.Exists(path))
            {
                return new Stage1CaseSet([], [$"{path}: no such file"]);
            }

            return Parse(Path.GetFileName(path), System.IO.File.ReadAllText(path));
        }

        public static Stage1CaseSet Parse(string fileName, string text)
        {
            List<Stage1Case> cases = new();
            List<string> errors = new();
            int levels = 4, maxPhys = 48;
            bool wp = true, nxe = true;
            ulong gla = DefaultGla;
            string[] lines = text.Split('\n');
            for (int n = 0; n < lines.Length; n++)
            {
                string id = $"{fileName}:{n + 1}";
                string line = lines[n];
                int hash = line.IndexOf('#', StringComparison.Ordinal);
                if (hash >= 0)
                {
                    line = line[..hash];
                }

                string[] tokens = line.Split((char[])[' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
                if (tokens.Length == 0)
                {
                    continue;
                }

                try
                {
                    if (tokens[0] == "config")
                    {
                        // Keys left out take their defaults; nothing changes unless the whole line parses.
                        (int newLevels, bool newWp, bool newNxe, int newMaxPhys, ulong newGla) = (4, true, true, 48, DefaultGla);
                        foreach (string t in tokens.Skip(1))
                        {
                            string[] kv = t.Split('=', 2);
                            string value = kv.Length == 2 ? kv[1] : throw new FormatException($"'{t}' is not key=value");
                            switch (kv[0])
                            {
                                case "levels":
                                    newLevels = int.Parse(value, CultureInfo.InvariantCulture);
                                    if (newLevels is not (4 or 5))
                                    {
                                        throw new FormatException("levels must be 4 or 5");
                                    }

                                    break;
                                case "wp":
                                    newWp = ParseBool(value);
                                    break;
                                case "nxe":
                                    newNxe = ParseBool(value);
                                    break;
                                case "maxphyaddr":
                                    newMaxPhys = int.Parse(value, CultureInfo.InvariantCulture);
                                    if (newMaxPhys is < 32 or > 52)
                                    {
                                        throw new FormatException("maxphyaddr must be in [32, 52]");
                                    }

                                    break;
                                case "gla":
                                    newGla = ParseHex(value);
                                    break;
                                default:
                                    throw new FormatException($"unknown key '{kv[0]}'");
                            }
                        }

                        (levels, wp, nxe, maxPhys, gla) = (newLevels, newWp, newNxe, newMaxPhys, newGla);
                        continue;
                    }

                    if (tokens[0] != "case")
                    {
                        throw new FormatException($"unknown directive '{tokens[0]}'");
                    }

                    int arrow = Array.IndexOf(tokens, "=>");
                    if (arrow < 0)
                    {
                        throw new FormatException("no '=>'");
                    }

                    int at = 1;
                    ulong caseGla = gla;
                    if (tokens[at].StartsWith("gla=", StringComparison.Ordinal))
                    {
                        caseGla = ParseHex(tokens[at][4..]);
                        at++;
                    }

                    PageFaultErrorCode access = ParseAccess(tokens[at++]);
                    ulong[] entries = tokens[at..arrow].Select(ParseEntry).ToArray();
                    if (entries.Length > levels)
                    {
                        throw new FormatException($"{entries.Length} entries for {levels} levels");
                    }

                    for (int i = 0; i < entries.Length - 1; i++)
                    {
                        if (entries[i] != 0 && Stage1Case.IsLeaf(entries[i], levels - i))
                        {
                            throw new FormatException($"entry {i + 1} is a leaf but more entries follow");
                        }
                    }

                    Stage1Expected expected = ParseResult(tokens[(arrow + 1)..]);
                    cases.Add(new Stage1Case(id, levels, wp, nxe, maxPhys, caseGla, access, entries, expected));
                }
                catch (Exception e) when (e is FormatException or OverflowException or IndexOutOfRangeException or ArgumentException)
                {
                    errors.Add($"{id}: {e.Message}");
                }
            }

            return new Stage1CaseSet(cases, errors);
        }

        private static bool ParseBool(string s) => s switch
        {
            "0" => false,
            "1" => true,
            _ => throw new FormatException($"'{s}' is not 0 or 1"),
        };

        private static ulong ParseHex(string s)
            => s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.Parse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture)
                : throw new FormatException($"'{s}' is not 0x-prefixed hex");

        private static PageFaultErrorCode ParseAccess(string s)
        {
            PageFaultErrorCode a = s.Length is 2 or 3 ? PageFaultErrorCode.None : throw new FormatException($"bad access '{s}'");
            a |= s[0] switch
            {
                's' => PageFaultErrorCode.None,
                'u' => PageFaultErrorCode.User,
                _ => throw new FormatException($"bad access '{s}'"),
            };
            a |= s[1] switch
            {
                'r' => PageFaultErrorCode.None,
                'w' => PageFaultErrorCode.Write,
                'x' => PageFaultErrorCode.InstructionFetch,
                _ => throw new FormatException($"bad access '{s}'"),
            };
            if (s.Length == 3)
            {
                a |= s[2] == 'p' ? PageFaultErrorCode.Present : throw new FormatException($"bad access '{s}'");
            }

            return a;
        }

        private static ulong ParseEntry(string s)
        {
            if (s == "-")
            {
                return 0;
            }

            string[] parts = s.Split('+');
            ulong e = 0;
            foreach (char ch in parts[0])
            {
                e |= ch switch
                {
                    'P' => Pte.Present,
                    'W' => Pte.Writable,
                    'U' => Pte.User,
                    'A' => Pte.Accessed,
                    'D' => Pte.Dirty,
                    'S' => Pte.PageSize,
                    'X' => Pte.ExecuteDisable,
                    _ => throw new FormatException($"bad flag '{ch}' in '{s}'"),
                };
            }

            foreach (string bit in parts.Skip(1))
            {
                int b = int.Parse(bit, CultureInfo.InvariantCulture);
                e |= b is >= 0 and < 64 ? 1UL << b : throw new FormatException($"bit {b} in '{s}'");
            }

            return e;
        }

        private static Stage1Expected ParseResult(string[] t)
        {
            switch (t.Length > 0 ? t[0] : "")
            {
                case "ok" when t.Length == 3:
                    int level = t[1] switch
                    {
                        "4K" => 1,
                        "2M" => 2,
                        "1G" => 3,
                        _ => throw new FormatException($"bad page size '{t[1]}'"),
                    };
                    return new Stage1Expected(GuestStatus.Ok, ParseHex(t[2]), PageFaultErrorCode.None, level);
                case "pf" when t.Length == 3:
                    return new Stage1Expected(GuestStatus.PageFault, 0, (PageFaultErrorCode)checked((uint)ParseHex(t[1])), int.Parse(t[2], CultureInfo.InvariantCulture));
                case "noncanonical" when t.Length == 1:
                    return new Stage1Expected(GuestStatus.NonCanonical, 0, PageFaultErrorCode.None, 0);
                default:
                    throw new FormatException($"bad result '{string.Join(' ', t)}'");
            }
        }
    }
}

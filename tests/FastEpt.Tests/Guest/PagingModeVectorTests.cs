// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// The hand-derived vectors of tests/Data/paging-modes.txt (format in the file's header;
    /// docs/model/guest-paging.md §8.6): each case replays its block up to itself on fresh guest
    /// RAM and checks <see cref="Vcpu.TranslateLinear"/> or <see cref="Vcpu.LoadCr3"/>.
    /// </summary>
    public sealed class PagingModeVectorTests
    {
        private const string FileName = "paging-modes.txt";

        public static TheoryData<string> Cases()
        {
            TheoryData<string> data = new();
            foreach ((int line, string text) in Lines())
            {
                if (text.StartsWith("case ", StringComparison.Ordinal) || text.StartsWith("load ", StringComparison.Ordinal))
                {
                    data.Add($"{FileName}:{line}");
                }
            }

            return data;
        }

        [Fact]
        public void File_HasCasesForEveryMode()
        {
            string[] modes = Lines().Where(l => l.Text.StartsWith("mode ", StringComparison.Ordinal)).Select(l => l.Text.Split(' ')[1]).Distinct().ToArray();
            Assert.Equal(["Paging32", "Pae", "LongMode4", "LongMode5"], modes);
            int cases = Cases().Count;
            Assert.True(cases >= 40, $"only {cases} cases");
        }

        [Theory]
        [MemberData(nameof(Cases))]
        public void Vector_MatchesTheSdm(string id)
        {
            int target = int.Parse(id[(id.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
            List<(int Line, string Text)> lines = Lines();
            int start = lines.FindLastIndex(l => l.Line < target && l.Text.StartsWith("mode ", StringComparison.Ordinal));
            Assert.True(start >= 0, $"{id}: no mode line above the case");
            string[] mode = lines[start].Text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Dictionary<string, string> keys = Keys(mode.Skip(2));
            int maxPhys = int.Parse(keys.GetValueOrDefault("maxphys", "48"), CultureInfo.InvariantCulture);
            using IdentityRam ram = new(4, maxPhys, accessDirty: false);
            Vcpu cpu = ram.Cpu;
            cpu.Mode = Enum.Parse<GuestPagingMode>(mode[1]);
            ulong cr3 = Hex(keys["cr3"]);
            Set(cpu, keys);
            cpu.Cr3 = cr3;
            foreach ((int line, string text) in lines.Skip(start + 1).TakeWhile(l => l.Line <= target))
            {
                string[] t = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                bool check = line == target;
                string where = $"{FileName}:{line}";
                switch (t[0])
                {
                    case "set":
                        Set(cpu, Keys(t.Skip(1)));
                        break;
                    case "w32":
                        ulong q = Hex(t[1]) & ~7UL;
                        int half = (int)(Hex(t[1]) & 4) * 8;
                        ram.Write(q, (ram.Read(q) & ~(0xFFFF_FFFFUL << half)) | (Hex(t[2]) << half));
                        break;
                    case "w64":
                        ram.Write(Hex(t[1]), Hex(t[2]));
                        break;
                    case "load":
                        GuestStatus s = cpu.LoadCr3(cr3, out GuestTranslation fault);
                        if (check)
                        {
                            Assert.True(t[2] == "ok" ? s == GuestStatus.Ok : s == GuestStatus.GeneralProtection && fault.Gpa == Hex(t[3]),
                                        $"{where}: {text} gave {s} {fault}");
                        }

                        break;
                    case "case" when check:
                        GuestTranslation r = cpu.TranslateLinear(Hex(t[2]), Access(t[1]));
                        Assert.True(Matches(t[4..], r), $"{where}: {text} gave {r} (shift {r.PageShift}, g {r.Global})");
                        break;
                    case "case":
                        cpu.TranslateLinear(Hex(t[2]), Access(t[1]));     // earlier cases leave their A/D bits, as in the file's order
                        break;
                    case "mode":
                        Assert.Fail($"{where}: the block ended before the case");
                        break;
                    default:
                        Assert.Fail($"{where}: unknown line '{text}'");
                        break;
                }
            }
        }

        private static bool Matches(string[] e, GuestTranslation r) => e[0] switch
        {
            "ok" => r.Status == GuestStatus.Ok && r.Gpa == Hex(e[1]) && r.Level == int.Parse(e[2], CultureInfo.InvariantCulture)
                    && r.PageShift == int.Parse(e[3], CultureInfo.InvariantCulture) && r.Global == (e.Length > 4 && e[4] == "g"),
            "pf" => r.Status == GuestStatus.PageFault && (ulong)r.ErrorCode == Hex(e[1]) && r.Level == int.Parse(e[2], CultureInfo.InvariantCulture),
            "ept" => r.Status == GuestStatus.EptViolation && r.Gpa == Hex(e[1]) && r.Ept.Qualification == Hex(e[2])
                     && r.Level == int.Parse(e[3], CultureInfo.InvariantCulture),
            "noncanonical" => r.Status == GuestStatus.NonCanonical,
            _ => throw new FormatException($"unknown expectation '{e[0]}'"),
        };

        private static PageFaultErrorCode Access(string a)
        {
            PageFaultErrorCode who = a[0] switch
            {
                's' => 0,
                'u' => PageFaultErrorCode.User,
                'i' => PageFaultErrorCode.ImplicitSupervisor,
                _ => throw new FormatException($"access '{a}'"),
            };
            return who | a[1] switch
            {
                'r' => 0,
                'w' => PageFaultErrorCode.Write,
                'x' => PageFaultErrorCode.InstructionFetch,
                _ => throw new FormatException($"access '{a}'"),
            };
        }

        private static void Set(Vcpu cpu, Dictionary<string, string> keys)
        {
            foreach ((string key, string value) in keys)
            {
                switch (key)
                {
                    case "cr4":
                        Cr4Flags modeBits = cpu.Cr4 & (Cr4Flags.Pae | Cr4Flags.La57);
                        cpu.Cr4 = modeBits | (value == "0" ? 0 : value.Split('+').Aggregate(Cr4Flags.None, (f, n) => f | Enum.Parse<Cr4Flags>(n)));
                        break;
                    case "wp": cpu.Wp = value == "1"; break;
                    case "nxe": cpu.Nxe = value == "1"; break;
                    case "ac": cpu.Ac = value == "1"; break;
                    case "pkru": cpu.Pkru = (uint)Hex(value); break;
                    case "pkrs": cpu.Pkrs = (uint)Hex(value); break;
                    case "cr3" or "maxphys": break;
                    default: throw new FormatException($"unknown register '{key}'");
                }
            }
        }

        private static Dictionary<string, string> Keys(IEnumerable<string> tokens)
            => tokens.Select(t => t.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length == 2 ? kv[1] : throw new FormatException($"'{kv[0]}' is not key=value"));

        private static ulong Hex(string s)
            => ulong.Parse(s.Replace("_", "", StringComparison.Ordinal).AsSpan(s.StartsWith("0x", StringComparison.Ordinal) ? 2 : 0), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        private static List<(int Line, string Text)> Lines()
        {
            string[] raw = System.IO.File.ReadAllLines(Path.Combine(TestVectors.DataDirectory(), FileName));
            List<(int, string)> lines = new();
            for (int i = 0; i < raw.Length; i++)
            {
                int hash = raw[i].IndexOf('#', StringComparison.Ordinal);
                string text = (hash >= 0 ? raw[i][..hash] : raw[i]).Trim();
                if (text.Length != 0)
                {
                    lines.Add((i + 1, text));
                }
            }

            return lines;
        }
    }
}

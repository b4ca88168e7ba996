// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;

namespace FastEpt.Tests.Guest
{
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

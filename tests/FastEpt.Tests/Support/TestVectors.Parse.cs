// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;

namespace FastEpt.Tests
{
    public static partial class TestVectors
    {
        private static void ParseInto(string file, string text, List<TranslateVector> cases, List<string> errors)
        {
            TranslateConfig config = TranslateConfig.Default;
            int brokenConfigLine = 0;          // > 0: the config in force was malformed
            string[] lines = text.Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                int lineNo = i + 1;
                string line = lines[i];
                int hash = line.IndexOf('#');
                if (hash >= 0)
                {
                    line = line.Substring(0, hash);
                }

                string[] tokens = line.Split(new[] { ' ', '\t', '\r', '\f', '\v' }, StringSplitOptions.RemoveEmptyEntries);
                if (tokens.Length == 0)
                {
                    continue;
                }

                string? error;
                if (tokens[0] == "config")
                {
                    error = ParseConfig(tokens, out TranslateConfig? parsed);
                    if (error is null)
                    {
                        config = parsed!;
                        brokenConfigLine = 0;
                    }
                    else
                    {
                        brokenConfigLine = lineNo;
                    }
                }
                else if (tokens[0] == "case")
                {
                    if (brokenConfigLine > 0)
                    {
                        error = $"case under the malformed config of line {brokenConfigLine}";
                    }
                    else
                    {
                        error = ParseCase(tokens, config, file, lineNo, out TranslateVector? v);
                        if (error is null)
                        {
                            cases.Add(v!);
                        }
                    }
                }
                else
                {
                    error = $"unknown directive '{tokens[0]}' (expected 'config' or 'case')";
                }

                if (error is not null)
                {
                    errors.Add($"{file}:{lineNo}: {error}");
                }
            }
        }

        // Keys left out take their defaults (not the previous config's values).
        private static string? ParseConfig(string[] tokens, out TranslateConfig? config)
        {
            config = null;
            int levels = TranslateConfig.Default.Levels;
            int maxPhyAddr = TranslateConfig.Default.MaxPhyAddr;
            bool xo = TranslateConfig.Default.ExecuteOnly;
            bool oneG = TranslateConfig.Default.Support1G;
            bool ad = TranslateConfig.Default.AccessDirty;
            HashSet<string> seen = new(StringComparer.Ordinal);
            for (int i = 1; i < tokens.Length; i++)
            {
                string t = tokens[i];
                int eq = t.IndexOf('=');
                if (eq <= 0 || eq == t.Length - 1)
                {
                    return $"config item '{t}' is not key=value";
                }

                string key = t.Substring(0, eq);
                string value = t.Substring(eq + 1);
                if (!seen.Add(key))
                {
                    return $"config key '{key}' given twice";
                }

                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                {
                    return $"config value '{t}' is not a decimal number";
                }

                switch (key)
                {
                    case "levels":
                        if (n is not (4 or 5))
                        {
                            return $"levels must be 4 or 5, not {n}";
                        }

                        levels = n;
                        break;
                    case "maxphyaddr":
                        if (n is < 32 or > 52)
                        {
                            return $"maxphyaddr must be in 32..52, not {n}";
                        }

                        maxPhyAddr = n;
                        break;
                    case "xo":
                    case "1g":
                    case "ad":
                        if (n is not (0 or 1))
                        {
                            return $"{key} must be 0 or 1, not {n}";
                        }

                        if (key == "xo")
                        {
                            xo = n == 1;
                        }
                        else if (key == "1g")
                        {
                            oneG = n == 1;
                        }
                        else
                        {
                            ad = n == 1;
                        }

                        break;
                    default:
                        return $"unknown config key '{key}'";
                }
            }

            config = new TranslateConfig(levels, maxPhyAddr, xo, oneG, ad);
            return null;
        }

        private static string? ParseCase(string[] tokens, TranslateConfig config, string file, int line, out TranslateVector? vector)
        {
            vector = null;
            int arrow = Array.IndexOf(tokens, "=>");
            if (arrow < 0)
            {
                return "case has no '=>'";
            }

            if (Array.IndexOf(tokens, "=>", arrow + 1) >= 0)
            {
                return "case has more than one '=>'";
            }

            // case <gpa> <access> <entry>... => <status> <level> <hpa> <qual>
            if (arrow < 4)
            {
                return "case needs '<gpa> <access> <entries...>' before '=>' (at least one entry)";
            }

            if (tokens.Length - arrow - 1 != 4)
            {
                return $"case needs exactly '<status> <level> <hpa> <qual>' after '=>' (found {tokens.Length - arrow - 1} items)";
            }

            if (!TryParseHex(tokens[1], requirePrefix: false, out ulong gpa))
            {
                return $"gpa '{tokens[1]}' is not a 64-bit hex number";
            }

            if ((gpa >> config.GpaBits) != 0)
            {
                return $"gpa 0x{gpa:X} is not below 2^{config.GpaBits} (levels={config.Levels})";
            }

            if (!TryParseAccess(tokens[2], out AccessKind access))
            {
                return $"access '{tokens[2]}' is not a non-empty set of the letters r, w, x";
            }

            int entryCount = arrow - 3;
            if (entryCount > config.Levels)
            {
                return $"{entryCount} entries for a {config.Levels}-level walk";
            }

            ulong[] entries = new ulong[entryCount];
            for (int i = 0; i < entryCount; i++)
            {
                if (!TryParseHex(tokens[3 + i], requirePrefix: true, out entries[i]))
                {
                    return $"entry '{tokens[3 + i]}' is not 0x followed by 1..16 hex digits";
                }
            }

            string statusText = tokens[arrow + 1];
            EptStatus status;
            switch (statusText)
            {
                case "ok":
                    status = EptStatus.Ok;
                    break;
                case "violation":
                    status = EptStatus.Violation;
                    break;
                case "misconfig":
                    status = EptStatus.Misconfig;
                    break;
                default:
                    return $"status '{statusText}' is not ok, violation or misconfig";
            }

            if (!int.TryParse(tokens[arrow + 2], NumberStyles.None, CultureInfo.InvariantCulture, out int level)
                || level < 1 || level > config.Levels)
            {
                return $"level '{tokens[arrow + 2]}' is not a decimal in 1..{config.Levels}";
            }

            if (!TryParseHex(tokens[arrow + 3], requirePrefix: false, out ulong hpa))
            {
                return $"hpa '{tokens[arrow + 3]}' is not a 64-bit hex number";
            }

            if (!TryParseHex(tokens[arrow + 4], requirePrefix: false, out ulong qual))
            {
                return $"qual '{tokens[arrow + 4]}' is not a 64-bit hex number";
            }

            // Invariants the README states, checked so that a typo cannot hide in the data.
            if (status != EptStatus.Ok && hpa != 0)
            {
                return $"hpa must be 0 unless the status is ok";
            }

            if (status != EptStatus.Violation && qual != 0)
            {
                return $"qual must be 0 unless the status is violation";
            }

            if (status == EptStatus.Ok && level > 3)
            {
                return $"an ok walk ends at level 1, 2 or 3, not {level}";
            }

            if (status == EptStatus.Ok && (hpa & 0xFFF) != (gpa & 0xFFF))
            {
                return $"hpa 0x{hpa:X} does not keep the page offset of gpa 0x{gpa:X}";
            }

            if (status == EptStatus.Violation && (qual > 0x3F || (qual & 7) != (ulong)access))
            {
                return $"qual 0x{qual:X} must hold the access ({FormatAccess(access)} = 0x{(int)access:X}) in bits 0-2 and nothing above bit 5";
            }

            vector = new TranslateVector(config, gpa, access, entries, status, level, hpa, qual, file, line);
            return null;
        }

        private static bool TryParseHex(string s, bool requirePrefix, out ulong value)
        {
            value = 0;
            string digits = s;
            if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                digits = s.Substring(2);
            }
            else if (requirePrefix)
            {
                return false;
            }

            return digits.Length is > 0 and <= 16
                && digits.All(Uri.IsHexDigit)
                && ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }

        private static bool TryParseAccess(string s, out AccessKind access)
        {
            access = 0;
            foreach (char c in s)
            {
                AccessKind bit = c switch
                {
                    'r' => AccessKind.Read,
                    'w' => AccessKind.Write,
                    'x' => AccessKind.Execute,
                    _ => 0,
                };
                if (bit == 0 || (access & bit) != 0)
                {
                    access = 0;
                    return false;
                }

                access |= bit;
            }

            return access != 0;
        }
    }
}

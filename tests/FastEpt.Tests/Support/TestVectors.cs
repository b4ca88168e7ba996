// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;
using System.Text;

namespace FastEpt.Tests
{
    /// <summary>The <c>config</c> line in force for a vector (tests/Data/README.md).</summary>
    /// <param name="Levels">Paging levels, 4 or 5.</param>
    /// <param name="MaxPhyAddr">MAXPHYADDR (host-physical width), 32..52.</param>
    /// <param name="ExecuteOnly">Execute-only entries supported (<c>xo</c>).</param>
    /// <param name="Support1G">1 GiB pages supported (<c>1g</c>).</param>
    /// <param name="AccessDirty">EPTP accessed/dirty enable (<c>ad</c>).</param>
    public sealed record TranslateConfig(int Levels, int MaxPhyAddr, bool ExecuteOnly, bool Support1G, bool AccessDirty)
    {
        /// <summary><c>levels=4 maxphyaddr=46 xo=1 1g=1 ad=0</c>.</summary>
        public static TranslateConfig Default { get; } = new(4, 46, true, true, false);

        /// <summary>Guest-physical width: 12 + 9 * levels.</summary>
        public int GpaBits => 12 + (9 * Levels);

        /// <summary>The options a <see cref="P2m"/> needs to walk as this config says.</summary>
        public P2mOptions ToP2mOptions() => new()
        {
            Levels = Levels,
            AddressBits = GpaBits,
            HostAddressBits = MaxPhyAddr,
            ExecuteOnly = ExecuteOnly,
            Support1G = Support1G,
            AccessDirty = AccessDirty,
        };

        /// <summary>The config in the file's own syntax.</summary>
        public override string ToString()
            => $"config levels={Levels} maxphyaddr={MaxPhyAddr} xo={(ExecuteOnly ? 1 : 0)} 1g={(Support1G ? 1 : 0)} ad={(AccessDirty ? 1 : 0)}";
    }

    /// <summary>One <c>case</c> line of a <c>translate*.txt</c> file, with the config in force.</summary>
    /// <param name="Config">The preceding <c>config</c> (or the defaults).</param>
    /// <param name="Gpa">Guest-physical address to translate.</param>
    /// <param name="AccessKind">The access (r/w/x letters).</param>
    /// <param name="Entries">Raw entries, top level first (see <see cref="TestVectors.EntryWrites"/>).</param>
    /// <param name="ExpectedStatus">Hand-derived status.</param>
    /// <param name="ExpectedLevel">Hand-derived level (Intel numbering).</param>
    /// <param name="ExpectedHpa">Hand-derived HPA (0 unless ok).</param>
    /// <param name="ExpectedQualification">Hand-derived qualification (0 unless violation).</param>
    /// <param name="File">File name (no directory), for reports.</param>
    /// <param name="Line">1-based line number of the case.</param>
    public sealed record TranslateVector(
        TranslateConfig Config,
        ulong Gpa,
        AccessKind AccessKind,
        ulong[] Entries,
        EptStatus ExpectedStatus,
        int ExpectedLevel,
        ulong ExpectedHpa,
        ulong ExpectedQualification,
        string File,
        int Line)
    {
        /// <summary><c>file:line</c>, unique over a data directory.</summary>
        public string Id => $"{File}:{Line}";

        /// <summary>The expectation in the file's syntax (<c>status level hpa qual</c>).</summary>
        public string Expected => TestVectors.FormatResult(ExpectedStatus, ExpectedLevel, ExpectedHpa, ExpectedQualification);

        /// <summary>The case in the file's syntax, with its location and config.</summary>
        public string Describe()
            => $"{Id}: [{Config}] case 0x{Gpa:X} {TestVectors.FormatAccess(AccessKind)} {string.Join(" ", Entries.Select(e => $"0x{e:X}"))} => {Expected}";

        /// <inheritdoc/>
        public override string ToString() => Id;
    }

    /// <summary>What <see cref="TestVectors.Load"/> or <see cref="TestVectors.Parse"/> found.</summary>
    public sealed class TestVectorSet
    {
        internal TestVectorSet(IReadOnlyList<string> files, IReadOnlyList<TranslateVector> cases, IReadOnlyList<string> errors)
        {
            Files = files;
            Cases = cases;
            Errors = errors;
        }

        /// <summary>File names read, in ordinal order.</summary>
        public IReadOnlyList<string> Files { get; }

        /// <summary>Every well-formed case, file by file, in line order.</summary>
        public IReadOnlyList<TranslateVector> Cases { get; }

        /// <summary>One <c>file:line: message</c> per malformed line (or missing file); empty when all is well.</summary>
        public IReadOnlyList<string> Errors { get; }
    }

    /// <summary>
    /// Reader for the hand-derived walk vectors in <c>tests/Data/translate*.txt</c> (format:
    /// tests/Data/README.md), and the one place that turns a vector into table contents, so that
    /// the managed walker and the native twin are fed identically.
    /// </summary>
    public static class TestVectors
    {
        /// <summary>Host memory of every vector: 64 frames of 4 KiB.</summary>
        public const int HostFrames = 64;

        /// <summary>The files <see cref="Load"/> reads.</summary>
        public const string FilePattern = "translate*.txt";

        private const ulong MfnMask = 0x000F_FFFF_FFFF_F000;

        /// <summary>The repository root: the nearest folder above <see cref="AppContext.BaseDirectory"/> holding FastEpt.sln.</summary>
        /// <exception cref="InvalidOperationException">No such folder.</exception>
        public static string FindRepoRoot()
        {
            for (DirectoryInfo? d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (System.IO.File.Exists(Path.Combine(d.FullName, "FastEpt.sln")))
                {
                    return d.FullName;
                }
            }

            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains FastEpt.sln.");
        }

        /// <summary><c>tests/Data</c> under the repository root.</summary>
        public static string DataDirectory() => Path.Combine(FindRepoRoot(), "tests", "Data");

        /// <summary>Parses every <c>translate*.txt</c> in <paramref name="dir"/>. Never throws for bad content: see <see cref="TestVectorSet.Errors"/>.</summary>
        public static TestVectorSet Load(string dir)
        {
            ArgumentNullException.ThrowIfNull(dir);
            List<string> files = new();
            List<TranslateVector> cases = new();
            List<string> errors = new();
            if (!Directory.Exists(dir))
            {
                errors.Add($"{dir}: no such directory");
                return new TestVectorSet(files, cases, errors);
            }

            string[] paths = Directory.GetFiles(dir, FilePattern);
            Array.Sort(paths, StringComparer.Ordinal);
            if (paths.Length == 0)
            {
                errors.Add($"{dir}: no {FilePattern} files");
            }

            foreach (string path in paths)
            {
                string name = Path.GetFileName(path);
                files.Add(name);
                ParseInto(name, System.IO.File.ReadAllText(path), cases, errors);
            }

            return new TestVectorSet(files, cases, errors);
        }

        /// <summary>Parses the text of one file called <paramref name="fileName"/>.</summary>
        public static TestVectorSet Parse(string fileName, string text)
        {
            ArgumentNullException.ThrowIfNull(fileName);
            ArgumentNullException.ThrowIfNull(text);
            List<TranslateVector> cases = new();
            List<string> errors = new();
            ParseInto(fileName, text, cases, errors);
            return new TestVectorSet(new[] { fileName }, cases, errors);
        }

        /// <summary>
        /// The 64-bit stores that materialise <paramref name="v"/> in zeroed host memory whose root
        /// table is <paramref name="rootMfn"/> (README.md): entry i goes into the table named by
        /// entry i-1's MFN field (the root for i = 0), at the slot the GPA selects at that level;
        /// writing stops after the last entry or before following an MFN field of 64 or more.
        /// </summary>
        public static IReadOnlyList<(ulong Hpa, ulong Value)> EntryWrites(TranslateVector v, ulong rootMfn)
        {
            ArgumentNullException.ThrowIfNull(v);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rootMfn, (ulong)HostFrames);
            List<(ulong, ulong)> writes = new();
            ulong table = rootMfn;
            int level = v.Config.Levels;
            foreach (ulong entry in v.Entries)
            {
                if (table >= HostFrames || level < 1)
                {
                    break;
                }

                ulong index = (v.Gpa >> (12 + (9 * (level - 1)))) & 511;
                writes.Add(((table << 12) + (index * 8), entry));
                table = (entry & MfnMask) >> 12;
                level--;
            }

            return writes;
        }

        /// <summary>Zeroes all 64 frames of <paramref name="memory"/> and writes <paramref name="v"/>'s entries (<see cref="EntryWrites"/>).</summary>
        /// <exception cref="ArgumentException"><paramref name="memory"/> does not have exactly 64 frames.</exception>
        public static void Materialize(HostMemory memory, ulong rootMfn, TranslateVector v)
        {
            ArgumentNullException.ThrowIfNull(memory);
            ArgumentNullException.ThrowIfNull(v);
            if (memory.FrameCount != HostFrames)
            {
                throw new ArgumentException($"Vectors assume {HostFrames} host frames; this memory has {memory.FrameCount}.", nameof(memory));
            }

            for (ulong f = 0; f < HostFrames; f++)
            {
                memory.Frame(f).Clear();
            }

            foreach ((ulong hpa, ulong value) in EntryWrites(v, rootMfn))
            {
                memory.WriteUInt64(hpa, value);
            }
        }

        /// <summary>A result in the file's syntax: <c>status level 0xHPA 0xQUAL</c>.</summary>
        public static string FormatResult(EptStatus status, int level, ulong hpa, ulong qualification)
        {
            string s = status switch
            {
                EptStatus.Ok => "ok",
                EptStatus.Violation => "violation",
                EptStatus.Misconfig => "misconfig",
                _ => $"status({(int)status})",
            };
            return string.Create(CultureInfo.InvariantCulture, $"{s} {level} 0x{hpa:X} 0x{qualification:X}");
        }

        /// <summary>An access kind as letters (<c>r</c>, <c>rw</c>, <c>rwx</c>, ...).</summary>
        public static string FormatAccess(AccessKind access)
        {
            StringBuilder sb = new(3);
            if ((access & AccessKind.Read) != 0)
            {
                sb.Append('r');
            }

            if ((access & AccessKind.Write) != 0)
            {
                sb.Append('w');
            }

            if ((access & AccessKind.Execute) != 0)
            {
                sb.Append('x');
            }

            return sb.ToString();
        }

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

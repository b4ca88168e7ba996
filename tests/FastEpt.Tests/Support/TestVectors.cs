// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;
using System.Text;

namespace FastEpt.Tests
{
    /// <summary>
    /// Reader for the hand-derived walk vectors in <c>tests/Data/translate*.txt</c> (format:
    /// tests/Data/README.md), and the one place that turns a vector into table contents, so that
    /// the managed walker and the native twin are fed identically.
    /// </summary>
    public static partial class TestVectors
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
    }
}

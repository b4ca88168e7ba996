// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.IO;

namespace FastEpt.Tests.Entries
{
    /// <summary>One line of <c>tests/Data/eptp.txt</c>: an EPTP, the CPU, and the hand-derived status.</summary>
    public sealed record EptpVector(int Line, ulong Eptp, ulong EptVpidCap, int MaxPhysicalAddress, bool ShadowStack, EptpStatus Expected)
    {
        /// <summary>The capabilities of the line.</summary>
        public EptpCapabilities Capabilities => new(EptVpidCap, MaxPhysicalAddress, ShadowStack);

        /// <summary>For the test explorer: the line and the EPTP.</summary>
        public override string ToString() => $"eptp.txt:{Line} 0x{Eptp:X}";

        /// <summary>Every case of <c>tests/Data/eptp.txt</c>, as xunit rows (one per line, with its line number).</summary>
        public static TheoryData<EptpVector> All()
        {
            var data = new TheoryData<EptpVector>();
            foreach (EptpVector v in Load())
            {
                data.Add(v);
            }

            return data;
        }

        /// <summary>Parses <c>tests/Data/eptp.txt</c>; throws on a malformed line.</summary>
        public static List<EptpVector> Load()
        {
            string path = Path.Combine(TestVectors.DataDirectory(), "eptp.txt");
            var cases = new List<EptpVector>();
            string[] lines = File.ReadAllLines(path);
            for (int i = 0; i < lines.Length; i++)
            {
                string text = lines[i];
                int hash = text.IndexOf('#', StringComparison.Ordinal);
                text = (hash >= 0 ? text[..hash] : text).Trim();
                if (text.Length == 0)
                {
                    continue;
                }

                string[] f = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (f.Length != 7 || f[0] != "eptp" || f[5] != "=>")
                {
                    throw new FormatException($"{path}:{i + 1}: expected 'eptp <eptp> <cap> <maxphyaddr> <sss> => <status>'");
                }

                cases.Add(new EptpVector(i + 1, Hex(f[1]), Hex(f[2]), int.Parse(f[3], CultureInfo.InvariantCulture),
                    f[4] == "1", Enum.Parse<EptpStatus>(f[6])));
            }

            return cases;
        }

        private static ulong Hex(string s)
            => ulong.Parse(s.StartsWith("0x", StringComparison.Ordinal) ? s[2..].Replace("_", string.Empty, StringComparison.Ordinal) : throw new FormatException(s),
                           NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }
}

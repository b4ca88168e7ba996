// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Reflection;
using System.Text.RegularExpressions;

namespace FastEpt.Tests
{
    /// <summary>
    /// docs/divergences.md names, for every deliberate difference from Xen, the test that pins it
    /// down: every such name must resolve to a test class or test method of this assembly, so a
    /// renamed or deleted test cannot leave the list pointing at nothing.
    /// </summary>
    public sealed class DivergencesDocTests
    {
        private static readonly Regex s_row = new(@"^\|\s*(\d+)\s*\|.*\|([^|]*)\|\s*$", RegexOptions.Multiline);
        private static readonly Regex s_name = new(@"`([A-Za-z0-9_.]+)`");

        [Fact]
        public void EveryRow_NamesTestsThatExist()
        {
            string root = RepositoryRoot.Find();
            string doc = File.ReadAllText(Path.Combine(root, "docs", "divergences.md")).Replace("\r\n", "\n");
            Assembly tests = typeof(DivergencesDocTests).Assembly;
            MatchCollection rows = s_row.Matches(doc);
            Assert.True(rows.Count >= 20, $"expected the divergence table, found {rows.Count} rows");
            var missing = new List<string>();
            int expectedNumber = 1;
            foreach (Match row in rows)
            {
                Assert.Equal(expectedNumber++, int.Parse(row.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
                MatchCollection names = s_name.Matches(row.Groups[2].Value);
                if (names.Count == 0)
                {
                    missing.Add($"row {row.Groups[1].Value}: names no test");
                }

                foreach (Match name in names)
                {
                    if (!Resolves(tests, name.Groups[1].Value))
                    {
                        missing.Add($"row {row.Groups[1].Value}: {name.Groups[1].Value}");
                    }
                }
            }

            Assert.True(missing.Count == 0, "Unknown tests in docs/divergences.md:\n" + string.Join("\n", missing));
        }

        private static bool Resolves(Assembly tests, string name)
        {
            if (tests.GetType("FastEpt.Tests." + name) is Type t && IsTestClass(t))
            {
                return true;
            }

            int dot = name.LastIndexOf('.');
            return dot > 0
                && tests.GetType("FastEpt.Tests." + name[..dot]) is Type owner
                && owner.GetMethods().Any(m => m.Name == name[(dot + 1)..]
                    && m.GetCustomAttributes().Any(a => a is FactAttribute));     // [Theory] derives from [Fact]
        }

        private static bool IsTestClass(Type t)
            => t.GetMethods().Any(m => m.GetCustomAttributes().Any(a => a is FactAttribute));
    }
}


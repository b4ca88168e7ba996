// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Linq;
using System.Text.RegularExpressions;

namespace FastEpt.Tests
{
    /// <summary>
    /// The repository's own rules about where things live, checked so that they cannot drift:
    /// unsafe code only in the owners docs/architecture.md lists, every docs/model citation
    /// pointing at a section that exists, nothing citing documents a reader of this repository
    /// cannot open, and no source file growing past one idea's worth of lines.
    /// </summary>
    public sealed class RepositoryLayoutTests
    {
        private const int MaxSourceLines = 500;

        private static readonly string[] s_sourceRoots = { "src", "tests", "bench", "native" };
        private static readonly string[] s_sourceExtensions = { ".cs", ".c", ".h", ".py" };

        // The keyword, not the word in a comment or a string: comments and literals are removed first.
        private static readonly Regex s_unsafeKeyword = new(@"\bunsafe\b");
        private static readonly Regex s_lineComment = new(@"//.*$", RegexOptions.Multiline);
        private static readonly Regex s_stringLiteral = new("@?\"(?:[^\"\\\\\\n]|\\\\.)*\"");
        private static readonly Regex s_backticked = new(@"`([^`]+\.cs)`");
        private static readonly Regex s_modelCitation = new(@"docs/model/([a-z0-9-]+|README)\.md §([0-9]+(?:\.[0-9]+)?)");

        [Fact]
        public void UnsafeCode_OnlyInTheOwnersTheArchitectureDocLists()
        {
            string root = RepositoryRoot.Find();
            string doc = File.ReadAllText(Path.Combine(root, "docs", "architecture.md")).Replace("\r\n", "\n");
            int start = doc.IndexOf("## Where unsafe code lives", StringComparison.Ordinal);
            Assert.True(start >= 0, "docs/architecture.md has no 'Where unsafe code lives' section");
            int end = doc.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
            string section = end < 0 ? doc[start..] : doc[start..end];

            // Each table row names its files: a full path, then siblings of that path by name,
            // or a wildcard such as NativeWalker*.cs.
            var listed = new List<Regex>();
            foreach (string row in section.Split('\n').Where(l => l.StartsWith('|')))
            {
                string folder = "";
                foreach (Match m in s_backticked.Matches(row))
                {
                    string name = m.Groups[1].Value;
                    if (name.Contains('/'))
                    {
                        folder = name[..(name.LastIndexOf('/') + 1)];
                    }
                    else
                    {
                        name = folder + name;
                    }

                    listed.Add(new Regex("^" + Regex.Escape(name).Replace(@"\*", "[^/]*") + "$"));
                }
            }

            Assert.True(listed.Count >= 8, $"expected the unsafe owners table, found {listed.Count} file names");

            var withUnsafe = SourceFiles(root, ".cs")
                .Where(f => s_unsafeKeyword.IsMatch(s_stringLiteral.Replace(s_lineComment.Replace(File.ReadAllText(Path.Combine(root, f)), ""), "\"\"")))
                .ToList();
            var unlisted = withUnsafe.Where(f => !listed.Any(r => r.IsMatch(f))).ToList();
            var stale = listed.Where(r => !withUnsafe.Any(f => r.IsMatch(f))).Select(r => r.ToString()).ToList();
            Assert.True(unlisted.Count == 0, "unsafe code outside the owners docs/architecture.md lists:\n" + string.Join("\n", unlisted));
            Assert.True(stale.Count == 0, "docs/architecture.md lists files with no unsafe code:\n" + string.Join("\n", stale));
        }

        [Fact]
        public void ModelCitations_NameSectionsThatExist()
        {
            string root = RepositoryRoot.Find();
            var headings = new Dictionary<string, string>();
            foreach (string path in Directory.GetFiles(Path.Combine(root, "docs", "model"), "*.md"))
            {
                headings[Path.GetFileNameWithoutExtension(path)] = string.Join("\n",
                    File.ReadAllLines(path).Where(l => l.StartsWith('#')));
            }

            var broken = new List<string>();
            int citations = 0;
            foreach (string file in SourceFiles(root, s_sourceExtensions).Concat(DocFiles(root)))
            {
                foreach (Match m in s_modelCitation.Matches(File.ReadAllText(Path.Combine(root, file))))
                {
                    citations++;
                    string section = "§" + m.Groups[2].Value;
                    if (!headings.TryGetValue(m.Groups[1].Value, out string? h)
                        || !Regex.IsMatch(h, Regex.Escape(section) + @"(?![0-9.])"))
                    {
                        broken.Add($"{file}: {m.Value}");
                    }
                }
            }

            Assert.True(citations >= 50, $"expected the code's citations of docs/model, found {citations}");
            Assert.True(broken.Count == 0, "citations of docs/model sections that do not exist:\n" + string.Join("\n", broken.Distinct()));
        }

        [Fact]
        public void NothingCitesDocumentsOutsideTheRepository()
        {
            // The project lead's spec and tracker are not part of the repository: cite docs/,
            // the Intel SDM section or the Xen/KVM function instead.
            var pattern = new Regex("SPEC[ .][0-9]|SPEC\\.md|[Dd]ecision [0-9]|[Ii]ssue [0-9]");
            string root = RepositoryRoot.Find();
            var hits = new List<string>();
            foreach (string file in SourceFiles(root, s_sourceExtensions).Concat(DocFiles(root)))
            {
                string[] lines = File.ReadAllLines(Path.Combine(root, file));
                for (int i = 0; i < lines.Length; i++)
                {
                    if (pattern.IsMatch(lines[i]))
                    {
                        hits.Add($"{file}:{i + 1}: {lines[i].Trim()}");
                    }
                }
            }

            Assert.True(hits.Count == 0, "citations a reader of this repository cannot open:\n" + string.Join("\n", hits));
        }

        [Fact]
        public void SourceFiles_HoldOneIdeaEach_AtMost500Lines()
        {
            string root = RepositoryRoot.Find();
            var files = SourceFiles(root, s_sourceExtensions)
                .Where(f => !f.Contains("/Generated/", StringComparison.Ordinal) && !f.Contains(".g.", StringComparison.Ordinal))
                .ToList();
            Assert.True(files.Count > 100, $"expected the repository's sources, found {files.Count}");
            var tooLong = files
                .Select(f => (File: f, Lines: File.ReadLines(Path.Combine(root, f)).Count()))
                .Where(x => x.Lines > MaxSourceLines)
                .Select(x => $"{x.File}: {x.Lines} lines")
                .ToList();
            Assert.True(tooLong.Count == 0, $"source files over {MaxSourceLines} lines (split them by concern):\n" + string.Join("\n", tooLong));
        }

        private static IEnumerable<string> SourceFiles(string root, params string[] extensions)
        {
            foreach (string top in s_sourceRoots)
            {
                string dir = Path.Combine(root, top);
                if (!Directory.Exists(dir))
                {
                    continue;
                }

                foreach (string path in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
                {
                    string rel = Path.GetRelativePath(root, path).Replace('\\', '/');
                    if (extensions.Contains(Path.GetExtension(path)) && !IsBuildOutput(rel))
                    {
                        yield return rel;
                    }
                }
            }
        }

        private static IEnumerable<string> DocFiles(string root)
        {
            yield return "README.md";
            foreach (string path in Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories))
            {
                yield return Path.GetRelativePath(root, path).Replace('\\', '/');
            }
        }

        private static bool IsBuildOutput(string rel)
            => rel.Contains("/bin/", StringComparison.Ordinal) || rel.Contains("/obj/", StringComparison.Ordinal)
                || rel.StartsWith("native/build", StringComparison.Ordinal) || rel.Contains("__pycache__", StringComparison.Ordinal);
    }
}

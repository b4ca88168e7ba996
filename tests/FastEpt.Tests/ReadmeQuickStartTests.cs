// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Security;
using System.Text.RegularExpressions;

namespace FastEpt.Tests
{
    /// <summary>
    /// Runs the README test on its own, after the parallel collections: a nested build takes
    /// both cores of a small machine and would skew timing-sensitive concurrency tests.
    /// </summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class ReadmeQuickStartCollection
    {
        /// <summary>The collection's name.</summary>
        public const string Name = "ReadmeQuickStart";
    }

    /// <summary>
    /// Keeps the README honest: its one C# block must be a short, complete program that builds
    /// against the library and prints a successful translation.
    /// </summary>
    [Collection(ReadmeQuickStartCollection.Name)]
    public sealed class ReadmeQuickStartTests
    {
        private const int MaxSnippetLines = 15;
        private static readonly Regex s_csharpBlock = new Regex(@"^```csharp[ \t]*\n(.*?)^```[ \t]*$", RegexOptions.Singleline | RegexOptions.Multiline);

        [Fact]
        [Trait("Category", "Slow")]
        public async Task QuickStart_BuiltAndRun_PrintsOk()
        {
            string root = RepositoryRoot.Find();
            string snippet = ExtractQuickStart(File.ReadAllText(Path.Combine(root, "README.md")));
            string[] lines = snippet.Split('\n');
            Assert.True(lines.Length <= MaxSnippetLines, $"The README's C# block has {lines.Length} lines; at most {MaxSnippetLines} are allowed.");

            string walkerProject = Path.Combine(root, "src", "Walker", "FastEpt.Walker.csproj");
            Assert.True(File.Exists(walkerProject), $"{walkerProject} does not exist.");

            string workDir = Path.Combine(Path.GetTempPath(), "fastept-readme-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(workDir);
            try
            {
                WriteProject(workDir, snippet, walkerProject);

                (int exitCode, string stdout, string stderr) = await DotnetCli.RunAsync(workDir, DotnetCli.NoEnvironment,
                    ["run", "-c", "Release", "--disable-build-servers", "-p:UseSharedCompilation=false"]);

                Assert.True(exitCode == 0, $"'dotnet run' exited with {exitCode}.\nstdout:\n{stdout}\nstderr:\n{stderr}");
                Assert.Contains("Ok", stdout);
            }
            finally
            {
                DotnetCli.TryDeleteDirectory(workDir);
            }
        }

        private static string ExtractQuickStart(string readme)
        {
            MatchCollection blocks = s_csharpBlock.Matches(readme.Replace("\r\n", "\n"));
            Assert.True(blocks.Count == 1, $"README.md must contain exactly one ```csharp block; found {blocks.Count}.");
            return blocks[0].Groups[1].Value.TrimEnd('\n');
        }

        private static void WriteProject(string workDir, string snippet, string walkerProject)
        {
            DotnetCli.WriteConsoleProject(workDir, "QuickStart", snippet,
                $"""<ProjectReference Include="{SecurityElement.Escape(walkerProject)}" />""");
        }
    }
}

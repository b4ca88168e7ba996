// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
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
        private static readonly TimeSpan s_runTimeout = TimeSpan.FromMinutes(4);
        private static readonly Regex s_csharpBlock = new Regex(@"^```csharp[ \t]*\n(.*?)^```[ \t]*$", RegexOptions.Singleline | RegexOptions.Multiline);

        [Fact]
        [Trait("Category", "Slow")]
        public async Task QuickStart_BuiltAndRun_PrintsOk()
        {
            string root = FindRepositoryRoot();
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

                (int exitCode, string stdout, string stderr) = await RunDotnetAsync(workDir,
                    ["run", "-c", "Release", "--disable-build-servers", "-p:UseSharedCompilation=false"]);

                Assert.True(exitCode == 0, $"'dotnet run' exited with {exitCode}.\nstdout:\n{stdout}\nstderr:\n{stderr}");
                Assert.Contains("Ok", stdout);
            }
            finally
            {
                TryDeleteDirectory(workDir);
            }
        }

        private static string FindRepositoryRoot()
        {
            for (DirectoryInfo? dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains FastEpt.sln.");
        }

        private static string ExtractQuickStart(string readme)
        {
            MatchCollection blocks = s_csharpBlock.Matches(readme.Replace("\r\n", "\n"));
            Assert.True(blocks.Count == 1, $"README.md must contain exactly one ```csharp block; found {blocks.Count}.");
            return blocks[0].Groups[1].Value.TrimEnd('\n');
        }

        private static void WriteProject(string workDir, string snippet, string walkerProject)
        {
            File.WriteAllText(Path.Combine(workDir, "Program.cs"), snippet + "\n");
            File.WriteAllText(Path.Combine(workDir, "QuickStart.csproj"),
                $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    <ProjectReference Include="{SecurityElement.Escape(walkerProject)}" />
                  </ItemGroup>
                </Project>
                """);

            // Empty Directory.* files stop MSBuild from importing whatever lies above the temp
            // folder, so the snippet builds as a reader's fresh project would.
            foreach (string name in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            {
                File.WriteAllText(Path.Combine(workDir, name), "<Project />\n");
            }
        }

        private static async Task<(int ExitCode, string Stdout, string Stderr)> RunDotnetAsync(string workDir, string[] arguments)
        {
            // Under 'dotnet test' the SDK that launched us names itself in DOTNET_HOST_PATH.
            string? hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            ProcessStartInfo startInfo = new ProcessStartInfo(File.Exists(hostPath) ? hostPath : "dotnet")
            {
                WorkingDirectory = workDir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (string argument in arguments)
            {
                startInfo.ArgumentList.Add(argument);
            }

            // The test host inherits the outer build's MSBuild settings (SDK paths, node and
            // server switches); the nested build must evaluate on its own.
            List<string> inherited = startInfo.Environment.Keys
                .Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k.StartsWith("_MSBUILD", StringComparison.OrdinalIgnoreCase))
                .ToList();
            foreach (string key in inherited)
            {
                startInfo.Environment.Remove(key);
            }

            startInfo.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            startInfo.Environment["DOTNET_NOLOGO"] = "1";
            startInfo.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";

            using Process process = Process.Start(startInfo) ?? throw new InvalidOperationException("Could not start dotnet.");
            process.StandardInput.Close();
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();

            using CancellationTokenSource timeout = new CancellationTokenSource(s_runTimeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                Assert.Fail($"'dotnet {string.Join(" ", arguments)}' did not finish within {s_runTimeout.TotalMinutes} minutes.\nstdout:\n{await stdout}\nstderr:\n{await stderr}");
            }

            return (process.ExitCode, await stdout, await stderr);
        }

        private static void TryDeleteDirectory(string path)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a leftover temp folder must not fail the test.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}

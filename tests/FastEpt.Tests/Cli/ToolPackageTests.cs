// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Reflection;
using FastEpt.Cli.Commands;

namespace FastEpt.Tests.Cli
{
    /// <summary>
    /// The .NET tool build.sh packs (artifacts/packages/FastEpt.Cli.*.nupkg) installs the way the
    /// README says, into a scratch tool path with an empty package cache, and its <c>fastept replay
    /// --sample</c> replays the sample trace shipped inside the package.
    /// </summary>
    /// <remarks>In the README test's collection: a nested restore takes both cores of a small machine.</remarks>
    [Collection(ReadmeQuickStartCollection.Name)]
    public sealed class ToolPackageTests
    {
        [Fact]
        [Trait("Category", "Slow")]
        public async Task Tool_InstalledFromTheLocalFolder_ReplaysTheSample()
        {
            string root = FindRepoRoot();
            string packages = Path.Combine(root, "artifacts", "packages");
            string version = ExpectedVersion();
            string package = Path.Combine(packages, $"FastEpt.Cli.{version}.nupkg");
            Assert.True(File.Exists(package),
                $"Expected {package}. Pack it first: dotnet pack FastEpt.sln --no-build -c Release -o artifacts/packages (./build.sh test does).");
            using (ZipArchive zip = ZipFile.OpenRead(package))
            {
                string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
                Assert.Contains($"tools/net10.0/any/{ReplayCommand.SampleRelativePath}", entries);
                Assert.Contains("tools/net10.0/any/DotnetToolSettings.xml", entries);
            }

            string workDir = Path.Combine(Path.GetTempPath(), "fastept-tool-" + Guid.NewGuid().ToString("N"));
            string toolPath = Path.Combine(workDir, "tools");
            Directory.CreateDirectory(workDir);
            try
            {
                var environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(workDir, ".packages") };
                (int exitCode, string stdout, string stderr) = await DotnetCli.RunAsync(workDir, environment,
                    "tool", "install", "--tool-path", toolPath, "--add-source", packages, "FastEpt.Cli", "--version", version);
                Assert.True(exitCode == 0, $"'dotnet tool install' exited with {exitCode}.\nstdout:\n{stdout}\nstderr:\n{stderr}");

                (exitCode, stdout, stderr) = await RunToolAsync(Path.Combine(toolPath, "fastept"), "replay", "--sample");
                Assert.True(exitCode == 0, $"'fastept replay --sample' exited with {exitCode}.\nstdout:\n{stdout}\nstderr:\n{stderr}");
                // The sample's fixed facts (src/Cli/Samples/sample.lackey): its access count, no EPT exits.
                Assert.Contains("Replay summary", stdout);
                Assert.Matches(@"Accesses\s*│\s*20,015", stdout);
                Assert.Matches(@"EPT violations\s*│\s*0\s", stdout);
            }
            finally
            {
                DotnetCli.TryDeleteDirectory(workDir);
            }
        }

        // Runs the installed tool's launcher with the runtime the tests run on.
        private static async Task<(int ExitCode, string Stdout, string Stderr)> RunToolAsync(string tool, params string[] arguments)
        {
            var startInfo = new ProcessStartInfo(tool)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string argument in arguments)
            {
                startInfo.ArgumentList.Add(argument);
            }

            string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (File.Exists(host))
            {
                startInfo.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(Path.GetFullPath(host))!;
            }

            startInfo.Environment["COLUMNS"] = "200";
            using Process process = Process.Start(startInfo) ?? throw new InvalidOperationException("Could not start " + tool);
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"{tool} did not finish within 2 minutes.");
            }

            return (process.ExitCode, await stdout, await stderr);
        }

        private static string FindRepoRoot()
        {
            for (DirectoryInfo? dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("No folder above the test assembly contains FastEpt.sln.");
        }

        // The version the packages were built with: this build's fastept assembly's.
        private static string ExpectedVersion()
        {
            string? informational = typeof(ReplayCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            Assert.False(string.IsNullOrEmpty(informational), "fastept has no informational version.");
            int plus = informational!.IndexOf('+');
            return plus < 0 ? informational : informational[..plus];
        }
    }
}

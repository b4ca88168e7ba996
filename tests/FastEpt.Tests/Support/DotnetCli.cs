// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.IO;

namespace FastEpt.Tests
{
    /// <summary>
    /// Runs the .NET CLI in a scratch project for the tests that build and run what a user
    /// would (the README quick start, the NuGet package), isolated from the outer build.
    /// </summary>
    internal static class DotnetCli
    {
        private static readonly TimeSpan s_runTimeout = TimeSpan.FromMinutes(4);

        /// <summary>No extra environment variables.</summary>
        public static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();

        /// <summary>Runs <c>dotnet arguments...</c> in <paramref name="workDir"/>; fails the test after a 4-minute timeout.</summary>
        public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string workDir, IReadOnlyDictionary<string, string> environment, params string[] arguments)
        {
            // Under 'dotnet test' the SDK that launched us names itself in DOTNET_HOST_PATH.
            string? hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            var startInfo = new ProcessStartInfo(File.Exists(hostPath) ? hostPath : "dotnet")
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

            // The nested build must not inherit the outer build's MSBuild settings.
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
            foreach ((string key, string value) in environment)
            {
                startInfo.Environment[key] = value;
            }

            using Process process = Process.Start(startInfo) ?? throw new InvalidOperationException("Could not start dotnet.");
            process.StandardInput.Close();
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();

            using var timeout = new CancellationTokenSource(s_runTimeout);
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

        /// <summary>
        /// Writes a fresh net10.0 console project (<c>Program.cs</c> and <c>{name}.csproj</c> with
        /// <paramref name="reference"/> as its one item) plus empty Directory.* files, so nothing
        /// above the temp folder is imported and it builds as a reader's new project would.
        /// </summary>
        public static void WriteConsoleProject(string workDir, string name, string program, string reference)
        {
            File.WriteAllText(Path.Combine(workDir, "Program.cs"), program + "\n");
            File.WriteAllText(Path.Combine(workDir, name + ".csproj"),
                $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    {reference}
                  </ItemGroup>
                </Project>
                """);
            foreach (string file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            {
                File.WriteAllText(Path.Combine(workDir, file), "<Project />\n");
            }
        }

        /// <summary>Deletes a scratch folder, ignoring failures.</summary>
        public static void TryDeleteDirectory(string path)
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

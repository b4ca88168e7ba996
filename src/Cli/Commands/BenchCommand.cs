// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.CommandLine;
using System.Diagnostics;
using System.IO;

namespace FastEpt.Cli.Commands
{
    /// <summary>
    /// <c>fastept bench [--repo DIR]</c>: prints the quick throughput (goals) table by running
    /// <c>dotnet run -c Release --project bench/FastEpt.Bench -- --ratio</c> in a FastEpt checkout,
    /// the same table <c>./build.sh bench --ratio</c> prints (build.sh also builds native/ first).
    /// The checkout is found by walking up from the tool's directory to <c>FastEpt.sln</c>, or named with --repo.
    /// </summary>
    internal static class BenchCommand
    {
        internal const string BenchProject = "bench/FastEpt.Bench/FastEpt.Bench.csproj";

        public static Command Create()
        {
            var repo = new Option<string?>("--repo") { Description = "The FastEpt checkout to benchmark (default: the one fastept was built from)." };
            var command = new Command("bench", "Print the quick throughput (goals) table; the same table './build.sh bench --ratio' prints. Needs a FastEpt checkout and the .NET SDK.")
            {
                repo,
            };
            command.SetAction(parse =>
            {
                TextWriter stdout = parse.InvocationConfiguration.Output;
                TextWriter stderr = parse.InvocationConfiguration.Error;
                string? root = FindRepositoryRoot(parse.GetValue(repo) ?? AppContext.BaseDirectory);
                if (root is null)
                {
                    stderr.WriteLine("fastept: bench needs a FastEpt source checkout (a folder with FastEpt.sln and bench/FastEpt.Bench) above "
                        + (parse.GetValue(repo) ?? AppContext.BaseDirectory) + "; pass --repo DIR.");
                    return ExitCodes.InputError;
                }

                return Run(root, stdout, stderr);
            });
            return command;
        }

        /// <summary>The nearest folder at or above <paramref name="start"/> holding FastEpt.sln and the bench project, else null.</summary>
        internal static string? FindRepositoryRoot(string start)
        {
            for (DirectoryInfo? dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")) && File.Exists(Path.Combine(dir.FullName, BenchProject)))
                {
                    return dir.FullName;
                }
            }

            return null;
        }

        private static int Run(string root, TextWriter stdout, TextWriter stderr)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = root,
                UseShellExecute = false,
            };
            foreach (string arg in new[] { "run", "-c", "Release", "--project", BenchProject, "--", "--ratio" })
            {
                start.ArgumentList.Add(arg);
            }

            stdout.WriteLine($"Running in {root}: dotnet {string.Join(' ', start.ArgumentList)}");
            stdout.Flush();
            try
            {
                using Process process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
                process.WaitForExit();
                return process.ExitCode == 0 ? ExitCodes.Ok : ExitCodes.InputError;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                stderr.WriteLine($"fastept: could not run dotnet (is the .NET SDK on PATH?): {e.Message}");
                return ExitCodes.InputError;
            }
        }
    }
}

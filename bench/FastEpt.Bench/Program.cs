// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace FastEpt.Bench
{
    /// <summary>
    /// Benchmark entry point.
    /// <list type="bullet">
    /// <item><c>--quick</c> (also the default with no arguments): <see cref="Perf_Translate"/> with a
    /// short in-process job, for a table in well under a minute.</item>
    /// <item><c>--full</c>: every benchmark class with BenchmarkDotNet's default job.</item>
    /// <item><c>--ratio</c>: managed against native walks timed interleaved (<see cref="InterleavedRatio"/>),
    /// for ratios that a noisy machine cannot skew.</item>
    /// <item>Anything else goes to <see cref="BenchmarkSwitcher"/> unchanged
    /// (<c>--filter</c>, <c>--list flat</c>, <c>--job</c>, ...).</item>
    /// </list>
    /// Returns 0 when every benchmark produced results, 1 otherwise, 2 for bad arguments.
    /// </summary>
    public static class Program
    {
        private const string QuickFlag = "--quick";
        private const string FullFlag = "--full";
        private const string RatioFlag = "--ratio";

        /// <summary>Runs the benchmarks that <paramref name="args"/> select.</summary>
        public static int Main(string[] args)
        {
#if DEBUG
            ConsoleLogger.Default.WriteLineWarning("Benchmarks are running in a DEBUG build: numbers are meaningless. Use -c Release.");
            ConsoleLogger.Default.WriteLine();
#endif
            if (args.Length == 1 && args[0] == RatioFlag)
            {
                return InterleavedRatio.Run();
            }

            bool quick = args.Length == 0 || args.Contains(QuickFlag);
            bool full = args.Contains(FullFlag);
            if (quick && full)
            {
                ConsoleLogger.Default.WriteLineError($"{QuickFlag} and {FullFlag} are mutually exclusive.");
                return 2;
            }

            // Our own flags are stripped; the rest is BenchmarkDotNet's.
            List<string> switcherArgs = args.Where(a => a != QuickFlag && a != FullFlag).ToList();
            IConfig? config = null;
            if (quick)
            {
                config = CreateQuickConfig();
                AddDefaultFilter(switcherArgs, $"*{nameof(Perf_Translate)}*");
            }
            else if (full)
            {
                config = DefaultConfig.Instance;
                AddDefaultFilter(switcherArgs, "*");
            }

            if (switcherArgs.Count != 0)
            {
                ConsoleLogger.Default.WriteLine($"Benchmark arguments: {string.Join(" ", switcherArgs)}");
                ConsoleLogger.Default.WriteLine();
            }

            Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly)
                                                   .Run(switcherArgs.ToArray(), config)
                                                   .ToArray();

            return HasErrors(summaries, switcherArgs) ? 1 : 0;
        }

        // A short job that runs in this process: no generated project to build, so a quick run
        // costs seconds per benchmark even on a 2-core machine.
        private static IConfig CreateQuickConfig()
        {
            Job quick = Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithLaunchCount(1)
                .WithWarmupCount(2)
                .WithIterationCount(5)
                .WithIterationTime(TimeInterval.FromMilliseconds(250))
                .WithId("Quick");

            return DefaultConfig.Instance.AddJob(quick);
        }

        // Without a filter BenchmarkSwitcher asks on the console which benchmark to run, which
        // hangs a script; a filter given by the caller wins.
        private static void AddDefaultFilter(List<string> switcherArgs, string pattern)
        {
            if (!switcherArgs.Contains("--filter") && !switcherArgs.Contains("-f"))
            {
                switcherArgs.Add("--filter");
                switcherArgs.Add(pattern);
            }
        }

        private static bool HasErrors(Summary[] summaries, List<string> switcherArgs)
        {
            if (summaries.Length == 0)
            {
                // Informational runs produce no summary; anything else that ran nothing failed.
                string[] informational = ["--help", "-h", "--list", "--info", "--version"];
                return !switcherArgs.Any(informational.Contains);
            }

            foreach (Summary summary in summaries)
            {
                if (summary.HasCriticalValidationErrors)
                {
                    return true;
                }

                if (summary.BenchmarksCases.Length != 0 && summary.Reports.Length == 0)
                {
                    return true;
                }

                foreach (BenchmarkReport report in summary.Reports)
                {
                    if (!report.Success || report.ResultStatistics is null)
                    {
                        ConsoleLogger.Default.WriteLineError($"Benchmark failed: {report.BenchmarkCase.DisplayInfo}");
                        return true;
                    }
                }
            }

            return false;
        }
    }
}

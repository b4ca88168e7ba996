// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
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
    /// <item><c>--quick</c> (also the default with no arguments): <see cref="Perf_TranslateSuite"/> on its
    /// quick scenarios (both footprints, 4K pages, random GPAs) and <see cref="Perf_Walk2D"/> with a
    /// short in-process job, then the goals table (<see cref="Goals"/>, whose interleaved groups
    /// include <see cref="Perf_Walk2D"/>'s, <see cref="Perf_Emulation"/>'s and
    /// <see cref="Perf_Concurrency"/>'s methods). A few minutes at most on 2 cores.</item>
    /// <item><c>--full</c>: every benchmark class (<see cref="Perf_Emulation"/> included),
    /// <see cref="Perf_TranslateSuite"/> over its whole [Params] matrix, with BenchmarkDotNet's
    /// default job, then the goals table.</item>
    /// <item><c>--ratio</c>: only the goals table, from the interleaved timing.</item>
    /// <item><c>--paging</c>: only the goals table's 2D-walk-per-paging-mode rows (Goals.Paging.cs; about a second), printed.</item>
    /// <item><c>--concurrency</c>: only the goals table's concurrency group (<see cref="Perf_Concurrency"/>'s
    /// loops; about 20 s).</item>
    /// <item><c>--tlb</c>: only the goals table's TLB group (both TLBs' hit paths, an emulated RAM read that hits).</item>
    /// <item>Anything else goes to <see cref="BenchmarkSwitcher"/> unchanged
    /// (<c>--filter</c>, <c>--list flat</c>, <c>--job</c>, ...), with the same exporters.</item>
    /// </list>
    /// Reports go to <c>bench/results/&lt;quick|full|ratio|concurrency|custom&gt;/</c>: the suite's markdown and JSON
    /// tables and goals.md/goals.json; BenchmarkDotNet's logs and raw files to <c>bench/results/.bdn</c>.
    /// Returns 0 when every benchmark produced results, 1 otherwise, 2 for bad arguments.
    /// </summary>
    public static class Program
    {
        private const string QuickFlag = "--quick";
        private const string FullFlag = "--full";
        private const string RatioFlag = "--ratio";
        private const string ConcurrencyFlag = "--concurrency";
        private const string TlbFlag = "--tlb";

        /// <summary>Runs the benchmarks that <paramref name="args"/> select.</summary>
        public static int Main(string[] args)
        {
#if DEBUG
            ConsoleLogger.Default.WriteLineWarning("Benchmarks are running in a DEBUG build: numbers are meaningless. Use -c Release.");
            ConsoleLogger.Default.WriteLine();
#endif
            string resultsRoot = FindResultsRoot();
            try
            {
                if (args.Length == 1 && args[0] == RatioFlag)
                {
                    return Goals.Run(null, null, null, null, Path.Combine(resultsRoot, "ratio"));
                }

                if (args.Length == 1 && args[0] == "--paging")
                {
                    return Goals.RunPagingOnly();      // the per-mode 2D-walk rows alone (Goals.Paging.cs)
                }

                if (args.Length == 1 && args[0] == TlbFlag)
                {
                    return Goals.RunTlbOnly(Path.Combine(resultsRoot, "tlb"));
                }

                if (args.Length == 1 && args[0] == ConcurrencyFlag)
                {
                    return Goals.RunConcurrencyOnly(Path.Combine(resultsRoot, "concurrency"));
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
                string mode = quick ? "quick" : full ? "full" : "custom";
                IConfig config = WithExports(quick ? CreateQuickConfig() : DefaultConfig.Instance, resultsRoot);
                if (quick)
                {
                    // Perf_Emulation's eight cases would add about 25 s here; its interleaved
                    // group in the goals table (a few seconds) still runs.
                    Perf_TranslateSuite.QuickScenarios = true;
                    AddDefaultFilter(switcherArgs, $"*{nameof(Perf_TranslateSuite)}*", $"*{nameof(Perf_Walk2D)}*");
                }
                else if (full)
                {
                    AddDefaultFilter(switcherArgs, "*");
                }

                if (switcherArgs.Count != 0)
                {
                    ConsoleLogger.Default.WriteLine($"Benchmark arguments: {string.Join(" ", switcherArgs)}");
                    ConsoleLogger.Default.WriteLine();
                }

                DateTime started = DateTime.UtcNow;
                Summary[] summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly)
                                                       .Run(switcherArgs.ToArray(), config)
                                                       .ToArray();
                string outDir = Path.Combine(resultsRoot, mode);
                CopyReports(summaries, outDir, started);
                bool failed = HasErrors(summaries, switcherArgs);

                if ((quick || full) && !failed)
                {
                    Summary? suite = summaries.FirstOrDefault(s => s.BenchmarksCases.Any(c => c.Descriptor.Type == typeof(Perf_TranslateSuite)));
                    Summary? walk2D = summaries.FirstOrDefault(s => s.BenchmarksCases.Any(c => c.Descriptor.Type == typeof(Perf_Walk2D)));
                    Summary? emulation = summaries.FirstOrDefault(s => s.BenchmarksCases.Any(c => c.Descriptor.Type == typeof(Perf_Emulation)));
                    Summary? replay = summaries.FirstOrDefault(s => s.BenchmarksCases.Any(c => c.Descriptor.Type == typeof(Perf_Replay)));
                    Goals.Run(suite, walk2D, emulation, replay, outDir);
                }

                return failed ? 1 : 0;
            }
            finally
            {
                ScenarioGuest.DisposeAll();
            }
        }

        // A short job that runs in this process: no generated project to build, and the
        // scenario guests (a 64 GiB one takes seconds to build) are built once for all cases.
        private static IConfig CreateQuickConfig()
        {
            Job quick = Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithLaunchCount(1)
                .WithWarmupCount(2)
                .WithIterationCount(5)
                .WithIterationTime(TimeInterval.FromMilliseconds(200))
                .WithId("Quick");

            return DefaultConfig.Instance.AddJob(quick);
        }

        // Markdown (GitHub) and full JSON reports besides BenchmarkDotNet's defaults; its
        // artifacts (logs, CSV, HTML, the generated projects of out-of-process jobs) in
        // bench/results/.bdn.
        private static IConfig WithExports(IConfig config, string resultsRoot)
        {
            ManualConfig manual = ManualConfig.Create(config);
            if (!manual.GetExporters().Contains(MarkdownExporter.GitHub))
            {
                manual.AddExporter(MarkdownExporter.GitHub);
            }

            manual.AddExporter(JsonExporter.Full);
            manual.ArtifactsPath = Path.Combine(resultsRoot, ".bdn");
            return manual;
        }

        // The exported GitHub markdown and full JSON of each class run now, under stable names
        // (<class>.md, <class>.json) in outDir. The summaries of one run share their results
        // directory: each directory is copied once.
        private static void CopyReports(Summary[] summaries, string outDir, DateTime startedUtc)
        {
            foreach (string resultsDirectory in summaries.Select(s => s.ResultsDirectoryPath).Distinct())
            {
                if (!Directory.Exists(resultsDirectory))
                {
                    continue;
                }

                foreach ((string suffix, string extension) in new[] { ("-report-github.md", ".md"), ("-report-full.json", ".json") })
                {
                    foreach (string file in Directory.GetFiles(resultsDirectory, "*" + suffix))
                    {
                        if (File.GetLastWriteTimeUtc(file) < startedUtc)
                        {
                            continue;
                        }

                        string name = Path.GetFileName(file);
                        name = name[..^suffix.Length];
                        name = name.StartsWith("FastEpt.Bench.", StringComparison.Ordinal) ? name["FastEpt.Bench.".Length..] : name;
                        Directory.CreateDirectory(outDir);
                        string target = Path.Combine(outDir, name + extension);
                        File.Copy(file, target, overwrite: true);
                        ConsoleLogger.Default.WriteLine($"Report: {target}");
                    }
                }
            }
        }

        // bench/results in the repository this program was built from (or under the working
        // directory when run from elsewhere).
        private static string FindResultsRoot()
        {
            foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            {
                for (DirectoryInfo? dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")))
                    {
                        return Path.Combine(dir.FullName, "bench", "results");
                    }
                }
            }

            return Path.Combine(Environment.CurrentDirectory, "bench", "results");
        }

        // Without a filter BenchmarkSwitcher asks on the console which benchmark to run, which
        // hangs a script; a filter given by the caller wins.
        private static void AddDefaultFilter(List<string> switcherArgs, params string[] patterns)
        {
            if (!switcherArgs.Contains("--filter") && !switcherArgs.Contains("-f"))
            {
                switcherArgs.Add("--filter");
                switcherArgs.AddRange(patterns);
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

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Reports;

namespace FastEpt.Bench
{
    /// <summary>
    /// The issue's goals, measured interleaved: the contenders the goals compare (from
    /// <see cref="Perf_TranslateSuite"/>, the very same methods, on its DRAM-size and
    /// cache-resident random-4K scenarios) are timed round after round, each once per round
    /// in a rotating order, and each goal is a ratio of per-contender medians. On a shared,
    /// noisy machine this is far steadier than comparing BenchmarkDotNet cases measured
    /// minutes apart; the BenchmarkDotNet summary's ratios, when the run has one, are printed
    /// beside them for comparison. Writes goals.md and goals.json.
    /// </summary>
    internal static class Goals
    {
        private const int Rounds = 201;
        private const int CallsPerRound = 4;        // × Perf_TranslateSuite.Ops GPAs
        private const int WarmupCalls = 40;

        private static readonly string[] BatchPaths = ["Batch_Auto", "Batch_Scalar", "Batch_Pipelined", "Batch_Gather"];

        /// <summary>Measures, prints and writes the goals table; returns 0 (missed goals are results, not errors).</summary>
        public static int Run(Summary? summary, string? outDir)
        {
            Console.WriteLine();
            Console.WriteLine("==> Goals: interleaved timing of the compared methods (random 4K GPAs, read)");
            Perf_TranslateSuite dram = CreateSuite(Footprint.Dram);
            Perf_TranslateSuite cache = CreateSuite(Footprint.CacheResident);

            string[] dramMethods = ["Scalar", "NativeScalar", "NativeBatch", .. BatchPaths, "IndependentLoads", "DependentChase"];
            string[] cacheMethods = ["Scalar", "NativeScalar", "NativeBatch", .. BatchPaths, "IndependentLoads", "TlbHit", "ArrayIndex"];
            List<(Footprint Footprint, string Method, Func<ulong> Body)> contenders = [];
            contenders.AddRange(dramMethods.Select(m => (Footprint.Dram, m, Body(dram, m))));
            contenders.AddRange(cacheMethods.Select(m => (Footprint.CacheResident, m, Body(cache, m))));

            // One interleaved group per footprint: DRAM-size contenders sweeping 128 MiB of tables
            // between cache-resident ones would evict the small tables and time them cold.
            ulong sink = 0;
            var medians = new Dictionary<(Footprint, string), double>();
            Stopwatch total = Stopwatch.StartNew();
            foreach (Footprint footprint in new[] { Footprint.Dram, Footprint.CacheResident })
            {
                var group = contenders.Where(c => c.Footprint == footprint).ToList();
                foreach (var c in group)
                {
                    for (int i = 0; i < WarmupCalls; i++)
                    {
                        sink += c.Body();       // tiering: reach the optimized code before timing
                    }
                }

                double[][] samples = group.Select(_ => new double[Rounds]).ToArray();
                for (int round = 0; round < Rounds; round++)
                {
                    for (int k = 0; k < group.Count; k++)
                    {
                        int c = (k + round) % group.Count;     // rotate: no contender always follows the same one
                        Func<ulong> body = group[c].Body;
                        long start = Stopwatch.GetTimestamp();
                        for (int r = 0; r < CallsPerRound; r++)
                        {
                            sink += body();
                        }

                        long ticks = Stopwatch.GetTimestamp() - start;
                        samples[c][round] = ticks * 1e9 / Stopwatch.Frequency / (CallsPerRound * (double)Perf_TranslateSuite.Ops);
                    }
                }

                for (int c = 0; c < group.Count; c++)
                {
                    Array.Sort(samples[c]);
                    medians[(footprint, group[c].Method)] = samples[c][Rounds / 2];
                }
            }

            var timings = new StringBuilder();
            timings.AppendLine(CultureInfo.InvariantCulture, $"Medians over {Rounds} rounds of {CallsPerRound} x {Perf_TranslateSuite.Ops} GPAs per method, interleaved per footprint ({total.Elapsed.TotalSeconds:F1} s):");
            timings.AppendLine();
            timings.AppendLine("| Footprint | Method | ns/GPA | M GPAs/s | time vs Scalar |");
            timings.AppendLine("| --- | --- | ---: | ---: | ---: |");
            foreach (var c in contenders)
            {
                double ns = medians[(c.Footprint, c.Method)];
                double scalar = medians[(c.Footprint, "Scalar")];
                timings.AppendLine(CultureInfo.InvariantCulture, $"| {c.Footprint} | {c.Method} | {ns:F2} | {1e3 / ns:F1} | {ns / scalar:F2} |");
            }

            Console.WriteLine(timings.ToString());
            Console.WriteLine($"(checksum {sink:X})");
            Func<Footprint, string, double?>? bdn = summary is null ? null : BdnMedians(summary);
            List<GoalRow> rows = Evaluate((f, m) => medians.TryGetValue((f, m), out double v) ? v : null, bdn);
            string table = FormatTable(rows, bdn is not null);
            Console.WriteLine();
            Console.WriteLine(table);
            string notes = Notes(medians, dram.TlbPages);
            Console.WriteLine(notes);

            if (outDir is not null)
            {
                Directory.CreateDirectory(outDir);
                File.WriteAllText(Path.Combine(outDir, "goals.md"), "# Goals\n\n" + table + "\n" + notes + "\n## Timings\n\n" + timings);
                var json = new
                {
                    machine = Environment.MachineName,
                    processorCount = Environment.ProcessorCount,
                    gatherSupported = Perf_TranslateSuite.GatherSupported,
                    runtime = Environment.Version.ToString(),
                    rounds = Rounds,
                    gpasPerSample = CallsPerRound * Perf_TranslateSuite.Ops,
                    nsPerGpa = medians.Select(kv => new { footprint = kv.Key.Item1.ToString(), method = kv.Key.Item2, ns = kv.Value }),
                    goals = rows.Select(r => new { goal = r.Name, measured = r.Measured, bdn = r.Bdn, target = r.Target, atLeast = r.AtLeast, met = r.Met, detail = r.Detail }),
                };
                File.WriteAllText(Path.Combine(outDir, "goals.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"Goals written to {Path.Combine(outDir, "goals.md")} and goals.json");
            }

            return 0;
        }

        private static Perf_TranslateSuite CreateSuite(Footprint footprint)
        {
            var suite = new Perf_TranslateSuite { Footprint = footprint, Mapping = Mapping.Page4K, Pattern = GpaPattern.Random };
            suite.Setup();
            return suite;
        }

        private static Func<ulong> Body(Perf_TranslateSuite s, string method) => method switch
        {
            "Scalar" => s.Scalar,
            "NativeScalar" => s.NativeScalar,
            "NativeBatch" => s.NativeBatch,
            "Batch_Auto" => s.Batch_Auto,
            "Batch_Scalar" => s.Batch_Scalar,
            "Batch_Pipelined" => s.Batch_Pipelined,
            "Batch_Gather" => s.Batch_Gather,
            "TlbHit" => s.TlbHit,
            "ArrayIndex" => s.ArrayIndex,
            "IndependentLoads" => s.IndependentLoads,
            "DependentChase" => s.DependentChase,
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };

        // ns per GPA from BenchmarkDotNet's summary (its statistics are per operation), for the
        // random 4K scenarios; null where the run did not measure that case.
        private static Func<Footprint, string, double?> BdnMedians(Summary summary)
        {
            var map = new Dictionary<(Footprint, string), double>();
            foreach (BenchmarkReport report in summary.Reports)
            {
                var p = report.BenchmarkCase.Parameters;
                if (report.ResultStatistics is null || p["Mapping"] is not Mapping.Page4K || p["Pattern"] is not GpaPattern.Random)
                {
                    continue;
                }

                map[((Footprint)p["Footprint"], report.BenchmarkCase.Descriptor.WorkloadMethod.Name)] = report.ResultStatistics.Median;
            }

            return (f, m) => map.TryGetValue((f, m), out double v) ? v : null;
        }

        private sealed record GoalRow(string Name, double? Measured, double? Bdn, double Target, bool AtLeast, string Detail)
        {
            public bool? Met => Measured is double m ? (AtLeast ? m >= Target : m <= Target) : null;
        }

        // Every goal as a ratio of two ns/GPA figures from `ns` (and the same from BDN's).
        private static List<GoalRow> Evaluate(Func<Footprint, string, double?> ns, Func<Footprint, string, double?>? bdn)
        {
            const Footprint D = Footprint.Dram;
            const Footprint C = Footprint.CacheResident;
            string[] paths = Perf_TranslateSuite.GatherSupported ? BatchPaths : BatchPaths.Where(p => p != "Batch_Gather").ToArray();
            string best = paths.Where(p => ns(D, p) is not null).OrderBy(p => ns(D, p)).FirstOrDefault() ?? "Batch_Auto";

            // Throughput ratio a/b = time(b) / time(a).
            double? Ratio(Func<Footprint, string, double?> f, Footprint fa, string a, Footprint fb, string b)
                => f(fa, a) is double ta && f(fb, b) is double tb ? tb / ta : null;
            string Ns(Footprint f, string m) => ns(f, m) is double v ? v.ToString("F2", CultureInfo.InvariantCulture) + " ns" : "n/a";

            GoalRow Row(string name, Footprint fa, string a, Footprint fb, string b, double target, bool atLeast, bool timeRatio = false)
            {
                // timeRatio: time(a)/time(b) instead of the throughput ratio.
                double? Get(Func<Footprint, string, double?> f) => timeRatio ? Ratio(f, fb, b, fa, a) : Ratio(f, fa, a, fb, b);
                string detail = $"{a} {Ns(fa, a)}, {b} {Ns(fb, b)}";
                if (a != "Batch_Auto" && a.StartsWith("Batch_", StringComparison.Ordinal) && Ratio(ns, fa, "Batch_Auto", fb, b) is double auto)
                {
                    // The best path may not be the one Auto picks: say what Auto gives.
                    detail += string.Create(CultureInfo.InvariantCulture, $" (Batch_Auto {Ns(fa, "Batch_Auto")}: {auto:F2})");
                }

                return new GoalRow(name, Get(ns), bdn is null ? null : Get(bdn), target, atLeast, detail);
            }

            return
            [
                Row($"DRAM-size, random 4K: batched ({best}) / independent-load floor, throughput", D, best, D, "IndependentLoads", 0.65, true),
                Row($"DRAM-size, random 4K: batched ({best}) / scalar managed, throughput", D, best, D, "Scalar", 3.0, true),
                Row("Cache-resident, random 4K: batched (Batch_Auto) / scalar managed, throughput", C, "Batch_Auto", C, "Scalar", 1.0, true),
                Row("TLB hit / array-index lookup, throughput", C, "TlbHit", C, "ArrayIndex", 0.5, true),
                Row("Cache-resident, random 4K: scalar managed / native scalar, time", C, "Scalar", C, "NativeScalar", 1.1, false, timeRatio: true),
                Row("DRAM-size, random 4K: scalar managed / native scalar, time", D, "Scalar", D, "NativeScalar", 1.1, false, timeRatio: true),
            ];
        }

        private static string FormatTable(List<GoalRow> rows, bool withBdn)
        {
            static string F(double? v) => v is double d ? d.ToString("F2", CultureInfo.InvariantCulture) : "n/a";
            var sb = new StringBuilder();
            sb.AppendLine(withBdn
                ? "| Goal | Measured (interleaved) | BDN summary | Target | Met | From |"
                : "| Goal | Measured (interleaved) | Target | Met | From |");
            sb.AppendLine(withBdn ? "| --- | ---: | ---: | ---: | :---: | --- |" : "| --- | ---: | ---: | :---: | --- |");
            foreach (GoalRow r in rows)
            {
                string target = (r.AtLeast ? ">= " : "<= ") + r.Target.ToString("F2", CultureInfo.InvariantCulture);
                string met = r.Met switch { true => "yes", false => "no", null => "n/a" };
                sb.AppendLine(withBdn
                    ? $"| {r.Name} | {F(r.Measured)} | {F(r.Bdn)} | {target} | {met} | {r.Detail} |"
                    : $"| {r.Name} | {F(r.Measured)} | {target} | {met} | {r.Detail} |");
            }

            return sb.ToString();
        }

        // What limits the numbers: where the tables are served from, and the MLP the floor shows.
        private static string Notes(Dictionary<(Footprint, string), double> ns, int tlbPages)
        {
            double chase = ns[(Footprint.Dram, "DependentChase")];
            double floor = ns[(Footprint.Dram, "IndependentLoads")];
            double scalar = ns[(Footprint.Dram, "Scalar")];
            var sb = new StringBuilder();
            sb.AppendLine(CultureInfo.InvariantCulture, $"DRAM-size tables: dependent leaf-slot load {chase:F1} ns (latency), independent {floor:F2} ns (floor): "
                + $"{chase / floor:F1} loads in flight; a scalar walk costs {scalar / chase:F2} x the latency.");
            sb.AppendLine(CultureInfo.InvariantCulture, $"AVX2 gather path: {(Perf_TranslateSuite.GatherSupported ? "supported" : "not supported (Batch_Gather times the fallback)")}; "
                + $"TlbHit over {tlbPages} page(s); {Environment.ProcessorCount} logical CPUs.");
            return sb.ToString();
        }
    }
}

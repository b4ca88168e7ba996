// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using static FastEpt.Bench.Perf_Concurrency;

namespace FastEpt.Bench
{
    // The concurrency group of the goals table (docs/benchmarks.md, "Concurrency"): the loops of
    // Perf_Concurrency timed interleaved, a few rounds of a fixed duration each (a writer or a
    // second core cannot be timed per call), each contender once per round in a rotating order;
    // each ratio goal is the median over rounds of that round's ratio (the two contenders ran
    // seconds apart, so a drift of the clock or of the machine's load between rounds cancels).
    internal static partial class Goals
    {
        private const int ConcurrencyRounds = 11;
        private const double ConcurrencyRoundSeconds = 0.3;
        private const double ConcurrencyWarmupSeconds = 0.1;
        private const long LogDirtyPagesPerWorker = LogDirtyScenario.Frames / 2;

        private static ulong s_concurrencySink;

        // One contender's measurement: its main figure (reader M GPAs/s, M faults/s, or ns per
        // write) and, where a writer ran beside a reader, the writer's ns per SetEntry and the
        // reclamation barriers per 1,000 of its writes.
        private sealed record ConcurrencySample(double Main, double? WriterNs = null, double? BarriersPer1000 = null);

        private sealed record ConcurrencyContender(string Name, string Unit, Func<double, ConcurrencySample> Run);

        /// <summary>The concurrency group alone (<c>--concurrency</c>): prints its timings, rows and note, writes goals.md and goals.json; returns 0.</summary>
        /// <param name="outDir">Where goals.md and goals.json go; null writes nothing.</param>
        public static int RunConcurrencyOnly(string? outDir)
        {
            Console.WriteLine();
            Console.WriteLine("==> Goals: the concurrency group alone");
            ConcurrencyGroup group = RunConcurrency();
            var timings = new StringBuilder();
            group.AppendTimings(timings);
            List<GoalRow> rows = group.Rows();
            string table = FormatTable(rows, withBdn: false);
            Console.WriteLine(timings.ToString());
            Console.WriteLine(table);
            Console.WriteLine(group.Note);
            if (outDir is not null)
            {
                System.IO.Directory.CreateDirectory(outDir);
                System.IO.File.WriteAllText(System.IO.Path.Combine(outDir, "goals.md"), "# Goals: concurrency\n\n" + table + "\n" + group.Note + "\n\n## Timings\n" + timings);
                var json = new
                {
                    machine = Environment.MachineName,
                    processorCount = Environment.ProcessorCount,
                    runtime = Environment.Version.ToString(),
                    concurrency = group.Json,
                    goals = rows.Select(r => new { goal = r.Name, measured = r.Measured, target = r.Target, atLeast = r.AtLeast, met = r.Met, detail = r.Detail }),
                };
                System.IO.File.WriteAllText(System.IO.Path.Combine(outDir, "goals.json"),
                                            System.Text.Json.JsonSerializer.Serialize(json, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"Goals written to {System.IO.Path.Combine(outDir, "goals.md")} and goals.json");
            }

            return 0;
        }

        private static ConcurrencyGroup RunConcurrency()
        {
            Stopwatch watch = Stopwatch.StartNew();
            using Scenario scenario = Scenario.Create();
            using LogDirtyScenario logDirty = LogDirtyScenario.Create();
            using var barriers = new BarrierCounter();      // after the library's first writes: see its constructor

            ConcurrencySample Reader(bool batch, Interferer beside, double seconds)
            {
                long? before = barriers.Read();
                using BackgroundLoop? loop = StartInterferer(scenario, beside);
                (long gpas, double readSeconds) = scenario.ReadFor(batch, seconds, ref s_concurrencySink);
                (long writes, double writeSeconds) = loop?.Stop() ?? (0, 0);
                long? after = barriers.Read();
                bool writer = beside is Interferer.Remap4K or Interferer.MergeSplit && writes > 0;
                return new ConcurrencySample(gpas / readSeconds / 1e6,
                                             writer ? writeSeconds * 1e9 / writes : null,
                                             writer && before is long b && after is long a ? (a - b) * 1000.0 / writes : null);
            }

            ConcurrencySample Alone(Func<Func<bool>, long> loop, double seconds)
            {
                (long n, double s) = Scenario.RunFor(loop, seconds);
                return new ConcurrencySample(s * 1e9 / n);
            }

            // Log-dirty faults are fixed work: each worker through LogDirtyPagesPerWorker pages (a
            // 32nd of that to warm up), as a page faults only once per re-arm.
            ConcurrencySample Faults(int workers, double seconds)
                => new(logDirty.Run(workers, seconds < ConcurrencyRoundSeconds ? LogDirtyPagesPerWorker / 32 : LogDirtyPagesPerWorker) / 1e6);

            List<ConcurrencyContender> contenders =
            [
                new("Batch beside Busy", "M GPAs/s", s => Reader(true, Interferer.Busy, s)),
                new("Batch beside Remap4K", "M GPAs/s", s => Reader(true, Interferer.Remap4K, s)),
                new("Batch beside MergeSplit", "M GPAs/s", s => Reader(true, Interferer.MergeSplit, s)),
                new("Scalar beside Busy", "M GPAs/s", s => Reader(false, Interferer.Busy, s)),
                new("Scalar beside Remap4K", "M GPAs/s", s => Reader(false, Interferer.Remap4K, s)),
                new("SetEntry alone", "ns/write", s => Alone(scenario.Remap4K, s)),
                new("CasPublish alone", "ns/write", s => Alone(scenario.CasPublish, s)),
                new("LogDirty 1 thread", "M faults/s", s => Faults(1, s)),
                new("LogDirty 2 threads", "M faults/s", s => Faults(2, s)),
            ];

            foreach (ConcurrencyContender c in contenders)
            {
                c.Run(ConcurrencyWarmupSeconds);      // tiering, and the writers' first touch of their ranges
            }

            var samples = contenders.ToDictionary(c => c.Name, _ => new List<ConcurrencySample>());
            for (int round = 0; round < ConcurrencyRounds; round++)
            {
                for (int k = 0; k < contenders.Count; k++)
                {
                    ConcurrencyContender c = contenders[(k + round) % contenders.Count];
                    samples[c.Name].Add(c.Run(ConcurrencyRoundSeconds));
                }
            }

            watch.Stop();
            return new ConcurrencyGroup(contenders, samples, barriers.Source, watch.Elapsed.TotalSeconds);
        }

        private sealed class ConcurrencyGroup
        {
            private readonly List<ConcurrencyContender> _contenders;
            private readonly Dictionary<string, (double Main, double? WriterNs, double? Barriers)> _medians = new();
            private readonly Dictionary<string, List<ConcurrencySample>> _samples;
            private readonly string? _barrierSource;
            private readonly double _seconds;

            public ConcurrencyGroup(List<ConcurrencyContender> contenders, Dictionary<string, List<ConcurrencySample>> samples,
                                    string? barrierSource, double seconds)
            {
                _contenders = contenders;
                _samples = samples;
                _barrierSource = barrierSource;
                _seconds = seconds;
                foreach ((string name, List<ConcurrencySample> list) in samples)
                {
                    _medians[name] = (Median(list.Select(s => (double?)s.Main))!.Value, Median(list.Select(s => s.WriterNs)), Median(list.Select(s => s.BarriersPer1000)));
                }
            }

            public List<GoalRow> Rows()
            {
                double Main(string c) => _medians[c].Main;
                string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
                GoalRow Throughput(string name, string a, string b, string unit, double target, string more = "")
                {
                    double[] ratios = _samples[a].Zip(_samples[b], (x, y) => x.Main / y.Main).Order().ToArray();
                    return new(name, ratios[ratios.Length / 2], null, target, true,
                               $"median of {ratios.Length} per-round ratios ({F(ratios[0])}–{F(ratios[^1])}); medians {a} {F(Main(a))} {unit}, {b} {F(Main(b))} {unit}{more}");
                }

                double setEntry = Main("SetEntry alone");
                double cas = Main("CasPublish alone");
                (double _, double? msNs, double? msBarriers) = _medians["Batch beside MergeSplit"];
                string source = _barrierSource ?? "no barrier counter in this build (no FastEpt meter instrument or Epoch member named *barrier*)";
                return
                [
                    Throughput("Readers beside a 4K-remapping SetEntry thread / beside a busy thread: TranslateBatch (Auto, 4096 GPAs), throughput",
                               "Batch beside Remap4K", "Batch beside Busy", "M GPAs/s", 0.9),
                    Throughput("Readers beside a 4K-remapping SetEntry thread / beside a busy thread: scalar Translate, throughput",
                               "Scalar beside Remap4K", "Scalar beside Busy", "M GPAs/s", 0.9),
                    Throughput($"Log-dirty write faults, 2 threads on distinct GFNs / 1 thread, faults per second ({Environment.ProcessorCount} CPUs)",
                               "LogDirty 2 threads", "LogDirty 1 thread", "M faults/s", 1.6, $" ({LogDirtyPagesPerWorker} faults per worker)"),
                    new("Single-thread SetEntry (4K remap, nothing else running), ns per call: compare with the previous build's by bench/compare/compare.sh (goal <= 1.10 x)",
                        setEntry, null, null, false, $"SetEntry {F(setEntry)} ns = {F(setEntry / cas)} x the compare-exchange floor (CasPublish {F(cas)} ns, same GFNs)"),
                    new("Merge/split-heavy writer: reclamation barriers per 1,000 SetEntry calls", msBarriers, null, 10, false, $"from {source}"),
                    new("Merge/split-heavy writer beside a TranslateBatch reader, ns per SetEntry", msNs, null, null, false,
                        $"{Scenario.MergeSplitWritesPerVisit} writes per region visit, 2 of them unlinking a table"),
                    Throughput("Readers beside the merge/split-heavy writer / beside a busy thread: TranslateBatch (Auto), throughput",
                               "Batch beside MergeSplit", "Batch beside Busy", "M GPAs/s", 0.9),
                ];
            }

            public void AppendTimings(StringBuilder sb)
            {
                static string F(double? v) => v is double d ? d.ToString("F2", CultureInfo.InvariantCulture) : "-";
                sb.AppendLine();
                sb.AppendLine(CultureInfo.InvariantCulture, $"Concurrency ({Scenario.Describe}; log-dirty: {LogDirtyScenario.Describe}): medians over {ConcurrencyRounds} rounds "
                    + $"of {ConcurrencyRoundSeconds:F1} s per contender ({LogDirtyPagesPerWorker} faults per log-dirty worker), interleaved ({_seconds:F1} s with setup):");
                sb.AppendLine();
                sb.AppendLine("| Contender | Median | Unit | Writer ns/SetEntry | Barriers per 1,000 writes |");
                sb.AppendLine("| --- | ---: | --- | ---: | ---: |");
                foreach (ConcurrencyContender c in _contenders)
                {
                    (double main, double? ns, double? barriers) = _medians[c.Name];
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {c.Name} | {F(main)} | {c.Unit} | {F(ns)} | {F(barriers)} |");
                }
            }

            public string Note =>
                $"Concurrency ({Scenario.Describe}): each reader row is the reader's throughput with a writer on a second thread over its throughput with a "
                + "thread that spins without touching FastEpt, so both have one other core busy; the writers never touch the readers' pages and every "
                + $"answer is checked. Each ratio is the median of the per-round ratios (both contenders timed in the same round). Reclamation barriers: {_barrierSource ?? "no counter in this build (n/a)"}. {Environment.ProcessorCount} logical CPUs.";

            public object Json => new
            {
                scenario = Scenario.Describe,
                logDirty = LogDirtyScenario.Describe,
                rounds = ConcurrencyRounds,
                roundSeconds = ConcurrencyRoundSeconds,
                barrierCounter = _barrierSource,
                logDirtyFaultsPerWorker = LogDirtyPagesPerWorker,
                contenders = _contenders.Select(c => new
                {
                    contender = c.Name,
                    median = _medians[c.Name].Main,
                    rounds = _samples[c.Name].Select(x => x.Main),
                    unit = c.Unit,
                    writerNsPerSetEntry = _medians[c.Name].WriterNs,
                    barriersPer1000Writes = _medians[c.Name].Barriers,
                }),
            };

            private static double? Median(IEnumerable<double?> values)
            {
                double[] v = values.OfType<double>().Order().ToArray();
                return v.Length == 0 ? null : v[v.Length / 2];
            }
        }
    }
}

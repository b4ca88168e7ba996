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
using System.Threading;
using BenchmarkDotNet.Reports;

namespace FastEpt.Bench
{
    /// <summary>
    /// FastEpt's performance goals (docs/benchmarks.md), measured interleaved: the contenders the goals compare (from
    /// <see cref="Perf_TranslateSuite"/>, the very same methods, on its DRAM-size and
    /// cache-resident random-4K scenarios) are timed round after round, each once per round
    /// in a rotating order, and each goal is a ratio of per-contender medians. On a shared,
    /// noisy machine this is far steadier than comparing BenchmarkDotNet cases measured
    /// minutes apart; the BenchmarkDotNet summary's ratios, when the run has one, are printed
    /// beside them for comparison. Writes goals.md and goals.json.
    /// </summary>
    /// <remarks>
    /// A third interleaved group times the 2D walks of <see cref="Perf_Walk2D"/> (random GLAs
    /// over 4K and 2M guest pages, 4K EPT pages) against the 1D walk of the same final GPAs, and a
    /// fourth the emulated 8-byte accesses of <see cref="Perf_Emulation"/> (MMIO and RAM, within a
    /// page and crossing one) against <see cref="Vcpu.TranslateLinear"/> of the same RAM
    /// addresses; their rows are informational: they have no target. A last group
    /// (Goals.Concurrency.cs) times <see cref="Perf_Concurrency"/>'s readers beside writers,
    /// log-dirty faults on one and two threads, and SetEntry alone, in rounds of a fixed duration.
    /// </remarks>
    internal static partial class Goals
    {
        private const int Rounds = 201;
        private const int CallsPerRound = 4;        // × Perf_TranslateSuite.Ops GPAs
        private const int WarmupCalls = 40;
        private const double WarmupSeconds = 0.25;
        private const int TieringQuietMs = 250;

        private static readonly string[] BatchPaths = ["Batch_Auto", "Batch_Scalar", "Batch_Pipelined", "Batch_Gather"];

        private static readonly string[] Walk2DMethods = ["Walk1D_Scalar", "Walk2D_Scalar", "Walk2D_Batch"];

        // The replay group: whole-trace replays of Perf_Replay.Accesses accesses per call, so
        // fewer rounds of one call each (about 0.25 s per round on this machine class).
        private const int ReplayRounds = 15;
        private const int ReplayWarmupCalls = 3;

        private static readonly string[] ReplayMethods = ["ParseBinary", "ReplayBinary", "ParseLackey", "ReplayLackey"];

        private static readonly string[] EmulationMethods =
        [
            "TranslateLinear8", "Ram8_Read", "Ram8_Write", "Ram8_Read_Crossing",
            "Mmio8_Read", "Mmio8_Write", "Mmio8_Read_Crossing", "Mmio8_Write_Crossing",
        ];

        /// <summary>Measures, prints and writes the goals table; returns 0 (missed goals are results, not errors).</summary>
        /// <param name="summary">The run's <see cref="Perf_TranslateSuite"/> summary, for the BDN column; null when none ran.</param>
        /// <param name="walk2DSummary">The run's <see cref="Perf_Walk2D"/> summary, likewise.</param>
        /// <param name="emulationSummary">The run's <see cref="Perf_Emulation"/> summary, likewise.</param>
        /// <param name="replaySummary">The run's <see cref="Perf_Replay"/> summary, likewise.</param>
        /// <param name="outDir">Where goals.md and goals.json go; null writes nothing.</param>
        public static int Run(Summary? summary, Summary? walk2DSummary, Summary? emulationSummary, Summary? replaySummary, string? outDir)
        {
            Console.WriteLine();
            Console.WriteLine("==> Goals: interleaved timing of the compared methods (random 4K GPAs, read)");
            Perf_TranslateSuite dram = CreateSuite(Footprint.Dram);
            Perf_TranslateSuite cache = CreateSuite(Footprint.CacheResident);

            string[] dramMethods = ["Scalar", "NativeScalar", "NativeBatch", .. BatchPaths, .. NativeMethods, "DependentChase"];
            string[] cacheMethods = ["Scalar", "NativeScalar", "NativeBatch", .. BatchPaths, .. NativeMethods, "TlbHit", "ArrayIndex"];
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
                var group = contenders.Where(c => c.Footprint == footprint).Select(c => (c.Method, c.Body)).ToList();
                foreach (var (method, ns) in Interleave(group, Perf_TranslateSuite.Ops, ref sink))
                {
                    medians[(footprint, method)] = ns;
                }
            }

            // The 2D walks: a group of their own, over their own (small) guest.
            var walk2D = new Perf_Walk2D();
            walk2D.Setup();
            Stopwatch walk2DWatch = Stopwatch.StartNew();
            Dictionary<string, double> walk2DMedians = Interleave(Walk2DMethods.Select(m => (m, Body(walk2D, m))).ToList(), Perf_Walk2D.Ops, ref sink);
            walk2DWatch.Stop();
            string walk2DGuest = $"{Walk2DGuest.GuestRamBytes >> 20} MiB guest RAM in 4K EPT pages; stage 1 maps {Walk2DGuest.RegionCount} linear 2 MiB regions, "
                + $"{walk2D.Guest.Regions4K} in 4K guest pages and {walk2D.Guest.Regions2M} in 2M ones";
            walk2D.Cleanup();

            // The emulated accesses: a group of their own, over their own guest.
            var emulation = new Perf_Emulation();
            emulation.Setup();
            Stopwatch emulationWatch = Stopwatch.StartNew();
            Dictionary<string, double> emulationMedians = Interleave(EmulationMethods.Select(m => (m, Body(emulation, m))).ToList(), Perf_Emulation.Ops, ref sink);
            emulationWatch.Stop();
            emulation.ThrowIfAnyFailed();
            emulation.Cleanup();
            string emulationGuest = $"{EmulationGuest.RegionPages} RAM and {EmulationGuest.MmioPages} MMIO pages (a byte-array device) in 4K guest pages over 4K EPT pages";

            // Trace replay (the fastept tool's engine): parse only against parse + translate.
            var replay = new Perf_Replay();
            replay.Setup();
            Stopwatch replayWatch = Stopwatch.StartNew();
            Dictionary<string, double> replayMedians = Interleave(ReplayMethods.Select(m => (m, Body(replay, m))).ToList(), Perf_Replay.Accesses, ref sink,
                                                                  ReplayRounds, callsPerRound: 1, ReplayWarmupCalls);
            replayWatch.Stop();
            replay.Cleanup();

            // Readers beside writers, log-dirty faults on 1 and 2 threads, SetEntry alone (Goals.Concurrency.cs).
            ConcurrencyGroup concurrency = RunConcurrency();
            PagingGroup paging = RunPaging();      // 2D walks per paging mode (Goals.Paging.cs)
            TlbGroup tlb = RunTlb();        // both TLBs' hit rows (Goals.Tlb.cs)

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

            AppendGroup(timings, $"2D walks, random GLAs ({walk2DGuest}): medians over {Rounds} rounds of {CallsPerRound} x {Perf_Walk2D.Ops} addresses per method, interleaved ({walk2DWatch.Elapsed.TotalSeconds:F1} s):",
                        "walk", "walks", Walk2DMethods, walk2DMedians, "Walk1D_Scalar");
            AppendGroup(timings, $"Emulated 8-byte accesses, each access + Complete() ({emulationGuest}): medians over {Rounds} rounds of {CallsPerRound} x {Perf_Emulation.Ops} accesses per method, interleaved ({emulationWatch.Elapsed.TotalSeconds:F1} s):",
                        "access", "accesses", EmulationMethods, emulationMedians, "TranslateLinear8");
            AppendGroup(timings, $"Trace replay ({Perf_Replay.Describe}): medians over {ReplayRounds} rounds of one whole trace of {Perf_Replay.Accesses} accesses per method, interleaved ({replayWatch.Elapsed.TotalSeconds:F1} s):",
                        "access", "accesses", ReplayMethods, replayMedians, "ParseBinary");
            concurrency.AppendTimings(timings);
            paging.AppendTimings(timings);
            tlb.AppendTimings(timings);

            Console.WriteLine(timings.ToString());
            Console.WriteLine($"(checksum {sink:X})");
            Func<Footprint, string, double?>? bdn = summary is null ? null : BdnMedians(summary);
            List<GoalRow> rows = EvaluateNative((f, m) => medians.TryGetValue((f, m), out double v) ? v : null, bdn);
            rows.AddRange(Evaluate((f, m) => medians.TryGetValue((f, m), out double v) ? v : null, bdn));
            Func<string, double?>? bdn2D = walk2DSummary is null ? null : BdnMediansOf(walk2DSummary, typeof(Perf_Walk2D));
            rows.AddRange(EvaluateWalk2D(m => walk2DMedians.TryGetValue(m, out double v) ? v : null, bdn2D));
            Func<string, double?>? bdnEmulation = emulationSummary is null ? null : BdnMediansOf(emulationSummary, typeof(Perf_Emulation));
            rows.AddRange(EvaluateEmulation(m => emulationMedians.TryGetValue(m, out double v) ? v : null, bdnEmulation));
            Func<string, double?>? bdnReplay = replaySummary is null ? null : BdnMediansOf(replaySummary, typeof(Perf_Replay));
            rows.AddRange(EvaluateReplay(m => replayMedians.TryGetValue(m, out double v) ? v : null, bdnReplay));
            rows.AddRange(concurrency.Rows());
            rows.AddRange(paging.Rows());
            rows.AddRange(tlb.Rows());
            string table = FormatTable(rows, bdn is not null || bdn2D is not null || bdnEmulation is not null || bdnReplay is not null);
            Console.WriteLine();
            Console.WriteLine(table);
            string notes = Notes(medians, dram.TlbPages, walk2DGuest, emulationGuest) + concurrency.Note + Environment.NewLine;
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
                    walk2D = new
                    {
                        guest = walk2DGuest,
                        addressesPerSample = CallsPerRound * Perf_Walk2D.Ops,
                        nsPerWalk = Walk2DMethods.Select(m => new { method = m, ns = walk2DMedians[m] }),
                    },
                    emulation = new
                    {
                        guest = emulationGuest,
                        accessesPerSample = CallsPerRound * Perf_Emulation.Ops,
                        nsPerAccess = EmulationMethods.Select(m => new { method = m, ns = emulationMedians[m] }),
                    },
                    replay = new
                    {
                        trace = Perf_Replay.Describe,
                        accessesPerSample = Perf_Replay.Accesses,
                        rounds = ReplayRounds,
                        nsPerAccess = ReplayMethods.Select(m => new { method = m, ns = replayMedians[m] }),
                    },
                    concurrency = concurrency.Json,
                    goals = rows.Select(r => new { goal = r.Name, measured = r.Measured, bdn = r.Bdn, target = r.Target, atLeast = r.AtLeast, met = r.Met, detail = r.Detail }),
                };
                File.WriteAllText(Path.Combine(outDir, "goals.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"Goals written to {Path.Combine(outDir, "goals.md")} and goals.json");
            }

            return 0;
        }

        // One group's timings: a heading, then ns and millions per second of each method and its
        // time against `baseline`.
        private static void AppendGroup(StringBuilder timings, string heading, string unit, string units, string[] methods, Dictionary<string, double> medians, string baseline)
        {
            timings.AppendLine();
            timings.AppendLine(heading);
            timings.AppendLine();
            timings.AppendLine(CultureInfo.InvariantCulture, $"| Method | ns/{unit} | M {units}/s | time vs {baseline} |");
            timings.AppendLine("| --- | ---: | ---: | ---: |");
            foreach (string m in methods)
            {
                double ns = medians[m];
                timings.AppendLine(CultureInfo.InvariantCulture, $"| {m} | {ns:F2} | {1e3 / ns:F1} | {ns / medians[baseline]:F2} |");
            }
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
            "DependentChase" => s.DependentChase,
            _ => NativeBody(s, method),
        };

        private static Func<ulong> Body(Perf_Walk2D w, string method) => method switch
        {
            "Walk1D_Scalar" => w.Walk1D_Scalar,
            "Walk2D_Scalar" => w.Walk2D_Scalar,
            "Walk2D_Batch" => w.Walk2D_Batch,
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };

        private static Func<ulong> Body(Perf_Emulation e, string method) => method switch
        {
            "TranslateLinear8" => e.TranslateLinear8,
            "Ram8_Read" => e.Ram8_Read,
            "Ram8_Write" => e.Ram8_Write,
            "Ram8_Read_Crossing" => e.Ram8_Read_Crossing,
            "Mmio8_Read" => e.Mmio8_Read,
            "Mmio8_Write" => e.Mmio8_Write,
            "Mmio8_Read_Crossing" => e.Mmio8_Read_Crossing,
            "Mmio8_Write_Crossing" => e.Mmio8_Write_Crossing,
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };

        private static Func<ulong> Body(Perf_Replay r, string method) => method switch
        {
            "ParseBinary" => () => (ulong)r.ParseBinary(),
            "ReplayBinary" => () => (ulong)r.ReplayBinary(),
            "ParseLackey" => () => (ulong)r.ParseLackey(),
            "ReplayLackey" => () => (ulong)r.ReplayLackey(),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };

        // Times one group interleaved: each contender warmed up, then once per round (callsPerRound
        // calls of opsPerCall addresses) in a rotating order; returns each one's median ns per address.
        private static Dictionary<string, double> Interleave(List<(string Method, Func<ulong> Body)> group, int opsPerCall, ref ulong sink,
                                                             int rounds = Rounds, int callsPerRound = CallsPerRound, int warmupCalls = WarmupCalls)
        {
            // Tiering: the runtime promotes a method only after a spell with no new tier-0
            // compilations (100 ms by default), so run for WarmupSeconds, then sleep past that spell.
            var warm = Stopwatch.StartNew();
            do
            {
                foreach (var c in group)
                {
                    for (int i = 0; i < warmupCalls; i++)
                    {
                        sink += c.Body();
                    }
                }
            }
            while (warm.Elapsed.TotalSeconds < WarmupSeconds);
            Thread.Sleep(TieringQuietMs);     // the tier-1 code is installed by the time rounds start

            double[][] samples = group.Select(_ => new double[rounds]).ToArray();
            for (int round = 0; round < rounds; round++)
            {
                for (int k = 0; k < group.Count; k++)
                {
                    int c = (k + round) % group.Count;     // rotate: no contender always follows the same one
                    Func<ulong> body = group[c].Body;
                    long start = Stopwatch.GetTimestamp();
                    for (int r = 0; r < callsPerRound; r++)
                    {
                        sink += body();
                    }

                    long ticks = Stopwatch.GetTimestamp() - start;
                    samples[c][round] = ticks * 1e9 / Stopwatch.Frequency / (callsPerRound * (double)opsPerCall);
                }
            }

            var medians = new Dictionary<string, double>();
            for (int c = 0; c < group.Count; c++)
            {
                Array.Sort(samples[c]);
                medians[group[c].Method] = samples[c][rounds / 2];
            }

            return medians;
        }

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

        // ns per operation (walk, access) of the methods of `type` (a class without [Params]) from
        // its summary; null where the run did not measure that method.
        private static Func<string, double?> BdnMediansOf(Summary summary, Type type)
        {
            var map = new Dictionary<string, double>();
            foreach (BenchmarkReport report in summary.Reports)
            {
                if (report.ResultStatistics is not null && report.BenchmarkCase.Descriptor.Type == type)
                {
                    map[report.BenchmarkCase.Descriptor.WorkloadMethod.Name] = report.ResultStatistics.Median;
                }
            }

            return m => map.TryGetValue(m, out double v) ? v : null;
        }

        // Target null: an informational row, measured and printed but neither met nor missed.
        private sealed record GoalRow(string Name, double? Measured, double? Bdn, double? Target, bool AtLeast, string Detail)
        {
            public bool? Met => Measured is double m && Target is double t ? (AtLeast ? m >= t : m <= t) : null;
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
                Row($"DRAM-size, random 4K: batched ({best}) / scalar managed, throughput", D, best, D, "Scalar", 3.0, true),
                Row("Cache-resident, random 4K: batched (Batch_Auto) / scalar managed, throughput", C, "Batch_Auto", C, "Scalar", 1.0, true),
                Row("Cache-resident, random 4K: scalar managed / native scalar, time", C, "Scalar", C, "NativeScalar", 1.1, false, timeRatio: true),
                Row("DRAM-size, random 4K: scalar managed / native scalar, time", D, "Scalar", D, "NativeScalar", 1.1, false, timeRatio: true),
            ];
        }

        // The 2D-walk rows, informational (no target): time ratios, ns per walk over ns per walk.
        private static List<GoalRow> EvaluateWalk2D(Func<string, double?> ns, Func<string, double?>? bdn)
        {
            GoalRow Row(string name, string a, string b) => InfoRow(ns, bdn, name, a, b);

            return
            [
                Row("2D walk, random GLAs (4K+2M guest pages, 4K EPT): TranslateLinear / 1D scalar Translate, time per walk", "Walk2D_Scalar", "Walk1D_Scalar"),
                Row("2D walk, random GLAs: TranslateLinearBatch / TranslateLinear, time per walk", "Walk2D_Batch", "Walk2D_Scalar"),
            ];
        }

        // The emulation rows, informational (no target): time ratios, ns per access over ns per access.
        private static List<GoalRow> EvaluateEmulation(Func<string, double?> ns, Func<string, double?>? bdn)
        {
            GoalRow Row(string name, string a, string b) => InfoRow(ns, bdn, name, a, b);

            return
            [
                Row("Emulated 8-byte read (HvmEmulation, 4K guest and EPT pages): MMIO / RAM, time per access", "Mmio8_Read", "Ram8_Read"),
                Row("Emulated 8-byte MMIO read: crossing a page (4+4 bytes) / within one page, time per access", "Mmio8_Read_Crossing", "Mmio8_Read"),
                Row("Emulated 8-byte RAM read: HvmEmulation.LinearRead + Complete / Vcpu.TranslateLinear, time per access", "Ram8_Read", "TranslateLinear8"),
            ];
        }

        // The replay rows: the two replay throughput goals (M accesses/s, parse + translate),
        // then the cost of translating as a multiple of parsing alone (informational).
        private static List<GoalRow> EvaluateReplay(Func<string, double?> ns, Func<string, double?>? bdn)
        {
            static double? Rate(Func<string, double?> f, string m) => f(m) is double t ? 1e3 / t : null;
            string Ns(string m) => ns(m) is double v ? v.ToString("F2", CultureInfo.InvariantCulture) + " ns" : "n/a";
            GoalRow Throughput(string name, string m, string parse, double target)
                => new(name, Rate(ns, m), bdn is null ? null : Rate(bdn, m), target, true, $"{m} {Ns(m)} per access ({parse} alone {Ns(parse)})");

            return
            [
                Throughput("Binary trace replay (parse + translate + statistics), M accesses/s", "ReplayBinary", "ParseBinary", 50),
                Throughput("Lackey text trace replay (parse + translate + statistics), M accesses/s", "ReplayLackey", "ParseLackey", 5),
                InfoRow(ns, bdn, "Binary trace: replay / parse alone, time per access", "ReplayBinary", "ParseBinary"),
                InfoRow(ns, bdn, "Lackey text trace: replay / parse alone, time per access", "ReplayLackey", "ParseLackey"),
            ];
        }

        // An informational row (Target null): time(a) / time(b), from `ns` and from BDN's.
        private static GoalRow InfoRow(Func<string, double?> ns, Func<string, double?>? bdn, string name, string a, string b)
        {
            static double? TimeRatio(Func<string, double?> f, string a, string b) => f(a) is double ta && f(b) is double tb ? ta / tb : null;
            string Ns(string m) => ns(m) is double v ? v.ToString("F2", CultureInfo.InvariantCulture) + " ns" : "n/a";
            return new(name, TimeRatio(ns, a, b), bdn is null ? null : TimeRatio(bdn, a, b), null, false, $"{a} {Ns(a)}, {b} {Ns(b)}");
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
                string target = r.Target is double t ? (r.AtLeast ? ">= " : "<= ") + t.ToString("F2", CultureInfo.InvariantCulture) : "-";
                string met = r.Target is null ? "info" : r.Met switch { true => "yes", false => "no", null => "n/a" };
                sb.AppendLine(withBdn
                    ? $"| {r.Name} | {F(r.Measured)} | {F(r.Bdn)} | {target} | {met} | {r.Detail} |"
                    : $"| {r.Name} | {F(r.Measured)} | {target} | {met} | {r.Detail} |");
            }

            return sb.ToString();
        }

        // What limits the numbers: where the tables are served from, and the MLP the floor shows.
        private static string Notes(Dictionary<(Footprint, string), double> ns, int tlbPages, string walk2DGuest, string emulationGuest)
        {
            double chase = ns[(Footprint.Dram, "DependentChase")];
            double floor = ns[(Footprint.Dram, "LeafLoads")];
            double scalar = ns[(Footprint.Dram, "Scalar")];
            var sb = new StringBuilder();
            sb.AppendLine(CultureInfo.InvariantCulture, $"DRAM-size tables: dependent leaf-slot load {chase:F1} ns (latency), independent {floor:F2} ns (floor): "
                + $"{chase / floor:F1} loads in flight; a scalar walk costs {scalar / chase:F2} x the latency.");
            sb.AppendLine(CultureInfo.InvariantCulture, $"AVX2 gather path: {(Perf_TranslateSuite.GatherSupported ? "supported" : "not supported (Batch_Gather times the fallback)")}; "
                + $"TlbHit over {tlbPages} page(s); {Environment.ProcessorCount} logical CPUs.");
            sb.AppendLine($"2D walks ({walk2DGuest}): a walk of a 4K guest page reads 4 guest entries, each through an EPT walk, then walks the final GPA "
                + "(5 EPT walks); a 2M guest page takes 4. The 2D rows (Target -, Met info) have no target.");
            sb.AppendLine($"Emulated accesses ({emulationGuest}): each is one instruction, LinearRead or LinearWrite of 8 bytes then Complete(); every page "
                + "of an access is translated by GetPageFromGva (a 2D walk under the p2m read lock) and a RAM page referenced while it is copied; a crossing "
                + "access translates two pages. TranslateLinear8 walks the RAM reads' addresses. The emulation rows (Target -, Met info) have no target.");
            sb.AppendLine($"Trace replay ({Perf_Replay.Describe}): each call opens the trace file, builds the replay guest and replays every access with "
                + "the report's statistics (per-page counts, walk depth, working set, heat map); the two throughput rows are absolute goals "
                + "for this machine class, the time ratios show what translating adds to parsing.");
            return sb.ToString();
        }
    }
}

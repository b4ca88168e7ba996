// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;

namespace FastEpt.Bench
{
    // The TLB group: both TLBs' hit paths against an array-index lookup over the same addresses
    // (SoftTlb on Perf_TranslateSuite's cache-resident scenario, LinearTlb on Perf_LinearTlb's
    // guest), and an emulated RAM read that hits against the 2D walk; all six interleaved.
    internal static partial class Goals
    {
        private static readonly string[] TlbMethods = ["SoftTlbHit", "SoftTlbArrayIndex", "LinearTlbHit", "LinearArrayIndex", "TranslateLinear8", "Ram8_ReadHit"];

        /// <summary>Runs only the TLB group and prints (and writes) its rows.</summary>
        public static int RunTlbOnly(string? outDir)
        {
            Console.WriteLine();
            Console.WriteLine("==> Goals: the TLB group alone");
            TlbGroup group = RunTlb();
            var timings = new StringBuilder();
            group.AppendTimings(timings);
            string table = FormatTable(group.Rows(), withBdn: false);
            Console.WriteLine(timings.ToString());
            Console.WriteLine(table);
            if (outDir is not null)
            {
                System.IO.Directory.CreateDirectory(outDir);
                System.IO.File.WriteAllText(System.IO.Path.Combine(outDir, "goals.md"), "# Goals: TLB\n\n" + table + "\n## Timings\n" + timings);
            }

            return 0;
        }

        private static TlbGroup RunTlb()
        {
            Perf_TranslateSuite soft = CreateSuite(Footprint.CacheResident);
            var linear = new Perf_LinearTlb();
            linear.Setup();
            try
            {
                // Contenders of both classes in one group; each call's time is divided by its own
                // class's addresses per call afterwards.
                var ops = new Dictionary<string, int>();
                var group = new List<(string Method, Func<ulong> Body)>();
                void Add(string name, Func<ulong> body, int perCall)
                {
                    group.Add((name, body));
                    ops[name] = perCall;
                }

                Add("SoftTlbHit", soft.TlbHit, Perf_TranslateSuite.Ops);
                Add("SoftTlbArrayIndex", soft.ArrayIndex, Perf_TranslateSuite.Ops);
                Add("LinearTlbHit", linear.LinearTlbHit, Perf_LinearTlb.Ops);
                Add("LinearArrayIndex", linear.ArrayIndex, Perf_LinearTlb.Ops);
                Add("TranslateLinear8", linear.TranslateLinear8, Perf_LinearTlb.Ops);
                Add("Ram8_ReadHit", linear.Ram8_ReadHit, Perf_LinearTlb.Ops);
                ulong sink = 0;
                Stopwatch watch = Stopwatch.StartNew();
                Dictionary<string, double> perCall = Interleave(group, opsPerCall: 1, ref sink);
                watch.Stop();
                linear.ThrowIfAnyMissed();
                Console.WriteLine($"(checksum {sink:X})");
                return new TlbGroup(perCall.ToDictionary(kv => kv.Key, kv => kv.Value / ops[kv.Key]), watch.Elapsed.TotalSeconds, soft.TlbPages);
            }
            finally
            {
                linear.Cleanup();
            }
        }

        private sealed class TlbGroup
        {
            private readonly Dictionary<string, double> _ns;
            private readonly double _seconds;
            private readonly int _softPages;

            public TlbGroup(Dictionary<string, double> ns, double seconds, int softPages)
            {
                _ns = ns;
                _seconds = seconds;
                _softPages = softPages;
            }

            public List<GoalRow> Rows()
            {
                string F(string m) => _ns[m].ToString("F2", CultureInfo.InvariantCulture) + " ns";
                GoalRow Throughput(string name, string a, string b, double target)
                    => new(name, _ns[b] / _ns[a], null, target, true, $"{a} {F(a)}, {b} {F(b)}");

                return
                [
                    Throughput($"SoftTlb hit / array-index lookup, throughput ({_softPages} pages)", "SoftTlbHit", "SoftTlbArrayIndex", 0.5),
                    Throughput($"Combined TLB (LinearTlb) hit / array-index lookup, throughput ({EmulationGuest.RegionPages} pages)", "LinearTlbHit", "LinearArrayIndex", 0.5),
                    new("Emulated 8-byte RAM read whose page hits the combined TLB / TranslateLinear walk, time", _ns["Ram8_ReadHit"] / _ns["TranslateLinear8"], null, 0.15, false,
                        $"Ram8_ReadHit {F("Ram8_ReadHit")}, TranslateLinear8 {F("TranslateLinear8")}"),
                ];
            }

            public void AppendTimings(StringBuilder timings)
            {
                timings.AppendLine();
                timings.AppendLine(CultureInfo.InvariantCulture, $"TLB hits (SoftTlb over {_softPages} pages of the cache-resident scenario; LinearTlb over {EmulationGuest.RegionPages} RAM pages of the emulation guest): medians over {Rounds} rounds, interleaved ({_seconds:F1} s):");
                timings.AppendLine();
                timings.AppendLine("| Method | ns/address | M addresses/s |");
                timings.AppendLine("| --- | ---: | ---: |");
                foreach (string m in TlbMethods)
                {
                    timings.AppendLine(CultureInfo.InvariantCulture, $"| {m} | {_ns[m]:F2} | {1e3 / _ns[m]:F1} |");
                }
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace FastEpt.Bench
{
    // The floor and the native-library rows: the batched walk against one leaf-slot load per GPA
    // from precomputed addresses (in C# and in C), the native batch against the managed one, and
    // one translation per call from C (the header-inline fastept_translate_inline, and the
    // exported fastept_translate) against the same walk written out as a plain C loop. Their
    // contenders (Perf_TranslateSuite.Native.cs) run in the same interleaved groups as the walks.
    internal static partial class Goals
    {
        // Interleaved in both footprints' groups, beside the walks.
        private static readonly string[] NativeMethods = ["LeafLoads", "NativeLeafLoads", "NativeWalkLoop", "NativeTranslateLoop", "NativeInlineLoop", "NativeBatch_Pipelined"];

        private static Func<ulong> NativeBody(Perf_TranslateSuite s, string method) => method switch
        {
            "LeafLoads" => s.LeafLoads,
            "NativeLeafLoads" => s.NativeLeafLoads,
            "NativeWalkLoop" => s.NativeWalkLoop,
            "NativeTranslateLoop" => s.NativeTranslateLoop,
            "NativeInlineLoop" => s.NativeInlineLoop,
            "NativeBatch_Pipelined" => s.NativeBatch_Pipelined,
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };

        private static List<GoalRow> EvaluateNative(Func<Footprint, string, double?> ns, Func<Footprint, string, double?>? bdn)
        {
            const Footprint D = Footprint.Dram;
            const Footprint C = Footprint.CacheResident;
            string[] paths = Perf_TranslateSuite.GatherSupported ? BatchPaths : BatchPaths.Where(p => p != "Batch_Gather").ToArray();
            string best = paths.Where(p => ns(D, p) is not null).OrderBy(p => ns(D, p)).FirstOrDefault() ?? "Batch_Auto";
            string Ns(Footprint f, string m) => ns(f, m) is double v ? v.ToString("F2", CultureInfo.InvariantCulture) + " ns" : "n/a";

            // Throughput a/b = time(b)/time(a); time a/b = time(a)/time(b).
            GoalRow Row(string name, Footprint f, string a, string b, double? target, bool throughput)
            {
                double? Get(Func<Footprint, string, double?> t)
                    => t(f, a) is double ta && t(f, b) is double tb ? (throughput ? tb / ta : ta / tb) : null;
                return new GoalRow(name, Get(ns), bdn is null ? null : Get(bdn), target, throughput, $"{a} {Ns(f, a)}, {b} {Ns(f, b)}");
            }

            return
            [
                Row($"DRAM-size, random 4K: batched ({best}) / leaf-load floor in C# (precomputed slot addresses), throughput", D, best, "LeafLoads", 0.8, true),
                Row($"DRAM-size, random 4K: batched ({best}) / leaf-load floor in C (precomputed slot addresses), throughput", D, best, "NativeLeafLoads", 0.8, true),
                Row("DRAM-size, random 4K: native batch (fastept_translate_batch) / managed Batch_Auto, time", D, "NativeBatch", "Batch_Auto", 1.1, false),
                Row("Cache-resident, random 4K: native batch (fastept_translate_batch) / managed Batch_Auto, time", C, "NativeBatch", "Batch_Auto", 1.1, false),
                Row("DRAM-size, random 4K: fastept_translate_inline (prepared walker) from C / plain C walk loop, time", D, "NativeInlineLoop", "NativeWalkLoop", 1.1, false),
                Row("Cache-resident, random 4K: fastept_translate_inline (prepared walker) from C / plain C walk loop, time", C, "NativeInlineLoop", "NativeWalkLoop", 1.1, false),
                Row("DRAM-size, random 4K: fastept_translate (exported call) from C / plain C walk loop, time", D, "NativeTranslateLoop", "NativeWalkLoop", null, false),
                Row("Cache-resident, random 4K: fastept_translate (exported call) from C / plain C walk loop, time", C, "NativeTranslateLoop", "NativeWalkLoop", null, false),
                Row("DRAM-size, random 4K: native batch (fastept_translate_batch) / leaf-load floor in C, throughput", D, "NativeBatch", "NativeLeafLoads", null, true),
                Row("DRAM-size, random 4K: plain C walk loop / leaf-load floor in C, time", D, "NativeWalkLoop", "NativeLeafLoads", null, false),
                Row("DRAM-size, random 4K: scalar managed / plain C walk loop, time", D, "Scalar", "NativeWalkLoop", null, false),
            ];
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastEpt.Cli.Replay
{
    /// <summary>Writes a <see cref="ReplayReport"/> to files.</summary>
    public static class ReportWriter
    {
        private static readonly JsonSerializerOptions JsonOptions = new JsonSerializerOptions
        {
            WriteIndented = true,
            Converters = { new JsonStringEnumConverter() },
        };

        /// <summary>
        /// Writes <c>report.json</c> (the whole report), <c>kinds.csv</c>, <c>walk-depth.csv</c>,
        /// <c>views.csv</c>, <c>hot-pages.csv</c>, <c>hot-regions.csv</c>, <c>working-set.csv</c>,
        /// <c>heatmap.csv</c>, <c>malformed.csv</c>, <c>heatmap.svg</c> and <c>working-set.svg</c>
        /// into <paramref name="directory"/> (created if missing; files are overwritten).
        /// </summary>
        /// <param name="report">The report.</param>
        /// <param name="directory">The output folder.</param>
        /// <returns>The paths written, in the order above.</returns>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        public static IReadOnlyList<string> WriteFiles(ReplayReport report, string directory)
        {
            ArgumentNullException.ThrowIfNull(report);
            ArgumentNullException.ThrowIfNull(directory);
            Directory.CreateDirectory(directory);
            List<string> paths = new List<string>();

            void Write(string name, string content)
            {
                string path = Path.Combine(directory, name);
                File.WriteAllText(path, content, new UTF8Encoding(false));
                paths.Add(path);
            }

            Write("report.json", JsonSerializer.Serialize(report, JsonOptions));
            Write("kinds.csv", Csv(new[] { "kind", "accesses", "bytes", "violations", "violations_not_present", "violations_rights", "misconfigs" },
                report.Kinds.Select(k => new object[] { k.Kind, k.Accesses, k.Bytes, k.Violations, k.NotPresent, k.Rights, k.Misconfigs })));
            Write("walk-depth.csv", Csv(new[] { "leaf_level", "levels_walked", "translations" },
                report.WalkDepth.Select(d => new object[] { d.LeafLevel, d.LevelsWalked, d.Translations })));
            Write("views.csv", Csv(new[] { "view", "accesses", "tlb_hits", "tlb_misses", "violations", "violations_not_present", "violations_rights", "misconfigs", "unresolved" },
                report.ViewStats.Select(v => new object[] { v.View, v.Accesses, v.TlbHits, v.TlbMisses, v.Violations, v.NotPresent, v.Rights, v.Misconfigs, v.Unresolved })));
            Write("hot-pages.csv", HotCsv(report.HotPages));
            Write("hot-regions.csv", HotCsv(report.HotRegions));
            Write("working-set.csv", Csv(new[] { "accesses", "unique_pages" },
                report.WorkingSet.Select(p => new object[] { p.Accesses, p.UniquePages })));
            HeatMap heat = report.HeatMap;
            Write("heatmap.csv", Csv(new[] { "time_bucket", "first_access", "address_bucket", "first_address", "accesses" },
                Enumerable.Range(0, heat.TimeBuckets).SelectMany(t => Enumerable.Range(0, heat.AddressBuckets).Select(a =>
                    new object[] { t, t * heat.AccessesPerTimeBucket, a, Hex(heat.AddressBucketStart[a]), heat.Counts[t][a] }))));
            Write("malformed.csv", Csv(new[] { "line", "reason", "text" },
                report.FirstMalformed.Select(m => new object[] { m.LineNumber, m.Reason, m.Text })));

            Write("heatmap.svg", SvgWriter.HeatMap(
                "Page accesses over time" + (heat.SampleStride > 1 ? $" (1 in {heat.SampleStride} sampled)" : string.Empty),
                "4K pages touched, in address order (equal-sized groups)",
                $"time ({heat.AccessesPerTimeBucket} accesses per row)",
                heat.Counts,
                heat.AddressBucketStart.Select(Hex).ToArray()));
            Write("working-set.svg", SvgWriter.LineChart(
                "Working set", "accesses", "unique 4K pages",
                report.WorkingSet.Select(p => ((double)p.Accesses, (double)p.UniquePages)).ToArray()));
            return paths;
        }

        private static string HotCsv(IEnumerable<HotSpot> rows)
            => Csv(new[] { "address", "accesses", "reads", "writes", "fetches" },
                rows.Select(h => new object[] { Hex(h.Address), h.Accesses, h.Reads, h.Writes, h.Fetches }));

        private static string Hex(ulong v) => "0x" + v.ToString("X", CultureInfo.InvariantCulture);

        /// <summary>RFC 4180 CSV: a header row, then one row per item; fields with commas, quotes or line breaks are quoted.</summary>
        internal static string Csv(IReadOnlyList<string> header, IEnumerable<object[]> rows)
        {
            StringBuilder sb = new StringBuilder();
            sb.Append(string.Join(',', header.Select(Field))).Append("\r\n");
            foreach (object[] row in rows)
            {
                sb.Append(string.Join(',', row.Select(o => Field(Convert.ToString(o, CultureInfo.InvariantCulture) ?? string.Empty)))).Append("\r\n");
            }

            return sb.ToString();
        }

        private static string Field(string s)
            => s.IndexOfAny(new[] { ',', '"', '\r', '\n' }) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
    }
}

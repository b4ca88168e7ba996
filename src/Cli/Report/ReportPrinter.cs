// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Globalization;
using Spectre.Console;

namespace FastEpt.Cli.Replay
{
    /// <summary>Prints a <see cref="ReplayReport"/> as terminal tables.</summary>
    public static class ReportPrinter
    {
        /// <summary>Writes the summary, per-kind, walk-depth, per-view, hot-page, hot-region and malformed-line tables.</summary>
        /// <param name="report">The report.</param>
        /// <param name="console">Where to write.</param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        public static void Print(ReplayReport report, IAnsiConsole console)
        {
            ArgumentNullException.ThrowIfNull(report);
            ArgumentNullException.ThrowIfNull(console);

            Table summary = NewTable("Replay summary", "Metric", "Value");
            summary.AddRow("Accesses", N(report.Accesses));
            summary.AddRow("Bytes", N(report.Bytes));
            summary.AddRow("Unique 4K pages", N(report.UniquePages));
            summary.AddRow("Guest", Markup.Escape($"{report.GuestBytes >> 20} MiB, {report.Pages} pages, {report.Views + 1} view(s)"
                + (report.Views > 0 ? $", altp2m default access {report.ViewAccess}" : string.Empty)));
            summary.AddRow("Translation", Markup.Escape(report.Batch > 0 ? $"TranslateBatch x{report.Batch}" : "scalar Translate"));
            summary.AddRow("TLB", report.TlbEntries > 0
                ? Markup.Escape($"{report.TlbEntries} entries: {N(report.TlbHits)} hits, {N(report.TlbMisses)} misses ({report.TlbHitRate:P2})")
                : "off");
            summary.AddRow("Setup", Markup.Escape($"{report.SetupTime.TotalMilliseconds:F0} ms"));
            summary.AddRow("Replay", Markup.Escape($"{report.Elapsed.TotalMilliseconds:F0} ms"));
            summary.AddRow("Translations/s", N((long)report.TranslationsPerSecond));
            summary.AddRow("EPT violations", N(report.Violations));
            summary.AddRow("EPT misconfigs", N(report.Misconfigs));
            if (report.UnresolvedFaults != 0)
            {
                summary.AddRow("Unresolved faults", N(report.UnresolvedFaults));
            }

            summary.AddRow("Malformed lines", N(report.MalformedCount));
            console.Write(summary);

            Table kinds = NewTable("Accesses and EPT exits by kind", "Kind", "Accesses", "Bytes", "Violations", "not present", "rights", "Misconfigs");
            foreach (KindStats k in report.Kinds)
            {
                kinds.AddRow(k.Kind.ToString(), N(k.Accesses), N(k.Bytes), N(k.Violations), N(k.NotPresent), N(k.Rights), N(k.Misconfigs));
            }

            console.Write(kinds);

            Table depth = NewTable("Walk depth", "Leaf level", "Levels walked", "Translations");
            foreach (DepthBucket d in report.WalkDepth)
            {
                depth.AddRow(N(d.LeafLevel), N(d.LevelsWalked), N(d.Translations));
            }

            console.Write(depth);

            if (report.ViewStats.Count > 1)
            {
                Table views = NewTable("Views", "View", "Accesses", "TLB hits", "TLB misses", "Violations", "not present", "rights", "Misconfigs", "Unresolved");
                foreach (ViewStats v in report.ViewStats)
                {
                    views.AddRow(N(v.View), N(v.Accesses), N(v.TlbHits), N(v.TlbMisses), N(v.Violations), N(v.NotPresent), N(v.Rights), N(v.Misconfigs), N(v.Unresolved));
                }

                console.Write(views);
            }

            console.Write(HotTable($"Hot 4K pages (top {report.HotPages.Count})", "Page", report));
            console.Write(HotTable($"Hot 2M regions (top {report.HotRegions.Count})", "Region", report, regions: true));

            if (report.FirstMalformed.Count > 0)
            {
                Table bad = NewTable("Malformed lines (first 10)", "Line", "Reason", "Text");
                foreach (Traces.MalformedLine m in report.FirstMalformed)
                {
                    bad.AddRow(N(m.LineNumber), Markup.Escape(m.Reason), Markup.Escape(m.Text));
                }

                console.Write(bad);
            }
        }

        private static Table HotTable(string title, string what, ReplayReport report, bool regions = false)
        {
            Table t = NewTable(title, what, "Accesses", "%", "Reads", "Writes", "Fetches");
            foreach (HotSpot h in regions ? report.HotRegions : report.HotPages)
            {
                double share = report.Accesses > 0 ? 100.0 * h.Accesses / report.Accesses : 0;
                t.AddRow("0x" + h.Address.ToString("X", CultureInfo.InvariantCulture), N(h.Accesses), share.ToString("F2", CultureInfo.InvariantCulture), N(h.Reads), N(h.Writes), N(h.Fetches));
            }

            return t;
        }

        private static Table NewTable(string title, params string[] columns)
        {
            Table t = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(title));
            for (int i = 0; i < columns.Length; i++)
            {
                TableColumn c = new TableColumn(Markup.Escape(columns[i]));
                if (i > 0)
                {
                    c.RightAligned();
                }

                t.AddColumn(c);
            }

            return t;
        }

        private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    }
}

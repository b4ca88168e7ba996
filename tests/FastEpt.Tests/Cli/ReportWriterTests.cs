// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Text.Json;
using System.Xml.Linq;
using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;
using Spectre.Console;

namespace FastEpt.Tests.Cli
{
    public sealed class ReportWriterTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "fastept-report-" + Guid.NewGuid().ToString("N"));

        public void Dispose()
        {
            if (Directory.Exists(_dir))
            {
                Directory.Delete(_dir, recursive: true);
            }
        }

        private static ReplayReport MakeReport(int views = 0)
        {
            MalformedLine[] bad = { new MalformedLine(3, "x, \"y\"", "bad, very") };
            using ReplayTestReader reader = new ReplayTestReader(ReplayTests.MakeTrace(5000), malformed: bad);
            return Replayer.Run(reader, new ReplayOptions { GuestBytes = 64L << 20, HotN = 7, Views = views }, null, CancellationToken.None);
        }

        private static string[] CsvLines(string path) => File.ReadAllText(path).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);

        [Fact]
        public void WriteFiles_WritesParseableJsonCsvAndSvg()
        {
            ReplayReport report = MakeReport(views: 2);
            IReadOnlyList<string> paths = ReportWriter.WriteFiles(report, _dir);
            string[] names = paths.Select(Path.GetFileName).ToArray()!;
            Assert.Equal(new[] { "report.json", "kinds.csv", "walk-depth.csv", "views.csv", "hot-pages.csv", "hot-regions.csv", "working-set.csv", "heatmap.csv", "malformed.csv", "heatmap.svg", "working-set.svg" }, names);
            Assert.All(paths, p => Assert.True(File.Exists(p)));

            using (JsonDocument json = JsonDocument.Parse(File.ReadAllText(paths[0])))
            {
                JsonElement root = json.RootElement;
                Assert.Equal(5000, root.GetProperty("Accesses").GetInt64());
                Assert.Equal(report.UniquePages, root.GetProperty("UniquePages").GetInt64());
                Assert.Equal("Size4K", root.GetProperty("Pages").GetString());
                Assert.Equal(7, root.GetProperty("HotPages").GetArrayLength());
                Assert.Equal(report.HotPages[0].Address, root.GetProperty("HotPages")[0].GetProperty("Address").GetUInt64());
                Assert.Equal(3, root.GetProperty("ViewStats").GetArrayLength());
                Assert.Equal(report.WorkingSet.Count, root.GetProperty("WorkingSet").GetArrayLength());
                Assert.Equal(report.HeatMap.TimeBuckets, root.GetProperty("HeatMap").GetProperty("Counts").GetArrayLength());
                Assert.Equal("Read", root.GetProperty("Kinds")[0].GetProperty("Kind").GetString());
                Assert.Equal(1, root.GetProperty("MalformedCount").GetInt64());
            }

            string Dir(string name) => Path.Combine(_dir, name);
            Assert.Equal(1 + 3, CsvLines(Dir("kinds.csv")).Length);
            Assert.Equal("kind,accesses,bytes,violations,violations_not_present,violations_rights,misconfigs", CsvLines(Dir("kinds.csv"))[0]);
            Assert.Equal(1 + report.WalkDepth.Count, CsvLines(Dir("walk-depth.csv")).Length);
            Assert.Equal(1 + 3, CsvLines(Dir("views.csv")).Length);
            Assert.Equal(1 + 7, CsvLines(Dir("hot-pages.csv")).Length);
            Assert.Equal(1 + report.HotRegions.Count, CsvLines(Dir("hot-regions.csv")).Length);
            Assert.Equal(1 + report.WorkingSet.Count, CsvLines(Dir("working-set.csv")).Length);
            Assert.Equal(1 + (report.HeatMap.TimeBuckets * report.HeatMap.AddressBuckets), CsvLines(Dir("heatmap.csv")).Length);
            string[] hot = CsvLines(Dir("hot-pages.csv"));
            HotSpot top = report.HotPages[0];
            Assert.Equal($"0x{top.Address:X},{top.Accesses},{top.Reads},{top.Writes},{top.Fetches}", hot[1]);
            Assert.Equal(new[] { "line,reason,text", "3,\"bad, very\",\"x, \"\"y\"\"\"" }, CsvLines(Dir("malformed.csv")));
            Assert.Equal(report.Accesses, CsvLines(Dir("heatmap.csv")).Skip(1).Sum(l => long.Parse(l.Split(',')[4])));

            XNamespace svg = "http://www.w3.org/2000/svg";
            XDocument heat = XDocument.Load(Dir("heatmap.svg"));
            Assert.Equal(report.HeatMap.TimeBuckets * report.HeatMap.AddressBuckets, heat.Root!.Element(svg + "g")!.Elements(svg + "rect").Count());
            Assert.Equal(report.Accesses, heat.Root.Element(svg + "g")!.Elements(svg + "rect").Sum(r => (long)r.Attribute("data-count")!));
            XDocument ws = XDocument.Load(Dir("working-set.svg"));
            Assert.Equal(report.WorkingSet.Count, ((string)ws.Root!.Element(svg + "polyline")!.Attribute("points")!).Split(' ').Length);
        }

        [Fact]
        public void WriteFiles_CreatesTheDirectoryAndOverwrites()
        {
            ReplayReport report = MakeReport();
            string nested = Path.Combine(_dir, "a", "b");
            ReportWriter.WriteFiles(report, nested);
            IReadOnlyList<string> again = ReportWriter.WriteFiles(report, nested);
            Assert.Equal(11, again.Count);
            Assert.Equal(1 + 1, CsvLines(Path.Combine(nested, "views.csv")).Length);
        }

        [Fact]
        public void Print_WritesTheTables()
        {
            ReplayReport report = MakeReport(views: 1);
            StringWriter text = new StringWriter();
            IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
                Out = new AnsiConsoleOutput(text),
            });
            console.Profile.Width = 200;
            ReportPrinter.Print(report, console);
            string output = text.ToString();
            foreach (string s in new[] { "Replay summary", "Accesses and EPT exits by kind", "Walk depth", "Views", "Hot 4K pages (top 7)", "Hot 2M regions", "Malformed lines", "bad, very", "5,000" })
            {
                Assert.Contains(s, output, StringComparison.Ordinal);
            }

            Assert.Contains("0x" + report.HotPages[0].Address.ToString("X"), output, StringComparison.Ordinal);
        }

        [Fact]
        public void NullArguments_Throw()
        {
            Assert.Throws<ArgumentNullException>(() => ReportWriter.WriteFiles(null!, _dir));
            Assert.Throws<ArgumentNullException>(() => ReportPrinter.Print(null!, AnsiConsole.Console));
        }
    }
}

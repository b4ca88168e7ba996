// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using FastEpt.Cli.Replay;

namespace FastEpt.Tests.Cli
{
    /// <summary>
    /// Every text label of a chart stays inside the view box, with long values (a 210 M-access
    /// replay's <c>210.39M</c>, 64-bit addresses, long titles): each label's box is estimated
    /// from its anchor, its <c>textLength</c> when squeezed, and a conservative width per
    /// character, and must lie in <c>0 .. Width</c> by <c>0 .. Height</c>.
    /// </summary>
    public sealed class SvgWriterLabelTests
    {
        private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
        private const double Ascent = 0.8 * SvgWriter.FontSize;
        private const double Descent = 0.25 * SvgWriter.FontSize;

        public static TheoryData<string, double, double> LineCharts() => new()
        {
            { "working set", 210_390_000, 4_000 },                 // the x tick 210.39M at the right edge
            { "working set", 9_999_999_999_999, 123_456_789_012 }, // 10000G along x, 123.46G up the y axis
            { "pages", 100, 40 },                                  // short labels keep the default margins
            { new string('W', 200), 1e6, 1e18 },                  // a title wider than the drawing
        };

        [Theory]
        [MemberData(nameof(LineCharts))]
        public void LineChart_LongValues_EveryLabelInsideTheViewBox(string title, double maxX, double maxY)
        {
            (double, double)[] points = { (0, 0), (maxX / 2, maxY / 3), (maxX, maxY) };
            string svg = SvgWriter.LineChart(title, "accesses (" + new string('m', 40) + ")", "distinct pages " + new string('M', 60), points);
            AssertLabelsInside(svg);
        }

        [Theory]
        [InlineData(3, "0x9A5100")]
        [InlineData(1, "0xFFFFFFFFFFFFF000")]
        [InlineData(1000, "0x7FFFFFFFFFFFF000")]
        public void HeatMap_LongAddresses_EveryLabelInsideTheViewBox(int columns, string label)
        {
            long[][] counts = { Enumerable.Range(0, columns).Select(i => (long)i * 1_000_000_007).ToArray() };
            string[] labels = Enumerable.Range(0, columns).Select(_ => label).ToArray();
            string svg = SvgWriter.HeatMap("heat map of " + label, "guest-physical address", "time (accesses)", counts, labels);
            AssertLabelsInside(svg);
        }

        [Fact]
        public void LineChart_210MAccesses_LastTickIsCentredOnTheAxisEnd()
        {
            XElement root = XDocument.Parse(SvgWriter.LineChart("t", "x", "y", new[] { (0.0, 0.0), (210_390_000.0, 5.0) })).Root!;
            XElement last = root.Elements(Svg + "text").Last(e => e.Value == "210.39M");
            XElement axis = root.Elements(Svg + "line").First(e => (string?)e.Attribute("class") == "axis");
            // The plot was narrowed instead of moving the label off its tick.
            Assert.Equal((double)axis.Attribute("x2")!, (double)last.Attribute("x")!);
            Assert.True((double)axis.Attribute("x2")! < SvgWriter.Width - 20);
        }

        [Fact]
        public void TextWidth_IsConservative()
        {
            // At least 0.7 em a character (common sans-serif digits are 0.56 to 0.64 em).
            Assert.True(SvgWriter.TextWidth("210.39M") >= 7 * 0.7 * SvgWriter.FontSize);
            Assert.True(SvgWriter.TextWidth("MMMM") >= 4 * 0.9 * SvgWriter.FontSize);
        }

        private static void AssertLabelsInside(string svg)
        {
            XElement root = XDocument.Parse(svg).Root!;
            Assert.Equal($"0 0 {SvgWriter.Width} {SvgWriter.Height}", (string?)root.Attribute("viewBox"));
            int checkedLabels = 0;
            foreach (XElement text in root.Elements(Svg + "text"))
            {
                (double x0, double y0, double x1, double y1) = Box(text);
                string where = $"'{text.Value}' ({text.Attribute("class")?.Value}) box {x0:0.#},{y0:0.#} .. {x1:0.#},{y1:0.#}";
                Assert.True(x0 >= 0 && y0 >= 0 && x1 <= SvgWriter.Width && y1 <= SvgWriter.Height, where + " leaves the view box");
                checkedLabels++;
            }

            Assert.True(checkedLabels >= 4, $"only {checkedLabels} labels");
        }

        // The label's estimated box: width from textLength or the per-character estimate, placed
        // by text-anchor around x, ascent and descent around the baseline y; a rotate(-90 cx cy)
        // turns that box a quarter turn about (cx, cy).
        private static (double X0, double Y0, double X1, double Y1) Box(XElement text)
        {
            double x = (double)text.Attribute("x")!;
            double y = (double)text.Attribute("y")!;
            double width = text.Attribute("textLength") is XAttribute length ? (double)length : SvgWriter.TextWidth(text.Value);
            string anchor = (string?)text.Attribute("text-anchor") ?? "start";
            double start = anchor switch { "middle" => x - (width / 2), "end" => x - width, _ => x };
            (double x0, double y0, double x1, double y1) = (start, y - Ascent, start + width, y + Descent);

            string? transform = (string?)text.Attribute("transform");
            if (transform is null)
            {
                return (x0, y0, x1, y1);
            }

            Match m = Regex.Match(transform, @"^rotate\(-90 ([0-9.]+) ([0-9.]+)\)$");
            Assert.True(m.Success, "unexpected transform " + transform);
            double cx = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            double cy = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            // rotate(-90) about (cx, cy): (px, py) -> (cx + (py - cy), cy - (px - cx)).
            double ax = cx + (y0 - cy), bx = cx + (y1 - cy);
            double ay = cy - (x1 - cx), by = cy - (x0 - cx);
            return (Math.Min(ax, bx), Math.Min(ay, by), Math.Max(ax, bx), Math.Max(ay, by));
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Globalization;
using System.Xml.Linq;
using FastEpt.Cli.Replay;

namespace FastEpt.Tests.Cli
{
    public sealed class SvgWriterTests
    {
        private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

        [Fact]
        public void LineChart_IsWellFormedWithAxesLabelsAndOnePolyline()
        {
            (double, double)[] points = { (0, 0), (50, 10), (100, 40) };
            XDocument doc = XDocument.Parse(SvgWriter.LineChart("Working <set> & \"more\"", "accesses", "pages", points));
            XElement root = doc.Root!;
            Assert.Equal(Svg + "svg", root.Name);
            Assert.Equal("0 0 800 500", (string?)root.Attribute("viewBox"));
            Assert.Equal("Working <set> & \"more\"", root.Element(Svg + "title")!.Value);
            Assert.Equal(2, root.Elements(Svg + "line").Count(e => (string?)e.Attribute("class") == "axis"));
            Assert.Contains(root.Elements(Svg + "text"), e => (string?)e.Attribute("class") == "xlabel" && e.Value == "accesses");
            Assert.Contains(root.Elements(Svg + "text"), e => (string?)e.Attribute("class") == "ylabel" && e.Value == "pages");
            Assert.Equal(10, root.Elements(Svg + "text").Count(e => (string?)e.Attribute("class") == "tick"));

            XElement line = Assert.Single(root.Elements(Svg + "polyline"));
            double[][] xy = ((string)line.Attribute("points")!).Split(' ')
                .Select(p => p.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
            Assert.Equal(3, xy.Length);
            // Origin at bottom-left of the plot, the maximum at the top-right.
            Assert.Equal(new[] { 90.0, 440.0 }, xy[0]);
            Assert.Equal(new[] { 780.0, 40.0 }, xy[2]);
            Assert.Equal(435.0, xy[1][0]);
            Assert.Equal(340.0, xy[1][1]);
        }

        [Fact]
        public void LineChart_WithNoPoints_IsStillValid()
        {
            XDocument doc = XDocument.Parse(SvgWriter.LineChart("t", "x", "y", Array.Empty<(double, double)>()));
            Assert.Equal(string.Empty, (string)doc.Root!.Element(Svg + "polyline")!.Attribute("points")!);
        }

        [Fact]
        public void HeatMap_HasOneRectPerCellWithItsCountAndColour()
        {
            long[][] counts = { new long[] { 0, 5, 10 }, new long[] { 1, 2, 3 } };
            XDocument doc = XDocument.Parse(SvgWriter.HeatMap("heat", "address", "time", counts, new[] { "0x0", "0x<1>", "0x2" }));
            XElement[] cells = doc.Root!.Element(Svg + "g")!.Elements(Svg + "rect").ToArray();
            Assert.Equal(6, cells.Length);
            Assert.Equal(new long[] { 0, 5, 10, 1, 2, 3 }, cells.Select(c => (long)c.Attribute("data-count")!));
            Assert.Equal("#ffffff", (string?)cells[0].Attribute("fill"));
            Assert.Equal("#ff0000", (string?)cells[2].Attribute("fill"));
            Assert.Equal("#ff8080", (string?)cells[1].Attribute("fill"));  // half of the maximum: 255 * (1 - 0.5) rounds to 0x80
            // Cells tile the plot: same width, rows stacked.
            Assert.Equal(230.0, (double)cells[0].Attribute("width")!);
            Assert.Equal(200.0, (double)cells[0].Attribute("height")!);
            Assert.Equal(90.0, (double)cells[0].Attribute("x")!);
            Assert.Equal(240.0, (double)cells[3].Attribute("y")!);
            Assert.Contains(doc.Root.Elements(Svg + "text"), e => e.Value == "0x<1>");
            Assert.Contains(doc.Root.Elements(Svg + "text"), e => e.Value == "max 10");
        }

        [Fact]
        public void HeatMap_Empty_IsValid()
        {
            XDocument doc = XDocument.Parse(SvgWriter.HeatMap("h", "x", "y", Array.Empty<long[]>()));
            Assert.Empty(doc.Root!.Element(Svg + "g")!.Elements());
        }

        [Theory]
        [InlineData(0, 0, "#ffffff")]
        [InlineData(0, 100, "#ffffff")]
        [InlineData(100, 100, "#ff0000")]
        [InlineData(50, 100, "#ff8080")]
        public void Colour_ScalesWhiteToRed(long value, long max, string expected)
            => Assert.Equal(expected, SvgWriter.Colour(value, max));

        [Fact]
        public void Escape_HandlesMarkupAndControlCharacters()
        {
            Assert.Equal("&lt;a href=&quot;x&quot;&gt; &amp; &apos;", SvgWriter.Escape("<a href=\"x\"> & '"));
            string text = "bad\u0001char";
            XDocument doc = XDocument.Parse(SvgWriter.LineChart(text, "x", "y", Array.Empty<(double, double)>()));
            Assert.Equal("bad\uFFFDchar", doc.Root!.Element(Svg + "title")!.Value);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// A small SVG writer for the replay charts: a line chart (axes with labels and one polyline)
    /// and a heat map (one rect per cell, coloured on a white-to-red scale by count). Output is
    /// well-formed XML with every text node and attribute escaped.
    /// </summary>
    public static class SvgWriter
    {
        /// <summary>Width of the drawing (viewBox units).</summary>
        public const int Width = 800;

        /// <summary>Height of the drawing (viewBox units).</summary>
        public const int Height = 500;

        /// <summary>The font size of every label (viewBox units).</summary>
        public const int FontSize = 12;

        // The smallest margins; Left and Right grow when a tick label needs more room.
        private const int MinLeft = 90;
        private const int MinRight = 20;
        private const int Top = 40;
        private const int Bottom = 60;
        private const double Pad = 4;           // between a label and the edge of the drawing
        private const double YLabelBand = 30;   // the rotated y-axis label's column, left of the y ticks
        private const double TickGap = 6;       // between a y tick label and the axis

        // Where the plot sits: the margins depend on the widest tick labels.
        private readonly record struct Frame(double Left, double Right)
        {
            public double PlotWidth => Width - Left - Right;

            public double ScaleX(double x, double maxX) => Left + (x / maxX * PlotWidth);
        }

        /// <summary>A line chart of <paramref name="points"/> (x ascending), scaled to fit; axes start at 0.</summary>
        /// <param name="title">Chart title.</param>
        /// <param name="xLabel">X-axis label.</param>
        /// <param name="yLabel">Y-axis label.</param>
        /// <param name="points">The curve.</param>
        /// <returns>The SVG document.</returns>
        public static string LineChart(string title, string xLabel, string yLabel, IReadOnlyList<(double X, double Y)> points)
        {
            ArgumentNullException.ThrowIfNull(points);
            double maxX = 1;
            double maxY = 1;
            foreach ((double x, double y) in points)
            {
                maxX = Math.Max(maxX, x);
                maxY = Math.Max(maxY, y);
            }

            // The x ticks sit on 0 .. maxX, so the last label is centred on the right end of the axis.
            double yTickWidth = 0;
            for (int i = 0; i <= 4; i++)
            {
                yTickWidth = Math.Max(yTickWidth, TextWidth(Num(maxY * i / 4)));
            }

            Frame frame = FrameFor(yTickWidth, TextWidth(Num(maxX)) / 2);
            StringBuilder sb = Begin(title);
            Axes(sb, frame, xLabel, yLabel, maxX, maxY);
            sb.Append("<polyline class=\"curve\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
            for (int i = 0; i < points.Count; i++)
            {
                if (i > 0)
                {
                    sb.Append(' ');
                }

                sb.Append(F(frame.ScaleX(points[i].X, maxX))).Append(',').Append(F(ScaleY(points[i].Y, maxY)));
            }

            sb.Append("\"/>\n");
            return End(sb);
        }

        /// <summary>
        /// A heat map: <paramref name="counts"/>[row][column] as rects, rows top to bottom
        /// (time), columns left to right (address); colour from white (0) to red (the maximum).
        /// Each rect carries <c>data-count</c> with its value.
        /// </summary>
        /// <param name="title">Chart title.</param>
        /// <param name="xLabel">X-axis label (columns).</param>
        /// <param name="yLabel">Y-axis label (rows).</param>
        /// <param name="counts">The matrix (rows of equal length).</param>
        /// <param name="columnLabels">Optional tick labels of the first, middle and last column positions (one per column).</param>
        /// <returns>The SVG document.</returns>
        public static string HeatMap(string title, string xLabel, string yLabel, IReadOnlyList<long[]> counts, IReadOnlyList<string>? columnLabels = null)
        {
            ArgumentNullException.ThrowIfNull(counts);
            int rows = counts.Count;
            int columns = rows == 0 ? 0 : counts[0].Length;
            long max = 0;
            foreach (long[] row in counts)
            {
                foreach (long c in row)
                {
                    max = Math.Max(max, c);
                }
            }

            // The last column's label is centred on that column: it needs half its width, less
            // half a column, right of the plot (a column is at least 1 unit wide in practice).
            double lastHalf = 0;
            if (columnLabels is not null && columns > 0 && columns - 1 < columnLabels.Count)
            {
                lastHalf = TextWidth(columnLabels[columns - 1]) / 2;
            }

            Frame frame = FrameFor(0, lastHalf);
            double left = frame.Left;
            double right = frame.Right;
            StringBuilder sb = Begin(title);
            double plotW = frame.PlotWidth;
            double plotH = Height - Top - Bottom;
            sb.Append("<g class=\"cells\">\n");
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++)
                {
                    long v = counts[r][c];
                    sb.Append("<rect x=\"").Append(F(left + (c * plotW / columns)))
                      .Append("\" y=\"").Append(F(Top + (r * plotH / rows)))
                      .Append("\" width=\"").Append(F(plotW / columns))
                      .Append("\" height=\"").Append(F(plotH / rows))
                      .Append("\" fill=\"").Append(Colour(v, max))
                      .Append("\" data-count=\"").Append(v.ToString(CultureInfo.InvariantCulture)).Append("\"/>\n");
                }
            }

            sb.Append("</g>\n");
            sb.Append("<line class=\"axis\" x1=\"").Append(F(left)).Append("\" y1=\"").Append(Height - Bottom).Append("\" x2=\"").Append(F(Width - right)).Append("\" y2=\"").Append(Height - Bottom).Append("\" stroke=\"black\"/>\n");
            sb.Append("<line class=\"axis\" x1=\"").Append(F(left)).Append("\" y1=\"").Append(Top).Append("\" x2=\"").Append(F(left)).Append("\" y2=\"").Append(Height - Bottom).Append("\" stroke=\"black\"/>\n");
            if (columnLabels is not null && columns > 0)
            {
                foreach (int c in new[] { 0, columns / 2, columns - 1 })
                {
                    if (c < columnLabels.Count)
                    {
                        Text(sb, "tick", left + ((c + 0.5) * plotW / columns), Height - Bottom + 16, "middle", columnLabels[c]);
                    }
                }
            }

            Text(sb, "xlabel", left + (plotW / 2), Height - 15, "middle", xLabel);
            YLabel(sb, yLabel);
            Text(sb, "legend", Width - right, Top - 8, "end", "max " + max.ToString(CultureInfo.InvariantCulture));
            return End(sb);
        }

        /// <summary>The fill for <paramref name="value"/> on a white (0) to red (<paramref name="max"/>) scale, as <c>#rrggbb</c>.</summary>
        /// <param name="value">The count.</param>
        /// <param name="max">The largest count (0: everything white).</param>
        /// <returns>The colour.</returns>
        public static string Colour(long value, long max)
        {
            double t = max <= 0 ? 0 : Math.Clamp((double)value / max, 0, 1);
            int gb = (int)Math.Round(255 * (1 - t));
            return "#ff" + gb.ToString("x2", CultureInfo.InvariantCulture) + gb.ToString("x2", CultureInfo.InvariantCulture);
        }

        /// <summary>Escapes <c>&amp; &lt; &gt; " '</c> for XML text and attributes.</summary>
        /// <param name="text">Raw text.</param>
        /// <returns>Escaped text.</returns>
        public static string Escape(string text)
        {
            ArgumentNullException.ThrowIfNull(text);
            StringBuilder sb = new StringBuilder(text.Length);
            foreach (char ch in text)
            {
                switch (ch)
                {
                    case '&': sb.Append("&amp;"); break;
                    case '<': sb.Append("&lt;"); break;
                    case '>': sb.Append("&gt;"); break;
                    case '"': sb.Append("&quot;"); break;
                    case '\'': sb.Append("&apos;"); break;
                    default:
                        // Characters XML 1.0 cannot carry become U+FFFD.
                        sb.Append(ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r' ? '\uFFFD' : ch);
                        break;
                }
            }

            return sb.ToString();
        }

        private static StringBuilder Begin(string title)
        {
            StringBuilder sb = new StringBuilder();
            sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            sb.Append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").Append(Width).Append("\" height=\"").Append(Height)
              .Append("\" viewBox=\"0 0 ").Append(Width).Append(' ').Append(Height).Append("\" font-family=\"sans-serif\" font-size=\"12\">\n");
            sb.Append("<title>").Append(Escape(title)).Append("</title>\n");
            sb.Append("<rect class=\"background\" x=\"0\" y=\"0\" width=\"").Append(Width).Append("\" height=\"").Append(Height).Append("\" fill=\"white\"/>\n");
            Text(sb, "title", Width / 2.0, 22, "middle", title);
            return sb;
        }

        private static string End(StringBuilder sb) => sb.Append("</svg>\n").ToString();

        private static void Axes(StringBuilder sb, Frame frame, string xLabel, string yLabel, double maxX, double maxY)
        {
            double left = frame.Left;
            double right = frame.Right;
            sb.Append("<line class=\"axis\" x1=\"").Append(F(left)).Append("\" y1=\"").Append(Height - Bottom).Append("\" x2=\"").Append(F(Width - right)).Append("\" y2=\"").Append(Height - Bottom).Append("\" stroke=\"black\"/>\n");
            sb.Append("<line class=\"axis\" x1=\"").Append(F(left)).Append("\" y1=\"").Append(Top).Append("\" x2=\"").Append(F(left)).Append("\" y2=\"").Append(Height - Bottom).Append("\" stroke=\"black\"/>\n");
            for (int i = 0; i <= 4; i++)
            {
                double fx = maxX * i / 4;
                double fy = maxY * i / 4;
                Text(sb, "tick", frame.ScaleX(fx, maxX), Height - Bottom + 16, "middle", Num(fx));
                Text(sb, "tick", left - TickGap, ScaleY(fy, maxY) + 4, "end", Num(fy));
            }

            Text(sb, "xlabel", left + ((Width - left - right) / 2.0), Height - 15, "middle", xLabel);
            YLabel(sb, yLabel);
        }

        // Rotated a quarter turn, the label runs up the left edge: its width is vertical, so it
        // is squeezed (textLength) to the drawing's height when longer.
        private static void YLabel(StringBuilder sb, string label)
        {
            double width = TextWidth(label);
            double room = Height - (2 * Pad);
            // Centred on the plot's height, moved in when its length would cross the top or bottom.
            double half = Math.Min(width, room) / 2;
            double y = Math.Clamp(Top + ((Height - Top - Bottom) / 2.0), Pad + half, Height - Pad - half);
            sb.Append("<text class=\"ylabel\" x=\"18\" y=\"").Append(F(y)).Append("\" text-anchor=\"middle\" transform=\"rotate(-90 18 ").Append(F(y)).Append(")\"");
            if (width > room)
            {
                sb.Append(" textLength=\"").Append(F(room)).Append("\" lengthAdjust=\"spacingAndGlyphs\"");
            }

            sb.Append('>').Append(Escape(label)).Append("</text>\n");
        }

        // A label, kept inside the drawing: one wider than the drawing is squeezed to fit
        // (textLength), and one that would cross an edge is moved in along its baseline.
        private static void Text(StringBuilder sb, string cls, double x, double y, string anchor, string text)
        {
            double width = TextWidth(text);
            double room = Width - (2 * Pad);
            bool squeeze = width > room;
            width = Math.Min(width, room);
            double start = anchor switch { "middle" => x - (width / 2), "end" => x - width, _ => x };
            start = Math.Clamp(start, Pad, Width - Pad - width);
            x = anchor switch { "middle" => start + (width / 2), "end" => start + width, _ => start };
            sb.Append("<text class=\"").Append(cls).Append("\" x=\"").Append(F(x)).Append("\" y=\"").Append(F(y))
              .Append("\" text-anchor=\"").Append(anchor).Append('"');
            if (squeeze)
            {
                sb.Append(" textLength=\"").Append(F(width)).Append("\" lengthAdjust=\"spacingAndGlyphs\"");
            }

            sb.Append('>').Append(Escape(text)).Append("</text>\n");
        }

        /// <summary>
        /// A conservative estimate of how wide <paramref name="text"/> is drawn at
        /// <see cref="FontSize"/> in a sans-serif font: 0.7 em per character and 0.95 em for the
        /// widest glyphs (M, W, m, w, @, %), above the real advance widths of common sans-serif
        /// fonts (DejaVu Sans digits 0.64 em, M 0.86 em; Arial digits 0.56 em, M 0.83 em).
        /// </summary>
        /// <param name="text">The label.</param>
        /// <returns>The width in viewBox units.</returns>
        internal static double TextWidth(string text)
        {
            double em = 0;
            foreach (char ch in text)
            {
                em += ch is 'M' or 'W' or 'm' or 'w' or '@' or '%' ? 0.95 : 0.7;
            }

            return em * FontSize;
        }

        // Margins wide enough for the y tick labels (right-aligned before the axis, the rotated
        // y label in its band further left) and for the last x tick label's overhang.
        private static Frame FrameFor(double yTickWidth, double xOverhang)
            => new(Math.Max(MinLeft, Math.Ceiling(YLabelBand + yTickWidth + TickGap)),
                   Math.Max(MinRight, Math.Ceiling(xOverhang + Pad)));

        private static double ScaleY(double y, double maxY) => Height - Bottom - (y / maxY * (Height - Top - Bottom));

        private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

        private static string Num(double v)
            => v >= 1e9 ? (v / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "G"
             : v >= 1e6 ? (v / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M"
             : v >= 1e3 ? (v / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "k"
             : v.ToString("0.##", CultureInfo.InvariantCulture);
    }
}

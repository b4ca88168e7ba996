// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>
    /// Reads Dinero "din" traces: <c>label address [size]</c> a line, separated by blanks. Labels:
    /// 0 = read, 1 = write, 2 = instruction fetch; 3 (escape) and 4 (cache flush) are not
    /// accesses and are counted in <see cref="TextTraceReader.SkippedCount"/>, not as malformed;
    /// any other label is malformed. The address is hex (an optional <c>0x</c> prefix is
    /// accepted); the size is decimal, 1..65535, and <see cref="DefaultSize"/> when absent
    /// (classic din lines carry none). Blank lines are skipped.
    /// </summary>
    public sealed class DinTraceReader : TextTraceReader
    {
        /// <summary>The size taken for a line that gives none: 4 bytes, Dinero's word.</summary>
        public const ushort DefaultSize = 4;

        /// <summary>Reads din lines from <paramref name="stream"/>.</summary>
        /// <param name="stream">The trace text.</param>
        /// <param name="leaveOpen">Whether the stream stays open when the reader is disposed.</param>
        public DinTraceReader(Stream stream, bool leaveOpen = false)
            : base(stream, leaveOpen)
        {
        }

        private protected override LineStatus ParseLine(ReadOnlySpan<byte> line, Span<TraceAccess> destination, out int written, out string? reason)
        {
            written = 0;
            reason = null;
            int i = 0;
            SkipBlanks(line, ref i);
            if (i == line.Length)
            {
                return LineStatus.Skipped;
            }

            int labelStart = i;
            while (i < line.Length && unchecked((uint)(line[i] - '0')) <= 9)
            {
                i++;
            }

            if (i - labelStart != 1)
            {
                reason = "bad label (expected 0, 1, 2, 3 or 4)";
                return LineStatus.Malformed;
            }

            TraceKind kind;
            switch (line[labelStart])
            {
                case (byte)'0':
                    kind = TraceKind.Read;
                    break;
                case (byte)'1':
                    kind = TraceKind.Write;
                    break;
                case (byte)'2':
                    kind = TraceKind.Fetch;
                    break;
                case (byte)'3':
                case (byte)'4':
                    return LineStatus.Skipped;
                default:
                    reason = "bad label (expected 0, 1, 2, 3 or 4)";
                    return LineStatus.Malformed;
            }

            if (SkipBlanks(line, ref i) == 0)
            {
                reason = "expected a blank after the label";
                return LineStatus.Malformed;
            }

            if (i + 1 < line.Length && line[i] == (byte)'0' && (line[i + 1] | 0x20) == (byte)'x')
            {
                i += 2;
            }

            if (!TryParseHex(line, ref i, out ulong address))
            {
                reason = "bad hex address";
                return LineStatus.Malformed;
            }

            ushort size = DefaultSize;
            bool blank = SkipBlanks(line, ref i) > 0;
            if (i < line.Length)
            {
                if (!blank || !TryParseSize(line, ref i, out size))
                {
                    reason = "bad size (expected decimal 1..65535)";
                    return LineStatus.Malformed;
                }

                SkipBlanks(line, ref i);
                if (i != line.Length)
                {
                    reason = "unexpected text after the size";
                    return LineStatus.Malformed;
                }
            }

            destination[0] = new TraceAccess(address, size, kind);
            written = 1;
            return LineStatus.Accesses;
        }
    }
}

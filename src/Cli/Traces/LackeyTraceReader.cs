// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>
    /// Reads valgrind lackey traces (<c>valgrind --tool=lackey --trace-mem=yes</c>): one access a
    /// line, <c>I  0400d7d4,8</c> (instruction fetch), <c> L addr,size</c> (load),
    /// <c> S addr,size</c> (store) and <c> M addr,size</c> (modify: a load then a store, so two
    /// accesses). Addresses are hex, sizes decimal (1..65535). valgrind's <c>==PID==</c> banner
    /// lines and blank lines are skipped, not malformed.
    /// </summary>
    public sealed class LackeyTraceReader : TextTraceReader
    {
        /// <summary>Reads lackey lines from <paramref name="stream"/>.</summary>
        /// <param name="stream">The trace text.</param>
        /// <param name="leaveOpen">Whether the stream stays open when the reader is disposed.</param>
        public LackeyTraceReader(Stream stream, bool leaveOpen = false)
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

            TraceKind kind;
            bool modify = false;
            switch (line[i])
            {
                case (byte)'I':
                    kind = TraceKind.Fetch;
                    break;
                case (byte)'L':
                    kind = TraceKind.Read;
                    break;
                case (byte)'S':
                    kind = TraceKind.Write;
                    break;
                case (byte)'M':
                    kind = TraceKind.Read;
                    modify = true;
                    break;
                case (byte)'=' when i + 1 < line.Length && line[i + 1] == (byte)'=':
                    // valgrind's own output (==PID== ...), interleaved on the same stream.
                    return LineStatus.Skipped;
                default:
                    reason = "unknown access type (expected I, L, S or M)";
                    return LineStatus.Malformed;
            }

            i++;
            if (SkipBlanks(line, ref i) == 0)
            {
                reason = "expected a blank after the access type";
                return LineStatus.Malformed;
            }

            if (!TryParseHex(line, ref i, out ulong address))
            {
                reason = "bad hex address";
                return LineStatus.Malformed;
            }

            if (i == line.Length || line[i] != (byte)',')
            {
                reason = "expected ',' after the address";
                return LineStatus.Malformed;
            }

            i++;
            if (!TryParseSize(line, ref i, out ushort size))
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

            destination[0] = new TraceAccess(address, size, kind);
            written = 1;
            if (modify)
            {
                destination[1] = new TraceAccess(address, size, TraceKind.Write);
                written = 2;
            }

            return LineStatus.Accesses;
        }
    }
}

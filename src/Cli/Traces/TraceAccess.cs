// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;

namespace FastEpt.Cli.Traces
{
    /// <summary>What a traced access did.</summary>
    public enum TraceKind : byte
    {
        /// <summary>A data load.</summary>
        Read,

        /// <summary>A data store.</summary>
        Write,

        /// <summary>An instruction fetch.</summary>
        Fetch,
    }

    /// <summary>One memory access of a trace: address (taken as a guest-physical address), size in bytes, kind.</summary>
    /// <param name="Address">The accessed address.</param>
    /// <param name="Size">Bytes accessed (at least 1).</param>
    /// <param name="Kind">Load, store or fetch.</param>
    public readonly record struct TraceAccess(ulong Address, ushort Size, TraceKind Kind);

    /// <summary>A line (or record) a reader could not parse.</summary>
    /// <param name="LineNumber">1-based line number (record index for binary traces).</param>
    /// <param name="Text">The offending text, truncated to 200 characters.</param>
    /// <param name="Reason">Why it was rejected.</param>
    public readonly record struct MalformedLine(long LineNumber, string Text, string Reason);

    /// <summary>
    /// A streaming trace reader: accesses come in chunks, so a trace larger than memory works.
    /// Malformed input is counted (the first ten kept with line numbers), never thrown.
    /// </summary>
    public interface ITraceReader : IDisposable
    {
        /// <summary>Fills <paramref name="buffer"/> with the next accesses; returns how many (0 at the end).</summary>
        int Read(Span<TraceAccess> buffer);

        /// <summary>Lines (or records) consumed so far.</summary>
        long LinesRead { get; }

        /// <summary>Malformed lines so far.</summary>
        long MalformedCount { get; }

        /// <summary>The first ten malformed lines.</summary>
        IReadOnlyList<MalformedLine> FirstMalformed { get; }

        /// <summary>Bytes consumed so far and the total when known (for progress), else -1.</summary>
        (long Done, long Total) Position { get; }
    }
}

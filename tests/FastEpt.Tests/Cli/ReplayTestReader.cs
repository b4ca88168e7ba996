// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    /// <summary>An <see cref="ITraceReader"/> over an array, handing out at most <c>chunk</c> accesses per call.</summary>
    internal sealed class ReplayTestReader : ITraceReader
    {
        private readonly TraceAccess[] _data;
        private readonly int _chunk;
        private int _pos;

        public ReplayTestReader(TraceAccess[] data, int chunk = int.MaxValue, IReadOnlyList<MalformedLine>? malformed = null)
        {
            _data = data;
            _chunk = chunk;
            FirstMalformed = malformed ?? Array.Empty<MalformedLine>();
        }

        public long LinesRead => _pos + FirstMalformed.Count;

        public long MalformedCount => FirstMalformed.Count;

        public IReadOnlyList<MalformedLine> FirstMalformed { get; }

        public (long Done, long Total) Position => (_pos * 16L, _data.Length * 16L);

        public int Read(Span<TraceAccess> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, _chunk), _data.Length - _pos);
            _data.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        public void Dispose()
        {
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>
    /// Reads a <see cref="BinaryTraceFormat"/> trace in 1 MiB chunks. A bad header is one
    /// malformed record (number 0) and the reader then yields nothing; a bad record or a
    /// truncated tail is counted malformed; nothing here throws on bad data.
    /// </summary>
    public sealed class BinaryTraceReader : ITraceReader
    {
        private readonly Stream _stream;
        private readonly bool _leaveOpen;
        private readonly long _total;
        private readonly byte[] _buffer = new byte[BinaryTraceFormat.BufferSize];
        private readonly MalformedLog _malformed = new MalformedLog();
        private int _start;
        private int _end;
        private bool _eof;
        private long _records;
        private long _bytesDone;
        private bool _disposed;

        /// <summary>Reads a binary trace from <paramref name="stream"/>, checking its header first.</summary>
        /// <param name="stream">The trace bytes, positioned at the header.</param>
        /// <param name="leaveOpen">Whether the stream stays open when the reader is disposed.</param>
        public BinaryTraceReader(Stream stream, bool leaveOpen = false)
        {
            ArgumentNullException.ThrowIfNull(stream);
            _stream = stream;
            _leaveOpen = leaveOpen;
            _total = stream.CanSeek ? stream.Length - stream.Position : -1;

            Span<byte> header = stackalloc byte[BinaryTraceFormat.HeaderSize];
            int got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            _bytesDone = got;
            string? error = BinaryTraceFormat.ValidateHeader(header.Slice(0, got));
            if (error is not null)
            {
                _malformed.Add(0, header.Slice(0, Math.Min(got, 8)), error);
                _eof = true;
            }
        }

        /// <summary>Records consumed so far (good and malformed).</summary>
        public long LinesRead => _records;

        /// <inheritdoc/>
        public long MalformedCount => _malformed.Count;

        /// <inheritdoc/>
        public IReadOnlyList<MalformedLine> FirstMalformed => _malformed.First;

        /// <inheritdoc/>
        public (long Done, long Total) Position => (_bytesDone, _total);

        /// <inheritdoc/>
        public int Read(Span<TraceAccess> buffer)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int n = 0;
            while (n < buffer.Length)
            {
                int available = _end - _start;
                if (available < BinaryTraceFormat.RecordSize)
                {
                    if (_eof)
                    {
                        if (available > 0)
                        {
                            _records++;
                            _malformed.Add(_records, _buffer.AsSpan(_start, available), $"truncated record ({available} of {BinaryTraceFormat.RecordSize} bytes)");
                            _bytesDone += available;
                            _start = _end;
                        }

                        break;
                    }

                    Fill();
                    continue;
                }

                int count = Math.Min(buffer.Length - n, available / BinaryTraceFormat.RecordSize);
                ReadOnlySpan<byte> src = _buffer.AsSpan(_start, count * BinaryTraceFormat.RecordSize);
                n += Decode(src, buffer.Slice(n, count));
                _start += src.Length;
                _bytesDone += src.Length;
            }

            return n;
        }

        // Decodes whole records; returns how many good accesses were written (bad ones are logged).
        private int Decode(ReadOnlySpan<byte> src, Span<TraceAccess> destination)
        {
            int written = 0;
            for (int offset = 0; offset < src.Length; offset += BinaryTraceFormat.RecordSize)
            {
                ulong address = BinaryPrimitives.ReadUInt64LittleEndian(src.Slice(offset));
                uint meta = BinaryPrimitives.ReadUInt32LittleEndian(src.Slice(offset + 8));
                _records++;
                uint size = meta & BinaryTraceFormat.SizeMask;
                uint kind = meta >> BinaryTraceFormat.KindShift;
                if (size == 0 || kind > (uint)TraceKind.Fetch)
                {
                    _malformed.Add(_records, src.Slice(offset, BinaryTraceFormat.RecordSize), size == 0 ? "record with size 0" : "record with an unknown kind or reserved bits set");
                    continue;
                }

                destination[written++] = new TraceAccess(address, (ushort)size, (TraceKind)kind);
            }

            return written;
        }

        private void Fill() => StreamRefill.Fill(_stream, _buffer, ref _start, ref _end, ref _eof);

        /// <summary>Releases the stream unless it was opened with leaveOpen.</summary>
        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                if (!_leaveOpen)
                {
                    _stream.Dispose();
                }
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>
    /// Writes a <see cref="BinaryTraceFormat"/> trace: the header on construction, then one
    /// 12-byte record per access, buffered in 1 MiB chunks. Dispose (or <see cref="Flush"/>) to
    /// push the last chunk out.
    /// </summary>
    public sealed class BinaryTraceWriter : IDisposable
    {
        private readonly Stream _stream;
        private readonly bool _leaveOpen;
        private readonly byte[] _buffer = new byte[BinaryTraceFormat.BufferSize];
        private int _used;
        private bool _disposed;

        /// <summary>Starts a binary trace on <paramref name="stream"/> by writing its header.</summary>
        /// <param name="stream">Where the trace goes.</param>
        /// <param name="leaveOpen">Whether the stream stays open when the writer is disposed.</param>
        public BinaryTraceWriter(Stream stream, bool leaveOpen = false)
        {
            ArgumentNullException.ThrowIfNull(stream);
            _stream = stream;
            _leaveOpen = leaveOpen;
            Span<byte> header = stackalloc byte[BinaryTraceFormat.HeaderSize];
            BinaryTraceFormat.WriteHeader(header);
            _stream.Write(header);
        }

        /// <summary>Accesses written so far.</summary>
        public long Count { get; private set; }

        /// <summary>Appends <paramref name="accesses"/>.</summary>
        /// <exception cref="ArgumentException">An access has size 0 or an undefined kind.</exception>
        public void Write(ReadOnlySpan<TraceAccess> accesses)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (TraceAccess access in accesses)
            {
                if (access.Size == 0 || (uint)access.Kind > (uint)TraceKind.Fetch)
                {
                    throw new ArgumentException($"Access at 0x{access.Address:x} has size {access.Size} or kind {access.Kind}; a binary trace needs size >= 1 and a defined kind.", nameof(accesses));
                }

                if (_used == _buffer.Length)
                {
                    FlushBuffer();
                }

                Span<byte> record = _buffer.AsSpan(_used, BinaryTraceFormat.RecordSize);
                BinaryPrimitives.WriteUInt64LittleEndian(record, access.Address);
                BinaryPrimitives.WriteUInt32LittleEndian(record.Slice(8), access.Size | ((uint)access.Kind << BinaryTraceFormat.KindShift));
                _used += BinaryTraceFormat.RecordSize;
                Count++;
            }
        }

        /// <summary>Writes buffered records to the stream and flushes it.</summary>
        public void Flush()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            FlushBuffer();
            _stream.Flush();
        }

        private void FlushBuffer()
        {
            _stream.Write(_buffer, 0, _used);
            _used = 0;
        }

        /// <summary>Flushes, then releases the stream unless it was opened with leaveOpen.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            try
            {
                Flush();
            }
            finally
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

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>What one text line turned out to be.</summary>
    internal enum LineStatus
    {
        /// <summary>One or more accesses were written.</summary>
        Accesses,

        /// <summary>A line that carries no access and is not an error (banner, blank, non-access label).</summary>
        Skipped,

        /// <summary>A line that could not be parsed.</summary>
        Malformed,
    }

    /// <summary>
    /// Shared line splitting for the text trace readers: the stream is read in 64 KiB chunks and
    /// split on <c>\n</c> (a trailing <c>\r</c> is dropped), so memory stays constant whatever the
    /// trace size. A line longer than <see cref="MaxLineLength"/> bytes is counted malformed and
    /// skipped without being buffered whole.
    /// </summary>
    public abstract class TextTraceReader : ITraceReader
    {
        /// <summary>The longest line accepted, in bytes (without its line break); longer lines are malformed.</summary>
        public const int MaxLineLength = 4096;

        // The most accesses one line expands to (a lackey M line: a load, then a store).
        private const int MaxAccessesPerLine = 2;
        private const int BufferSize = 1 << 16;

        private readonly Stream _stream;
        private readonly bool _leaveOpen;
        private readonly long _total;
        private readonly byte[] _buffer = new byte[BufferSize];
        private readonly TraceAccess[] _scratch = new TraceAccess[MaxAccessesPerLine];
        private readonly MalformedLog _malformed = new MalformedLog();
        private int _start;
        private int _end;
        private bool _eof;
        private bool _skippingLongLine;
        private long _lines;
        private long _bytesDone;
        private long _skipped;
        private TraceAccess _pending;
        private bool _hasPending;
        private bool _disposed;

        /// <summary>Reads lines from <paramref name="stream"/> (disposed with the reader unless <paramref name="leaveOpen"/>).</summary>
        protected TextTraceReader(Stream stream, bool leaveOpen)
        {
            ArgumentNullException.ThrowIfNull(stream);
            _stream = stream;
            _leaveOpen = leaveOpen;
            _total = stream.CanSeek ? stream.Length - stream.Position : -1;
        }

        /// <inheritdoc/>
        public long LinesRead => _lines;

        /// <inheritdoc/>
        public long MalformedCount => _malformed.Count;

        /// <inheritdoc/>
        public IReadOnlyList<MalformedLine> FirstMalformed => _malformed.First;

        /// <summary>Lines that carried no access and are not errors (banners, blank lines, non-access labels).</summary>
        public long SkippedCount => _skipped;

        /// <inheritdoc/>
        public (long Done, long Total) Position => (_bytesDone, _total);

        /// <inheritdoc/>
        public int Read(Span<TraceAccess> buffer)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int n = 0;
            if (_hasPending && n < buffer.Length)
            {
                buffer[n++] = _pending;
                _hasPending = false;
            }

            while (n < buffer.Length && TryGetLine(out ReadOnlySpan<byte> line))
            {
                // Parse straight into the caller's buffer when a whole line's accesses fit; else
                // through the scratch pair, keeping what does not fit for the next call.
                bool direct = buffer.Length - n >= MaxAccessesPerLine;
                Span<TraceAccess> destination = direct ? buffer.Slice(n) : _scratch;
                switch (ParseLine(line, destination, out int written, out string? reason))
                {
                    case LineStatus.Accesses:
                        if (direct)
                        {
                            n += written;
                        }
                        else
                        {
                            buffer[n++] = _scratch[0];
                            if (written > 1)
                            {
                                _pending = _scratch[1];
                                _hasPending = true;
                            }
                        }

                        break;
                    case LineStatus.Skipped:
                        _skipped++;
                        break;
                    default:
                        _malformed.Add(_lines, line, reason ?? "malformed");
                        break;
                }
            }

            return n;
        }

        /// <summary>
        /// Parses one line (no line break, at most <see cref="MaxLineLength"/> bytes) into
        /// <paramref name="destination"/>, which has room for at least two accesses.
        /// </summary>
        private protected abstract LineStatus ParseLine(ReadOnlySpan<byte> line, Span<TraceAccess> destination, out int written, out string? reason);

        private bool TryGetLine(out ReadOnlySpan<byte> line)
        {
            while (true)
            {
                int available = _end - _start;
                int newline = _buffer.AsSpan(_start, available).IndexOf((byte)'\n');
                if (newline >= 0 || (_eof && available > 0))
                {
                    int length = newline >= 0 ? newline : available;
                    line = _buffer.AsSpan(_start, length);
                    int consumed = newline >= 0 ? length + 1 : length;
                    _start += consumed;
                    _bytesDone += consumed;
                    if (_skippingLongLine)
                    {
                        // The tail of an overlong line, already counted.
                        _skippingLongLine = false;
                        continue;
                    }

                    _lines++;
                    if (line.Length > 0 && line[^1] == (byte)'\r')
                    {
                        line = line.Slice(0, line.Length - 1);
                    }

                    if (line.Length > MaxLineLength)
                    {
                        _malformed.Add(_lines, line, $"line longer than {MaxLineLength} bytes");
                        continue;
                    }

                    return true;
                }

                if (_eof)
                {
                    line = default;
                    return false;
                }

                if (available > MaxLineLength)
                {
                    // No line break within the limit: count the line now and drop what follows
                    // up to its end, so a huge line never has to fit in memory.
                    if (!_skippingLongLine)
                    {
                        _lines++;
                        _malformed.Add(_lines, _buffer.AsSpan(_start, available), $"line longer than {MaxLineLength} bytes");
                        _skippingLongLine = true;
                    }

                    _bytesDone += available;
                    _start = _end = 0;
                }

                Fill();
            }
        }

        private void Fill() => StreamRefill.Fill(_stream, _buffer, ref _start, ref _end, ref _eof);

        /// <summary>Parses up to 16 hex digits at <paramref name="i"/>; false when there are none or too many.</summary>
        private protected static bool TryParseHex(ReadOnlySpan<byte> line, ref int i, out ulong value)
        {
            value = 0;
            int begin = i;
            while (i < line.Length)
            {
                uint c = line[i];
                uint digit = unchecked(c - '0');
                if (digit > 9)
                {
                    digit = unchecked((c | 0x20) - 'a');
                    if (digit > 5)
                    {
                        break;
                    }

                    digit += 10;
                }

                value = (value << 4) | digit;
                i++;
            }

            int digits = i - begin;
            return digits is > 0 and <= 16;
        }

        /// <summary>Parses a decimal access size in 1..65535 at <paramref name="i"/>.</summary>
        private protected static bool TryParseSize(ReadOnlySpan<byte> line, ref int i, out ushort size)
        {
            uint value = 0;
            int begin = i;
            while (i < line.Length && unchecked((uint)(line[i] - '0')) <= 9)
            {
                value = value * 10 + (uint)(line[i] - '0');
                i++;
                if (value > ushort.MaxValue)
                {
                    size = 0;
                    return false;
                }
            }

            size = (ushort)value;
            return i > begin && value > 0;
        }

        /// <summary>Skips spaces and tabs; returns how many.</summary>
        private protected static int SkipBlanks(ReadOnlySpan<byte> line, ref int i)
        {
            int begin = i;
            while (i < line.Length && (line[i] == (byte)' ' || line[i] == (byte)'\t'))
            {
                i++;
            }

            return i - begin;
        }

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

            GC.SuppressFinalize(this);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>Opens trace files, detecting their format when asked to.</summary>
    public static class TraceReaders
    {
        /// <summary>How much of a trace's start <see cref="Detect"/> looks at.</summary>
        public const int DetectBytes = 64 * 1024;

        /// <summary>
        /// Opens <paramref name="path"/> as a streaming reader. With <see cref="TraceFormat.Auto"/>
        /// the format is <see cref="Detect">detected</see>; a file nothing matches (garbage, or
        /// empty) is read as lackey, so its lines are counted malformed rather than thrown.
        /// </summary>
        /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
        public static ITraceReader Open(string path, TraceFormat format = TraceFormat.Auto)
        {
            ArgumentNullException.ThrowIfNull(path);
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
            try
            {
                return Open(stream, format, leaveOpen: false);
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Opens a reader over <paramref name="stream"/>; <see cref="TraceFormat.Auto"/> needs a
        /// seekable stream (it reads the start, then seeks back).
        /// </summary>
        /// <exception cref="NotSupportedException">Auto-detection on a stream that cannot seek.</exception>
        public static ITraceReader Open(Stream stream, TraceFormat format, bool leaveOpen = false)
        {
            ArgumentNullException.ThrowIfNull(stream);
            if (format == TraceFormat.Auto)
            {
                format = DetectFormat(stream);
            }

            return format switch
            {
                TraceFormat.Binary => new BinaryTraceReader(stream, leaveOpen),
                TraceFormat.Din => new DinTraceReader(stream, leaveOpen),
                _ => new LackeyTraceReader(stream, leaveOpen),
            };
        }

        /// <summary>
        /// Detects the format of a seekable stream from its first <see cref="DetectBytes"/> bytes,
        /// leaving its position where it was; undetectable input reads as <see cref="TraceFormat.Lackey"/>.
        /// </summary>
        public static TraceFormat DetectFormat(Stream stream)
        {
            ArgumentNullException.ThrowIfNull(stream);
            if (!stream.CanSeek)
            {
                throw new NotSupportedException("Format auto-detection needs a seekable stream; name the format instead.");
            }

            long start = stream.Position;
            byte[] head = new byte[DetectBytes];
            int got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            stream.Position = start;
            TraceFormat format = Detect(head.AsSpan(0, got));
            return format == TraceFormat.Auto ? TraceFormat.Lackey : format;
        }

        /// <summary>
        /// The format the start of a trace shows: <see cref="TraceFormat.Binary"/> on the
        /// <see cref="BinaryTraceFormat.Magic"/>; else, from the first line that is neither blank
        /// nor a valgrind <c>==</c> banner, <see cref="TraceFormat.Lackey"/> when it starts with
        /// I, L, S or M and a blank, <see cref="TraceFormat.Din"/> when it starts with a digit and
        /// a blank; <see cref="TraceFormat.Auto"/> when nothing matches.
        /// </summary>
        public static TraceFormat Detect(ReadOnlySpan<byte> head)
        {
            if (BinaryTraceFormat.HasMagic(head))
            {
                return TraceFormat.Binary;
            }

            while (!head.IsEmpty)
            {
                int newline = head.IndexOf((byte)'\n');
                ReadOnlySpan<byte> line = newline >= 0 ? head.Slice(0, newline) : head;
                head = newline >= 0 ? head.Slice(newline + 1) : default;
                line = line.TrimStart(" \t"u8).TrimEnd("\r"u8);
                if (line.IsEmpty || line.StartsWith("=="u8))
                {
                    continue;
                }

                if (line.Length < 2 || (line[1] != (byte)' ' && line[1] != (byte)'\t'))
                {
                    return TraceFormat.Auto;
                }

                return line[0] switch
                {
                    (byte)'I' or (byte)'L' or (byte)'S' or (byte)'M' => TraceFormat.Lackey,
                    >= (byte)'0' and <= (byte)'9' => TraceFormat.Din,
                    _ => TraceFormat.Auto,
                };
            }

            return TraceFormat.Auto;
        }
    }
}

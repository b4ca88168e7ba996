// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;

namespace FastEpt.Cli.Traces
{
    /// <summary>
    /// The FastEpt binary trace format (<c>.fept</c>), written by <see cref="BinaryTraceWriter"/>
    /// and <c>fastept convert</c>, read by <see cref="BinaryTraceReader"/>. All integers are
    /// little-endian.
    /// <list type="bullet">
    /// <item><description>Header, 16 bytes: the magic <c>"FEPTRACE"</c> (8 ASCII bytes),
    /// a <c>uint16</c> version (1), a <c>uint16</c> record size (12), a <c>uint32</c> reserved (0).</description></item>
    /// <item><description>Then fixed 12-byte records, one per access, to the end of the file:
    /// a <c>uint64</c> address, then a <c>uint32</c> whose bits 0-15 are the size (1..65535),
    /// bits 16-23 the <see cref="TraceKind"/> (0 read, 1 write, 2 fetch) and bits 24-31 zero.</description></item>
    /// </list>
    /// Fixed-width records decode without branches on the data (two loads and a few shifts per
    /// access), so replay is bound by memory bandwidth rather than by parsing. There is no
    /// access count in the header, so a trace can be written as a stream; a file whose tail is
    /// shorter than a record was cut short, and the reader counts that tail as one malformed
    /// record. A record with size 0, an unknown kind or nonzero reserved bits is malformed too.
    /// </summary>
    public static class BinaryTraceFormat
    {
        /// <summary>The header size in bytes.</summary>
        public const int HeaderSize = 16;

        /// <summary>The record size in bytes.</summary>
        public const int RecordSize = 12;

        /// <summary>The format version this code reads and writes.</summary>
        public const ushort Version = 1;

        /// <summary>Bit position of the kind in a record's second word.</summary>
        internal const int KindShift = 16;

        /// <summary>Mask of the size in a record's second word.</summary>
        internal const uint SizeMask = 0xFFFF;

        /// <summary>The I/O buffer of the binary reader and writer: about 1 MiB, whole records.</summary>
        internal const int BufferSize = RecordSize * 87381;

        /// <summary>The first eight bytes of every binary trace: ASCII <c>FEPTRACE</c>.</summary>
        public static ReadOnlySpan<byte> Magic => "FEPTRACE"u8;

        /// <summary>True when <paramref name="head"/> starts with <see cref="Magic"/>.</summary>
        public static bool HasMagic(ReadOnlySpan<byte> head) => head.StartsWith(Magic);

        internal static void WriteHeader(Span<byte> destination)
        {
            Magic.CopyTo(destination);
            BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(8), Version);
            BinaryPrimitives.WriteUInt16LittleEndian(destination.Slice(10), RecordSize);
            BinaryPrimitives.WriteUInt32LittleEndian(destination.Slice(12), 0);
        }

        /// <summary>Null when <paramref name="header"/> is a valid version-1 header, else why not.</summary>
        internal static string? ValidateHeader(ReadOnlySpan<byte> header)
        {
            if (header.Length < HeaderSize)
            {
                return header.Length == 0 ? "empty file (no binary trace header)" : "truncated binary trace header";
            }

            if (!HasMagic(header))
            {
                return "not a FastEpt binary trace (bad magic)";
            }

            ushort version = BinaryPrimitives.ReadUInt16LittleEndian(header.Slice(8));
            if (version != Version)
            {
                return $"unsupported binary trace version {version} (this build reads {Version})";
            }

            ushort recordSize = BinaryPrimitives.ReadUInt16LittleEndian(header.Slice(10));
            return recordSize != RecordSize ? $"unsupported record size {recordSize} (expected {RecordSize})" : null;
        }
    }
}

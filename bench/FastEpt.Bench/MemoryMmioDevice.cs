// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;

namespace FastEpt.Bench
{
    /// <summary>
    /// A trivial emulated device for the emulation benchmark: its registers are plain bytes in a
    /// managed array, one byte per byte of the guest-physical range it owns. Every access completes
    /// (<see cref="MmioResult.Okay"/>), allocates nothing, and is counted by size, so a benchmark
    /// can check how <see cref="HvmEmulation"/> split an operand.
    /// </summary>
    public sealed class MemoryMmioDevice : IMmioDevice
    {
        private readonly byte[] _bytes;
        private readonly long[] _accessesBySize = new long[9];

        /// <summary>Creates a device for <paramref name="pages"/> 4 KiB pages from <paramref name="firstGpa"/>, all bytes zero.</summary>
        public MemoryMmioDevice(ulong firstGpa, int pages)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pages);
            FirstGpa = firstGpa;
            _bytes = new byte[(long)pages << EptEntry.PageBits];
        }

        /// <summary>The first guest-physical address the device owns.</summary>
        public ulong FirstGpa { get; }

        /// <summary>The device's bytes, indexed by GPA − <see cref="FirstGpa"/>; the benchmark's ground truth.</summary>
        public Span<byte> Bytes => _bytes;

        /// <summary>Accesses of <paramref name="size"/> bytes (1, 2, 4 or 8) since the last <see cref="ResetCounts"/>, reads and writes together.</summary>
        public long AccessesOfSize(int size) => _accessesBySize[size];

        /// <summary>Accesses of any size since the last <see cref="ResetCounts"/>.</summary>
        public long Accesses => _accessesBySize[1] + _accessesBySize[2] + _accessesBySize[4] + _accessesBySize[8];

        /// <summary>Zeroes the access counts.</summary>
        public void ResetCounts() => Array.Clear(_accessesBySize);

        /// <inheritdoc/>
        public MmioResult Read(ulong gpa, int size, out ulong value)
        {
            ReadOnlySpan<byte> at = At(gpa, size);
            value = size switch
            {
                1 => at[0],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(at),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(at),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(at),
            };
            _accessesBySize[size]++;
            return MmioResult.Okay;
        }

        /// <inheritdoc/>
        public MmioResult Write(ulong gpa, int size, ulong value)
        {
            Span<byte> at = At(gpa, size);
            switch (size)
            {
                case 1:
                    at[0] = (byte)value;
                    break;
                case 2:
                    BinaryPrimitives.WriteUInt16LittleEndian(at, (ushort)value);
                    break;
                case 4:
                    BinaryPrimitives.WriteUInt32LittleEndian(at, (uint)value);
                    break;
                default:
                    BinaryPrimitives.WriteUInt64LittleEndian(at, value);
                    break;
            }

            _accessesBySize[size]++;
            return MmioResult.Okay;
        }

        // The bytes of one access; a size other than 1, 2, 4 or 8, or bytes outside the range, throw.
        private Span<byte> At(ulong gpa, int size)
        {
            ulong offset = gpa - FirstGpa;
            if (size is not (1 or 2 or 4 or 8) || gpa < FirstGpa || offset > (ulong)_bytes.Length - (ulong)size)
            {
                throw new InvalidOperationException($"MemoryMmioDevice: a {size}-byte access at GPA 0x{gpa:X} is not a valid access of this device.");
            }

            return _bytes.AsSpan((int)offset, size);
        }
    }
}

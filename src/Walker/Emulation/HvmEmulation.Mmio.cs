// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using System.Numerics;

namespace FastEpt
{
    // Device accesses through the MMIO cache (Xen's phys_mmio_access, docs/model/mmio-cache.md):
    // completed bytes replay, the rest goes to the device, a Retry leaves the request pending.
    public sealed partial class HvmEmulation
    {
        // Xen's phys_mmio_access: `buffer` is the caller's whole operand and `offset` indexes both
        // it and the cache entry. Completed bytes replay; the rest goes to the device in chunks of
        // the largest power of two that fits, at most 8, never growing again.
        private EmulationResult PhysMmio(MmioCache.Entry e, IMmioDevice device, ulong gpa, int size, int offset, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            if (offset + size > _cache.EntryBytes)
            {
                return Fail($"Device bytes {offset}..{offset + size} of the operand exceed the {_cache.EntryBytes}-byte cache entry.");
            }

            if (offset < e.Skip)
            {
                return Fail($"Device access at operand offset {offset} before the entry's MMIO start ({e.Skip}).");
            }

            int chunk = Math.Min(8, (int)BitOperations.RoundUpToPowerOf2((uint)size + 1) >> 1);
            while (size > 0)
            {
                int n;
                if (offset < e.Size)
                {
                    // Replay what an earlier pass completed (possibly less than a chunk when an
                    // earlier access of this operand was shorter: FastEpt then continues from there).
                    n = Math.Min(size, e.Size - offset);
                    n = Math.Min(n, chunk);
                    EmulationResult r = Replay(e, offset, n, readBuf, writeData, write);
                    if (r != EmulationResult.Okay)
                    {
                        return r;
                    }
                }
                else
                {
                    if (offset != e.Size)
                    {
                        return Fail($"Device access at operand offset {offset} leaves a gap after the {e.Size} bytes completed.");
                    }

                    n = chunk;
                    EmulationResult r = Issue(e, device, gpa, n, offset, readBuf, writeData, write);
                    if (r != EmulationResult.Okay)
                    {
                        return r;
                    }
                }

                gpa += (ulong)n;
                offset += n;
                size -= n;
                while (chunk > size && chunk > 1)
                {
                    chunk >>= 1;
                }
            }

            return EmulationResult.Okay;
        }

        private EmulationResult Replay(MmioCache.Entry e, int offset, int n, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            ReadOnlySpan<byte> cached = e.Buffer.AsSpan(offset, n);
            if (!write)
            {
                cached.CopyTo(readBuf.Slice(offset, n));
                return EmulationResult.Okay;
            }

            return cached.SequenceEqual(writeData.Slice(offset, n))
                ? EmulationResult.Okay
                : Fail($"The re-executed instruction writes different data to operand bytes {offset}..{offset + n} than the device already received.");
        }

        private EmulationResult Issue(MmioCache.Entry e, IMmioDevice device, ulong gpa, int n, int offset, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            ulong value = 0;
            if (write)
            {
                Span<byte> v = stackalloc byte[8];
                writeData.Slice(offset, n).CopyTo(v);
                value = BinaryPrimitives.ReadUInt64LittleEndian(v);
            }

            var request = new Pending(true, gpa, n, write, value);
            if (_pending.Active && _pending != request)
            {
                return Fail($"The re-issued device request ({(write ? "write" : "read")} of {n} bytes at 0x{gpa:X}) differs from the pending one ({(_pending.Write ? "write" : "read")} of {_pending.Size} bytes at 0x{_pending.Gpa:X}).");
            }

            MmioResult result = write ? device.Write(gpa, n, value) : device.Read(gpa, n, out value);
            if (result == MmioResult.Retry)
            {
                _pending = request;
                LastFailure = null;
                return EmulationResult.Retry;
            }

            if (result != MmioResult.Okay)
            {
                return Fail($"The device answered {result} for a {(write ? "write" : "read")} at 0x{gpa:X}.");
            }

            _pending = default;
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            bytes[..n].CopyTo(e.Buffer.AsSpan(offset, n));
            if (!write)
            {
                bytes[..n].CopyTo(readBuf.Slice(offset, n));
            }

            e.Size += n;
            return EmulationResult.Okay;
        }

        private readonly record struct Pending(bool Active, ulong Gpa, int Size, bool Write, ulong Value);
    }
}

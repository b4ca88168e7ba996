// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using FastEpt.Internal;

namespace FastEpt
{
    // The emulated locked compare-exchange (Xen's hvmemul_cmpxchg): atomic on one naturally
    // aligned RAM piece, compare-then-write otherwise, a plain write when any byte is MMIO.
    public sealed partial class HvmEmulation
    {
        /// <summary>
        /// A locked compare-exchange of <paramref name="expected"/>.Length bytes at <paramref name="gla"/>.
        /// On RAM: when the bytes equal <paramref name="expected"/> they become <paramref name="desired"/>
        /// (<see cref="LastCompareSucceeded"/>); atomic for a naturally aligned 1, 2, 4 or 8 bytes,
        /// otherwise compared and written with both pages translated first (not atomic against other
        /// vCPUs). When any byte is MMIO or discarded read-only RAM it degrades to a plain write of
        /// <paramref name="desired"/> keyed by its own address, as Xen's does.
        /// </summary>
        /// <exception cref="ArgumentException">Empty or different-length operands.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits.</exception>
        public EmulationResult CmpXchg(ulong gla, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, PageFaultErrorCode pfec)
            => CmpXchg(gla, expected, desired, pfec, default);

        /// <summary>
        /// <see cref="CmpXchg(ulong, ReadOnlySpan{byte}, ReadOnlySpan{byte}, PageFaultErrorCode)"/> that
        /// also returns the bytes found (the value the CPU loads into the accumulator on a mismatch).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="expected">The comparand.</param>
        /// <param name="desired">The new value.</param>
        /// <param name="pfec">User describes the access.</param>
        /// <param name="current">Empty, or as long as <paramref name="expected"/>: receives the bytes found (equal to
        /// <paramref name="expected"/> on success or when it degraded to a write).</param>
        /// <exception cref="ArgumentException">Empty or different-length operands.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits.</exception>
        public EmulationResult CmpXchg(ulong gla, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, PageFaultErrorCode pfec, Span<byte> current)
        {
            if (expected.IsEmpty || desired.Length != expected.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(desired), "Compare-exchange operands must be non-empty and of one length.");
            }

            if (!current.IsEmpty && current.Length != expected.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(current), "The current-value span must be empty or as long as the operands.");
            }

            pfec = Describe(pfec, AccessTag.Operand, write: true);
            LastCompareSucceeded = false;
            if (!Prepare(gla, expected.Length, pfec, AccessTag.Operand, out Pieces pieces, out EmulationResult early))
            {
                return early;
            }

            try
            {
                if (!pieces.AllRam)
                {
                    // Xen's hvmemul_cmpxchg cannot map MMIO: it becomes a plain write.
                    pieces.Release();
                    EmulationResult r = Access(gla, default, desired, write: true, pfec, AccessTag.Operand);
                    if (r == EmulationResult.Okay)
                    {
                        LastCompareSucceeded = true;
                        if (!current.IsEmpty)
                        {
                            expected.CopyTo(current);
                        }
                    }

                    return r;
                }

                LastCompareSucceeded = CompareExchangeRam(ref pieces, expected, desired, current);
                return Done();
            }
            finally
            {
                pieces.Release();
            }
        }

        private bool CompareExchangeRam(ref Pieces pieces, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, Span<byte> current)
        {
            int n = expected.Length;
            ref Piece first = ref pieces[0];
            if (pieces.Count == 1 && n is 1 or 2 or 4 or 8 && (first.Page.Offset & (n - 1)) == 0)
            {
                ref byte at = ref first.Page.Bytes[first.Page.Offset];
                ulong want = ReadLittle(expected), next = ReadLittle(desired), found = n switch
                {
                    1 => Interlocked.CompareExchange(ref at, (byte)next, (byte)want),
                    2 => Interlocked.CompareExchange(ref Unsafe.As<byte, ushort>(ref at), (ushort)next, (ushort)want),
                    4 => Interlocked.CompareExchange(ref Unsafe.As<byte, uint>(ref at), (uint)next, (uint)want),
                    _ => Interlocked.CompareExchange(ref Unsafe.As<byte, ulong>(ref at), next, want),
                };
                if (!current.IsEmpty)
                {
                    Span<byte> f = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(f, found);
                    f[..n].CopyTo(current);
                }

                return found == want;
            }

            // Unaligned, odd-sized or split: compare, then write (every page already translated).
            Span<byte> seen = stackalloc byte[MaxAccessBytes];
            int at0 = 0;
            for (int p = 0; p < pieces.Count; p++)
            {
                ref Piece piece = ref pieces[p];
                piece.Page.Bytes.Slice(piece.Page.Offset, piece.Length).CopyTo(seen[at0..]);
                at0 += piece.Length;
            }

            if (!current.IsEmpty)
            {
                seen[..n].CopyTo(current);
            }

            if (!seen[..n].SequenceEqual(expected))
            {
                return false;
            }

            at0 = 0;
            for (int p = 0; p < pieces.Count; p++)
            {
                ref Piece piece = ref pieces[p];
                desired.Slice(at0, piece.Length).CopyTo(piece.Page.Bytes.Slice(piece.Page.Offset, piece.Length));
                at0 += piece.Length;
            }

            return true;
        }

        private static ulong ReadLittle(ReadOnlySpan<byte> bytes)
        {
            Span<byte> v = stackalloc byte[8];
            bytes.CopyTo(v);
            return BinaryPrimitives.ReadUInt64LittleEndian(v);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.CompilerServices;
using FastEpt.Interop.Internal;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    // The walks: Translate, TranslateBatch and GetEntry, each inside one read-side section of
    // the walker seam (P2m.NativeAccess), lock-free and allocation-free.
    public sealed unsafe partial class NativeWalker
    {
        /// <summary>
        /// Walks <paramref name="gpa"/> natively exactly as <see cref="FastEpt.P2m.Translate"/> does
        /// (Intel SDM 29.3, accessed/dirty updates when the EPTP enables them).
        /// </summary>
        /// <param name="gpa">Guest-physical address, below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one).</param>
        /// <returns>The translation; violations and misconfigurations are statuses, never exceptions.</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gpa"/> or <paramref name="access"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free.</remarks>
        public EptTranslation Translate(ulong gpa, AccessKind access)
        {
            if (gpa >= _gpaLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gpa(gpa, _addressBits);
            }

            if (unchecked((uint)access - 1) >= 7)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_access(access);
            }

            ThrowIfDisposed();
            fastept_translation t;
            NativeAccess.ReadSection read = NativeAccess.EnterRead();
            fixed (fastept_walker* w = &_walker)
            {
                t = fastept_translate(w, gpa, (uint)access);
            }

            read.Exit();
            return Unsafe.As<fastept_translation, EptTranslation>(ref t);
        }

        /// <summary>
        /// Translates every address of <paramref name="gpas"/> as <see cref="Translate"/> would, in
        /// one native call that writes straight into <paramref name="results"/>.
        /// </summary>
        /// <returns>The number of results written (= <paramref name="gpas"/>.Length).</returns>
        /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="gpas"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An address or <paramref name="access"/> is out of range (checked before any walk).</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free.</remarks>
        public int TranslateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results)
        {
            NativeAccess.ValidateBatch(gpas, access, results, _gpaLimit, _addressBits);

            ThrowIfDisposed();
            if (gpas.IsEmpty)
            {
                return 0;
            }

            NativeAccess.ReadSection read = NativeAccess.EnterRead();
            fixed (fastept_walker* w = &_walker)
            fixed (ulong* g = gpas)
            fixed (EptTranslation* r = results)
            {
                // EptTranslation and fastept_translation are the same 16 bytes (checked in EnsureNative).
                fastept_translate_batch(w, g, (ulong)gpas.Length, (uint)access, (fastept_translation*)r);
            }

            read.Exit();
            return gpas.Length;
        }

        /// <summary>
        /// Looks up what <paramref name="gfn"/> maps to natively, as <see cref="FastEpt.P2m.GetEntry"/>
        /// does without populate-on-demand (<see cref="P2mQuery.None"/>).
        /// </summary>
        /// <param name="gfn">Guest frame number, below 2^(AddressBits-12).</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gfn"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free; never changes a table.</remarks>
        public P2mEntry GetEntry(ulong gfn)
        {
            if (gfn >= _gfnLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gfn(gfn, _addressBits);
            }

            ThrowIfDisposed();
            fastept_walker w = _walker;
            w.max_mapped_pfn = MaxMappedPfn;
            NativeAccess.ReadSection read = NativeAccess.EnterRead();
            fastept_entry e = fastept_get_entry(&w, gfn);
            read.Exit();
            return NativeAccess.Entry(e.mfn, (P2mType)e.type, (P2mAccess)e.access, e.suppress_ve != 0, e.is_mapped != 0, e.order);
        }
    }
}

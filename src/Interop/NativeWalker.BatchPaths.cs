// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    // The native batch on a chosen path (fastept_translate_batch_path), for the differential
    // tests and the benchmarks: the twin of P2m.TranslateBatch(..., BatchPath).
    public sealed unsafe partial class NativeWalker
    {
        /// <summary>A copy of the walker struct, for the benchmarks' C timing loops (plain data: no ownership).</summary>
        internal fastept_walker WalkerSnapshot => _walker;

        /// <summary>
        /// <see cref="TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> on
        /// <paramref name="path"/>; returns the path the native library took (Scalar for an empty
        /// batch). Results are identical on every path.
        /// </summary>
        internal BatchPath TranslateBatchOnPath(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results, BatchPath path)
        {
            NativeAccess.ValidateBatch(gpas, access, results, _gpaLimit, _addressBits);
            if ((uint)path > (uint)BatchPath.Gather)
            {
                throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown batch path.");
            }

            ThrowIfDisposed();
            if (gpas.IsEmpty)
            {
                return BatchPath.Scalar;
            }

            uint taken;
            NativeAccess.ReadSection read = NativeAccess.EnterRead();
            fixed (fastept_walker* w = &_walker)
            fixed (ulong* g = gpas)
            fixed (EptTranslation* r = results)
            {
                taken = fastept_translate_batch_path(w, g, (ulong)gpas.Length, (uint)access, (fastept_translation*)r, (uint)path);
            }

            read.Exit();
            return (BatchPath)taken;
        }
    }
}

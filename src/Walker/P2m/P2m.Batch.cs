// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed unsafe partial class P2m
    {
        /// <summary>
        /// <see cref="TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> on a
        /// chosen path, for tests and benchmarks. Results are identical on every path.
        /// </summary>
        internal int TranslateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results, BatchPath path)
        {
            ValidateBatchArguments(gpas, access, results, _gpaLimit, _addressBits);

            if ((uint)path > (uint)BatchPath.Gather)
            {
                throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown batch path.");
            }

            ThrowIfDisposed();
            byte* b = _memory.Base;
            results = results.Slice(0, gpas.Length);    // same length: the JIT drops the bounds checks
            BatchPath chosen = ResolveBatchPath(path, gpas);
            long previous = Epoch.Enter(_readerTag, out Epoch.ReaderSlot slot);
            switch (chosen)
            {
                case BatchPath.Pipelined:
                    WalkPipelined(b, gpas, (uint)access, results);
                    break;
                case BatchPath.Gather:
                    WalkGathered(b, gpas, (uint)access, results);
                    break;
                default:
                    WalkEach(b, gpas, (uint)access, results);
                    break;
            }

            Epoch.Exit(slot, previous);
            if (FastEptMetrics.WalksEnabled)
            {
                FastEptMetrics.CountWalks(results);     // once per batch, only while observed
            }

            return gpas.Length;
        }

        /// <summary>
        /// The argument checks every batched translation makes before its first walk (P2m,
        /// SoftTlb, the native walker): results long enough, access in 1..7, every address below
        /// <paramref name="gpaLimit"/> (2^<paramref name="addressBits"/>).
        /// </summary>
        internal static void ValidateBatchArguments(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results, ulong gpaLimit, int addressBits)
        {
            if (results.Length < gpas.Length)
            {
                ThrowHelper.ThrowArgumentException_results();
            }

            if (unchecked((uint)access - 1) >= 7)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_access(access);
            }

            for (int i = 0; i < gpas.Length; i++)
            {
                if (gpas[i] >= gpaLimit)
                {
                    ThrowHelper.ThrowArgumentOutOfRangeException_gpa(gpas[i], addressBits);
                }
            }
        }

        // One complete walk after another. A method of its own, so the loop gets the registers
        // (inside the dispatcher, the JIT spilled its state to the stack on every iteration).
        private void WalkEach(byte* b, ReadOnlySpan<ulong> gpas, uint access, Span<EptTranslation> results)
        {
            results = results.Slice(0, gpas.Length);
            for (int i = 0; i < gpas.Length; i++)
            {
                results[i] = Walk(b, gpas[i], access);
            }
        }
    }
}

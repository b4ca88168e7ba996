// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt
{
    // Batched lookups: hits answered in place, the misses of each chunk walked together by the
    // p2m's batch walker.
    public sealed unsafe partial class SoftTlb
    {
        // TranslateBatch: misses are collected and walked together in chunks of this many addresses.
        private const int BatchMissChunk = 256;

        /// <summary>
        /// Translates every address of <paramref name="gpas"/> as <see cref="Translate"/> would,
        /// writing one result per address; argument checks are those of <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>.
        /// </summary>
        /// <param name="gpas">Guest-physical addresses, each below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one).</param>
        /// <param name="results">Receives one translation per address; at least as long as <paramref name="gpas"/>.</param>
        /// <returns>The number of results written (= <paramref name="gpas"/>.Length).</returns>
        /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="gpas"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An address or <paramref name="access"/> is out of range (checked before any lookup).</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        public int TranslateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results)
        {
            P2m.ValidateBatchArguments(gpas, access, results, _gpaLimit, _p2m.AddressBits);

            if (_p2m.IsDisposed)
            {
                ThrowHelper.ThrowObjectDisposedException(_p2m);
            }

            results = results.Slice(0, gpas.Length);    // same length: the JIT drops both bounds checks
            if (gpas.Length < BatchMissChunk)
            {
                for (int i = 0; i < gpas.Length; i++)
                {
                    results[i] = Translate(gpas[i], access);
                }

                return gpas.Length;
            }

            // Hits are answered in place; the misses of each chunk are walked together by the
            // p2m's batch walker (memory-level parallelism), then filled.
            ulong* missGpas = stackalloc ulong[BatchMissChunk];
            int* missIndex = stackalloc int[BatchMissChunk];
            EptTranslation* missResults = stackalloc EptTranslation[BatchMissChunk];
            for (int start = 0; start < gpas.Length; start += BatchMissChunk)
            {
                int end = Math.Min(start + BatchMissChunk, gpas.Length);
                // Generations are read before any walk of this chunk (see Miss).
                long generation = CurrentGeneration();
                if (generation != _generation)
                {
                    FlushCore(generation);
                }

                int misses = 0;
                long hits = 0;
                for (int i = start; i < end; i++)
                {
                    ulong gpa = gpas[i];
                    if (TryHit(gpa, (uint)access, out EptTranslation hit))
                    {
                        results[i] = hit;
                        hits++;
                    }
                    else
                    {
                        missGpas[misses] = gpa;
                        missIndex[misses] = i;
                        misses++;
                    }
                }

                _counts.Hits += hits;
                if (misses != 0)
                {
                    _p2m.TranslateBatch(new ReadOnlySpan<ulong>(missGpas, misses), access, new Span<EptTranslation>(missResults, misses));
                    _counts.Misses += misses;
                    for (int k = 0; k < misses; k++)
                    {
                        EptTranslation t = missResults[k];
                        results[missIndex[k]] = t;
                        if (t.Status == EptStatus.Ok)
                        {
                            Fill(missGpas[k], t, (uint)access);
                        }
                    }
                }
            }

            return gpas.Length;
        }

        // A hit in the 4K array or, failing that, in the superpage arrays (which also fills the
        // 4K slot). Arguments were validated by the caller; the generation is current.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private bool TryHit(ulong gpa, uint access, out EptTranslation result)
        {
            ref Entry e = ref Slot(gpa);
            ulong data = e.Data;
            if (((((gpa & ~EptEntry.PageMask) | _epoch) ^ e.Tag) & ~NoReadTag) == 0 && (access & ~unchecked((uint)data)) == 0)
            {
                result = new EptTranslation(EptStatus.Ok, unchecked(gpa + (data & ~EptEntry.PageMask)), (int)((data >> LevelShift) & 7), 0);
                return true;
            }

            ref Entry e2 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries2M), (nint)((gpa >> 21) & (Entries2M - 1)));
            if (e2.Tag == ((gpa & ~Mask2M) | _epoch) && (access & ~unchecked((uint)e2.Data)) == 0)
            {
                result = SuperpageFill(gpa, e2.Data, Mask2M);
                return true;
            }

            ref Entry e1 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries1G), (nint)((gpa >> 30) & (Entries1G - 1)));
            if (e1.Tag == ((gpa & ~Mask1G) | _epoch) && (access & ~unchecked((uint)e1.Data)) == 0)
            {
                result = SuperpageFill(gpa, e1.Data, Mask1G);
                return true;
            }

            result = default;
            return false;
        }
    }
}

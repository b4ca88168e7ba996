// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace FastEpt
{
    public sealed unsafe partial class P2m
    {
        // Pipelined walks: a walk's PDE and PTE are prefetched PipelineDistance addresses before
        // the walk reads them, so up to 2 x PipelineDistance walks are in flight (its PML4E and
        // PDPTE are read as the walk starts: the few tables at those levels stay cached). The
        // ring holds the state of every walk in flight (a power of two >= 2 x distance + 1), one
        // word each: the address of the slot to read next (8-byte aligned) with the rights
        // accumulated so far in its low three bits (r, w, x), or 0 once the walk has left.
        internal const int PipelineDistance = 32;
        private const int PipelineRing = 128;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Prefetch(void* p)
        {
            if (Sse.IsSupported)
            {
                Sse.Prefetch0(p);
            }
        }

        // Software pipeline over the 4-level fast shape. Iteration i starts walk i + 2D (reads its
        // PML4E and PDPTE, which stay cached, and prefetches its PDE), advances walk i + D (reads
        // the PDE, prefetches the PTE) and finishes walk i (reads the PTE). Every entry is read
        // once, into a local; whatever the fast shape does not cover (a superpage, a violation, a
        // misconfiguration) is finished on the spot by WalkFrom from that snapshot, and the walk
        // leaves the pipeline (ring word 0).
        private void WalkPipelined(byte* b, ReadOnlySpan<ulong> gpas, uint access, Span<EptTranslation> results)
        {
            const int D = PipelineDistance;
            const int Mask = PipelineRing - 1;
            ulong* ring = stackalloc ulong[PipelineRing];
            ulong pointerMask = _fastPointerMask;
            ulong leafMask = _fastLeafMask;
            ulong limit = _tableLimit;
            ulong* root = (ulong*)(b + (_rootMfn << EptEntry.PageBits));
            int n = gpas.Length;
            ref ulong g0 = ref MemoryMarshal.GetReference(gpas);
            ref EptTranslation r0 = ref MemoryMarshal.GetReference(results);

            for (int i = -2 * D; i < n; i++)
            {
                // Start walk j: PML4E.
                int j = i + (2 * D);
                if (j < n)
                {
                    ulong gpa = Unsafe.Add(ref g0, j);
                    ulong* p = root + ((gpa >> 39) & 511);
                    ulong pte = Volatile.Read(ref *p);
                    ulong next = pte & EptEntry.MfnMask;
                    if ((pte & pointerMask) == 1 && next < limit)
                    {
                        ulong* q = (ulong*)(b + next) + ((gpa >> 30) & 511);
                        Prefetch(q);
                        ring[j & Mask] = (ulong)q | (pte & EptEntry.RwxMask);
                    }
                    else
                    {
                        Unsafe.Add(ref r0, j) = WalkFrom(b, gpa, access, 4, p, pte, EptEntry.RwxMask);
                        ring[j & Mask] = 0;
                    }
                }

                // Walks i + 2D (PDPTE) and i + D (PDE): one stage, inlined for each level.
                AdvanceWalk(b, 3, j, n, ring, ref g0, ref r0, access, pointerMask, limit);
                AdvanceWalk(b, 2, i + D, n, ring, ref g0, ref r0, access, pointerMask, limit);

                // Finish walk i: PTE.
                if (i >= 0)
                {
                    ulong w = ring[i & Mask];
                    if (w != 0)
                    {
                        ulong* p = (ulong*)(w & ~EptEntry.RwxMask);
                        ulong gpa = Unsafe.Add(ref g0, i);
                        ulong pte = Volatile.Read(ref *p);
                        ulong r = w & pte;
                        if ((pte & leafMask) == 1
                            && ((0x8Cu >> (int)((pte >> EptEntry.MemoryTypeShift) & 7)) & 1) == 0
                            && (access & ~(uint)(r & EptEntry.RwxMask)) == 0)
                        {
                            Unsafe.Add(ref r0, i) = new EptTranslation(EptStatus.Ok, (pte & EptEntry.MfnMask) | (gpa & EptEntry.PageMask), 1, 0);
                        }
                        else
                        {
                            Unsafe.Add(ref r0, i) = WalkFrom(b, gpa, access, 1, p, pte, w & EptEntry.RwxMask);
                        }
                    }
                }
            }
        }

        // A middle stage of the pipeline for walk j, at `level` (3: its PDPTE, 2: its PDE): reads
        // the entry prefetched one stage earlier, then either prefetches the next level's entry
        // or, when the entry is not a well-formed pointer, finishes the walk with WalkFrom from
        // that snapshot and takes it out of the pipeline. Always inlined with a constant level,
        // so each stage compiles to what it was when written out twice.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void AdvanceWalk(byte* b, int level, int j, int n, ulong* ring, ref ulong g0, ref EptTranslation r0,
                                 uint access, ulong pointerMask, ulong limit)
        {
            const int Mask = PipelineRing - 1;
            if (unchecked((uint)j < (uint)n))
            {
                ulong w = ring[j & Mask];
                if (w != 0)
                {
                    ulong* p = (ulong*)(w & ~EptEntry.RwxMask);
                    ulong gpa = Unsafe.Add(ref g0, j);
                    ulong pte = Volatile.Read(ref *p);
                    ulong next = pte & EptEntry.MfnMask;
                    if ((pte & pointerMask) == 1 && next < limit)
                    {
                        ulong* q = (ulong*)(b + next) + ((gpa >> ShiftOf(level - 1)) & 511);
                        Prefetch(q);
                        ring[j & Mask] = (ulong)q | (w & pte & EptEntry.RwxMask);
                    }
                    else
                    {
                        Unsafe.Add(ref r0, j) = WalkFrom(b, gpa, access, level, p, pte, w & EptEntry.RwxMask);
                        ring[j & Mask] = 0;
                    }
                }
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>How <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation}, BatchPath)"/> walks.</summary>
    internal enum BatchPath
    {
        /// <summary>Let the p2m choose per call (table footprint, address locality, ISA).</summary>
        Auto = 0,

        /// <summary>One complete walk after another: the single-address walker in a loop.</summary>
        Scalar,

        /// <summary>Software-pipelined walks: each level's entry prefetched a fixed distance ahead.</summary>
        Pipelined,

        /// <summary>Eight walks at a time, level by level, with AVX2 gathers (falls back to Pipelined without AVX2).</summary>
        Gather,
    }

    public sealed unsafe partial class P2m
    {
        // Pipelined walks: a walk's level-n entry is prefetched PipelineDistance addresses before
        // the walk reads it, so up to 3 x PipelineDistance walks are in flight. The ring holds
        // the state of every walk in flight (a power of two >= 3 x distance + 1).
        internal const int PipelineDistance = 16;
        private const int PipelineRing = 64;

        // Auto: below this many addresses the pipeline never fills, so walk one at a time.
        private const int MinPipelinedBatch = 2 * PipelineDistance;

        // Auto: tables up to this size are assumed cache-resident (a few MiB fit any server
        // core's L2 + its share of L3); beyond it, walks are mostly misses worth overlapping.
        internal static readonly long CacheResidentTableBytes = 8L << 20;

        /// <summary>
        /// Whether <see cref="BatchPath.Auto"/> uses AVX2 gathers where the tables are cached (or
        /// the addresses clustered). Measured on Intel (see docs/performance.md): there, gathered
        /// walks beat one-at-a-time walks, sequential addresses included; on tables far larger
        /// than the caches the pipeline wins. On AMD Zen, gathers are microcoded and published
        /// measurements show them losing to scalar loads with prefetch, so there (and without
        /// AVX2) cached tables are walked one address at a time.
        /// </summary>
        internal static readonly bool PreferGather = Avx2.IsSupported && !IsAmd();

        private static bool IsAmd()
        {
            if (!X86Base.IsSupported)
            {
                return false;
            }

            // CPUID leaf 0: the vendor string in EBX, EDX, ECX ("Auth" "enti" "cAMD").
            (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
            return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163;
        }

        /// <summary>True when <paramref name="path"/> runs as named on this machine (Gather needs AVX2).</summary>
        internal static bool IsBatchPathSupported(BatchPath path) => path switch
        {
            BatchPath.Gather => Avx2.IsSupported,
            BatchPath.Auto or BatchPath.Scalar or BatchPath.Pipelined => true,
            _ => false,
        };

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
            long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
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

        /// <summary>The path a batch of <paramref name="gpas"/> actually takes when <paramref name="requested"/> is asked for.</summary>
        internal BatchPath ResolveBatchPath(BatchPath requested, ReadOnlySpan<ulong> gpas)
        {
            // The interleaved walkers implement the common 4-level shape without A/D updates.
            if (_levels != 4 || _accessDirty)
            {
                return BatchPath.Scalar;
            }

            switch (requested)
            {
                case BatchPath.Scalar:
                case BatchPath.Pipelined:
                    return requested;
                case BatchPath.Gather:
                    return Avx2.IsSupported ? BatchPath.Gather : BatchPath.Pipelined;
                default:
                    if (gpas.Length < MinPipelinedBatch)
                    {
                        return BatchPath.Scalar;
                    }

                    // Tables well beyond the caches, addresses scattered over them: most walks
                    // miss on their leaf, and the pipeline keeps the most misses in flight.
                    if (TableFrameCount * EptEntry.PageSize > CacheResidentTableBytes && !IsClustered(gpas))
                    {
                        return BatchPath.Pipelined;
                    }

                    // Cache hits: what is left to save is instructions, which gathers do where they
                    // are fast; elsewhere interleaving only adds bookkeeping.
                    return PreferGather ? BatchPath.Gather : BatchPath.Scalar;
            }
        }

        // Addresses that mostly stay within a 2 MiB region of their predecessor share leaf tables
        // (and cache lines): the hardware prefetcher and the caches already overlap their misses.
        // A sample of 16 neighbours decides; a mostly-clustered batch walks one at a time.
        private static bool IsClustered(ReadOnlySpan<ulong> gpas)
        {
            int near = 0;
            for (int i = 1; i <= 16; i++)
            {
                if (((gpas[i] ^ gpas[i - 1]) >> 21) == 0)
                {
                    near++;
                }
            }

            return near >= 12;
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

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Prefetch(void* p)
        {
            if (Sse.IsSupported)
            {
                Sse.Prefetch0(p);
            }
        }

        // Software pipeline over the 4-level fast shape. Iteration i starts walk i + 3D (reads its
        // PML4E, which stays cached, and prefetches its PDPTE), advances walk i + 2D (reads the
        // PDPTE, prefetches the PDE) and walk i + D (reads the PDE, prefetches the PTE), and
        // finishes walk i (reads the PTE). Every entry is read once, into a local; whatever the
        // fast shape does not cover (a superpage, a violation, a misconfiguration) is finished on
        // the spot by WalkFrom from that snapshot, and the walk leaves the pipeline (null slot).
        private void WalkPipelined(byte* b, ReadOnlySpan<ulong> gpas, uint access, Span<EptTranslation> results)
        {
            const int D = PipelineDistance;
            const int Mask = PipelineRing - 1;
            ulong** slots = stackalloc ulong*[PipelineRing];
            ulong* rights = stackalloc ulong[PipelineRing];
            ulong pointerMask = _fastPointerMask;
            ulong leafMask = _fastLeafMask;
            ulong limit = _tableLimit;
            ulong* root = (ulong*)(b + (_rootMfn << EptEntry.PageBits));
            int n = gpas.Length;
            ref ulong g0 = ref MemoryMarshal.GetReference(gpas);
            ref EptTranslation r0 = ref MemoryMarshal.GetReference(results);

            for (int i = -3 * D; i < n; i++)
            {
                // Start walk j: PML4E.
                int j = i + (3 * D);
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
                        slots[j & Mask] = q;
                        rights[j & Mask] = pte;
                    }
                    else
                    {
                        Unsafe.Add(ref r0, j) = WalkFrom(b, gpa, access, 4, p, pte, EptEntry.RwxMask);
                        slots[j & Mask] = null;
                    }
                }

                // Walk j: PDPTE.
                j = i + (2 * D);
                if (unchecked((uint)j < (uint)n))
                {
                    ulong* p = slots[j & Mask];
                    if (p != null)
                    {
                        ulong gpa = Unsafe.Add(ref g0, j);
                        ulong pte = Volatile.Read(ref *p);
                        ulong next = pte & EptEntry.MfnMask;
                        if ((pte & pointerMask) == 1 && next < limit)
                        {
                            ulong* q = (ulong*)(b + next) + ((gpa >> 21) & 511);
                            Prefetch(q);
                            slots[j & Mask] = q;
                            rights[j & Mask] &= pte;
                        }
                        else
                        {
                            Unsafe.Add(ref r0, j) = WalkFrom(b, gpa, access, 3, p, pte, rights[j & Mask] & EptEntry.RwxMask);
                            slots[j & Mask] = null;
                        }
                    }
                }

                // Walk j: PDE.
                j = i + D;
                if (unchecked((uint)j < (uint)n))
                {
                    ulong* p = slots[j & Mask];
                    if (p != null)
                    {
                        ulong gpa = Unsafe.Add(ref g0, j);
                        ulong pte = Volatile.Read(ref *p);
                        ulong next = pte & EptEntry.MfnMask;
                        if ((pte & pointerMask) == 1 && next < limit)
                        {
                            ulong* q = (ulong*)(b + next) + ((gpa >> 12) & 511);
                            Prefetch(q);
                            slots[j & Mask] = q;
                            rights[j & Mask] &= pte;
                        }
                        else
                        {
                            Unsafe.Add(ref r0, j) = WalkFrom(b, gpa, access, 2, p, pte, rights[j & Mask] & EptEntry.RwxMask);
                            slots[j & Mask] = null;
                        }
                    }
                }

                // Finish walk i: PTE.
                if (i >= 0)
                {
                    ulong* p = slots[i & Mask];
                    if (p != null)
                    {
                        ulong gpa = Unsafe.Add(ref g0, i);
                        ulong pte = Volatile.Read(ref *p);
                        ulong r = rights[i & Mask] & pte;
                        if ((pte & leafMask) == 1
                            && ((0x8Cu >> (int)((pte >> EptEntry.MemoryTypeShift) & 7)) & 1) == 0
                            && (access & ~(uint)(r & EptEntry.RwxMask)) == 0)
                        {
                            Unsafe.Add(ref r0, i) = new EptTranslation(EptStatus.Ok, (pte & EptEntry.MfnMask) | (gpa & EptEntry.PageMask), 1, 0);
                        }
                        else
                        {
                            Unsafe.Add(ref r0, i) = WalkFrom(b, gpa, access, 1, p, pte, rights[i & Mask] & EptEntry.RwxMask);
                        }
                    }
                }
            }
        }

        // AVX2: eight walks (two vectors of four) advance level by level; each level is one
        // masked gather per vector, so the eight loads of a level are in flight together. A lane
        // leaves the vector as soon as its entry is anything but a well-formed pointer (or, at
        // the PTE, a plain readable leaf that grants the access): it is finished by WalkFrom from
        // the entry the gather read, and the mask keeps later gathers from touching its slots.
        private void WalkGathered(byte* b, ReadOnlySpan<ulong> gpas, uint access, Span<EptTranslation> results)
        {
            if (!Avx2.IsSupported)
            {
                WalkPipelined(b, gpas, access, results);
                return;
            }

            int n = gpas.Length;
            ref ulong g0 = ref MemoryMarshal.GetReference(gpas);
            ref EptTranslation r0 = ref MemoryMarshal.GetReference(results);
            int i = 0;
            for (; i + (4 * GatherVectors) <= n; i += 4 * GatherVectors)
            {
                WalkGathered8(b, ref Unsafe.Add(ref g0, i), access, ref Unsafe.Add(ref r0, i));
            }

            for (; i < n; i++)
            {
                Unsafe.Add(ref r0, i) = Walk(b, Unsafe.Add(ref g0, i), access);
            }
        }

        internal const int GatherVectors = 4;      // walks per group = 4 x GatherVectors

        private void WalkGathered8(byte* b, ref ulong gpas, uint access, ref EptTranslation results)
        {
            const int V = GatherVectors;
            Vector256<ulong>* gpa = stackalloc Vector256<ulong>[V];
            Vector256<ulong>* off = stackalloc Vector256<ulong>[V];
            Vector256<ulong>* live = stackalloc Vector256<ulong>[V];
            Vector256<ulong>* rights = stackalloc Vector256<ulong>[V];
            Vector256<ulong>* pte = stackalloc Vector256<ulong>[V];
            Vector256<ulong> pointerMask = Vector256.Create(_fastPointerMask);
            Vector256<ulong> limit = Vector256.Create(_tableLimit);
            Vector256<ulong> mfnMask = Vector256.Create(EptEntry.MfnMask);
            Vector256<ulong> one = Vector256<ulong>.One;
            Vector256<ulong> nine = Vector256.Create(511UL);
            Vector256<ulong> root = Vector256.Create(_rootMfn << EptEntry.PageBits);

            for (int v = 0; v < V; v++)
            {
                gpa[v] = Vector256.LoadUnsafe(ref gpas, (nuint)(4 * v));
                off[v] = root + (((gpa[v] >> 39) & nine) << 3);
                live[v] = Vector256<ulong>.AllBitsSet;
                rights[v] = Vector256<ulong>.AllBitsSet;
            }

            for (int level = 4; level > 1; level--)
            {
                for (int v = 0; v < V; v++)
                {
                    pte[v] = Avx2.GatherMaskVector256(Vector256<ulong>.Zero, (ulong*)b, off[v].AsInt64(), live[v], 1);
                }

                int shift = 9 * (level - 2) + 12;
                Vector256<ulong> anyLive = Vector256<ulong>.Zero;
                for (int v = 0; v < V; v++)
                {
                    Vector256<ulong> next = pte[v] & mfnMask;
                    // Table HPAs are below 2^52, so the signed compare is an unsigned one here.
                    Vector256<ulong> ok = Vector256.Equals(pte[v] & pointerMask, one) & Avx2.CompareGreaterThan(limit.AsInt64(), next.AsInt64()).AsUInt64();
                    Vector256<ulong> leave = Vector256.AndNot(live[v], ok);
                    if (leave != Vector256<ulong>.Zero)
                    {
                        FinishLanes(b, leave, gpa[v], off[v], pte[v], rights[v], level, access, ref Unsafe.Add(ref results, 4 * v));
                        live[v] &= ok;
                    }

                    anyLive |= live[v];
                    rights[v] &= pte[v];
                    off[v] = next + (((gpa[v] >> shift) & nine) << 3);
                }

                if (anyLive == Vector256<ulong>.Zero)
                {
                    return;
                }
            }

            // PTEs: a plain readable leaf with a defined memory type that grants the access.
            Vector256<ulong> leafMask = Vector256.Create(_fastLeafMask);
            Vector256<ulong> accessV = Vector256.Create((ulong)access);
            Vector256<ulong> badTypes = Vector256.Create(0x8CUL);
            Vector256<ulong> seven = Vector256.Create(7UL);
            Vector256<ulong> offset = Vector256.Create(EptEntry.PageMask);
            for (int v = 0; v < V; v++)
            {
                pte[v] = Avx2.GatherMaskVector256(Vector256<ulong>.Zero, (ulong*)b, off[v].AsInt64(), live[v], 1);
            }

            for (int v = 0; v < V; v++)
            {
                Vector256<ulong> good = live[v] & LeafOk(pte[v], rights[v], leafMask, accessV, badTypes, seven, one);
                StoreOk(good, (pte[v] & mfnMask) | (gpa[v] & offset), ref Unsafe.Add(ref results, 4 * v));
                Vector256<ulong> rest = Vector256.AndNot(live[v], good);
                if (rest != Vector256<ulong>.Zero)
                {
                    FinishLanes(b, rest, gpa[v], off[v], pte[v], rights[v], 1, access, ref Unsafe.Add(ref results, 4 * v));
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<ulong> LeafOk(Vector256<ulong> pte, Vector256<ulong> rights, Vector256<ulong> leafMask, Vector256<ulong> access,
                                              Vector256<ulong> badTypes, Vector256<ulong> seven, Vector256<ulong> one)
        {
            Vector256<ulong> plain = Vector256.Equals(pte & leafMask, one);
            Vector256<ulong> type = Avx2.ShiftRightLogicalVariable(badTypes, (pte >> EptEntry.MemoryTypeShift) & seven) & one;
            Vector256<ulong> missing = Vector256.AndNot(access, rights & pte) & seven;
            return plain & Vector256.Equals(type | missing, Vector256<ulong>.Zero);
        }

        // The second 8 bytes of an Ok level-1 EptTranslation (qualification, status, level), taken
        // from a real instance so the vector store below cannot drift from the struct's layout.
        private static readonly ulong s_okLeafTail = OkLeafTail();

        private static ulong OkLeafTail()
        {
            var t = new EptTranslation(EptStatus.Ok, 0, 1, 0);
            Debug.Assert(Unsafe.SizeOf<EptTranslation>() == 16);
            return Unsafe.As<byte, ulong>(ref Unsafe.Add(ref Unsafe.As<EptTranslation, byte>(ref t), 8));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreOk(Vector256<ulong> lanes, Vector256<ulong> hpa, ref EptTranslation results)
        {
            uint bits = lanes.ExtractMostSignificantBits();
            if (bits == 0xF)
            {
                // Four results in two 32-byte stores: [hpa0, tail, hpa1, tail] [hpa2, tail, hpa3, tail].
                Vector256<ulong> tail = Vector256.Create(s_okLeafTail);
                Vector256<ulong> even = Avx2.UnpackLow(hpa, tail);      // hpa0, tail, hpa2, tail
                Vector256<ulong> odd = Avx2.UnpackHigh(hpa, tail);      // hpa1, tail, hpa3, tail
                ref byte dst = ref Unsafe.As<EptTranslation, byte>(ref results);
                Unsafe.WriteUnaligned(ref dst, Avx2.Permute2x128(even, odd, 0x20));
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, 32), Avx2.Permute2x128(even, odd, 0x31));
                return;
            }

            while (bits != 0)
            {
                int lane = BitOperations.TrailingZeroCount(bits);
                Unsafe.Add(ref results, lane) = new EptTranslation(EptStatus.Ok, hpa.GetElement(lane), 1, 0);
                bits &= bits - 1;
            }
        }

        // Finishes the lanes in `lanes` with the general walk, from the entry each already read.
        private void FinishLanes(byte* b, Vector256<ulong> lanes, Vector256<ulong> gpa, Vector256<ulong> off, Vector256<ulong> pte,
                                 Vector256<ulong> rights, int level, uint access, ref EptTranslation results)
        {
            uint bits = lanes.ExtractMostSignificantBits();
            while (bits != 0)
            {
                int lane = BitOperations.TrailingZeroCount(bits);
                Unsafe.Add(ref results, lane) = WalkFrom(b, gpa.GetElement(lane), access, level, (ulong*)(b + off.GetElement(lane)),
                                                         pte.GetElement(lane), rights.GetElement(lane) & EptEntry.RwxMask);
                bits &= bits - 1;
            }
        }
    }
}

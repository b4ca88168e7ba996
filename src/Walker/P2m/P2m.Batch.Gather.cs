// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastEpt
{
    public sealed unsafe partial class P2m
    {
        // AVX2: groups of GatherGroupWalks walks (GatherVectors vectors of four) advance level by
        // level; each level is one masked gather per vector, so all the loads of a level are in
        // flight together. A lane leaves the vector as soon as its entry is anything but a
        // well-formed pointer (or, at the PTE, a plain readable leaf that grants the access): it
        // is finished by WalkFrom from the entry the gather read, and the mask keeps later
        // gathers from touching its slots.
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
            for (; i + GatherGroupWalks <= n; i += GatherGroupWalks)
            {
                WalkGatheredGroup(b, ref Unsafe.Add(ref g0, i), access, ref Unsafe.Add(ref r0, i));
            }

            for (; i < n; i++)
            {
                Unsafe.Add(ref r0, i) = Walk(b, Unsafe.Add(ref g0, i), access);
            }
        }

        internal const int GatherVectors = 4;      // vectors of four walks in one group
        internal const int GatherGroupWalks = 4 * GatherVectors;

        // One group of GatherGroupWalks (16) walks, from the addresses at `gpas` to the results at `results`.
        private void WalkGatheredGroup(byte* b, ref ulong gpas, uint access, ref EptTranslation results)
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

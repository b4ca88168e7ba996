// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>
    /// Single-address lookups over the default guest (4 GiB mapped with 4 KiB pages), one
    /// operation per random GPA, against a plain chain of dependent loads of the same depth.
    /// </summary>
    [MemoryDiagnoser]
    [BenchmarkCategory("Translate")]
    public unsafe class Perf_Translate
    {
        private const int GpaCount = 4096;
        private const int GpaSeed = 20260401;
        private const int ChainSeed = 20260402;

        // One ulong per leaf entry of the default guest: 1,048,576 entries, 8 MiB, the same
        // footprint as its 2,048 leaf tables.
        private const int ChainLength = (int)DefaultGuest.GuestFrames;

        private DefaultGuest? _guest;
        private P2m _p2m = null!;
        private ulong[] _gpas = [];
        private ulong* _chain;

        /// <summary>Builds the default guest, the GPA set and the dependent-load chain.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = DefaultGuest.Create();
            _p2m = _guest.P2m;
            _gpas = DefaultGuest.RandomGpas(GpaCount, GpaSeed);
            _guest.Verify(_gpas);

            // Native and page-aligned, like the EPT tables themselves.
            _chain = (ulong*)NativeMemory.AlignedAlloc((nuint)ChainLength * sizeof(ulong), DefaultGuest.PageSize);
            BuildCyclicPermutation(new Span<ulong>(_chain, ChainLength), ChainSeed);
        }

        /// <summary>Releases the guest and the chain.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _guest?.Dispose();
            _guest = null;
            _p2m = null!;
            NativeMemory.AlignedFree(_chain);
            _chain = null;
        }

        /// <summary>A full 4-level EPT walk per GPA: <see cref="P2m.Translate"/> for a read.</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = GpaCount)]
        public ulong Translate()
        {
            P2m p2m = _p2m;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                sum += p2m.Translate(gpas[i], AccessKind.Read).Hpa;
            }

            // Returned so the JIT cannot drop the walks as dead code.
            return sum;
        }

        /// <summary>The Xen-style lookup of each GPA's frame: <see cref="P2m.GetEntry"/>.</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong GetEntry()
        {
            P2m p2m = _p2m;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                sum += p2m.GetEntry(gpas[i] >> DefaultGuest.PageBits).Mfn;
            }

            return sum;
        }

        /// <summary>
        /// The plain dependent-load baseline: four loads per GPA, each address taken from the
        /// previous load, over 8 MiB of native memory. This is the floor a 4-level walk is
        /// quoted against.
        /// </summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong DependentLoadBaseline()
        {
            ulong* chain = _chain;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                // Each GPA starts its own chain at its GFN, so, as with Translate, consecutive
                // operations are independent and only the four loads within one are serial.
                ulong index = gpas[i] >> DefaultGuest.PageBits;
                index = chain[index];
                index = chain[index];
                index = chain[index];
                index = chain[index];
                sum += index;
            }

            return sum;
        }

        // Sattolo's algorithm: a uniformly random permutation that is one single cycle, so
        // following chain[i] never falls into a short loop the caches could hold.
        private static void BuildCyclicPermutation(Span<ulong> chain, int seed)
        {
            for (int i = 0; i < chain.Length; i++)
            {
                chain[i] = (ulong)i;
            }

            Random random = new Random(seed);
            for (int i = chain.Length - 1; i > 0; i--)
            {
                int j = random.Next(i);
                (chain[i], chain[j]) = (chain[j], chain[i]);
            }
        }
    }
}

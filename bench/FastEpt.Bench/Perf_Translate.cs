// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using FastEpt.Interop;

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
        private NativeWalker _native = null!;
        private ulong[] _gpas = [];
        private EptTranslation[] _results = [];
        private ulong* _chain;

        /// <summary>Builds the default guest, the GPA set and the dependent-load chain.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = DefaultGuest.Create();
            _p2m = _guest.P2m;
            _native = new NativeWalker(_p2m);
            _gpas = DefaultGuest.RandomGpas(GpaCount, GpaSeed);
            _results = new EptTranslation[GpaCount];
            _guest.Verify(_gpas);
            VerifyNative();

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
            _native = null!;
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

        /// <summary>
        /// The native twin (libfastept) walking the same tables for the same GPAs, one P/Invoke
        /// call per GPA (<see cref="NativeWalker.Translate"/>): the managed walker's yardstick.
        /// </summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong NativeTranslate()
        {
            NativeWalker native = _native;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                sum += native.Translate(gpas[i], AccessKind.Read).Hpa;
            }

            return sum;
        }

        /// <summary>All GPAs in one managed call: <see cref="P2m.TranslateBatch"/>.</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong TranslateBatch()
        {
            _p2m.TranslateBatch(_gpas, AccessKind.Read, _results);
            return _results[^1].Hpa;
        }

        /// <summary>All GPAs in one native call: <see cref="NativeWalker.TranslateBatch"/>.</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong NativeTranslateBatch()
        {
            _native.TranslateBatch(_gpas, AccessKind.Read, _results);
            return _results[^1].Hpa;
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
            // The floor for any walker: the same four dependent loads over the SAME tables,
            // with no checks at all (no present/reserved/rights tests, no bounds, no epoch).
            byte* b = _guest!.Memory.Base;
            ulong root = _p2m.RootMfn;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                ulong gpa = gpas[i];
                ulong t = root;
                t = (((ulong*)(b + (t << 12)))[(gpa >> 39) & 511] & 0x000F_FFFF_FFFF_F000) >> 12;
                t = (((ulong*)(b + (t << 12)))[(gpa >> 30) & 511] & 0x000F_FFFF_FFFF_F000) >> 12;
                t = (((ulong*)(b + (t << 12)))[(gpa >> 21) & 511] & 0x000F_FFFF_FFFF_F000) >> 12;
                sum += ((ulong*)(b + (t << 12)))[(gpa >> 12) & 511] & 0x000F_FFFF_FFFF_F000;
            }

            return sum;
        }

        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong RandomChainBaseline()
        {
            ulong* chain = _chain;
            ulong[] gpas = _gpas;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                // Four dependent loads, each a random line of an 8 MiB array (the leaf tables'
                // size): harsher than a walk, whose upper levels stay cached.
                ulong index = gpas[i] >> DefaultGuest.PageBits;
                index = chain[index];
                index = chain[index];
                index = chain[index];
                index = chain[index];
                sum += index;
            }

            return sum;
        }

        // The native numbers mean nothing unless the native walker gives the managed answers.
        private void VerifyNative()
        {
            for (int i = 0; i < _gpas.Length; i++)
            {
                EptTranslation managed = _p2m.Translate(_gpas[i], AccessKind.Read);
                EptTranslation native = _native.Translate(_gpas[i], AccessKind.Read);
                if (managed != native)
                {
                    throw new InvalidOperationException($"Native and managed walks differ for GPA 0x{_gpas[i]:X}: {native} vs {managed}.");
                }
            }
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

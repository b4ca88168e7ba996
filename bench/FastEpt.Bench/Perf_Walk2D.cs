// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>
    /// Two-dimensional walks: random guest linear addresses translated through the guest's own
    /// 4-level page tables (4K and 2M guest pages), every guest paging-structure read and the
    /// final access translated by the EPT (4K stage-2 pages), against the one-dimensional EPT
    /// walk of the very same final GPAs. In ns per walk.
    /// </summary>
    /// <remarks>
    /// The guest is <see cref="Walk2DGuest"/>: 256 MiB of guest RAM in 4K EPT pages, and
    /// 127 linear 2 MiB regions, half (63) mapped with 4K guest pages and the rest with 2M ones.
    /// Each invocation walks the next <see cref="Ops"/> addresses of a pool of
    /// <see cref="PoolSize"/>; <see cref="Walk1D_Scalar"/> walks the GPAs the 2D walks of the same
    /// window end at, so every contender touches the same final pages. Setup checks every
    /// address of the pool (GPA, level and HPA against the layout, the 2D HPA against
    /// <see cref="P2m.Translate"/> of its GPA, the batch against the single walks) and that the
    /// walks write nothing to the guest tables before anything is timed.
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Walk2D")]
    public class Perf_Walk2D
    {
        /// <summary>Addresses per benchmark invocation.</summary>
        public const int Ops = 4096;

        /// <summary>Addresses in the pool the invocations step through (a multiple of <see cref="Ops"/>).</summary>
        public const int PoolSize = 1 << 16;

        private const int GlaSeed = 20260501;
        private const int LayoutSeed = 20260502;

        private Walk2DGuest? _guest;
        private P2m _p2m = null!;
        private Vcpu _vcpu = null!;
        private ulong[] _glas = [];
        private ulong[] _gpas = [];
        private GuestTranslation[] _results = [];
        private int _cursor;

        /// <summary>The guest, once <see cref="Setup"/> has run.</summary>
        public Walk2DGuest Guest => _guest ?? throw new InvalidOperationException("Setup has not run.");

        /// <summary>Builds the guest and the address pools, and checks every address.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = new Walk2DGuest(LayoutSeed);
            _p2m = _guest.P2m;
            _vcpu = _guest.Vcpu;
            _glas = Walk2DGuest.RandomGlas(PoolSize, GlaSeed);
            _gpas = _guest.Verify(_glas);
            _results = new GuestTranslation[Ops];
            _cursor = 0;
            Console.WriteLine($"// Walk2DGuest: built in {_guest.BuildTime.TotalSeconds:F2} s; {_guest.Regions4K} linear regions in 4K pages, "
                + $"{_guest.Regions2M} in 2M pages; {PoolSize} addresses checked");
        }

        /// <summary>Releases the guest.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _guest?.Dispose();
            _guest = null;
            _p2m = null!;
            _vcpu = null!;
        }

        /// <summary>The 1D baseline: <see cref="P2m.Translate"/> of each final GPA (a read).</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
        public ulong Walk1D_Scalar()
        {
            ReadOnlySpan<ulong> gpas = new ReadOnlySpan<ulong>(_gpas, NextWindow(), Ops);
            P2m p2m = _p2m;
            ulong sum = 0;
            foreach (ulong gpa in gpas)
            {
                sum += p2m.Translate(gpa, AccessKind.Read).Hpa;
            }

            return sum;
        }

        /// <summary>The 2D walk: <see cref="Vcpu.TranslateLinear"/> of each GLA (a supervisor read).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Walk2D_Scalar()
        {
            ReadOnlySpan<ulong> glas = new ReadOnlySpan<ulong>(_glas, NextWindow(), Ops);
            Vcpu vcpu = _vcpu;
            ulong sum = 0;
            foreach (ulong gla in glas)
            {
                sum += vcpu.TranslateLinear(gla, Walk2DGuest.Pfec).Hpa;
            }

            return sum;
        }

        /// <summary>The batched 2D walk: one <see cref="Vcpu.TranslateLinearBatch"/> call over the window.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Walk2D_Batch()
        {
            _vcpu.TranslateLinearBatch(new ReadOnlySpan<ulong>(_glas, NextWindow(), Ops), Walk2DGuest.Pfec, _results);
            return _results[Ops - 1].Hpa;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private int NextWindow()
        {
            int start = _cursor;
            _cursor = (start + Ops) & (PoolSize - 1);
            return start;
        }
    }
}

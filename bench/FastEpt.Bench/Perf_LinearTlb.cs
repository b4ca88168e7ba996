// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>
    /// The combined TLB (<see cref="LinearTlb"/>) of <see cref="EmulationGuest"/>'s vCPU: its hit
    /// path against an array-index lookup over the very same addresses, and an emulated 8-byte RAM
    /// read whose page hits against the 2D walk (<see cref="Vcpu.TranslateLinear"/>) of the same
    /// addresses. In ns per address.
    /// </summary>
    /// <remarks>
    /// The pool is <see cref="PoolSize"/> random 8-byte-aligned addresses over the guest's
    /// <see cref="EmulationGuest.RegionPages"/> RAM pages, which are consecutive linear pages: as
    /// many as the TLB has entries, each in its own slot, so every lookup hits once warmed (setup
    /// checks it, and each timed method records a miss). <see cref="ArrayIndex"/> reads
    /// <c>table[(gla &gt;&gt; 12) &amp; mask] | (gla &amp; 0xFFF)</c> over an array of the TLB's size, the
    /// pattern of the TLB hit without its checks.
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Tlb")]
    public class Perf_LinearTlb
    {
        /// <summary>Addresses per benchmark invocation.</summary>
        public const int Ops = 1024;

        /// <summary>Addresses in the pool the invocations step through (a multiple of <see cref="Ops"/>).</summary>
        public const int PoolSize = 1 << 14;

        private const int LayoutSeed = 20260601, PoolSeed = 20260611;
        private const PageFaultErrorCode Pfec = EmulationGuest.Pfec;

        private EmulationGuest? _guest;
        private Vcpu _vcpu = null!;
        private LinearTlb _tlb = null!;
        private HvmEmulation _emulation = null!;
        private ulong[] _pool = [];
        private ulong[] _table = [];
        private int _cursor;
        private bool _missed;

        /// <summary>Builds the guest and the pool, warms the TLB and checks every hit against the walk.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = new EmulationGuest(LayoutSeed);
            _vcpu = _guest.Vcpu;
            _tlb = _vcpu.Tlb;
            _emulation = new HvmEmulation(_vcpu);
            _pool = EmulationGuest.RandomGlas(PoolSize, mmio: false, crossing: false, PoolSeed);
            if (EmulationGuest.RegionPages > _tlb.Capacity)
            {
                throw new InvalidOperationException("Perf_LinearTlb: the RAM region is larger than the TLB.");
            }

            _table = new ulong[_tlb.Capacity];
            Span<byte> buffer = stackalloc byte[8];
            foreach (ulong gla in _pool)
            {
                _table[(gla >> 12) & (ulong)(_tlb.Capacity - 1)] = gla & ~0xFFFUL;
                if (_emulation.LinearRead(gla, buffer, Pfec) != EmulationResult.Okay)
                {
                    throw new InvalidOperationException($"Perf_LinearTlb: the read at 0x{gla:X} failed.");
                }

                _emulation.Complete();
            }

            foreach (ulong gla in _pool)
            {
                GuestTranslation walk = _vcpu.TranslateLinear(gla, Pfec);
                if (!_tlb.TryLookup(gla, Pfec, out ulong hpa) || walk.Status != GuestStatus.Ok || hpa != walk.Hpa)
                {
                    throw new InvalidOperationException($"Perf_LinearTlb: 0x{gla:X} is not a hit matching the walk.");
                }
            }

            _cursor = 0;
        }

        /// <summary>Releases the guest.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _guest?.Dispose();
            _guest = null;
        }

        /// <summary>Throws when a timed lookup missed (the hit rows would time something else).</summary>
        /// <exception cref="InvalidOperationException">A lookup missed or an emulated read failed.</exception>
        public void ThrowIfAnyMissed()
        {
            if (_missed)
            {
                throw new InvalidOperationException("Perf_LinearTlb: a timed lookup missed or a read failed.");
            }
        }

        /// <summary>The 2D walk of each address (a supervisor read).</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
        public ulong TranslateLinear8()
        {
            ReadOnlySpan<ulong> glas = NextWindow();
            Vcpu vcpu = _vcpu;
            ulong sum = 0;
            foreach (ulong gla in glas)
            {
                sum += vcpu.TranslateLinear(gla, Pfec).Hpa;
            }

            return sum;
        }

        /// <summary>The combined TLB's hit path (<see cref="LinearTlb.TryLookup"/>) for each address.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong LinearTlbHit()
        {
            ReadOnlySpan<ulong> glas = NextWindow();
            LinearTlb tlb = _tlb;
            ulong sum = 0;
            bool missed = false;
            foreach (ulong gla in glas)
            {
                // The caller's usual shape: the hit inline, a miss to the slow path (here: recorded).
                if (!tlb.TryLookup(gla, Pfec, out ulong hpa))
                {
                    missed = true;
                }

                sum += hpa;
            }

            _missed |= missed;
            return sum;
        }

        /// <summary>The floor: an array-index lookup of each address over an array of the TLB's size.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong ArrayIndex()
        {
            ReadOnlySpan<ulong> glas = NextWindow();
            ulong[] table = _table;
            ulong sum = 0;
            foreach (ulong gla in glas)
            {
                sum += table[(int)(gla >> 12) & (table.Length - 1)] | (gla & 0xFFF);
            }

            return sum;
        }

        /// <summary>An emulated 8-byte RAM read (LinearRead, then Complete) whose page hits the TLB.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Ram8_ReadHit()
        {
            ReadOnlySpan<ulong> glas = NextWindow();
            HvmEmulation emulation = _emulation;
            Span<byte> buffer = stackalloc byte[8];
            ulong sum = 0;
            bool ok = true;
            foreach (ulong gla in glas)
            {
                ok &= emulation.LinearRead(gla, buffer, Pfec) == EmulationResult.Okay;
                emulation.Complete();
                sum += BinaryPrimitives.ReadUInt64LittleEndian(buffer);
            }

            _missed |= !ok;
            return sum;
        }

        private ReadOnlySpan<ulong> NextWindow()
        {
            int start = _cursor;
            _cursor = (start + Ops) & (PoolSize - 1);
            return new ReadOnlySpan<ulong>(_pool, start, Ops);
        }
    }
}

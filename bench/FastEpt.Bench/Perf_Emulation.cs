// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>
    /// Emulated 8-byte guest linear accesses through <see cref="HvmEmulation"/>, each one a whole
    /// emulated instruction (the access, then <see cref="HvmEmulation.Complete"/>): to an MMIO
    /// device, within one page and crossing into the next (the device sees 4 + 4 bytes), and to
    /// guest RAM through the same API, against <see cref="Vcpu.TranslateLinear"/> of the RAM
    /// addresses, the stage-1 and stage-2 walk alone. In ns per access.
    /// </summary>
    /// <remarks>
    /// The guest is <see cref="EmulationGuest"/>: 4K guest pages over 4K EPT pages, so each page
    /// of an access is one 2D walk of 4 guest entries and 5 EPT walks (an MMIO page's last EPT
    /// walk ends in the violation that routes it to the device), and a
    /// <see cref="MemoryMmioDevice"/> whose registers are a byte array. Each invocation makes
    /// the next <see cref="Ops"/> accesses of a pool of <see cref="PoolSize"/> random addresses,
    /// one pool per kind (RAM or MMIO, one page or crossing at offset 0xFFC), shared by its read
    /// and write. Setup checks every address of every pool through the emulator against the
    /// layout and the device (values, device access sizes, results, no A/D writes, no leaked
    /// page references), then runs every benchmark method over its whole pool and checks that
    /// every access returned <see cref="EmulationResult.Okay"/>, before anything is timed.
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Emulation")]
    public class Perf_Emulation
    {
        /// <summary>Accesses (emulated instructions) per benchmark invocation.</summary>
        public const int Ops = 1024;

        /// <summary>Addresses in each pool the invocations step through (a multiple of <see cref="Ops"/>).</summary>
        public const int PoolSize = 1 << 14;

        private const int LayoutSeed = 20260601;
        private const int RamSeed = 20260602, RamCrossingSeed = 20260603, MmioSeed = 20260604, MmioCrossingSeed = 20260605;
        private const int VerifySeed = 20260606;
        private const PageFaultErrorCode Pfec = EmulationGuest.Pfec;

        private EmulationGuest? _guest;
        private HvmEmulation _emulation = null!;
        private Vcpu _vcpu = null!;
        private ulong[] _ram = [];
        private ulong[] _ramCrossing = [];
        private ulong[] _mmio = [];
        private ulong[] _mmioCrossing = [];
        private int _cursor;
        private uint _status;

        /// <summary>The guest, once <see cref="Setup"/> has run.</summary>
        public EmulationGuest Guest => _guest ?? throw new InvalidOperationException("Setup has not run.");

        /// <summary>Builds the guest and the address pools, and checks every address and every benchmark method.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = new EmulationGuest(LayoutSeed);
            _vcpu = _guest.Vcpu;
            _emulation = new HvmEmulation(_vcpu);
            _ram = EmulationGuest.RandomGlas(PoolSize, mmio: false, crossing: false, RamSeed);
            _ramCrossing = EmulationGuest.RandomGlas(PoolSize, mmio: false, crossing: true, RamCrossingSeed);
            _mmio = EmulationGuest.RandomGlas(PoolSize, mmio: true, crossing: false, MmioSeed);
            _mmioCrossing = EmulationGuest.RandomGlas(PoolSize, mmio: true, crossing: true, MmioCrossingSeed);
            foreach (ulong[] pool in new[] { _ram, _ramCrossing, _mmio, _mmioCrossing })
            {
                _guest.Verify(_emulation, pool, VerifySeed);
            }

            _cursor = 0;
            _status = 0;
            foreach (Func<ulong> method in new Func<ulong>[]
            {
                TranslateLinear8, Ram8_Read, Ram8_Write, Ram8_Read_Crossing,
                Mmio8_Read, Mmio8_Write, Mmio8_Read_Crossing, Mmio8_Write_Crossing,
            })
            {
                for (int i = 0; i < PoolSize / Ops; i++)
                {
                    method();
                }
            }

            ThrowIfAnyFailed();
            Console.WriteLine($"// EmulationGuest: built in {_guest.BuildTime.TotalSeconds:F2} s; {EmulationGuest.RegionPages} RAM and "
                + $"{EmulationGuest.MmioPages} MMIO pages in 4K guest pages; 4 x {PoolSize} addresses checked");
        }

        /// <summary>Releases the guest.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _guest?.Dispose();
            _guest = null;
            _emulation = null!;
            _vcpu = null!;
        }

        /// <summary>
        /// Throws when any access a benchmark method made since <see cref="Setup"/> returned
        /// something other than <see cref="EmulationResult.Okay"/> (the methods OR their results
        /// together and keep them; <see cref="TranslateLinear8"/> records a status other than Ok).
        /// </summary>
        /// <exception cref="InvalidOperationException">An access did not complete.</exception>
        public void ThrowIfAnyFailed()
        {
            if (_status != 0)
            {
                throw new InvalidOperationException($"Perf_Emulation: an access returned a result other than Okay (results ORed: {_status}).");
            }
        }

        /// <summary>The baseline: <see cref="Vcpu.TranslateLinear"/> (a supervisor read) of each <see cref="Ram8_Read"/> address, the walk alone.</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
        public ulong TranslateLinear8()
        {
            ReadOnlySpan<ulong> glas = new ReadOnlySpan<ulong>(_ram, NextWindow(), Ops);
            Vcpu vcpu = _vcpu;
            ulong sum = 0;
            uint status = 0;
            foreach (ulong gla in glas)
            {
                GuestTranslation t = vcpu.TranslateLinear(gla, Pfec);
                status |= (uint)t.Status;
                sum += t.Hpa;
            }

            _status |= status;
            return sum;
        }

        /// <summary>An emulated 8-byte read of guest RAM, within one page.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Ram8_Read() => Read(_ram);

        /// <summary>An emulated 8-byte write of guest RAM, within one page.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Ram8_Write() => Write(_ram);

        /// <summary>An emulated 8-byte read of guest RAM at page offset 0xFFC: 4 bytes from each of two pages.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Ram8_Read_Crossing() => Read(_ramCrossing);

        /// <summary>An emulated 8-byte MMIO read within one page: one 8-byte device read.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Mmio8_Read() => Read(_mmio);

        /// <summary>An emulated 8-byte MMIO write within one page: one 8-byte device write.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Mmio8_Write() => Write(_mmio);

        /// <summary>An emulated 8-byte MMIO read at page offset 0xFFC: two 4-byte device reads, one per page.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Mmio8_Read_Crossing() => Read(_mmioCrossing);

        /// <summary>An emulated 8-byte MMIO write at page offset 0xFFC: two 4-byte device writes, one per page.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Mmio8_Write_Crossing() => Write(_mmioCrossing);

        // One emulated instruction per address of the next window: LinearRead, then Complete.
        private ulong Read(ulong[] pool)
        {
            ReadOnlySpan<ulong> glas = new ReadOnlySpan<ulong>(pool, NextWindow(), Ops);
            HvmEmulation emulation = _emulation;
            Span<byte> buffer = stackalloc byte[8];
            ulong sum = 0;
            uint status = 0;
            foreach (ulong gla in glas)
            {
                status |= (uint)emulation.LinearRead(gla, buffer, Pfec);
                emulation.Complete();
                sum += BinaryPrimitives.ReadUInt64LittleEndian(buffer);
            }

            _status |= status;
            return sum;
        }

        // One emulated instruction per address of the next window: LinearWrite, then Complete.
        private ulong Write(ulong[] pool)
        {
            ReadOnlySpan<ulong> glas = new ReadOnlySpan<ulong>(pool, NextWindow(), Ops);
            HvmEmulation emulation = _emulation;
            Span<byte> buffer = stackalloc byte[8];
            ulong sum = 0;
            uint status = 0;
            foreach (ulong gla in glas)
            {
                ulong value = gla * 0x9E37_79B9_7F4A_7C15UL;
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
                status |= (uint)emulation.LinearWrite(gla, buffer, Pfec);
                emulation.Complete();
                sum += value;
            }

            _status |= status;
            return sum;
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

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using FastEpt.Interop;

namespace FastEpt.Bench
{
    /// <summary>
    /// The translation-throughput suite: every way FastEpt translates a GPA, and the machine's
    /// own limits over the same table memory, side by side per scenario, in ns per GPA.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Each invocation translates the next <see cref="Ops"/> GPAs of a large pool (4 Mi
    /// addresses, 32 MiB), so successive invocations touch fresh table lines instead of the
    /// same few thousand lines, which the caches would keep; every method walks the same
    /// windows. Setup checks the scenario's tables against the intended mapping, and every
    /// contender's answers against <see cref="P2m.Translate"/>, before anything is timed.
    /// </para>
    /// <para>
    /// <see cref="TlbHit"/> and <see cref="ArrayIndex"/> use their own pool: GPAs over as many
    /// pages as the TLB has entries, all of them hits once warmed (checked in setup).
    /// <see cref="LeafLoads"/> and <see cref="DependentChase"/> (Perf_TranslateSuite.Native.cs)
    /// load the very leaf slot each GPA's walk ends at, from its precomputed address: one
    /// random 8-byte load per GPA, all independent (the throughput floor: a walk needs at least
    /// that miss) or each address depending on the previous load (latency); the C loops there
    /// time the floor and the walks from C.
    /// </para>
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Translate")]
    public unsafe partial class Perf_TranslateSuite
    {
        /// <summary>GPAs per benchmark invocation.</summary>
        public const int Ops = 4096;

        /// <summary>GPAs in the pool the invocations step through (a multiple of <see cref="Ops"/>).</summary>
        public const int PoolSize = 1 << 22;

        /// <summary>Software-TLB entries (<see cref="SoftTlb"/>'s default).</summary>
        public const int TlbEntries = 256;

        private const int TlbPoolSize = 1 << 16;
        private const int GpaSeed = 20260401;
        private const int TlbSeed = 20260402;
        private const int VerifyCount = 1 << 16;

        private static readonly Dictionary<(Footprint, Mapping, GpaPattern), ulong[]> Pools = new();

        private ScenarioGuest _guest = null!;
        private P2m _p2m = null!;
        private NativeWalker _native = null!;
        private SoftTlb _tlb = null!;
        private ulong[] _pool = [];
        private ulong[] _tlbPool = [];
        private ulong[] _tlbArray = [];
        private EptTranslation[] _results = [];
        private ulong _zero = 0;    // always 0; the JIT cannot know, so v & _zero keeps a dependency
        private int _cursor;
        private int _tlbCursor;

        /// <summary>Set by Program for the quick run: fewer scenarios.</summary>
        public static bool QuickScenarios { get; set; }

        /// <summary>Table footprint: cache-resident (1 GiB guest) or DRAM-size (64 GiB).</summary>
        [ParamsSource(nameof(Footprints))]
        public Footprint Footprint { get; set; }

        /// <summary>Page sizes of the mapping.</summary>
        [ParamsSource(nameof(Mappings))]
        public Mapping Mapping { get; set; }

        /// <summary>Random or sequential GPAs.</summary>
        [ParamsSource(nameof(Patterns))]
        public GpaPattern Pattern { get; set; }

        /// <summary>Footprints to run: both, always.</summary>
        public static IEnumerable<Footprint> Footprints => [Footprint.CacheResident, Footprint.Dram];

        /// <summary>Mappings to run: 4K only in the quick run.</summary>
        public static IEnumerable<Mapping> Mappings => QuickScenarios ? [Mapping.Page4K] : [Mapping.Page4K, Mapping.Page2M, Mapping.Mixed];

        /// <summary>Patterns to run: random only in the quick run.</summary>
        public static IEnumerable<GpaPattern> Patterns => QuickScenarios ? [GpaPattern.Random] : [GpaPattern.Random, GpaPattern.Sequential];

        /// <summary>Whether <see cref="Batch_Gather"/> really gathers here (AVX2); otherwise it times the fallback.</summary>
        public static bool GatherSupported => P2m.IsBatchPathSupported(BatchPath.Gather);

        /// <summary>Sampled TLB pages that stayed hits after warming (at most <see cref="TlbEntries"/>).</summary>
        public int TlbPages { get; private set; }

        /// <summary>Builds (or takes from the cache) the guest and the pools, and checks every contender.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = ScenarioGuest.Get(Footprint, Mapping);
            _p2m = _guest.P2m;
            _native = _guest.Native;
            _results = new EptTranslation[Ops];
            lock (Pools)
            {
                if (!Pools.TryGetValue((Footprint, Mapping, Pattern), out ulong[]? pool))
                {
                    pool = _guest.MakeGpas(Pattern, PoolSize, GpaSeed);
                    Pools.Add((Footprint, Mapping, Pattern), pool);
                }

                _pool = pool;
            }

            _cursor = 0;
            VerifyContenders();
            SetupNative();
            SetupTlb();
        }

        /// <summary>Nothing to release: guests and pools are cached for the other cases (and freed at exit).</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _tlb = null!;
        }

        /// <summary>The managed walk, one <see cref="P2m.Translate"/> per GPA.</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
        public ulong Scalar()
        {
            ReadOnlySpan<ulong> gpas = NextWindow();
            P2m p2m = _p2m;
            ulong sum = 0;
            foreach (ulong gpa in gpas)
            {
                sum += p2m.Translate(gpa, AccessKind.Read).Hpa;
            }

            return sum;
        }

        /// <summary>The native twin, one P/Invoke of <c>fastept_translate</c> per GPA.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeScalar()
        {
            ReadOnlySpan<ulong> gpas = NextWindow();
            NativeWalker native = _native;
            ulong sum = 0;
            foreach (ulong gpa in gpas)
            {
                sum += native.Translate(gpa, AccessKind.Read).Hpa;
            }

            return sum;
        }

        /// <summary>The native twin's batch, one <c>fastept_translate_batch</c> call.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeBatch()
        {
            _native.TranslateBatch(NextWindow(), AccessKind.Read, _results);
            return _results[Ops - 1].Hpa;
        }

        /// <summary>The public <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>: the path it picks.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Batch_Auto()
        {
            _p2m.TranslateBatch(NextWindow(), AccessKind.Read, _results);
            return _results[Ops - 1].Hpa;
        }

        /// <summary>The batch, forced to its plain loop of walks.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Batch_Scalar() => Batch(BatchPath.Scalar);

        /// <summary>The batch, forced to software-pipelined walks with prefetch.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Batch_Pipelined() => Batch(BatchPath.Pipelined);

        /// <summary>The batch, forced to AVX2 gather walks (the fallback without AVX2).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong Batch_Gather() => Batch(BatchPath.Gather);

        /// <summary>A warmed <see cref="SoftTlb"/>: every GPA hits.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong TlbHit()
        {
            ReadOnlySpan<ulong> gpas = NextTlbWindow();
            SoftTlb tlb = _tlb;
            ulong sum = 0;
            foreach (ulong gpa in gpas)
            {
                sum += tlb.Translate(gpa, AccessKind.Read).Hpa;
            }

            return sum;
        }

        /// <summary>The TLB's reference: a plain array-index lookup, <c>table[(gpa &gt;&gt; 12) &amp; mask]</c>, over an array of the TLB's size.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong ArrayIndex()
        {
            ReadOnlySpan<ulong> gpas = NextTlbWindow();
            ulong[] table = _tlbArray;
            ulong sum = 0;
            foreach (ulong gpa in gpas)
            {
                sum += table[(int)(gpa >> 12) & (TlbEntries - 1)] | (gpa & 0xFFF);
            }

            return sum;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ulong Batch(BatchPath path)
        {
            _p2m.TranslateBatch(NextWindow(), AccessKind.Read, _results, path);
            return _results[Ops - 1].Hpa;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ReadOnlySpan<ulong> NextWindow()
        {
            int start = _cursor;
            _cursor = (start + Ops) & (PoolSize - 1);
            return new ReadOnlySpan<ulong>(_pool, start, Ops);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ReadOnlySpan<ulong> NextTlbWindow()
        {
            int start = _tlbCursor;
            _tlbCursor = (start + Ops) & (TlbPoolSize - 1);
            return new ReadOnlySpan<ulong>(_tlbPool, start, Ops);
        }

        // The scenario's tables against the intended mapping, then every walking contender's
        // answers against the managed walk, over the pool's first GPAs. Timing a wrong answer
        // would be worse than no number.
        private void VerifyContenders()
        {
            ulong[] sample = _pool.AsSpan(0, VerifyCount).ToArray();
            _guest.Verify(sample);
            EptTranslation[] expected = new EptTranslation[VerifyCount];
            EptTranslation[] actual = new EptTranslation[VerifyCount];
            for (int i = 0; i < sample.Length; i++)
            {
                expected[i] = _p2m.Translate(sample[i], AccessKind.Read);
            }

            Check("NativeBatch", () => _native.TranslateBatch(sample, AccessKind.Read, actual));
            Check("Batch_Auto", () => _p2m.TranslateBatch(sample, AccessKind.Read, actual));
            foreach (BatchPath path in new[] { BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather })
            {
                Check($"Batch_{path}", () => _p2m.TranslateBatch(sample, AccessKind.Read, actual, path));
            }

            void Check(string name, Action run)
            {
                Array.Clear(actual);
                run();
                for (int i = 0; i < expected.Length; i++)
                {
                    if (actual[i] != expected[i])
                    {
                        throw new InvalidOperationException(
                            $"{Footprint}/{Mapping}/{Pattern}: {name} gave {actual[i]} for GPA 0x{_pool[i]:X}; Translate gives {expected[i]}.");
                    }
                }
            }
        }

        // GPAs over TlbEntries consecutive pages, in random order with random offsets, and a
        // TLB warmed with them. If its indexing makes some of those pages conflict, fewer pages
        // are used until a whole pass over the pool is all hits.
        private void SetupTlb()
        {
            Random random = new Random(TlbSeed);
            ulong frames = (ulong)_guest.GuestBytes >> 12;
            ulong firstPage = (ulong)random.NextInt64((long)(frames - TlbEntries)) & ~(ulong)(TlbEntries - 1);
            for (int pages = TlbEntries; pages >= 1; pages /= 2)
            {
                _tlbPool = new ulong[TlbPoolSize];
                for (int i = 0; i < _tlbPool.Length; i++)
                {
                    _tlbPool[i] = ((firstPage + (ulong)random.Next(pages)) << 12) | (uint)random.Next(4096);
                }

                _tlb = new SoftTlb(_p2m, TlbEntries);
                foreach (ulong gpa in _tlbPool)
                {
                    _tlb.Translate(gpa, AccessKind.Read);
                }

                long misses = _tlb.Misses;
                bool correct = true;
                foreach (ulong gpa in _tlbPool)
                {
                    correct &= _tlb.Translate(gpa, AccessKind.Read) == _p2m.Translate(gpa, AccessKind.Read);
                }

                if (!correct)
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}/{Pattern}: SoftTlb and Translate disagree.");
                }

                if (_tlb.Misses == misses)
                {
                    TlbPages = pages;
                    break;
                }
            }

            if (TlbPages == 0)
            {
                throw new InvalidOperationException("SoftTlb never hit.");
            }

            if (TlbPages != TlbEntries)
            {
                Console.WriteLine($"// SoftTlb: only {TlbPages} of {TlbEntries} consecutive pages stay resident together; TlbHit uses {TlbPages}.");
            }

            // The array holds the same page-to-frame answers, indexed as a direct-mapped table.
            _tlbArray = new ulong[TlbEntries];
            foreach (ulong gpa in _tlbPool)
            {
                _tlbArray[(int)(gpa >> 12) & (TlbEntries - 1)] = _p2m.Translate(gpa, AccessKind.Read).Hpa & ~0xFFFUL;
            }

            foreach (ulong gpa in _tlbPool)
            {
                if ((_tlbArray[(int)(gpa >> 12) & (TlbEntries - 1)] | (gpa & 0xFFF)) != _p2m.Translate(gpa, AccessKind.Read).Hpa)
                {
                    throw new InvalidOperationException("ArrayIndex table is wrong.");
                }
            }

            _tlbCursor = 0;
        }
    }
}

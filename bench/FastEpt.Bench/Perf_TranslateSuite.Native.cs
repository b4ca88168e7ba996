// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using FastEpt.Interop;

namespace FastEpt.Bench
{
    /// <summary>
    /// The floor and the C loops: one load per GPA of its leaf slot from a precomputed slot
    /// address (no walk, no side table), in C# and in C, and the C walks timed from C.
    /// </summary>
    /// <remarks>
    /// Every GPA of a pool has its leaf slot's address (the 4K leaf table entry, or a 2M page's
    /// PDE) computed once in setup into an array beside the pool, so a floor row streams two
    /// arrays (GPAs are not even read) and issues one independent random load per GPA: the least
    /// any walk must do, as there is nothing to compute. The C loops come from
    /// <c>libfastept_benchloops</c> (native/bench/loops.c, built beside libfastept by CMake and
    /// loaded from native/build): one call per window of <see cref="Ops"/> GPAs, so neither a
    /// managed loop nor a P/Invoke per address is in what they time.
    /// </remarks>
    public unsafe partial class Perf_TranslateSuite
    {
        private static readonly Dictionary<(Footprint, Mapping, GpaPattern), nint> SlotPools = new();

        private ulong** _slotPool;                 // leaf-slot address of each pool GPA (native memory, process lifetime)
        private fastept_walker* _walker;   // the native walker's struct, for the C loops

        /// <summary>The floor in C#: one load of each GPA's leaf slot from its precomputed address.</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong LeafLoads()
        {
            ulong** slots = _slotPool + NextStart();
            ulong sum = 0;
            for (int i = 0; i < Ops; i++)
            {
                sum += *slots[i];
            }

            return sum;
        }

        /// <summary>
        /// Latency: the same leaf-slot loads as <see cref="LeafLoads"/>, each address depending on
        /// the previous load's value (through <c>v &amp; zero</c>).
        /// </summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong DependentChase()
        {
            ulong** slots = _slotPool + NextStart();
            ulong zero = _zero;
            ulong v = 0;
            ulong sum = 0;
            for (int i = 0; i < Ops; i++)
            {
                v = slots[i][v & zero];
                sum += v;
            }

            return sum;
        }

        /// <summary>The floor in C: <see cref="LeafLoads"/> as a C loop (fastept_bench_leaf_loads).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeLeafLoads() => BenchLoops.LeafLoads(_slotPool + NextStart(), Ops);

        /// <summary>The scalar walk as a plain C loop, the fast path's checks inline, no API (fastept_bench_walk_loop).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeWalkLoop()
        {
            fixed (ulong* g = &_pool[NextStart()])
            {
                return BenchLoops.WalkLoop(_walker, g, Ops, (uint)AccessKind.Read);
            }
        }

        /// <summary><c>fastept_translate</c> once per GPA, called from C (fastept_bench_translate_loop).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeTranslateLoop()
        {
            fixed (ulong* g = &_pool[NextStart()])
            {
                return BenchLoops.TranslateLoop(_walker, g, Ops, (uint)AccessKind.Read);
            }
        }

        /// <summary>
        /// <c>fastept_translate_inline</c> (fastept_inline.h) once per GPA, called from C with the
        /// walker prepared once per window (fastept_bench_inline_loop).
        /// </summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeInlineLoop()
        {
            fixed (ulong* g = &_pool[NextStart()])
            {
                return BenchLoops.InlineLoop(_walker, g, Ops, (uint)AccessKind.Read);
            }
        }

        /// <summary>The native batch forced to its pipelined walk (<c>fastept_translate_batch_path</c>).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong NativeBatch_Pipelined()
        {
            _native.TranslateBatchOnPath(NextWindow(), AccessKind.Read, _results, BatchPath.Pipelined);
            return _results[Ops - 1].Hpa;
        }

        private int NextStart()
        {
            int start = _cursor;
            _cursor = (start + Ops) & (PoolSize - 1);
            return start;
        }

        // The slot addresses of this scenario's pool (from the guest's side table, once per pool)
        // and the walker struct; then every C loop's sum against the managed walks' over a window.
        private void SetupNative()
        {
            lock (SlotPools)
            {
                if (!SlotPools.TryGetValue((Footprint, Mapping, Pattern), out nint pool))
                {
                    var slots = (ulong**)NativeMemory.AlignedAlloc((nuint)PoolSize * (nuint)sizeof(ulong*), 64);
                    for (int i = 0; i < PoolSize; i++)
                    {
                        ulong gpa = _pool[i];
                        ScenarioGuest.SlotRegion r = _guest.SlotTable[gpa >> ScenarioGuest.RegionBits];
                        slots[i] = r.Base + ((gpa >> 12) & r.Mask);
                    }

                    pool = (nint)slots;
                    SlotPools.Add((Footprint, Mapping, Pattern), pool);
                }

                _slotPool = (ulong**)pool;
            }

            if (_walker == null)
            {
                _walker = (fastept_walker*)NativeMemory.Alloc((nuint)sizeof(fastept_walker));
            }

            *_walker = _native.WalkerSnapshot;
            VerifyNativeLoops();
        }

        private void VerifyNativeLoops()
        {
            // Each GPA's HPA and leaf-slot value, summed as the loops sum them.
            ulong hpas = 0, leaves = 0, walkable = 0;
            for (int i = 0; i < Ops; i++)
            {
                EptTranslation t = _p2m.Translate(_pool[i], AccessKind.Read);
                hpas += t.Hpa;
                walkable += t.Level == 1 ? t.Hpa : 0;       // the plain C loop only finishes 4K leaves
                leaves += *_slotPool[i];
            }

            int saved = _cursor;
            _cursor = 0;
            Check("NativeTranslateLoop", NativeTranslateLoop(), hpas);
            _cursor = 0;
            Check("NativeInlineLoop", NativeInlineLoop(), hpas);
            _cursor = 0;
            Check("NativeWalkLoop", NativeWalkLoop(), walkable);
            _cursor = 0;
            Check("NativeLeafLoads", NativeLeafLoads(), leaves);
            _cursor = 0;
            Check("LeafLoads", LeafLoads(), leaves);
            _cursor = 0;
            Check("DependentChase", DependentChase(), leaves);
            _cursor = 0;
            NativeBatch_Pipelined();
            for (int i = 0; i < Ops; i++)
            {
                if (_results[i] != _p2m.Translate(_pool[i], AccessKind.Read))
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}/{Pattern}: NativeBatch_Pipelined gave {_results[i]} for GPA 0x{_pool[i]:X}.");
                }
            }

            _cursor = saved;

            void Check(string name, ulong actual, ulong expected)
            {
                if (actual != expected)
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}/{Pattern}: {name} sums to 0x{actual:X}, expected 0x{expected:X}.");
                }
            }
        }

        // libfastept_benchloops, loaded once from native/build (found above the bench's output).
        private static class BenchLoops
        {
            private static readonly nint s_library = Load();

            public static readonly delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong> TranslateLoop =
                (delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong>)NativeLibrary.GetExport(s_library, "fastept_bench_translate_loop");

            public static readonly delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong> InlineLoop =
                (delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong>)NativeLibrary.GetExport(s_library, "fastept_bench_inline_loop");

            public static readonly delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong> WalkLoop =
                (delegate* unmanaged<fastept_walker*, ulong*, ulong, uint, ulong>)NativeLibrary.GetExport(s_library, "fastept_bench_walk_loop");

            public static readonly delegate* unmanaged<ulong**, ulong, ulong> LeafLoads =
                (delegate* unmanaged<ulong**, ulong, ulong>)NativeLibrary.GetExport(s_library, "fastept_bench_leaf_loads");

            private static nint Load()
            {
                const string Name = "libfastept_benchloops.so";
                for (DirectoryInfo? d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                {
                    string path = Path.Combine(d.FullName, "native", "build", Name);
                    if (File.Exists(path))
                    {
                        return NativeLibrary.Load(path);
                    }
                }

                throw new InvalidOperationException($"{Name} not found in native/build above {AppContext.BaseDirectory}: run `cmake --build native/build` (./build.sh bench does).");
            }
        }
    }
}

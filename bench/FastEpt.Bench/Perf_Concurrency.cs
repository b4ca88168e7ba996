// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>What runs on a second thread beside the measured readers.</summary>
    public enum Interferer
    {
        /// <summary>Nothing: the reader is alone.</summary>
        None,

        /// <summary>A thread that spins without touching FastEpt: the reference for "one other busy core".</summary>
        Busy,

        /// <summary>A <see cref="P2m.SetEntry"/> writer remapping 4K pages in the other half of the guest.</summary>
        Remap4K,

        /// <summary>A merge/split-heavy writer: 2M merges over 4K tables, 4K splits of 2M pages, removals, on one range.</summary>
        MergeSplit,
    }

    /// <summary>
    /// Readers beside a writer: <see cref="P2m.Translate"/> and
    /// <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> (Auto) of random
    /// GPAs over the lower half of a 4 GiB guest in 4K pages, while a second thread runs
    /// <see cref="Beside"/>: nothing, a busy thread that never touches FastEpt, a 4K-remapping
    /// writer or a merge/split-heavy writer in the upper half (see <see cref="Scenario"/>).
    /// Every answer is checked (the readers' pages never change).
    /// </summary>
    /// <remarks>
    /// The goals table (<see cref="Goals"/>) times the same loops interleaved and adds what a
    /// BenchmarkDotNet case cannot hold: the single-thread SetEntry cost against a
    /// compare-exchange floor, log-dirty write faults on one thread and on two, and the
    /// reclamation barriers the merge/split writer issues per 1,000 writes. Here the second
    /// thread runs for the whole case (setup to cleanup); the cleanup prints its rate.
    /// </remarks>
    [MemoryDiagnoser]
    [BenchmarkCategory("Concurrency")]
    public partial class Perf_Concurrency
    {
        /// <summary>GPAs per invocation.</summary>
        public const int Ops = Scenario.Ops;

        private Scenario? _scenario;
        private BackgroundLoop? _loop;

        /// <summary>What the second thread runs.</summary>
        [Params(Interferer.None, Interferer.Busy, Interferer.Remap4K, Interferer.MergeSplit)]
        public Interferer Beside { get; set; }

        /// <summary>Builds the guest and starts the second thread.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _scenario = Scenario.Create();
            _loop = StartInterferer(_scenario, Beside);
        }

        /// <summary>Stops and joins the second thread (rethrowing what it threw), prints its rate, releases the guest.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            try
            {
                if (_loop is not null)
                {
                    (long count, double seconds) = _loop.Stop();
                    string unit = Beside == Interferer.Busy ? "spin blocks" : "SetEntry calls";
                    Console.WriteLine($"// {Beside} thread: {count / seconds / 1e6:F3} M {unit}/s over {seconds:F2} s");
                }
            }
            finally
            {
                _loop?.Dispose();
                _loop = null;
                _scenario?.Dispose();
                _scenario = null;
            }
        }

        /// <summary><see cref="P2m.Translate"/> of <see cref="Ops"/> GPAs, one by one.</summary>
        [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
        public ulong Translate_Scalar() => _scenario!.ScalarOnce();

        /// <summary><see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> of <see cref="Ops"/> GPAs (Auto path).</summary>
        [Benchmark(OperationsPerInvoke = Ops)]
        public ulong TranslateBatch_Auto() => _scenario!.BatchOnce();

        /// <summary>Starts <paramref name="kind"/> on its own thread, running; null for <see cref="Interferer.None"/>.</summary>
        internal static BackgroundLoop? StartInterferer(Scenario scenario, Interferer kind)
        {
            Func<BackgroundLoop, long>? body = kind switch
            {
                Interferer.None => null,
                Interferer.Busy => loop => Scenario.Spin(() => loop.StopRequested),
                Interferer.Remap4K => loop => scenario.Remap4K(() => loop.StopRequested),
                Interferer.MergeSplit => loop => scenario.MergeSplit(() => loop.StopRequested),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
            };
            if (body is null)
            {
                return null;
            }

            var started = new BackgroundLoop($"{kind} interferer", body);
            try
            {
                started.WaitReady();
                started.Go();
                return started;
            }
            catch
            {
                started.Dispose();
                throw;
            }
        }
    }
}

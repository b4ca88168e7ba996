// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;

namespace FastEpt.Bench
{
    /// <summary>
    /// The cost of the <c>FastEpt</c> meter on the hot paths: the same lookups with no listener
    /// (the default: the counters must cost nothing measurable) and with a <see cref="MeterListener"/>
    /// that enables every FastEpt instrument (as <c>dotnet-counters</c> or OpenTelemetry would).
    /// Compare the <c>Listener=False</c> rows with the same class run on a build without metrics.
    /// </summary>
    [MemoryDiagnoser]
    [BenchmarkCategory("Metrics")]
    public class Perf_Metrics
    {
        private const int GpaCount = 4096;
        private const int GpaSeed = 20260401;

        private DefaultGuest? _guest;
        private P2m _p2m = null!;
        private SoftTlb _tlb = null!;
        private MeterListener? _listener;
        private ulong[] _random = [];
        private ulong[] _hot = [];
        private EptTranslation[] _results = [];

        /// <summary>Whether a listener observes the FastEpt meter during the run.</summary>
        [Params(false, true)]
        public bool Listener { get; set; }

        /// <summary>Builds the default guest, the address sets and the TLB; attaches the listener when asked.</summary>
        [GlobalSetup]
        public void Setup()
        {
            _guest = DefaultGuest.Create();
            _p2m = _guest.P2m;
            _random = DefaultGuest.RandomGpas(GpaCount, GpaSeed);
            // 4,096 consecutive pages (8 leaf tables): every walk hits the caches, so the walk is
            // as short as it gets and any per-call cost shows.
            _hot = new ulong[GpaCount];
            for (int i = 0; i < GpaCount; i++)
            {
                _hot[i] = ((ulong)i << DefaultGuest.PageBits) | 0x18;
            }

            _results = new EptTranslation[GpaCount];
            _tlb = new SoftTlb(_p2m, GpaCount);
            foreach (ulong gpa in _hot)
            {
                _tlb.Translate(gpa, AccessKind.Read);
            }

            if (Listener)
            {
                _listener = new MeterListener();
                _listener.InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Name == "FastEpt")
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                };
                _listener.SetMeasurementEventCallback<long>(static (_, _, _, _) => { });
                _listener.Start();
            }
        }

        /// <summary>Detaches the listener and releases the guest.</summary>
        [GlobalCleanup]
        public void Cleanup()
        {
            _listener?.RecordObservableInstruments();
            _listener?.Dispose();
            _listener = null;
            _guest?.Dispose();
            _guest = null;
        }

        /// <summary><see cref="P2m.Translate"/> of 4,096 random GPAs over 4 GiB (cache-missing walks).</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong TranslateRandom() => TranslateAll(_random);

        /// <summary><see cref="P2m.Translate"/> of 4,096 consecutive pages (cache-hot walks).</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong TranslateHot() => TranslateAll(_hot);

        /// <summary><see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> of the random GPAs.</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong BatchRandom()
        {
            _p2m.TranslateBatch(_random, AccessKind.Read, _results);
            return _results[^1].Hpa;
        }

        /// <summary><see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> of the consecutive pages.</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong BatchHot()
        {
            _p2m.TranslateBatch(_hot, AccessKind.Read, _results);
            return _results[^1].Hpa;
        }

        /// <summary><see cref="SoftTlb.Translate"/> hits (every page cached).</summary>
        [Benchmark(OperationsPerInvoke = GpaCount)]
        public ulong TlbHit()
        {
            SoftTlb tlb = _tlb;
            ulong[] gpas = _hot;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                sum += tlb.Translate(gpas[i], AccessKind.Read).Hpa;
            }

            return sum;
        }

        private ulong TranslateAll(ulong[] gpas)
        {
            P2m p2m = _p2m;
            ulong sum = 0;
            for (int i = 0; i < gpas.Length; i++)
            {
                sum += p2m.Translate(gpas[i], AccessKind.Read).Hpa;
            }

            return sum;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// Replays a trace through FastEpt: builds a guest of <see cref="ReplayOptions.GuestBytes"/>
    /// mapped RWX with the requested page size (and altp2m views if asked), translates every
    /// access (trace address folded into the guest modulo its size), and gathers statistics.
    /// </summary>
    /// <remarks>
    /// All guest pages are mapped onto one small pool of host frames (the replay translates but
    /// never touches guest data), so a 4 GiB guest costs only its page tables. An access that
    /// crosses a page boundary is counted and translated once, at its start address. Hot-page
    /// counting keeps one hash-table slot (32 bytes, at most half the table full) per distinct
    /// 4 KiB trace page. With more than one CPU the trace is read, decoded and counted on a
    /// background task while the calling thread translates (<see cref="ReplayOptions"/>).
    /// A failed translation is handed to the guest's <see cref="Domain"/> as an EPT exit and the
    /// access translated again once the domain resolved it.
    /// </remarks>
    public static class Replayer
    {
        private const int ChunkSize = 1 << 14;
        private const int WorkingSetMaxPoints = 400;
        // 64 x 64 heat-map cells get 16 samples each on average once a trace is sampled.
        internal const int HeatSampleCapacity = 1 << 16;
        private const int HeatBuckets = 64;

        private struct PageCounts
        {
            public long Reads;
            public long Writes;
            public long Fetches;
        }

        /// <summary>Replays <paramref name="reader"/> to its end.</summary>
        /// <param name="reader">The trace.</param>
        /// <param name="options">Replay settings.</param>
        /// <param name="progress">Called about every 100 ms (and once at the end), on the calling thread; may be null.</param>
        /// <param name="cancellationToken">Checked between chunks.</param>
        /// <returns>The report.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="reader"/> or <paramref name="options"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message names it).</exception>
        /// <exception cref="OperationCanceledException">The replay was cancelled.</exception>
        public static ReplayReport Run(ITraceReader reader, ReplayOptions options, Action<ReplayProgress>? progress, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(reader);
            ArgumentNullException.ThrowIfNull(options);
            options.Validate();
            Stopwatch setup = Stopwatch.StartNew();
            using ReplayGuest guest = new ReplayGuest(options);
            setup.Stop();
            using Engine engine = new Engine(guest, options);
            return engine.Run(reader, progress, cancellationToken, setup.Elapsed);
        }

        // The heat samples (like ChunkSource's buffers) come from the shared array pool, so
        // back-to-back replays do not churn the large-object heap.
        private sealed class Engine : IDisposable
        {
            // A fault the domain resolves (Retry) is translated again, at most this many times.
            private const int MaxFaultRetries = 4;

            private readonly ReplayGuest _guest;
            private readonly ReplayOptions _options;
            private readonly int _viewCount;
            private readonly ulong _guestPages;
            private readonly ulong _pageMask;       // _guestPages - 1 when a power of two, else 0
            private readonly long[] _kindBytes = new long[4];
            private readonly long[] _kindNotPresent = new long[3];
            private readonly long[] _kindRights = new long[3];
            private readonly long[] _kindMisconfigs = new long[3];
            private readonly long[] _leafLevels = new long[8];
            private readonly long[] _viewAccesses;
            private readonly long[] _viewNotPresent;
            private readonly long[] _viewRights;
            private readonly long[] _viewMisconfigs;
            private readonly long[] _viewUnresolved;
            private readonly PageCounter _pages = new();
            private readonly List<WorkingSetPoint> _workingSet = new();
            private readonly ulong[] _heatSamples = ArrayPool<ulong>.Shared.Rent(HeatSampleCapacity);
            private readonly ulong[][] _batchGpas = Array.Empty<ulong[]>();
            private readonly int[] _batchCounts = Array.Empty<int>();
            private readonly EptTranslation[] _batchResults = Array.Empty<EptTranslation>();
            private int _heatCount;
            private long _heatStride = 1;
            private long _wsInterval = 1;
            private long _nextWorkingSet = 1;       // the access (1-based) of the next working-set sample
            private long _nextHeat = 1;             // likewise for the heat map
            private long _sampleCountdown = 1;      // accesses until the nearer of the two
            private long _total;
            private int _view;                      // the view the next access goes to

            public Engine(ReplayGuest guest, ReplayOptions options)
            {
                _guest = guest;
                _options = options;
                _viewCount = options.Views + 1;
                _guestPages = guest.GuestPages;
                _pageMask = (_guestPages & (_guestPages - 1)) == 0 ? _guestPages - 1 : 0;
                _viewAccesses = new long[_viewCount];
                _viewNotPresent = new long[_viewCount];
                _viewRights = new long[_viewCount];
                _viewMisconfigs = new long[_viewCount];
                _viewUnresolved = new long[_viewCount];
                if (options.Batch > 0)
                {
                    _batchGpas = new ulong[_viewCount * 3][];
                    for (int i = 0; i < _batchGpas.Length; i++)
                    {
                        _batchGpas[i] = new ulong[options.Batch];
                    }

                    _batchCounts = new int[_viewCount * 3];
                    _batchResults = new EptTranslation[options.Batch];
                }
            }

            public void Dispose()
            {
                ArrayPool<ulong>.Shared.Return(_heatSamples);
            }

            public ReplayReport Run(ITraceReader reader, Action<ReplayProgress>? progress, CancellationToken ct, TimeSpan setupTime)
            {
                Stopwatch sw = Stopwatch.StartNew();
                long lastProgressTicks = 0;
                long progressInterval = Stopwatch.Frequency / 10;
                bool fast = _viewCount == 1 && _options.Batch == 0;
                long translated = 0;
                using (var source = new ChunkSource(reader, ChunkSize, _options.ReadAhead ?? Environment.ProcessorCount > 1, Count, ct))
                {
                    while (source.TryNext(out ReadOnlySpan<TraceAccess> chunk))
                    {
                        if (fast)
                        {
                            SoftTlb? tlb = _guest.Tlbs[0];
                            if (tlb is not null)
                            {
                                ReplayHostScalar(chunk, new TlbTranslator(tlb));
                            }
                            else
                            {
                                ReplayHostScalar(chunk, new WalkTranslator(_guest.P2ms[0]));
                            }
                        }
                        else
                        {
                            ReplayGeneral(chunk);
                        }

                        translated += chunk.Length;
                        if (progress is not null && sw.ElapsedTicks - lastProgressTicks >= progressInterval)
                        {
                            lastProgressTicks = sw.ElapsedTicks;
                            progress(MakeProgress(source.Position, translated, sw.Elapsed));
                        }
                    }
                }

                for (int q = 0; q < _batchCounts.Length; q++)
                {
                    FlushBatch(q);
                }

                sw.Stop();
                if (_viewCount == 1)
                {
                    _viewAccesses[0] = _total;
                }

                if (_workingSet.Count == 0 || _workingSet[^1].Accesses != _total)
                {
                    _workingSet.Add(new WorkingSetPoint(_total, _pages.Count));
                }

                progress?.Invoke(MakeProgress(reader.Position, _total, sw.Elapsed));
                return BuildReport(reader, _total, sw.Elapsed, setupTime);
            }

            // The statistics of the trace itself (bytes by kind, per-page counts, working set, heat
            // map), kept apart from translation: with read-ahead they are gathered on the reader's
            // thread as each chunk is decoded, while the engine translates the one before.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void Count(ReadOnlySpan<TraceAccess> chunk)
            {
                PageCounter pages = _pages;
                ref long bytes = ref MemoryMarshal.GetArrayDataReference(_kindBytes);
                long countdown = _sampleCountdown;
                long done = _total;
                for (int i = 0; i < chunk.Length; i++)
                {
                    ref readonly TraceAccess a = ref chunk[i];
                    unchecked
                    {
                        int k = (int)a.Kind & 3;
                        Unsafe.Add(ref bytes, k) += a.Size;
                        ulong page = a.Address >> EptEntry.PageBits;
                        Unsafe.Add(ref pages.Counters(page), k)++;
                        if (--countdown == 0)
                        {
                            countdown = Sample(done + i + 1, page);
                        }
                    }
                }

                _total = done + chunk.Length;
                _sampleCountdown = countdown;
            }

            // The common case, kept lean: one view (the host p2m), scalar translation, specialized
            // on the translator (TLB or walk) so the loop holds no branch or call for it.
            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            private void ReplayHostScalar<T>(ReadOnlySpan<TraceAccess> chunk, T translator)
                where T : struct, ITranslator
            {
                ulong pageMask = _pageMask;
                ulong guestPages = _guestPages;
                ref long levels = ref MemoryMarshal.GetArrayDataReference(_leafLevels);
                for (int i = 0; i < chunk.Length; i++)
                {
                    ref readonly TraceAccess a = ref chunk[i];
                    unchecked
                    {
                        int k = (int)a.Kind & 3;
                        ulong gpa = GuestAddress(a.Address, pageMask, guestPages);
                        EptTranslation t = translator.Translate(gpa, (AccessKind)(1 << k));
                        if (t.Status == EptStatus.Ok)
                        {
                            Unsafe.Add(ref levels, t.Level & 7)++;
                        }
                        else
                        {
                            Fault(0, k, gpa, t);
                        }
                    }
                }
            }

            // A trace address folded into the guest: page modulo the guest's pages (a mask when that
            // is a power of two), same offset.
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private static ulong GuestAddress(ulong address, ulong pageMask, ulong guestPages)
            {
                ulong page = address >> EptEntry.PageBits;
                ulong gfn = pageMask != 0 ? page & pageMask : page % guestPages;
                return (gfn << EptEntry.PageBits) | (address & EptEntry.PageMask);
            }

            // Views dealt round-robin, and/or batched translation.
            private void ReplayGeneral(ReadOnlySpan<TraceAccess> chunk)
            {
                bool batch = _options.Batch > 0;
                for (int i = 0; i < chunk.Length; i++)
                {
                    TraceAccess a = chunk[i];
                    unchecked
                    {
                        int k = (int)a.Kind & 3;
                        ulong gpa = GuestAddress(a.Address, _pageMask, _guestPages);
                        int view = _view;
                        if (batch)
                        {
                            Enqueue(view, k, gpa);
                        }
                        else
                        {
                            Tally(Translate(view, gpa, (AccessKind)(1 << k)), view, k, gpa);
                        }

                        _viewAccesses[view]++;
                        _view = view + 1 == _viewCount ? 0 : view + 1;
                    }
                }
            }

            private EptTranslation Translate(int view, ulong gpa, AccessKind access)
            {
                SoftTlb? tlb = _guest.Tlbs[view];
                return tlb is not null ? tlb.Translate(gpa, access) : _guest.P2ms[view].Translate(gpa, access);
            }

            // The scalar translators ReplayHostScalar is specialized on.
            private interface ITranslator
            {
                EptTranslation Translate(ulong gpa, AccessKind access);
            }

            private readonly struct TlbTranslator(SoftTlb tlb) : ITranslator
            {
                [MethodImpl(MethodImplOptions.AggressiveInlining)]
                public EptTranslation Translate(ulong gpa, AccessKind access) => tlb.Translate(gpa, access);
            }

            private readonly struct WalkTranslator(P2m p2m) : ITranslator
            {
                [MethodImpl(MethodImplOptions.AggressiveInlining)]
                public EptTranslation Translate(ulong gpa, AccessKind access) => p2m.Translate(gpa, access);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private void Tally(in EptTranslation t, int view, int kind, ulong gpa)
            {
                if (t.Status == EptStatus.Ok)
                {
                    _leafLevels[t.Level & 7]++;
                }
                else
                {
                    Fault(view, kind, gpa, t);
                }
            }

            // A failed translation is an exit: counted by kind (violations split into not-present
            // and insufficient rights, from qualification bits 5:3), then handed to the domain as
            // the hypervisor would (lazy altp2m copy, mem_access with no listener relaxing the
            // entry); on Retry the access is translated again. A misconfiguration is counted, not
            // handled (the replay guest never builds one).
            [MethodImpl(MethodImplOptions.NoInlining)]
            private void Fault(int view, int kind, ulong gpa, EptTranslation t)
            {
                for (int attempt = 0; ; attempt++)
                {
                    if (t.Status == EptStatus.Violation)
                    {
                        if ((t.Qualification & 0x38) == 0)
                        {
                            _kindNotPresent[kind]++;
                            _viewNotPresent[view]++;
                        }
                        else
                        {
                            _kindRights[kind]++;
                            _viewRights[view]++;
                        }
                    }
                    else
                    {
                        _kindMisconfigs[kind]++;
                        _viewMisconfigs[view]++;
                        _viewUnresolved[view]++;
                        return;
                    }

                    if (attempt == MaxFaultRetries
                        || _guest.Domain.HandleEptViolationExit(_guest.Vcpus[view], gpa, t.Qualification & 7, ~0UL) != FaultOutcome.Retry)
                    {
                        _viewUnresolved[view]++;
                        return;
                    }

                    t = Translate(view, gpa, (AccessKind)(1 << kind));
                    if (t.Status == EptStatus.Ok)
                    {
                        _leafLevels[t.Level & 7]++;
                        return;
                    }
                }
            }

            private static ReplayProgress MakeProgress((long Done, long Total) position, long total, TimeSpan elapsed)
            {
                (long done, long all) = position;
                double rate = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0;
                return new ReplayProgress(total, done, all, rate);
            }

            private void Enqueue(int view, int kind, ulong gpa)
            {
                int q = (view * 3) + kind;
                int c = _batchCounts[q];
                _batchGpas[q][c] = gpa;
                _batchCounts[q] = c + 1;
                if (c + 1 == _options.Batch)
                {
                    FlushBatch(q);
                }
            }

            private void FlushBatch(int q)
            {
                int count = _batchCounts[q];
                if (count == 0)
                {
                    return;
                }

                int view = q / 3;
                int kind = q % 3;
                var access = (AccessKind)(1 << kind);
                ReadOnlySpan<ulong> gpas = _batchGpas[q].AsSpan(0, count);
                Span<EptTranslation> results = _batchResults.AsSpan(0, count);
                SoftTlb? tlb = _guest.Tlbs[view];
                if (tlb is not null)
                {
                    tlb.TranslateBatch(gpas, access, results);
                }
                else
                {
                    _guest.P2ms[view].TranslateBatch(gpas, access, results);
                }

                for (int i = 0; i < results.Length; i++)
                {
                    EptTranslation t = results[i];
                    if (t.Status != EptStatus.Ok)
                    {
                        // An earlier fault of this batch may have fixed the entry (a lazy copy of
                        // the same page): only a failure that still happens now is an exit, so
                        // batched and scalar replays count the same faults.
                        t = Translate(view, gpas[i], access);
                    }

                    Tally(t, view, kind, gpas[i]);
                }

                _batchCounts[q] = 0;
            }

            // Takes the samples due at access `total` (1-based), of `page`; returns the accesses
            // until the next one.
            [MethodImpl(MethodImplOptions.NoInlining)]
            private long Sample(long total, ulong page)
            {
                if (total == _nextWorkingSet)
                {
                    SampleWorkingSet(total);
                    _nextWorkingSet = total + _wsInterval;
                }

                if (total == _nextHeat)
                {
                    SampleHeat(page);
                    _nextHeat = total + _heatStride;
                }

                return Math.Min(_nextWorkingSet, _nextHeat) - total;
            }

            private void SampleWorkingSet(long total)
            {
                _workingSet.Add(new WorkingSetPoint(total, _pages.Count));
                if (_workingSet.Count == WorkingSetMaxPoints)
                {
                    // Keep the points at multiples of twice the interval.
                    int w = 0;
                    for (int r = 1; r < _workingSet.Count; r += 2)
                    {
                        _workingSet[w++] = _workingSet[r];
                    }

                    _workingSet.RemoveRange(w, _workingSet.Count - w);
                    _wsInterval *= 2;
                }
            }

            private void SampleHeat(ulong page)
            {
                // Sample j stands for access (j + 1) * stride (1-based).
                _heatSamples[_heatCount++] = page;
                if (_heatCount == HeatSampleCapacity)
                {
                    int w = 0;
                    for (int r = 1; r < _heatCount; r += 2)
                    {
                        _heatSamples[w++] = _heatSamples[r];
                    }

                    _heatCount = w;
                    _heatStride *= 2;
                }
            }

            // Columns split the distinct pages touched (all of them, from the page counters) in
            // address order; each sample lands in the column of its page's rank.
            private HeatMap BuildHeatMap(long total, ulong[] distinct)
            {
                int d = distinct.Length;
                if (_heatCount == 0 || d == 0)
                {
                    return new HeatMap(Array.Empty<long[]>(), Array.Empty<ulong>(), 0, _heatStride);
                }

                int columns = Math.Min(HeatBuckets, d);
                ulong[] starts = new ulong[columns];
                for (int b = 0; b < columns; b++)
                {
                    starts[b] = distinct[(int)((long)b * d / columns)] << EptEntry.PageBits;
                }

                int rows = (int)Math.Min(HeatBuckets, total);
                long perRow = (total + rows - 1) / rows;
                long[][] counts = new long[rows][];
                for (int r = 0; r < rows; r++)
                {
                    counts[r] = new long[columns];
                }

                // Page -> column, looked up once per sample (cheaper than a binary search).
                var column = new Dictionary<ulong, int>(d);
                for (int rank = 0; rank < d; rank++)
                {
                    column.Add(distinct[rank], (int)((long)rank * columns / d));
                }

                for (int j = 0; j < _heatCount; j++)
                {
                    long accessIndex = ((j + 1) * _heatStride) - 1;
                    counts[(int)(accessIndex / perRow)][column[_heatSamples[j]]] += _heatStride;
                }

                return new HeatMap(counts, starts, perRow, _heatStride);
            }

            private ReplayReport BuildReport(ITraceReader reader, long total, TimeSpan elapsed, TimeSpan setupTime)
            {
                Dictionary<ulong, PageCounts> regions = new();
                TopN hotPages = new(_options.HotN);
                ulong[] distinct = new ulong[_pages.Count];
                int nDistinct = 0;
                long[] kindAccesses = new long[3];
                _pages.ForEach((page, reads, writes, fetches) =>
                {
                    distinct[nDistinct++] = page;
                    hotPages.Offer(page << EptEntry.PageBits, reads, writes, fetches);
                    ref PageCounts rc = ref CollectionsMarshal.GetValueRefOrAddDefault(regions, page >> 9, out _);
                    rc.Reads += reads;
                    rc.Writes += writes;
                    rc.Fetches += fetches;
                    kindAccesses[0] += reads;
                    kindAccesses[1] += writes;
                    kindAccesses[2] += fetches;
                });
                Array.Sort(distinct);

                KindStats[] kinds = new KindStats[3];
                for (int k = 0; k < 3; k++)
                {
                    kinds[k] = new KindStats((TraceKind)k, kindAccesses[k], _kindBytes[k], _kindNotPresent[k], _kindRights[k], _kindMisconfigs[k]);
                }

                List<DepthBucket> depth = new();
                int levels = _guest.P2ms[0].Levels;
                for (int level = 1; level < _leafLevels.Length; level++)
                {
                    if (_leafLevels[level] != 0)
                    {
                        depth.Add(new DepthBucket(level, levels - level + 1, _leafLevels[level]));
                    }
                }

                TopN hotRegions = new(_options.HotN);
                foreach (KeyValuePair<ulong, PageCounts> kv in regions)
                {
                    hotRegions.Offer(kv.Key << 21, kv.Value.Reads, kv.Value.Writes, kv.Value.Fetches);
                }

                ViewStats[] views = new ViewStats[_viewCount];
                long hits = 0;
                long misses = 0;
                for (int v = 0; v < _viewCount; v++)
                {
                    SoftTlb? tlb = _guest.Tlbs[v];
                    long h = tlb?.Hits ?? 0;
                    long m = tlb?.Misses ?? 0;
                    hits += h;
                    misses += m;
                    views[v] = new ViewStats(v, _viewAccesses[v], h, m, _viewNotPresent[v], _viewRights[v], _viewMisconfigs[v], _viewUnresolved[v]);
                }

                return new ReplayReport
                {
                    GuestBytes = _options.GuestBytes,
                    Pages = _options.Pages,
                    TlbEntries = _options.TlbEntries,
                    Batch = _options.Batch,
                    Views = _options.Views,
                    ViewAccess = _options.ViewAccess,
                    Accesses = total,
                    Bytes = _kindBytes[0] + _kindBytes[1] + _kindBytes[2] + _kindBytes[3],
                    Kinds = kinds,
                    SetupTime = setupTime,
                    Elapsed = elapsed,
                    TranslationsPerSecond = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0,
                    TlbHits = hits,
                    TlbMisses = misses,
                    TlbHitRate = hits + misses > 0 ? (double)hits / (hits + misses) : 0,
                    WalkDepth = depth,
                    Violations = kinds.Sum(k => k.Violations),
                    UnresolvedFaults = _viewUnresolved.Sum(),
                    Misconfigs = kinds.Sum(k => k.Misconfigs),
                    UniquePages = _pages.Count,
                    HotPages = hotPages.ToArray(),
                    HotRegions = hotRegions.ToArray(),
                    WorkingSet = _workingSet.ToArray(),
                    ViewStats = views,
                    HeatMap = BuildHeatMap(total, distinct),
                    LinesRead = reader.LinesRead,
                    MalformedCount = reader.MalformedCount,
                    FirstMalformed = reader.FirstMalformed.Take(10).ToArray(),
                };
            }

            // The n most accessed spots (ties: lower address first), kept in a bounded heap whose
            // root is the least of them: O(spots log n), one HotSpot per winner.
            private sealed class TopN
            {
                private readonly int _n;
                private readonly PriorityQueue<(ulong Address, long Reads, long Writes, long Fetches), (long Accesses, ulong Address)> _heap;

                public TopN(int n)
                {
                    _n = n;
                    _heap = new(n + 1, Comparer<(long Accesses, ulong Address)>.Create(static (a, b) =>
                        a.Accesses != b.Accesses ? a.Accesses.CompareTo(b.Accesses) : b.Address.CompareTo(a.Address)));
                }

                public void Offer(ulong address, long reads, long writes, long fetches)
                {
                    var key = (reads + writes + fetches, address);
                    if (_heap.Count < _n)
                    {
                        _heap.Enqueue((address, reads, writes, fetches), key);
                    }
                    else if (_heap.TryPeek(out _, out var least) && _heap.Comparer.Compare(key, least) > 0)
                    {
                        _heap.EnqueueDequeue((address, reads, writes, fetches), key);
                    }
                }

                public HotSpot[] ToArray()
                {
                    var all = new HotSpot[_heap.Count];
                    for (int i = all.Length - 1; i >= 0; i--)
                    {
                        var (a, r, w, f) = _heap.Dequeue();
                        all[i] = new HotSpot(a, r + w + f, r, w, f);
                    }

                    return all;
                }
            }
        }
    }
}

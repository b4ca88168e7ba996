// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
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
    /// mapped RWX with the requested page size, translates every access (trace address folded
    /// into the guest modulo its size), and gathers statistics.
    /// </summary>
    /// <remarks>
    /// All guest pages are mapped onto one small pool of host frames (the replay translates but
    /// never touches guest data), so a 4 GiB guest costs only its page tables. An access that
    /// crosses a page boundary is counted and translated once, at its start address. Hot-page
    /// counting keeps one dictionary entry (about 40 bytes) per distinct 4 KiB trace page.
    /// </remarks>
    public static class Replayer
    {
        private const int ChunkSize = 1 << 14;
        private const int WorkingSetMaxPoints = 400;
        private const int HeatSampleCapacity = 1 << 18;
        private const int HeatBuckets = 64;
        private const int PageCacheSize = 1 << 12;

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
            return new Engine(guest, options).Run(reader, progress, cancellationToken, setup.Elapsed);
        }

        private sealed class Engine
        {
            private static readonly AccessKind[] KindToAccess = { AccessKind.Read, AccessKind.Write, AccessKind.Execute };

            private readonly ReplayGuest _guest;
            private readonly ReplayOptions _options;
            private readonly int _viewCount;
            private readonly long[] _kindAccesses = new long[3];
            private readonly long[] _kindBytes = new long[3];
            private readonly long[] _kindViolations = new long[3];
            private readonly long[] _kindMisconfigs = new long[3];
            private readonly long[] _leafLevels = new long[8];
            private readonly long[] _viewAccesses;
            private readonly long[] _viewViolations;
            private readonly long[] _viewMisconfigs;
            private readonly Dictionary<ulong, int> _pages = new();
            private readonly List<WorkingSetPoint> _workingSet = new();
            private readonly ulong[] _heatSamples = new ulong[HeatSampleCapacity];
            private readonly ulong[][] _batchGpas = Array.Empty<ulong[]>();
            private readonly int[] _batchCounts = Array.Empty<int>();
            private readonly EptTranslation[] _batchResults = Array.Empty<EptTranslation>();
            private int _heatCount;
            private long _heatStride = 1;
            private long _wsInterval = 1;

            // Page counters: _pages maps a trace page to its index in _counts (3 longs per page:
            // reads, writes, fetches); a direct-mapped cache of page -> index sits in front.
            private readonly ulong[] _cachePage = new ulong[PageCacheSize];
            private readonly int[] _cacheIndex = new int[PageCacheSize];
            private long[] _counts = new long[3 * 1024];

            public Engine(ReplayGuest guest, ReplayOptions options)
            {
                _guest = guest;
                _options = options;
                _viewCount = options.Views + 1;
                _viewAccesses = new long[_viewCount];
                _viewViolations = new long[_viewCount];
                _viewMisconfigs = new long[_viewCount];
                Array.Fill(_cachePage, ulong.MaxValue);
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

            public ReplayReport Run(ITraceReader reader, Action<ReplayProgress>? progress, CancellationToken ct, TimeSpan setupTime)
            {
                TraceAccess[] buffer = new TraceAccess[ChunkSize];
                Stopwatch sw = Stopwatch.StartNew();
                long lastProgressTicks = 0;
                long progressInterval = Stopwatch.Frequency / 10;
                long total = 0;
                long wsCountdown = _wsInterval;
                long heatCountdown = _heatStride;
                int view = 0;
                ulong pageMask = _guest.GuestPages - 1;
                bool pow2 = (_guest.GuestPages & pageMask) == 0;
                ulong guestPages = _guest.GuestPages;
                int viewCount = _viewCount;
                bool batch = _options.Batch > 0;
                P2m[] p2ms = _guest.P2ms;
                SoftTlb?[] tlbs = _guest.Tlbs;
                P2m p0 = p2ms[0];
                SoftTlb? t0 = tlbs[0];

                int n;
                while ((n = reader.Read(buffer)) > 0)
                {
                    ct.ThrowIfCancellationRequested();
                    for (int i = 0; i < n; i++)
                    {
                        TraceAccess a = buffer[i];
                        ulong address = a.Address;
                        int k = (int)a.Kind;
                        AccessKind access = KindToAccess[k];
                        unchecked
                        {
                            _kindAccesses[k]++;
                            _kindBytes[k] += a.Size;
                            ulong page = address >> EptEntry.PageBits;
                            int slot = (int)(page & (PageCacheSize - 1));
                            int index = _cachePage[slot] == page ? _cacheIndex[slot] : PageIndex(page, slot);
                            _counts[index + k]++;
                            ulong gfn = pow2 ? page & pageMask : page % guestPages;
                            ulong gpa = (gfn << EptEntry.PageBits) | (address & EptEntry.PageMask);
                            if (batch)
                            {
                                Enqueue(view, k, gpa);
                            }
                            else if (viewCount == 1)
                            {
                                Tally(t0 is not null ? t0.Translate(gpa, access) : p0.Translate(gpa, access), k, 0);
                            }
                            else
                            {
                                SoftTlb? tlb = tlbs[view];
                                Tally(tlb is not null ? tlb.Translate(gpa, access) : p2ms[view].Translate(gpa, access), k, view);
                            }

                            if (viewCount > 1)
                            {
                                _viewAccesses[view]++;
                                if (++view == viewCount)
                                {
                                    view = 0;
                                }
                            }

                            total++;
                            if (--wsCountdown == 0)
                            {
                                SampleWorkingSet(total);
                                wsCountdown = _wsInterval;
                            }

                            if (--heatCountdown == 0)
                            {
                                SampleHeat(page);
                                heatCountdown = _heatStride;
                            }
                        }
                    }

                    if (progress is not null && sw.ElapsedTicks - lastProgressTicks >= progressInterval)
                    {
                        lastProgressTicks = sw.ElapsedTicks;
                        progress(MakeProgress(reader, total, sw.Elapsed));
                    }
                }

                if (batch)
                {
                    for (int q = 0; q < _batchCounts.Length; q++)
                    {
                        FlushBatch(q);
                    }
                }

                sw.Stop();
                if (viewCount == 1)
                {
                    _viewAccesses[0] = total;
                }

                if (_workingSet.Count == 0 || _workingSet[^1].Accesses != total)
                {
                    _workingSet.Add(new WorkingSetPoint(total, _pages.Count));
                }

                progress?.Invoke(MakeProgress(reader, total, sw.Elapsed));
                return BuildReport(reader, total, sw.Elapsed, setupTime);
            }

            private static ReplayProgress MakeProgress(ITraceReader reader, long total, TimeSpan elapsed)
            {
                (long done, long all) = reader.Position;
                double rate = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0;
                return new ReplayProgress(total, done, all, rate);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            private void Tally(EptTranslation t, int kind, int view)
            {
                unchecked
                {
                    EptStatus s = t.Status;
                    if (s == EptStatus.Ok)
                    {
                        _leafLevels[t.Level & 7]++;
                    }
                    else if (s == EptStatus.Violation)
                    {
                        _kindViolations[kind]++;
                        _viewViolations[view]++;
                    }
                    else
                    {
                        _kindMisconfigs[kind]++;
                        _viewMisconfigs[view]++;
                    }
                }
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
                ReadOnlySpan<ulong> gpas = _batchGpas[q].AsSpan(0, count);
                Span<EptTranslation> results = _batchResults.AsSpan(0, count);
                SoftTlb? tlb = _guest.Tlbs[view];
                if (tlb is not null)
                {
                    tlb.TranslateBatch(gpas, KindToAccess[kind], results);
                }
                else
                {
                    _guest.P2ms[view].TranslateBatch(gpas, KindToAccess[kind], results);
                }

                for (int i = 0; i < results.Length; i++)
                {
                    Tally(results[i], kind, view);
                }

                _batchCounts[q] = 0;
            }

            private int PageIndex(ulong page, int slot)
            {
                ref int index = ref CollectionsMarshal.GetValueRefOrAddDefault(_pages, page, out bool exists);
                if (!exists)
                {
                    index = 3 * (_pages.Count - 1);
                    if (index + 3 > _counts.Length)
                    {
                        Array.Resize(ref _counts, _counts.Length * 2);
                    }
                }

                _cachePage[slot] = page;
                _cacheIndex[slot] = index;
                return index;
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

            private HeatMap BuildHeatMap(long total)
            {
                if (_heatCount == 0)
                {
                    return new HeatMap(Array.Empty<long[]>(), Array.Empty<ulong>(), 0, _heatStride);
                }

                ulong[] distinct = _heatSamples.AsSpan(0, _heatCount).ToArray();
                Array.Sort(distinct);
                int d = 0;
                for (int i = 0; i < distinct.Length; i++)
                {
                    if (i == 0 || distinct[i] != distinct[d - 1])
                    {
                        distinct[d++] = distinct[i];
                    }
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

                for (int j = 0; j < _heatCount; j++)
                {
                    long accessIndex = ((j + 1) * _heatStride) - 1;
                    int row = (int)(accessIndex / perRow);
                    int rank = Array.BinarySearch(distinct, 0, d, _heatSamples[j]);
                    int column = (int)((long)rank * columns / d);
                    counts[row][column] += _heatStride;
                }

                return new HeatMap(counts, starts, perRow, _heatStride);
            }

            private ReplayReport BuildReport(ITraceReader reader, long total, TimeSpan elapsed, TimeSpan setupTime)
            {
                KindStats[] kinds = new KindStats[3];
                for (int k = 0; k < 3; k++)
                {
                    kinds[k] = new KindStats((TraceKind)k, _kindAccesses[k], _kindBytes[k], _kindViolations[k], _kindMisconfigs[k]);
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

                Dictionary<ulong, PageCounts> regions = new();
                List<HotSpot> pages = new(_pages.Count);
                foreach (KeyValuePair<ulong, int> kv in _pages)
                {
                    PageCounts c = new PageCounts { Reads = _counts[kv.Value], Writes = _counts[kv.Value + 1], Fetches = _counts[kv.Value + 2] };
                    pages.Add(new HotSpot(kv.Key << EptEntry.PageBits, c.Reads + c.Writes + c.Fetches, c.Reads, c.Writes, c.Fetches));
                    ref PageCounts rc = ref CollectionsMarshal.GetValueRefOrAddDefault(regions, kv.Key >> 9, out _);
                    rc.Reads += c.Reads;
                    rc.Writes += c.Writes;
                    rc.Fetches += c.Fetches;
                }

                List<HotSpot> hotRegions = new(regions.Count);
                foreach (KeyValuePair<ulong, PageCounts> kv in regions)
                {
                    PageCounts c = kv.Value;
                    hotRegions.Add(new HotSpot(kv.Key << 21, c.Reads + c.Writes + c.Fetches, c.Reads, c.Writes, c.Fetches));
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
                    views[v] = new ViewStats(v, _viewAccesses[v], h, m, _viewViolations[v], _viewMisconfigs[v]);
                }

                return new ReplayReport
                {
                    GuestBytes = _options.GuestBytes,
                    Pages = _options.Pages,
                    TlbEntries = _options.TlbEntries,
                    Batch = _options.Batch,
                    Views = _options.Views,
                    Accesses = total,
                    Bytes = _kindBytes[0] + _kindBytes[1] + _kindBytes[2],
                    Kinds = kinds,
                    SetupTime = setupTime,
                    Elapsed = elapsed,
                    TranslationsPerSecond = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0,
                    TlbHits = hits,
                    TlbMisses = misses,
                    TlbHitRate = hits + misses > 0 ? (double)hits / (hits + misses) : 0,
                    WalkDepth = depth,
                    Violations = _kindViolations[0] + _kindViolations[1] + _kindViolations[2],
                    Misconfigs = _kindMisconfigs[0] + _kindMisconfigs[1] + _kindMisconfigs[2],
                    UniquePages = _pages.Count,
                    HotPages = Top(pages, _options.HotN),
                    HotRegions = Top(hotRegions, _options.HotN),
                    WorkingSet = _workingSet.ToArray(),
                    ViewStats = views,
                    HeatMap = BuildHeatMap(total),
                    LinesRead = reader.LinesRead,
                    MalformedCount = reader.MalformedCount,
                    FirstMalformed = reader.FirstMalformed.Take(10).ToArray(),
                };
            }

            private static HotSpot[] Top(List<HotSpot> all, int n)
            {
                all.Sort(static (a, b) => a.Accesses != b.Accesses ? b.Accesses.CompareTo(a.Accesses) : a.Address.CompareTo(b.Address));
                return all.Take(n).ToArray();
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    /// <summary>An <see cref="ITraceReader"/> over an array, handing out at most <c>chunk</c> accesses per call.</summary>
    internal sealed class ReplayTestReader : ITraceReader
    {
        private readonly TraceAccess[] _data;
        private readonly int _chunk;
        private int _pos;

        public ReplayTestReader(TraceAccess[] data, int chunk = int.MaxValue, IReadOnlyList<MalformedLine>? malformed = null)
        {
            _data = data;
            _chunk = chunk;
            FirstMalformed = malformed ?? Array.Empty<MalformedLine>();
        }

        public long LinesRead => _pos + FirstMalformed.Count;

        public long MalformedCount => FirstMalformed.Count;

        public IReadOnlyList<MalformedLine> FirstMalformed { get; }

        public (long Done, long Total) Position => (_pos * 16L, _data.Length * 16L);

        public int Read(Span<TraceAccess> buffer)
        {
            int n = Math.Min(Math.Min(buffer.Length, _chunk), _data.Length - _pos);
            _data.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        public void Dispose()
        {
        }
    }

    public sealed class ReplayTests
    {
        private const long Guest = 64L << 20;

        /// <summary>A deterministic trace over 60 pages spread across the address space (some far above the guest size).</summary>
        internal static TraceAccess[] MakeTrace(int count, int seed = 7)
        {
            Random r = new Random(seed);
            ulong[] pages = Enumerable.Range(0, 60).Select(i => i switch
            {
                < 20 => 0x400UL + (ulong)i,                          // code, contiguous
                < 40 => 0x7FFF_F000UL + (ulong)(i * 37),             // far above the guest: folded modulo
                _ => (ulong)r.Next(1 << 20) * 3,                     // scattered
            }).ToArray();
            TraceAccess[] trace = new TraceAccess[count];
            for (int i = 0; i < count; i++)
            {
                // Skewed page choice so the top pages differ in count.
                int p = Math.Min(pages.Length - 1, (int)(Math.Pow(r.NextDouble(), 3) * pages.Length));
                ulong address = (pages[p] << 12) + (ulong)r.Next(4096);
                trace[i] = new TraceAccess(address, (ushort)r.Next(1, 9), (TraceKind)r.Next(3));
            }

            return trace;
        }

        private static ReplayReport Run(TraceAccess[] trace, ReplayOptions options, int chunk = int.MaxValue)
        {
            using ReplayTestReader reader = new ReplayTestReader(trace, chunk);
            return Replayer.Run(reader, options, null, CancellationToken.None);
        }

        [Theory]
        [InlineData(PageMode.Size4K, 256, 0)]
        [InlineData(PageMode.Size4K, 0, 0)]
        [InlineData(PageMode.Size2M, 256, 0)]
        [InlineData(PageMode.Mixed, 16, 0)]
        [InlineData(PageMode.Size4K, 256, 64)]
        [InlineData(PageMode.Mixed, 0, 5)]
        public void Totals_MatchIndependentCounts(PageMode pages, int tlb, int batch)
        {
            TraceAccess[] trace = MakeTrace(20_000);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = pages, TlbEntries = tlb, Batch = batch, HotN = 10 }, chunk: 999);

            Assert.Equal(trace.Length, report.Accesses);
            Assert.Equal(trace.Sum(a => (long)a.Size), report.Bytes);
            foreach (TraceKind k in Enum.GetValues<TraceKind>())
            {
                KindStats s = Assert.Single(report.Kinds, x => x.Kind == k);
                Assert.Equal(trace.Count(a => a.Kind == k), s.Accesses);
                Assert.Equal(trace.Where(a => a.Kind == k).Sum(a => (long)a.Size), s.Bytes);
                Assert.Equal(0, s.Violations);
                Assert.Equal(0, s.Misconfigs);
            }

            var byPage = trace.GroupBy(a => a.Address >> 12)
                .Select(g => new HotSpot(g.Key << 12, g.LongCount(), g.LongCount(a => a.Kind == TraceKind.Read), g.LongCount(a => a.Kind == TraceKind.Write), g.LongCount(a => a.Kind == TraceKind.Fetch)))
                .OrderByDescending(h => h.Accesses).ThenBy(h => h.Address).ToList();
            Assert.Equal(byPage.Count, report.UniquePages);
            Assert.Equal(byPage.Take(10), report.HotPages);

            var byRegion = trace.GroupBy(a => a.Address >> 21)
                .Select(g => new HotSpot(g.Key << 21, g.LongCount(), g.LongCount(a => a.Kind == TraceKind.Read), g.LongCount(a => a.Kind == TraceKind.Write), g.LongCount(a => a.Kind == TraceKind.Fetch)))
                .OrderByDescending(h => h.Accesses).ThenBy(h => h.Address).Take(10).ToList();
            Assert.Equal(byRegion, report.HotRegions);

            Assert.Equal(new WorkingSetPoint(trace.Length, byPage.Count), report.WorkingSet[^1]);
            Assert.Equal(trace.Length, report.WalkDepth.Sum(d => d.Translations));
            int[] leafLevels = report.WalkDepth.Select(d => d.LeafLevel).ToArray();
            switch (pages)
            {
                case PageMode.Size4K:
                    Assert.Equal(new[] { 1 }, leafLevels);
                    Assert.Equal(4, report.WalkDepth[0].LevelsWalked);
                    break;
                case PageMode.Size2M:
                    Assert.Equal(new[] { 2 }, leafLevels);
                    Assert.Equal(3, report.WalkDepth[0].LevelsWalked);
                    break;
                case PageMode.Mixed:
                    Assert.Equal(new[] { 1, 2 }, leafLevels);
                    break;
            }

            if (tlb > 0)
            {
                Assert.Equal(trace.Length, report.TlbHits + report.TlbMisses);
                Assert.True(report.TlbHits > 0);
                Assert.Equal((double)report.TlbHits / trace.Length, report.TlbHitRate, 12);
            }
            else
            {
                Assert.Equal(0, report.TlbHits + report.TlbMisses);
                Assert.Equal(0, report.TlbHitRate);
            }
        }

        [Fact]
        public void Size1G_WalksTwoLevels()
        {
            TraceAccess[] trace = MakeTrace(5_000);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = 1L << 30, Pages = PageMode.Size1G });
            DepthBucket d = Assert.Single(report.WalkDepth);
            Assert.Equal(3, d.LeafLevel);
            Assert.Equal(2, d.LevelsWalked);
            Assert.Equal(trace.Length, d.Translations);
        }

        [Theory]
        [InlineData(PageMode.Size4K)]
        [InlineData(PageMode.Mixed)]
        public void TlbAndBatch_GiveTheSameOutcomesAsScalar(PageMode pages)
        {
            TraceAccess[] trace = MakeTrace(30_000, seed: 3);
            ReplayReport scalar = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = pages, TlbEntries = 0 });
            foreach ((int tlb, int batch) in new[] { (256, 0), (1, 0), (0, 1), (0, 256), (64, 256), (256, 4096) })
            {
                ReplayReport other = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = pages, TlbEntries = tlb, Batch = batch });
                Assert.Equal(scalar.WalkDepth, other.WalkDepth);
                Assert.Equal(scalar.Kinds, other.Kinds);
                Assert.Equal(scalar.HotPages, other.HotPages);
                Assert.Equal(scalar.UniquePages, other.UniquePages);
                Assert.Equal(scalar.WorkingSet, other.WorkingSet);
            }
        }

        [Fact]
        public void Views_DealAccessesRoundRobin()
        {
            TraceAccess[] trace = MakeTrace(10_001);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, Views = 3, TlbEntries = 64 });
            Assert.Equal(3, report.Views);
            Assert.Equal(new[] { 0, 1, 2, 3 }, report.ViewStats.Select(v => v.View));
            Assert.Equal(new long[] { 2501, 2500, 2500, 2500 }, report.ViewStats.Select(v => v.Accesses));
            foreach (ViewStats v in report.ViewStats)
            {
                // A faulting access walks again after the lazy copy: one extra lookup per fault.
                Assert.Equal(v.Accesses + v.Violations, v.TlbHits + v.TlbMisses);
                Assert.Equal(0, v.Unresolved);
            }

            Assert.Equal(0, report.ViewStats[0].Violations);
            Assert.Equal(report.TlbHits, report.ViewStats.Sum(v => v.TlbHits));
            Assert.Equal(trace.Length, report.WalkDepth.Sum(d => d.Translations));

            ReplayReport batched = Run(trace, new ReplayOptions { GuestBytes = Guest, Views = 2, TlbEntries = 0, Batch = 32 });
            Assert.Equal(new long[] { 3334, 3334, 3333 }, batched.ViewStats.Select(v => v.Accesses));
            Assert.Equal(report.WalkDepth, batched.WalkDepth);
        }

        // Reference model of the replay's altp2m views: the host maps every page RWX; alternate
        // view v starts empty; an access missing from the view is a not-present violation that
        // copies the host mapping (its whole page, 4K or 2M) with the view's default access; an
        // access the entry's EPT rights forbid is a violation (not-present when the entry grants
        // nothing) that the domain, with no mem_access listener, resolves by relaxing that 4K page
        // to RWX, or by promoting rx2rw to rw on a write. Faults are counted per view and kind.
        // With batching, accesses are translated (and fault) in the order the replay's
        // per-(view, kind) queues are flushed: when full, and all at the end in queue order.
        private static (long[,] NotPresent, long[,] Rights) ModelViewFaults(TraceAccess[] trace, int views, P2mAccess viewAccess, ulong blockPages, int batch)
        {
            const ulong GuestPages = (ulong)(Guest >> 12);
            var order = new List<int>(trace.Length);
            if (batch == 0)
            {
                order.AddRange(Enumerable.Range(0, trace.Length));
            }
            else
            {
                var queues = Enumerable.Range(0, (views + 1) * 3).Select(_ => new List<int>()).ToArray();
                for (int j = 0; j < trace.Length; j++)
                {
                    List<int> q = queues[(j % (views + 1) * 3) + (int)trace[j].Kind];
                    q.Add(j);
                    if (q.Count == batch)
                    {
                        order.AddRange(q);
                        q.Clear();
                    }
                }

                foreach (List<int> q in queues)
                {
                    order.AddRange(q);
                }
            }

            var state = new Dictionary<(int View, ulong Gfn), P2mAccess>();
            long[,] notPresent = new long[views + 1, 3];
            long[,] rights = new long[views + 1, 3];
            foreach (int j in order)
            {
                int v = j % (views + 1);
                if (v == 0)
                {
                    continue;
                }

                int k = (int)trace[j].Kind;
                ulong gfn = (trace[j].Address >> 12) % GuestPages;
                while (true)
                {
                    if (!state.TryGetValue((v, gfn), out P2mAccess access))
                    {
                        notPresent[v, k]++;
                        ulong first = gfn / blockPages * blockPages;
                        for (ulong p = first; p < first + blockPages; p++)
                        {
                            state[(v, p)] = viewAccess;
                        }

                        continue;
                    }

                    int eptRights = access switch
                    {
                        P2mAccess.RX2RW => 5,
                        P2mAccess.N2RWX => 0,
                        P2mAccess.R_PW => 1,
                        _ => (int)access,
                    };
                    if ((eptRights & (1 << k)) != 0)
                    {
                        break;
                    }

                    if (eptRights == 0)
                    {
                        notPresent[v, k]++;
                    }
                    else
                    {
                        rights[v, k]++;
                    }

                    state[(v, gfn)] = access == P2mAccess.RX2RW && k == (int)TraceKind.Write ? P2mAccess.RW : P2mAccess.RWX;
                }
            }

            return (notPresent, rights);
        }

        [Theory]
        [InlineData(PageMode.Size4K, P2mAccess.RWX, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 0, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 0, 32)]
        [InlineData(PageMode.Size4K, P2mAccess.RX, 16, 512)]
        [InlineData(PageMode.Size4K, P2mAccess.R, 16, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.RW, 256, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.N, 64, 7)]
        [InlineData(PageMode.Size4K, P2mAccess.RX2RW, 64, 0)]
        [InlineData(PageMode.Size4K, P2mAccess.N2RWX, 0, 0)]
        [InlineData(PageMode.Size2M, P2mAccess.RWX, 64, 0)]
        [InlineData(PageMode.Size2M, P2mAccess.RWX, 0, 16)]
        [InlineData(PageMode.Size2M, P2mAccess.RX, 64, 0)]
        public void Views_FaultsMatchTheAltp2mModel(PageMode pages, P2mAccess viewAccess, int tlb, int batch)
        {
            const int Views = 2;
            TraceAccess[] trace = MakeTrace(20_000, seed: 11);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = pages, Views = Views, ViewAccess = viewAccess, TlbEntries = tlb, Batch = batch }, chunk: 999);
            (long[,] notPresent, long[,] rights) = ModelViewFaults(trace, Views, viewAccess, pages == PageMode.Size2M ? 512UL : 1UL, batch);

            Assert.Equal(viewAccess, report.ViewAccess);
            Assert.Equal(0, report.UnresolvedFaults);
            Assert.Equal(0, report.Misconfigs);
            for (int v = 0; v <= Views; v++)
            {
                ViewStats s = report.ViewStats[v];
                Assert.Equal(Enumerable.Range(0, 3).Sum(k => notPresent[v, k]), s.NotPresent);
                Assert.Equal(Enumerable.Range(0, 3).Sum(k => rights[v, k]), s.Rights);
                Assert.Equal(0, s.Unresolved);
            }

            for (int k = 0; k < 3; k++)
            {
                KindStats ks = report.Kinds[k];
                Assert.Equal(Enumerable.Range(0, Views + 1).Sum(v => notPresent[v, k]), ks.NotPresent);
                Assert.Equal(Enumerable.Range(0, Views + 1).Sum(v => rights[v, k]), ks.Rights);
            }

            Assert.True(report.ViewStats[1].NotPresent > 0, "the views start empty");
            Assert.Equal(report.Kinds.Sum(k => k.Violations), report.Violations);
            // Every access ends translated, whatever it faulted on the way.
            Assert.Equal(trace.Length, report.WalkDepth.Sum(d => d.Translations));
        }

        [Fact]
        public void Views_BatchedAndScalarReplaysAgree_OnMixedPages()
        {
            // With RWX views every fault is the first touch of a host page (2M or 4K, by the mixed
            // layout) in a view: the per-view totals do not depend on the order batching imposes.
            TraceAccess[] trace = MakeTrace(15_000, seed: 5);
            var scalar = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = PageMode.Mixed, Views = 3, TlbEntries = 32 });
            var batched = Run(trace, new ReplayOptions { GuestBytes = Guest, Pages = PageMode.Mixed, Views = 3, TlbEntries = 0, Batch = 100 }, chunk: 4096);
            Assert.Equal(scalar.Kinds.Select(k => k.Accesses), batched.Kinds.Select(k => k.Accesses));
            Assert.Equal(scalar.WalkDepth, batched.WalkDepth);
            Assert.Equal(scalar.ViewStats.Select(v => (v.Accesses, v.NotPresent, v.Rights, v.Unresolved)), batched.ViewStats.Select(v => (v.Accesses, v.NotPresent, v.Rights, v.Unresolved)));
            Assert.Equal(0, scalar.ViewStats[1].Rights);
            // Fewer faults than distinct pages: some pages came in with a 2M copy.
            long distinctPages = trace.Select(a => (a.Address >> 12) % (ulong)(Guest >> 12)).Distinct().LongCount();
            Assert.InRange(scalar.ViewStats[1].NotPresent, 1, distinctPages - 1);
        }

        [Fact]
        public void SingleView_HasOneViewRow()
        {
            TraceAccess[] trace = MakeTrace(100);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest });
            ViewStats v = Assert.Single(report.ViewStats);
            Assert.Equal(100, v.Accesses);
            Assert.Equal(100, v.TlbHits + v.TlbMisses);
        }

        [Fact]
        public void WorkingSet_IsSampledMonotonicAndEndsAtUniquePages()
        {
            // Each access touches a new page every 7 accesses, so the curve keeps rising.
            TraceAccess[] trace = Enumerable.Range(0, 123_457).Select(i => new TraceAccess((ulong)(i / 7) << 12, 4, TraceKind.Read)).ToArray();
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest, TlbEntries = 0 }, chunk: 4096);
            IReadOnlyList<WorkingSetPoint> ws = report.WorkingSet;
            Assert.InRange(ws.Count, 150, 401);
            for (int i = 1; i < ws.Count; i++)
            {
                Assert.True(ws[i].Accesses > ws[i - 1].Accesses);
                Assert.True(ws[i].UniquePages >= ws[i - 1].UniquePages);
            }

            foreach (WorkingSetPoint p in ws)
            {
                Assert.Equal((p.Accesses + 6) / 7, p.UniquePages);
            }

            Assert.Equal(new WorkingSetPoint(123_457, (123_457 + 6) / 7), ws[^1]);
        }

        [Fact]
        public void HeatMap_CountsEveryAccessOfASmallTrace()
        {
            TraceAccess[] trace = MakeTrace(6_400, seed: 11);
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest });
            HeatMap heat = report.HeatMap;
            Assert.Equal(1, heat.SampleStride);
            Assert.Equal(64, heat.TimeBuckets);
            Assert.Equal(100, heat.AccessesPerTimeBucket);
            int distinct = trace.Select(a => a.Address >> 12).Distinct().Count();
            Assert.Equal(Math.Min(64, distinct), heat.AddressBuckets);
            Assert.Equal(trace.Length, heat.Counts.Sum(r => r.Sum()));
            for (int t = 0; t < heat.TimeBuckets; t++)
            {
                Assert.Equal(100, heat.Counts[t].Sum());
            }

            Assert.Equal(trace.Min(a => a.Address >> 12) << 12, heat.AddressBucketStart[0]);
            Assert.True(heat.AddressBucketStart.Zip(heat.AddressBucketStart.Skip(1)).All(p => p.First < p.Second));

            // Column of one address: rank among distinct pages.
            ulong[] sorted = trace.Select(a => a.Address >> 12).Distinct().OrderBy(p => p).ToArray();
            long[] expectedFirstRow = new long[heat.AddressBuckets];
            foreach (TraceAccess a in trace.Take(100))
            {
                expectedFirstRow[Array.BinarySearch(sorted, a.Address >> 12) * heat.AddressBuckets / sorted.Length]++;
            }

            Assert.Equal(expectedFirstRow, heat.Counts[0]);
        }

        [Fact]
        public void HeatMap_SamplesLargeTraces()
        {
            TraceAccess[] trace = Enumerable.Range(0, 600_000).Select(i => new TraceAccess((ulong)(i % 5000) << 12, 1, TraceKind.Write)).ToArray();
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = Guest });
            // The stride doubles each time the samples fill up: the first power of two that keeps
            // 600,000 accesses' samples below capacity.
            long stride = 1;
            while (600_000 / stride >= Replayer.HeatSampleCapacity)
            {
                stride *= 2;
            }

            Assert.Equal(stride, report.HeatMap.SampleStride);
            Assert.True(stride > 1);
            Assert.Equal(64, report.HeatMap.TimeBuckets);
            Assert.Equal(600_000, report.HeatMap.Counts.Sum(r => r.Sum()));
            // Columns split all 5,000 pages touched (not only the sampled ones): column c starts
            // at page c * 5000 / 64.
            Assert.Equal(64, report.HeatMap.AddressBuckets);
            Assert.Equal(Enumerable.Range(0, 64).Select(c => (ulong)(c * 5000 / 64) << 12), report.HeatMap.AddressBucketStart);
        }

        [Fact]
        public void EmptyTrace_GivesAnEmptyReport()
        {
            ReplayReport report = Run(Array.Empty<TraceAccess>(), new ReplayOptions { GuestBytes = Guest });
            Assert.Equal(0, report.Accesses);
            Assert.Equal(0, report.UniquePages);
            Assert.Empty(report.HotPages);
            Assert.Equal(0, report.HeatMap.TimeBuckets);
            Assert.Equal(new WorkingSetPoint(0, 0), Assert.Single(report.WorkingSet));
        }

        [Fact]
        public void GuestFolding_AddressesAboveTheGuestStillTranslate()
        {
            TraceAccess[] trace = { new(0xFFFF_FFFF_FFFF_FFF0, 8, TraceKind.Read), new(0x1234_5678_9ABC, 2, TraceKind.Fetch), new(0, 1, TraceKind.Write) };
            ReplayReport report = Run(trace, new ReplayOptions { GuestBytes = 6L << 20, Pages = PageMode.Size2M });
            Assert.Equal(0, report.Violations);
            Assert.Equal(3, report.WalkDepth.Sum(d => d.Translations));
            Assert.Equal(0xFFFF_FFFF_FFFF_F000UL, report.HotPages.Max(h => h.Address));
        }

        [Fact]
        public void Malformed_ComesFromTheReader()
        {
            MalformedLine[] bad = Enumerable.Range(1, 12).Select(i => new MalformedLine(i * 2, "junk " + i, "bad")).ToArray();
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10), malformed: bad);
            ReplayReport report = Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest }, null, CancellationToken.None);
            Assert.Equal(12, report.MalformedCount);
            Assert.Equal(bad.Take(10), report.FirstMalformed);
            Assert.Equal(22, report.LinesRead);
        }

        [Fact]
        public void Progress_ReportsTheFinalCount()
        {
            TraceAccess[] trace = MakeTrace(1000);
            List<ReplayProgress> seen = new();
            using ReplayTestReader reader = new ReplayTestReader(trace, chunk: 100);
            Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest }, seen.Add, CancellationToken.None);
            ReplayProgress last = seen[^1];
            Assert.Equal(1000, last.Accesses);
            Assert.Equal(16_000, last.BytesDone);
            Assert.Equal(16_000, last.BytesTotal);
            Assert.True(last.AccessesPerSecond >= 0);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void Cancellation_Throws(bool readAhead)
        {
            using CancellationTokenSource cts = new();
            cts.Cancel();
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10));
            Assert.ThrowsAny<OperationCanceledException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, cts.Token));
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void Cancellation_MidReplay_StopsAndThrows(bool readAhead)
        {
            // Cancelled by the reader itself on its fifth read (with read-ahead, from the reader's
            // thread): the replay stops with the cancellation, and the reader is not read to the end.
            using CancellationTokenSource cts = new();
            using FailingReader reader = new FailingReader(MakeTrace(200_000), failAfter: int.MaxValue, onRead: n =>
            {
                if (n == 5)
                {
                    cts.Cancel();
                }
            });
            Assert.ThrowsAny<OperationCanceledException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, cts.Token));
            Assert.InRange(reader.Reads, 5, 5 + 4);
        }

        [Fact]
        public void ReadAhead_GivesTheSameReport()
        {
            // The same trace in chunks of 1,000 with and without the reader running ahead on its
            // own thread: identical statistics (timings aside).
            TraceAccess[] trace = MakeTrace(120_000, seed: 3);
            foreach (ReplayOptions o in new[]
            {
                new ReplayOptions { GuestBytes = Guest },
                new ReplayOptions { GuestBytes = Guest, TlbEntries = 0, Views = 2, ViewAccess = P2mAccess.RX },
                new ReplayOptions { GuestBytes = Guest, Batch = 64, Pages = PageMode.Mixed },
            })
            {
                o.ReadAhead = false;
                ReplayReport serial = Run(trace, o, chunk: 1000);
                o.ReadAhead = true;
                ReplayReport ahead = Run(trace, o, chunk: 1000);
                Assert.Equal(serial.Accesses, ahead.Accesses);
                Assert.Equal(serial.Kinds, ahead.Kinds);
                Assert.Equal(serial.WalkDepth, ahead.WalkDepth);
                Assert.Equal(serial.ViewStats, ahead.ViewStats);
                Assert.Equal(serial.HotPages, ahead.HotPages);
                Assert.Equal(serial.HotRegions, ahead.HotRegions);
                Assert.Equal(serial.WorkingSet, ahead.WorkingSet);
                Assert.Equal(serial.HeatMap.Counts, ahead.HeatMap.Counts);
                Assert.Equal(serial.TlbHits, ahead.TlbHits);
            }
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void ReaderFailure_IsRethrownAsIs(bool readAhead)
        {
            using FailingReader reader = new FailingReader(MakeTrace(50_000), failAfter: 3);
            IOException e = Assert.Throws<IOException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, CancellationToken.None));
            Assert.Equal("disk on fire", e.Message);
        }

        private sealed class FailingReader(TraceAccess[] data, int failAfter, Action<int>? onRead = null) : ITraceReader
        {
            private readonly ReplayTestReader _inner = new(data, chunk: 1000);
            private int _reads;

            public int Reads => Volatile.Read(ref _reads);

            public long LinesRead => _inner.LinesRead;

            public long MalformedCount => 0;

            public IReadOnlyList<MalformedLine> FirstMalformed => Array.Empty<MalformedLine>();

            public (long Done, long Total) Position => _inner.Position;

            public int Read(Span<TraceAccess> buffer)
            {
                int n = Interlocked.Increment(ref _reads);
                onRead?.Invoke(n);
                return n > failAfter ? throw new IOException("disk on fire") : _inner.Read(buffer);
            }

            public void Dispose() => _inner.Dispose();
        }

        public static IEnumerable<object[]> BadOptions()
        {
            yield return new object[] { new ReplayOptions { GuestBytes = 0 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = -(2L << 20) }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = (2L << 20) + 4096 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = 2L << 40 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = 512L << 20, Pages = PageMode.Size1G }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { Pages = (PageMode)9 }, "Pages" };
            yield return new object[] { new ReplayOptions { TlbEntries = -1 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { TlbEntries = 100 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { TlbEntries = 1 << 25 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { Batch = -1 }, "Batch" };
            yield return new object[] { new ReplayOptions { Batch = ReplayOptions.MaxBatch + 1 }, "Batch" };
            yield return new object[] { new ReplayOptions { Views = -1 }, "Views" };
            yield return new object[] { new ReplayOptions { Views = ReplayOptions.MaxViews + 1 }, "Views" };
            yield return new object[] { new ReplayOptions { HotN = 0 }, "HotN" };
        }

        [Theory]
        [MemberData(nameof(BadOptions))]
        public void BadOptions_AreRejectedByName(ReplayOptions options, string name)
        {
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10));
            ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => Replayer.Run(reader, options, null, CancellationToken.None));
            Assert.Equal(name, e.ParamName);
        }

        [Fact]
        public void NullArguments_Throw()
        {
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(1));
            Assert.Throws<ArgumentNullException>(() => Replayer.Run(null!, new ReplayOptions(), null, CancellationToken.None));
            Assert.Throws<ArgumentNullException>(() => Replayer.Run(reader, null!, null, CancellationToken.None));
        }

        [Fact]
        public void DefaultOptions_AreThoseDocumented()
        {
            ReplayOptions o = new();
            Assert.Equal(4L << 30, o.GuestBytes);
            Assert.Equal(PageMode.Size4K, o.Pages);
            Assert.Equal(256, o.TlbEntries);
            Assert.Equal(0, o.Batch);
            Assert.Equal(0, o.Views);
            Assert.Equal(20, o.HotN);
        }

        [Fact]
        public void DefaultGuest_ReplaysATrace()
        {
            // The full default guest: 4 GiB of 4K pages.
            ReplayReport report = Run(MakeTrace(1000), new ReplayOptions());
            Assert.Equal(1000, report.WalkDepth.Single(d => d.LeafLevel == 1).Translations);
        }
    }
}

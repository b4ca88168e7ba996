// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public sealed partial class ReplayTests
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
    }
}

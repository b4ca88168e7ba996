// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public sealed partial class ReplayTests
    {
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
    }
}

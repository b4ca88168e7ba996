// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// Builds the <see cref="ReplayReport"/> of a finished replay from its two halves: the
    /// trace's statistics (<see cref="TraceStatistics"/>) and the translation's counters
    /// (<see cref="ReplayEngine"/>), plus the guest's TLBs and the reader's malformed lines.
    /// </summary>
    internal static class ReportBuilder
    {
        private struct PageCounts
        {
            public long Reads;
            public long Writes;
            public long Fetches;
        }

        public static ReplayReport Build(
            ReplayOptions options,
            ReplayGuest guest,
            ReplayEngine engine,
            TraceStatistics statistics,
            ITraceReader reader,
            TimeSpan elapsed,
            TimeSpan setupTime)
        {
            long total = statistics.Total;
            PageCounter pages = statistics.Pages;
            IReadOnlyList<long> kindBytes = statistics.KindBytes;
            Dictionary<ulong, PageCounts> regions = new();
            TopN hotPages = new(options.HotN);
            ulong[] distinct = new ulong[pages.Count];
            int nDistinct = 0;
            long[] kindAccesses = new long[3];
            pages.ForEach((page, reads, writes, fetches) =>
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
                kinds[k] = new KindStats((TraceKind)k, kindAccesses[k], kindBytes[k], engine.KindNotPresent[k], engine.KindRights[k], engine.KindMisconfigs[k]);
            }

            List<DepthBucket> depth = new();
            IReadOnlyList<long> leafLevels = engine.LeafLevels;
            int levels = guest.P2ms[0].Levels;
            for (int level = 1; level < leafLevels.Count; level++)
            {
                if (leafLevels[level] != 0)
                {
                    depth.Add(new DepthBucket(level, levels - level + 1, leafLevels[level]));
                }
            }

            TopN hotRegions = new(options.HotN);
            foreach (KeyValuePair<ulong, PageCounts> kv in regions)
            {
                hotRegions.Offer(kv.Key << 21, kv.Value.Reads, kv.Value.Writes, kv.Value.Fetches);
            }

            ViewStats[] views = new ViewStats[engine.ViewCount];
            long hits = 0;
            long misses = 0;
            for (int v = 0; v < views.Length; v++)
            {
                SoftTlb? tlb = guest.Tlbs[v];
                long h = tlb?.Hits ?? 0;
                long m = tlb?.Misses ?? 0;
                hits += h;
                misses += m;
                views[v] = new ViewStats(v, engine.ViewAccesses[v], h, m, engine.ViewNotPresent[v], engine.ViewRights[v], engine.ViewMisconfigs[v], engine.ViewUnresolved[v]);
            }

            return new ReplayReport
            {
                GuestBytes = options.GuestBytes,
                Pages = options.Pages,
                TlbEntries = options.TlbEntries,
                Batch = options.Batch,
                Views = options.Views,
                ViewAccess = options.ViewAccess,
                Accesses = total,
                Bytes = kindBytes[0] + kindBytes[1] + kindBytes[2] + kindBytes[3],
                Kinds = kinds,
                SetupTime = setupTime,
                Elapsed = elapsed,
                TranslationsPerSecond = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0,
                TlbHits = hits,
                TlbMisses = misses,
                TlbHitRate = hits + misses > 0 ? (double)hits / (hits + misses) : 0,
                WalkDepth = depth,
                Violations = kinds.Sum(k => k.Violations),
                UnresolvedFaults = engine.ViewUnresolved.Sum(),
                Misconfigs = kinds.Sum(k => k.Misconfigs),
                UniquePages = pages.Count,
                HotPages = hotPages.ToArray(),
                HotRegions = hotRegions.ToArray(),
                WorkingSet = statistics.WorkingSet.ToArray(),
                ViewStats = views,
                HeatMap = statistics.Heat.Build(total, distinct),
                LinesRead = reader.LinesRead,
                MalformedCount = reader.MalformedCount,
                FirstMalformed = reader.FirstMalformed.Take(10).ToArray(),
            };
        }
    }
}

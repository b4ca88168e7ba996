// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>Per-kind totals.</summary>
    /// <param name="Kind">Load, store or fetch.</param>
    /// <param name="Accesses">Accesses of this kind.</param>
    /// <param name="Bytes">Bytes accessed (sum of sizes).</param>
    /// <param name="NotPresent">EPT violations on a not-present entry (exit qualification bits 5:3 clear), e.g. an altp2m view's lazy copy.</param>
    /// <param name="Rights">EPT violations on a present entry that lacks the right (a restricted view's mem_access).</param>
    /// <param name="Misconfigs">Translations that ended in an EPT misconfiguration.</param>
    /// <remarks>Every failed translation is one exit: an access whose fault the domain resolved is translated again, and may fault again.</remarks>
    public sealed record KindStats(TraceKind Kind, long Accesses, long Bytes, long NotPresent, long Rights, long Misconfigs)
    {
        /// <summary>EPT violations of this kind (<see cref="NotPresent"/> + <see cref="Rights"/>).</summary>
        public long Violations => NotPresent + Rights;
    }

    /// <summary>One row of the walk-depth histogram.</summary>
    /// <param name="LeafLevel">The level of the leaf (1 = 4 KiB PTE, 2 = 2 MiB PDE, 3 = 1 GiB PDPTE).</param>
    /// <param name="LevelsWalked">Table levels a full walk reads to reach that leaf.</param>
    /// <param name="Translations">Successful translations that ended at that leaf.</param>
    public sealed record DepthBucket(int LeafLevel, int LevelsWalked, long Translations);

    /// <summary>A hot 4 KiB page or 2 MiB region of the trace (trace addresses, before the guest modulo).</summary>
    /// <param name="Address">First byte of the page or region.</param>
    /// <param name="Accesses">Accesses that started in it.</param>
    /// <param name="Reads">Loads.</param>
    /// <param name="Writes">Stores.</param>
    /// <param name="Fetches">Instruction fetches.</param>
    public sealed record HotSpot(ulong Address, long Accesses, long Reads, long Writes, long Fetches);

    /// <summary>One point of the working-set curve.</summary>
    /// <param name="Accesses">Accesses replayed.</param>
    /// <param name="UniquePages">Distinct 4 KiB trace pages touched by then.</param>
    public sealed record WorkingSetPoint(long Accesses, long UniquePages);

    /// <summary>Per-view totals.</summary>
    /// <param name="View">View index (0 = host view).</param>
    /// <param name="Accesses">Accesses dealt to this view.</param>
    /// <param name="TlbHits">TLB hits of this view's TLB (0 without a TLB).</param>
    /// <param name="TlbMisses">TLB misses of this view's TLB (0 without a TLB).</param>
    /// <param name="NotPresent">EPT violations on not-present entries in this view (lazy copies from the host p2m).</param>
    /// <param name="Rights">EPT violations on present entries lacking the right (mem_access of the view's default access).</param>
    /// <param name="Misconfigs">EPT misconfigurations in this view.</param>
    /// <param name="Unresolved">Accesses whose fault the domain did not resolve (counted once each; 0 in a healthy replay).</param>
    public sealed record ViewStats(int View, long Accesses, long TlbHits, long TlbMisses, long NotPresent, long Rights, long Misconfigs, long Unresolved)
    {
        /// <summary>EPT violations in this view (<see cref="NotPresent"/> + <see cref="Rights"/>).</summary>
        public long Violations => NotPresent + Rights;
    }

    /// <summary>
    /// Access counts by time bucket (rows, in trace order) and address bucket (columns). Address
    /// buckets split the distinct pages touched, in address order, into equal-sized groups (so
    /// sparse address spaces stay readable). Counts come from every <see cref="SampleStride"/>-th
    /// access, each weighted by the stride; with a stride of 1 they are exact.
    /// </summary>
    public sealed class HeatMap
    {
        internal HeatMap(long[][] counts, ulong[] addressBucketStart, long accessesPerTimeBucket, long sampleStride)
        {
            Counts = counts;
            AddressBucketStart = addressBucketStart;
            AccessesPerTimeBucket = accessesPerTimeBucket;
            SampleStride = sampleStride;
        }

        /// <summary>Number of time buckets (rows).</summary>
        public int TimeBuckets => Counts.Count;

        /// <summary>Number of address buckets (columns).</summary>
        public int AddressBuckets => AddressBucketStart.Count;

        /// <summary>Counts[time][address].</summary>
        public IReadOnlyList<long[]> Counts { get; }

        /// <summary>First trace address (page-aligned) of each address bucket, ascending.</summary>
        public IReadOnlyList<ulong> AddressBucketStart { get; }

        /// <summary>Accesses per time bucket (the last one may hold fewer).</summary>
        public long AccessesPerTimeBucket { get; }

        /// <summary>Every this-many-th access was sampled.</summary>
        public long SampleStride { get; }
    }

    /// <summary>The result of <see cref="Replayer.Run"/>.</summary>
    public sealed class ReplayReport
    {
        /// <summary>Guest size the trace was folded into.</summary>
        public long GuestBytes { get; init; }

        /// <summary>Page mode of the guest.</summary>
        public PageMode Pages { get; init; }

        /// <summary>TLB entries per view (0 = no TLB).</summary>
        public int TlbEntries { get; init; }

        /// <summary>Batch size (0 = scalar).</summary>
        public int Batch { get; init; }

        /// <summary>Altp2m views besides the host view.</summary>
        public int Views { get; init; }

        /// <summary>The altp2m views' default access.</summary>
        public P2mAccess ViewAccess { get; init; } = P2mAccess.RWX;

        /// <summary>Accesses replayed.</summary>
        public long Accesses { get; init; }

        /// <summary>Bytes accessed (sum of access sizes).</summary>
        public long Bytes { get; init; }

        /// <summary>Per-kind totals (read, write, fetch, in that order).</summary>
        public IReadOnlyList<KindStats> Kinds { get; init; } = Array.Empty<KindStats>();

        /// <summary>Time spent building the guest.</summary>
        public TimeSpan SetupTime { get; init; }

        /// <summary>Time spent replaying (reading the trace included).</summary>
        public TimeSpan Elapsed { get; init; }

        /// <summary>Accesses per second over <see cref="Elapsed"/>.</summary>
        public double TranslationsPerSecond { get; init; }

        /// <summary>TLB hits over all views.</summary>
        public long TlbHits { get; init; }

        /// <summary>TLB misses over all views.</summary>
        public long TlbMisses { get; init; }

        /// <summary>Hits / (hits + misses); 0 without a TLB or accesses.</summary>
        public double TlbHitRate { get; init; }

        /// <summary>Successful translations by leaf level.</summary>
        public IReadOnlyList<DepthBucket> WalkDepth { get; init; } = Array.Empty<DepthBucket>();

        /// <summary>EPT violations, all kinds.</summary>
        public long Violations { get; init; }

        /// <summary>EPT misconfigurations, all kinds.</summary>
        public long Misconfigs { get; init; }

        /// <summary>Accesses whose fault the domain did not resolve (see <see cref="ViewStats.Unresolved"/>).</summary>
        public long UnresolvedFaults { get; init; }

        /// <summary>Distinct 4 KiB trace pages touched.</summary>
        public long UniquePages { get; init; }

        /// <summary>The most accessed 4 KiB pages, most accessed first (ties: lower address first).</summary>
        public IReadOnlyList<HotSpot> HotPages { get; init; } = Array.Empty<HotSpot>();

        /// <summary>The most accessed 2 MiB regions, most accessed first (ties: lower address first).</summary>
        public IReadOnlyList<HotSpot> HotRegions { get; init; } = Array.Empty<HotSpot>();

        /// <summary>Distinct pages against accesses, about 200-400 points, ending at (<see cref="Accesses"/>, <see cref="UniquePages"/>).</summary>
        public IReadOnlyList<WorkingSetPoint> WorkingSet { get; init; } = Array.Empty<WorkingSetPoint>();

        /// <summary>Per-view totals (view 0 = host view).</summary>
        public IReadOnlyList<ViewStats> ViewStats { get; init; } = Array.Empty<ViewStats>();

        /// <summary>Accesses by time and address bucket.</summary>
        public HeatMap HeatMap { get; init; } = new HeatMap(Array.Empty<long[]>(), Array.Empty<ulong>(), 0, 1);

        /// <summary>Trace lines (or records) the reader consumed.</summary>
        public long LinesRead { get; init; }

        /// <summary>Malformed lines the reader skipped.</summary>
        public long MalformedCount { get; init; }

        /// <summary>The first ten malformed lines.</summary>
        public IReadOnlyList<MalformedLine> FirstMalformed { get; init; } = Array.Empty<MalformedLine>();
    }
}

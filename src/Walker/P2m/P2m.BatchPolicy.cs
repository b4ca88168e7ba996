// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.Intrinsics.X86;

namespace FastEpt
{
    // The Auto batch path: which walker a batch takes, from the table footprint, the addresses'
    // locality and the ISA.
    public sealed partial class P2m
    {
        // Auto: below this many addresses the pipeline never fills, so walk one at a time.
        internal const int MinPipelinedBatch = 2 * PipelineDistance;

        // Auto: tables up to this size are assumed cache-resident (a few MiB fit any server
        // core's L2 + its share of L3); beyond it, walks are mostly misses worth overlapping.
        internal static readonly long CacheResidentTableBytes = 8L << 20;

        /// <summary>
        /// Whether <see cref="BatchPath.Auto"/> uses AVX2 gathers where the tables are cached (or
        /// the addresses clustered). Measured on Intel (see docs/performance.md): there, gathered
        /// walks beat one-at-a-time walks, sequential addresses included; on tables far larger
        /// than the caches the pipeline wins. On AMD Zen, gathers are microcoded and published
        /// measurements show them losing to scalar loads with prefetch, so there (and without
        /// AVX2) cached tables are walked one address at a time.
        /// </summary>
        internal static readonly bool PreferGather = Avx2.IsSupported && !IsAmd();

        /// <summary>
        /// How <see cref="TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>
        /// chooses its walker on this machine, as human-readable lines (for <c>fastept info</c>
        /// and diagnostics): the path taken for cache-resident tables or clustered addresses, for
        /// large tables with scattered addresses, the cases always walked one address at a time,
        /// and the prefetch instruction the pipelined walk uses.
        /// </summary>
        /// <returns>One line per rule, without indentation or trailing newline.</returns>
        /// <remarks>
        /// Computed from the same thresholds and instruction-set and CPU-vendor checks the choice
        /// itself uses, so the description cannot drift from the behaviour. The wording is for
        /// people and may change between versions; do not parse it. Thread-safe.
        /// </remarks>
        public static IReadOnlyList<string> DescribeBatchPolicy()
        {
            string cached = PreferGather
                ? $"Gather (AVX2, {GatherGroupWalks} walks per step)"
                : Avx2.IsSupported ? "Scalar (AVX2 present, but gathers are microcoded on AMD)" : "Scalar (no AVX2)";
            long cachedMiB = CacheResidentTableBytes >> 20;
            return new[]
            {
                $"Cached tables (<= {cachedMiB} MiB) or clustered addresses: {cached}",
                $"Tables > {cachedMiB} MiB, scattered addresses: Pipelined (software prefetch, {PipelineDistance} walks ahead)",
                $"Batches < {MinPipelinedBatch} addresses, A/D updates, or not 4 levels: Scalar",
                "Prefetch: " + (Sse.IsSupported ? "SSE prefetcht0 in the pipelined walk" : "none (no SSE): pipelined walks without prefetch hints"),
            };
        }

        private static bool IsAmd()
        {
            if (!X86Base.IsSupported)
            {
                return false;
            }

            // CPUID leaf 0: the vendor string in EBX, EDX, ECX ("Auth" "enti" "cAMD").
            (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
            return ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163;
        }

        /// <summary>True when <paramref name="path"/> runs as named on this machine (Gather needs AVX2).</summary>
        internal static bool IsBatchPathSupported(BatchPath path) => path switch
        {
            BatchPath.Gather => Avx2.IsSupported,
            BatchPath.Auto or BatchPath.Scalar or BatchPath.Pipelined => true,
            _ => false,
        };

        /// <summary>The path a batch of <paramref name="gpas"/> actually takes when <paramref name="requested"/> is asked for.</summary>
        internal BatchPath ResolveBatchPath(BatchPath requested, ReadOnlySpan<ulong> gpas)
        {
            // The interleaved walkers implement the common 4-level shape without A/D updates.
            if (_levels != 4 || _accessDirty)
            {
                return BatchPath.Scalar;
            }

            switch (requested)
            {
                case BatchPath.Scalar:
                case BatchPath.Pipelined:
                    return requested;
                case BatchPath.Gather:
                    return Avx2.IsSupported ? BatchPath.Gather : BatchPath.Pipelined;
                default:
                    if (gpas.Length < MinPipelinedBatch)
                    {
                        return BatchPath.Scalar;
                    }

                    // Tables well beyond the caches, addresses scattered over them: most walks
                    // miss on their leaf, and the pipeline keeps the most misses in flight.
                    if (TableBytesForPolicy() > CacheResidentTableBytes && !IsClustered(gpas))
                    {
                        return BatchPath.Pipelined;
                    }

                    // Cache hits: what is left to save is instructions, which gathers do where they
                    // are fast; elsewhere interleaving only adds bookkeeping.
                    return PreferGather ? BatchPath.Gather : BatchPath.Scalar;
            }
        }

        // The table footprint the choice goes by, read without any lock (a reader never takes
        // one): the writers' running count, which may trail a write in flight by a few frames,
        // as good as exact for a threshold of thousands of frames.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private long TableBytesForPolicy() => TableCountRelaxed * EptEntry.PageSize;

        // Addresses that mostly stay within a 2 MiB region of their predecessor share leaf tables
        // (and cache lines): the hardware prefetcher and the caches already overlap their misses.
        // A sample of 16 neighbours decides; a mostly-clustered batch walks one at a time.
        private static bool IsClustered(ReadOnlySpan<ulong> gpas)
        {
            int near = 0;
            for (int i = 1; i <= 16; i++)
            {
                if (((gpas[i] ^ gpas[i - 1]) >> 21) == 0)
                {
                    near++;
                }
            }

            return near >= 12;
        }
    }
}

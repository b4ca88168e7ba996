// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// <see cref="P2m.DescribeBatchPolicy"/> (what <c>fastept info</c> prints) must name the
    /// thresholds and paths that <see cref="P2m.ResolveBatchPath"/> actually applies on this
    /// machine, so the description cannot drift from the choice.
    /// </summary>
    [Trait("Category", "Batch")]
    public sealed class BatchPolicyTests
    {
        [Fact]
        public void DescribeBatchPolicy_NamesTheThresholdsTheChoiceUses()
        {
            IReadOnlyList<string> lines = P2m.DescribeBatchPolicy();

            Assert.Equal(4, lines.Count);
            Assert.Contains($"(<= {P2m.CacheResidentTableBytes >> 20} MiB)", lines[0]);
            Assert.Contains($"Tables > {P2m.CacheResidentTableBytes >> 20} MiB", lines[1]);
            Assert.Contains($"{P2m.PipelineDistance} walks ahead", lines[1]);
            Assert.StartsWith($"Batches < {P2m.MinPipelinedBatch} addresses", lines[2]);
            Assert.StartsWith("Prefetch: ", lines[3]);
            if (P2m.PreferGather)
            {
                Assert.Contains($"{P2m.GatherGroupWalks} walks per step", lines[0]);
            }
        }

        [Fact]
        public void DescribeBatchPolicy_NamesThePathResolveBatchPathPicks()
        {
            IReadOnlyList<string> lines = P2m.DescribeBatchPolicy();
            using var memory = new HostMemory(1L << 26);
            using var p2m = new P2m(memory);
            var random = new Random(11);
            ulong[] scattered = Enumerable.Range(0, 4096).Select(_ => (ulong)random.NextInt64(1L << 48)).ToArray();

            // Cache-resident tables: the path the first line names, from the named batch size on.
            BatchPath cached = p2m.ResolveBatchPath(BatchPath.Auto, scattered);
            Assert.StartsWith(cached.ToString(), PathNamed(lines[0]));
            Assert.Equal(cached, p2m.ResolveBatchPath(BatchPath.Auto, scattered.AsSpan(0, P2m.MinPipelinedBatch)));

            // Below the named batch size: one at a time, as the third line says.
            Assert.Equal(BatchPath.Scalar, p2m.ResolveBatchPath(BatchPath.Auto, scattered.AsSpan(0, P2m.MinPipelinedBatch - 1)));
            Assert.Equal(nameof(BatchPath.Scalar), PathNamed(lines[2]));

            // Tables beyond the named size, scattered addresses: the path the second line names.
            long tablesNeeded = P2m.CacheResidentTableBytes / 4096 + 64;
            for (ulong region = 0; p2m.TableFrameCount < tablesNeeded; region++)
            {
                p2m.SetEntry(region << 9, region & 0xFFF, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            BatchPath large = p2m.ResolveBatchPath(BatchPath.Auto, scattered);
            Assert.StartsWith(large.ToString(), PathNamed(lines[1]));
        }

        // "Condition: Path (details)" -> "Path (details)".
        private static string PathNamed(string line) => line.Substring(line.LastIndexOf(": ", StringComparison.Ordinal) + 2);
    }
}

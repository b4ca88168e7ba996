// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using Xunit.Abstractions;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Parallel writers (P2m.Writers.cs): writes of different 2 MiB regions run at the same time,
    /// writes of one region and 1G writes do not, and a randomized run of every kind of write
    /// (4K and 2M maps, removals, PoD marks, type and access changes, 2M-over-4K merges, splits
    /// of 2M and 1G entries, PoD populates, log-dirty and mem_access write faults) with lock-free
    /// readers is explained by some serial order of its writes, with exact counters. Each check
    /// is shown to catch a deliberate bug (<see cref="PlantedWriterBug"/>).
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed partial class ParallelWriterTests
    {
        private static readonly TimeSpan s_runTime = TimeSpan.FromMilliseconds(600);
        private const int CleanRuns = 3;
        private const int PlantedRunsMax = 8;

        private readonly ITestOutputHelper _output;

        public ParallelWriterTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public void RandomWrites_WithReaders_AreExplainedBySomeSerialOrder_AndCountersAreExact()
        {
            for (int rep = 0; rep < CleanRuns; rep++)
            {
                using var run = new ModelRun(PlantedWriterBug.None);
                List<string> problems = run.Run(s_runTime, seed: 1000 + rep);
                Assert.True(problems.Count == 0, string.Join("\n", problems));
                Assert.False(run.TooLittle, $"too little happened to judge: {run.Stats}");
                List<string> errors = run.Check();
                Assert.True(errors.Count == 0, $"run {rep}: {errors.Count} violations, first: " + string.Join("\n", errors.Take(10)));
                _output.WriteLine($"run {rep}: {run.Stats}");
            }
        }

        [Theory]
        [InlineData((int)PlantedWriterBug.TwoStepSplit)]
        [InlineData((int)PlantedWriterBug.NoStripeFor2M)]
        [InlineData((int)PlantedWriterBug.RacyPodCount)]
        public void RandomWrites_WithAPlantedBug_AreCaught(int planted)
        {
            var bug = (PlantedWriterBug)planted;
            for (int rep = 0; rep < PlantedRunsMax; rep++)
            {
                using var run = new ModelRun(bug);
                List<string> problems = run.Run(s_runTime, seed: 2000 + rep);
                if (problems.Count == 0 && run.TooLittle)
                {
                    continue;   // starved by the machine: judge another run
                }

                problems.AddRange(run.Stuck ? [] : run.Check());
                if (problems.Count > 0)
                {
                    _output.WriteLine($"{bug} caught in run {rep} ({run.Stats}): {problems[0]}");
                    return;
                }
            }

            Assert.Fail($"{PlantedRunsMax} runs with {bug} planted passed the model check.");
        }

        [Fact]
        public void TwoWriters_OnDistinctRegions_AreInsideTheWritePathTogether_AndA1GWriteWaitsForBoth()
        {
            using var memory = new HostMemory(0x4000L << 12);
            using var p2m = new P2m(memory, new P2mOptions { Support1G = true });
            using var bothInside = new CountdownEvent(2);
            using var gate = new ManualResetEventSlim(false);
            int inside = 0, insideWhen1G = -1;
            bool bigEntered = false, bigEnteredEarly = false;
            p2m.InsideWrite = (gfn, order) =>
            {
                if (order == (int)PageOrder.Size1G)
                {
                    Volatile.Write(ref insideWhen1G, Volatile.Read(ref inside));
                    Volatile.Write(ref bigEntered, true);
                    return;
                }

                Interlocked.Increment(ref inside);
                bothInside.Signal();
                Assert.True(gate.Wait(TimeSpan.FromSeconds(20)), "the gate never opened");
                Interlocked.Decrement(ref inside);
            };

            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(
            [
                // Regions 1 and 2: neither shares a stripe with the 1G write's first region.
                ("4K writer, region 1", () => p2m.SetEntry(AreaBase + 512, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)),
                ("4K writer, region 2", () => p2m.SetEntry(AreaBase + 1024, 0x1001, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)),
                ("1G writer", () =>
                {
                    Assert.True(bothInside.Wait(TimeSpan.FromSeconds(10)), "the two 4K writers were never inside the write path together");
                    p2m.SetEntry(AreaBase, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.N);
                }),
                ("controller", () =>
                {
                    try
                    {
                        Assert.True(bothInside.Wait(TimeSpan.FromSeconds(10)), "the two 4K writers were never inside the write path together");
                        var sw = System.Diagnostics.Stopwatch.StartNew();
                        while (p2m.P2mLock.WritersWaiting == 0 && sw.Elapsed < TimeSpan.FromSeconds(10))
                        {
                            Thread.Yield();
                        }

                        Thread.Sleep(100);
                        bigEnteredEarly = Volatile.Read(ref bigEntered);
                    }
                    finally
                    {
                        gate.Set();
                    }
                }),
            ], TimeSpan.FromSeconds(30), failures, () => gate.Set());
            Assert.Empty(stuck);
            Assert.True(failures.IsEmpty, string.Join("\n", failures));
            Assert.False(bigEnteredEarly, "the 1G write entered the write path while the 4K writers were inside it");
            Assert.True(bigEntered);
            Assert.Equal(0, insideWhen1G);
            Assert.Equal(P2mType.PopulateOnDemand, p2m.GetEntry(AreaBase + 512).Type);
        }

        [Fact]
        public void TwoWriters_InOneRegion_AreNeverInsideTogether()
        {
            using var memory = new HostMemory(0x4000L << 12);
            using var p2m = new P2m(memory);
            using var barrier = new Barrier(2);
            int met = 0;
            p2m.InsideWrite = (gfn, order) =>
            {
                if (barrier.SignalAndWait(TimeSpan.FromMilliseconds(300)))
                {
                    Interlocked.Increment(ref met);
                }
            };

            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(
            [
                ("writer a", () => p2m.SetEntry(AreaBase + 1, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)),
                ("writer b", () => p2m.SetEntry(AreaBase + 300, 0x1001, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)),
            ], TimeSpan.FromSeconds(30), failures, () => { });
            Assert.Empty(stuck);
            Assert.True(failures.IsEmpty, string.Join("\n", failures));
            Assert.Equal(0, met);
            Assert.Equal(0x1000UL, p2m.GetEntry(AreaBase + 1).Mfn);
            Assert.Equal(0x1001UL, p2m.GetEntry(AreaBase + 300).Mfn);
        }

        [Fact]
        public void LogDirtyWriteFaults_OnDistinctRegions_RunInParallel()
        {
            using var memory = new HostMemory(0x4000L << 12);
            using var d = new Domain(memory, new DomainOptions { Vcpus = 2, AltViews = 0 });
            d.HostP2m.SetEntry(0, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            d.HostP2m.SetEntry(512, 0x1200, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            d.EnableLogDirty();
            d.HostP2m.ResolveMisconfig(0);      // as the CPU's misconfiguration exits would
            d.HostP2m.ResolveMisconfig(512);
            using var barrier = new Barrier(2);
            int met = 0;
            d.HostP2m.InsideWrite = (gfn, order) =>
            {
                if (barrier.SignalAndWait(TimeSpan.FromSeconds(10)))
                {
                    Interlocked.Increment(ref met);
                }
            };

            var outcomes = new FaultOutcome[2];
            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(
            [
                ("fault 0", () => outcomes[0] = d.HandleEptViolation(d.Vcpus[0], 0x123, AccessKind.Write, null)),
                ("fault 512", () => outcomes[1] = d.HandleEptViolation(d.Vcpus[1], (512UL << 12) | 0x123, AccessKind.Write, null)),
            ], TimeSpan.FromSeconds(30), failures, () => { });
            Assert.Empty(stuck);
            Assert.True(failures.IsEmpty, string.Join("\n", failures));
            Assert.Equal(2, met);
            Assert.Equal(new[] { FaultOutcome.Retry, FaultOutcome.Retry }, outcomes);
            Assert.Equal(P2mType.RamRw, d.HostP2m.GetEntry(0).Type);
            Assert.Equal(P2mType.RamRw, d.HostP2m.GetEntry(512).Type);
            Assert.Equal(new[] { 0UL, 512UL }, d.HarvestDirty());
        }

        [Fact]
        public void FailedWrites_UnderStripes_LowerMaxMappedPfn_ToTheHighestSuccessfulWrite()
        {
            using var memory = new HostMemory(48L << 12);
            using var p2m = new P2m(memory);
            long[] best = new long[2];
            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(
            [
                ("writer 0", () => best[0] = WriteUntilFull(p2m, 0)),
                ("writer 1", () => best[1] = WriteUntilFull(p2m, 1)),
            ], TimeSpan.FromSeconds(30), failures, () => { });
            Assert.Empty(stuck);
            Assert.True(failures.IsEmpty, string.Join("\n", failures));
            Assert.Equal((ulong)Math.Max(best[0], best[1]), p2m.MaxMappedPfn);
            Assert.Equal(memory.AllocatedFrameCount, p2m.TableFrameCount + p2m.PendingReclaimFrameCount);
        }

        // Each write needs new tables (a new 1G block each time) until host memory runs out;
        // returns the highest GFN written successfully.
        private static long WriteUntilFull(P2m p2m, int thread)
        {
            long best = 0;
            for (ulong k = 0; k < 64; k++)
            {
                ulong gfn = ((2 * k + (ulong)thread) << 18) + (ulong)thread * 512 + 5;   // stripes 0 and 1
                try
                {
                    p2m.SetEntry(gfn, 0x10 + (ulong)thread, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    best = Math.Max(best, (long)gfn);
                }
                catch (InsufficientMemoryException)
                {
                }
            }

            return best;
        }
    }
}

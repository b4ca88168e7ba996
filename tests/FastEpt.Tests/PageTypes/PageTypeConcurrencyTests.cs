// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// Two threads promote and demote overlapping hierarchies at once, with random preemption
    /// budgets, so that each keeps meeting frames the other is validating, demoting or has left
    /// partial. A watchdog turns a deadlock or livelock into a failure. The independent recount
    /// runs whenever both threads meet holding their roots, and at the end must find nothing left.
    /// </summary>
    public sealed class PageTypeConcurrencyTests
    {
        private static readonly TimeSpan s_watchdog = TimeSpan.FromSeconds(20);
        private const int Rounds = 300;
        private static readonly Dictionary<ulong, int> s_none = new();

        [Fact]
        public async Task TwoThreads_PromoteDemoteOverlappingHierarchies_RecountAgreesAndNoDeadlock()
        {
            using var w = new PageTypeWorld();
            Hierarchy h = Build(w);

            // Each thread owns one root; both roots share an L3, and L2s, L1s and data frames
            // below it. Every third round a thread also takes and drops a top-level reference on a
            // shared L2 while the other may be validating or demoting it as a child. Every few
            // rounds both stop while holding their roots, and the last to arrive audits.
            var held = new Dictionary<ulong, int> { [h.Root1] = 1, [h.Root2] = 1 };
            var types = new Dictionary<ulong, PageType> { [h.Root1] = PageType.L4, [h.Root2] = PageType.L4 };
            using var meet = new Barrier(2, _ => PageTypeAudit.Check(w.Memory, w.Table, held, s_none, types));
            Task a = Run(w.Table, seed: 1, h.Root1, h.SharedL2, meet);
            Task b = Run(w.Table, seed: 2, h.Root2, h.OtherL2, meet);
            await Task.WhenAll(a, b).WaitAsync(s_watchdog);
            w.AuditEmpty();
        }

        [Fact]
        public async Task TwoThreads_SameRoot_PendingPutsInterchangeable_RecountAgrees()
        {
            using var w = new PageTypeWorld();
            Hierarchy h = Build(w);
            var held = new Dictionary<ulong, int> { [h.Root1] = 2 };
            var types = new Dictionary<ulong, PageType> { [h.Root1] = PageType.L4 };
            using var meet = new Barrier(2, _ => PageTypeAudit.Check(w.Memory, w.Table, held, s_none, types));
            Task a = Run(w.Table, seed: 3, h.Root1, h.SharedL2, meet);
            Task b = Run(w.Table, seed: 4, h.Root1, h.SharedL2, meet);
            await Task.WhenAll(a, b).WaitAsync(s_watchdog);
            w.AuditEmpty();
        }

        [Fact]
        public async Task WritableRace_PageTableAndWritableNeverCoexist_FailedPromotionsCleanUp()
        {
            using var w = new PageTypeWorld();
            Hierarchy h = Build(w);
            PageTypeTable table = w.Table;
            int validatorDone = 0, writerStarted = 0;
            long promoted = 0, promotionsRefused = 0, taken = 0, takesRefused = 0;

            // One thread validates root 1, below which an L1 maps a data frame writable; the
            // other keeps taking that L1 itself as writable. Whichever gets there first wins; a
            // promotion that loses fails, and putting its partial root cleans it up. Both sides
            // must be seen winning and losing (the race happened), and each win must hold.
            Task validator = Task.Factory.StartNew(() =>
            {
                var rng = new Random(5);
                SpinWait.SpinUntil(() => Volatile.Read(ref writerStarted) != 0);
                try
                {
                    for (int round = 0; round < Rounds || (round < 20 * Rounds && (Volatile.Read(ref takesRefused) == 0 || promotionsRefused == 0)); round++)
                    {
                        if (GetUntilDoneOrFailed(table, h.Root1, PageType.L4, rng))
                        {
                            // The root holds a validated type on the L1 below it: the writer cannot have it.
                            promoted++;
                            PageTypeState l1 = table.GetState(h.SharedL1);
                            Assert.True(l1.Type == PageType.L1 && l1.Validated && !l1.Partial, $"root promoted, shared L1 is {l1}");
                            Thread.SpinWait(rng.Next(2000));
                            PutUntilDone(table, h.Root1, rng);
                        }
                        else
                        {
                            promotionsRefused++;
                            Assert.False(table.GetState(h.Root1).Validated, "a refused promotion left the root validated");
                            if (table.GetState(h.Root1).Partial)
                            {
                                PutUntilDone(table, h.Root1, rng);
                            }
                        }

                        Thread.SpinWait(rng.Next(5000));
                    }
                }
                finally
                {
                    Volatile.Write(ref validatorDone, 1);
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            Task writer = Task.Factory.StartNew(() =>
            {
                var rng = new Random(6);
                Volatile.Write(ref writerStarted, 1);
                while (Volatile.Read(ref validatorDone) == 0)
                {
                    Preemption p = Preemption.Never;
                    Progress r = table.GetPageType(h.SharedL1, PageType.Writable, ref p);
                    if (r == Progress.Done)
                    {
                        taken++;
                        PageTypeState s = table.GetState(h.SharedL1);
                        Assert.Equal(PageType.Writable, s.Type);
                        Assert.False(s.Validated || s.Partial);
                        Thread.SpinWait(rng.Next(500));
                        Assert.Equal(Progress.Done, table.PutPageType(h.SharedL1, ref p));
                    }
                    else
                    {
                        Assert.Equal(Progress.Failed, r);
                        Interlocked.Increment(ref takesRefused);
                    }

                    Thread.SpinWait(rng.Next(500));
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            await Task.WhenAll(validator, writer).WaitAsync(s_watchdog);
            Assert.True(promoted > 0 && promotionsRefused > 0, $"the validator never {(promoted == 0 ? "won" : "lost")}: {promoted} promotions, {promotionsRefused} refused");
            Assert.True(taken > 0 && takesRefused > 0, $"the writer never {(taken == 0 ? "won" : "lost")}: {taken} writable takes, {takesRefused} refused");
            w.AuditEmpty();
        }

        private sealed record Hierarchy(ulong Root1, ulong Root2, ulong SharedL2, ulong OtherL2, ulong SharedL1);

        private static Hierarchy Build(PageTypeWorld w)
        {
            ulong d0 = w.NewFrame(), d1 = w.NewFrame(), d2 = w.NewFrame();
            ulong l1a = PageTypeShapes.L1(w, (0, d0, true), (1, d1, false));
            ulong l1b = PageTypeShapes.L1(w, (0, d0, true), (2, d2, true));
            ulong p = w.NewTable((0, l1a), (1, l1b));
            ulong q = w.NewTable((2, l1b), (400, l1a));
            ulong shared = w.NewTable((0, p), (7, q));
            ulong own1 = w.NewTable((0, p), (300, w.NewTable()));
            ulong own2 = w.NewTable((3, q), (4, p));
            ulong root1 = w.NewTable((0, shared), (1, own1));
            ulong root2 = w.NewTable((0, shared), (7, own2), (8, shared));
            return new Hierarchy(root1, root2, p, q, l1a);
        }

        private static Task Run(PageTypeTable table, int seed, ulong root, ulong pin, Barrier meet)
            => Task.Factory.StartNew(() =>
            {
                var rng = new Random(seed);
                try
                {
                    for (int round = 0; round < Rounds; round++)
                    {
                        Assert.True(GetUntilDoneOrFailed(table, root, PageType.L4, rng));
                        if (round % 25 == 24)
                        {
                            // Both threads hold their root and nothing is in flight: the audit runs here.
                            Assert.True(meet.SignalAndWait(s_watchdog));
                        }

                        if (round % 3 == 0)
                        {
                            Assert.True(GetUntilDoneOrFailed(table, pin, PageType.L2, rng));
                            PutUntilDone(table, pin, rng);
                        }

                        PutUntilDone(table, root, rng);
                    }
                }
                catch
                {
                    meet.RemoveParticipant();       // so that the other thread is not kept waiting
                    throw;
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        private static Preemption Budget(Random rng) => rng.Next(5) switch
        {
            0 => Preemption.Never,
            1 => Preemption.After(rng.Next(4)),
            2 => Preemption.After(rng.Next(100)),
            _ => Preemption.After(rng.Next(1500)),
        };

        // Calls again after every Restart; true on Done, false on Failed.
        private static bool GetUntilDoneOrFailed(PageTypeTable table, ulong mfn, PageType type, Random rng)
        {
            for (int calls = 0; calls < PageTypeWorld.MaxCalls; calls++)
            {
                Preemption p = Budget(rng);
                Progress r = table.GetPageType(mfn, type, ref p);
                if (r != Progress.Restart)
                {
                    return r == Progress.Done;
                }
            }

            throw new TimeoutException("GetPageType made no progress");
        }

        private static void PutUntilDone(PageTypeTable table, ulong mfn, Random rng)
        {
            for (int calls = 0; calls < PageTypeWorld.MaxCalls; calls++)
            {
                Preemption p = Budget(rng);
                if (table.PutPageType(mfn, ref p) == Progress.Done)
                {
                    return;
                }
            }

            throw new TimeoutException("PutPageType made no progress");
        }
    }
}

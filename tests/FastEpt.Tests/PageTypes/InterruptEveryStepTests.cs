// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// Every operation on every hierarchy shape, interrupted at every preemption point in turn:
    /// after each interruption the independent recount must agree with the table, resuming must
    /// finish with the very state of an uninterrupted run, and the interrupted and resumed calls
    /// together must pass exactly the preemption points of the uninterrupted run (a resumption
    /// starts exactly where the interruption stopped, redoing and skipping nothing).
    /// </summary>
    public sealed class InterruptEveryStepTests
    {
        public static TheoryData<string> Valid => new(PageTypeShapes.Valid);

        public static TheoryData<string> Failing => new(PageTypeShapes.Failing);

        [Theory]
        [MemberData(nameof(Valid))]
        public void Promote_InterruptedAtEveryStep_ConsistentAndResumesToUninterruptedState(string shape)
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, shape);
            Preemption once = Preemption.Never;
            Assert.Equal(Progress.Done, w.Get(root, type, ref once));
            int total = once.Checks;
            PageTypeState[] expected = w.Snapshot();
            w.Audit();
            w.PutToCompletion(root);
            w.AuditEmpty();
            Assert.True(total > 500, $"{shape}: only {total} preemption points");

            for (int k = 0; k <= total; k++)
            {
                Preemption first = Preemption.After(k);
                Progress r = w.Get(root, type, ref first);
                Assert.Equal(k < total ? Progress.Restart : Progress.Done, r);
                w.Audit();
                Preemption rest = Preemption.Never;
                if (r == Progress.Restart)
                {
                    Assert.True(w.State(root).Partial, $"k={k}: an interruption after progress leaves the root partial");
                    Assert.Equal(Progress.Done, w.Get(root, type, ref rest));
                }

                Assert.Equal(total, first.Checks + rest.Checks);
                Assert.Equal(expected, w.Snapshot());
                w.PutToCompletion(root);
                w.AuditEmpty();
            }
        }

        [Theory]
        [MemberData(nameof(Valid))]
        public void Demote_InterruptedAtEveryStep_ConsistentAndResumesToUninterruptedState(string shape)
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, shape);
            Assert.Equal(Progress.Done, w.Get(root, type));
            Preemption once = Preemption.Never;
            Assert.Equal(Progress.Done, w.Put(root, ref once));
            int total = once.Checks;
            w.AuditEmpty();
            Assert.True(total >= 511, $"{shape}: only {total} preemption points");

            for (int k = 0; k <= total; k++)
            {
                Assert.Equal(Progress.Done, w.Get(root, type));
                Preemption first = Preemption.After(k);
                Progress r = w.Put(root, ref first);
                Assert.Equal(k < total ? Progress.Restart : Progress.Done, r);
                w.Audit();
                Preemption rest = Preemption.Never;
                if (r == Progress.Restart)
                {
                    Assert.Equal(1, w.State(root).PendingPuts);
                    Assert.Equal(Progress.Done, w.Put(root, ref rest));
                }

                Assert.Equal(total, first.Checks + rest.Checks);
                w.AuditEmpty();
            }
        }

        [Theory]
        [MemberData(nameof(Valid))]
        public void AbandonPartialPromotion_AtEveryStep_ReleasesEachReferenceOnce(string shape)
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, shape);
            Preemption once = Preemption.Never;
            Assert.Equal(Progress.Done, w.Get(root, type, ref once));
            int total = once.Checks;
            w.PutToCompletion(root);

            for (int k = 0; k < total; k++)
            {
                Preemption p = Preemption.After(k);
                Assert.Equal(Progress.Restart, w.Get(root, type, ref p));

                // Abandon it with a put, itself preempted at a varying step, then finish the put.
                Preemption q = Preemption.After(k % 5);
                if (w.Put(root, ref q) == Progress.Restart)
                {
                    w.Audit();
                    Assert.Equal(Progress.Done, w.Put(root));
                }

                w.AuditEmpty();
            }
        }

        [Theory]
        [MemberData(nameof(Failing))]
        public void FailedPromotion_InterruptedAtEveryStep_FailsInSameStateAndPutCleansUp(string shape)
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, shape);
            Preemption once = Preemption.Never;
            Assert.Equal(Progress.Failed, w.Get(root, type, ref once));
            int total = once.Checks;
            PageTypeState[] expected = w.Snapshot();
            w.Audit();
            Assert.True(w.State(root).Partial, "the failure is past progress, so the root is left partial");
            w.PutToCompletion(root);
            w.AuditEmpty();

            for (int k = 0; k <= total; k++)
            {
                Preemption first = Preemption.After(k);
                Progress r = w.Get(root, type, ref first);
                Assert.Equal(k < total ? Progress.Restart : Progress.Failed, r);
                w.Audit();
                Preemption rest = Preemption.Never;
                if (r == Progress.Restart)
                {
                    Assert.Equal(Progress.Failed, w.Get(root, type, ref rest));
                }

                Assert.Equal(total, first.Checks + rest.Checks);
                Assert.Equal(expected, w.Snapshot());
                w.PutToCompletion(root, budget: k % 3);
                w.AuditEmpty();
            }
        }

        [Theory]
        [MemberData(nameof(Valid))]
        public void PromoteThenDemote_SmallestBudgets_EveryIntermediateStateConsistent(string shape)
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, shape);
            Assert.Equal(Progress.Done, w.Get(root, type));
            PageTypeState[] expected = w.Snapshot();
            w.PutToCompletion(root);

            foreach (int budget in new[] { 0, 1, 7 })
            {
                int calls = 0;
                while (true)
                {
                    Preemption p = Preemption.After(budget);
                    Assert.True(++calls <= PageTypeWorld.MaxCalls, "no progress");
                    Progress r = w.Get(root, type, ref p);
                    w.Audit();
                    if (r == Progress.Done)
                    {
                        break;
                    }

                    Assert.Equal(Progress.Restart, r);
                }

                Assert.True(calls >= 50, $"budget {budget}: {calls} calls");
                Assert.Equal(expected, w.Snapshot());
                for (calls = 0; ; )
                {
                    Preemption p = Preemption.After(budget);
                    Assert.True(++calls <= PageTypeWorld.MaxCalls, "no progress");
                    Progress r = w.Put(root, ref p);
                    w.Audit();
                    if (r == Progress.Done)
                    {
                        break;
                    }
                }

                w.AuditEmpty();
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    public sealed partial class PageTypeScenarioTests
    {
        [Fact]
        public void PromoteL3_PreemptedAfter100Entries_PartialAt100ThenResumeValidates()
        {
            using var w = new PageTypeWorld(600);
            ulong a = w.NewFrame();
            var children = new ulong[512];
            for (int i = 0; i < 512; i++)
            {
                children[i] = w.NewFrame();
                w.Link(a, i, children[i]);
            }

            // Entries 0..99 each validate an L2 (511 points), A passes its own points before
            // entries 1..99, and stops at the one before entry 100.
            Preemption p = Preemption.After((100 * L2Checks) + 99);
            Assert.Equal(Progress.Restart, w.Get(a, PageType.L3, ref p));
            PageTypeState s = w.State(a);
            Assert.True(s.Partial);
            Assert.False(s.Validated);
            Assert.Equal(100, s.NrValidated);
            Assert.False(s.PartialSet);
            Assert.Equal(1, s.TypeCount);
            Assert.Equal(1, s.GeneralCount);               // the partial state's own: the caller kept nothing
            for (int i = 0; i < 100; i++)
            {
                PageTypeState c = w.State(children[i]);
                Assert.Equal((1, 1, true), (c.GeneralCount, c.TypeCount, c.Validated));
            }

            Assert.Equal(default, w.State(children[100]));
            w.Audit();

            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            s = w.State(a);
            Assert.Equal((true, false, 1, 1), (s.Validated, s.Partial, s.TypeCount, s.GeneralCount));   // the extra reference went
            Assert.All(children, c => Assert.Equal(1, w.State(c).TypeCount));
            w.Audit();
            w.PutToCompletion(a);
            w.AuditEmpty();
        }

        [Fact]
        public void PromoteL3_ChildAt7Preempted_EntryKeepsGeneralRefAndChildResumesWhereItStopped()
        {
            using var w = new PageTypeWorld();
            ulong a = w.NewFrame();
            for (int i = 0; i < 10; i++)
            {
                w.Link(a, i, w.NewFrame());
            }

            ulong b = w.NewTable((10, PageTypeShapes.L1(w)), (20, PageTypeShapes.L1(w)));
            w.Link(a, 7, b);

            // Children 0..6, A's points before entries 1..7, then 15 of B's: B stops before its entry 16.
            Preemption p = Preemption.After((7 * L2Checks) + 7 + 15);
            Assert.Equal(Progress.Restart, w.Get(a, PageType.L3, ref p));
            PageTypeState sa = w.State(a), sb = w.State(b);
            Assert.Equal((true, 7, true), (sa.Partial, sa.NrValidated, sa.PartialSet));
            Assert.Equal((true, 16, false, 1), (sb.Partial, sb.NrValidated, sb.PartialSet, sb.TypeCount));
            Assert.Equal(2, sb.GeneralCount);              // A[7]'s, and B's own for its partial state
            Assert.True(w.State(w.ReadEntry(b, 10) >> 12).Validated);
            w.Audit();

            // Resume: no new general reference on B, and B goes on from entry 16.
            var firstVisit = new Dictionary<ulong, int>();
            w.Table.EntryHook = (mfn, i) => firstVisit.TryAdd(mfn, i);
            Preemption rest = Preemption.Never;
            Assert.Equal(Progress.Done, w.Get(a, PageType.L3, ref rest));
            w.Table.EntryHook = null;
            Assert.Equal(7, firstVisit[a]);
            Assert.Equal(16, firstVisit[b]);
            Assert.Equal((10 * L2Checks) + 511, p.Checks + rest.Checks);
            sb = w.State(b);
            Assert.Equal((1, 1, true), (sb.GeneralCount, sb.TypeCount, sb.Validated));
            w.Audit();
            w.PutToCompletion(a);
            w.AuditEmpty();
        }

        [Fact]
        public void FreshPromotion_PreemptionPendingAtStart_FirstEntryStillProcessed()
        {
            using var w = new PageTypeWorld();
            ulong b = w.NewTable((3, PageTypeShapes.L1(w)));
            ulong c = w.NewTable();
            ulong a = w.NewTable((0, b), (1, c));
            Assert.Equal(Progress.Done, w.Get(b, PageType.L2));   // B is validated: entry 0 needs no preemption point

            Preemption p = Preemption.After(0);
            Assert.Equal(Progress.Restart, w.Get(a, PageType.L3, ref p));
            Assert.Equal(1, p.Checks);
            PageTypeState s = w.State(a);
            Assert.Equal((true, 1, false), (s.Partial, s.NrValidated, s.PartialSet));
            Assert.Equal(2, w.State(b).TypeCount);
            Assert.Equal(default, w.State(c));
            w.Audit();
            w.PutToCompletion(a);
            w.PutToCompletion(b);
            w.AuditEmpty();
        }

        // docs/model/page-types.md §7.7's L1TF case: Xen's -EINTR at entry 0 leaves nothing behind. FastEpt has no
        // L1TF check; its "nothing done" stop is a child another operation is validating, met
        // at entry 0 with the budget exhausted.
        [Fact]
        public void FreshPromotion_ChildBusyAtEntry0_StopsWithNothingDoneAndNoPartialState()
        {
            using var w = new PageTypeWorld();
            ulong b = w.NewTable((0, PageTypeShapes.L1(w)), (9, PageTypeShapes.L1(w)));
            ulong a = w.NewTable((0, b));
            Progress nested = Progress.Done;
            PageTypeState during = default, bDuring = default;
            int checks = 0;
            w.Table.EntryHook = (mfn, i) =>
            {
                if (mfn == b && i == 3)
                {
                    Preemption p0 = Preemption.After(0);
                    nested = w.Get(a, PageType.L3, ref p0);
                    checks = p0.Checks;
                    during = w.State(a);
                    bDuring = w.State(b);
                }
            };

            Assert.Equal(Progress.Done, w.Get(b, PageType.L2));
            w.Table.EntryHook = null;
            Assert.Equal(Progress.Restart, nested);
            Assert.Equal(1, checks);                          // the stop while waiting for B
            Assert.Equal(default, during);                    // type count back to 0, not partial, no reference kept
            Assert.Equal((1, 1, false, false), (bDuring.GeneralCount, bDuring.TypeCount, bDuring.Validated, bDuring.Partial));
            w.Audit();

            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            Assert.Equal(2, w.State(b).TypeCount);
            w.Audit();
            w.PutToCompletion(a);
            w.PutToCompletion(b);
            w.AuditEmpty();
        }

        // docs/model/page-types.md §7.4: -EINTR from a child at i > 0 becomes -ERESTART with nr = i.
        [Fact]
        public void Promotion_ChildBusyAtLaterEntry_PartialAtThatEntry()
        {
            using var w = new PageTypeWorld();
            ulong d = w.NewTable();
            ulong b = w.NewTable((0, PageTypeShapes.L1(w)));
            ulong a = w.NewTable((0, d), (1, b));
            Assert.Equal(Progress.Done, w.Get(d, PageType.L2));
            Progress nested = Progress.Done;
            int checks = 0;
            w.Table.EntryHook = (mfn, i) =>
            {
                if (mfn == b && i == 3)
                {
                    Preemption p1 = Preemption.After(1);       // passes A's point before entry 1, stops waiting for B
                    nested = w.Get(a, PageType.L3, ref p1);
                    checks = p1.Checks;
                }
            };

            Assert.Equal(Progress.Done, w.Get(b, PageType.L2));
            w.Table.EntryHook = null;
            Assert.Equal(Progress.Restart, nested);
            Assert.Equal(2, checks);
            PageTypeState s = w.State(a);
            Assert.Equal((true, 1, false), (s.Partial, s.NrValidated, s.PartialSet));
            w.Audit();
            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            w.Audit();
            w.PutToCompletion(a);
            w.PutToCompletion(b);
            w.PutToCompletion(d);
            w.AuditEmpty();
        }

        // Divergence: Xen decides "nothing done" by i == 0 alone (docs/model/page-types.md §7.4); with an inherited
        // PTF_partial_set at entry 0 the entry still holds a general reference, so FastEpt keeps
        // the partial state instead of dropping it.
        [Fact]
        public void ResumedPromotion_InheritedPartialSetAndChildBusyAtEntry0_KeepsPartialState()
        {
            using var w = new PageTypeWorld();
            ulong b = w.NewTable((0, PageTypeShapes.L1(w)), (12, PageTypeShapes.L1(w)));
            ulong a = w.NewTable((0, b));
            Preemption p = Preemption.After(5);
            Assert.Equal(Progress.Restart, w.Get(a, PageType.L3, ref p));
            Assert.Equal((true, 0, true), (w.State(a).Partial, w.State(a).NrValidated, w.State(a).PartialSet));
            Assert.Equal(6, w.State(b).NrValidated);

            // Someone else takes B over (a top-level get continues its validation); meanwhile A
            // is resumed with the budget exhausted and finds B busy at its entry 0.
            Progress nested = Progress.Done;
            PageTypeState during = default;
            w.Table.EntryHook = (mfn, i) =>
            {
                if (mfn == b && i == 10)
                {
                    Preemption p0 = Preemption.After(0);
                    nested = w.Get(a, PageType.L3, ref p0);
                    during = w.State(a);
                }
            };

            Assert.Equal(Progress.Done, w.Get(b, PageType.L2));
            w.Table.EntryHook = null;
            Assert.Equal(Progress.Restart, nested);
            Assert.Equal((true, 0, true, 1), (during.Partial, during.NrValidated, during.PartialSet, during.GeneralCount));
            Assert.Equal(2, w.State(b).GeneralCount);           // A[0]'s and the top-level one
            w.Audit();

            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            Assert.Equal((2, 2), (w.State(b).GeneralCount, w.State(b).TypeCount));
            w.Audit();
            w.PutToCompletion(b);
            w.PutToCompletion(a);
            w.AuditEmpty();
        }

        [Fact]
        public void PromoteL3_InvalidEntryAt5_FailedLeavesPartialAndPutReleasesEachEntryOnce()
        {
            using var w = new PageTypeWorld();
            ulong a = w.NewFrame();
            var children = new ulong[5];
            for (int i = 0; i < 5; i++)
            {
                children[i] = w.NewTable((i, PageTypeShapes.L1(w, (0, w.NewFrame(), true))));
                w.Link(a, i, children[i]);
            }

            w.SetEntry(a, 5, (w.NewFrame() << 12) | PageTypeWorld.Present | PageTypeWorld.Ps);
            w.Link(a, 6, w.NewTable());

            Assert.Equal(Progress.Failed, w.Get(a, PageType.L3));
            PageTypeState s = w.State(a);
            Assert.Equal((true, 5, false, 1, 1), (s.Partial, s.NrValidated, s.PartialSet, s.TypeCount, s.GeneralCount));
            Assert.All(children, c => Assert.Equal((1, 1), (w.State(c).GeneralCount, w.State(c).TypeCount)));
            w.Audit();

            var visited = new List<int>();
            w.Table.EntryHook = (mfn, i) =>
            {
                if (mfn == a)
                {
                    visited.Add(i);
                }
            };
            Assert.Equal(Progress.Done, w.Put(a));           // abandons the partial validation
            w.Table.EntryHook = null;
            Assert.Equal([4, 3, 2, 1, 0], visited);
            w.AuditEmpty();
            Assert.Throws<InvalidOperationException>(() => w.Put(a));
        }

        [Fact]
        public void PromoteL3_InvalidEntryAt0_FailedWithNothingHeld()
        {
            using var w = new PageTypeWorld();
            ulong a = w.NewTable();
            w.SetEntry(a, 0, (w.NewFrame() << 12) | PageTypeWorld.Present | PageTypeWorld.Ps);
            Assert.Equal(Progress.Failed, w.Get(a, PageType.L3));
            w.AuditEmpty();
        }
    }
}

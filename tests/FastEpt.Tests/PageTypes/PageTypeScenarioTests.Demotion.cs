// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    public sealed partial class PageTypeScenarioTests
    {
        [Fact]
        public void DemoteL2_PreemptedAfterEntry511_Nr511ThenResumeStartsAt510()
        {
            using var w = new PageTypeWorld();
            ulong l0 = PageTypeShapes.L1(w, (0, w.NewFrame(), true));
            ulong l510 = PageTypeShapes.L1(w);
            ulong l511 = PageTypeShapes.L1(w, (9, w.NewFrame(), false));
            ulong a = w.NewTable((0, l0), (510, l510), (511, l511));
            Assert.Equal(Progress.Done, w.Get(a, PageType.L2));

            Preemption p = Preemption.After(0);
            Assert.Equal(Progress.Restart, w.Put(a, ref p));
            PageTypeState s = w.State(a);
            Assert.Equal((true, 511, false, 1), (s.Partial, s.NrValidated, s.PartialSet, s.PendingPuts));
            Assert.Equal(default, w.State(l511));
            Assert.Equal(1, w.State(l510).TypeCount);
            w.Audit();

            int first = -1;
            w.Table.EntryHook = (mfn, i) =>
            {
                if (mfn == a && first < 0)
                {
                    first = i;
                }
            };
            Assert.Equal(Progress.Done, w.Put(a));
            w.Table.EntryHook = null;
            Assert.Equal(510, first);
            w.AuditEmpty();
        }

        [Fact]
        public void Demote_ChildAt300Restarts_OtherCompletesChild_ResumeDropsEntryRefOnce()
        {
            using var w = new PageTypeWorld();
            ulong c = w.NewTable((2, PageTypeShapes.L1(w)), (400, PageTypeShapes.L1(w, (1, w.NewFrame(), true))));
            ulong a = w.NewTable((0, w.NewTable()), (300, c), (301, w.NewTable()));
            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));

            // A demotes entries 511..301 (A's points after each, 211 in all, and 511 for the L2 at
            // 301), then C stops at the point after its entry 506.
            Preemption p = Preemption.After(211 + 511 + 5);
            Assert.Equal(Progress.Restart, w.Put(a, ref p));
            PageTypeState sa = w.State(a), sc = w.State(c);
            Assert.Equal((true, 300, true), (sa.Partial, sa.NrValidated, sa.PartialSet));
            Assert.Equal((true, 506, false, 2), (sc.Partial, sc.NrValidated, sc.PartialSet, sc.GeneralCount));
            w.Audit();

            // Another party completes C's demotion (a put on a partial frame nobody holds).
            Assert.Equal(Progress.Done, w.Put(c));
            Assert.Equal((1, 0, false), (w.State(c).GeneralCount, w.State(c).TypeCount, w.State(c).Partial));
            w.Audit();

            // Resuming A finds C no longer partial: it only drops the entry's general reference.
            Assert.Equal(Progress.Done, w.Put(a));
            w.AuditEmpty();
        }

        [Fact]
        public void Demote_FullEntryNamesPartialFrame_ThrowsInvariantViolationAndTableStaysBroken()
        {
            using var w = new PageTypeWorld();
            ulong b = w.NewTable();
            ulong c = w.NewTable((0, PageTypeShapes.L1(w)), (5, PageTypeShapes.L1(w)));
            ulong a = w.NewTable((0, b));
            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            Preemption p = Preemption.After(2);
            Assert.Equal(Progress.Restart, w.Get(c, PageType.L2, ref p));
            Assert.True(w.State(c).Partial);

            // The guest rewrites a validated entry (what write protection prevents in Xen): A's
            // full entry 0 now names C, a partial frame, so demoting A puts C's type without
            // PTF_partial_set.
            w.Link(a, 0, c);
            InvariantViolationException e = Assert.Throws<InvariantViolationException>(() => w.Put(a));
            Assert.Contains("PTF_partial_set", e.Message, StringComparison.Ordinal);
            Assert.Throws<InvariantViolationException>(() => w.Get(b, PageType.L2));
            Assert.Throws<InvariantViolationException>(() => w.Put(c));
        }

        [Fact]
        public void Demote_FullEntryNamesUntypedFrame_ThrowsInvariantViolation()
        {
            using var w = new PageTypeWorld();
            ulong a = w.NewTable((0, w.NewTable()));
            Assert.Equal(Progress.Done, w.Get(a, PageType.L3));
            w.Link(a, 0, w.NewTable());
            Assert.Throws<InvariantViolationException>(() => w.Put(a));
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// The scenarios of docs/model/page-types.md §7.7, adapted to FastEpt's caller protocol (no vCPU
    /// old_guest_table: a failed promotion leaves the frame partial and a put cleans it up), and
    /// the general rules: writable/page-table exclusion, double puts, bad arguments.
    /// </summary>
    public sealed class PageTypeScenarioTests
    {
        private const int L2Checks = 511;      // an L2 or L3 validation passes a preemption point before each entry but its first

        // The README's PageTypeTable example, step for step.
        [Fact]
        public void ReadmeExample_Runs()
        {
            using var memory = new HostMemory(16L << 20);
            var types = new PageTypeTable(memory);
            ulong l2 = memory.AllocateFrame(), l1 = memory.AllocateFrame(), data = memory.AllocateFrame();
            memory.WriteUInt64(l2 << 12, (l1 << 12) | 0b11);             // L2[0] -> L1, present + R/W
            memory.WriteUInt64(l1 << 12, (data << 12) | 0b11);           // L1[0] -> data, present + R/W
            Preemption budget = Preemption.After(100);
            while (types.GetPageType(l2, PageType.L2, ref budget) == Progress.Restart)
            {
                budget = Preemption.After(100);                          // other work may run in between
            }

            // l2 is validated, l1 is an L1, and data holds a Writable reference: no table can be made of it.
            Assert.Equal(PageType.Writable, types.GetState(data).Type);
            Assert.Equal(Progress.Failed, types.GetPageType(data, PageType.L1, ref budget));
            Preemption never = Preemption.Never;
            Assert.Equal(Progress.Done, types.PutPageType(l2, ref never));  // demotes all of it again
            Assert.Equal(default, types.GetState(data));
        }

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

        // XSA-299 appendix: B is freed and could be reassigned while A records PTF_partial_set on
        // it, unless the entry holds a general reference. It does, and the table's general
        // references keep HostMemory from reusing the frame until the last one goes.
        [Fact]
        public void Xsa299Appendix_ChildFreedWhileEntryRecordsPartialSet_NeverReusedUntilReleased()
        {
            using var w = new PageTypeWorld(64);
            ulong b = w.NewTable((0, PageTypeShapes.L1(w)), (40, PageTypeShapes.L1(w)));
            ulong a = w.NewTable((0, w.NewTable()), (3, b));
            Preemption p = Preemption.After(L2Checks + 3 + 10);
            Assert.Equal(Progress.Restart, w.Get(a, PageType.L3, ref p));
            Assert.Equal((3, true), (w.State(a).NrValidated, w.State(a).PartialSet));
            Assert.True(w.State(b).Partial);

            w.Memory.FreeFrame(b);                          // its owner frees it
            Assert.True(w.State(b).GeneralCount >= 1);
            Assert.Equal(Progress.Done, w.Put(b));          // someone completes B's partial demotion
            Assert.Equal(1, w.State(b).GeneralCount);       // A[3]'s reference is still there
            w.Audit();

            var taken = new List<ulong>();
            while (w.Memory.TryAllocateFrame(out ulong f))
            {
                taken.Add(f);
            }

            Assert.DoesNotContain(b, taken);                // never reassigned while referenced
            foreach (ulong f in taken)
            {
                w.Memory.FreeFrame(f);
            }

            Assert.Equal(Progress.Done, w.Put(a));          // abandon A: drops the entry's reference on B
            w.AuditEmpty();
            Assert.Equal(0, w.Memory.ReferenceCount(b));
            var again = new List<ulong>();
            while (w.Memory.TryAllocateFrame(out ulong f))
            {
                again.Add(f);
            }

            Assert.Contains(b, again);
        }

        [Fact]
        public void Writable_OnValidatedTable_FailsUntilDemoted_AndTableOnWritableFails()
        {
            using var w = new PageTypeWorld();
            ulong l1 = PageTypeShapes.L1(w);
            ulong l2 = w.NewTable((0, l1));
            Assert.Equal(Progress.Done, w.Get(l2, PageType.L2));
            Assert.Equal(Progress.Failed, w.Get(l1, PageType.Writable));
            Assert.Equal(Progress.Failed, w.Get(l2, PageType.Writable));
            Assert.Equal(Progress.Failed, w.Get(l1, PageType.L2));     // one type at a time
            w.Audit();

            w.PutToCompletion(l2);
            Assert.Equal(Progress.Done, w.Get(l1, PageType.Writable));
            Assert.Equal(Progress.Done, w.Get(l1, PageType.Writable));
            Assert.Equal((PageType.Writable, 2), (w.State(l1).Type, w.State(l1).TypeCount));
            Assert.Equal(Progress.Failed, w.Get(l2, PageType.L2));     // its child cannot become an L1
            Assert.Equal(Progress.Failed, w.Get(l1, PageType.L1));
            w.Audit();
            w.Put(l1);
            w.Put(l1);
            w.AuditEmpty();
        }

        [Fact]
        public void L1_WritableMappingOfPageTable_Fails_ReadOnlyMappingIsAllowed()
        {
            using var w = new PageTypeWorld();
            ulong other = w.NewTable();
            Assert.Equal(Progress.Done, w.Get(other, PageType.L2));
            ulong ro = PageTypeShapes.L1(w, (0, other, false));
            ulong rw = PageTypeShapes.L1(w, (0, w.NewFrame(), true), (1, other, true));
            Assert.Equal(Progress.Done, w.Get(ro, PageType.L1));
            Assert.Equal(2, w.State(other).GeneralCount);
            Assert.Equal(Progress.Failed, w.Get(rw, PageType.L1));
            Assert.Equal(default, w.State(rw));                  // an L1 undoes itself on failure
            w.Audit();
            w.Put(ro);
            w.Put(other);
            w.AuditEmpty();
        }

        [Fact]
        public void PutPageType_Twice_SecondThrowsAndChangesNothing()
        {
            using var w = new PageTypeWorld();
            ulong l1 = PageTypeShapes.L1(w, (0, w.NewFrame(), true));
            ulong a = w.NewTable((0, l1));
            ulong data = w.NewFrame();
            Assert.Equal(Progress.Done, w.Get(a, PageType.L2));
            Assert.Equal(Progress.Done, w.Get(data, PageType.Writable));
            w.Put(a);
            w.Put(data);
            PageTypeState[] before = w.Snapshot();
            Preemption p = Preemption.Never;
            Assert.Throws<InvalidOperationException>(() => w.Table.PutPageType(a, ref p));
            Assert.Throws<InvalidOperationException>(() => w.Table.PutPageType(data, ref p));
            Assert.Equal(before, w.Snapshot());
            w.AuditEmpty();
        }

        [Fact]
        public void PutPageType_WithoutReference_ThrowsAndChangesNothing()
        {
            using var w = new PageTypeWorld();
            ulong l1 = PageTypeShapes.L1(w);
            ulong a = w.NewTable((0, l1));
            Assert.Equal(Progress.Done, w.Get(a, PageType.L2));
            PageTypeState[] before = w.Snapshot();
            Preemption p = Preemption.Never;
            Assert.Throws<InvalidOperationException>(() => w.Table.PutPageType(w.NewFrame(), ref p));
            Assert.Equal(before, w.Snapshot());
            w.Audit();
            w.Put(a);
            w.AuditEmpty();
        }

        [Fact]
        public void GetPageType_BadArguments_ThrowNamingTheArgument()
        {
            using var w = new PageTypeWorld(16);
            Preemption p = Preemption.Never;
            Assert.Throws<ArgumentOutOfRangeException>("mfn", () => w.Table.GetPageType(16, PageType.L1, ref p));
            Assert.Throws<ArgumentOutOfRangeException>("mfn", () => w.Table.PutPageType(16, ref p));
            Assert.Throws<ArgumentOutOfRangeException>("mfn", () => w.Table.GetState(16));
            Assert.Throws<ArgumentOutOfRangeException>("type", () => w.Table.GetPageType(1, PageType.None, ref p));
            Assert.Throws<ArgumentOutOfRangeException>("type", () => w.Table.GetPageType(1, (PageType)6, ref p));
            Assert.Throws<ArgumentNullException>("memory", () => new PageTypeTable(null!));
            Assert.Equal(Progress.Failed, w.Table.GetPageType(3, PageType.Writable, ref p));   // not allocated
            w.AuditEmpty();
        }
    }
}

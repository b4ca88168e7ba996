// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// The scenarios of docs/model/page-types.md §7.7, adapted to FastEpt's caller protocol (no vCPU
    /// old_guest_table: a failed promotion leaves the frame partial and a put cleans it up), and
    /// the general rules: writable/page-table exclusion, double puts, bad arguments.
    /// </summary>
    public sealed partial class PageTypeScenarioTests
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

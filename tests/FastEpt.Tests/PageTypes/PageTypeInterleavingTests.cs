// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.PageTypes
{
    /// <summary>
    /// Promotions and demotions of overlapping frames interleaved on one thread: a promotion
    /// interrupted, a demotion of the same frame started, then the promotion resumed, and so
    /// on; top-level references on interior frames of a hierarchy that is being validated
    /// around them; writable references racing for the same frames. The recount must agree
    /// after every call, and releasing everything must leave nothing behind.
    /// </summary>
    public sealed class PageTypeInterleavingTests
    {
        [Fact]
        public void PromoteInterrupted_DemoteStarted_PromoteResumed_AndSoOn()
        {
            using var w = new PageTypeWorld();
            (ulong root, PageType type) = PageTypeShapes.Build(w, "L4-shared-L3s-and-L2s");
            Preemption once = Preemption.Never;
            Assert.Equal(Progress.Done, w.Get(root, type, ref once));
            Assert.True(once.Checks > 2000);
            w.PutToCompletion(root);

            // Promote partly, demote partly (abandoning the promotion), promote again (taking the
            // demotion's partial state over), demote again (the pending put takes it back), and
            // so on; budgets stop each call at a different depth. int.MaxValue: never preempted.
            (bool Get, int Budget, Progress Expected)[] script =
            [
                (true, 600, Progress.Restart),
                (false, 3, Progress.Restart),           // abandons the partial promotion; the put is pending
                (true, 900, Progress.Restart),          // continues promoting from where the demotion stopped
                (false, 0, Progress.Restart),           // the pending put demotes again
                (false, int.MaxValue, Progress.Done),   // and finishes: nothing is left
                (true, int.MaxValue, Progress.Done),
                (false, 600, Progress.Restart),         // our reference's put stops part-way, inside the second L3
                (true, 1, Progress.Restart),            // a get takes the demotion over
                (true, int.MaxValue, Progress.Done),    // and completes: we hold a reference, our put still pending
                (false, 0, Progress.Done),              // the pending put finds nothing partial: drops its general reference only
                (false, 2, Progress.Restart),           // our last reference: demotes
                (false, int.MaxValue, Progress.Done),
            ];
            for (int i = 0; i < script.Length; i++)
            {
                (bool get, int budget, Progress expected) = script[i];
                Preemption p = budget == int.MaxValue ? Preemption.Never : Preemption.After(budget);
                Progress r = get ? w.Get(root, type, ref p) : w.Put(root, ref p);
                Assert.True(r == expected, $"step {i}: {r}, expected {expected}; root {w.State(root)}");
                w.Audit();
            }

            w.AuditEmpty();
            ReleaseEverything(w);
        }

        [Fact]
        public void Promote_ThenTopLevelReferenceOnInteriorFrame_ThenDemoteAroundIt()
        {
            using var w = new PageTypeWorld();
            ulong l1 = PageTypeShapes.L1(w, (0, w.NewFrame(), true));
            ulong p = w.NewTable((0, l1));
            ulong s = w.NewTable((0, p), (9, w.NewTable()));
            ulong root = w.NewTable((0, s));

            // Interrupt inside P (an L2 under S under the root), pin P itself from the top,
            // which takes over and finishes P's partial validation, then demote the root.
            Preemption budget = Preemption.After(1);
            Assert.Equal(Progress.Restart, w.Get(root, PageType.L4, ref budget));
            Assert.True(w.State(p).Partial);
            Assert.Equal(Progress.Done, w.Get(p, PageType.L2));
            Assert.True(w.State(p).Validated);
            Assert.True(w.State(s).Partial);               // S still records PTF_partial_set on P
            w.Audit();

            Assert.Equal(Progress.Done, w.Get(root, PageType.L4));
            Assert.Equal(2, w.State(p).TypeCount);          // S's entry and our pin
            w.Audit();
            w.PutToCompletion(root, budget: 2);
            Assert.Equal((1, 1, true), (w.State(p).GeneralCount, w.State(p).TypeCount, w.State(p).Validated));
            w.Audit();
            w.Put(p);
            w.AuditEmpty();
        }

        [Fact]
        public void DemoteInterruptedInsideChild_ChildPinnedFromTop_ResumedDemotionLeavesPin()
        {
            using var w = new PageTypeWorld();
            ulong p = w.NewTable((0, PageTypeShapes.L1(w)), (300, PageTypeShapes.L1(w)));
            ulong root = w.NewTable((0, p));
            Assert.Equal(Progress.Done, w.Get(root, PageType.L3));

            // The root's demotion stops inside P (P partial, the root records PTF_partial_set).
            Preemption budget = Preemption.After(511 + 20);          // the root's 511 points, then 20 of P's
            Assert.Equal(Progress.Restart, w.Put(root, ref budget));
            Assert.True(w.State(p).Partial);
            Assert.True(w.State(root).PartialSet);

            // A top-level get of P takes its partial state over and validates it again.
            Assert.Equal(Progress.Done, w.Get(p, PageType.L2));
            w.Audit();

            // The root's pending put finds P no longer partial: it drops only its general reference.
            Assert.Equal(Progress.Done, w.Put(root));
            Assert.Equal((1, 1, true), (w.State(p).GeneralCount, w.State(p).TypeCount, w.State(p).Validated));
            w.Audit();
            w.Put(p);
            w.AuditEmpty();
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(4)]
        [InlineData(5)]
        [InlineData(6)]
        [InlineData(7)]
        [InlineData(8)]
        public void RandomInterleaving_OverlappingFrames_RecountAgreesAfterEveryCall(int seed)
        {
            using var w = new PageTypeWorld();
            var rng = new Random(seed);

            // Two roots over shared L3s, L2s and L1s; top-level references are also taken on the
            // interior frames, and writable ones on data frames and on an L1.
            ulong d0 = w.NewFrame(), d1 = w.NewFrame();
            ulong l1a = PageTypeShapes.L1(w, (0, d0, true), (1, d1, false));
            ulong l1b = PageTypeShapes.L1(w, (7, d1, true));
            ulong p = w.NewTable((0, l1a), (3, l1b));
            ulong q = w.NewTable((1, l1b));
            ulong s = w.NewTable((0, p), (2, q));
            ulong t = w.NewTable((5, q), (6, p));
            ulong r1 = w.NewTable((0, s), (1, t));
            ulong r2 = w.NewTable((0, t), (511, s));
            (ulong Mfn, PageType Type)[] targets =
                [(r1, PageType.L4), (r2, PageType.L4), (s, PageType.L3), (t, PageType.L3), (p, PageType.L2),
                 (q, PageType.L2), (l1a, PageType.L1), (l1b, PageType.Writable), (d1, PageType.Writable)];

            for (int step = 0; step < 300; step++)
            {
                (ulong mfn, PageType type) = targets[rng.Next(targets.Length)];
                Preemption budget = rng.Next(4) switch
                {
                    0 => Preemption.Never,
                    1 => Preemption.After(rng.Next(3)),
                    2 => Preemption.After(rng.Next(600)),
                    _ => Preemption.After(rng.Next(3000)),
                };
                bool canPut = w.Held.GetValueOrDefault(mfn) > 0 || w.Claims.GetValueOrDefault(mfn) > 0 || w.State(mfn).Partial;
                if (canPut && rng.Next(2) == 0)
                {
                    w.Put(mfn, ref budget);
                }
                else
                {
                    w.Get(mfn, type, ref budget);
                }

                w.Audit();
            }

            ReleaseEverything(w);
        }

        /// <summary>Continues every pending put, puts every held reference, abandons every partial frame; then checks that nothing is left.</summary>
        internal static void ReleaseEverything(PageTypeWorld w)
        {
            foreach (ulong mfn in w.Claims.Keys.ToArray())
            {
                while (w.Claims[mfn] > 0)
                {
                    w.Put(mfn);
                }
            }

            foreach (ulong mfn in w.Held.Keys.ToArray())
            {
                while (w.Held[mfn] > 0)
                {
                    w.Put(mfn);
                }
            }

            for (ulong f = 0; f < (ulong)w.Memory.FrameCount; f++)
            {
                if (w.State(f).Partial)
                {
                    w.PutToCompletion(f);
                    w.Audit();
                }
            }

            w.AuditEmpty();
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.Internal
{
    // The lock-order checker of SPEC.md "FastEpt decisions" 6; always on in these tests.
    public sealed class OrderedLockTests
    {
        private static T WithChecking<T>(Func<T> body)
        {
            bool saved = OrderedLock.CheckOrder;
            OrderedLock.CheckOrder = true;
            try
            {
                return body();
            }
            finally
            {
                OrderedLock.CheckOrder = saved;
            }
        }

        [Fact]
        public void Enter_IncreasingRanks_Succeeds()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "p2m");
            var pod = new OrderedLock(OrderedLock.PodRank, "pod");
            bool done = WithChecking(() =>
            {
                using (p2m.Enter())
                using (pod.Enter())
                {
                    return pod.IsHeldByCurrentThread && p2m.IsHeldByCurrentThread;
                }
            });
            Assert.True(done);
        }

        [Fact]
        public void Enter_LowerRankWhileHoldingHigher_Throws()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "p2m");
            var pod = new OrderedLock(OrderedLock.PodRank, "pod");
            InvalidOperationException ex = WithChecking(() =>
            {
                using (pod.Enter())
                {
                    return Assert.Throws<InvalidOperationException>(() => { using (p2m.Enter()) { } });
                }
            });
            Assert.Contains("order", ex.Message);
            Assert.False(p2m.IsHeldByCurrentThread);
        }

        [Fact]
        public void Enter_Reentrant_ThrowsLockRecursion()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "p2m");
            WithChecking(() =>
            {
                using (p2m.Enter())
                {
                    return Assert.Throws<LockRecursionException>(() => { using (p2m.Enter()) { } });
                }
            });
            // Released properly afterwards: another thread can take it.
            bool taken = false;
            var t = new Thread(() => { using (p2m.Enter()) { taken = true; } });
            t.Start();
            Assert.True(t.Join(5000));
            Assert.True(taken);
        }

        [Fact]
        public void Exit_CheckerSwitchedOffWhileHeld_LeavesNoStaleRank()
        {
            // Regression: a rank pushed while checking was on must be popped on release even if
            // checking was switched off meanwhile, or the next lower-rank lock fails spuriously.
            var p2m = new OrderedLock(OrderedLock.P2mRank, "p2m");
            var pod = new OrderedLock(OrderedLock.PodRank, "pod");
            bool saved = OrderedLock.CheckOrder;
            try
            {
                OrderedLock.CheckOrder = true;
                OrderedLock.Scope s = pod.Enter();
                OrderedLock.CheckOrder = false;
                s.Dispose();
                OrderedLock.CheckOrder = true;
                using (p2m.Enter())
                {
                    Assert.True(p2m.IsHeldByCurrentThread);
                }
            }
            finally
            {
                OrderedLock.CheckOrder = saved;
            }
        }

        [Fact]
        public void PodPopulate_TakesP2mThenPod_PassesTheChecker()
        {
            bool ok = WithChecking(() =>
            {
                using var memory = new HostMemory(64L << 20);
                using var p2m = new P2m(memory);
                ulong frames = memory.AllocateFrames(1024);
                ulong big = (frames + 511) & ~511UL;
                p2m.Pod.AddPage(big, PageOrder.Size2M);
                p2m.SetEntry(0x200, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
                return p2m.GetEntry(0x201, P2mQuery.Alloc).Mfn == big + 1;
            });
            Assert.True(ok);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.Internal
{
    // The lock-order checker of docs/model/README.md §0.6; always on in these tests.
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

        [Fact]
        public void EnterRead_Twice_ThrowsLockRecursionNamingTheLock()
        {
            // The seed's recursive read acquisition (get_page_from_gva -> software walk -> page
            // lookup): the checker refuses it at once instead of letting it wait behind a writer.
            var p2m = new OrderedLock(OrderedLock.P2mRank, "host p2m");
            LockRecursionException ex = WithChecking(() =>
            {
                using (p2m.EnterRead())
                {
                    return Assert.Throws<LockRecursionException>(() => { using (p2m.EnterRead()) { } });
                }
            });
            Assert.Contains("'host p2m'", ex.Message);
            Assert.Contains("reading", ex.Message);
            Assert.Equal(0, p2m.Readers);
        }

        [Fact]
        public void EnterWrite_WhileHoldingRead_ThrowsLockRecursion()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "host p2m");
            WithChecking(() =>
            {
                using (p2m.EnterRead())
                {
                    return Assert.Throws<LockRecursionException>(() => { using (p2m.Enter()) { } });
                }
            });
            Assert.Equal(0, p2m.Readers);
        }

        [Fact]
        public void EnterRead_LowerRankWhileHoldingHigher_ThrowsNamingBoth()
        {
            var host = new OrderedLock(OrderedLock.P2mRank, "host p2m");
            var view = new OrderedLock(OrderedLock.AltP2mViewRank, "altp2m view 1");
            InvalidOperationException ex = WithChecking(() =>
            {
                using (view.EnterRead())
                {
                    return Assert.Throws<InvalidOperationException>(() => { using (host.EnterRead()) { } });
                }
            });
            Assert.Contains("'host p2m'", ex.Message);
            Assert.Contains("'altp2m view 1'", ex.Message);
        }

        [Fact]
        public void Enter_WriteReentryWithCheckerOff_StillThrowsInsteadOfHanging()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "p2m");
            bool saved = OrderedLock.CheckOrder;
            try
            {
                OrderedLock.CheckOrder = false;
                using (p2m.Enter())
                {
                    Assert.Throws<LockRecursionException>(() => { using (p2m.Enter()) { } });
                }
            }
            finally
            {
                OrderedLock.CheckOrder = saved;
            }

            Assert.False(p2m.IsHeldByCurrentThread);
        }

        [Fact]
        public void AssertNoneHeld_WithAReadLockHeld_Throws()
        {
            var p2m = new OrderedLock(OrderedLock.P2mRank, "host p2m");
            LockRecursionException ex = WithChecking(() =>
            {
                OrderedLock.AssertNoneHeld("accessor");
                using (p2m.EnterRead())
                {
                    return Assert.Throws<LockRecursionException>(() => OrderedLock.AssertNoneHeld("The guest-memory accessor"));
                }
            });
            Assert.Contains("'host p2m' (read", ex.Message);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]     // the distributed read side (per-thread-class reader counters)
        public async Task Readers_Share_AndAWriterWaitsForAllOfThem(bool distributedReaders)
        {
            var l = new OrderedLock(OrderedLock.P2mRank, "p2m", distributedReaders);
            using var bothIn = new CountdownEvent(2);
            using var release = new ManualResetEventSlim();
            Task[] readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
            {
                using (l.EnterRead())
                {
                    bothIn.Signal();
                    release.Wait(TimeSpan.FromSeconds(20));
                }
            })).ToArray();
            Assert.True(bothIn.Wait(TimeSpan.FromSeconds(20)), "two readers must hold the lock together");
            Assert.Equal(2, l.Readers);

            bool writerIn = false;
            Task writer = Task.Run(() =>
            {
                using (l.Enter())
                {
                    writerIn = true;
                }
            });
            await WaitUntil(() => l.WritersWaiting == 1);
            Assert.False(Volatile.Read(ref writerIn));
            release.Set();
            await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(20));
            await writer.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(writerIn);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]     // the distributed read side (per-thread-class reader counters)
        public async Task WriterPreference_NewReaderWaitsBehindAQueuedWriter(bool distributedReaders)
        {
            // The property that made Xen's recursive read a deadlock: reader A holds the lock, a
            // writer queues, and a second read request (from anyone, A included) waits for the
            // writer, which waits for A. Here the second reader is another thread, so A can finish.
            var l = new OrderedLock(OrderedLock.P2mRank, "p2m", distributedReaders);
            var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
            using var aIn = new ManualResetEventSlim();
            using var aGo = new ManualResetEventSlim();
            Task a = Task.Run(() =>
            {
                using (l.EnterRead())
                {
                    aIn.Set();
                    aGo.Wait(TimeSpan.FromSeconds(20));
                    order.Enqueue("A out");
                }
            });
            Assert.True(aIn.Wait(TimeSpan.FromSeconds(20)));
            Task w = Task.Run(() =>
            {
                using (l.Enter())
                {
                    order.Enqueue("W");
                }
            });
            await WaitUntil(() => l.WritersWaiting == 1);
            Task b = Task.Run(() =>
            {
                using (l.EnterRead())
                {
                    order.Enqueue("B");
                }
            });
            await Task.Delay(100);
            Assert.False(b.IsCompleted, "a new reader must wait while a writer is queued");
            aGo.Set();
            await Task.WhenAll(a, w, b).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(["A out", "W", "B"], order.ToArray());
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]     // the distributed read side (per-thread-class reader counters)
        public async Task Torture_WritersAreExclusive_ReadersNeverSeeAHalfUpdate(bool distributedReaders)
        {
            // Writers keep two counters equal outside the lock's write side; readers check them.
            var l = new OrderedLock(OrderedLock.P2mRank, "p2m", distributedReaders);
            long x = 0, y = 0, reads = 0, writes = 0, torn = 0;
            using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
            CancellationToken token = stop.Token;
            Task[] tasks = new Task[6];
            for (int t = 0; t < tasks.Length; t++)
            {
                bool isWriter = t < 2;
                tasks[t] = Task.Factory.StartNew(() =>
                {
                    while (!token.IsCancellationRequested)
                    {
                        if (isWriter)
                        {
                            using (l.Enter())
                            {
                                long v = Volatile.Read(ref x) + 1;
                                Volatile.Write(ref x, v);
                                Thread.SpinWait(20);
                                Volatile.Write(ref y, v);
                                writes++;
                            }
                        }
                        else
                        {
                            using (l.EnterRead())
                            {
                                if (Volatile.Read(ref x) != Volatile.Read(ref y))
                                {
                                    Interlocked.Increment(ref torn);
                                }

                                Interlocked.Increment(ref reads);
                            }
                        }
                    }
                }, TaskCreationOptions.LongRunning);
            }

            // Watchdog: a lost wake-up would leave a thread asleep forever.
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, torn);
            Assert.Equal(x, y);
            Assert.Equal(writes, x);
            Assert.True(reads > 0 && writes > 0, $"reads {reads}, writes {writes}");
            Assert.Equal(0, l.Readers);
            Assert.Equal(0, l.WritersWaiting);
        }

        private static async Task WaitUntil(Func<bool> condition)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (!condition())
            {
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), "timed out waiting for the condition");
                await Task.Delay(1);
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.Internal
{
    // A lock's stripes (OrderedLock.Stripes.cs): a stripe holder and the parent's writer exclude
    // each other, stripe holders of different stripes and the parent's readers do not.
    public sealed class OrderedLockStripeTests
    {
        private static (OrderedLock Parent, OrderedLock[] Stripes) Create(int count)
        {
            var parent = new OrderedLock(OrderedLock.P2mRank, "p2m", distributedReaders: true);
            var stripes = new OrderedLock[count];
            for (int i = 0; i < count; i++)
            {
                stripes[i] = new OrderedLock(OrderedLock.P2mStripeRank, "p2m stripe");
            }

            parent.AttachStripes(stripes);
            return (parent, stripes);
        }

        [Fact]
        public void ParentWriter_WaitsForAHeldStripe_AndAStripeWaitsForTheParentWriter()
        {
            (OrderedLock parent, OrderedLock[] stripes) = Create(4);
            Worker writer;
            int writerIn = 0;
            using (stripes[2].EnterStripe())
            {
                writer = new Worker(() =>
                {
                    using (parent.Enter())
                    {
                        Volatile.Write(ref writerIn, 1);
                    }
                });
                SpinUntil(() => parent.WritersWaiting > 0);
                Thread.Sleep(50);
                Assert.Equal(0, Volatile.Read(ref writerIn));     // still waiting for the stripe
            }

            writer.Join("the parent's writer never got in");
            Assert.Equal(1, writerIn);

            int stripeIn = 0;
            Worker holder;
            using (parent.Enter())
            {
                holder = new Worker(() =>
                {
                    using (stripes[0].EnterStripe())
                    {
                        Volatile.Write(ref stripeIn, 1);
                    }
                });
                Thread.Sleep(100);
                Assert.Equal(0, Volatile.Read(ref stripeIn));     // the parent's writer keeps it out
            }

            holder.Join("the stripe holder never got in");
            Assert.Equal(1, stripeIn);
        }

        [Fact]
        public void ParentReaders_AndOtherStripes_DoNotWaitForAStripe()
        {
            (OrderedLock parent, OrderedLock[] stripes) = Create(4);
            using (stripes[1].EnterStripe())
            {
                new Worker(() =>
                {
                    using (parent.EnterRead())
                    {
                        Assert.Equal(1, parent.Readers);
                    }
                }).Join("a reader of the parent waited for stripe 1");
                new Worker(() =>
                {
                    using (stripes[3].EnterStripe())
                    {
                        Assert.True(stripes[3].IsHeldByCurrentThread);
                    }
                }).Join("another stripe waited for stripe 1");
            }
        }

        [Fact]
        public void EnterStripe_ByAHolderOfTheParent_ThrowsInsteadOfDeadlocking()
        {
            bool saved = OrderedLock.CheckOrder;
            OrderedLock.CheckOrder = true;
            try
            {
                (OrderedLock parent, OrderedLock[] stripes) = Create(2);
                using (parent.Enter())
                {
                    LockRecursionException e = Assert.Throws<LockRecursionException>(() => stripes[0].EnterStripe().Dispose());
                    Assert.Contains("p2m stripe", e.Message);
                }

                // Holding the read side is refused too: a queued writer would wait for this
                // reader while the stripe waits for the writer.
                using (parent.EnterRead())
                {
                    LockRecursionException e = Assert.Throws<LockRecursionException>(() => stripes[1].EnterStripe().Dispose());
                    Assert.Contains("p2m stripe", e.Message);
                }
            }
            finally
            {
                OrderedLock.CheckOrder = saved;
            }
        }

        // Stripe holders keep a pair of counters per stripe equal outside their stripe and check
        // the parent's pair; parent writers keep their own pair equal and check every stripe's
        // pair. A stripe holder that did not look at the parent after taking its stripe (or a
        // writer that did not wait for the stripes) shows up as a torn pair.
        [Fact]
        public async Task Torture_StripeHoldersAndParentWritersNeverOverlap()
        {
            (OrderedLock parent, OrderedLock[] stripes) = Create(4);
            long[] sx = new long[4 * 16], sy = new long[4 * 16];     // one pair per stripe, 128 bytes apart
            long px = 0, py = 0, torn = 0, stripeWrites = 0, parentWrites = 0, readerChecks = 0;
            using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(800));
            CancellationToken token = stop.Token;
            var tasks = new Task[6];
            for (int t = 0; t < tasks.Length; t++)
            {
                int role = t;
                tasks[t] = Task.Factory.StartNew(() =>
                {
                    var random = new Random(role);
                    while (!token.IsCancellationRequested)
                    {
                        if (role < 4)
                        {
                            int s = random.Next(4);
                            using (stripes[s].EnterStripe())
                            {
                                if (Volatile.Read(ref px) != Volatile.Read(ref py))
                                {
                                    Interlocked.Increment(ref torn);
                                }

                                long v = Volatile.Read(ref sx[s * 16]) + 1;
                                Volatile.Write(ref sx[s * 16], v);
                                Thread.SpinWait(10);
                                Volatile.Write(ref sy[s * 16], v);
                                Interlocked.Increment(ref stripeWrites);
                            }
                        }
                        else if (role == 4)
                        {
                            using (parent.Enter())
                            {
                                for (int s = 0; s < 4; s++)
                                {
                                    if (Volatile.Read(ref sx[s * 16]) != Volatile.Read(ref sy[s * 16]))
                                    {
                                        Interlocked.Increment(ref torn);
                                    }
                                }

                                long v = Volatile.Read(ref px) + 1;
                                Volatile.Write(ref px, v);
                                Thread.SpinWait(10);
                                Volatile.Write(ref py, v);
                                parentWrites++;
                            }

                            Thread.SpinWait(50);
                        }
                        else
                        {
                            using (parent.EnterRead())
                            {
                                if (Volatile.Read(ref px) != Volatile.Read(ref py))
                                {
                                    Interlocked.Increment(ref torn);
                                }

                                readerChecks++;
                            }
                        }
                    }
                }, TaskCreationOptions.LongRunning);
            }

            // Watchdog: a lost wake-up between a stripe and its parent would hang a thread.
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, torn);
            Assert.Equal(px, py);
            Assert.Equal(parentWrites, px);
            long stripeTotal = 0;
            for (int s = 0; s < 4; s++)
            {
                Assert.Equal(sx[s * 16], sy[s * 16]);
                stripeTotal += sx[s * 16];
            }

            Assert.Equal(stripeWrites, stripeTotal);
            Assert.True(stripeWrites > 100 && parentWrites > 10 && readerChecks > 0,
                        $"stripe writes {stripeWrites}, parent writes {parentWrites}, reader checks {readerChecks}");
            Assert.Equal(0, parent.WritersWaiting);
        }

        // A thread with a watchdog on its join; an exception in it fails the test.
        private sealed class Worker
        {
            private readonly Thread _thread;
            private Exception? _error;

            public Worker(Action body)
            {
                _thread = new Thread(() =>
                {
                    try
                    {
                        body();
                    }
                    catch (Exception e)
                    {
                        _error = e;
                    }
                })
                { IsBackground = true };
                _thread.Start();
            }

            public void Join(string timeoutMessage)
            {
                Assert.True(_thread.Join(TimeSpan.FromSeconds(20)), timeoutMessage);
                if (_error is not null)
                {
                    throw new InvalidOperationException("The worker thread failed.", _error);
                }
            }
        }

        private static void SpinUntil(Func<bool> condition)
            => Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(20)), "timed out waiting for the condition");
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;

namespace FastEpt.Tests.Memory
{
    public sealed class HostMemoryTests
    {
        [Fact]
        public void AllocateFrame_UntilFull_ThenThrowsInsufficientMemory()
        {
            using var m = new HostMemory(16 * 4096);
            var seen = new HashSet<ulong>();
            for (int i = 0; i < 16; i++)
            {
                Assert.True(seen.Add(m.AllocateFrame()));
            }

            Assert.Equal(16, m.AllocatedFrameCount);
            Assert.Throws<InsufficientMemoryException>(() => m.AllocateFrame());
            Assert.False(m.TryAllocateFrame(out _));
        }

        [Fact]
        public void AllocateFrame_ReusedFrame_IsZeroedAgain()
        {
            using var m = new HostMemory(4 * 4096);
            ulong f = m.AllocateFrame();
            m.Frame(f).Fill(0xAB);
            m.FreeFrame(f);
            Assert.False(m.IsAllocated(f));
            ulong g = m.AllocateFrame();
            Assert.Equal(f, g);
            Assert.True(m.Frame(g).IndexOfAnyExcept((byte)0) < 0);
        }

        [Fact]
        public void AllocateFrame_WrittenBeforeAllocation_ComesBackZeroed()
        {
            using var m = new HostMemory(4 * 4096);
            m.WriteUInt64(0x10, 0x1234);
            ulong f = m.AllocateFrame();
            Assert.Equal(0UL, f);
            Assert.Equal(0UL, m.ReadUInt64(0x10));
        }

        [Fact]
        public void AllocateFrames_LargeRun_ContiguousZeroedAndNotReused()
        {
            using var m = new HostMemory(8L << 20);
            ulong single = m.AllocateFrame();
            m.Write(((single + 1) << 12) + 100, new byte[] { 1, 2, 3 });
            ulong first = m.AllocateFrames(1024);
            Assert.Equal(single + 1, first);
            for (ulong f = first; f < first + 1024; f++)
            {
                Assert.True(m.IsAllocated(f));
            }

            Assert.True(m.Frame(first).IndexOfAnyExcept((byte)0) < 0);
            Assert.Equal(1025, m.AllocatedFrameCount);
            Assert.Throws<InsufficientMemoryException>(() => m.AllocateFrames(m.FrameCount));
        }

        [Fact]
        public void ReadWrite_RoundTrip_AlignedUnalignedAndSpans()
        {
            using var m = new HostMemory(2 * 4096);
            m.WriteUInt64(8, 0x0102_0304_0506_0708);
            Assert.Equal(0x0102_0304_0506_0708UL, m.ReadUInt64(8));
            m.WriteUInt64(4093, 0xAABB_CCDD_EEFF_0011);        // straddles the frame boundary
            Assert.Equal(0xAABB_CCDD_EEFF_0011UL, m.ReadUInt64(4093));
            byte[] buf = new byte[16];
            m.Read(4088, buf);
            Assert.Equal(0x11, buf[5]);
            m.Write(8192 - 3, new byte[] { 7, 8, 9 });
            Assert.Equal(9, m.Frame(1)[4095]);
            Assert.Throws<ArgumentOutOfRangeException>("hpa", () => m.ReadUInt64(8192 - 7));
            Assert.Throws<ArgumentOutOfRangeException>("hpa", () => m.Write(8192 - 2, new byte[3]));
        }

        [Fact]
        public void AllocateAndFree_ManyThreads_NoFrameHandedOutTwice()
        {
            using var m = new HostMemory(4096L * 4096);
            var live = new ConcurrentDictionary<ulong, int>();
            int duplicates = 0;
            var threads = new Thread[4];
            for (int t = 0; t < threads.Length; t++)
            {
                int seed = t;
                threads[t] = new Thread(() =>
                {
                    var rnd = new Random(seed);
                    var mine = new List<ulong>();
                    for (int i = 0; i < 20_000; i++)
                    {
                        if (mine.Count > 0 && rnd.Next(3) == 0)
                        {
                            int k = rnd.Next(mine.Count);
                            ulong f = mine[k];
                            mine[k] = mine[^1];
                            mine.RemoveAt(mine.Count - 1);
                            live.TryRemove(f, out _);
                            m.FreeFrame(f);
                        }
                        else if (m.TryAllocateFrame(out ulong f))
                        {
                            if (!live.TryAdd(f, seed))
                            {
                                Interlocked.Increment(ref duplicates);
                            }

                            mine.Add(f);
                        }
                    }
                });
                threads[t].Start();
            }

            foreach (Thread t in threads)
            {
                Assert.True(t.Join(TimeSpan.FromSeconds(60)), "allocator threads did not finish");
            }

            Assert.Equal(0, duplicates);
            Assert.Equal(live.Count, m.AllocatedFrameCount);
        }

        [Fact]
        public void Reservation_64GiB_IsLazy()
        {
            // API.md: at least 64 GiB reservable, committed lazily (this machine has far less free).
            using var m = new HostMemory(64L << 30);
            Assert.Equal(16L << 20, m.FrameCount);
            ulong last = (ulong)m.FrameCount - 1;
            m.WriteUInt64(last << 12, 42);
            Assert.Equal(42UL, m.ReadUInt64(last << 12));
        }

        [Fact]
        public void References_CountUpAndDown_DoubleReleaseThrowsAndChangesNothing()
        {
            using var m = new HostMemory(8 * 4096);
            ulong f = m.AllocateFrame();
            Assert.Equal(0, m.ReferenceCount(f));
            Assert.True(m.TryAddReference(f));
            Assert.True(m.TryAddReference(f));
            Assert.Equal(2, m.ReferenceCount(f));
            m.ReleaseReference(f);
            m.ReleaseReference(f);
            Assert.Equal(0, m.ReferenceCount(f));
            Assert.Throws<InvalidOperationException>(() => m.ReleaseReference(f));
            Assert.Equal(0, m.ReferenceCount(f));
            Assert.True(m.TryAddReference(f));      // still usable after the refused release
            m.ReleaseReference(f);
        }

        [Fact]
        public void TryAddReference_FreeOrNeverAllocatedFrame_FailsWithoutLeavingACount()
        {
            using var m = new HostMemory(8 * 4096);
            ulong f = m.AllocateFrame();
            Assert.False(m.TryAddReference(f + 1));
            Assert.Equal(0, m.ReferenceCount(f + 1));
            m.FreeFrame(f);
            Assert.False(m.TryAddReference(f));
            Assert.Equal(0, m.ReferenceCount(f));
            Assert.Throws<ArgumentOutOfRangeException>(() => m.TryAddReference(8));
            Assert.Throws<ArgumentOutOfRangeException>(() => m.ReleaseReference(8));
        }

        [Fact]
        public void FreeFrame_WhileReferenced_ReuseWaitsForTheLastRelease()
        {
            using var m = new HostMemory(4 * 4096);
            ulong[] all = [m.AllocateFrame(), m.AllocateFrame(), m.AllocateFrame(), m.AllocateFrame()];
            ulong f = all[2];
            m.Frame(f).Fill(0x5A);
            Assert.True(m.TryAddReference(f));
            Assert.True(m.TryAddReference(f));
            m.FreeFrame(f);

            // Freed (not allocated, no new references), but not reusable: memory is "full".
            Assert.False(m.IsAllocated(f));
            Assert.Equal(3, m.AllocatedFrameCount);
            Assert.False(m.TryAddReference(f));
            Assert.False(m.TryAllocateFrame(out _));
            Assert.True(m.Frame(f).IndexOfAnyExcept((byte)0x5A) < 0, "a referenced frame's contents stay intact");
            Assert.Throws<ArgumentException>(() => m.FreeFrame(f));

            m.ReleaseReference(f);
            Assert.False(m.TryAllocateFrame(out _));
            m.ReleaseReference(f);
            Assert.True(m.TryAllocateFrame(out ulong again));
            Assert.Equal(f, again);
            Assert.Equal(0, m.ReferenceCount(f));
            Assert.True(m.Frame(f).IndexOfAnyExcept((byte)0) < 0);
        }

        [Fact]
        public async Task References_RaceWithFreeAndReallocate_NoFrameLostOrHandedOutTwice()
        {
            // Referencers hammer a small pool while a recycler frees and reallocates it. A frame
            // must never be reallocated while a reference is held (checked through a stamp the
            // holder writes and re-reads), and at the end every frame is allocatable exactly once.
            const int Frames = 16;
            using var m = new HostMemory(Frames * 4096);
            var live = new ulong[Frames];
            for (int i = 0; i < Frames; i++)
            {
                live[i] = m.AllocateFrame();
            }

            long violations = 0, taken = 0;
            using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(600));
            CancellationToken token = stop.Token;
            Task recycler = Task.Factory.StartNew(() =>
            {
                var rng = new Random(1);
                while (!token.IsCancellationRequested)
                {
                    int i = rng.Next(Frames);
                    ulong f = Volatile.Read(ref live[i]);
                    if (f == Mfn.Invalid)
                    {
                        if (m.TryAllocateFrame(out ulong g))
                        {
                            Volatile.Write(ref live[i], g);
                        }
                    }
                    else
                    {
                        Volatile.Write(ref live[i], Mfn.Invalid);
                        m.FreeFrame(f);
                    }
                }
            }, TaskCreationOptions.LongRunning);
            Task[] holders = Enumerable.Range(0, 3).Select(t => Task.Factory.StartNew(() =>
            {
                var rng = new Random(100 + t);
                ulong stamp = (ulong)(t + 1) << 56;
                while (!token.IsCancellationRequested)
                {
                    ulong f = (ulong)rng.Next(Frames);
                    if (!m.TryAddReference(f))
                    {
                        continue;
                    }

                    // Word t of the frame is this holder's: nobody else writes it except the
                    // allocator's zeroing, which must not happen while the reference is held
                    // (a frame is marked allocated, and so referenceable, only once zeroed).
                    ulong hpa = (f << 12) + ((ulong)t * 8);
                    m.WriteUInt64(hpa, ++stamp);
                    Thread.SpinWait(200);
                    if (m.ReadUInt64(hpa) != stamp)
                    {
                        Interlocked.Increment(ref violations);
                    }

                    m.ReleaseReference(f);
                    Interlocked.Increment(ref taken);
                }
            }, TaskCreationOptions.LongRunning)).ToArray();

            await Task.WhenAll(holders.Append(recycler)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, violations);
            Assert.True(taken > 0);
            for (ulong f = 0; f < Frames; f++)
            {
                Assert.Equal(0, m.ReferenceCount(f));
            }

            // Free what is live, then the whole pool must come back exactly once.
            foreach (ulong f in live)
            {
                if (f != Mfn.Invalid)
                {
                    m.FreeFrame(f);
                }
            }

            var seen = new HashSet<ulong>();
            while (m.TryAllocateFrame(out ulong g))
            {
                Assert.True(seen.Add(g), $"frame 0x{g:X} handed out twice");
            }

            Assert.Equal(Frames, seen.Count);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit.Abstractions;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Lock-free readers against serialised writers (docs/model/p2m.md §3.1, 3.3-3.6, 3.9 last bullet):
    /// every value a reader sees must belong to a state that existed while it read, PoD
    /// populators that race allocate once, and concurrent table creation neither loses a
    /// mapping nor leaks a frame.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed partial class P2mConcurrencyTests
    {
        // Torture: how long the threads race, and how much longer a thread may take to stop
        // before the watchdog calls it a deadlock or livelock.
        private static readonly TimeSpan s_tortureDuration = TimeSpan.FromSeconds(4);
        private static readonly TimeSpan s_watchdogGrace = TimeSpan.FromSeconds(30);
        private const int TortureReaders = 2;
        private const int TortureWriters = 2;
        private const int OwnedRegionsPerWriter = 3;
        private const int Versions2M = 4;           // frame ranges per 2M lane, one per "version"
        private const int Versions1G = 2;           // frame ranges per 1G lane
        private const int ReaderBatch = 64;         // addresses per TranslateBatch call
        private const int MaxWindow = 512;          // transitions per lane a reader replays; wider reads are discarded
        private const long TableHeadroomFrames = 1 << 16;
        private const long MinObservations = 20_000;
        private const long MinTransitions = 200;
        private const int Seed = 0x5EED;

        // PoD race.
        private const int PodRounds = 200;
        private const int PodPopulators = 4;
        private const int PodReaders = 2;

        // Concurrent table creation.
        private const int CreationWriters = 4;
        private const int CreationRepetitions = 10;
        private const int CreationChunks4K = 128;   // 2M chunks that get 4K pages (each needs a page table)
        private const int CreationChunks2M = 64;    // 2M chunks that get one superpage
        private const int CreationPagesPerChunk = 4;

        private const ulong Pages2M = 1UL << 9;
        private const ulong Pages1G = 1UL << 18;
        private const ulong NoGfn = ulong.MaxValue;

        // Every (type, access) a test ever writes, with the leaf r/w/x it must produce
        // (docs/model/types.md §2.3; written out here rather than computed by the library under test).
        private static readonly Combo[] s_combos =
        [
            new(P2mType.RamRw, P2mAccess.RWX, 0b111),
            new(P2mType.RamRo, P2mAccess.RX, 0b101),
            new(P2mType.RamLogDirty, P2mAccess.RWX, 0b101),
            new(P2mType.GrantMapRo, P2mAccess.R, 0b001),
            new(P2mType.RamRw, P2mAccess.N, 0b000),     // valid but not present
        ];

        private static readonly AccessKind[] s_accesses =
        [
            AccessKind.Read, AccessKind.Write, AccessKind.Execute, AccessKind.Read | AccessKind.Execute, AccessKind.Read | AccessKind.Write,
        ];

        private readonly ITestOutputHelper _output;

        public P2mConcurrencyTests(ITestOutputHelper output) => _output = output;

        private static void WaitOrThrow(Barrier barrier, CancellationToken token)
        {
            if (!barrier.SignalAndWait(s_watchdogGrace, token))
            {
                throw new TimeoutException("deadlock/livelock: a barrier phase did not complete.");
            }
        }

        // ------------------------------------------------------------------------------------
        // c. Concurrent table creation
        // ------------------------------------------------------------------------------------

        [Fact]
        public void SetEntry_ConcurrentWritersInEmptyGigabyte_EveryGfnMapsItsOwnFrameAndNoTableLeaks()
        {
            ulong first = 3 * Pages1G;
            long guest = (CreationChunks4K + CreationChunks2M) * (long)Pages2M;
            var clock = Stopwatch.StartNew();
            for (int rep = 0; rep < CreationRepetitions; rep++)
            {
                using var rig = new Rig((guest + 4096) << 12, guest);     // GFN first + o maps frame o
                HostMemory memory = rig.Memory;
                P2m p2m = rig.P2m;
                using var cancel = new CancellationTokenSource();
                using var barrier = new Barrier(CreationWriters);
                var failures = new ConcurrentQueue<Exception>();
                var bodies = new List<(string Name, Action Body)>();
                for (int w = 0; w < CreationWriters; w++)
                {
                    int me = w;
                    bodies.Add(($"creator {w}", () =>
                    {
                        Combo c = s_combos[me % s_combos.Length];
                        WaitOrThrow(barrier, cancel.Token);
                        // Each writer walks the chunks from a different place, so who creates a table varies.
                        for (int step = 0; step < CreationChunks4K + CreationChunks2M; step++)
                        {
                            int chunk = (step + me * 37) % (CreationChunks4K + CreationChunks2M);
                            ulong chunkOffset = (ulong)chunk * Pages2M;
                            if (chunk < CreationChunks4K)
                            {
                                for (int i = 0; i < CreationPagesPerChunk; i++)
                                {
                                    ulong o = chunkOffset + (ulong)(me * CreationPagesPerChunk + i);
                                    p2m.SetEntry(first + o, o, PageOrder.Size4K, c.Type, c.Access);
                                }
                            }
                            else if (chunk % CreationWriters == me)
                            {
                                p2m.SetEntry(first + chunkOffset, chunkOffset, PageOrder.Size2M, c.Type, c.Access);
                            }
                        }
                    }));
                }

                List<string> stuck = RunWithWatchdog(bodies, s_watchdogGrace, failures, cancel.Cancel);
                rig.AssertNoneStuck(stuck);
                Assert.True(failures.IsEmpty, string.Join("\n", failures));

                for (int chunk = 0; chunk < CreationChunks4K + CreationChunks2M; chunk++)
                {
                    for (ulong i = 0; i < Pages2M; i++)
                    {
                        ulong o = (ulong)chunk * Pages2M + i;
                        int writer = chunk < CreationChunks4K ? (int)i / CreationPagesPerChunk : chunk % CreationWriters;
                        P2mEntry e = p2m.GetEntry(first + o);
                        if (chunk < CreationChunks4K && writer >= CreationWriters)
                        {
                            Assert.False(e.IsMapped, $"rep {rep}: gfn 0x{first + o:X} was never set but reads {e}");
                            continue;
                        }

                        var expected = new Expectation(o, writer % s_combos.Length, chunk < CreationChunks4K ? 0 : 9);
                        Assert.True(EntryMatches(e, expected, false), $"rep {rep}: gfn 0x{first + o:X} reads {e}, expected {expected}");
                        EptTranslation t = p2m.Translate(((first + o) << 12) | 0x123, AccessKind.Read);
                        Assert.True(TranslationMatches(t, expected, ((first + o) << 12) | 0x123, AccessKind.Read, false),
                            $"rep {rep}: gfn 0x{first + o:X} translates to {t}, expected {expected}");
                    }
                }

                // Root, one PDPT, one PD and one page table per 4K chunk: nothing built twice, nothing lost.
                Assert.Equal(3 + CreationChunks4K, p2m.TableFrameCount);
                Assert.Equal(0, p2m.PendingReclaimFrameCount);
                Assert.Equal(memory.AllocatedFrameCount, p2m.TableFrameCount + guest);
            }

            _output.WriteLine($"table creation: {CreationRepetitions} x {CreationWriters} writers in {clock.Elapsed.TotalSeconds:F2} s");
        }

        /// <summary>
        /// A poisoning host memory whose first <c>guestFrames</c> frames (from MFN 0, so aligned to
        /// any order) are guest RAM, and an empty p2m over it. Freed on dispose, unless the
        /// watchdog left threads running that may still be inside them.
        /// </summary>
        private sealed class Rig : IDisposable
        {
            private bool _abandoned;

            public Rig(long bytes, long guestFrames)
            {
                Memory = new HostMemory(bytes) { PoisonFreedFrames = true };
                Assert.Equal(0UL, Memory.AllocateFrames(guestFrames));
                GuestFrames = guestFrames;
                P2m = new P2m(Memory);
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public long GuestFrames { get; }

            public void AssertNoneStuck(List<string> stuck)
            {
                if (stuck.Count != 0)
                {
                    _abandoned = true;
                    Assert.Fail($"deadlock/livelock: {string.Join(", ", stuck)} still running after {s_watchdogGrace.TotalSeconds} s");
                }
            }

            public void Dispose()
            {
                if (!_abandoned)
                {
                    P2m.Dispose();
                    Memory.Dispose();
                }
            }
        }

        // ------------------------------------------------------------------------------------
        // Helpers shared with EpochReclamationTests
        // ------------------------------------------------------------------------------------

        /// <summary>
        /// Runs every body on its own background thread and waits at most <paramref name="limit"/>
        /// for all of them; returns the names of those still running (the watchdog's verdict).
        /// A body that throws is recorded in <paramref name="failures"/> and calls
        /// <paramref name="onFailure"/> so the others can stop early.
        /// </summary>
        internal static List<string> RunWithWatchdog(IReadOnlyList<(string Name, Action Body)> bodies, TimeSpan limit,
                                                     ConcurrentQueue<Exception> failures, Action onFailure)
        {
            var threads = new List<Thread>(bodies.Count);
            foreach ((string name, Action body) in bodies)
            {
                threads.Add(new Thread(() =>
                {
                    try
                    {
                        body();
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue(new Exception($"{name}: {e.Message}", e));
                        onFailure();
                    }
                })
                {
                    IsBackground = true,    // a stuck thread must not keep the test host alive
                    Name = name,
                });
            }

            long end = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
            foreach (Thread t in threads)
            {
                t.Start();
            }

            var stuck = new List<string>();
            foreach (Thread t in threads)
            {
                double left = Math.Max(0, (end - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
                if (!t.Join(TimeSpan.FromSeconds(left)))
                {
                    stuck.Add(t.Name!);
                }
            }

            return stuck;
        }

        /// <summary>
        /// Reclaims until nothing is pending or a few seconds pass (a reader elsewhere in the
        /// process may be mid-walk for a moment); returns what is still pending.
        /// </summary>
        internal static long ReclaimUntilEmpty(P2m p2m)
        {
            long end = Stopwatch.GetTimestamp() + 5 * Stopwatch.Frequency;
            long pending;
            while ((pending = p2m.Reclaim()) != 0 && Stopwatch.GetTimestamp() < end)
            {
                Thread.Sleep(1);
            }

            return pending;
        }
    }
}

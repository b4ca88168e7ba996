// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit.Abstractions;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// INVEPT semantics under concurrency (Intel SDM Vol. 3C 29.4.3, INVEPT): a writer remaps, restricts, splits, merges and
    /// removes 2 MiB lanes while readers translate through their own <see cref="SoftTlb"/>s. Once a
    /// <see cref="P2m.SetEntry"/> has returned, no reader lookup that starts afterwards may return a
    /// translation from before it, whether it is a single lookup or one of a
    /// <see cref="SoftTlb.TranslateBatch"/>.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class SoftTlbConcurrencyTests
    {
        private static readonly TimeSpan s_duration = TimeSpan.FromSeconds(2.5);
        private static readonly TimeSpan s_watchdogGrace = TimeSpan.FromSeconds(30);
        private static readonly TimeSpan s_writerPause = TimeSpan.FromTicks(200);   // 20 µs: lets readers hit between writes
        private const int Lanes = 6;
        private const int Readers = 2;
        private const ulong LaneGfn = 0x80000;          // lane i: the 2M region at GFN LaneGfn + 512 i
        private const ulong MfnBase = 0x1000;           // lane i, variant k: frames MfnBase + 512 (4 i + k)
        private const int Variants = 4;
        private const int LogCapacity = 1 << 21;
        private const long MinObservations = 20_000;
        private const long MinTransitions = 200;
        private const int Seed = 0x7EB;
        private const int BatchLength = 512;        // batches of 256 or more take the chunked path (shorter ones loop over Translate)
        private const int BatchMinimum = 256;

        // (type, access, the leaf r/w/x it gives); the last is valid but not present.
        private static readonly (P2mType Type, P2mAccess Access, int Rwx)[] s_combos =
        [
            (P2mType.RamRw, P2mAccess.RWX, 7), (P2mType.RamRo, P2mAccess.RX, 5), (P2mType.GrantMapRo, P2mAccess.R, 1),
            (P2mType.RamRw, P2mAccess.RW, 3), (P2mType.RamRw, P2mAccess.N, 0),
        ];

        private static readonly int[] s_splitPages = [3, 200];
        private static readonly int[] s_hotPages = [0, 3, 200, 511];
        private static readonly AccessKind[] s_accesses = [AccessKind.Read, AccessKind.Write, AccessKind.Execute, AccessKind.Read | AccessKind.Write];

        private readonly ITestOutputHelper _output;

        public SoftTlbConcurrencyTests(ITestOutputHelper output) => _output = output;

        private enum Kind : byte
        {
            Removed,
            Super,      // one 2M leaf
            Split,      // 512 4K leaves: the superpage's, except page `Page`
        }

        [Fact]
        public void Torture_NoStaleTranslationAfterTheInvalidatingSetEntryReturned()
        {
            // Not `using`: if a thread is stuck inside the p2m, its memory must stay alive.
            HostMemory memory = new HostMemory(128L << 20);
            P2m p2m = new P2m(memory);
            var world = new World(p2m);
            var failures = new ConcurrentQueue<Exception>();
            var stop = new CancellationTokenSource();
            var threads = new List<Thread>();
            var readers = new ReaderStats[Readers];
            threads.Add(new Thread(() => Guard(failures, stop, () => world.Write(stop.Token))) { Name = "tlb writer" });
            for (int r = 0; r < Readers; r++)
            {
                int id = r;
                readers[id] = new ReaderStats();
                threads.Add(new Thread(() => Guard(failures, stop, () => world.Read(id, readers[id], stop.Token))) { Name = $"tlb reader {id}" });
            }

            var clock = Stopwatch.StartNew();
            foreach (Thread t in threads)
            {
                t.IsBackground = true;
                t.Start();
            }

            stop.CancelAfter(s_duration);
            var stuck = new List<string>();
            foreach (Thread t in threads)
            {
                TimeSpan left = s_duration + s_watchdogGrace - clock.Elapsed;
                if (!t.Join(left > TimeSpan.Zero ? left : TimeSpan.Zero))
                {
                    stuck.Add(t.Name!);
                }
            }

            if (stuck.Count != 0)
            {
                Assert.Fail($"deadlock/livelock: {string.Join(", ", stuck)} still running after {clock.Elapsed.TotalSeconds:F1} s");
            }

            p2m.Dispose();
            memory.Dispose();
            long observations = readers.Sum(r => r.Observations);
            long hits = readers.Sum(r => r.Hits);
            long fresh = readers.Sum(r => r.AfterChange);
            _output.WriteLine($"SoftTlb torture: {clock.Elapsed.TotalSeconds:F2} s, {world.Transitions} transitions, {observations} lookups, "
                              + $"{hits} hits, {fresh} lookups of a lane changed since the reader's previous look, {readers.Sum(r => r.Flushes)} flushes, "
                              + $"{readers.Sum(r => r.BatchObservations)} of the lookups in batches");
            Assert.True(failures.IsEmpty, "A thread threw:\n" + string.Join("\n", failures));
            Assert.True(world.Violations.IsEmpty, $"{world.Violations.Count} stale or impossible translations; first ones:\n" + string.Join("\n", world.Violations.Take(10)));
            Assert.True(observations >= MinObservations, $"only {observations} lookups (need {MinObservations})");
            Assert.True(world.Transitions >= MinTransitions, $"only {world.Transitions} transitions (need {MinTransitions})");
            Assert.True(hits >= observations / 10, $"only {hits} TLB hits of {observations} lookups: the cache was hardly used");
            Assert.True(fresh > 0, "No lookup followed a change of its lane: nothing was tested.");
            long batched = readers.Sum(r => r.BatchObservations);
            Assert.True(batched >= observations / 4, $"only {batched} of {observations} lookups went through SoftTlb.TranslateBatch");
        }

        private static void Guard(ConcurrentQueue<Exception> failures, CancellationTokenSource stop, Action body)
        {
            try
            {
                body();
            }
            catch (Exception ex)
            {
                failures.Enqueue(ex);
                stop.Cancel();
            }
        }

        private readonly record struct State(Kind Kind, ulong SuperMfn, int SuperCombo, int Page, ulong PageMfn, int PageCombo)
        {
            // What a walk (and so a TLB) must give for `page` of the lane in this state: ok with
            // that HPA and level, or any failure.
            public (bool Ok, ulong Hpa, int Level) Expect(int page, ulong offset, AccessKind access)
            {
                if (Kind == Kind.Removed)
                {
                    return (false, 0, 0);
                }

                bool own = Kind == Kind.Split && page == Page;
                int rwx = s_combos[own ? PageCombo : SuperCombo].Rwx;
                ulong mfn = own ? PageMfn : SuperMfn + (ulong)page;
                return ((int)access & ~rwx) == 0 ? (true, (mfn << 12) + offset, Kind == Kind.Super ? 2 : 1) : (false, 0, 0);
            }

            public override string ToString() => Kind switch
            {
                Kind.Removed => "removed",
                Kind.Super => $"2M mfn 0x{SuperMfn:X} {s_combos[SuperCombo].Type}/{s_combos[SuperCombo].Access}",
                _ => $"split of 2M mfn 0x{SuperMfn:X} {s_combos[SuperCombo].Type}/{s_combos[SuperCombo].Access}, page {Page} -> 0x{PageMfn:X} {s_combos[PageCombo].Type}/{s_combos[PageCombo].Access}",
            };
        }

        private sealed class ReaderStats
        {
            public long Observations;
            public long Hits;
            public long Flushes;
            public long AfterChange;
            public long BatchObservations;
        }

        private sealed class World
        {
            private readonly P2m _p2m;
            private readonly (int Lane, State State)[] _log = new (int, State)[LogCapacity];
            private readonly State[] _current = new State[Lanes];
            private long _planned;      // the newest version whose SetEntry has started
            private long _completed;    // the newest version whose SetEntry has returned

            public World(P2m p2m)
            {
                _p2m = p2m;
                _log[0] = (-1, default);
                for (int lane = 0; lane < Lanes; lane++)
                {
                    Apply(lane, new State(Kind.Super, Mfn(lane, 0), 0, 0, 0, 0));
                }
            }

            public ConcurrentQueue<string> Violations { get; } = new();

            public long Transitions => Volatile.Read(ref _completed) - Lanes;

            public void Write(CancellationToken stop)
            {
                var rng = new Random(Seed + 1);
                var pause = Stopwatch.StartNew();
                while (!stop.IsCancellationRequested && Volatile.Read(ref _planned) < LogCapacity - 1)
                {
                    int lane = rng.Next(Lanes);
                    Apply(lane, Next(_current[lane], lane, rng));
                    pause.Restart();
                    while (pause.Elapsed < s_writerPause)
                    {
                        Thread.SpinWait(20);
                    }
                }
            }

            public void Read(int id, ReaderStats stats, CancellationToken stop)
            {
                var rng = new Random(Seed + 100 + id);
                var tlb = new SoftTlb(_p2m, 64);
                var lastSeen = new long[Lanes];
                var batch = new ulong[BatchLength];
                var where = new (int Lane, int Page, ulong Offset)[BatchLength];
                var results = new EptTranslation[BatchLength];
                for (long round = 0; !stop.IsCancellationRequested; round++)
                {
                    if ((round & 1) == 1)
                    {
                        // Every other round: batches (hits served in place, misses walked by the
                        // batch walker), held to the same rule as single lookups.
                        for (int k = 0; k < 2; k++)
                        {
                            AccessKind batchAccess = s_accesses[rng.Next(s_accesses.Length)];
                            int length = k == 0 ? rng.Next(BatchMinimum, BatchLength + 1) : rng.Next(1, BatchMinimum);
                            for (int i = 0; i < length; i++)
                            {
                                int lane = rng.Next(Lanes);
                                int page = rng.Next(4) == 0 ? rng.Next(512) : s_hotPages[rng.Next(s_hotPages.Length)];
                                ulong offset = (ulong)rng.Next(512) * 8;
                                where[i] = (lane, page, offset);
                                batch[i] = ((LaneGfn + (ulong)lane * 512 + (ulong)page) << 12) + offset;
                            }

                            long v = Volatile.Read(ref _completed);
                            tlb.TranslateBatch(batch.AsSpan(0, length), batchAccess, results);
                            long planned = Volatile.Read(ref _planned);
                            for (int i = 0; i < length; i++)
                            {
                                Check(where[i].Lane, where[i].Page, where[i].Offset, batchAccess, v, planned, results[i], lastSeen, stats);
                            }

                            stats.Observations += length;
                            stats.BatchObservations += length;
                        }

                        continue;
                    }

                    for (int n = 0; n < 256; n++)
                    {
                        int lane = rng.Next(Lanes);
                        int page = rng.Next(4) == 0 ? rng.Next(512) : s_hotPages[rng.Next(s_hotPages.Length)];
                        ulong offset = (ulong)rng.Next(512) * 8;
                        AccessKind access = s_accesses[rng.Next(s_accesses.Length)];
                        ulong gpa = ((LaneGfn + (ulong)lane * 512 + (ulong)page) << 12) + offset;

                        long v = Volatile.Read(ref _completed);
                        EptTranslation t = tlb.Translate(gpa, access);
                        long planned = Volatile.Read(ref _planned);
                        Check(lane, page, offset, access, v, planned, t, lastSeen, stats);
                        stats.Observations++;
                    }
                }

                stats.Hits = tlb.Hits;
                stats.Flushes = tlb.Flushes;
            }

            // The lookup started after version v completed and ended before version `planned + 1`
            // started: it must match the lane's state as of v or a later one up to `planned`.
            private void Check(int lane, int page, ulong offset, AccessKind access, long v, long planned, EptTranslation t, long[] lastSeen, ReaderStats stats)
            {
                long at = v;
                while (_log[at].Lane != lane)
                {
                    at--;
                }

                if (at > lastSeen[lane])
                {
                    stats.AfterChange++;    // the lane changed since this reader last looked at it
                    lastSeen[lane] = at;
                }

                for (long ver = at; ver <= planned; ver++)
                {
                    if (ver != at && _log[ver].Lane != lane)
                    {
                        continue;
                    }

                    (bool ok, ulong hpa, int level) = _log[ver].State.Expect(page, offset, access);
                    if (ok ? t.Status == EptStatus.Ok && t.Hpa == hpa && t.Level == level : t.Status != EptStatus.Ok)
                    {
                        return;
                    }
                }

                if (Violations.Count < 20)
                {
                    Violations.Enqueue($"lane {lane} page {page} {access}: got {t} after version {v} completed (planned {planned}); "
                                       + $"state then: {_log[at].State}, newest planned for the lane: {Newest(lane, planned)}");
                }
                else
                {
                    Violations.Enqueue("...");
                }
            }

            private State Newest(int lane, long planned)
            {
                while (_log[planned].Lane != lane)
                {
                    planned--;
                }

                return _log[planned].State;
            }

            private static ulong Mfn(int lane, int variant) => MfnBase + (ulong)((lane * Variants) + variant) * 512;

            private State Next(State s, int lane, Random rng)
            {
                State super = new State(Kind.Super, Mfn(lane, rng.Next(Variants)), rng.Next(s_combos.Length), 0, 0, 0);
                switch (s.Kind)
                {
                    case Kind.Removed:
                        return super;
                    case Kind.Super:
                        int choice = rng.Next(10);
                        if (choice < 4)
                        {
                            return super;   // remap, restrict or widen the 2M page
                        }

                        if (choice < 8)
                        {
                            // Split: page j gets its own frame and rights; the rest keep the superpage's.
                            int j = s_splitPages[rng.Next(s_splitPages.Length)];
                            return s with { Kind = Kind.Split, Page = j, PageMfn = Mfn(lane, rng.Next(Variants)) + (ulong)rng.Next(512), PageCombo = rng.Next(s_combos.Length) };
                        }

                        return new State(Kind.Removed, 0, 0, 0, 0, 0);
                    default:
                        choice = rng.Next(10);
                        if (choice < 5)
                        {
                            // Remap or restrict the split-off 4K page again.
                            return s with { PageMfn = Mfn(lane, rng.Next(Variants)) + (ulong)rng.Next(512), PageCombo = rng.Next(s_combos.Length) };
                        }

                        return choice < 8 ? super : new State(Kind.Removed, 0, 0, 0, 0, 0);   // merge, or remove the table
                }
            }

            private void Apply(int lane, State next)
            {
                long version = _planned + 1;
                _log[version] = (lane, next);
                Volatile.Write(ref _planned, version);
                ulong gfn = LaneGfn + (ulong)lane * 512;
                switch (next.Kind)
                {
                    case Kind.Removed:
                        _p2m.SetEntry(gfn, FastEpt.Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                        break;
                    case Kind.Super:
                        (P2mType type, P2mAccess access, int _) = s_combos[next.SuperCombo];
                        _p2m.SetEntry(gfn, next.SuperMfn, PageOrder.Size2M, type, access);
                        break;
                    default:
                        (P2mType pageType, P2mAccess pageAccess, int _) = s_combos[next.PageCombo];
                        _p2m.SetEntry(gfn + (ulong)next.Page, next.PageMfn, PageOrder.Size4K, pageType, pageAccess);
                        break;
                }

                _current[lane] = next;
                Volatile.Write(ref _completed, version);
            }
        }
    }
}

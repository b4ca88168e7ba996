// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using FastEpt.Internal;
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
    public sealed class P2mConcurrencyTests
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

        // ------------------------------------------------------------------------------------
        // a. Torture
        // ------------------------------------------------------------------------------------

        [Fact]
        public void Torture_ReadersRacingSplitsMergesAndRemovals_SeeOnlyStatesThatExisted()
        {
            var world = new TortureWorld();
            var bodies = new List<(string Name, Action Body)>();
            for (int w = 0; w < TortureWriters; w++)
            {
                TortureWriter writer = world.Writers[w];
                bodies.Add(($"torture writer {w}", writer.Run));
            }

            for (int r = 0; r < TortureReaders; r++)
            {
                TortureReader reader = world.Readers[r];
                bodies.Add(($"torture reader {r}", reader.Run));
            }

            var failures = new ConcurrentQueue<Exception>();
            var clock = Stopwatch.StartNew();
            world.Start(s_tortureDuration);
            List<string> stuck = RunWithWatchdog(bodies, s_tortureDuration + s_watchdogGrace, failures, world.RequestStop);
            clock.Stop();
            if (stuck.Count != 0)
            {
                // The stuck threads may still be inside the p2m: leave it and its memory alive.
                Assert.Fail($"deadlock/livelock: {string.Join(", ", stuck)} still running {clock.Elapsed.TotalSeconds:F1} s after the start "
                            + $"(duration {s_tortureDuration.TotalSeconds} s + grace {s_watchdogGrace.TotalSeconds} s).");
            }

            try
            {
                Assert.True(failures.IsEmpty, "A torture thread threw:\n" + string.Join("\n", failures));

                long pendingAtEnd = world.P2m.PendingReclaimFrameCount;
                world.VerifyQuiescent();
                long transitions = world.Lanes.Sum(l => l.Transitions);
                long retiredOwned = world.Writers.Sum(w => w.RetiredFrames);
                TortureReader total = TortureReader.Sum(world.Readers);
                long observations = total.Gets + total.Translates + total.Batched + total.SlowWalks;

                _output.WriteLine($"torture: {clock.Elapsed.TotalSeconds:F2} s, {TortureWriters} writers, {TortureReaders} readers, seed 0x{Seed:X}");
                _output.WriteLine($"  observations {observations} (GetEntry {total.Gets}, Translate {total.Translates}, batched {total.Batched}, slow walks {total.SlowWalks}); "
                                  + $"{total.Overlapping} overlapped a change, {total.Faults} holes or faults, {total.Discarded} discarded (window too wide)");
                _output.WriteLine($"  transitions {transitions}; 2M ops {Describe(world.Writers, w => w.Ops2M)}; 1G ops {Describe(world.Writers, w => w.Ops1G)}");
                _output.WriteLine($"  frames unlinked by owned regions {retiredOwned}, pending at the end {pendingAtEnd}, "
                                  + $"so at least {retiredOwned - pendingAtEnd} reclaimed during the run; violations {world.ViolationCount}");

                Assert.True(world.ViolationCount == 0,
                    $"{world.ViolationCount} observations matched no state that existed while they were made; first ones:\n"
                    + string.Join("\n", world.Violations));
                Assert.True(observations >= MinObservations, $"Only {observations} observations (need {MinObservations}): the test proved little.");
                Assert.True(total.Overlapping > 0, "No read overlapped a change: readers and writers never raced.");
                Assert.True(transitions >= MinTransitions, $"Only {transitions} transitions (need {MinTransitions}).");
                for (int op = 0; op < (int)Op.Count; op++)
                {
                    long n2M = world.Writers.Sum(w => w.Ops2M[op]);
                    long n1G = world.Writers.Sum(w => w.Ops1G[op]);
                    Assert.True(n2M + n1G > 0, $"Operation {(Op)op} never ran.");
                }

                Assert.True(world.Writers.Sum(w => w.Ops1G[(int)Op.Split]) > 0, "No 1G superpage was split.");
                Assert.True(retiredOwned - pendingAtEnd > 0, $"No frame was reclaimed during the run ({retiredOwned} unlinked, {pendingAtEnd} pending).");

                // Quiescent: nothing may stay pending, and every allocated frame is a live table or guest RAM.
                Assert.Equal(0, ReclaimUntilEmpty(world.P2m));
                Assert.Equal(0, world.P2m.PendingReclaimFrameCount);
                Assert.Equal(world.Memory.AllocatedFrameCount, world.P2m.TableFrameCount + world.GuestFrames);
                long known = world.KnownTableFrames();
                Assert.InRange(world.P2m.TableFrameCount, known, known + 1);    // + the contended region's page table, if any
                Assert.Equal(0, world.P2m.PodEntryCount);
            }
            finally
            {
                world.P2m.Dispose();
                world.Memory.Dispose();
            }
        }

        private static string Describe(TortureWriter[] writers, Func<TortureWriter, long[]> counts)
        {
            var sb = new StringBuilder();
            for (int op = 0; op < (int)Op.Count; op++)
            {
                long n = writers.Sum(w => counts(w)[op]);
                if (n != 0)
                {
                    sb.Append(sb.Length == 0 ? "" : ", ").Append((Op)op).Append(' ').Append(n);
                }
            }

            return sb.ToString();
        }

        private enum Op
        {
            MapSuper,       // one superpage of the region's order over whatever is there (merges a table)
            Split,          // one 4K page inside the superpage: splits it all the way down
            Map4KAll,       // 512 separate 4K pages
            Remove4KAll,    // 512 separate 4K removals
            RemoveSuper,    // one removal of the region's order (frees a table)
            RemoveChunk,    // one 2M removal inside a split 1G region (frees one page table)
            Count,
        }

        private readonly record struct Combo(P2mType Type, P2mAccess Access, uint Rwx);

        // What one region's lane says about every GFN of the region at one instant. A hole range
        // and one exception GFN (a 4K page of another version and combo) may sit inside a mapping.
        private sealed record RegionState(bool Mapped, int Version, int Combo, int Order,
                                          ulong ExceptionGfn, int ExceptionVersion, int ExceptionCombo,
                                          ulong HoleFirst, ulong HoleLast)
        {
            public static readonly RegionState Removed = new(false, 0, 0, 0, NoGfn, 0, 0, NoGfn, 0);

            public static RegionState Leaves(int version, int combo, int order) => new(true, version, combo, order, NoGfn, 0, 0, NoGfn, 0);
        }

        // The outcome a state implies for one GFN; default is a hole.
        private readonly struct Expectation
        {
            public Expectation(ulong mfn, int combo, int order)
            {
                Mapped = true;
                Mfn = mfn;
                Combo = combo;
                Order = order;
            }

            public bool Mapped { get; }

            public ulong Mfn { get; }

            public int Combo { get; }

            public int Order { get; }

            public override string ToString()
                => Mapped ? $"0x{Mfn:X} {s_combos[Combo].Type}/{s_combos[Combo].Access} order {Order}" : "hole";
        }

        private static Expectation Expect(Region region, Lane lane, RegionState s, ulong gfn)
        {
            if (!s.Mapped || (gfn >= s.HoleFirst && gfn <= s.HoleLast))
            {
                return default;
            }

            ulong offset = gfn - region.FirstGfn;
            return gfn == s.ExceptionGfn
                ? new Expectation(lane.Bases[s.ExceptionVersion] + offset, s.ExceptionCombo, 0)
                : new Expectation(lane.Bases[s.Version] + offset, s.Combo, s.Order);
        }

        // anyOrder: in the contended region one writer may split the other's superpage, so a
        // value can show up at order 0 or 9 whatever the lane that wrote it intended.
        private static bool EntryMatches(in P2mEntry e, in Expectation x, bool anyOrder)
        {
            if (!x.Mapped)
            {
                return !e.IsMapped && e.Mfn == Mfn.Invalid && e.Type == P2mType.MmioDm && e.Access == P2mAccess.N && e.SuppressVe
                       && e.Order is 0 or 9 or 18 or 27;
            }

            Combo c = s_combos[x.Combo];
            return e.IsMapped && e.Mfn == x.Mfn && e.Type == c.Type && e.Access == c.Access && e.SuppressVe
                   && (anyOrder ? e.Order is 0 or 9 : e.Order == x.Order);
        }

        private static bool TranslationMatches(in EptTranslation t, in Expectation x, ulong gpa, AccessKind access, bool anyOrder)
        {
            ulong a = (ulong)access;
            if (!x.Mapped)
            {
                // Not present: bits 3-5 of the qualification stay 0.
                return t.Status == EptStatus.Violation && t.Qualification == a && t.Hpa == 0 && t.Level is >= 1 and <= 4;
            }

            bool level = anyOrder ? t.Level is 1 or 2 : t.Level == x.Order / 9 + 1;
            ulong rwx = s_combos[x.Combo].Rwx;
            if (rwx == 0)
            {
                return level && t.Status == EptStatus.Violation && t.Qualification == a && t.Hpa == 0;
            }

            if ((a & ~rwx) != 0)
            {
                return level && t.Status == EptStatus.Violation && t.Qualification == (a | (rwx << 3)) && t.Hpa == 0;
            }

            return level && t.Status == EptStatus.Ok && t.Qualification == 0 && t.Hpa == ((x.Mfn << 12) | (gpa & 0xFFF));
        }

        // One writer's history for one region. The writer publishes the next state, makes the
        // sequence odd, changes the tables, and makes it even again; a reader that saw sequences
        // s1 before and s2 after its read may have seen any state from s1/2 to (s2+1)/2.
        private sealed class Lane
        {
            public const int HistoryLength = 4096;
            private const int HistoryMask = HistoryLength - 1;
            private readonly RegionState[] _history = new RegionState[HistoryLength];
            private long _seq;
            private long _hint;

            public Lane(int index, ulong[] bases)
            {
                Index = index;
                Bases = bases;
                _history[0] = RegionState.Removed;
                Current = RegionState.Removed;
            }

            public int Index { get; }

            public ulong[] Bases { get; }               // first MFN of each version's frame range

            public RegionState Current { get; private set; }    // the writer's own view

            public bool HasTable { get; set; }          // writer-only: a page table hangs under a 2M region
            public long TableFrames { get; set; }       // writer-only: tables under a 1G region

            public long Seq => Volatile.Read(ref _seq);

            public long Transitions => Volatile.Read(ref _seq) >> 1;

            // A GFN worth reading (an exception or a hole edge), for readers to aim at.
            public ulong Hint
            {
                get => (ulong)Volatile.Read(ref _hint);
                set => Volatile.Write(ref _hint, (long)value);
            }

            public RegionState StateAt(long k) => Volatile.Read(ref _history[k & HistoryMask]);

            public bool Lapped(long before) => (Seq >> 1) - (before >> 1) >= HistoryLength - 1;

            public void Begin(RegionState next)
            {
                long seq = _seq;
                Debug.Assert((seq & 1) == 0);
                _history[((seq >> 1) + 1) & HistoryMask] = next;
                // Full fence: the state is visible before the sequence says so, and both before any entry changes.
                Interlocked.Exchange(ref _seq, seq + 1);
                Current = next;
            }

            public void End() => Interlocked.Exchange(ref _seq, _seq + 1);
        }

        private sealed class Region
        {
            public Region(string name, ulong firstGfn, int order, Lane[] lanes)
            {
                Name = name;
                FirstGfn = firstGfn;
                Order = order;
                Lanes = lanes;
            }

            public string Name { get; }

            public ulong FirstGfn { get; }

            public int Order { get; }

            public ulong Pages => 1UL << Order;

            public Lane[] Lanes { get; }                // none: never mapped

            public bool Contended => Lanes.Length > 1;
        }

        private sealed class TortureWorld
        {
            private const int MaxViolationsKept = 20;
            private readonly ConcurrentQueue<string> _violations = new();
            private long _violationCount;
            private int _stop;

            public TortureWorld()
            {
                int lanes2M = TortureWriters * OwnedRegionsPerWriter + TortureWriters;
                GuestFrames = TortureWriters * Versions1G * (long)Pages1G + lanes2M * Versions2M * (long)Pages2M;
                Memory = new HostMemory((GuestFrames + TableHeadroomFrames) << 12) { PoisonFreedFrames = true };
                // The first allocation starts at frame 0, so every range carved below is aligned to its order.
                ulong next = Memory.AllocateFrames(GuestFrames);
                Assert.Equal(0UL, next);
                P2m = new P2m(Memory);

                var lanes = new List<Lane>();
                Lane NewLane(int versions, ulong pages)
                {
                    ulong[] bases = new ulong[versions];
                    for (int v = 0; v < versions; v++)
                    {
                        bases[v] = next;
                        next += pages;
                    }

                    var lane = new Lane(lanes.Count, bases);
                    lanes.Add(lane);
                    return lane;
                }

                // GFN layout, all under PML4 slot 0: 1G regions at 1 GiB, 2 GiB, ..., then a 1G gap
                // that is never mapped, then a 1G area of 2M regions separated by 2M gaps.
                var regions = new List<Region>();
                var gaps = new List<Region>();
                var gig = new Region[TortureWriters];
                for (int w = 0; w < TortureWriters; w++)
                {
                    gig[w] = new Region($"1G#{w}", (ulong)(1 + w) * Pages1G, 18, [NewLane(Versions1G, Pages1G)]);
                    regions.Add(gig[w]);
                }

                gaps.Add(new Region("gap 1G", (ulong)(1 + TortureWriters) * Pages1G, 18, []));
                ulong area2M = (ulong)(2 + TortureWriters) * Pages1G;
                var owned = new Region[TortureWriters * OwnedRegionsPerWriter];
                Region? contended = null;
                for (int i = 0; i <= owned.Length; i++)
                {
                    ulong first = area2M + (ulong)(2 * i) * Pages2M;
                    gaps.Add(new Region($"gap 2M#{i}", first + Pages2M, 9, []));
                    if (i < owned.Length)
                    {
                        owned[i] = new Region($"2M#{i}", first, 9, [NewLane(Versions2M, Pages2M)]);
                        regions.Add(owned[i]);
                    }
                    else
                    {
                        var contendedLanes = new Lane[TortureWriters];
                        for (int w = 0; w < TortureWriters; w++)
                        {
                            contendedLanes[w] = NewLane(Versions2M, Pages2M);
                        }

                        contended = new Region("2M contended", first, 9, contendedLanes);
                        regions.Add(contended);
                    }
                }

                Assert.Equal((ulong)GuestFrames, next);
                Contended = contended!;
                Lanes = lanes.ToArray();
                Regions = regions.ToArray();
                Gaps = gaps.ToArray();
                Gigabytes = gig;
                Owned2M = owned;
                Writers = new TortureWriter[TortureWriters];
                for (int w = 0; w < TortureWriters; w++)
                {
                    Writers[w] = new TortureWriter(this, w, owned[(w * OwnedRegionsPerWriter)..((w + 1) * OwnedRegionsPerWriter)], gig[w]);
                }

                Readers = new TortureReader[TortureReaders];
                for (int r = 0; r < TortureReaders; r++)
                {
                    Readers[r] = new TortureReader(this, r);
                }
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public long GuestFrames { get; }

            public Lane[] Lanes { get; }

            public Region[] Regions { get; }            // mapped regions

            public Region[] Gaps { get; }               // never mapped

            public Region[] Gigabytes { get; }

            public Region[] Owned2M { get; }

            public Region Contended { get; }

            public TortureWriter[] Writers { get; }

            public TortureReader[] Readers { get; }

            public long Deadline { get; private set; }

            public long ViolationCount => Volatile.Read(ref _violationCount);

            public IEnumerable<string> Violations => _violations;

            public bool ShouldStop => Volatile.Read(ref _stop) != 0 || Stopwatch.GetTimestamp() >= Deadline;

            public void Start(TimeSpan duration) => Deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);

            public void RequestStop() => Volatile.Write(ref _stop, 1);

            public void Report(string violation)
            {
                if (Interlocked.Increment(ref _violationCount) <= MaxViolationsKept)
                {
                    _violations.Enqueue(violation);
                }
            }

            // Root, the PDPT all regions share, the PD of the 2M area, then what the owned lanes know they hold.
            public long KnownTableFrames()
                => 3 + Owned2M.Count(r => r.Lanes[0].HasTable) + Gigabytes.Sum(r => r.Lanes[0].TableFrames);

            // Every thread has stopped: each GFN must now read exactly as its lane's last state says.
            public void VerifyQuiescent()
            {
                var rng = new Random(Seed);
                foreach (Region region in Regions.Concat(Gaps))
                {
                    var gfns = new List<ulong>();
                    if (region.Order == 9)
                    {
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            gfns.Add(region.FirstGfn + i);
                        }
                    }
                    else
                    {
                        for (int i = 0; i < 2048; i++)
                        {
                            gfns.Add(region.FirstGfn + (ulong)rng.NextInt64((long)Pages1G));
                        }

                        foreach (Lane lane in region.Lanes)
                        {
                            RegionState s = lane.Current;
                            foreach (ulong g in new[] { s.ExceptionGfn, s.HoleFirst, s.HoleFirst - 1, s.HoleLast, s.HoleLast + 1 })
                            {
                                if (g >= region.FirstGfn && g - region.FirstGfn < Pages1G)
                                {
                                    gfns.Add(g);
                                }
                            }
                        }
                    }

                    foreach (ulong gfn in gfns)
                    {
                        P2mEntry e = P2m.GetEntry(gfn);
                        ulong gpa = (gfn << 12) | 0x7F8;
                        EptTranslation t = P2m.Translate(gpa, AccessKind.Read);
                        bool entryOk = region.Lanes.Length == 0 && EntryMatches(e, default, false);
                        bool translationOk = region.Lanes.Length == 0 && TranslationMatches(t, default, gpa, AccessKind.Read, false);
                        foreach (Lane lane in region.Lanes)
                        {
                            Expectation x = Expect(region, lane, lane.Current, gfn);
                            entryOk |= EntryMatches(e, x, region.Contended);
                            translationOk |= TranslationMatches(t, x, gpa, AccessKind.Read, region.Contended);
                        }

                        if (!entryOk || !translationOk)
                        {
                            Report($"quiescent: gfn 0x{gfn:X} in {region.Name} reads {e} / {t}, expected "
                                   + string.Join(" or ", region.Lanes.Select(l => Expect(region, l, l.Current, gfn).ToString())));
                        }
                    }
                }
            }
        }

        private sealed class TortureWriter
        {
            private readonly TortureWorld _world;
            private readonly Random _rng;
            private readonly Region[] _owned;
            private readonly Region _gigabyte;
            private readonly Lane _contendedLane;

            public TortureWriter(TortureWorld world, int index, Region[] owned, Region gigabyte)
            {
                _world = world;
                _rng = new Random(Seed + 1 + index);
                _owned = owned;
                _gigabyte = gigabyte;
                _contendedLane = world.Contended.Lanes[index];
            }

            public long[] Ops2M { get; } = new long[(int)Op.Count];

            public long[] Ops1G { get; } = new long[(int)Op.Count];

            // Table frames this writer unlinked in the regions it alone writes (exact, since it
            // knows their structure); each was freed during the run or is still pending.
            public long RetiredFrames { get; private set; }

            public void Run()
            {
                while (!_world.ShouldStop)
                {
                    int pick = _rng.Next(100);
                    if (pick < 10)
                    {
                        Step1G(_gigabyte, _gigabyte.Lanes[0]);
                    }
                    else if (pick < 35)
                    {
                        Step2M(_world.Contended, _contendedLane, owned: false);
                    }
                    else
                    {
                        Region r = _owned[_rng.Next(_owned.Length)];
                        Step2M(r, r.Lanes[0], owned: true);
                    }
                }
            }

            private int OtherVersion(RegionState s, int versions) => s.Mapped ? (s.Version + 1 + _rng.Next(versions - 1)) % versions : _rng.Next(versions);

            private int AnyCombo() => _rng.Next(s_combos.Length);

            private void Step2M(Region region, Lane lane, bool owned)
            {
                P2m p2m = _world.P2m;
                RegionState cur = lane.Current;
                bool super = cur.Mapped && cur.Order == 9;
                bool table = cur.Mapped && cur.Order == 0;
                int roll = _rng.Next(100);
                Op op = super ? (roll < 40 ? Op.Split : roll < 75 ? Op.MapSuper : Op.RemoveSuper)
                    : table ? (roll < 45 ? Op.MapSuper : roll < 65 ? Op.Map4KAll : roll < 85 ? Op.Remove4KAll : Op.RemoveSuper)
                    : (roll < 50 ? Op.Map4KAll : roll < 90 ? Op.MapSuper : Op.RemoveSuper);
                ulong first = region.FirstGfn;
                switch (op)
                {
                    case Op.MapSuper:
                    {
                        int v = OtherVersion(cur, Versions2M);
                        int ci = AnyCombo();
                        Combo c = s_combos[ci];
                        lane.Begin(RegionState.Leaves(v, ci, 9));
                        p2m.SetEntry(first, lane.Bases[v], PageOrder.Size2M, c.Type, c.Access);
                        lane.End();
                        RetireTable(lane, owned);
                        break;
                    }

                    case Op.Split:
                    {
                        ulong e = first + (ulong)_rng.Next((int)Pages2M);
                        int ve = (cur.Version + 1) % Versions2M;
                        int ce = AnyCombo();
                        lane.Hint = e;
                        lane.Begin(cur with { Order = 0, ExceptionGfn = e, ExceptionVersion = ve, ExceptionCombo = ce });
                        p2m.SetEntry(e, lane.Bases[ve] + (e - first), PageOrder.Size4K, s_combos[ce].Type, s_combos[ce].Access);
                        lane.End();
                        lane.HasTable = true;
                        break;
                    }

                    case Op.Map4KAll:
                    {
                        int v = OtherVersion(cur, Versions2M);
                        int ci = AnyCombo();
                        Combo c = s_combos[ci];
                        bool down = _rng.Next(2) == 0;
                        lane.Begin(RegionState.Leaves(v, ci, 0));
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            ulong o = down ? Pages2M - 1 - i : i;
                            p2m.SetEntry(first + o, lane.Bases[v] + o, PageOrder.Size4K, c.Type, c.Access);
                        }

                        lane.End();
                        lane.HasTable = true;
                        break;
                    }

                    case Op.Remove4KAll:
                    {
                        lane.Begin(RegionState.Removed);
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            p2m.SetEntry(first + i, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.RWX);
                        }

                        lane.End();
                        break;
                    }

                    default:
                    {
                        op = Op.RemoveSuper;
                        lane.Begin(RegionState.Removed);
                        p2m.SetEntry(first, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetireTable(lane, owned);
                        break;
                    }
                }

                Ops2M[(int)op]++;
            }

            private void RetireTable(Lane lane, bool owned)
            {
                if (owned && lane.HasTable)
                {
                    RetiredFrames++;
                }

                lane.HasTable = false;
            }

            private void Step1G(Region region, Lane lane)
            {
                P2m p2m = _world.P2m;
                RegionState cur = lane.Current;
                ulong first = region.FirstGfn;
                int roll = _rng.Next(100);
                Op op = !cur.Mapped ? Op.MapSuper
                    : cur.Order == 18 ? (roll < 45 ? Op.Split : roll < 80 ? Op.MapSuper : Op.RemoveSuper)
                    : (roll < 30 && cur.HoleFirst == NoGfn ? Op.RemoveChunk : roll < 80 ? Op.MapSuper : Op.RemoveSuper);
                switch (op)
                {
                    case Op.MapSuper:
                    {
                        int v = OtherVersion(cur, Versions1G);
                        int ci = AnyCombo();
                        lane.Begin(RegionState.Leaves(v, ci, 18));
                        p2m.SetEntry(first, lane.Bases[v], PageOrder.Size1G, s_combos[ci].Type, s_combos[ci].Access);
                        lane.End();
                        RetiredFrames += lane.TableFrames;
                        lane.TableFrames = 0;
                        break;
                    }

                    case Op.Split:
                    {
                        ulong e = first + (ulong)_rng.NextInt64((long)Pages1G);
                        int ve = (cur.Version + 1) % Versions1G;
                        int ce = AnyCombo();
                        lane.Hint = e;
                        lane.Begin(cur with { Order = 0, ExceptionGfn = e, ExceptionVersion = ve, ExceptionCombo = ce });
                        p2m.SetEntry(e, lane.Bases[ve] + (e - first), PageOrder.Size4K, s_combos[ce].Type, s_combos[ce].Access);
                        lane.End();
                        lane.TableFrames = 1 + 512;     // Xen splits every child down to 4K
                        break;
                    }

                    case Op.RemoveChunk:
                    {
                        ulong chunk = first + (ulong)_rng.Next(512) * Pages2M;
                        lane.Hint = chunk + Pages2M - 1;
                        lane.Begin(cur with { HoleFirst = chunk, HoleLast = chunk + Pages2M - 1 });
                        p2m.SetEntry(chunk, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetiredFrames++;
                        lane.TableFrames--;
                        break;
                    }

                    default:
                    {
                        lane.Begin(RegionState.Removed);
                        p2m.SetEntry(first, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetiredFrames += lane.TableFrames;
                        lane.TableFrames = 0;
                        break;
                    }
                }

                Ops1G[(int)op]++;
            }
        }

        private sealed class TortureReader
        {
            private readonly TortureWorld? _world;
            private readonly int _index;

            public TortureReader(TortureWorld? world, int index)
            {
                _world = world;
                _index = index;
            }

            public long Gets { get; private set; }

            public long Translates { get; private set; }

            public long Batched { get; private set; }

            public long SlowWalks { get; private set; }

            public long Overlapping { get; private set; }   // observations during which some lane changed

            public long Faults { get; private set; }        // holes (GetEntry) or violations (Translate)

            public long Discarded { get; private set; }

            public static TortureReader Sum(TortureReader[] readers)
            {
                var sum = new TortureReader(null, -1);
                foreach (TortureReader r in readers)
                {
                    sum.Gets += r.Gets;
                    sum.Translates += r.Translates;
                    sum.Batched += r.Batched;
                    sum.SlowWalks += r.SlowWalks;
                    sum.Overlapping += r.Overlapping;
                    sum.Faults += r.Faults;
                    sum.Discarded += r.Discarded;
                }

                return sum;
            }

            public void Run()
            {
                TortureWorld world = _world!;
                P2m p2m = world.P2m;
                var rng = new Random(Seed + 100 + _index);
                long[] before = new long[world.Lanes.Length];
                long[] after = new long[world.Lanes.Length];
                var candidates = new Expectation[2 * (MaxWindow + 1) * TortureWriters];
                ulong[] gpas = new ulong[ReaderBatch];
                Region[] batchRegions = new Region[ReaderBatch];
                EptTranslation[] results = new EptTranslation[ReaderBatch];
                while (!world.ShouldStop)
                {
                    int kind = rng.Next(16);
                    if (kind < 12)
                    {
                        // 0-4 GetEntry, 5-9 Translate, 10-11 a slow walk of our own; 12-15 a batch.
                        bool isGet = kind < 5 || kind >= 10;
                        bool isSlow = kind >= 10;
                        bool corrupt = false;
                        Region region = PickRegion(world, rng);
                        ulong gfn = PickGfn(region, rng);
                        Snapshot(region.Lanes, before);
                        P2mEntry e = default;
                        EptTranslation t = default;
                        ulong gpa = (gfn << 12) | (uint)rng.Next(4096);
                        AccessKind access = s_accesses[rng.Next(s_accesses.Length)];
                        if (isSlow)
                        {
                            e = SlowWalk(p2m, gfn, rng, out corrupt);
                        }
                        else if (isGet)
                        {
                            e = p2m.GetEntry(gfn);
                        }
                        else
                        {
                            t = p2m.Translate(gpa, access);
                        }

                        Snapshot(region.Lanes, after);
                        int n = Candidates(region, gfn, before, after, candidates);
                        bool ok = false;
                        for (int i = 0; i < n && !ok && !corrupt; i++)
                        {
                            ok = isGet ? EntryMatches(e, candidates[i], region.Contended) : TranslationMatches(t, candidates[i], gpa, access, region.Contended);
                        }

                        if (n < 0 || AnyLapped(region.Lanes, before))
                        {
                            Discarded++;
                            continue;
                        }

                        Count(region.Lanes, before, after, isGet ? (e.IsMapped ? 0 : 1) : (t.Status == EptStatus.Ok ? 0 : 1));
                        if (isSlow)
                        {
                            SlowWalks++;
                        }
                        else if (isGet)
                        {
                            Gets++;
                        }
                        else
                        {
                            Translates++;
                        }

                        if (!ok)
                        {
                            world.Report($"{(isSlow ? "slow walk" : isGet ? "GetEntry" : $"Translate({access}) of 0x{gpa:X}")} gfn 0x{gfn:X} in {region.Name} saw "
                                         + $"{(corrupt ? "a corrupt entry" : isGet ? e.ToString() : t.ToString())}; states in the window: "
                                         + $"{string.Join(" | ", candidates.Take(Math.Max(n, 0)).Distinct().Take(8))}; "
                                         + $"seq {string.Join(",", region.Lanes.Select(l => before[l.Index]))} -> {string.Join(",", region.Lanes.Select(l => after[l.Index]))}");
                        }
                    }
                    else
                    {
                        // Half the batches stay in one region: long runs of walks through the
                        // tables a writer is busiest replacing, where a premature free would show.
                        AccessKind access = s_accesses[rng.Next(s_accesses.Length)];
                        Region? single = rng.Next(2) == 0 ? world.Regions[rng.Next(world.Regions.Length)] : null;
                        for (int i = 0; i < ReaderBatch; i++)
                        {
                            batchRegions[i] = single ?? PickRegion(world, rng);
                            gpas[i] = (PickGfn(batchRegions[i], rng) << 12) | (uint)rng.Next(4096);
                        }

                        Snapshot(world.Lanes, before);
                        int written = p2m.TranslateBatch(gpas, access, results);
                        Snapshot(world.Lanes, after);
                        if (written != ReaderBatch)
                        {
                            world.Report($"TranslateBatch returned {written} for {ReaderBatch} addresses");
                        }

                        if (AnyLapped(world.Lanes, before))
                        {
                            Discarded += ReaderBatch;
                            continue;
                        }

                        for (int i = 0; i < ReaderBatch; i++)
                        {
                            Region region = batchRegions[i];
                            ulong gfn = gpas[i] >> 12;
                            int n = Candidates(region, gfn, before, after, candidates);
                            if (n < 0)
                            {
                                Discarded++;
                                continue;
                            }

                            bool ok = false;
                            for (int c = 0; c < n && !ok; c++)
                            {
                                ok = TranslationMatches(results[i], candidates[c], gpas[i], access, region.Contended);
                            }

                            Batched++;
                            Count(region.Lanes, before, after, results[i].Status == EptStatus.Ok ? 0 : 1);
                            if (!ok)
                            {
                                world.Report($"TranslateBatch({access}) of 0x{gpas[i]:X} (item {i}) in {region.Name} saw {results[i]}; states in the window: "
                                             + $"{string.Join(" | ", candidates.Take(n).Distinct().Take(8))}");
                            }
                        }

                        // Re-check after replaying: a lane that lapped its history meanwhile may have fed us wrong states.
                        if (AnyLapped(world.Lanes, before))
                        {
                            Discarded++;
                        }
                    }
                }
            }

            private void Count(Lane[] lanes, long[] before, long[] after, int fault)
            {
                Faults += fault;
                foreach (Lane l in lanes)
                {
                    if (before[l.Index] != after[l.Index] || (before[l.Index] & 1) != 0)
                    {
                        Overlapping++;
                        return;
                    }
                }
            }

            // A walker of our own that keeps the library's reader protocol (one Epoch section
            // around the walk, every slot read once) but dawdles between levels as a preempted
            // reader would: a table freed under it reads as poison or as some other region's
            // entries. Decodes like GetEntry; `corrupt` flags fields no writer ever stores.
            private static P2mEntry SlowWalk(P2m p2m, ulong gfn, Random rng, out bool corrupt)
            {
                HostMemory memory = p2m.Memory;
                long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
                try
                {
                    ulong table = p2m.RootMfn;
                    for (int level = p2m.Levels; ; level--)
                    {
                        int order = 9 * (level - 1);
                        ulong pte = memory.ReadUInt64((table << 12) + 8 * ((gfn >> order) & 511));
                        if (level > 1 && (pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                        {
                            table = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                            corrupt = table >= (ulong)memory.FrameCount;
                            if (corrupt)
                            {
                                return default;
                            }

                            Thread.SpinWait(rng.Next(256));
                            continue;
                        }

                        ulong type = (pte & EptEntry.TypeMask) >> EptEntry.TypeShift;
                        ulong access = (pte & EptEntry.AccessMask) >> EptEntry.AccessShift;
                        if ((pte & ~EptEntry.SuppressVeBit) == 0 || type == (ulong)P2mType.Invalid)
                        {
                            corrupt = false;
                            return P2mEntry.Hole(order);
                        }

                        corrupt = level > 3 || type > (ulong)P2mType.IoreqServer || access > (ulong)P2mAccess.R_PW;
                        ulong mfn = ((pte & EptEntry.MfnMask) >> EptEntry.MfnShift) + (gfn & ((1UL << order) - 1));
                        return new P2mEntry(mfn, (P2mType)type, (P2mAccess)access, (pte & EptEntry.SuppressVeBit) != 0, true, order);
                    }
                }
                finally
                {
                    Epoch.Exit(slot, previous);
                }
            }

            private static bool AnyLapped(Lane[] lanes, long[] before)
            {
                foreach (Lane l in lanes)
                {
                    if (l.Lapped(before[l.Index]))
                    {
                        return true;
                    }
                }

                return false;
            }

            private static Region PickRegion(TortureWorld world, Random rng)
                => rng.Next(10) == 0 ? world.Gaps[rng.Next(world.Gaps.Length)] : world.Regions[rng.Next(world.Regions.Length)];

            private static ulong PickGfn(Region region, Random rng)
            {
                if (region.Lanes.Length != 0 && rng.Next(4) == 0)
                {
                    // Aim at (or next to) a GFN the writer just made special: an exception or a hole edge.
                    ulong hint = unchecked(region.Lanes[rng.Next(region.Lanes.Length)].Hint + (ulong)rng.Next(3) - 1);   // 0 - 1 wraps, then fails the range test
                    if (hint >= region.FirstGfn && hint - region.FirstGfn < region.Pages)
                    {
                        return hint;
                    }
                }

                return region.FirstGfn + (ulong)rng.NextInt64((long)region.Pages);
            }

            private static void Snapshot(Lane[] lanes, long[] into)
            {
                foreach (Lane l in lanes)
                {
                    into[l.Index] = l.Seq;
                }
            }

            // Every outcome the region's lanes allowed for `gfn` between the snapshots; -1 when a
            // window is too wide to replay.
            private static int Candidates(Region region, ulong gfn, long[] before, long[] after, Expectation[] into)
            {
                if (region.Lanes.Length == 0)
                {
                    into[0] = default;
                    return 1;
                }

                int n = 0;
                foreach (Lane lane in region.Lanes)
                {
                    long first = before[lane.Index] >> 1;
                    long last = (after[lane.Index] + 1) >> 1;
                    if (last - first > MaxWindow)
                    {
                        return -1;
                    }

                    for (long k = first; k <= last; k++)
                    {
                        into[n++] = Expect(region, lane, lane.StateAt(k), gfn);
                    }
                }

                return n;
            }
        }

        // ------------------------------------------------------------------------------------
        // b. PoD populate race
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(PageOrder.Size2M, PageOrder.Size2M)]
        [InlineData(PageOrder.Size1G, PageOrder.Size2M)]
        [InlineData(PageOrder.Size2M, PageOrder.Size4K)]
        [InlineData(PageOrder.Size1G, PageOrder.Size4K)]
        public void Populate_RacingAllocQueries_AllocateExactlyOnce(PageOrder podOrder, PageOrder cacheOrder)
        {
            bool big = cacheOrder == PageOrder.Size2M;
            int poolPages = big ? 3 : 8;                // the cache holds all but one (2M) or half (4K) of them
            int cachedTarget = big ? 2 : 4;
            ulong pageFrames = 1UL << (int)cacheOrder;
            ulong podFirst = Pages1G;
            ulong podPages = 1UL << (int)podOrder;

            using var rig = new Rig(64L << 20, poolPages * (long)pageFrames);
            HostMemory memory = rig.Memory;
            P2m p2m = rig.P2m;
            const ulong poolFirst = 0;                  // the rig puts guest RAM at MFN 0
            var pool = new HashSet<ulong>();
            var spare = new Queue<ulong>();
            for (int i = 0; i < poolPages; i++)
            {
                pool.Add(poolFirst + (ulong)i * pageFrames);
                spare.Enqueue(poolFirst + (ulong)i * pageFrames);
            }

            var inCache = new HashSet<ulong>();
            var rng = new Random(Seed);
            ulong[] targets = new ulong[PodPopulators];
            Array.Fill(targets, podFirst);
            P2mEntry[] results = new P2mEntry[PodPopulators];
            var failures = new ConcurrentQueue<Exception>();
            using var cancel = new CancellationTokenSource();
            using var barrier = new Barrier(PodPopulators + 1);
            long readerObservations = 0;
            long readerRam = 0;
            var readerViolations = new ConcurrentQueue<string>();

            // The range is PoD before any reader starts, and stays PoD or RAM from the pool from then on.
            p2m.SetEntry(podFirst, Mfn.Invalid, podOrder, P2mType.PopulateOnDemand, P2mAccess.RWX);
            var bodies = new List<(string Name, Action Body)>();
            for (int w = 0; w < PodPopulators; w++)
            {
                int me = w;
                bodies.Add(($"populator {w}", () =>
                {
                    for (int round = 0; round < PodRounds; round++)
                    {
                        WaitOrThrow(barrier, cancel.Token);
                        results[me] = p2m.GetEntry(targets[me], P2mQuery.Alloc);
                        WaitOrThrow(barrier, cancel.Token);
                    }
                }));
            }

            for (int r = 0; r < PodReaders; r++)
            {
                int me = r;
                bodies.Add(($"pod reader {r}", () =>
                {
                    var local = new Random(Seed + 200 + me);
                    long seen = 0;
                    long ram = 0;
                    while (!cancel.IsCancellationRequested)
                    {
                        // Half the reads aim at (or next to) a GFN being populated this round.
                        ulong gfn = podFirst + (ulong)local.NextInt64((long)podPages);
                        ulong aimed = unchecked(Volatile.Read(ref targets[local.Next(PodPopulators)]) + (ulong)local.Next(3) - 1);
                        if (local.Next(2) == 0 && aimed >= podFirst && aimed - podFirst < podPages)
                        {
                            gfn = aimed;
                        }

                        P2mEntry e = p2m.GetEntry(gfn);
                        ulong gpa = gfn << 12;
                        EptTranslation t = p2m.Translate(gpa, AccessKind.Read);
                        bool entryOk;
                        bool translationOk;
                        if (e.Type == P2mType.PopulateOnDemand)
                        {
                            entryOk = e.IsMapped && e.Mfn == Mfn.Invalid && e.Access == P2mAccess.N && e.SuppressVe
                                      && e.Order is 0 or 9 or 18 && e.Order <= (int)podOrder;
                        }
                        else
                        {
                            ulong page = big ? e.Mfn - (gfn & (Pages2M - 1)) : e.Mfn;
                            entryOk = e.IsMapped && e.Type == P2mType.RamRw && e.Access == P2mAccess.RWX && e.SuppressVe
                                      && e.Order == (int)cacheOrder && pool.Contains(page);
                            ram++;
                        }

                        if (t.Status == EptStatus.Ok)
                        {
                            ulong hpaPage = (t.Hpa >> 12) - (big ? gfn & (Pages2M - 1) : 0);
                            translationOk = (t.Hpa & 0xFFF) == 0 && pool.Contains(hpaPage) && t.Level == (big ? 2 : 1);
                        }
                        else
                        {
                            translationOk = t.Status == EptStatus.Violation && t.Qualification == (ulong)AccessKind.Read;  // PoD: not present
                        }

                        seen++;
                        if ((!entryOk || !translationOk) && readerViolations.Count < 20)
                        {
                            readerViolations.Enqueue($"gfn 0x{gfn:X}: {e} / {t}");
                        }
                    }

                    Interlocked.Add(ref readerObservations, seen);
                    Interlocked.Add(ref readerRam, ram);
                }));
            }

            int roundsDone = 0;
            bodies.Add(("pod coordinator", () =>
            {
                try
                {
                    for (int round = 0; round < PodRounds; round++)
                    {
                        // Reset: the pages mapped last round are free again.
                        if (round != 0)
                        {
                            p2m.SetEntry(podFirst, Mfn.Invalid, podOrder, P2mType.PopulateOnDemand, P2mAccess.RWX);
                        }

                        Assert.Equal((long)podPages, p2m.PodEntryCount);
                        while (inCache.Count < cachedTarget)
                        {
                            ulong page = spare.Dequeue();
                            p2m.Pod.AddPage(page, cacheOrder);
                            inCache.Add(page);
                        }

                        // 2M cache: every populator asks for one GFN. 4K cache: two GFNs of one 2M chunk, half each.
                        ulong chunk = podFirst + (ulong)rng.Next((int)(podPages / Pages2M)) * Pages2M;
                        ulong a = chunk + (ulong)rng.Next((int)Pages2M);
                        ulong b = chunk + ((a - chunk + 1 + (ulong)rng.Next((int)Pages2M - 1)) % Pages2M);
                        for (int i = 0; i < PodPopulators; i++)
                        {
                            targets[i] = big || i % 2 == 0 ? a : b;
                        }

                        int count2M = p2m.Pod.Count2M;
                        int count4K = p2m.Pod.Count4K;
                        long entries = p2m.PodEntryCount;
                        WaitOrThrow(barrier, cancel.Token);     // go
                        WaitOrThrow(barrier, cancel.Token);     // all populators returned

                        var byGfn = new Dictionary<ulong, P2mEntry>();
                        for (int i = 0; i < PodPopulators; i++)
                        {
                            P2mEntry e = results[i];
                            if (byGfn.TryGetValue(targets[i], out P2mEntry other))
                            {
                                Assert.Equal(other, e);
                            }

                            byGfn[targets[i]] = e;
                            Assert.True(e.IsMapped, $"round {round}: populator {i} got {e}");
                            Assert.Equal(P2mType.RamRw, e.Type);
                            Assert.Equal(P2mAccess.RWX, e.Access);
                            Assert.Equal((int)cacheOrder, e.Order);
                            Assert.Equal(e, p2m.GetEntry(targets[i]));
                            Assert.Equal(new EptTranslation(EptStatus.Ok, (e.Mfn << 12) | 0x18, big ? 2 : 1, 0), p2m.Translate((targets[i] << 12) | 0x18, AccessKind.Read));
                        }

                        var taken = new HashSet<ulong>();
                        foreach ((ulong gfn, P2mEntry e) in byGfn)
                        {
                            ulong page = big ? e.Mfn - (gfn & (Pages2M - 1)) : e.Mfn;
                            Assert.Contains(page, inCache);
                            Assert.True(taken.Add(page), $"round {round}: page 0x{page:X} backs two GFNs");
                        }

                        Assert.Equal(big ? 1 : 0, count2M - p2m.Pod.Count2M);
                        Assert.Equal(big ? 0 : byGfn.Count, count4K - p2m.Pod.Count4K);
                        Assert.Equal(big ? (long)Pages2M : byGfn.Count, entries - p2m.PodEntryCount);

                        // The rest of the populated chunk: RAM (2M page) or still PoD at 4K; other chunks stay PoD.
                        ulong neighbour = chunk + ((a - chunk + 256) % Pages2M);
                        P2mEntry n = p2m.GetEntry(neighbour);
                        if (neighbour != b)
                        {
                            Assert.Equal(big ? P2mType.RamRw : P2mType.PopulateOnDemand, n.Type);
                            Assert.Equal(big ? 9 : 0, n.Order);
                        }

                        if (podOrder == PageOrder.Size1G)
                        {
                            P2mEntry far = p2m.GetEntry(podFirst + ((chunk - podFirst + Pages2M) % Pages1G));
                            Assert.Equal(P2mType.PopulateOnDemand, far.Type);
                            Assert.Equal(9, far.Order);
                        }

                        foreach (ulong page in taken)
                        {
                            inCache.Remove(page);
                            spare.Enqueue(page);
                        }

                        roundsDone = round + 1;
                    }
                }
                finally
                {
                    cancel.Cancel();    // stops the readers
                }
            }));

            var clock = Stopwatch.StartNew();
            List<string> stuck = RunWithWatchdog(bodies, s_watchdogGrace, failures, cancel.Cancel);
            clock.Stop();
            rig.AssertNoneStuck(stuck);
            _output.WriteLine($"PoD {(int)podOrder}/{(int)cacheOrder}: {roundsDone} rounds in {clock.Elapsed.TotalSeconds:F2} s; "
                              + $"{readerObservations} reader observations ({readerRam} RAM)");
            Assert.True(failures.IsEmpty, string.Join("\n", failures));
            Assert.Equal(PodRounds, roundsDone);
            Assert.True(readerViolations.IsEmpty, "Readers saw something other than PoD or a populated page:\n" + string.Join("\n", readerViolations));
            Assert.True(readerObservations > 0, "The readers never read.");
            Assert.Equal(0, ReclaimUntilEmpty(p2m));
            Assert.Equal(memory.AllocatedFrameCount, p2m.TableFrameCount + rig.GuestFrames);
        }

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

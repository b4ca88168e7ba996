// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mConcurrencyTests
    {
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
    }
}

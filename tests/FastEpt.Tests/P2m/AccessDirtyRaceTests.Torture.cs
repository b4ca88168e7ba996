// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using FastEpt.Interop;

namespace FastEpt.Tests.P2mTests
{
    // The torture: one writer (SetEntry: 4K and 2M maps, remaps, type changes, removals, so
    // splits and merges, now and then a 1G removal; plus a hypervisor's harvesting of A/D flags
    // by compare-exchange on pointers and leaves) against managed and native readers whose
    // walks keep setting A and D (PML log-dirty leaves are writable without D). An adversarial
    // schedule makes the races happen: a managed reader that opens an A/D window (test seam)
    // often stays in it and has the writer remap or remove the entry it is about to update,
    // then goes on. Every value a reader sees must be one the writer published for that GFN; a
    // walk whose window saw a write must agree with a walk made after it; at the end every GFN
    // reads exactly as the writer left it, so a removed entry never reads as mapped.
    public sealed partial class AccessDirtyRaceTests
    {
        private static readonly TimeSpan s_tortureDuration = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan s_tortureWatchdog = TimeSpan.FromSeconds(30);
        private const int TortureRegions = 4;                    // 2 MiB regions raced over
        private const int TortureGfns = TortureRegions * 512;
        private const ulong TortureFirst = 0x40000;              // GFN of the first region, 1 GiB-aligned
        private const ulong FrameBase = 512;                     // guest frames: two 2 MiB-aligned versions per region, above MFN 0
        private const long MinWindows = 1_000;                   // A/D windows the managed readers must have opened
        private const long MinLiveRaces = 5;                     // writes the writer made inside a reader's window, on the live slot
        private const int HotGfns = 4;                           // most reads and writes go to these, so races happen

        // A GFN (from TortureFirst): one of the hot ones three times in four, else any.
        private static ulong PickGfn(Random random)
            => random.Next(4) != 0 ? (ulong)(random.Next(HotGfns) * (TortureGfns / HotGfns)) + 17 : (ulong)random.Next(TortureGfns);

        private static readonly P2mType[] s_types4K = [P2mType.RamLogDirty, P2mType.RamLogDirty, P2mType.RamLogDirty, P2mType.RamRw, P2mType.RamRo];
        private static readonly P2mType[] s_types2M = [P2mType.RamLogDirty, P2mType.RamRw];

        // The frame of the GFN at `local` (from TortureFirst) in version `v` (0 or 1).
        private static ulong FrameOf(ulong local, int v) => FrameBase + ((((local >> 9) * 2) + (ulong)v) << 9) + (local & 511);

        private static long Bit(int v, P2mType type) => 1L << ((v * 16) + (int)type);

        [Fact]
        public void Torture_AccessDirtyUpdatesRaceRemapsRemovalsSplitsAndMerges()
        {
            var memory = new HostMemory(64L << 20);
            Assert.Equal(0UL, memory.AllocateFrames((long)FrameBase + (TortureRegions * 2 * 512)));
            var p2m = new P2m(memory, new P2mOptions { AccessDirty = true, PmlEnabled = true });
            var native = new NativeWalker(p2m);
            long[] published = new long[TortureGfns];            // per GFN: Bit(v, type) of every (frame, type) ever published
            var model = new (int V, P2mType Type)?[TortureGfns];  // the writer's view; null = removed
            var failures = new ConcurrentQueue<Exception>();
            var cancel = new CancellationTokenSource();
            long windows = 0, observations = 0, writes = 0;
            var rendezvous = new Rendezvous(cancel.Token);

            void Publish(ulong local, int count, int v, P2mType type)
            {
                for (ulong i = 0; i < (ulong)count; i++)
                {
                    Interlocked.Or(ref published[local + i], Bit(v, type));     // before SetEntry publishes it
                }
            }

            var bodies = new List<(string, Action)>
            {
                ("writer", () =>
                {
                    var random = new Random(0xAD);
                    var clock = Stopwatch.StartNew();
                    while (clock.Elapsed < s_tortureDuration && !cancel.IsCancellationRequested)
                    {
                        (ulong Local, int Level, ulong SlotHpa)? asked = rendezvous.Pending();
                        // Whether the slot the reader is about to update is still in the live
                        // tables: earlier writes may have unlinked its table since the reader read it.
                        bool live = asked is not null && LiveSlot(p2m, memory, TortureFirst + asked.Value.Local, asked.Value.Level) == asked.Value.SlotHpa;
                        WriterStep(p2m, memory, random, model, Publish, asked is null ? null : (asked.Value.Local, asked.Value.Level));
                        if (asked is not null)
                        {
                            rendezvous.Written(live);
                        }

                        writes++;
                        Thread.SpinWait(random.Next(100));
                    }

                    cancel.Cancel();
                }),
            };
            for (int r = 0; r < 2; r++)
            {
                int seed = r;
                bodies.Add(($"managed reader {r}", () =>
                {
                    var random = new Random(seed);
                    // In one window in two (of a single walk), have the writer write this entry.
                    P2m.AccessDirtyRaceHook = (level, slotHpa) =>
                    {
                        Interlocked.Increment(ref windows);
                        if (t_walkedGfn != ulong.MaxValue && !t_mustRelease && (random.Next() & 1) == 0)
                        {
                            t_mustRelease = rendezvous.Ask(t_walkedGfn, level, slotHpa, out t_wroteLiveSlot);
                        }
                    };
                    try
                    {
                        ReadUntilCancelled(random, cancel.Token, published, ref observations,
                                           (gpa, access) => p2m.Translate(gpa, access),
                                           (gpas, access, results) => p2m.TranslateBatch(gpas, access, results),
                                           gfn => p2m.GetEntry(gfn), rendezvous);
                    }
                    finally
                    {
                        P2m.AccessDirtyRaceHook = null;
                    }
                }));
            }

            bodies.Add(("native reader", () => ReadUntilCancelled(new Random(9), cancel.Token, published, ref observations,
                                                                  (gpa, access) => native.Translate(gpa, access),
                                                                  (gpas, access, results) => native.TranslateBatch(gpas, access, results),
                                                                  gfn => native.GetEntry(gfn), null)));

            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog(bodies, s_tortureDuration + s_tortureWatchdog, failures, cancel.Cancel);
            _output.WriteLine($"{writes} writes ({rendezvous.Served} inside a reader's window, {rendezvous.ServedLive} of them on its live slot), {windows} A/D windows in managed walks, {observations} observations");
            Assert.True(stuck.Count == 0, $"deadlock/livelock: {string.Join(", ", stuck)} still running");   // memory deliberately leaked then
            Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
            Assert.True(Volatile.Read(ref windows) >= MinWindows, $"only {windows} A/D windows opened in {writes} writes");
            Assert.True(Volatile.Read(ref observations) > 10_000, $"only {observations} observations");
            Assert.True(rendezvous.ServedLive >= MinLiveRaces, $"only {rendezvous.ServedLive} writes inside a window on a live slot");

            // Quiescent: every GFN reads as the writer left it, and the lock-free table count equals
            // the tables reachable from the root, counted here from the raw words.
            for (ulong local = 0; local < TortureGfns; local++)
            {
                P2mEntry e = p2m.GetEntry(TortureFirst + local);
                (int V, P2mType Type)? m = model[local];
                Assert.True(m is null ? !e.IsMapped : e.IsMapped && e.Type == m.Value.Type && e.Mfn == FrameOf(local, m.Value.V),
                            $"GFN 0x{TortureFirst + local:X} reads {e}, the writer left {(m is null ? "nothing" : m.Value.ToString())}");
                Assert.Equal(e, native.GetEntry(TortureFirst + local));
            }

            Assert.Equal(ReachableTables.Count(memory, p2m.RootMfn, p2m.Levels), p2m.TableCountRelaxed);
            p2m.Dispose();
            memory.Dispose();
        }

        // The GFN (from TortureFirst) this thread's managed walk is on; MaxValue: none (a batch).
        [ThreadStatic]
        private static ulong t_walkedGfn;

        // Whether this reader had the writer write inside its walk and must let it go on once
        // it has read the result back; whether that write changed the live slot the walk was
        // about to update (not a copy in a table already unlinked before the request).
        [ThreadStatic]
        private static bool t_mustRelease;

        [ThreadStatic]
        private static bool t_wroteLiveSlot;

        // One random write, or, when a reader asks, one at the GFN and level of its window (`target`):
        // a remap or removal of the entry it is about to update. `model` follows every write
        // exactly (a split keeps what the superpage mapped).
        private static void WriterStep(P2m p2m, HostMemory memory, Random random, (int V, P2mType Type)?[] model,
                                       Action<ulong, int, int, P2mType> publish, (ulong Local, int Level)? target)
        {
            ulong local = target?.Local ?? PickGfn(random);
            ulong region = local >> 9;
            int v = random.Next(2);
            int op = target?.Level switch
            {
                null => random.Next(100),
                1 => random.Next(3) == 0 ? random.Next(35) : 35,    // 4K: a remap now and then, mostly a removal
                2 => 67,                                            // the 2M region: removed
                _ => 75,                                            // the 1G region: removed
            };
            if (op < 35)
            {
                P2mType type = s_types4K[random.Next(s_types4K.Length)];
                publish(local, 1, v, type);
                p2m.SetEntry(TortureFirst + local, FrameOf(local, v), PageOrder.Size4K, type, P2mAccess.RWX);
                model[local] = (v, type);
            }
            else if (op < 55)
            {
                p2m.SetEntry(TortureFirst + local, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                model[local] = null;
            }
            else if (op < 67)
            {
                P2mType type = s_types2M[random.Next(s_types2M.Length)];
                publish(region << 9, 512, v, type);
                p2m.SetEntry(TortureFirst + (region << 9), FrameOf(region << 9, v), PageOrder.Size2M, type, P2mAccess.RWX);
                Array.Fill(model, (v, type), (int)(region << 9), 512);
            }
            else if (op < 75)
            {
                p2m.SetEntry(TortureFirst + (region << 9), Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                Array.Fill(model, null, (int)(region << 9), 512);
            }
            else if (op < 76)
            {
                p2m.SetEntry(TortureFirst, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.N);
                Array.Fill(model, null);
            }
            else
            {
                // Harvest: clear A (and D) on one entry of the path, by compare-exchange as a
                // hypervisor must, so the next walk through it has to set them again.
                Harvest(p2m, memory, TortureFirst + local, random.Next(1, 4));
            }
        }

        // The HPA of the live slot that maps `gfn` at `level`, or MaxValue when the walk stops above it.
        private static ulong LiveSlot(P2m p2m, HostMemory memory, ulong gfn, int level)
        {
            ulong table = p2m.RootMfn;
            for (int l = p2m.Levels; ; l--)
            {
                ulong hpa = (table << 12) + (((gfn >> (9 * (l - 1))) & 511) * 8);
                if (l == level)
                {
                    return hpa;
                }

                ulong pte = memory.ReadUInt64(hpa);
                if ((pte & 7) == 0 || (pte & 0x80) != 0)
                {
                    return ulong.MaxValue;
                }

                table = (pte & EptEntry.MfnMask) >> 12;
            }
        }

        private static void Harvest(P2m p2m, HostMemory memory, ulong gfn, int level)
        {
            ulong table = p2m.RootMfn;
            for (int l = p2m.Levels; ; l--)
            {
                ref ulong slot = ref memory.DangerousSlot((table << 12) + (((gfn >> (9 * (l - 1))) & 511) * 8));
                ulong pte = Volatile.Read(ref slot);
                bool pointer = (pte & 7) != 0 && (pte & 0x80) == 0 && l > 1;
                if (l == level || !pointer)
                {
                    if ((pte & 7) != 0)
                    {
                        Interlocked.CompareExchange(ref slot, pte & ~(A | D), pte);
                    }

                    return;
                }

                table = (pte & EptEntry.MfnMask) >> 12;
            }
        }

        private delegate int BatchReader(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results);

        private static void ReadUntilCancelled(Random random, CancellationToken cancel, long[] published, ref long observations,
                                               Func<ulong, AccessKind, EptTranslation> translate, BatchReader batch, Func<ulong, P2mEntry> getEntry,
                                               Rendezvous? rendezvous)
        {
            t_walkedGfn = ulong.MaxValue;
            var gpas = new ulong[64];
            var results = new EptTranslation[64];
            long seen = 0;
            while (!cancel.IsCancellationRequested)
            {
                for (int i = 0; i < 64; i++)
                {
                    // Mostly writes: PML log-dirty leaves then need their dirty flag set.
                    ulong gpa = ((TortureFirst + PickGfn(random)) << 12) | (ulong)(uint)random.Next(4096);
                    AccessKind access = random.Next(4) == 0 ? AccessKind.Read : AccessKind.Write;
                    t_walkedGfn = (gpa >> 12) - TortureFirst;
                    EptTranslation t = translate(gpa, access);
                    t_walkedGfn = ulong.MaxValue;
                    P2mEntry e = getEntry(gpa >> 12);
                    if (t_mustRelease)
                    {
                        // The writer changed the live slot inside this walk's window and waits:
                        // the tables are still (but for A/D flags), so the walk must agree with a
                        // fresh one; a walk that kept what it read before the write does not. (A
                        // walk in a table unlinked before it asked may finish on what it read, as
                        // the CPU does; its flags then land in the unlinked table.)
                        EptTranslation again = translate(gpa, access);
                        t_mustRelease = false;
                        rendezvous!.Release();
                        if (t_wroteLiveSlot && again != t)
                        {
                            throw new Xunit.Sdk.XunitException($"GPA 0x{gpa:X} {access}: the walk whose window saw a write returned {t}, a walk after it {again}");
                        }
                    }

                    Check(gpa, access, t, published);
                    CheckEntry(gpa >> 12, e, published);
                    gpas[i] = gpa;
                }

                AccessKind batchAccess = random.Next(2) == 0 ? AccessKind.Read : AccessKind.Write;
                batch(gpas, batchAccess, results);
                for (int i = 0; i < 64; i++)
                {
                    Check(gpas[i], batchAccess, results[i], published);
                }

                seen += 3 * 64;
            }

            Interlocked.Add(ref observations, seen);
        }

        // A translation must name a frame some write published for that GFN, with a type that
        // grants the access; not present is always possible; a misconfiguration never is.
        private static void Check(ulong gpa, AccessKind access, EptTranslation t, long[] published)
        {
            ulong local = (gpa >> 12) - TortureFirst;
            if (t.Status == EptStatus.Violation)
            {
                return;
            }

            long bits = Volatile.Read(ref published[local]);
            for (int v = 0; v < 2 && t.Status == EptStatus.Ok; v++)
            {
                long allowed = access == AccessKind.Read
                    ? Bit(v, P2mType.RamLogDirty) | Bit(v, P2mType.RamRw) | Bit(v, P2mType.RamRo)
                    : Bit(v, P2mType.RamLogDirty) | Bit(v, P2mType.RamRw);
                if (t.Hpa == (FrameOf(local, v) << 12 | (gpa & 0xFFF)) && (bits & allowed) != 0)
                {
                    return;
                }
            }

            throw new Xunit.Sdk.XunitException($"GPA 0x{gpa:X} {access} translates to {t}, which no write published (published 0x{bits:X})");
        }

        private static void CheckEntry(ulong gfn, P2mEntry e, long[] published)
        {
            ulong local = gfn - TortureFirst;
            if (!e.IsMapped)
            {
                return;
            }

            long bits = Volatile.Read(ref published[local]);
            for (int v = 0; v < 2; v++)
            {
                if (e.Mfn == FrameOf(local, v) && (int)e.Type < 16 && (bits & Bit(v, e.Type)) != 0)
                {
                    return;
                }
            }

            throw new Xunit.Sdk.XunitException($"GFN 0x{gfn:X} reads {e}, which no write published (published 0x{bits:X})");
        }

        // The adversarial schedule. A reader inside an A/D window asks the writer to write the
        // entry it is about to update (Ask); the writer does, hands back (Written) and waits
        // until the reader has finished its walk and read the entry back (Release), so that no
        // later write repairs what the race left before the reader looked.
        private sealed class Rendezvous
        {
            private readonly CancellationToken _cancel;
            private long _state;        // 0: idle; 1: asked; 2: written (live slot); 3: written (unlinked slot)
            private ulong _local;
            private int _level;
            private ulong _slotHpa;
            private long _served;
            private long _servedLive;

            public Rendezvous(CancellationToken cancel) => _cancel = cancel;

            public long Served => Volatile.Read(ref _served);

            public long ServedLive => Volatile.Read(ref _servedLive);

            // Reader, in a window on the slot at `slotHpa` (level `level`, GFN `local`): true when
            // the writer wrote that entry meanwhile (then call Release), with whether the slot was
            // still live when it did.
            public bool Ask(ulong local, int level, ulong slotHpa, out bool live)
            {
                live = false;
                if (Interlocked.CompareExchange(ref _state, -1, 0) != 0)
                {
                    return false;       // another reader's turn
                }

                _local = local;
                _level = level;
                _slotHpa = slotHpa;
                Volatile.Write(ref _state, 1);
                while (Volatile.Read(ref _state) == 1 && !_cancel.IsCancellationRequested)
                {
                    Thread.Yield();     // the writer may need this core
                }

                long state = Interlocked.CompareExchange(ref _state, 0, 1);
                live = state == 2;
                return state != 1;      // 1: withdrawn, the run ended
            }

            public void Release() => Volatile.Write(ref _state, 0);

            // Writer: the entry a reader asks for, if any.
            public (ulong Local, int Level, ulong SlotHpa)? Pending()
                => Volatile.Read(ref _state) == 1 ? (_local, _level, _slotHpa) : null;

            // Writer, after writing the entry asked for (`live`: while its slot was in the live tables).
            public void Written(bool live)
            {
                _served++;
                _servedLive += live ? 1 : 0;
                Volatile.Write(ref _state, live ? 2 : 3);
                while (Volatile.Read(ref _state) >= 2 && !_cancel.IsCancellationRequested)
                {
                    Thread.Yield();
                }
            }
        }
    }
}

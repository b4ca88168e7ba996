// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using FastEpt.Internal;
using Xunit.Abstractions;

namespace FastEpt.Tests.DomainTests
{
    /// <summary>
    /// altp2m under concurrency (docs/model/p2m.md §3.1, 4.3-4.6): view operations, host updates with their
    /// propagation, EPT-violation handling and lock-free readers on every view race each other.
    /// A watchdog turns a deadlock into a failure, every reader observation must decode to a
    /// frame the host or a recorded remap could have put there, and the lock-order checker (on
    /// for the whole test run) turns any out-of-order acquisition into an exception.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class Altp2mTortureTests
    {
        private static readonly TimeSpan s_duration = TimeSpan.FromSeconds(2.5);
        private static readonly TimeSpan s_watchdogGrace = TimeSpan.FromSeconds(30);
        private const int Seed = 0xA17_2D;
        private const int Vcpus = 4;
        private const int AltViews = 6;
        private const int ViewCount = AltViews + 1;
        private const int Readers = 3;
        private const int FaultThreads = 2;                 // each owns Vcpus / FaultThreads vCPUs
        private const int MinActiveViews = 3;               // the view operator destroys only above this

        // Guest layout: a window of 4 × 2M blocks straddling the 1 GiB line (two page directories).
        private const ulong Pages2M = 512;
        private const int Blocks = 4;
        private const int Versions = 4;
        private const ulong WindowGfn = 0x40000 - 2 * Pages2M;
        private const ulong WindowPages = Blocks * Pages2M;
        private const ulong Margin = 16;                    // readers and faults also probe just outside the window
        private const ulong HotTargets = 48;                // most remap targets: the window's last GFNs (a narrow remapped range)
        private const ulong VeInfoGfn = 0x100;              // vCPU i's #VE page is GFN 0x100 + i, mapped once

        // Host memory: the data pool from MFN 0, block b version j at (b * Versions + j) * 512,
        // then one #VE page per vCPU, then room for every p2m's tables.
        private const long PoolFrames = Blocks * Versions * (long)Pages2M;
        private const long HeadroomFrames = 4096;

        private const int MaxViolationsKept = 20;
        private const int AuditSample = 32;                 // own GFNs the host writer checks after a 2M write

        private static readonly P2mAccess[] s_hostAccesses =
            [P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RW, P2mAccess.RX, P2mAccess.R, P2mAccess.X, P2mAccess.N];

        private static readonly P2mAccess[] s_viewAccesses =
            [P2mAccess.R, P2mAccess.RW, P2mAccess.RX, P2mAccess.RWX, P2mAccess.N, P2mAccess.X];

        private static readonly AccessKind[] s_kinds =
            [AccessKind.Read, AccessKind.Write, AccessKind.Execute, AccessKind.Read | AccessKind.Execute, AccessKind.Read | AccessKind.Write];

        private readonly ITestOutputHelper _output;

        public Altp2mTortureTests(ITestOutputHelper output) => _output = output;

        private enum Stat
        {
            HostMap4K,
            HostMap2M,
            HostRemove4K,
            HostRemove2M,
            HostAccess,
            HostRemerge2M,
            WriterRemaps,
            SetMemAccess,
            SetSuppressVe,
            Queries,
            NoEntry,
            Remaps,
            Undos,
            Switches,
            SwitchAll,
            Visibility,
            Created,
            Destroyed,
            DestroyInUse,
            InactiveViewOps,
            Events,
            Faults,
            FaultRetry,
            FaultUnhandled,
            FaultVe,
            FaultSwitchInactive,
            ViewGone,
            Translates,
            TranslateOk,
            TranslateOkInViews,
            RemapSeen,
            SuperpageSeen,
            Gets,
            GetMapped,
            AuditedEntries,
            Count,
        }

        // ------------------------------------------------------------------------------------
        // Torture
        // ------------------------------------------------------------------------------------

        [Fact]
        public void Torture_ViewOpsHostUpdatesFaultsAndLocklessReaders_NoDeadlockAndEveryObservationValid()
        {
            var world = new World();
            var stats = new List<long[]>();
            var bodies = new List<(string Name, Action Body)>();
            using var stop = new CancellationTokenSource();
            CancellationToken ct = stop.Token;

            void Add(string name, int seed, Action<Random, long[]> step)
            {
                long[] c = new long[(int)Stat.Count];
                stats.Add(c);
                var rng = new Random(seed);
                void Body()
                {
                    long i = 0;
                    try
                    {
                        for (; !ct.IsCancellationRequested; i++)
                        {
                            step(rng, c);
                        }
                    }
                    catch (Exception e)
                    {
                        throw new Exception($"iteration {i}: {e.GetType().Name}: {e.Message}", e);
                    }
                }

                bodies.Add((name, Body));
            }

            Add("host writer", Seed, world.HostWriterStep);
            Add("view operator", Seed + 1, world.ViewOperatorStep);
            for (int f = 0; f < FaultThreads; f++)
            {
                int first = f * (Vcpus / FaultThreads);
                Add($"fault thread {f}", Seed + 10 + f, (rng, c) => world.FaultStep(rng, c, first, Vcpus / FaultThreads));
            }

            for (int r = 0; r < Readers; r++)
            {
                Add($"reader {r}", Seed + 20 + r, world.ReaderStep);
            }

            var failures = new ConcurrentQueue<Exception>();
            var clock = Stopwatch.StartNew();
            stop.CancelAfter(s_duration);
            List<string> stuck = P2mTests.P2mConcurrencyTests.RunWithWatchdog(bodies, s_duration + s_watchdogGrace, failures, stop.Cancel);
            clock.Stop();
            if (stuck.Count != 0)
            {
                // The stuck threads may still be inside the domain: leave it and its memory alive.
                Assert.Fail($"deadlock: {string.Join(", ", stuck)} still running {clock.Elapsed.TotalSeconds:F1} s after the start "
                            + $"(duration {s_duration.TotalSeconds} s + grace {s_watchdogGrace.TotalSeconds} s).");
            }

            try
            {
                Assert.True(failures.IsEmpty, "A torture thread threw:\n" + string.Join("\n", failures));
                long Sum(Stat s) => stats.Sum(c => c[(int)s]);
                _output.WriteLine($"altp2m torture: {clock.Elapsed.TotalSeconds:F2} s, seed 0x{Seed:X}, {Readers} readers, {FaultThreads} fault threads");
                _output.WriteLine("  " + string.Join(", ", Enumerable.Range(0, (int)Stat.Count).Select(s => $"{(Stat)s} {Sum((Stat)s)}")));
                _output.WriteLine($"  view resets {world.D.Altp2m.ViewResets}, lost notifications {world.D.LostNotifications}, "
                                  + $"remap pairs recorded {world.RemapPairs}");

                Assert.True(world.ViolationCount == 0,
                    $"{world.ViolationCount} invalid observations during the run; first ones:\n" + string.Join("\n", world.Violations));

                world.VerifyQuiescent();
                Assert.True(world.ViolationCount == 0,
                    $"{world.ViolationCount} invalid entries once every thread had stopped; first ones:\n" + string.Join("\n", world.Violations));

                // The run must have exercised what it claims to.
                Assert.True(Sum(Stat.Translates) + Sum(Stat.Gets) >= 10_000, "Too few reader observations.");
                Assert.True(Sum(Stat.TranslateOkInViews) > 0, "No reader ever translated through an alternate view.");
                Assert.True(Sum(Stat.RemapSeen) > 0, "No reader ever saw a remapped GFN.");
                Assert.True(Sum(Stat.Remaps) > 0 && Sum(Stat.Undos) > 0, "ChangeGfn (and its undo) never ran.");
                Assert.True(Sum(Stat.Created) > 0 && Sum(Stat.Destroyed) > 0, "Views were never created and destroyed during the run.");
                Assert.True(Sum(Stat.FaultRetry) > 0, "No fault was resolved.");
                Assert.True(Sum(Stat.HostMap2M) > 0 && Sum(Stat.HostRemove4K) > 0 && Sum(Stat.HostRemerge2M) > 0, "The host writer did not run.");
                Assert.True(Sum(Stat.AuditedEntries) > 0, "The host writer never audited the views.");
                Assert.True(world.D.Altp2m.ViewResets > 0, "No host change ever reset a view.");

                // Nothing is left pending once no reader runs, and the domain gives back every frame.
                for (int v = 0; v < ViewCount; v++)
                {
                    if (world.D.Altp2m.IsActive(v))
                    {
                        P2m p = world.D.Altp2m.View(v);
                        Assert.True(p.PendingReclaimFrameCount >= 0);
                        Assert.Equal(0, P2mTests.P2mConcurrencyTests.ReclaimUntilEmpty(p));
                    }
                }

                world.D.Dispose();
                Assert.Equal(world.OwnFrames, world.Memory.AllocatedFrameCount);
            }
            finally
            {
                world.D.Dispose();
                world.Memory.Dispose();
            }
        }

        // ------------------------------------------------------------------------------------
        // The lock-order checker guards the altp2m paths
        // ------------------------------------------------------------------------------------

        [Fact]
        public void LockOrder_WrongOrderOnAltp2mPaths_ThrowsNamingBothLocks_AndChangesNothing()
        {
            Assert.True(OrderedLock.CheckOrder, "The lock-order checker must be on for the test run.");
            using var memory = new HostMemory(0x4000L << 12);
            using var d = new Domain(memory, new DomainOptions { Vcpus = 1, AltViews = 2 });
            d.HostP2m.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            Assert.Equal(P2mStatus.Ok, d.Altp2m.SetMemAccess(v, 0x234, P2mAccess.R));
            P2m view = d.Altp2m.View(v);
            P2mEntry host234 = d.HostP2m.GetEntry(0x234), host300 = d.HostP2m.GetEntry(0x300);
            P2mEntry view234 = view.GetEntry(0x234), view300 = view.GetEntry(0x300);
            string viewLock = $"'altp2m view {v}'";

            // View before host: a host write (which would propagate) under a view lock.
            InvalidOperationException e1;
            using (view.P2mLock.Enter())
            {
                e1 = Assert.Throws<InvalidOperationException>(
                    () => d.HostP2m.SetEntry(0x234, 0x1500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            }

            Assert.Contains("'host p2m'", e1.Message);
            Assert.Contains(viewLock, e1.Message);

            // View list before host: a view operation under the list lock.
            InvalidOperationException e2;
            using (d.Altp2m.ListLock.Enter())
            {
                e2 = Assert.Throws<InvalidOperationException>(() => d.Altp2m.SetMemAccess(v, 0x300, P2mAccess.RX));
            }

            Assert.Contains("'host p2m'", e2.Message);
            Assert.Contains("'altp2m list'", e2.Message);

            // View before view list: a switch under a view lock.
            InvalidOperationException e3;
            using (view.P2mLock.Enter())
            {
                e3 = Assert.Throws<InvalidOperationException>(() => d.Altp2m.Switch(d.Vcpus[0], v));
            }

            Assert.Contains("'altp2m list'", e3.Message);
            Assert.Contains(viewLock, e3.Message);

            // The fault handler under a view lock: it takes the host lock first.
            InvalidOperationException e4;
            using (view.P2mLock.Enter())
            {
                e4 = Assert.Throws<InvalidOperationException>(() => d.HandleEptViolation(d.Vcpus[0], 0x300000, AccessKind.Read, null));
            }

            Assert.Contains("'host p2m'", e4.Message);
            Assert.Contains(viewLock, e4.Message);

            // Re-entering the host lock (a host write from inside a host-locked section).
            using (d.HostP2m.P2mLock.Enter())
            {
                LockRecursionException e5 = Assert.Throws<LockRecursionException>(
                    () => d.HostP2m.SetEntry(0x300, 0x1600, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
                Assert.Contains("'host p2m'", e5.Message);
            }

            // Nothing changed, and the right order still works afterwards.
            Assert.Equal(host234, d.HostP2m.GetEntry(0x234));
            Assert.Equal(host300, d.HostP2m.GetEntry(0x300));
            Assert.Equal(view234, view.GetEntry(0x234));
            Assert.Equal(view300, view.GetEntry(0x300));
            Assert.Equal(0, d.Vcpus[0].View);
            using (d.HostP2m.P2mLock.Enter())
            using (d.Altp2m.ListLock.Enter())
            using (view.P2mLock.Enter())
            {
                Assert.True(view.P2mLock.IsHeldByCurrentThread);
            }

            d.HostP2m.SetEntry(0x234, 0x1500, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(0x1500UL, view.GetEntry(0x234).Mfn);      // propagated, under host -> list -> view
            Assert.Equal(P2mAccess.R, view.GetEntry(0x234).Access);
        }

        // ------------------------------------------------------------------------------------
        // The world the threads share
        // ------------------------------------------------------------------------------------

        private sealed class World
        {
            private readonly ConcurrentQueue<string> _violations = new();
            private readonly Lock _remapLock = new();
            private readonly Dictionary<(int View, ulong Gfn), HashSet<ulong>> _remaps = new();     // source -> targets
            private readonly Dictionary<ulong, HashSet<(int View, ulong Gfn)>> _remapSources = new();  // target -> sources, live views only
            private readonly List<(int View, ulong Gfn)> _recentRemaps = new();                    // view operator only
            private long _violationCount;
            private long _remapPairs;

            public World()
            {
                Memory = new HostMemory((PoolFrames + Vcpus + HeadroomFrames) << 12) { PoisonFreedFrames = true };
                Assert.Equal(0UL, Memory.AllocateFrames(PoolFrames + Vcpus));     // the pool, from MFN 0, aligned
                OwnFrames = Memory.AllocatedFrameCount;
                D = new Domain(Memory, new DomainOptions
                {
                    Vcpus = Vcpus,
                    AltViews = AltViews,
                    P2m = new P2mOptions { ExecutableSuperpages = false },     // an execute fault on a superpage shatters it
                });

                for (int b = 0; b < Blocks; b++)
                {
                    ulong g = WindowGfn + (ulong)b * Pages2M;
                    D.HostP2m.SetEntry(g, Frame(g, 0), PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                }

                for (int i = 0; i < Vcpus; i++)
                {
                    D.HostP2m.SetEntry(VeInfoGfn + (ulong)i, VeFrame(i), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    D.Vcpus[i].EnableVe(VeInfoGfn + (ulong)i);
                }

                for (int v = 0; v < MinActiveViews + 1; v++)
                {
                    D.Altp2m.CreateView();
                }

                for (int i = 0; i < Vcpus; i++)
                {
                    D.Altp2m.Switch(D.Vcpus[i], i % (MinActiveViews + 2));
                }
            }

            public HostMemory Memory { get; }

            public Domain D { get; }

            public long OwnFrames { get; }

            public long ViolationCount => Volatile.Read(ref _violationCount);

            public IEnumerable<string> Violations => _violations;

            public long RemapPairs => Volatile.Read(ref _remapPairs);

            private Altp2m Alt => D.Altp2m;

            private P2m Host => D.HostP2m;

            // ---- the frame pool ----------------------------------------------------------

            private static ulong Frame(ulong gfn, int version)
            {
                ulong rel = gfn - WindowGfn;
                return ((rel / Pages2M) * Versions + (ulong)version) * Pages2M + rel % Pages2M;
            }

            private static ulong VeFrame(int vcpu) => (ulong)PoolFrames + (ulong)vcpu;

            // The GFN a pool frame belongs to (whatever its version).
            private static bool Decode(ulong mfn, out ulong gfn)
            {
                gfn = 0;
                if (mfn >= (ulong)PoolFrames)
                {
                    return false;
                }

                gfn = WindowGfn + mfn / (Versions * Pages2M) * Pages2M + mfn % Pages2M;
                return true;
            }

            private static bool HasFrame(in P2mEntry e) => e.IsMapped && e.Mfn != Mfn.Invalid;

            private static bool InRange(ulong gfn, ulong first, ulong count) => gfn >= first && gfn - first < count;

            private static ulong RandomGfn(Random rng) => WindowGfn + (ulong)rng.NextInt64((long)WindowPages);

            private static ulong RandomProbeGfn(Random rng) => WindowGfn - Margin + (ulong)rng.NextInt64((long)(WindowPages + 2 * Margin));

            private static ulong RandomHotGfn(Random rng) => WindowGfn + WindowPages - HotTargets + (ulong)rng.NextInt64((long)HotTargets);

            private static ulong RandomTarget(Random rng) => rng.Next(10) == 0 ? RandomGfn(rng) : RandomHotGfn(rng);

            private static T Pick<T>(Random rng, T[] items) => items[rng.Next(items.Length)];

            private bool TryView(int view, out P2m p)
            {
                p = null!;
                if (!Alt.IsActive(view))
                {
                    return false;       // cheap answer; the exception below covers a destroy racing this check
                }

                try
                {
                    p = Alt.View(view);
                    return true;
                }
                catch (ArgumentException e) when (e.ParamName == "view" && view != 0)
                {
                    return false;
                }
            }

            // ---- remaps: every (view, old, new) ChangeGfn ever asked for ------------------

            private void RecordRemap(int view, ulong oldGfn, ulong newGfn)
            {
                lock (_remapLock)
                {
                    if (!_remaps.TryGetValue((view, oldGfn), out HashSet<ulong>? targets))
                    {
                        _remaps[(view, oldGfn)] = targets = new HashSet<ulong>();
                    }

                    if (!_remapSources.TryGetValue(newGfn, out HashSet<(int, ulong)>? sources))
                    {
                        _remapSources[newGfn] = sources = new HashSet<(int, ulong)>();
                    }

                    sources.Add((view, oldGfn));
                    if (targets.Add(newGfn))
                    {
                        _remapPairs++;
                    }
                }
            }

            // A view may show at `from` the frame of any GFN reachable through its remaps: a
            // remap copies the view's effective entry of the target, itself possibly a remap.
            private bool Reaches(int view, ulong from, ulong to)
            {
                lock (_remapLock)
                {
                    var seen = new HashSet<ulong> { from };
                    var queue = new Queue<ulong>();
                    queue.Enqueue(from);
                    while (queue.Count != 0)
                    {
                        if (!_remaps.TryGetValue((view, queue.Dequeue()), out HashSet<ulong>? targets))
                        {
                            continue;
                        }

                        foreach (ulong t in targets)
                        {
                            if (t == to)
                            {
                                return true;
                            }

                            if (seen.Add(t))
                            {
                                queue.Enqueue(t);
                            }
                        }
                    }

                    return false;
                }
            }

            // Every (view, source) whose remap may show the frame of a GFN in [first, first + count).
            private List<(int View, ulong Gfn)> SourcesInto(ulong first, ulong count)
            {
                lock (_remapLock)
                {
                    var seen = new HashSet<(int, ulong)>();
                    var queue = new Queue<(int View, ulong Gfn)>();
                    void Enqueue(HashSet<(int View, ulong Gfn)> sources, int onlyView)
                    {
                        foreach ((int View, ulong Gfn) s in sources)
                        {
                            if ((onlyView < 0 || s.View == onlyView) && seen.Add(s))
                            {
                                queue.Enqueue(s);
                            }
                        }
                    }

                    if (count == 1)
                    {
                        if (_remapSources.TryGetValue(first, out HashSet<(int View, ulong Gfn)>? direct))
                        {
                            Enqueue(direct, -1);
                        }
                    }
                    else
                    {
                        foreach ((ulong target, HashSet<(int View, ulong Gfn)> sources) in _remapSources)
                        {
                            if (InRange(target, first, count))
                            {
                                Enqueue(sources, -1);
                            }
                        }
                    }

                    var result = new List<(int View, ulong Gfn)>();
                    while (queue.Count != 0)
                    {
                        (int view, ulong gfn) = queue.Dequeue();
                        result.Add((view, gfn));
                        if (_remapSources.TryGetValue(gfn, out HashSet<(int View, ulong Gfn)>? further))
                        {
                            Enqueue(further, view);     // a chain stays inside one view
                        }
                    }

                    return result;
                }
            }

            // A destroyed view was emptied before DestroyView returned: its remaps need no more
            // auditing (readers keep the full history: one may still be inside the old tables).
            private void ForgetViewRemaps(int view)
            {
                lock (_remapLock)
                {
                    foreach (HashSet<(int View, ulong Gfn)> sources in _remapSources.Values)
                    {
                        sources.RemoveWhere(s => s.View == view);
                    }
                }
            }

            private void Report(string violation)
            {
                if (Interlocked.Increment(ref _violationCount) <= MaxViolationsKept)
                {
                    _violations.Enqueue(violation);
                }
            }

            // ---- 1. host writer ----------------------------------------------------------
            // The only thread that changes host frames (the others change accesses, split
            // superpages or copy host entries into views, all frame-preserving). So between two
            // of its writes the host's frames are fixed, and right after a write every view
            // entry showing the frame of a written GFN must show the host's current one: the
            // write propagated (or reset the view) under the host lock before SetEntry returned.

            public void HostWriterStep(Random rng, long[] c)
            {
                ulong g = rng.Next(4) == 0 ? RandomHotGfn(rng) : RandomGfn(rng);     // a hot spot where the remap targets are
                ulong block = g & ~(Pages2M - 1);
                int version = rng.Next(Versions);
                P2mAccess access = Pick(rng, s_hostAccesses);
                int r = rng.Next(100);
                if (r < 40)
                {
                    Host.SetEntry(g, Frame(g, version), PageOrder.Size4K, P2mType.RamRw, access);
                    c[(int)Stat.HostMap4K]++;
                    Audit(rng, g, 1, c);
                }
                else if (r < 52)
                {
                    Host.SetEntry(block, Frame(block, version), PageOrder.Size2M, P2mType.RamRw, access);
                    c[(int)Stat.HostMap2M]++;
                    Audit(rng, block, Pages2M, c);
                }
                else if (r < 80)
                {
                    Host.SetEntry(g, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                    c[(int)Stat.HostRemove4K]++;
                    Audit(rng, g, 1, c);
                }
                else if (r < 81)
                {
                    Host.SetEntry(block, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                    c[(int)Stat.HostRemove2M]++;
                    Audit(rng, block, Pages2M, c);
                }
                else if (r < 86)
                {
                    RemapThenRemerge(rng, c);
                }
                else
                {
                    // Access only: the frame stays.
                    P2mEntry e = Host.GetEntry(g);
                    if (HasFrame(e))
                    {
                        Host.SetEntry(g, e.Mfn, PageOrder.Size4K, P2mType.RamRw, access);
                        c[(int)Stat.HostAccess]++;
                        Audit(rng, g, 1, c);
                    }
                }
            }

            // A hot GFN gets a 4K frame of its own, a view remaps a GFN to it, and the host maps
            // the whole block as one superpage again keeping the block's first frame (a guest
            // collapsing a block back into a superpage): the remap target's frame changes, so the
            // view must be reset. Done in one thread so that nothing resets the view in between.
            private void RemapThenRemerge(Random rng, long[] c)
            {
                ulong target = RandomHotGfn(rng);
                ulong block = target & ~(Pages2M - 1);
                P2mEntry first = Host.GetEntry(block);
                int keep = HasFrame(first) && first.Mfn < (ulong)PoolFrames ? (int)(first.Mfn / Pages2M % Versions) : rng.Next(Versions);
                int other = (keep + 1 + rng.Next(Versions - 1)) % Versions;
                Host.SetEntry(target, Frame(target, other), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                c[(int)Stat.HostMap4K]++;
                Audit(rng, target, 1, c);

                int v = 1 + rng.Next(AltViews);
                ulong source = RandomGfn(rng);
                if (source == target || !TryView(v, out _))
                {
                    return;
                }

                RecordRemap(v, source, target);
                try
                {
                    CountStatus(Alt.ChangeGfn(v, source, target), c, Stat.WriterRemaps, $"ChangeGfn({v}, 0x{source:X}, 0x{target:X})");
                }
                catch (ArgumentException e) when (e.ParamName == "view")
                {
                    return;     // the view operator destroyed it meanwhile
                }

                Host.SetEntry(block, Frame(block, keep), PageOrder.Size2M, P2mType.RamRw, Pick(rng, s_hostAccesses));
                c[(int)Stat.HostRemerge2M]++;
                Audit(rng, block, Pages2M, c);
            }

            // Checks the views right after a host write of [first, first + count): every remap
            // that may lead into the range, and the GFNs' own entries (a sample of a superpage's;
            // the quiescent sweep reads them all).
            private void Audit(Random rng, ulong first, ulong count, long[] c)
            {
                Span<ulong> own = stackalloc ulong[AuditSample];
                int n = count == 1 ? 1 : AuditSample;
                for (int i = 0; i < n; i++)
                {
                    own[i] = count == 1 ? first : first + (ulong)rng.NextInt64((long)count);
                }

                for (int v = 1; v < ViewCount; v++)
                {
                    if (TryView(v, out P2m p))
                    {
                        foreach (ulong g in own[..n])
                        {
                            AuditEntry(v, p, g, first, count, c);
                        }
                    }
                }

                foreach ((int v, ulong g) in SourcesInto(first, count))
                {
                    if (TryView(v, out P2m p))
                    {
                        AuditEntry(v, p, g, first, count, c);
                    }
                }
            }

            private void AuditEntry(int v, P2m p, ulong g, ulong first, ulong count, long[] c)
            {
                P2mEntry e = p.GetEntry(g);
                c[(int)Stat.AuditedEntries]++;
                if (!HasFrame(e) || !Decode(e.Mfn, out ulong shown) || !InRange(shown, first, count))
                {
                    return;     // not the frame of a GFN just written (readers check the rest)
                }

                P2mEntry h = Host.GetEntry(shown);
                if (HasFrame(h) && h.Mfn == e.Mfn)
                {
                    return;
                }

                Report($"host writer: after writing GFNs 0x{first:X}+{count}, view {v} GFN 0x{g:X} reads {e} (the frame of GFN 0x{shown:X}) "
                       + $"but the host maps GFN 0x{shown:X} as {h}: "
                       + (shown == g ? "the host change was not propagated" : "a host change of a remap target did not reset the view"));
            }

            // ---- 2. view operator --------------------------------------------------------
            // The only thread that creates and destroys views, so IsActive is stable here: an
            // operation on an inactive view must throw, one on an active view must not.

            public void ViewOperatorStep(Random rng, long[] c)
            {
                int v = rng.Next(ViewCount);
                bool active = Alt.IsActive(v);
                ulong g = RandomGfn(rng);
                int r = rng.Next(100);
                if (r < 22)
                {
                    P2mAccess a = Pick(rng, s_viewAccesses);
                    if (!Inactive(active, c, () => Alt.SetMemAccess(v, g, a)))
                    {
                        CountStatus(Alt.SetMemAccess(v, g, a), c, Stat.SetMemAccess, $"SetMemAccess({v}, 0x{g:X}, {a})");
                    }
                }
                else if (r < 32)
                {
                    bool suppress = rng.Next(3) == 0;
                    if (!Inactive(active, c, () => Alt.SetSuppressVe(v, g, suppress)))
                    {
                        CountStatus(Alt.SetSuppressVe(v, g, suppress), c, Stat.SetSuppressVe, $"SetSuppressVe({v}, 0x{g:X}, {suppress})");
                    }
                }
                else if (r < 38)
                {
                    Query(v, active, g, c);
                }
                else if (r < 68)
                {
                    int av = 1 + rng.Next(AltViews);
                    ulong target = RandomTarget(rng);
                    if (target != g && !Inactive(Alt.IsActive(av), c, () => Alt.ChangeGfn(av, g, target)))
                    {
                        RecordRemap(av, g, target);     // before: a reader may see it as soon as it is written
                        if (CountStatus(Alt.ChangeGfn(av, g, target), c, Stat.Remaps, $"ChangeGfn({av}, 0x{g:X}, 0x{target:X})"))
                        {
                            _recentRemaps.Add((av, g));
                        }
                    }
                }
                else if (r < 78)
                {
                    if (_recentRemaps.Count != 0)
                    {
                        int k = rng.Next(_recentRemaps.Count);
                        (int uv, ulong ug) = _recentRemaps[k];
                        _recentRemaps[k] = _recentRemaps[^1];
                        _recentRemaps.RemoveAt(_recentRemaps.Count - 1);
                        if (!Inactive(Alt.IsActive(uv), c, () => Alt.ChangeGfn(uv, ug, Mfn.Invalid)))
                        {
                            CountStatus(Alt.ChangeGfn(uv, ug, Mfn.Invalid), c, Stat.Undos, $"ChangeGfn({uv}, 0x{ug:X}, INVALID)");
                        }
                    }
                }
                else if (r < 86)
                {
                    Vcpu cpu = D.Vcpus[rng.Next(Vcpus)];
                    if (!Inactive(active, c, () => Alt.Switch(cpu, v)))
                    {
                        Alt.Switch(cpu, v);
                        c[(int)Stat.Switches]++;
                    }
                }
                else if (r < 87)
                {
                    bool expect = v == 0 || (active && Alt.IsVisible(v));
                    if (Alt.SwitchAll(v) != expect)
                    {
                        Report($"SwitchAll({v}) answered {!expect} for an {(active ? "active" : "inactive")} view");
                    }

                    c[(int)Stat.SwitchAll]++;
                }
                else if (r < 90)
                {
                    bool visible = rng.Next(4) != 0;
                    if (v != 0 && !Inactive(active, c, () => Alt.SetVisibility(v, visible)))
                    {
                        Alt.SetVisibility(v, visible);
                        c[(int)Stat.Visibility]++;
                    }
                }
                else if (r < 92)
                {
                    CreateOrDestroy(rng, c);
                }
                else
                {
                    while (D.MemAccessEvents.TryRead(out MemAccessEvent ev))
                    {
                        if (ev.Kind != MemAccessEventKind.ViewReset)
                        {
                            Report($"unexpected event {ev.Kind} (no mem_access listener is attached)");
                        }

                        c[(int)Stat.Events]++;
                    }
                }
            }

            private void Query(int v, bool active, ulong g, long[] c)
            {
                if (Inactive(active, c, () => Alt.GetSuppressVe(v, g, out _)))
                {
                    Assert.Throws<ArgumentException>("view", () => Alt.GetMemAccess(v, g, out _));
                    Assert.Throws<ArgumentException>("view", () => Alt.RemappedRange(v));
                    return;
                }

                CountStatus(Alt.GetSuppressVe(v, g, out _), c, Stat.Queries, "GetSuppressVe");
                CountStatus(Alt.GetMemAccess(v, g, out P2mAccess seen), c, Stat.Queries, "GetMemAccess");
                if (seen is P2mAccess.W or P2mAccess.WX or P2mAccess.RX2RW or P2mAccess.N2RWX or P2mAccess.R_PW)
                {
                    Report($"GetMemAccess({v}, 0x{g:X}) answered {seen}, an access no one set");
                }

                (ulong min, ulong max) = Alt.RemappedRange(v);
                if (min <= max && (min < WindowGfn || max >= WindowGfn + WindowPages))
                {
                    Report($"RemappedRange({v}) = [0x{min:X}, 0x{max:X}] leaves the window");
                }
            }

            private void CreateOrDestroy(Random rng, long[] c)
            {
                int active = Alt.ActiveViewCount;
                if (active < AltViews && (active <= MinActiveViews || rng.Next(2) == 0))
                {
                    P2mAccess a = Pick(rng, s_viewAccesses);
                    int created;
                    if (rng.Next(2) == 0)
                    {
                        created = Alt.CreateView(a);
                    }
                    else
                    {
                        created = Pick(rng, Enumerable.Range(1, AltViews).Where(i => !Alt.IsActive(i)).ToArray());
                        Alt.CreateViewAt(created, a);
                    }

                    if (!Alt.IsActive(created) || Alt.DefaultAccess(created) != a || Alt.RemappedRange(created) != (ulong.MaxValue, 0UL))
                    {
                        Report($"view {created} created with {a} reads active={Alt.IsActive(created)}, "
                               + $"default {Alt.DefaultAccess(created)}, remapped range {Alt.RemappedRange(created)}");
                    }

                    c[(int)Stat.Created]++;
                    return;
                }

                int v = Pick(rng, Enumerable.Range(1, AltViews).Where(Alt.IsActive).ToArray());
                foreach (Vcpu cpu in D.Vcpus)
                {
                    if (cpu.View == v)
                    {
                        Alt.Switch(cpu, 0);
                    }
                }

                try
                {
                    Alt.DestroyView(v);
                    c[(int)Stat.Destroyed]++;
                    if (Alt.IsActive(v))
                    {
                        Report($"view {v} still active after DestroyView");
                    }

                    _recentRemaps.RemoveAll(x => x.View == v);
                    ForgetViewRemaps(v);
                }
                catch (InvalidOperationException e) when (e.Message.Contains("is in use by vCPU", StringComparison.Ordinal))
                {
                    c[(int)Stat.DestroyInUse]++;     // a fault thread switched a vCPU onto it meanwhile
                }
            }

            // True (after checking that it throws as documented) when the view is inactive.
            private static bool Inactive(bool active, long[] c, Action op)
            {
                if (active)
                {
                    return false;
                }

                Assert.Throws<ArgumentException>("view", op);
                c[(int)Stat.InactiveViewOps]++;
                return true;
            }

            private static bool CountStatus(P2mStatus st, long[] c, Stat stat, string what)
            {
                if (st is not (P2mStatus.Ok or P2mStatus.NoEntry))
                {
                    throw new Xunit.Sdk.XunitException($"{what} answered {st}; only Ok or NoEntry are possible on RamRw-only memory");
                }

                c[(int)(st == P2mStatus.Ok ? stat : Stat.NoEntry)]++;
                return st == P2mStatus.Ok;
            }

            // ---- 3. fault threads ----------------------------------------------------------

            public void FaultStep(Random rng, long[] c, int firstVcpu, int vcpus)
            {
                int id = firstVcpu + rng.Next(vcpus);
                Vcpu cpu = D.Vcpus[id];
                if (rng.Next(4) == 0)
                {
                    int v = rng.Next(ViewCount);
                    try
                    {
                        Alt.Switch(cpu, v);
                    }
                    catch (ArgumentException e) when (e.ParamName == "view" && v != 0)
                    {
                        c[(int)Stat.FaultSwitchInactive]++;   // destroyed meanwhile
                    }
                }

                ulong gpa = (RandomProbeGfn(rng) << 12) | (uint)rng.Next(4096);
                AccessKind kind = Pick(rng, s_kinds);
                ulong? gla = rng.Next(2) == 0 ? null : 0x7FFF_0000_0000UL + gpa;
                FaultOutcome o = D.HandleEptViolation(cpu, gpa, kind, gla);
                c[(int)Stat.Faults]++;
                switch (o)
                {
                    case FaultOutcome.Retry:
                        c[(int)Stat.FaultRetry]++;
                        break;
                    case FaultOutcome.Unhandled:
                        c[(int)Stat.FaultUnhandled]++;
                        break;
                    case FaultOutcome.VirtualizationException:
                        c[(int)Stat.FaultVe]++;
                        int vector = cpu.TakePendingVector();
                        if (vector != Domain.VeVector)
                        {
                            Report($"#VE delivered to vCPU {id} but its pending vector is {vector}");
                        }

                        // The guest consumes the #VE: release the information page's semaphore.
                        Memory.WriteUInt64(VeFrame(id) << 12, 0);
                        break;
                    default:
                        // No MMIO, no listener (violations relax and retry), RamRw only.
                        Report($"fault at 0x{gpa:X} ({kind}) on vCPU {id} (view {cpu.View}) answered {o}");
                        break;
                }

                if (cpu.IsPaused || D.IsCrashed)
                {
                    Report($"vCPU {id} paused={cpu.IsPaused}, domain crashed={D.IsCrashed} ({D.CrashReason}) with no listener attached");
                }
            }

            // ---- 4. lock-free readers ------------------------------------------------------

            public void ReaderStep(Random rng, long[] c)
            {
                int v = rng.Next(ViewCount);
                if (!TryView(v, out P2m p))
                {
                    c[(int)Stat.ViewGone]++;
                    return;
                }

                for (int i = 0; i < 16; i++)
                {
                    ulong g = RandomProbeGfn(rng);
                    ulong gpa = (g << 12) | (uint)rng.Next(4096);
                    AccessKind kind = Pick(rng, s_kinds);
                    EptTranslation t = p.Translate(gpa, kind);
                    c[(int)Stat.Translates]++;
                    CheckTranslation(v, g, gpa, kind, t, c, "reader");

                    P2mEntry e = p.GetEntry(g);
                    c[(int)Stat.Gets]++;
                    if (e.IsMapped)
                    {
                        c[(int)Stat.GetMapped]++;
                        CheckEntry(v, g, e, "reader");
                    }
                }
            }

            private void CheckTranslation(int v, ulong g, ulong gpa, AccessKind kind, EptTranslation t, long[]? c, string who)
            {
                if (t.Status == EptStatus.Violation)
                {
                    return;
                }

                string what = $"{who}: view {v} Translate(0x{gpa:X}, {kind}) = {t}";
                if (t.Status != EptStatus.Ok)
                {
                    Report(what + ": only Ok or Violation are valid");
                    return;
                }

                if ((t.Hpa & 0xFFF) != (gpa & 0xFFF) || !Decode(t.Hpa >> 12, out ulong shown))
                {
                    Report(what + ": not a pool frame at the GPA's page offset");
                    return;
                }

                if (t.Level is not (1 or 2))
                {
                    Report(what + ": the leaf must be a PTE (4K) or a PDE (2M)");
                    return;
                }

                if (shown != g && (v == 0 || t.Level != 1 || !Reaches(v, g, shown)))
                {
                    Report(what + $": the frame of GFN 0x{shown:X}, and no remap of view {v} leads there");
                    return;
                }

                if (c is not null)
                {
                    c[(int)Stat.TranslateOk]++;
                    c[(int)Stat.TranslateOkInViews] += v != 0 ? 1 : 0;
                    c[(int)Stat.RemapSeen] += shown != g ? 1 : 0;
                    c[(int)Stat.SuperpageSeen] += t.Level == 2 ? 1 : 0;
                }
            }

            private void CheckEntry(int v, ulong g, in P2mEntry e, string who)
            {
                string what = $"{who}: view {v} GetEntry(0x{g:X}) = {e}";
                if (e.Type != P2mType.RamRw || e.Order is not (0 or 9) || !Decode(e.Mfn, out ulong shown))
                {
                    Report(what + ": only RamRw 4K/2M pool frames are ever mapped");
                    return;
                }

                if (e.Access is not (P2mAccess.N or P2mAccess.R or P2mAccess.RW or P2mAccess.X or P2mAccess.RX or P2mAccess.RWX))
                {
                    Report(what + ": an access no one set (nor the stricter of two set ones)");
                }

                if (shown != g && (v == 0 || e.Order != 0 || !Reaches(v, g, shown)))
                {
                    Report(what + $": the frame of GFN 0x{shown:X}, and no remap of view {v} leads there");
                }
            }

            // ---- after the run -------------------------------------------------------------

            // Every thread has stopped. Host entries name their own GFN's frames; a view entry
            // naming its own GFN's frame names the host's current one (propagation kept it in
            // sync, a removal removed it), and a remap names the host's current frame of the GFN
            // it leads to (a host change of a remap target resets the view).
            public void VerifyQuiescent()
            {
                for (ulong g = WindowGfn - Margin; g < WindowGfn + WindowPages + Margin; g++)
                {
                    P2mEntry h = Host.GetEntry(g);
                    if (h.IsMapped)
                    {
                        CheckEntry(0, g, h, "quiescent");
                    }

                    ulong gpa = (g << 12) | 0x5A8UL;
                    CheckTranslation(0, g, gpa, AccessKind.Read, Host.Translate(gpa, AccessKind.Read), null, "quiescent");
                }

                for (int v = 1; v < ViewCount; v++)
                {
                    if (!TryView(v, out P2m p))
                    {
                        continue;
                    }

                    for (ulong g = WindowGfn - Margin; g < WindowGfn + WindowPages + Margin; g++)
                    {
                        P2mEntry e = p.GetEntry(g);
                        ulong gpa = (g << 12) | 0x5A8UL;
                        EptTranslation t = p.Translate(gpa, AccessKind.Read);
                        CheckTranslation(v, g, gpa, AccessKind.Read, t, null, "quiescent");
                        if (!e.IsMapped)
                        {
                            if (t.Status == EptStatus.Ok)
                            {
                                Report($"quiescent: view {v} GFN 0x{g:X} translates ({t}) but GetEntry reads a hole");
                            }

                            continue;
                        }

                        CheckEntry(v, g, e, "quiescent");
                        if (t.Status == EptStatus.Ok && t.Hpa >> 12 != e.Mfn)
                        {
                            Report($"quiescent: view {v} GFN 0x{g:X} translates to {t} but GetEntry reads {e}");
                        }

                        if (!Decode(e.Mfn, out ulong shown))
                        {
                            continue;
                        }

                        P2mEntry h = Host.GetEntry(shown);
                        if (HasFrame(h) && h.Mfn == e.Mfn)
                        {
                            continue;
                        }

                        if (shown == g)
                        {
                            Report($"quiescent: view {v} GFN 0x{g:X} reads {e}, the host {h}: a host change was not propagated");
                        }
                        else
                        {
                            Report($"quiescent: view {v} remaps GFN 0x{g:X} to frame 0x{e.Mfn:X} of GFN 0x{shown:X}, which the host maps as {h}: "
                                   + "a host change of a remap target did not reset the view");
                        }
                    }
                }
            }
        }
    }
}

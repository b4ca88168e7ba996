// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
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
    public sealed partial class Altp2mTortureTests
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
            Violations,
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
                int rightsChecked = world.VerifyRights();
                Assert.True(world.ViolationCount == 0,
                    $"{world.ViolationCount} rights beyond the view's or the host's access; first ones:\n" + string.Join("\n", world.Violations));
                Assert.True(rightsChecked >= 4, $"the rights of only {rightsChecked} GFNs could be checked after the run");
                Assert.True(Sum(Stat.Violations) > 0, "No reader ever saw an EPT violation.");

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
                        Assert.Equal(0, P2mTests.P2mConcurrencyTests.ReclaimUntilEmpty(p));
                        Assert.Equal(0, p.PendingReclaimFrameCount);
                        // Every table frame the view counts is reachable from its root, and no more.
                        Assert.Equal(ReachableTables.Count(world.Memory, p.RootMfn, p.Levels), p.TableFrameCount);
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
        // The world the threads share
        // ------------------------------------------------------------------------------------

        private sealed partial class World
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

            private void Report(string violation)
            {
                if (Interlocked.Increment(ref _violationCount) <= MaxViolationsKept)
                {
                    _violations.Enqueue(violation);
                }
            }
        }
    }
}

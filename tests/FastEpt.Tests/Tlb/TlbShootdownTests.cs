// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// The TLB shootdown (docs/concurrency.md, "The combined TLB"): p2m writers and view switches
    /// on other threads mark attached TLBs stale, so a hit tests one word of the TLB's own. These
    /// tests take the cross-thread side: a switch made on another thread is seen by the first
    /// lookup after it returns, even when the vCPU creates its TLB during the switch, and the
    /// p2m's list of TLBs keeps none of them alive.
    /// </summary>
    public sealed class TlbShootdownTests
    {
        private const PageFaultErrorCode Write = PageFaultErrorCode.Write;
        private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

        // View 1 lets the guest read page 9 but not write it; view 0 lets it write.
        private static int MakeReadOnlyView(LinearTlbGuest g)
        {
            Altp2m alt = g.Domain.Altp2m;
            int view = alt.CreateView();
            foreach (ulong gfn in g.Tables.TableGfns.Append(FirstDataGfn + 9))
            {
                Assert.Equal(P2mStatus.Ok, alt.SetMemAccess(view, gfn, P2mAccess.RWX));
            }

            Assert.Equal(P2mStatus.Ok, alt.SetMemAccess(view, FirstDataGfn + 9, P2mAccess.R));
            return view;
        }

        [Fact]
        public async Task ViewSwitch_OnAnotherThreadWhileTheTlbIsCreated_FirstLookupAfterItIsInTheNewView()
        {
            // Each round a fresh vCPU creates its TLB (and fills view 0's entry) while another
            // thread switches it to the read-only view; once the switch has returned, the next
            // write must be refused. A switch that reached the view field but not the TLB (or a
            // TLB that read the view before it was published and was never told) would keep
            // answering from view 0's entry. Even rounds switch only after the vCPU has looked
            // up once (the TLB exists and holds view 0's entry); odd rounds after a short spin
            // of their own, so the switch lands anywhere in the TLB's creation.
            for (int round = 0; round < 40; round++)
            {
                using var g = new LinearTlbGuest();
                int view = MakeReadOnlyView(g);
                using var start = new Barrier(2);
                int switched = 0, looked = 0;
                Task vcpu = Task.Factory.StartNew(() =>
                {
                    start.SignalAndWait();
                    while (true)
                    {
                        bool after = Volatile.Read(ref switched) != 0;
                        GuestStatus s = g.Cpu.TranslateLinearCached(PageGla(9), Write).Status;
                        if (after)
                        {
                            Assert.Equal(GuestStatus.EptViolation, s);
                            return;
                        }

                        Assert.True(s is GuestStatus.Ok or GuestStatus.EptViolation, $"status {s}");
                        Volatile.Write(ref looked, 1);
                    }
                }, TaskCreationOptions.LongRunning);
                Task monitor = Task.Factory.StartNew(() =>
                {
                    start.SignalAndWait();
                    if (round % 2 == 0)
                    {
                        while (Volatile.Read(ref looked) == 0 && !vcpu.IsCompleted)
                        {
                            Thread.SpinWait(20);
                        }
                    }
                    else
                    {
                        Thread.SpinWait(round * 37 % 500);
                    }

                    g.Domain.Altp2m.Switch(g.Cpu, view);
                    Volatile.Write(ref switched, 1);
                }, TaskCreationOptions.LongRunning);
                await Task.WhenAll(vcpu, monitor).WaitAsync(Deadline);     // watchdog: a hang fails with TimeoutException
            }
        }

        [Fact]
        public async Task ViewSwitch_PingPongAcrossThreads_EveryLookupSeesTheViewOfItsPhase()
        {
            // A monitor thread switches the vCPU back and forth; after each switch it publishes
            // the phase and waits until the vCPU thread has looked up in it. Both views' entries
            // stay cached throughout (the TLB keeps each view's), so only the stale flag stands
            // between a lookup and the other view's answer.
            using var g = new LinearTlbGuest();
            int view = MakeReadOnlyView(g);
            const int Phases = 2000;
            int phase = -1, seen = -1;
            Task vcpu = Task.Factory.StartNew(() =>
            {
                for (int k = 0; k < Phases; k++)
                {
                    while (Volatile.Read(ref phase) != k)
                    {
                        Thread.SpinWait(20);
                    }

                    GuestStatus expected = k % 2 == 1 ? GuestStatus.EptViolation : GuestStatus.Ok;
                    for (int i = 0; i < 3; i++)
                    {
                        Assert.Equal(expected, g.Cpu.TranslateLinearCached(PageGla(9), Write).Status);
                    }

                    Volatile.Write(ref seen, k);
                }
            }, TaskCreationOptions.LongRunning);
            Task monitor = Task.Factory.StartNew(() =>
            {
                for (int k = 0; k < Phases && !vcpu.IsCompleted; k++)
                {
                    g.Domain.Altp2m.Switch(g.Cpu, k % 2 == 1 ? view : 0);
                    Volatile.Write(ref phase, k);
                    while (Volatile.Read(ref seen) != k && !vcpu.IsCompleted)
                    {
                        Thread.SpinWait(20);
                    }
                }
            }, TaskCreationOptions.LongRunning);
            await Task.WhenAll(vcpu, monitor).WaitAsync(Deadline);     // watchdog: a hang fails with TimeoutException
            Assert.True(g.Tlb.Misses < 3L * Phases, $"{g.Tlb.Misses} misses: the TLB kept no view's entries across switches");
        }

        [Fact]
        public void Registry_HoldsTlbsWeakly_AndDropsCollectedOnesAtTheNextAttach()
        {
            using var memory = new HostMemory(64L << 20);
            using var p2m = new P2m(memory);
            ulong mfn = memory.AllocateFrames(2);
            p2m.SetEntry(5, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            WeakReference[] gone = AttachAndDrop(p2m, 50);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            Assert.All(gone, w => Assert.False(w.IsAlive, "the p2m kept a TLB nobody uses alive"));

            // An invalidating write with only collected TLBs in the list, then a new attach prunes them.
            p2m.SetEntry(5, mfn + 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            Assert.Equal(1, p2m.AttachedTlbCount);
            Assert.Equal((mfn + 1) << 12, tlb.Translate(5UL << 12, AccessKind.Read).Hpa);
            p2m.SetEntry(5, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(mfn << 12, tlb.Translate(5UL << 12, AccessKind.Read).Hpa);    // told, though the list was rebuilt
            GC.KeepAlive(tlb);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static WeakReference[] AttachAndDrop(P2m p2m, int count)
        {
            var refs = new WeakReference[count];
            var alive = new SoftTlb[count];     // all alive until counted (a collection may run meanwhile)
            for (int i = 0; i < count; i++)
            {
                alive[i] = new SoftTlb(p2m);
                alive[i].Translate(5UL << 12, AccessKind.Read);
                refs[i] = new WeakReference(alive[i]);
            }

            Assert.Equal(count, p2m.AttachedTlbCount);
            GC.KeepAlive(alive);
            return refs;
        }
    }
}

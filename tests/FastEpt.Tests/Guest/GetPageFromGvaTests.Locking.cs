// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.Guest
{
    public sealed partial class GetPageFromGvaTests
    {
        [Fact]
        public async Task SeedScenario_WriterQueuedWhileTheFastPathHoldsTheReadLock_FallbackCompletes()
        {
            // docs/model/mem-access.md §5.5: writer-preferring lock, a writer queued, mem_access on, a GVA whose fast
            // translation fails. The fallback reads guest page tables through an accessor that takes
            // the read lock itself; it must not still hold it (Xen before 0012ae8afb did: deadlock).
            // Not `using`: after a deadlock, disposing would wait for the stuck reader forever; the
            // guest is disposed only once every thread has finished.
            TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.N);
            OrderedLock hostLock = g.Domain.HostP2m.P2mLock;
            ulong spareMfn = g.Memory.AllocateFrame();
            Task? writer = null;
            int hookRuns = 0, readersSeenInHook = -1;
            g.Cpu.AfterFastPathFailed = () =>
            {
                hookRuns++;
                readersSeenInHook = hostLock.Readers;
                // A 4K write holds the host lock shared (parallel writers), so the queued writer is
                // an operation that takes it exclusive (ResolveMisconfig), followed by the write.
                writer = Task.Run(() =>
                {
                    g.Domain.HostP2m.ResolveMisconfig(0x300);
                    g.Domain.HostP2m.SetEntry(0x300, spareMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                });
                var sw = System.Diagnostics.Stopwatch.StartNew();
                while (hostLock.WritersWaiting == 0)
                {
                    Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), "the writer never queued");
                    Thread.Yield();
                }
            };

            // Watchdog: a deadlock fails the test instead of hanging the run.
            Task<(GuestPageStatus, bool, ulong)> reader = Task.Run(() =>
            {
                using GuestPage p = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);
                return (p.Status, p.ViaMemAccess, p.Mfn);
            });
            Task all = Task.WhenAll(reader, Task.Run(async () =>
            {
                while (Volatile.Read(ref writer) is null && !reader.IsCompleted)
                {
                    await Task.Delay(1);
                }

                await (Volatile.Read(ref writer) ?? Task.CompletedTask);
            }));
            bool finished = await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30))) == all;
            Assert.True(finished, "deadlock: the get-page fallback or the queued writer never finished");
            using (g)
            {
                (GuestPageStatus status, bool via, ulong mfn) = await reader;
                Assert.Equal(1, hookRuns);
                Assert.Equal(1, readersSeenInHook);                 // the fast path held the read lock
                Assert.Equal(GuestPageStatus.Ok, status);
                Assert.True(via);
                Assert.Equal(DataMfn(g), mfn);
                Assert.Equal(spareMfn, g.Domain.HostP2m.GetEntry(0x300).Mfn);
                Assert.Equal(0, hostLock.Readers);
            }
        }

        [Fact]
        public void OldDesign_ReadLockHeldAcrossTheSoftwareWalk_CheckerThrows()
        {
            // The pre-2018 shape: the fallback ran with the fast path's read lock still held. The
            // accessor asserts no lock is held, and the checker refuses the recursive read itself.
            using TwoDimensionalGuest g = new(ad: false);
            Assert.True(OrderedLock.CheckOrder, "The lock-order checker must be on for the test run.");
            OrderedLock hostLock = g.Domain.HostP2m.P2mLock;
            ulong pteGpa = g.EntryGpa(1);

            using (hostLock.EnterRead())
            {
                LockRecursionException accessor = Assert.Throws<LockRecursionException>(() => g.Cpu.TryReadGuestUInt64(0, pteGpa, out _));
                Assert.Contains("'host p2m' (read", accessor.Message);
                LockRecursionException recursive = Assert.Throws<LockRecursionException>(() => { using (hostLock.EnterRead()) { } });
                Assert.Contains("'host p2m'", recursive.Message);
            }

            Assert.True(g.Cpu.TryReadGuestUInt64(0, pteGpa, out ulong pte));
            Assert.Equal(g.ReadEntry(1), pte);
        }
    }
}

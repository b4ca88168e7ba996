// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mConcurrencyTests
    {
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
    }
}

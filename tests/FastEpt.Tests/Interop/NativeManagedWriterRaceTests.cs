// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>
    /// A native writer (<see cref="NativeWalker.SetEntry"/> on a walker bound to the p2m) and a
    /// managed writer on one p2m at once, with a lock-free reader: both take the same region
    /// locks, so their writes to different 2 MiB regions interleave freely (racing for the upper
    /// slots and new tables they share) while every read and the final tables stay exact.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class NativeManagedWriterRaceTests
    {
        private const int RegionsPerWriter = 24;
        private const int Rounds = 20_000;
        private const ulong FirstRegion = 0x40;      // region r covers GFNs (FirstRegion + r) << 9

        [Fact]
        public void NativeAndManagedWriters_OnInterleavedRegions_FinalTablesExactAndReadsExplained()
        {
            using var memory = new HostMemory(256L << 20);
            using var p2m = new P2m(memory);
            var native = new NativeWalker(p2m);
            ulong raw = memory.AllocateFrames(2 * RegionsPerWriter * 512 + 511);
            ulong pool = (raw + 511) & ~511UL;     // 2 MiB-aligned, for the 2M pages
            long guestFrames = memory.AllocatedFrameCount - p2m.TableFrameCount;

            // Writer w owns the regions r with r % 2 == w, so the two interleave inside one 1G
            // range and share every upper table. Each region's frames come from its own slice of
            // the pool, and a GFN only ever maps the frame of its own index in that slice.
            ulong Frame(int region, ulong index) => pool + ((ulong)region << 9) + index;
            ulong Gfn(int region, ulong index) => ((FirstRegion + (ulong)region) << 9) + index;

            var finals = new (bool Mapped, bool Super)[2 * RegionsPerWriter];
            var stop = new CancellationTokenSource();
            var failures = new ConcurrentQueue<string>();
            long reads = 0;

            void Writer(int w)
            {
                var random = new Random(100 + w);
                for (int round = 0; round < Rounds; round++)
                {
                    int region = 2 * random.Next(RegionsPerWriter) + w;
                    ulong index = (ulong)random.Next(512);
                    Action<ulong, ulong, PageOrder, P2mType, P2mAccess> set = w == 0
                        ? (g, m, o, t, a) => native.SetEntry(g, m, o, t, a)
                        : (g, m, o, t, a) => p2m.SetEntry(g, m, o, t, a);
                    switch (random.Next(4))
                    {
                        case 0:     // a 2M page over whatever was there (retires a 4K table)
                            set(Gfn(region, 0), Frame(region, 0), PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                            finals[region] = (true, true);
                            break;
                        case 1:     // the region removed whole
                            set(Gfn(region, 0), Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                            finals[region] = (false, false);
                            break;
                        default:    // one 4K page mapped to its own frame (splits a 2M page, or builds a table)
                            set(Gfn(region, index), Frame(region, index), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                            finals[region] = (true, false);

                            break;
                    }
                }
            }

            var reader = new Thread(() =>
            {
                var random = new Random(7);
                while (!stop.IsCancellationRequested)
                {
                    int region = random.Next(2 * RegionsPerWriter);
                    ulong index = (ulong)random.Next(512);
                    EptTranslation t = p2m.Translate((Gfn(region, index) << 12) | 0x18, AccessKind.Read);
                    if (t.Status == EptStatus.Ok && t.Hpa != ((Frame(region, index) << 12) | 0x18))
                    {
                        failures.Enqueue($"GFN 0x{Gfn(region, index):X} read HPA 0x{t.Hpa:X}, which no writer ever mapped there");
                    }
                    else if (t.Status == EptStatus.Misconfig)
                    {
                        failures.Enqueue($"GFN 0x{Gfn(region, index):X} read a misconfiguration (a half-built entry)");
                    }

                    reads++;
                }
            })
            { IsBackground = true, Name = "reader" };
            reader.Start();
            Exception? nativeFailure = null, managedFailure = null;
            var threads = new[]
            {
                new Thread(() => { try { Writer(0); } catch (Exception e) { nativeFailure = e; } }) { IsBackground = true, Name = "native writer" },
                new Thread(() => { try { Writer(1); } catch (Exception e) { managedFailure = e; } }) { IsBackground = true, Name = "managed writer" },
            };
            foreach (Thread t in threads)
            {
                t.Start();
            }

            foreach (Thread t in threads)
            {
                Assert.True(t.Join(TimeSpan.FromSeconds(60)), $"{t.Name} did not finish (watchdog)");
            }

            stop.Cancel();
            Assert.True(reader.Join(TimeSpan.FromSeconds(30)), "the reader did not finish (watchdog)");
            Assert.Null(nativeFailure);
            Assert.Null(managedFailure);
            Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
            Assert.True(reads > 0);

            // Every region ends as its own writer left it: a 2M page of its slice, nothing, or
            // 4K pages each naming its own frame (a 4K page over a removed region builds a table).
            for (int region = 0; region < 2 * RegionsPerWriter; region++)
            {
                P2mEntry first = p2m.GetEntry(Gfn(region, 0));
                if (finals[region].Super)
                {
                    Assert.True(first.IsMapped && first.Order == (int)PageOrder.Size2M && first.Mfn == Frame(region, 0), $"region {region}: {first}");
                }
                else
                {
                    for (ulong index = 0; index < 512; index++)
                    {
                        P2mEntry e = p2m.GetEntry(Gfn(region, index));
                        Assert.True(!e.IsMapped || (e.Order == (int)PageOrder.Size4K && e.Mfn == Frame(region, index)), $"region {region} index {index}: {e}");
                    }
                }
            }

            // No table leaked or lost between the two writers' bookkeeping.
            P2mTests.P2mConcurrencyTests.ReclaimUntilEmpty(p2m);
            Assert.Equal(ReachableTables.Count(memory, p2m.RootMfn, p2m.Levels), p2m.TableFrameCount);
            Assert.Equal(guestFrames + p2m.TableFrameCount + p2m.PendingReclaimFrameCount, memory.AllocatedFrameCount);
        }
    }
}

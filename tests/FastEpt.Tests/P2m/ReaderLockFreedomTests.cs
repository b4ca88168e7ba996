// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.Reflection;
using FastEpt.Interop;
using FastEpt.Internal;
using FastEpt.Tests.Guest;
using Xunit.Abstractions;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Readers take no lock, ever (docs/architecture.md, concurrency): while another thread holds
    /// each lock a reader could reach (every <see cref="OrderedLock"/> of the p2ms, their PoD
    /// caches, host memory, the domain, its altp2m list and vCPU, and every static one: the TLB
    /// and epoch registries), one reader thread runs every kind of read, each under a watchdog.
    /// A read that waits for the held lock fails the test within seconds, naming the reader and
    /// the lock.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]     // it holds process-wide locks
    public sealed class ReaderLockFreedomTests
    {
        private readonly ITestOutputHelper _output;

        public ReaderLockFreedomTests(ITestOutputHelper output) => _output = output;

        private static readonly TimeSpan s_watchdog = TimeSpan.FromSeconds(5);
        private const int Regions = 2200;               // one 4K page in each of 2200 2 MiB regions: > 8 MiB of tables
        private const ulong FirstRegion = 16;            // above the guest's 4 MiB of RAM

        [Fact]
        public void EveryReader_CompletesWhileAnyLockIsHeldExclusively()
        {
            using var world = new TwoDimensionalGuest(ad: false);
            P2m p2m = world.Domain.HostP2m;
            for (ulong r = 0; r < Regions; r++)
            {
                p2m.SetEntry((FirstRegion + r) << 9, world.RamMfn + (r & 0xFF), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            Assert.True(p2m.TableFrameCount * 4096 > P2m.CacheResidentTableBytes, "the tables must exceed the cache-resident size");
            using var adMemory = new HostMemory(16L << 20);
            using var adP2m = new P2m(adMemory, new P2mOptions { AccessDirty = true });
            ulong adMfn = adMemory.AllocateFrames(512);
            for (ulong g = 0; g < 512; g++)
            {
                adP2m.SetEntry(g, adMfn + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            var random = new Random(7);
            ulong[] scattered = Enumerable.Range(0, 4096)
                .Select(_ => ((FirstRegion + (ulong)random.Next(Regions)) << 21) | (uint)random.Next(4096)).ToArray();
            ulong[] adGpas = Enumerable.Range(0, 64).Select(i => ((ulong)(i * 7 % 512) << 12) | 0x10).ToArray();
            ulong[] glas = Enumerable.Range(0, 64).Select(i => TwoDimensionalGuest.Gla + (ulong)(i * 8)).ToArray();
            var results = new EptTranslation[scattered.Length];
            var guestResults = new GuestTranslation[glas.Length];
            var tlb = new SoftTlb(p2m, 16);
            var native = new NativeWalker(p2m);
            var nativeAd = new NativeWalker(adP2m);
            Vcpu cpu = world.Cpu;

            var readers = new List<(string Name, Action Read)>
            {
                ("P2m.Translate", () => Ok(p2m.Translate(scattered[0], AccessKind.Read))),
                ("P2m.Translate (A/D)", () => Ok(adP2m.Translate(adGpas[1], AccessKind.Write))),
                ("P2m.GetEntry", () => Assert.True(p2m.GetEntry(scattered[1] >> 12).IsMapped)),
                ("P2m.ResolveBatchPath (4096, Auto)", () => Assert.Equal(BatchPath.Pipelined, p2m.ResolveBatchPath(BatchPath.Auto, scattered))),
                ("P2m.TranslateBatch (32, public)", () => Batch(p2m.TranslateBatch(scattered.AsSpan(0, 32), AccessKind.Read, results), 32, results)),
                ("P2m.TranslateBatch (A/D, 64)", () => Batch(adP2m.TranslateBatch(adGpas, AccessKind.Write, results), 64, results)),
                ("SoftTlb.Translate", () => Ok(tlb.Translate(scattered[2], AccessKind.Read))),
                ("SoftTlb.TranslateBatch (4096)", () => Batch(tlb.TranslateBatch(scattered, AccessKind.Read, results), scattered.Length, results)),
                ("Vcpu.TranslateLinear", () => Assert.Equal(GuestStatus.Ok, cpu.TranslateLinear(TwoDimensionalGuest.Gla, PageFaultErrorCode.Present).Status)),
                ("Vcpu.TranslateLinearBatch (64)", () => GuestBatch(cpu.TranslateLinearBatch(glas, PageFaultErrorCode.Present, guestResults), guestResults)),
                ("NativeWalker.Translate", () => Ok(native.Translate(scattered[3], AccessKind.Read))),
                ("NativeWalker.Translate (A/D)", () => Ok(nativeAd.Translate(adGpas[2], AccessKind.Write))),
                ("NativeWalker.TranslateBatch (4096)", () => Batch(native.TranslateBatch(scattered, AccessKind.Read, results), scattered.Length, results)),
                ("NativeWalker.GetEntry", () => Assert.True(native.GetEntry(scattered[4] >> 12).IsMapped)),
            };
            foreach (BatchPath path in new[] { BatchPath.Auto, BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather })
            {
                foreach (int n in new[] { 32, 4096 })
                {
                    readers.Add(($"P2m.TranslateBatch ({n}, {path})", () => Batch(p2m.TranslateBatch(scattered.AsSpan(0, n), AccessKind.Read, results, path), n, results)));
                }
            }

            var locks = new List<(string Name, OrderedLock Lock)>();
            foreach (object owner in new object[] { p2m, p2m.Pod, adP2m, adP2m.Pod, world.Memory, adMemory, world.Domain, world.Domain.Altp2m, cpu })
            {
                locks.AddRange(InstanceLocks(owner));
            }

            locks.AddRange(StaticLocks());
            Assert.Contains(locks, l => l.Lock == p2m.P2mLock);
            Assert.True(locks.Count >= 10, $"only {locks.Count} locks found: " + string.Join(", ", locks.Select(l => l.Name)));

            _output.WriteLine($"{readers.Count} readers x {locks.Count} locks: " + string.Join(", ", locks.Select(l => l.Name)));
            List<string> blocked = RunWhileHeld(readers, locks);
            Assert.True(blocked.Count == 0, "readers that waited for a lock:\n" + string.Join("\n", blocked));
        }

        [Fact]
        public void FirstReadOfAFreshThread_CompletesWhileAnyLockIsHeldExclusively()
        {
            // A thread's first read claims its reclamation slot (and its metric counters): that
            // claim must not wait for a lock either, whichever lock another thread holds.
            using var memory = new HostMemory(16L << 20);
            using var p2m = new P2m(memory);
            ulong mfn = memory.AllocateFrame();
            p2m.SetEntry(0x42, mfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var native = new NativeWalker(p2m);
            var locks = new List<(string Name, OrderedLock Lock)>();
            foreach (object owner in new object[] { p2m, p2m.Pod, memory })
            {
                locks.AddRange(InstanceLocks(owner));
            }

            locks.AddRange(StaticLocks());
            var blocked = new List<string>();
            foreach ((string lockName, OrderedLock held) in locks)
            {
                var taken = new ManualResetEventSlim();
                var release = new ManualResetEventSlim();
                var holder = new Thread(() =>
                {
                    using (held.Enter())
                    {
                        taken.Set();
                        release.Wait();
                    }
                })
                { IsBackground = true, Name = "lock holder" };
                holder.Start();
                Assert.True(taken.Wait(TimeSpan.FromSeconds(10)), $"could not take {lockName}");
                EptTranslation managed = default, viaNative = default;
                var fresh = new Thread(() =>
                {
                    managed = p2m.Translate(0x42_010, AccessKind.Read);
                    viaNative = native.Translate(0x42_010, AccessKind.Read);
                })
                { IsBackground = true, Name = "fresh reader" };
                fresh.Start();
                bool finished = fresh.Join(s_watchdog);
                release.Set();
                if (!finished)
                {
                    blocked.Add($"a fresh thread's first read blocked while {lockName} was held");
                    Assert.True(fresh.Join(TimeSpan.FromSeconds(60)), $"the fresh reader never finished after {lockName} was released");
                }

                Assert.True(holder.Join(TimeSpan.FromSeconds(10)), $"the holder of {lockName} did not finish");
                Assert.Equal((mfn << 12) | 0x10, managed.Hpa);
                Assert.Equal(managed, viaNative);
            }

            Assert.True(blocked.Count == 0, string.Join("\n", blocked));
        }

        private static void Ok(EptTranslation t) => Assert.Equal(EptStatus.Ok, t.Status);

        private static void Batch(int written, int n, EptTranslation[] results)
        {
            Assert.Equal(n, written);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(EptStatus.Ok, results[i].Status);
            }
        }

        private static void GuestBatch(int written, GuestTranslation[] results)
        {
            Assert.Equal(results.Length, written);
            Assert.All(results, r => Assert.Equal(GuestStatus.Ok, r.Status));
        }

        // Every OrderedLock (alone or in an array) among the fields of `owner`'s type.
        private static IEnumerable<(string, OrderedLock)> InstanceLocks(object owner)
        {
            foreach (FieldInfo f in owner.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                foreach (OrderedLock l in LocksIn(f.GetValue(owner)))
                {
                    yield return ($"{owner.GetType().Name}.{f.Name} '{l.Name}'", l);
                }
            }
        }

        // Every static OrderedLock of the library (the TLB registry, the reclaimer's locks, ...).
        private static IEnumerable<(string, OrderedLock)> StaticLocks()
        {
            foreach (Type t in typeof(P2m).Assembly.GetTypes().Where(t => !t.ContainsGenericParameters))
            {
                foreach (FieldInfo f in t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
                {
                    if (f.FieldType == typeof(OrderedLock) || f.FieldType == typeof(OrderedLock[]))
                    {
                        foreach (OrderedLock l in LocksIn(f.GetValue(null)))
                        {
                            yield return ($"{t.Name}.{f.Name} '{l.Name}'", l);
                        }
                    }
                }
            }
        }

        private static IEnumerable<OrderedLock> LocksIn(object? value) => value switch
        {
            OrderedLock l => [l],
            OrderedLock[] a => a,
            _ => [],
        };

        // One reader thread (warmed up first, so that it has its epoch slot and metric counters)
        // runs each reader on its own while a holder thread keeps one lock exclusively, for every
        // reader and lock. Returns "reader while lock" for each read that did not finish within the watchdog
        // time (the holder then lets go, so the read completes and the run goes on) or failed.
        private static List<string> RunWhileHeld(List<(string Name, Action Read)> readers, List<(string Name, OrderedLock Lock)> locks)
        {
            var problems = new List<string>();
            int next = -1;                  // the reader to run; -2 ends the thread
            var go = new SemaphoreSlim(0);
            var done = new SemaphoreSlim(0);
            var reader = new Thread(() =>
            {
                while (true)
                {
                    go.Wait();
                    int k = Volatile.Read(ref next);
                    if (k < 0)
                    {
                        return;
                    }

                    try
                    {
                        readers[k].Read();
                    }
                    catch (Exception e)
                    {
                        lock (problems)
                        {
                            problems.Add($"{readers[k].Name} failed: {e.GetType().Name}: {e.Message}");
                        }
                    }

                    done.Release();
                }
            })
            { IsBackground = true, Name = "lock-free reader" };
            reader.Start();

            // Warm-up, no lock held.
            for (int k = 0; k < readers.Count; k++)
            {
                Volatile.Write(ref next, k);
                go.Release();
                Assert.True(done.Wait(TimeSpan.FromSeconds(60)), $"{readers[k].Name} did not finish without any lock held");
            }

            Assert.Empty(problems);
            foreach ((string lockName, OrderedLock held) in locks)
            {
                for (int k = 0; k < readers.Count; k++)
                {
                    var taken = new ManualResetEventSlim();
                    var release = new ManualResetEventSlim();
                    var holder = new Thread(() =>
                    {
                        using (held.Enter())
                        {
                            taken.Set();
                            release.Wait();
                        }
                    })
                    { IsBackground = true, Name = "lock holder" };
                    holder.Start();
                    Assert.True(taken.Wait(TimeSpan.FromSeconds(10)), $"could not take {lockName}");
                    Volatile.Write(ref next, k);
                    var clock = Stopwatch.StartNew();
                    go.Release();
                    bool finished = done.Wait(s_watchdog);
                    release.Set();      // a blocked read then completes, and the run goes on
                    if (!finished)
                    {
                        lock (problems)
                        {
                            problems.Add($"{readers[k].Name} blocked while {lockName} was held ({clock.Elapsed.TotalSeconds:F1} s)");
                        }

                        Assert.True(done.Wait(TimeSpan.FromSeconds(60)), $"{readers[k].Name} never finished after {lockName} was released");
                    }

                    Assert.True(holder.Join(TimeSpan.FromSeconds(10)), $"the holder of {lockName} did not finish");
                }
            }

            Volatile.Write(ref next, -2);
            go.Release();
            reader.Join(TimeSpan.FromSeconds(10));
            return problems;
        }
    }
}

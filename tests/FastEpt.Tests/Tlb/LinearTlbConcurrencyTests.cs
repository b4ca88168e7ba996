// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;
using FastEpt.Tests.P2mTests;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// The combined TLB's hit paths against a writer on another thread that keeps remapping a
    /// data GFN to a fresh frame (allocated, filled with a new id in every word, mapped, the old
    /// frame then freed, so frames are reused): the vCPU's emulated reads and
    /// <see cref="Vcpu.GetPageFromGva"/> pages answered from the TLB must never show a frame
    /// being refilled (two words of one read or one page differ), and never an id older than
    /// the last remap that returned before the access started (INVEPT through the generation).
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]
    public sealed class LinearTlbConcurrencyTests
    {
        [Fact]
        public void Remaps_WhileTheVcpuReadsThroughTheTlb_NoReusedFrameAndNothingOlderThanTheLastRemap()
        {
            using var g = new LinearTlbGuest();
            ulong gfn = FirstDataGfn + 1;
            ulong gla = PageGla(1);
            long published = 0;         // the id of the last remap that returned
            var stop = new ManualResetEventSlim();
            var failures = new ConcurrentQueue<Exception>();
            ulong first = g.Memory.AllocateFrame();
            Fill(g.Memory, first, 0);
            g.Domain.HostP2m.SetEntry(gfn, first, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            long reads = 0;

            void Writer()
            {
                ulong current = first;
                for (long id = 1; !stop.IsSet; id++)
                {
                    ulong next = g.Memory.AllocateFrame();      // often a frame freed a moment ago
                    Fill(g.Memory, next, id);
                    g.Domain.HostP2m.SetEntry(gfn, next, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    Volatile.Write(ref published, id);
                    g.Memory.FreeFrame(current);
                    current = next;
                }
            }

            void Vcpu()
            {
                var emu = new HvmEmulation(g.Cpu);
                Span<byte> buffer = stackalloc byte[16];
                var random = new Random(7);
                Stopwatch watch = Stopwatch.StartNew();
                while (watch.ElapsedMilliseconds < 1500)
                {
                    long floor = Volatile.Read(ref published);
                    ulong offset = (ulong)random.Next(255) * 16;
                    if (random.Next(4) != 0)
                    {
                        EmulationResult r = emu.LinearRead(gla + offset, buffer, PageFaultErrorCode.None);
                        Assert.True(r == EmulationResult.Okay, $"{r}: {emu.LastFailure}");
                        emu.Complete();
                        long a = BitConverter.ToInt64(buffer), b = BitConverter.ToInt64(buffer[8..]);
                        Assert.True(a == b, $"a read saw a frame being refilled: {a} and {b}");
                        Assert.True(a >= floor, $"read id {a} after remap {floor} returned");
                    }
                    else
                    {
                        using GuestPage page = g.Cpu.GetPageFromGva(gla, AccessKind.Read);
                        Assert.Equal(GuestPageStatus.Ok, page.Status);
                        long a = BitConverter.ToInt64(page.Bytes), b = BitConverter.ToInt64(page.Bytes[4088..]);
                        Assert.True(a == b, $"a referenced page was refilled: {a} and {b}");
                        Assert.True(a >= floor, $"page id {a} after remap {floor} returned");
                    }

                    reads++;
                }

                stop.Set();
            }

            List<string> stuck = P2mConcurrencyTests.RunWithWatchdog([("writer", Writer), ("vcpu", Vcpu)], TimeSpan.FromSeconds(30), failures, stop.Set);
            Assert.Empty(stuck);
            Assert.Empty(failures);
            Assert.True(reads > 1000, $"only {reads} reads");
            Assert.True(reads - g.Tlb.Misses > reads / 20, $"{g.Tlb.Misses} misses in {reads} reads: the hit paths were hardly exercised");
        }

        private static void Fill(HostMemory memory, ulong mfn, long id)
        {
            Span<byte> frame = memory.Frame(mfn);
            for (int i = 0; i < frame.Length; i += 8)
            {
                BitConverter.TryWriteBytes(frame[i..], id);
            }
        }
    }
}

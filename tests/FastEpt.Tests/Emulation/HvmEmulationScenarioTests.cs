// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Tests.Guest;

namespace FastEpt.Tests.Emulation
{
    /// <summary>
    /// <see cref="HvmEmulation"/>: every docs/model/mmio-cache.md §6.8 scenario, RAM/MMIO splits on reads, writes and
    /// compare-exchange, docs/model/README.md §0.7's tagged entries, faults and bad input. Linear page 1
    /// (0x1000) and page 2 (0x2000) are mapped per test; 0x1FFA + 8 crosses between them.
    /// </summary>
    public sealed partial class HvmEmulationScenarioTests
    {
        private const ulong P = 0x200, Q = 0x300;            // MMIO GFNs
        private const ulong RamA = 0x40, RamB = 0x41;        // RAM GFNs
        private const ulong Cross = 0x1FFA;

        private static (ScenarioGuest G, ScenarioDevice Dev, HvmEmulation Emu) Setup(ulong page1, ulong page2, bool async = false)
        {
            var g = new ScenarioGuest();
            var dev = new ScenarioDevice { Asynchronous = async };
            g.Domain.MapMmio(P, 1, dev);
            g.Domain.MapMmio(Q, 1, dev);
            g.MapLinear(1, page1);
            g.MapLinear(2, page2);
            return (g, dev, new HvmEmulation(g.Cpu));
        }

        private static byte[] DeviceBytes(ScenarioDevice dev, ulong gpa, int n)
            => Enumerable.Range(0, n).Select(i => dev[gpa + (ulong)i]).ToArray();

        [Fact]
        public void Read8_BothPagesMmio_ThreeChunksOneEntry()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                byte[] buf = new byte[8];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, buf, 0));

                Assert.Equal([((P << 12) + 0xFFA, 4, false), ((P << 12) + 0xFFE, 2, false), (Q << 12, 2, false)],
                             dev.Completed.Select(r => (r.Gpa, r.Size, r.Write)).ToArray());
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0xFFA, 6).Concat(DeviceBytes(dev, Q << 12, 2)), buf);
                Assert.Equal(1, emu.CacheEntriesInUse);
                Assert.True(emu.TryGetCacheEntry(Cross, write: false, AccessTag.Operand, out int skip, out int size));
                Assert.Equal((0, 8), (skip, size));
                emu.Complete();
                Assert.Equal(0, emu.CacheEntriesInUse);
            }
        }

        [Fact]
        public void Read8_AsynchronousDevice_EachPassReplaysAndIssuesOneNewRequest()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q, async: true);
            using (g)
            {
                byte[] buf = new byte[8];
                var results = new List<EmulationResult>();
                var attemptsPerPass = new List<int>();
                for (int pass = 0; pass < 10; pass++)
                {
                    Array.Fill(buf, (byte)0xEE);
                    int before = dev.Attempts;
                    EmulationResult r = emu.LinearRead(Cross, buf, 0);
                    results.Add(r);
                    attemptsPerPass.Add(dev.Attempts - before);
                    if (r == EmulationResult.Okay)
                    {
                        break;
                    }

                    Assert.True(emu.HasPendingRequest);
                }

                Assert.Equal([EmulationResult.Retry, EmulationResult.Retry, EmulationResult.Retry, EmulationResult.Okay], results);
                Assert.Equal([1, 2, 2, 1], attemptsPerPass);        // the pending request again, then one new one
                Assert.Equal(3, dev.Completed.Count);
                Assert.Equal(3, dev.Completed.Distinct().Count());
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0xFFA, 6).Concat(DeviceBytes(dev, Q << 12, 2)), buf);
                Assert.False(emu.HasPendingRequest);
            }
        }

        [Fact]
        public void RamThenMmio_SkipSix_RamRereadOnReplay_DeviceBytesFromCache()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(RamA, Q, async: true);
            using (g)
            {
                g.Ram(RamA)[0xFFA..].Fill(0x11);
                byte[] buf = new byte[8];
                Assert.Equal(EmulationResult.Retry, emu.LinearRead(Cross, buf, 0));
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, buf, 0));     // the device completes the pending read
                Assert.True(emu.TryGetCacheEntry(Cross, false, AccessTag.Operand, out int skip, out int size));
                Assert.Equal((6, 8), (skip, size));

                // A further re-execution: RAM is read again (it changed), the device is not asked again.
                g.Ram(RamA)[0xFFA..].Fill(0x22);
                byte cached = dev[Q << 12];
                dev[Q << 12] = (byte)(cached ^ 0xFF);        // the device changed: the replay still shows what it read
                int attempts = dev.Attempts;
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, buf, 0));
                Assert.Equal(attempts, dev.Attempts);
                Assert.Equal(new byte[] { 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, cached, dev[(Q << 12) + 1] }, buf);
            }
        }

        [Fact]
        public void MmioThenRam_EntrySizeSix_RamAlwaysFromRam()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, RamB);
            using (g)
            {
                g.Ram(RamB)[..2].Fill(0x33);
                byte[] buf = new byte[8];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, buf, 0));
                Assert.True(emu.TryGetCacheEntry(Cross, false, AccessTag.Operand, out int skip, out int size));
                Assert.Equal((0, 6), (skip, size));
                g.Ram(RamB)[..2].Fill(0x44);
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, buf, 0));
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0xFFA, 6).Concat(new byte[] { 0x44, 0x44 }), buf);
                Assert.Equal(2, dev.Completed.Count);       // 4 + 2, once
            }
        }

        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public void Write8_SplitAcrossRamAndMmio_EachByteWhereItBelongs(bool ramFirst)
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = ramFirst ? Setup(RamA, Q) : Setup(P, RamB);
            using (g)
            {
                byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
                Assert.Equal(EmulationResult.Okay, emu.LinearWrite(Cross, data, 0));
                if (ramFirst)
                {
                    Assert.Equal(data[..6], g.Ram(RamA)[0xFFA..].ToArray());
                    Assert.Equal(data[6..], DeviceBytes(dev, Q << 12, 2));
                    Assert.Equal([(Q << 12, 2, true)], dev.Completed.Select(r => (r.Gpa, r.Size, r.Write)));
                }
                else
                {
                    Assert.Equal(data[..6], DeviceBytes(dev, (P << 12) + 0xFFA, 6));
                    Assert.Equal(data[6..], g.Ram(RamB)[..2].ToArray());
                    Assert.Equal([4, 2], dev.Completed.Select(r => r.Size));
                }
            }
        }

        [Fact]
        public void WriteReplay_DifferentData_UnhandleableAndNothingReissued()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q, async: true);
            using (g)
            {
                byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
                Assert.Equal(EmulationResult.Retry, emu.LinearWrite(Cross, data, 0));
                Assert.Equal(EmulationResult.Retry, emu.LinearWrite(Cross, data, 0));   // chunk 1 done, chunk 2 pending
                data[1] = 0xFF;
                int attempts = dev.Attempts;
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearWrite(Cross, data, 0));
                Assert.Contains("different data", emu.LastFailure);
                Assert.Equal(attempts, dev.Attempts);
                Assert.Single(dev.Completed);
                Assert.Equal(0x04030201UL, dev.Completed[0].Value);
            }
        }

        [Fact]
        public void ReissuedRequestDiffers_Unhandleable()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q, async: true);
            using (g)
            {
                byte[] buf = new byte[4];
                Assert.Equal(EmulationResult.Retry, emu.LinearRead(0x1100, buf, 0));
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0x1104, buf, 0));    // another address
                Assert.Contains("differs from the pending one", emu.LastFailure);
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0x1100, new byte[2], 0, AccessTag.SystemTable));
                emu.Complete();
                Assert.False(emu.HasPendingRequest);
                Assert.Empty(dev.Completed);
            }
        }
    }
}

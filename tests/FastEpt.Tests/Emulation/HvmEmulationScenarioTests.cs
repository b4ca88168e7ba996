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
    public sealed class HvmEmulationScenarioTests
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

        [Fact]
        public void FourOperands_FourthUnhandleable_ConfigurableCapacity()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                byte[] b = new byte[2];
                for (ulong i = 0; i < 3; i++)
                {
                    Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1000 + (i * 16), b, 0));
                }

                int attempts = dev.Attempts;
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0x1030, b, 0));
                Assert.Contains("More than 3", emu.LastFailure);
                Assert.Equal(attempts, dev.Attempts);

                var wide = new HvmEmulation(g.Cpu, cacheEntries: 4);
                for (ulong i = 0; i < 4; i++)
                {
                    Assert.Equal(EmulationResult.Okay, wide.LinearRead(0x1000 + (i * 16), b, 0));
                }

                Assert.Equal(4, wide.CacheEntriesInUse);
            }
        }

        [Fact]
        public void OversizedOperands_Unhandleable_DeviceUntouched()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0x1000, new byte[72], 0));
                Assert.Contains("72 bytes", emu.LastFailure);

                // offset + size beyond the entry: a 16-byte entry and a 24-byte MMIO operand.
                var small = new HvmEmulation(g.Cpu, cacheEntries: 3, entryBytes: 16);
                Assert.Equal(EmulationResult.Unhandleable, small.LinearRead(0x1000, new byte[24], 0));
                Assert.Contains("exceed", small.LastFailure);
                Assert.Equal(0, dev.Attempts);

                // RAM then MMIO where the MMIO part starts beyond the entry: offset 20 of a 16-byte entry.
                g.MapLinear(1, RamA);
                Assert.Equal(EmulationResult.Unhandleable, small.LinearRead(Cross - 14, new byte[24], 0));
                Assert.Equal(0, dev.Attempts);
            }
        }

        [Fact]
        public void InstructionFetchFromMmio_Unhandleable_TenByteReadIsEightThenTwo()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0x1000, new byte[4], 0, AccessTag.InstructionFetch));
                Assert.Contains("Instruction fetch from MMIO", emu.LastFailure);
                Assert.Equal(0, dev.Attempts);

                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1100, new byte[10], 0));
                Assert.Equal([8, 2], dev.Completed.Select(r => r.Size));
                Assert.Equal([(P << 12) + 0x100, (P << 12) + 0x108], dev.Completed.Select(r => r.Gpa));
            }
        }

        [Theory]
        [InlineData(3, new[] { 2, 1 })]
        [InlineData(5, new[] { 4, 1 })]
        [InlineData(6, new[] { 4, 2 })]
        [InlineData(7, new[] { 4, 2, 1 })]
        [InlineData(12, new[] { 8, 4 })]
        [InlineData(15, new[] { 8, 4, 2, 1 })]
        [InlineData(16, new[] { 8, 8 })]
        [InlineData(64, new[] { 8, 8, 8, 8, 8, 8, 8, 8 })]
        public void ChunkSequences_AsXen(int size, int[] chunks)
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                Assert.Equal(EmulationResult.Okay, emu.LinearWrite(0x1200, new byte[size], 0));
                Assert.Equal(chunks, dev.Completed.Select(r => r.Size));
            }
        }

        [Fact]
        public void SelectorThenDescriptorAtOneAddress_SeparateEntriesByTag()
        {
            // docs/model/README.md §0.7: a 2-byte selector operand and the 8-byte descriptor (implicit supervisor
            // read) at the same address, with an asynchronous device: both complete, each byte of
            // each access read once.
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q, async: true);
            using (g)
            {
                byte[] sel = new byte[2], desc = new byte[8];
                int passes = 0;
                while (passes++ < 10)
                {
                    if (emu.LinearRead(0x1400, sel, PageFaultErrorCode.User) == EmulationResult.Okay
                        && emu.LinearRead(0x1400, desc, PageFaultErrorCode.User, AccessTag.SystemTable) == EmulationResult.Okay)
                    {
                        break;
                    }
                }

                Assert.Equal(3, passes);
                Assert.Equal(2, emu.CacheEntriesInUse);
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0x400, 2), sel);
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0x400, 8), desc);
                Assert.Equal([2, 8], dev.Completed.Select(r => r.Size));
            }
        }

        [Fact]
        public void ReadThenLockedWriteBack_SameOperand_BothComplete()
        {
            // e.g. LOCK ADD [mmio], r: read the operand, then a compare-exchange of the result,
            // which on MMIO degrades to a write keyed by the same address (the other direction).
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q, async: true);
            using (g)
            {
                byte[] old = new byte[4];
                EmulationResult r = EmulationResult.Retry;
                for (int pass = 0; pass < 10 && r != EmulationResult.Okay; pass++)
                {
                    r = emu.LinearRead(0x1500, old, 0);
                    if (r == EmulationResult.Okay)
                    {
                        byte[] sum = BitConverter.GetBytes(BitConverter.ToUInt32(old) + 1);
                        r = emu.CmpXchg(0x1500, old, sum, 0);
                    }
                }

                Assert.Equal(EmulationResult.Okay, r);
                Assert.True(emu.LastCompareSucceeded);
                Assert.Equal([(false, 4), (true, 4)], dev.Completed.Select(c => (c.Write, c.Size)));
                Assert.Equal(BitConverter.ToUInt32(old) + 1, BitConverter.ToUInt32(DeviceBytes(dev, (P << 12) + 0x500, 4)));
            }
        }

        [Fact]
        public void SameOperandReadShorterThenLonger_DeviceBytesOnce()
        {
            // Beyond Xen (which asserts): the longer read replays the 2 cached bytes and fetches the rest.
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                byte[] two = new byte[2], eight = new byte[8];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1600, two, 0));
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1600, eight, 0));
                Assert.Equal(DeviceBytes(dev, (P << 12) + 0x600, 8), eight);
                Assert.Equal([((P << 12) + 0x600, 2), ((P << 12) + 0x602, 4), ((P << 12) + 0x606, 2)], dev.Completed.Select(c => (c.Gpa, c.Size)));
            }
        }

        [Fact]
        public void CmpXchg_Ram_AlignedUnalignedAndSplit()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(RamA, RamB);
            using (g)
            {
                ulong[] glas = [0x1100, 0x1103, Cross];     // aligned (atomic), unaligned, split across pages
                foreach (ulong gla in glas)
                {
                    byte[] before = new byte[8];
                    Assert.Equal(EmulationResult.Okay, emu.LinearRead(gla, before, 0));
                    byte[] wrong = before.ToArray();
                    wrong[3] ^= 1;
                    byte[] desired = Enumerable.Range(0, 8).Select(i => (byte)(0xA0 + i + (int)(gla & 0xF))).ToArray();
                    byte[] found = new byte[8];

                    Assert.Equal(EmulationResult.Okay, emu.CmpXchg(gla, wrong, desired, 0, found));
                    Assert.False(emu.LastCompareSucceeded);
                    Assert.Equal(before, found);
                    byte[] now = new byte[8];
                    emu.LinearRead(gla, now, 0);
                    Assert.Equal(before, now);

                    Assert.Equal(EmulationResult.Okay, emu.CmpXchg(gla, before, desired, 0, found));
                    Assert.True(emu.LastCompareSucceeded);
                    emu.LinearRead(gla, now, 0);
                    Assert.Equal(desired, now);
                    emu.Complete();
                }

                Assert.Equal(0, dev.Attempts);
            }
        }

        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public void CmpXchg_TouchingMmio_DegradesToAWrite(bool ramFirst)
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = ramFirst ? Setup(RamA, Q) : Setup(P, RamB);
            using (g)
            {
                byte[] expected = new byte[8];          // deliberately not what memory holds
                expected[0] = 0x5A;
                byte[] desired = [9, 8, 7, 6, 5, 4, 3, 2];
                Assert.Equal(EmulationResult.Okay, emu.CmpXchg(Cross, expected, desired, 0));
                Assert.True(emu.LastCompareSucceeded);
                Assert.True(emu.TryGetCacheEntry(Cross, write: true, AccessTag.Operand, out int skip, out _));
                Assert.Equal(ramFirst ? 6 : 0, skip);
                byte[] back = new byte[8];
                emu.Complete();
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(Cross, back, 0));
                Assert.Equal(desired, back);
            }
        }

        [Fact]
        public void PageFaultOnSecondPage_ExceptionRecorded_FirstPageUntouched()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(RamA, RamB);
            using (g)
            {
                g.Unmap(2);
                g.Ram(RamA)[0xFFA..].Fill(0x77);
                Assert.Equal(EmulationResult.Exception, emu.LinearWrite(Cross, new byte[8], PageFaultErrorCode.User));
                Assert.Equal(new EmulationException(14, (uint)(PageFaultErrorCode.Write | PageFaultErrorCode.User), 0x2000), emu.LastException);
                Assert.True(g.Ram(RamA)[0xFFA..].IndexOfAnyExcept((byte)0x77) < 0, "no partial write before the fault");

                g.MapLinear(2, RamB, extra: Pte.User);        // present, read-only
                Assert.Equal(EmulationResult.Exception, emu.LinearWrite(Cross, new byte[8], PageFaultErrorCode.User));
                Assert.Equal(new EmulationException(14, (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User), 0x2000), emu.LastException);

                Assert.Equal(EmulationResult.Exception, emu.LinearRead(0x0000_8000_0000_0000, new byte[1], 0));
                Assert.Equal(13, emu.LastException.Vector);
                Assert.Equal(0, dev.Attempts);
            }
        }

        [Fact]
        public void WriteToReadOnlyRam_Discarded_ReadStillWorks()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(RamA, RamB);
            using (g)
            {
                g.Domain.HostP2m.SetEntry(RamA, g.RamMfn + RamA, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RWX);
                g.Ram(RamA)[0x100] = 0x42;
                Assert.Equal(EmulationResult.Okay, emu.LinearWrite(0x1100, [1, 2, 3], 0));
                Assert.Equal(0x42, g.Ram(RamA)[0x100]);
                byte[] b = new byte[1];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1100, b, 0));
                Assert.Equal(0x42, b[0]);
            }
        }

        [Fact]
        public void AlternateViewLackingTheFrames_LazyCopiedDuringEmulation()
        {
            var g = new ScenarioGuest(altViews: 2);
            using (g)
            {
                g.MapLinear(1, RamA);
                int view = g.Domain.Altp2m.CreateView();
                g.Domain.Altp2m.Switch(g.Cpu, view);
                g.Ram(RamA)[0x10] = 0x5C;
                var emu = new HvmEmulation(g.Cpu);
                byte[] b = new byte[1];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1010, b, 0));
                Assert.Equal(0x5C, b[0]);
                Assert.True(g.Domain.Altp2m.View(view).GetEntry(RamA).IsMapped);
            }
        }

        [Fact]
        public void RamOnly_NoCacheEntry_NoDevice()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(RamA, RamB);
            using (g)
            {
                byte[] data = Enumerable.Range(1, 64).Select(i => (byte)i).ToArray();
                Assert.Equal(EmulationResult.Okay, emu.LinearWrite(0x1FE0, data, 0));
                byte[] back = new byte[64];
                Assert.Equal(EmulationResult.Okay, emu.LinearRead(0x1FE0, back, 0));
                Assert.Equal(data, back);
                Assert.Equal(data[..32], g.Ram(RamA)[0xFE0..].ToArray());
                Assert.Equal(data[32..], g.Ram(RamB)[..32].ToArray());
                Assert.Equal(0, emu.CacheEntriesInUse);
                Assert.Equal(0, dev.Attempts);
            }
        }

        [Fact]
        public void BadInput_ClearErrorsNothingTouched()
        {
            (ScenarioGuest g, ScenarioDevice dev, HvmEmulation emu) = Setup(P, Q);
            using (g)
            {
                Assert.Equal("vcpu", Assert.Throws<ArgumentNullException>(() => new HvmEmulation(null!)).ParamName);
                Assert.Equal("cacheEntries", Assert.Throws<ArgumentOutOfRangeException>(() => new HvmEmulation(g.Cpu, 0)).ParamName);
                Assert.Equal("entryBytes", Assert.Throws<ArgumentOutOfRangeException>(() => new HvmEmulation(g.Cpu, 3, 12)).ParamName);
                Assert.Equal("device", Assert.Throws<ArgumentNullException>(() => g.Domain.MapMmio(0x400, 1, null!)).ParamName);
                Assert.Equal("buffer", Assert.Throws<ArgumentException>(() => emu.LinearRead(0x1000, Span<byte>.Empty, 0)).ParamName);
                Assert.Equal("data", Assert.Throws<ArgumentException>(() => emu.LinearWrite(0x1000, ReadOnlySpan<byte>.Empty, 0)).ParamName);
                Assert.Equal("pfec", Assert.Throws<ArgumentOutOfRangeException>(() => emu.LinearRead(0x1000, new byte[1], PageFaultErrorCode.Reserved)).ParamName);
                Assert.Equal("tag", Assert.Throws<ArgumentOutOfRangeException>(() => emu.LinearRead(0x1000, new byte[1], 0, (AccessTag)7)).ParamName);
                Assert.Equal("tag", Assert.Throws<ArgumentException>(() => emu.LinearWrite(0x1000, new byte[1], 0, AccessTag.InstructionFetch)).ParamName);
                Assert.Equal("desired", Assert.Throws<ArgumentException>(() => emu.CmpXchg(0x1000, new byte[4], new byte[2], 0)).ParamName);
                Assert.Equal("current", Assert.Throws<ArgumentException>(() => emu.CmpXchg(0x1000, new byte[4], new byte[4], 0, new byte[3])).ParamName);

                // Guest-controlled oddities are results, not exceptions.
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearRead(0xFFFF_FFFF_FFFF_FFFC, new byte[8], 0));
                Assert.Contains("wraps", emu.LastFailure);
                Assert.Equal(EmulationResult.Unhandleable, emu.LinearWrite(0x1000, new byte[65], 0));
                Assert.Equal(0, dev.Attempts);
                Assert.Equal(0, emu.CacheEntriesInUse);
            }
        }
    }
}

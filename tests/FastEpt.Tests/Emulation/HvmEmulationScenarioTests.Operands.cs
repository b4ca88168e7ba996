// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationScenarioTests
    {
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
    }
}

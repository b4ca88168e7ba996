// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Tests.Guest;

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationScenarioTests
    {
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

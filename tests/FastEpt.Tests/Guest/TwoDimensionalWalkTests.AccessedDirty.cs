// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    public sealed partial class TwoDimensionalWalkTests
    {
        [Theory]
        [InlineData(1, Sw)]
        [InlineData(1, Sr)]
        [InlineData(2, Uw)]
        [InlineData(2, Ux)]
        [InlineData(3, Ur)]
        [InlineData(3, Sw)]
        public void SuccessfulWalk_SetsAccessedAndDirtyExactly(int leafLevel, PageFaultErrorCode pfec)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.BuildTables(extra: 0, leafLevel);

            // Neighbours in every table, which must stay as they are.
            for (int level = 4; level >= leafLevel; level--)
            {
                ulong neighbour = (TwoDimensionalGuest.TableGfn(level) << 12) | (((TwoDimensionalGuest.Index(Gla, level) + 1) & 511) * 8);
                g.WriteGuest(neighbour, 0x7777_0000 | Pte.Present | Pte.Writable);
            }

            ulong[][] before = g.TableFrames();
            GuestTranslation r = g.Walk(Gla, pfec);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(leafLevel, r.Level);
            ulong[][] after = g.TableFrames();
            for (int level = 4; level >= 1; level--)
            {
                for (int s = 0; s < 512; s++)
                {
                    ulong expected = before[4 - level][s];
                    if (level >= leafLevel && (ulong)s == TwoDimensionalGuest.Index(Gla, level))
                    {
                        expected |= Pte.Accessed;
                        if (level == leafLevel && (pfec & PageFaultErrorCode.Write) != 0)
                        {
                            expected |= Pte.Dirty;
                        }
                    }

                    Assert.True(expected == after[4 - level][s], $"level {level} slot {s}: expected 0x{expected:X}, found 0x{after[4 - level][s]:X}");
                }
            }
        }

        [Fact]
        public void TablePageRemappedInEpt_AccessedLandsInTheMappedFrame()
        {
            using TwoDimensionalGuest g = new(ad: false);
            ulong other = g.Memory.AllocateFrame();
            g.Memory.Frame(g.RamMfn + TwoDimensionalGuest.PtGfn).CopyTo(g.Memory.Frame(other));
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.PtGfn, other, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ulong slot = TwoDimensionalGuest.Index(Gla, 1) * 8;
            ulong pte = g.Memory.ReadUInt64((other << 12) + slot);

            Assert.Equal(GuestStatus.Ok, g.Walk(Gla, Sw).Status);

            Assert.Equal(pte | Pte.Accessed | Pte.Dirty, g.Memory.ReadUInt64((other << 12) + slot));
            Assert.Equal(pte, g.Memory.ReadUInt64(((g.RamMfn + TwoDimensionalGuest.PtGfn) << 12) + slot));
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void PagingWriteBit_LetsTheWalkersAccessedWriteThrough(bool ad)
        {
            // docs/model/ept.md §1.5 / 2.2: A/D writes by the walker count as writes "except where pw permits
            // them"; r_pw gives a read-only page the paging-write bit on a CPU that has it.
            using TwoDimensionalGuest g = new(ad, pagingWrite: true);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.R_PW);
            ulong epte = g.Memory.ReadUInt64(g.EptLeafHpa(TwoDimensionalGuest.PtGfn));
            Assert.Equal(1UL, epte & 7);                 // r only ...
            Assert.NotEqual(0UL, epte & (1UL << 58));    // ... with paging-write (docs/model/ept.md §1.1, 2.3)
            ulong[] before = g.Entries();

            GuestTranslation r = g.Walk(Gla, Sw);

            Assert.Equal(GuestStatus.Ok, r.Status);
            Assert.Equal(before[3] | Pte.Accessed | Pte.Dirty, g.ReadEntry(1));
        }

        [Fact]
        public void PagingWriteBit_WithoutTheCpuFeature_RpwIsJustRead()
        {
            using TwoDimensionalGuest g = new(ad: false, pagingWrite: false);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.R_PW);

            GuestTranslation r = g.Walk(Gla, Sr);

            AssertEptViolation(r, g.EntryGpa(1), 1, QualAdDisabled | QualR | QualGlaValid);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using FastEpt.Tests.Tlb;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Emulation
{
    /// <summary>
    /// Emulated accesses and <see cref="Vcpu.GetPageFromGva"/> answered from the combined TLB:
    /// a hit walks nothing and reads or writes the right frame; a write after a read fill walks
    /// and sets the dirty flag; a p2m remap is seen at once; a page handed out from a hit holds
    /// its reference, and a frame remapped and freed between the probe and the reference is
    /// never handed out.
    /// </summary>
    public sealed class HvmEmulationTlbTests
    {
        private const PageFaultErrorCode Supervisor = PageFaultErrorCode.None;

        [Fact]
        public void Read_SecondTime_HitsWithoutAWalk_SameBytes()
        {
            using var g = new LinearTlbGuest();
            var emu = new HvmEmulation(g.Cpu);
            g.Memory.WriteUInt64(g.HpaOfGfn(FirstDataGfn + 2) + 0x40, 0x1122_3344_5566_7788);
            Span<byte> buffer = stackalloc byte[8];

            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(2) + 0x40, buffer, Supervisor));
            emu.Complete();
            long misses = g.Tlb.Misses;
            buffer.Clear();
            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(2) + 0x40, buffer, Supervisor));

            Assert.Equal(misses, g.Tlb.Misses);
            Assert.Equal(0x1122_3344_5566_7788UL, BitConverter.ToUInt64(buffer));
        }

        [Fact]
        public void Write_AfterReadFill_WalksSetsDirty_WritesTheFrame()
        {
            using var g = new LinearTlbGuest();
            var emu = new HvmEmulation(g.Cpu);
            g.MapPage(3, FirstDataGfn + 3, Rwu);
            Span<byte> buffer = stackalloc byte[8];
            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(3), buffer, Supervisor));
            long misses = g.Tlb.Misses;

            Assert.Equal(EmulationResult.Okay, emu.LinearWrite(PageGla(3) + 8, BitConverter.GetBytes(0xABCDUL), Supervisor));

            Assert.Equal(misses + 1, g.Tlb.Misses);
            Assert.NotEqual(0UL, g.Leaf(3) & GuestPageTableBuilder.Dirty);
            Assert.Equal(0xABCDUL, g.Memory.ReadUInt64(g.HpaOfGfn(FirstDataGfn + 3) + 8));
            Assert.Equal(EmulationResult.Okay, emu.LinearWrite(PageGla(3) + 16, BitConverter.GetBytes(0xEFUL), Supervisor));
            Assert.Equal(misses + 1, g.Tlb.Misses);                         // the second write hits
            Assert.Equal(0xEFUL, g.Memory.ReadUInt64(g.HpaOfGfn(FirstDataGfn + 3) + 16));
        }

        [Fact]
        public void Read_AfterP2mRemap_ReadsTheNewFrame()
        {
            using var g = new LinearTlbGuest();
            var emu = new HvmEmulation(g.Cpu);
            ulong gfn = FirstDataGfn + 4;
            ulong newMfn = g.Memory.AllocateFrame();
            g.Memory.WriteUInt64(newMfn << 12, 0x5151);
            Span<byte> buffer = stackalloc byte[8];
            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(4), buffer, Supervisor));

            g.Domain.HostP2m.SetEntry(gfn, newMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(4), buffer, Supervisor));
            Assert.Equal(0x5151UL, BitConverter.ToUInt64(buffer));
        }

        [Fact]
        public void GetPageFromGva_Hit_HoldsTheReference()
        {
            using var g = new LinearTlbGuest();
            ulong mfn = g.RamMfn + FirstDataGfn + 5;
            using (GuestPage first = g.Cpu.GetPageFromGva(PageGla(5) + 0x10, AccessKind.Read))
            {
                Assert.True(first.IsOk);
            }

            long misses = g.Tlb.Misses;
            using (GuestPage page = g.Cpu.GetPageFromGva(PageGla(5) + 0x10, AccessKind.Read))
            {
                Assert.Equal(misses, g.Tlb.Misses);
                Assert.Equal(GuestPageStatus.Ok, page.Status);
                Assert.Equal(mfn, page.Mfn);
                Assert.Equal(((FirstDataGfn + 5) << 12) + 0x10, page.Gpa);
                Assert.Equal(P2mType.RamRw, page.Type);
                Assert.Equal(g.Cpu.TranslateLinear(PageGla(5) + 0x10, Supervisor), page.Translation);
                Assert.Equal(1, g.Memory.ReferenceCount(mfn));
            }

            Assert.Equal(0, g.Memory.ReferenceCount(mfn));
        }

        [Fact]
        public void GetPageFromGva_HitRemappedAndFreedBeforeTheReference_NeverHandsOutTheOldFrame()
        {
            // A writer remaps the GFN (bumping the generation) and frees the old frame after its
            // SetEntry returned, between the probe and the reference: the hit must not hand the
            // old frame out; the walk then finds the new one.
            using var g = new LinearTlbGuest();
            ulong gfn = FirstDataGfn + 6;
            ulong oldMfn = g.Memory.AllocateFrame();
            ulong newMfn = g.Memory.AllocateFrame();
            g.Domain.HostP2m.SetEntry(gfn, oldMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            using (GuestPage fill = g.Cpu.GetPageFromGva(PageGla(6), AccessKind.Write))
            {
                Assert.Equal(oldMfn, fill.Mfn);
            }

            foreach (bool free in new[] { true, false })
            {
                int calls = 0;
                g.Cpu.BeforeReference = () =>
                {
                    if (calls++ == 0)
                    {
                        g.Domain.HostP2m.SetEntry(gfn, newMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                        if (free)
                        {
                            g.Memory.FreeFrame(oldMfn);
                        }
                    }
                };

                using (GuestPage page = g.Cpu.GetPageFromGva(PageGla(6), AccessKind.Write))
                {
                    Assert.Equal(GuestPageStatus.Ok, page.Status);
                    Assert.Equal(newMfn, page.Mfn);
                }

                g.Cpu.BeforeReference = null;
                Assert.Equal(0, g.Memory.ReferenceCount(newMfn));
                (oldMfn, newMfn) = (newMfn, g.Memory.AllocateFrame());
            }
        }

        [Fact]
        public void Read_HitFrameRemappedFreedAndReusedBeforeTheCopy_NeverReturnsItsBytes()
        {
            // Between the probe and the copy a writer remaps the GFN, frees the old frame and the
            // frame is reused (filled with other bytes): the read must not return them.
            using var g = new LinearTlbGuest();
            var emu = new HvmEmulation(g.Cpu);
            ulong gfn = FirstDataGfn + 7;
            ulong oldMfn = g.Memory.AllocateFrame(), newMfn = g.Memory.AllocateFrame();
            g.Memory.WriteUInt64(oldMfn << 12, 0x01D);
            g.Memory.WriteUInt64(newMfn << 12, 0x4E3);
            g.Domain.HostP2m.SetEntry(gfn, oldMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Span<byte> buffer = stackalloc byte[8];
            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(7), buffer, Supervisor));
            emu.Complete();
            int calls = 0;
            g.Cpu.BeforeReference = () =>
            {
                if (calls++ == 0)
                {
                    g.Domain.HostP2m.SetEntry(gfn, newMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    g.Memory.FreeFrame(oldMfn);
                    g.Memory.WriteUInt64(oldMfn << 12, 0xBAD);       // reused by someone else
                }
            };

            Assert.Equal(EmulationResult.Okay, emu.LinearRead(PageGla(7), buffer, Supervisor));

            Assert.Equal(0x4E3UL, BitConverter.ToUInt64(buffer));
            Assert.True(calls >= 1);
        }
    }
}

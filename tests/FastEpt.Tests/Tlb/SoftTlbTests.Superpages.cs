// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Tlb
{
    public sealed partial class SoftTlbTests
    {
        [Fact]
        public void Superpage2M_OneWalkServesAll512Pages()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(Gfn2M, 0xA00, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m, 16);     // far fewer 4K slots than pages: the 2M entry serves them
            for (int pass = 0; pass < 2; pass++)
            {
                for (ulong page = 0; page < 512; page++)
                {
                    ulong gpa = ((Gfn2M + page) << 12) | (page * 8);
                    EptTranslation t = tlb.Translate(gpa, AccessKind.Read);
                    Assert.Equal(new EptTranslation(EptStatus.Ok, ((0xA00 + page) << 12) | (page * 8), 2, 0), t);
                }
            }

            Assert.Equal(1, tlb.Misses);
            Assert.Equal(1023, tlb.Hits);
        }

        [Fact]
        public void Superpage1G_OneWalkServesTheWholeGigabyte()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(Gfn1G, 0x200000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RX);
            var tlb = new SoftTlb(p2m, 8);
            var rng = new Random(3);
            for (int i = 0; i < 5000; i++)
            {
                ulong offset = (ulong)rng.NextInt64(1L << 30);
                AccessKind access = rng.Next(2) == 0 ? AccessKind.Read : AccessKind.Execute;
                Assert.Equal(new EptTranslation(EptStatus.Ok, (0x200000UL << 12) + offset, 3, 0), tlb.Translate((Gfn1G << 12) + offset, access));
            }

            Assert.Equal(1, tlb.Misses);
            Assert.Equal(4999, tlb.Hits);
            // A write is refused by the walk (and not cached); reads still hit.
            Assert.Equal(p2m.Translate(Gfn1G << 12, AccessKind.Write), tlb.Translate(Gfn1G << 12, AccessKind.Write));
            Assert.Equal(2, tlb.Misses);
        }

        [Fact]
        public void Translate_ExecuteOnlyPage_HitsForExecuteOnly()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.X);
            var tlb = new SoftTlb(p2m);
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_000, AccessKind.Execute).Status);
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_000, AccessKind.Execute).Status);
            Assert.Equal(p2m.Translate(0x10_000, AccessKind.Read), tlb.Translate(0x10_000, AccessKind.Read));
            Assert.Equal(EptStatus.Violation, tlb.Translate(0x10_000, AccessKind.Read | AccessKind.Execute).Status);
            Assert.Equal((1L, 3L), (tlb.Hits, tlb.Misses));
        }
    }
}

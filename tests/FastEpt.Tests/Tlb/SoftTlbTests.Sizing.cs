// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Tlb
{
    public sealed partial class SoftTlbTests
    {
        // ------------------------------------------------------------------------------------
        // Dynamic sizing
        // ------------------------------------------------------------------------------------

        [Fact]
        public void DynamicSizing_GrowsAbove70PercentAndShrinksBelow30Percent_WithinBounds()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            for (ulong i = 0; i < 1024; i++)
            {
                p2m.SetEntry(Gfn4K + i, 0x100 + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            var tlb = new SoftTlb(p2m, 64, 16, 256);
            Assert.Equal((64, 16, 256), (tlb.Capacity, tlb.MinCapacity, tlb.MaxCapacity));

            Touch(tlb, 45);         // 45/64 = 70.3 %: grow
            tlb.Flush();
            Assert.Equal(128, tlb.Capacity);
            Touch(tlb, 90);         // 90/128 = 70.3 %
            tlb.Flush();
            Assert.Equal(256, tlb.Capacity);
            Touch(tlb, 1024);       // full, but at the maximum
            tlb.Flush();
            Assert.Equal(256, tlb.Capacity);
            Touch(tlb, 100);        // 39 %: stays
            tlb.Flush();
            Assert.Equal(256, tlb.Capacity);
            Touch(tlb, 76);         // 29.7 %: shrink
            tlb.Flush();
            Assert.Equal(128, tlb.Capacity);
            Touch(tlb, 89);         // 69.5 %: stays
            tlb.Flush();
            Assert.Equal(128, tlb.Capacity);
            Assert.Equal(3, tlb.Resizes);
            for (int i = 0; i < 5; i++)
            {
                tlb.Flush();        // nothing used: halve down to the minimum, no further
            }

            Assert.Equal(16, tlb.Capacity);
            Assert.Equal(6, tlb.Resizes);

            // Invalidations resize too (they flush), and the resized TLB still translates exactly.
            Touch(tlb, 16);
            p2m.SetEntry(Gfn4K, 0x300, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x300_000, 1, 0), tlb.Translate(Gfn4K << 12, AccessKind.Read));
            Assert.Equal(32, tlb.Capacity);
            tlb.ResetCounters();
            for (int pass = 0; pass < 2; pass++)
            {
                for (ulong i = 1; i < 32; i++)
                {
                    Assert.Equal(new EptTranslation(EptStatus.Ok, (0x100 + i) << 12, 1, 0), tlb.Translate((Gfn4K + i) << 12, AccessKind.Read));
                }
            }

            Assert.Equal((31L, 31L), (tlb.Hits, tlb.Misses));
            Assert.Equal(64, new SoftTlb(p2m, 64).MaxCapacity);
        }

        // Translates `pages` distinct pages of the 4K region (distinct slots while pages <= capacity).
        private static void Touch(SoftTlb tlb, int pages)
        {
            for (ulong i = 0; i < (ulong)pages; i++)
            {
                Assert.Equal(EptStatus.Ok, tlb.Translate((Gfn4K + i) << 12, AccessKind.Read).Status);
            }
        }
    }
}

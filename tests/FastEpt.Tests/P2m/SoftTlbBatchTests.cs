// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary><see cref="SoftTlb.TranslateBatch"/> (hits in place, misses walked by the batch walker) against the SDM model, while the tables change.</summary>
    [Trait("Category", "Batch")]
    public sealed class SoftTlbBatchTests
    {
        [Fact]
        public void TlbBatches_EqualTranslate_WhileTheTablesChange()
        {
            var random = new Random(31337);
            using var memory = new HostMemory(1L << 31);
            using var p2m = new P2m(memory);
            ulong guestFrames = BatchWalkTests.BuildMixedGuest(p2m, random);
            var tlb = new SoftTlb(p2m, 1024);
            var gpas = new ulong[3000];
            var results = new EptTranslation[3000];
            long lookups = 0;
            for (int round = 0; lookups < 300_000; round++)
            {
                // Hot pages (hits) mixed with scattered ones (misses), then a change now and then.
                int n = random.Next(1, gpas.Length + 1);
                ulong hotBase = (ulong)random.NextInt64((long)guestFrames - 64);
                for (int i = 0; i < n; i++)
                {
                    ulong page = random.Next(2) == 0 ? hotBase + (ulong)random.Next(64) : (ulong)random.NextInt64((long)guestFrames);
                    gpas[i] = (page << 12) | (ulong)(uint)random.Next(4096);
                }

                var access = (AccessKind)random.Next(1, 8);
                tlb.TranslateBatch(gpas.AsSpan(0, n), access, results);
                var model = SdmEptModel.Config.Of(p2m.Options, (ulong)memory.FrameCount);
                for (int i = 0; i < n; i++)
                {
                    EptTranslation expected = SdmEptModel.Walk(memory, p2m.RootMfn, model, gpas[i], access);
                    if (expected != results[i])
                    {
                        Assert.Fail($"round {round}: gpa 0x{gpas[i]:X}, {access}: tlb batch {results[i]}, SDM model {expected}");
                    }
                }

                lookups += n;
                if (random.Next(3) == 0)
                {
                    // Remap, restrict or remove a hot page: the next batch must not see the old one.
                    ulong gfn = hotBase + (ulong)random.Next(64);
                    switch (random.Next(3))
                    {
                        case 0: p2m.SetEntry(gfn, (ulong)random.Next(1 << 18), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                        case 1: p2m.SetEntry(gfn, (ulong)random.Next(1 << 18), PageOrder.Size4K, P2mType.RamRo, P2mAccess.R); break;
                        default: p2m.SetEntry(gfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N); break;
                    }
                }
            }

            Assert.True(tlb.Hits > lookups / 10 && tlb.Misses > lookups / 10, $"hits {tlb.Hits}, misses {tlb.Misses} of {lookups}");
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// The software TLB (docs/model/ept.md, "Software TLB"): hits are exactly <see cref="P2m.Translate"/>'s results, superpages
    /// cover their range, every invalidating <see cref="P2m.SetEntry"/> is seen before it returns,
    /// bad arguments throw even for cached pages, A/D mode keeps dirty flags exact, and dynamic sizing.
    /// </summary>
    /// <remarks>
    /// <see cref="SoftTlb.InvalidateAll"/> flushes every TLB in the process, so the tests that
    /// call it and the tests that count hits exactly live in this one class (xunit runs a class's
    /// tests one at a time) and nothing else in the suite calls it.
    /// </remarks>
    public sealed partial class SoftTlbTests
    {
        private const ulong Gfn4K = 0xC0000;     // GPA 3 GiB: a region of 4K pages
        private const ulong Gfn2M = 0x80000;     // GPA 2 GiB: a region of 2M pages
        private const ulong Gfn1G = 0x40000;     // GPA 1 GiB: one 1G page

        private static readonly AccessKind[] s_allAccesses = Enumerable.Range(1, 7).Select(a => (AccessKind)a).ToArray();

        // (type, access) pairs that give a present leaf, and one valid-but-not-present.
        private static readonly (P2mType Type, P2mAccess Access)[] s_combos =
        [
            (P2mType.RamRw, P2mAccess.RWX), (P2mType.RamRo, P2mAccess.RX), (P2mType.GrantMapRo, P2mAccess.R),
            (P2mType.RamRw, P2mAccess.X), (P2mType.RamRw, P2mAccess.RW), (P2mType.RamLogDirty, P2mAccess.RWX),
            (P2mType.RamRw, P2mAccess.N),
        ];

        // ------------------------------------------------------------------------------------
        // Construction and arguments
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(0)]
        [InlineData(-1)]
        [InlineData(3)]
        [InlineData(100)]
        [InlineData(int.MinValue)]
        [InlineData(1 << 25)]
        public void Constructor_CapacityNotAPowerOfTwoInRange_Throws(int capacity)
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            ArgumentOutOfRangeException ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, capacity));
            Assert.Equal("capacity", ex.ParamName);
            ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, capacity, 1, SoftTlb.MaxCapacityLimit));
            Assert.Equal("capacity", ex.ParamName);
        }

        [Fact]
        public void Constructor_Defaults_AndBounds()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            var tlb = new SoftTlb(p2m);
            Assert.Equal(SoftTlb.DefaultCapacity, tlb.Capacity);
            Assert.Equal(256, tlb.Capacity);
            Assert.Same(p2m, tlb.P2m);
            Assert.Equal(tlb.Capacity, tlb.MinCapacity);
            Assert.Equal(tlb.Capacity, tlb.MaxCapacity);
            Assert.Equal(1, new SoftTlb(p2m, 1).Capacity);

            Assert.Throws<ArgumentNullException>(() => new SoftTlb(null!));
            Assert.Equal("minCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 64, 0, 128)).ParamName);
            Assert.Equal("minCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 64, 24, 128)).ParamName);
            Assert.Equal("maxCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 64, 32, 16)).ParamName);
            Assert.Equal("maxCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 64, 32, 96)).ParamName);
            Assert.Equal("minCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 16, 32, 128)).ParamName);
            Assert.Equal("maxCapacity", Assert.Throws<ArgumentOutOfRangeException>(() => new SoftTlb(p2m, 256, 32, 128)).ParamName);

            p2m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => new SoftTlb(p2m));
        }

        [Fact]
        public void Translate_BadArgumentsOnCachedPage_ThrowAsP2mTranslate()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            const ulong gpa = 0x10_123;
            Assert.Equal(EptStatus.Ok, tlb.Translate(gpa, AccessKind.Read | AccessKind.Write | AccessKind.Execute).Status);
            Assert.Equal(EptStatus.Ok, tlb.Translate(gpa, AccessKind.Read).Status);
            Assert.Equal(1, tlb.Hits);      // cached with every right

            foreach (int bad in new[] { 0, 8, 9, 15, 33, 65, 255 })
            {
                AssertSameException(() => p2m.Translate(gpa, (AccessKind)bad), () => tlb.Translate(gpa, (AccessKind)bad), "access");
            }

            // Same slot and page offset, beyond the 48-bit width (the high bits are not in the index).
            foreach (ulong far in new[] { gpa | (1UL << 48), gpa | (1UL << 63), gpa + (1UL << 52) })
            {
                AssertSameException(() => p2m.Translate(far, AccessKind.Read), () => tlb.Translate(far, AccessKind.Read), "gpa");
            }

            Assert.Equal(1, tlb.Hits);
            Assert.Equal(EptStatus.Ok, tlb.Translate(gpa, AccessKind.Read).Status);
            Assert.Equal(2, tlb.Hits);
        }

        [Theory]
        [InlineData(21, PageOrder.Size2M)]
        [InlineData(25, PageOrder.Size2M)]
        [InlineData(25, PageOrder.Size1G)]
        [InlineData(30, PageOrder.Size1G)]
        public void Translate_NarrowAddressWidth_SuperpageCachedBeyondTheWidthStillThrows(int addressBits, PageOrder order)
        {
            // A superpage larger than the guest-physical width: addresses past the width lie in
            // the cached superpage's range, yet must throw as P2m.Translate does.
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory, new P2mOptions { AddressBits = addressBits });
            p2m.SetEntry(0, 1UL << 22, order, P2mType.MmioDirect, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m, 4);
            ulong limit = 1UL << addressBits;
            ulong end = Math.Min(limit, 1UL << (12 + (int)order));   // the mapped part below the width
            Assert.Equal(EptStatus.Ok, p2m.Translate(end - 8, AccessKind.Read).Status);
            Assert.Equal(p2m.Translate(end - 8, AccessKind.Read), tlb.Translate(end - 8, AccessKind.Read));
            Assert.Equal(p2m.Translate(0, AccessKind.Read), tlb.Translate(0, AccessKind.Read));
            Assert.Equal((1L, 1L), (tlb.Hits, tlb.Misses));     // the second came from the superpage entry
            foreach (ulong far in new[] { limit, limit + 0x1000, limit | 0x123, limit * 2 - 1 })
            {
                AssertSameException(() => p2m.Translate(far, AccessKind.Read), () => tlb.Translate(far, AccessKind.Read), "gpa");
            }

            ulong[] gpas = [0, limit];
            var results = new EptTranslation[2];
            AssertSameException(() => p2m.TranslateBatch(gpas, AccessKind.Read, results), () => tlb.TranslateBatch(gpas, AccessKind.Read, results), "gpa");
        }

        [Fact]
        public void TranslateBatch_MatchesP2mAndChecksArgumentsFirst()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(Gfn2M, 0x800, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(Gfn4K, 0x40, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RX);
            var tlb = new SoftTlb(p2m, 16);
            var rng = new Random(7);
            ulong[] gpas = Enumerable.Range(0, 300).Select(i => (i % 3) switch
            {
                0 => (Gfn2M << 12) + (ulong)rng.Next(1 << 21),
                1 => (Gfn4K << 12) + (ulong)rng.Next(1 << 13),
                _ => (ulong)rng.NextInt64(1L << 40),
            }).ToArray();
            var results = new EptTranslation[gpas.Length + 5];
            foreach (AccessKind access in s_allAccesses)
            {
                Assert.Equal(gpas.Length, tlb.TranslateBatch(gpas, access, results));
                for (int i = 0; i < gpas.Length; i++)
                {
                    Assert.Equal(p2m.Translate(gpas[i], access), results[i]);
                }
            }

            Assert.True(tlb.Hits > gpas.Length, $"hits {tlb.Hits}");

            // Argument errors come before any lookup (no counter moves), as in P2m.TranslateBatch.
            long lookups = tlb.Hits + tlb.Misses;
            AssertSameException(() => p2m.TranslateBatch(gpas, AccessKind.Read, new EptTranslation[2]),
                                () => tlb.TranslateBatch(gpas, AccessKind.Read, new EptTranslation[2]), "results");
            AssertSameException(() => p2m.TranslateBatch(gpas, 0, results), () => tlb.TranslateBatch(gpas, 0, results), "access");
            AssertSameException(() => p2m.TranslateBatch(gpas, (AccessKind)8, results), () => tlb.TranslateBatch(gpas, (AccessKind)8, results), "access");
            ulong[] bad = [gpas[0], 1UL << 48];
            AssertSameException(() => p2m.TranslateBatch(bad, AccessKind.Read, results), () => tlb.TranslateBatch(bad, AccessKind.Read, results), "gpa");
            Assert.Equal(lookups, tlb.Hits + tlb.Misses);
            Assert.Equal(0, tlb.TranslateBatch(ReadOnlySpan<ulong>.Empty, AccessKind.Read, Span<EptTranslation>.Empty));
        }

        // ------------------------------------------------------------------------------------
        // Hits equal P2m.Translate; counters; superpages
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(1, 64)]
        [InlineData(2, 1)]
        [InlineData(3, 1024)]
        public void Translate_RandomMappingsAndAddresses_EqualsP2mTranslate(int seed, int capacity)
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            var rng = new Random(seed);
            MapRandomly(p2m, rng);
            var tlb = new SoftTlb(p2m, capacity);

            ulong[] pool = RandomGpas(rng, 3000);
            const int lookups = 200_000;
            for (int i = 0; i < lookups; i++)
            {
                ulong gpa = pool[rng.Next(pool.Length)];
                AccessKind access = s_allAccesses[rng.Next(s_allAccesses.Length)];
                EptTranslation expected = p2m.Translate(gpa, access);
                EptTranslation actual = tlb.Translate(gpa, access);
                if (expected != actual)
                {
                    Assert.Fail($"lookup {i}: gpa 0x{gpa:X} {access}: TLB {actual}, walk {expected}");
                }
            }

            Assert.Equal(lookups, tlb.Hits + tlb.Misses);
            Assert.True(tlb.Hits > lookups / 10, $"only {tlb.Hits} hits: the cache was not exercised");
            Assert.True(tlb.Misses > 0);
        }

        [Fact]
        public void Translate_ViolationsAndMisconfigs_AreNeverCached()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RX);
            p2m.SetEntry(0x11, 0x21, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            // Memory type 2 is reserved: a misconfiguration.
            TestTables.Write(p2m, 0x11, 1, (TestTables.Read(p2m, 0x11, 1).Raw & ~0x38UL) | (2UL << 3));
            var tlb = new SoftTlb(p2m);

            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(p2m.Translate(0x10_000, AccessKind.Write), tlb.Translate(0x10_000, AccessKind.Write));
                Assert.Equal(EptStatus.Violation, tlb.Translate(0x10_000, AccessKind.Write).Status);
                Assert.Equal(EptStatus.Misconfig, tlb.Translate(0x11_000, AccessKind.Read).Status);
                Assert.Equal(EptStatus.Violation, tlb.Translate(0x12_000, AccessKind.Read).Status);   // hole
            }

            Assert.Equal(0, tlb.Hits);
            Assert.Equal(12, tlb.Misses);

            // The read-execute page is cached on its first success; its write still walks.
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_000, AccessKind.Read).Status);
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_008, AccessKind.Execute).Status);
            Assert.Equal(EptStatus.Violation, tlb.Translate(0x10_010, AccessKind.Write).Status);
            Assert.Equal(1, tlb.Hits);
            Assert.Equal(14, tlb.Misses);
        }

        [Fact]
        public void Counters_CountHitsMissesAndFlushes_AndReset()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            Assert.Equal((0L, 0L, 0L), (tlb.Hits, tlb.Misses, tlb.Flushes));

            EptTranslation first = tlb.Translate(0x10_abc, AccessKind.Read);
            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x20_abc, 1, 0), first);
            Assert.Equal((0L, 1L), (tlb.Hits, tlb.Misses));
            for (int i = 0; i < 10; i++)
            {
                Assert.Equal(new EptTranslation(EptStatus.Ok, 0x20_000 + (ulong)i, 1, 0), tlb.Translate(0x10_000 + (ulong)i, AccessKind.Write));
            }

            Assert.Equal((10L, 1L), (tlb.Hits, tlb.Misses));
            tlb.Flush();
            Assert.Equal(1, tlb.Flushes);
            tlb.Translate(0x10_000, AccessKind.Read);
            Assert.Equal((10L, 2L), (tlb.Hits, tlb.Misses));

            tlb.ResetCounters();
            Assert.Equal((0L, 0L, 0L, 0L), (tlb.Hits, tlb.Misses, tlb.Flushes, tlb.Resizes));
            tlb.Translate(0x10_000, AccessKind.Execute);
            Assert.Equal((1L, 0L), (tlb.Hits, tlb.Misses));
            Assert.Contains("hits=1", tlb.ToString());
        }

        // ------------------------------------------------------------------------------------
        // A/D mode
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(PageOrder.Size4K)]
        [InlineData(PageOrder.Size2M)]
        [InlineData(PageOrder.Size1G)]
        public void AccessDirty_WriteAfterCachedRead_WalksAndSetsDirty(PageOrder order)
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory, new P2mOptions { AccessDirty = true });
            ulong gfn = order == PageOrder.Size1G ? Gfn1G : Gfn2M;
            P2mType type = order == PageOrder.Size1G ? P2mType.MmioDirect : P2mType.RamRw;
            ulong mfn = order == PageOrder.Size1G ? 0x40000UL : 0x400UL;
            p2m.SetEntry(gfn, mfn, order, type, P2mAccess.RWX);
            int level = (int)order / 9 + 1;
            // Writable RAM leaves are created dirty (Xen presets A/D); start from a clean one.
            TestTables.Write(p2m, gfn, level, TestTables.Read(p2m, gfn, level).Raw & ~EptEntry.DirtyBit);
            var tlb = new SoftTlb(p2m);

            Assert.Equal(EptStatus.Ok, tlb.Translate(gfn << 12, AccessKind.Read).Status);
            Assert.Equal(EptStatus.Ok, tlb.Translate((gfn << 12) + 8, AccessKind.Read | AccessKind.Execute).Status);
            EptEntry leaf = TestTables.Read(p2m, gfn, level);
            Assert.True(leaf.Accessed);
            Assert.False(leaf.Dirty);
            Assert.Equal((1L, 1L), (tlb.Hits, tlb.Misses));

            // The cached read must not let the write skip the dirty flag.
            Assert.Equal(new EptTranslation(EptStatus.Ok, (mfn << 12) + 16, level, 0), tlb.Translate((gfn << 12) + 16, AccessKind.Write));
            Assert.True(TestTables.Read(p2m, gfn, level).Dirty);
            Assert.Equal(2, tlb.Misses);

            // Filled by a write: later writes (and reads) hit.
            tlb.Translate((gfn << 12) + 24, AccessKind.Write);
            tlb.Translate((gfn << 12) + 32, AccessKind.Read);
            Assert.Equal((3L, 2L), (tlb.Hits, tlb.Misses));

            if (order != PageOrder.Size4K)
            {
                // Another 4K page of the superpage: served from the superpage entry, write included.
                tlb.Translate((gfn + 1) << 12, AccessKind.Write);
                Assert.Equal((4L, 2L), (tlb.Hits, tlb.Misses));
            }

            // Clearing the dirty flag behind the p2m's back needs an INVEPT; then the next write walks again.
            TestTables.Write(p2m, gfn, level, TestTables.Read(p2m, gfn, level).Raw & ~EptEntry.DirtyBit);
            p2m.InvalidateTlbs();
            tlb.Translate(gfn << 12, AccessKind.Write);
            Assert.True(TestTables.Read(p2m, gfn, level).Dirty);
        }

        private static void MapRandomly(P2m p2m, Random rng)
        {
            p2m.SetEntry(Gfn1G, 0x100000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RWX);
            p2m.SetEntry(Gfn1G + (1 << 18), 0x140000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RX);
            for (int i = 0; i < 24; i++)
            {
                (P2mType type, P2mAccess access) = s_combos[rng.Next(s_combos.Length)];
                p2m.SetEntry(Gfn2M + ((ulong)rng.Next(32) << 9), (ulong)rng.Next(1, 16) << 9, PageOrder.Size2M, type, access);
            }

            for (int i = 0; i < 400; i++)
            {
                (P2mType type, P2mAccess access) = s_combos[rng.Next(s_combos.Length)];
                p2m.SetEntry(Gfn4K + (ulong)rng.Next(2048), (ulong)rng.Next(1, 16384), PageOrder.Size4K, type, access);
            }

            // Misconfigurations: reserved memory type 2 on some 4K and 2M leaves, write-without-read on one.
            for (int i = 0; i < 20; i++)
            {
                ulong gfn = Gfn4K + (ulong)rng.Next(2048);
                if (TestTables.SlotHpa(p2m, gfn, 1) is ulong hpa && (p2m.Memory.ReadUInt64(hpa) & 7) != 0)
                {
                    p2m.Memory.WriteUInt64(hpa, (p2m.Memory.ReadUInt64(hpa) & ~0x38UL) | (2UL << 3));
                }
            }

            if (TestTables.SlotHpa(p2m, Gfn2M, 2) is ulong pde && (p2m.Memory.ReadUInt64(pde) & 0x80) != 0)
            {
                p2m.Memory.WriteUInt64(pde, (p2m.Memory.ReadUInt64(pde) & ~0x38UL) | (3UL << 3));
            }

            for (ulong gfn = Gfn4K; gfn < Gfn4K + 2048; gfn++)
            {
                if (TestTables.SlotHpa(p2m, gfn, 1) is ulong hpa && (p2m.Memory.ReadUInt64(hpa) & 7) == 7)
                {
                    p2m.Memory.WriteUInt64(hpa, p2m.Memory.ReadUInt64(hpa) & ~1UL);    // write without read
                    break;
                }
            }
        }

        private static ulong[] RandomGpas(Random rng, int count)
            => Enumerable.Range(0, count).Select(i => (i % 4) switch
            {
                0 => (Gfn1G << 12) + (ulong)rng.NextInt64(2L << 30),
                1 => (Gfn2M << 12) + (ulong)rng.NextInt64(64L << 20),
                2 => (Gfn4K << 12) + (ulong)rng.NextInt64(8L << 20),
                _ => (ulong)rng.NextInt64(1L << 48),
            }).ToArray();

        private static Dictionary<(ulong, AccessKind), EptTranslation> Snapshot(P2m p2m, ulong[] gpas, AccessKind[] accesses)
        {
            var d = new Dictionary<(ulong, AccessKind), EptTranslation>();
            foreach (ulong gpa in gpas)
            {
                foreach (AccessKind access in accesses)
                {
                    d[(gpa, access)] = p2m.Translate(gpa, access);
                }
            }

            return d;
        }

        private static void AssertSameException(Action reference, Action actual, string paramName)
        {
            Exception expected = Assert.ThrowsAny<ArgumentException>(reference);
            Exception got = Assert.ThrowsAny<ArgumentException>(actual);
            Assert.Equal(expected.GetType(), got.GetType());
            Assert.Equal(paramName, ((ArgumentException)expected).ParamName);
            Assert.Equal(paramName, ((ArgumentException)got).ParamName);
            Assert.Equal(expected.Message, got.Message);
        }

        private static void AssertSameException(Func<EptTranslation> reference, Func<EptTranslation> actual, string paramName)
            => AssertSameException(() => { reference(); }, () => { actual(); }, paramName);

        private static void AssertSameException(Func<int> reference, Func<int> actual, string paramName)
            => AssertSameException(() => { reference(); }, () => { actual(); }, paramName);
    }
}

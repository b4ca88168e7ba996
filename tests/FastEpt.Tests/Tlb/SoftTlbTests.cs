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
    public sealed class SoftTlbTests
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

        // ------------------------------------------------------------------------------------
        // Coherence: every kind of SetEntry invalidates before it returns
        // ------------------------------------------------------------------------------------

        public static TheoryData<string> Changes => new()
        {
            "remove 4K", "remap 4K", "restrict 4K", "change type 4K", "widen 4K", "not present 4K",
            "remove 2M", "remap 2M", "restrict 2M", "split 2M", "split 2M other page", "merge 4K into 2M",
            "remove 1G", "split 1G", "restrict 1G", "merge 2M into 1G",
        };

        [Theory]
        [MemberData(nameof(Changes))]
        public void SetEntry_EveryKindOfChange_IsSeenByTheNextLookup(string change)
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            const ulong g4 = Gfn4K + 5;
            const ulong g2 = Gfn2M;
            const ulong g1 = Gfn1G;
            p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(g4 + 1, 0x101, PageOrder.Size4K, P2mType.RamRo, P2mAccess.R);
            p2m.SetEntry(g2, 0x400, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(g1, 0x400000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.RWX);
            var tlbs = new[] { new SoftTlb(p2m, 1), new SoftTlb(p2m, 64) };
            ulong[] probes = [g4 << 12, (g4 + 1) << 12, (g2 + 7) << 12, (g2 + 300) << 12, (g1 + 0x1234) << 12, (g1 + 0x3FFFF) << 12, g1 << 12];
            AccessKind[] accesses = [AccessKind.Read, AccessKind.Write, AccessKind.Execute, AccessKind.Read | AccessKind.Write | AccessKind.Execute];
            foreach (SoftTlb tlb in tlbs)
            {
                Warm(tlb, probes, accesses);
                Assert.True(tlb.Hits > 0);
            }

            Dictionary<(ulong, AccessKind), EptTranslation> before = Snapshot(p2m, probes, accesses);
            switch (change)
            {
                case "remove 4K": p2m.SetEntry(g4, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N); break;
                case "remap 4K": p2m.SetEntry(g4, 0x200, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "restrict 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R); break;
                case "change type 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX); break;
                case "widen 4K": p2m.SetEntry(g4 + 1, 0x101, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "not present 4K": p2m.SetEntry(g4, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.N); break;
                case "remove 2M": p2m.SetEntry(g2, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N); break;
                case "remap 2M": p2m.SetEntry(g2, 0x600, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX); break;
                case "restrict 2M": p2m.SetEntry(g2, 0x400, PageOrder.Size2M, P2mType.RamRo, P2mAccess.RX); break;
                case "split 2M": p2m.SetEntry(g2 + 7, 0x207, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX); break;
                case "split 2M other page": p2m.SetEntry(g2 + 8, 0x208, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R); break;
                case "merge 4K into 2M": p2m.SetEntry(Gfn4K, 0x800, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX); break;
                case "remove 1G": p2m.SetEntry(g1, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.N); break;
                case "split 1G": p2m.SetEntry(g1 + 0x1234, 0x123, PageOrder.Size4K, P2mType.RamRo, P2mAccess.R); break;
                case "restrict 1G": p2m.SetEntry(g1, 0x400000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.X); break;
                case "merge 2M into 1G": p2m.SetEntry(Gfn2M, 0x800000, PageOrder.Size1G, P2mType.MmioDirect, P2mAccess.R); break;
                default: throw new ArgumentOutOfRangeException(nameof(change));
            }

            Dictionary<(ulong, AccessKind), EptTranslation> after = Snapshot(p2m, probes, accesses);
            Assert.True(before.Any(kv => after[kv.Key] != kv.Value), "the change is invisible to a walk: the test would prove nothing");

            foreach (SoftTlb tlb in tlbs)
            {
                foreach (ulong gpa in probes)
                {
                    foreach (AccessKind access in accesses)
                    {
                        Assert.Equal(after[(gpa, access)], tlb.Translate(gpa, access));
                    }
                }
            }
        }

        [Fact]
        public void SetEntry_MergeTablesIntoSuperpage_CachedPagesOfTheOldTablesAreDropped()
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            for (ulong i = 0; i < 16; i++)
            {
                p2m.SetEntry(Gfn2M + i, 0x100 + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            var tlb = new SoftTlb(p2m);
            for (ulong i = 0; i < 16; i++)
            {
                Assert.Equal(((0x100 + i) << 12) | 0x10, tlb.Translate(((Gfn2M + i) << 12) | 0x10, AccessKind.Write).Hpa);
            }

            p2m.SetEntry(Gfn2M, 0xE00, PageOrder.Size2M, P2mType.RamRo, P2mAccess.RX);
            for (ulong i = 0; i < 16; i++)
            {
                ulong gpa = ((Gfn2M + i) << 12) | 0x10;
                Assert.Equal(new EptTranslation(EptStatus.Ok, ((0xE00 + i) << 12) | 0x10, 2, 0), tlb.Translate(gpa, AccessKind.Read));
                Assert.Equal(p2m.Translate(gpa, AccessKind.Write), tlb.Translate(gpa, AccessKind.Write));
                Assert.Equal(EptStatus.Violation, tlb.Translate(gpa, AccessKind.Write).Status);
            }
        }

        [Fact]
        public void SetEntry_UnchangedOrHoleFilling_DoesNotFlush()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            tlb.Translate(0x10_000, AccessKind.Read);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);     // same entry
            p2m.SetEntry(0x11, 0x21, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);     // a hole filled
            p2m.SetEntry(0x5000, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);   // removing nothing
            Assert.Equal(EptStatus.Ok, tlb.Translate(0x10_000, AccessKind.Read).Status);
            Assert.Equal((1L, 1L, 0L), (tlb.Hits, tlb.Misses, tlb.Flushes));
        }

        [Fact]
        public void InvalidateTlbs_AfterWritingTablesBehindTheP2msBack_DropsTheStaleTranslation()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            using P2m other = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            other.SetEntry(0x10, 0x30, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            var otherTlb = new SoftTlb(other);
            Assert.Equal(0x20_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(0x30_000UL, otherTlb.Translate(0x10_000, AccessKind.Read).Hpa);

            // A raw table write is not a SetEntry: like hardware, the TLB keeps the old translation.
            TestTables.Write(p2m, 0x10, 1, TestTables.Read(p2m, 0x10, 1).WithMfn(0x21).Raw);
            Assert.Equal(0x21_000UL, p2m.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(0x20_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);

            p2m.InvalidateTlbs();
            Assert.Equal(0x21_000UL, tlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(1, tlb.Flushes);

            // Single-context: the other p2m's TLB keeps its entries.
            Assert.Equal(0x30_000UL, otherTlb.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal((1L, 1L, 0L), (otherTlb.Hits, otherTlb.Misses, otherTlb.Flushes));
        }

        [Fact]
        public void InvalidateAll_FlushesTlbsOfEveryP2m()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m a = new P2m(memory);
            using P2m b = new P2m(memory);
            a.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            b.SetEntry(0x10, 0x30, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var tlbA = new SoftTlb(a);
            var tlbB = new SoftTlb(b);
            tlbA.Translate(0x10_000, AccessKind.Read);
            tlbB.Translate(0x10_000, AccessKind.Read);
            TestTables.Write(a, 0x10, 1, TestTables.Read(a, 0x10, 1).WithMfn(0x22).Raw);
            TestTables.Write(b, 0x10, 1, 0);
            Assert.Equal(0x20_000UL, tlbA.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(EptStatus.Ok, tlbB.Translate(0x10_000, AccessKind.Read).Status);

            SoftTlb.InvalidateAll();
            Assert.Equal(0x22_000UL, tlbA.Translate(0x10_000, AccessKind.Read).Hpa);
            Assert.Equal(b.Translate(0x10_000, AccessKind.Read), tlbB.Translate(0x10_000, AccessKind.Read));
            Assert.Equal(EptStatus.Violation, tlbB.Translate(0x10_000, AccessKind.Read).Status);
            Assert.Equal(1, tlbA.Flushes);
            Assert.Equal(1, tlbB.Flushes);
        }

        [Fact]
        public void Flush_EpochWrapsAfter4095Flushes_OldEntriesNeverMatchAgain()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(Gfn2M, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            for (int round = 0; round < 3; round++)
            {
                tlb.Flush();
                tlb.ResetCounters();
                tlb.Translate(0x10_000, AccessKind.Read);
                tlb.Translate(Gfn2M << 12, AccessKind.Read);
                Assert.Equal(2, tlb.Misses);
                // After exactly one epoch cycle the epoch value repeats: stale tags must not match.
                for (int i = 0; i < 4095; i++)
                {
                    tlb.Flush();
                }

                TestTables.Write(p2m, 0x10, 1, TestTables.Read(p2m, 0x10, 1).WithMfn(0x21 + (ulong)round).Raw);
                Assert.Equal(((0x21UL + (ulong)round) << 12) | 8, tlb.Translate(0x10_008, AccessKind.Read).Hpa);
                Assert.Equal(0x200_000UL + 0x3000, tlb.Translate((Gfn2M + 3) << 12, AccessKind.Read).Hpa);
                Assert.Equal(4, tlb.Misses);
                Assert.Equal(4095, tlb.Flushes);
            }
        }

        [Fact]
        public void Dispose_CachedPagesThrowObjectDisposed()
        {
            using HostMemory memory = new HostMemory(16 << 20);
            var p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(Gfn2M, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var tlb = new SoftTlb(p2m);
            tlb.Translate(0x10_000, AccessKind.Read);
            tlb.Translate(Gfn2M << 12, AccessKind.Read);
            tlb.Translate(0x10_000, AccessKind.Read);
            Assert.Equal(1, tlb.Hits);

            p2m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => tlb.Translate(0x10_000, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => tlb.Translate((Gfn2M + 1) << 12, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => tlb.TranslateBatch(new ulong[] { 0x10_000 }, AccessKind.Read, new EptTranslation[1]));
            Assert.Throws<ObjectDisposedException>(() => p2m.InvalidateTlbs());
            Assert.Equal(1, tlb.Hits);
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

        // ------------------------------------------------------------------------------------
        // Randomized model test: SetEntry interleaved with lookups
        // ------------------------------------------------------------------------------------

        [Theory]
        [InlineData(11, false)]
        [InlineData(12, false)]
        [InlineData(13, true)]
        public void RandomSetEntryAndLookups_EveryLookupEqualsTheWalk(int seed, bool accessDirty)
        {
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory, new P2mOptions { AccessDirty = accessDirty });
            var rng = new Random(seed);
            SoftTlb[] tlbs = [new SoftTlb(p2m, 1), new SoftTlb(p2m, 16), new SoftTlb(p2m, 512), new SoftTlb(p2m, 16, 4, 1024)];
            // A small window (two 1G pages, four 2M slots of each, eight 4K pages of each 2M) so
            // that lookups revisit pages and changes hit cached ones.
            ulong[] gfns = Enumerable.Range(0, 2).SelectMany(g => Enumerable.Range(0, 4).SelectMany(s => Enumerable.Range(0, 8)
                .Select(p => Gfn1G + ((ulong)g << 18) + ((ulong)s * 37 << 9) + (ulong)p * 61))).ToArray();
            const int ops = 60_000;
            int sets = 0;
            var recent = new ulong[8];      // locality: most lookups revisit a recent page
            for (int op = 0; op < ops; op++)
            {
                if (rng.Next(1000) < 15)
                {
                    RandomSet(p2m, rng, gfns);
                    sets++;
                    continue;
                }

                ulong gfn = rng.Next(10) < 7 && op > 8 ? recent[rng.Next(recent.Length)] : gfns[rng.Next(gfns.Length)];
                recent[op & 7] = gfn;
                ulong gpa = (gfn << 12) + (uint)rng.Next(4096);
                AccessKind access = s_allAccesses[rng.Next(s_allAccesses.Length)];
                SoftTlb tlb = tlbs[rng.Next(tlbs.Length)];
                EptTranslation actual = tlb.Translate(gpa, access);
                EptTranslation expected = p2m.Translate(gpa, access);
                if (actual != expected)
                {
                    Assert.Fail($"op {op}: gpa 0x{gpa:X} {access} TLB {actual}, walk {expected}, entry {p2m.GetEntry(gfn)}");
                }

                if (accessDirty && actual.Status == EptStatus.Ok && (access & AccessKind.Write) != 0)
                {
                    Assert.True(TestTables.Read(p2m, gfn, actual.Level).Dirty, $"op {op}: write to 0x{gpa:X} left the leaf clean");
                }
            }

            long hits = tlbs.Sum(t => t.Hits);
            long misses = tlbs.Sum(t => t.Misses);
            Assert.Equal(ops - sets, hits + misses);
            // Many lookups are violations (random accesses on restricted pages) and are never cached.
            Assert.True(hits > (ops - sets) / 20, $"only {hits} hits of {ops - sets}");
            Assert.True(tlbs.All(t => t.Hits > 0 && t.Flushes > 0));
        }

        // ------------------------------------------------------------------------------------
        // Helpers
        // ------------------------------------------------------------------------------------

        private static void RandomSet(P2m p2m, Random rng, ulong[] gfns)
        {
            ulong gfn = gfns[rng.Next(gfns.Length)];
            int kind = rng.Next(10);
            PageOrder order = kind < 6 ? PageOrder.Size4K : kind < 9 ? PageOrder.Size2M : PageOrder.Size1G;
            ulong count = 1UL << (int)order;
            gfn &= ~(count - 1);
            (P2mType type, P2mAccess access) = s_combos[rng.Next(s_combos.Length)];
            if (rng.Next(5) == 0)
            {
                p2m.SetEntry(gfn, Mfn.Invalid, order, P2mType.Invalid, P2mAccess.N);
                return;
            }

            // RAM frames inside the 64 MiB host memory for 4K/2M; 1G pages (and some others) as MMIO.
            ulong mfn = order == PageOrder.Size1G || rng.Next(4) == 0
                ? ((ulong)rng.Next(1, 64) << 18)
                : ((ulong)rng.Next(8, 16) << 9) + (order == PageOrder.Size4K ? (ulong)rng.Next(512) : 0);
            if (mfn >= 1 << 18)
            {
                type = P2mType.MmioDirect;
            }

            p2m.SetEntry(gfn, mfn, order, type, access);
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

        private static void Warm(SoftTlb tlb, ulong[] gpas, AccessKind[] accesses)
        {
            for (int round = 0; round < 2; round++)
            {
                foreach (ulong gpa in gpas)
                {
                    foreach (AccessKind access in accesses)
                    {
                        tlb.Translate(gpa, access);
                    }
                }
            }
        }

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

        // Translates `pages` distinct pages of the 4K region (distinct slots while pages <= capacity).
        private static void Touch(SoftTlb tlb, int pages)
        {
            for (ulong i = 0; i < (ulong)pages; i++)
            {
                Assert.Equal(EptStatus.Ok, tlb.Translate((Gfn4K + i) << 12, AccessKind.Read).Status);
            }
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

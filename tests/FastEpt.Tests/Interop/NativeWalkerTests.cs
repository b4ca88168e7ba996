// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>
    /// End-to-end facts about <see cref="NativeWalker"/>: it reads a managed-built p2m exactly as
    /// the p2m does, its writes keep a p2m's bookkeeping coherent, and bad arguments fail as
    /// they do on <see cref="P2m"/>. (The randomized differential tests live in DifferentialTests.)
    /// </summary>
    public sealed class NativeWalkerTests
    {
        // Lazy reservations: only the frames touched (tables) cost memory.
        private const long HostBytes = 3L << 30;
        private const ulong Gfn1G = 0x40000;     // 1 GiB-aligned GFN and MFN

        [Fact]
        public void AbiVersion_MatchesTheGeneratedBindings()
        {
            Assert.Equal((int)FastEptNative.FASTEPT_ABI_VERSION, NativeWalker.AbiVersion);
        }

        [Fact]
        public void MakeEptp_MatchesP2mEptp()
        {
            using var memory = new HostMemory(16L << 20);
            _ = memory.AllocateFrame();
            using var p2m = new P2m(memory, new P2mOptions { Levels = 5, AddressBits = 57, AccessDirty = true });
            Assert.Equal(p2m.Eptp, FastEptNative.fastept_make_eptp(p2m.RootMfn, 5, 1));
            Assert.Equal(0x1234_5000UL | (3 << 3) | 6, FastEptNative.fastept_make_eptp(0x12345, 4, 0));
        }

        [Theory]
        [InlineData(4, false)]
        [InlineData(5, true)]
        public void ManagedBuiltP2m_TranslatesAndLooksUpIdentically(int levels, bool accessDirty)
        {
            using var memory = new HostMemory(HostBytes);
            using var p2m = new P2m(memory, new P2mOptions { Levels = levels, AddressBits = levels == 5 ? 52 : 48, AccessDirty = accessDirty });
            BuildSample(p2m);
            var native = new NativeWalker(p2m);
            Assert.Same(p2m, native.P2m);
            Assert.Equal(p2m.Eptp, native.Eptp);
            Assert.Equal(p2m.MaxMappedPfn, native.MaxMappedPfn);

            var random = new Random(levels);
            List<ulong> gpas = SampleGpas(random, p2m.Options.AddressBits);
            int oks = 0, violations = 0;
            foreach (ulong gpa in gpas)
            {
                for (int a = 1; a <= 7; a++)
                {
                    var access = (AccessKind)a;
                    EptTranslation expected = p2m.Translate(gpa, access);
                    EptTranslation actual = native.Translate(gpa, access);
                    Assert.True(expected == actual, $"gpa 0x{gpa:X} {access}: managed {expected}, native {actual}");
                    oks += expected.Status == EptStatus.Ok ? 1 : 0;
                    violations += expected.Status == EptStatus.Violation ? 1 : 0;
                }
            }

            Assert.True(oks > 300 && violations > 300, $"the sample should hit both outcomes ({oks} ok, {violations} violations)");

            // The batch writes native results straight into the EptTranslation span.
            ulong[] batch = gpas.ToArray();
            var results = new EptTranslation[batch.Length + 3];
            Assert.Equal(batch.Length, native.TranslateBatch(batch, AccessKind.Read | AccessKind.Write, results));
            for (int i = 0; i < batch.Length; i++)
            {
                Assert.Equal(p2m.Translate(batch[i], AccessKind.Read | AccessKind.Write), results[i]);
            }

            Assert.Equal(default(EptTranslation), results[batch.Length]);
            Assert.Equal(0, native.TranslateBatch(ReadOnlySpan<ulong>.Empty, AccessKind.Read, results));

            // Lookups: mappings, holes inside the mapped range, and GFNs beyond MaxMappedPfn.
            ulong gfnLimit = 1UL << (p2m.Options.AddressBits - 12);
            var gfns = new List<ulong> { 0, 0x100, 0x101, 0x1FF, 0x200, 0x3FF, 0x400, 0x4FF, 0x600, 0x601, 0x800, Gfn1G, Gfn1G + 0x3FFFF, Gfn1G + 0x40000 };
            gfns.AddRange(new ulong[] { p2m.MaxMappedPfn, p2m.MaxMappedPfn + 1, gfnLimit - 1, gfnLimit / 2, 1UL << 27 });
            gfns.AddRange(gpas.Select(g => g >> 12));
            foreach (ulong gfn in gfns.Where(g => g < gfnLimit))
            {
                Assert.Equal(p2m.GetEntry(gfn), native.GetEntry(gfn));
            }

            Assert.False(native.GetEntry(gfnLimit - 1).IsMapped);
            Assert.True(native.GetEntry(Gfn1G + 7).IsMapped);
            Assert.Equal(Gfn1G + 7, native.GetEntry(Gfn1G + 7).Mfn);
        }

        [Fact]
        public void NativeSetEntry_OnABoundWalker_KeepsTheP2mCoherent()
        {
            using var memoryA = new HostMemory(HostBytes);
            using var memoryB = new HostMemory(HostBytes);
            using var viaNative = new P2m(memoryA);
            using var viaManaged = new P2m(memoryB);
            var native = new NativeWalker(viaNative);

            // Each step runs natively on one p2m and managed on the other; afterwards both must
            // read the same through every reader and agree on their bookkeeping.
            (ulong Gfn, ulong Mfn, PageOrder Order, P2mType Type, P2mAccess Access, SuppressVe Sve)[] steps =
            [
                (0x100, 0x2000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit),        // new chain
                (Gfn1G, Gfn1G, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Clear),          // 1G leaf
                (Gfn1G + 0x205, Gfn1G + 0x9, PageOrder.Size4K, P2mType.RamRo, P2mAccess.R, SuppressVe.Set),  // split 1G to 4K: 513 tables
                (0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit),
                (0x403, 0x3003, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RW, SuppressVe.Inherit),        // split PoD 2M
                (0x600, 0x1FEE00, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RW, SuppressVe.Inherit),
                (0x101, 0x2001, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX, SuppressVe.Inherit),
                (0x100, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N, SuppressVe.Inherit),  // removal
                (0x400, 0x4000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RX, SuppressVe.Inherit),        // 2M over a PoD table: retires it
                (Gfn1G, Gfn1G, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit),        // 1G over 513 tables: retires them
                (0x10_0000, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N, SuppressVe.Inherit), // removal of nothing
                (0x8_0000, Mfn.Invalid, PageOrder.Size1G, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit),
            ];

            foreach (var s in steps)
            {
                native.SetEntry(s.Gfn, s.Mfn, s.Order, s.Type, s.Access, s.Sve);
                viaManaged.SetEntry(s.Gfn, s.Mfn, s.Order, s.Type, s.Access, s.Sve);
                string step = $"after {s}";
                Assert.True(viaManaged.TableFrameCount == viaNative.TableFrameCount, $"{step}: tables {viaManaged.TableFrameCount} managed, {viaNative.TableFrameCount} native");
                Assert.True(viaManaged.PodEntryCount == viaNative.PodEntryCount, $"{step}: PoD {viaManaged.PodEntryCount} managed, {viaNative.PodEntryCount} native");
                Assert.True(viaManaged.MaxMappedPfn == viaNative.MaxMappedPfn, $"{step}: max_mapped_pfn 0x{viaManaged.MaxMappedPfn:X} managed, 0x{viaNative.MaxMappedPfn:X} native");
                Assert.Equal(viaManaged.Reclaim() + viaManaged.TableFrameCount, viaNative.Reclaim() + viaNative.TableFrameCount);

                foreach (ulong gfn in new ulong[] { s.Gfn, s.Gfn + 1, s.Gfn + 0x1FF, 0x100, 0x101, 0x403, 0x404, 0x600, Gfn1G + 0x205, Gfn1G + 0x206, 0x8_0000 })
                {
                    P2mEntry expected = viaManaged.GetEntry(gfn);
                    Assert.Equal(expected, viaNative.GetEntry(gfn));
                    Assert.Equal(expected, native.GetEntry(gfn));
                    for (int a = 1; a <= 7; a++)
                    {
                        ulong gpa = (gfn << 12) | 0x123;
                        EptTranslation t = viaManaged.Translate(gpa, (AccessKind)a);
                        Assert.Equal(t, viaNative.Translate(gpa, (AccessKind)a));
                        Assert.Equal(t, native.Translate(gpa, (AccessKind)a));
                    }
                }
            }

            Assert.Equal(512 * 512, viaNative.PodEntryCount);
            Assert.Equal(0x8_0000UL + 0x3FFFF, viaNative.MaxMappedPfn);      // the 1G PoD entry's last GFN
            Assert.Equal(viaManaged.Memory.AllocatedFrameCount, viaNative.Memory.AllocatedFrameCount);

            // Populate-on-demand through the managed writer still works on native-built tables.
            viaNative.Pod.AddPage(0x5000, PageOrder.Size4K);
            Assert.Equal(P2mType.RamRw, viaNative.GetEntry(0x8_0003, P2mQuery.Alloc).Type);
            Assert.Equal(0x5000UL, native.GetEntry(0x8_0003).Mfn);
        }

        [Fact]
        public void BadArguments_ThrowTheDocumentedError_AndChangeNothing()
        {
            // The expectations are written out by hand from SetEntry's documentation (out of range
            // or enum: ArgumentOutOfRangeException; misaligned, or an access that would misconfigure:
            // ArgumentException; each naming the argument). The native walker reaches them through
            // the C library's own checks (fastept_check_set); the p2m through its managed ones.
            using var memoryA = new HostMemory(64L << 20);        // 16384 frames
            using var memoryB = new HostMemory(64L << 20);
            using var memoryC = new HostMemory(64L << 20);
            using var managed = new P2m(memoryA, new P2mOptions { ExecuteOnly = false, AddressBits = 39 });
            using var bound = new P2m(memoryB, new P2mOptions { ExecuteOnly = false, AddressBits = 39 });
            managed.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            bound.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            var native = new NativeWalker(bound);
            ulong root = memoryC.AllocateFrame();
            var unbound = new NativeWalker(memoryC, (root << 12) | (3 << 3) | 6, new P2mOptions { ExecuteOnly = false, AddressBits = 39 });
            ulong hash = TestTables.HashTables(memoryB);
            ulong hashC = TestTables.HashTables(memoryC);
            long tables = bound.TableFrameCount;
            ulong max = bound.MaxMappedPfn;

            const string Aoore = nameof(ArgumentOutOfRangeException);
            const string Ae = nameof(ArgumentException);
            (ulong Gfn, ulong Mfn, PageOrder Order, P2mType Type, P2mAccess Access, SuppressVe Sve, string Throws, string Param, string ManagedThrows)[] bad =
            [
                (0x400, 0x1000, (PageOrder)3, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "order", Aoore),
                (0x400, 0x1000, PageOrder.Size4K, (P2mType)16, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "type", Aoore),
                (0x400, 0x1000, PageOrder.Size4K, P2mType.RamRw, (P2mAccess)11, SuppressVe.Inherit, Aoore, "access", Aoore),
                (0x400, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, (SuppressVe)3, Aoore, "suppressVe", Aoore),
                (1UL << 27, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "gfn", Aoore),   // 39 address bits
                (0x401, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Ae, "gfn", Ae),
                (0x400, 0x1001, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Ae, "mfn", Ae),
                (0x400, Mfn.Invalid, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "mfn", Aoore),
                (0x400, 0x1000, PageOrder.Size4K, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit, Aoore, "mfn", Aoore),  // PoD carries no frame
                (0x400, 1UL << 20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "mfn", Aoore),  // past 16384 frames
                (0x400, 0x3FF0, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Ae, "mfn", Ae),
                (0x400, 0x4000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "mfn", Aoore),   // 2M at the end of host memory
                (0x400, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.W, SuppressVe.Inherit, Ae, "access", Ae),       // write without read
                (0x400, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.X, SuppressVe.Inherit, Ae, "access", Ae),       // execute-only, unsupported
                (0x400, 0x1000, PageOrder.Size2M, P2mType.MapForeign, P2mAccess.RWX, SuppressVe.Inherit, Aoore, "order", Aoore),  // foreign: 4K only
            ];
            foreach (var b in bad)
            {
                AssertError(b.Throws, b.Param, Record(() => native.SetEntry(b.Gfn, b.Mfn, b.Order, b.Type, b.Access, b.Sve)), "bound " + b);
                AssertError(b.Throws, b.Param, Record(() => unbound.SetEntry(b.Gfn, b.Mfn, b.Order, b.Type, b.Access, b.Sve)), "unbound " + b);
                AssertError(b.ManagedThrows, b.Param, Record(() => managed.SetEntry(b.Gfn, b.Mfn, b.Order, b.Type, b.Access, b.Sve)), "P2m " + b);
            }

            AssertError(Aoore, "gpa", Record(() => native.Translate(1UL << 39, AccessKind.Read)), "gpa");
            AssertError(Aoore, "access", Record(() => native.Translate(0, 0)), "access 0");
            AssertError(Aoore, "access", Record(() => native.Translate(0, (AccessKind)8)), "access 8");
            AssertError(Aoore, "gfn", Record(() => native.GetEntry(1UL << 27)), "gfn");
            AssertSameError(Record(() => managed.TranslateBatch(new ulong[2], AccessKind.Read, new EptTranslation[1])),
                Record(() => native.TranslateBatch(new ulong[2], AccessKind.Read, new EptTranslation[1])), "short results");
            AssertSameError(Record(() => managed.TranslateBatch(new ulong[] { 0, 1UL << 39 }, AccessKind.Read, new EptTranslation[2])),
                Record(() => native.TranslateBatch(new ulong[] { 0, 1UL << 39 }, AccessKind.Read, new EptTranslation[2])), "batch gpa");

            Assert.Equal(hash, TestTables.HashTables(memoryB));
            Assert.Equal(hashC, TestTables.HashTables(memoryC));
            Assert.Equal(1, memoryC.AllocatedFrameCount);
            Assert.Equal(tables, bound.TableFrameCount);
            Assert.Equal(max, bound.MaxMappedPfn);
            Assert.Equal(0x3FFUL, max);
            Assert.Equal(0, bound.PodEntryCount);
            Assert.Throws<InvalidOperationException>(() => native.MaxMappedPfn = 5);

            // Without 1G support.
            using var memoryD = new HostMemory(64L << 20);
            using var no1G = new P2m(memoryD, new P2mOptions { Support1G = false });
            AssertError(Aoore, "order", Record(() => new NativeWalker(no1G).SetEntry(0, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX)), "1G");
            AssertError(Aoore, "order", Record(() => no1G.SetEntry(0, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX)), "P2m 1G");
        }

        private static void AssertError(string type, string param, Exception actual, string what)
        {
            Assert.True(actual.GetType().Name == type, $"{what}: expected {type}, got {actual.GetType().Name}: {actual.Message}");
            Assert.True((actual as ArgumentException)?.ParamName == param, $"{what}: expected it to name '{param}', it names '{(actual as ArgumentException)?.ParamName}'");
        }

        [Fact]
        public void MemoryBoundWalker_WritesReadsAndReclaims()
        {
            using var memory = new HostMemory(64L << 20);
            ulong root = memory.AllocateFrame();
            ulong eptp = (root << 12) | (3 << 3) | 6;     // 4 levels, write-back, no A/D
            var native = new NativeWalker(memory, eptp);
            Assert.Null(native.P2m);
            Assert.Equal(ulong.MaxValue, native.MaxMappedPfn);
            Assert.False(native.GetEntry(0x123).IsMapped);

            native.SetEntry(0x200, 0x3000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(1 + 3, memory.AllocatedFrameCount);          // root + PDPT, PD, PT
            Assert.Equal(new EptTranslation(EptStatus.Ok, 0x3000_ABC, 1, 0), native.Translate(0x200_ABC, AccessKind.Write));
            Assert.Equal(0x3000UL, native.GetEntry(0x200).Mfn);

            // A 2M leaf over the page table unlinks it; it stays allocated until reclaimed.
            native.SetEntry(0x200, 0x2000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RX);
            Assert.Equal(1, native.RetiredSubtreeCount);
            Assert.Equal(1 + 3, memory.AllocatedFrameCount);
            Assert.Equal(1, native.ReclaimRetired());
            Assert.Equal(1 + 2, memory.AllocatedFrameCount);
            Assert.Equal(0, native.RetiredSubtreeCount);
            EptTranslation t = native.Translate(0x3FF_000, AccessKind.Write);
            Assert.Equal(EptStatus.Violation, t.Status);
            Assert.Equal(2, t.Level);

            // The same walk as a p2m over the same tables would give (a P2m's EPTP layout).
            native.MaxMappedPfn = 0x100;
            Assert.False(native.GetEntry(0x200).IsMapped);
            native.MaxMappedPfn = ulong.MaxValue;
            Assert.True(native.GetEntry(0x200).IsMapped);

            // Argument errors: the same types and names as P2m's.
            Assert.Equal("order", Assert.Throws<ArgumentOutOfRangeException>(() => native.SetEntry(0, 0, (PageOrder)1, P2mType.RamRw, P2mAccess.RWX)).ParamName);
            Assert.Equal("type", Assert.Throws<ArgumentOutOfRangeException>(() => native.SetEntry(0, 0, PageOrder.Size4K, (P2mType)20, P2mAccess.RWX)).ParamName);
            Assert.Equal("gfn", Assert.Throws<ArgumentOutOfRangeException>(() => native.SetEntry(1UL << 36, 0, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)).ParamName);
            Assert.Equal("gfn", Assert.Throws<ArgumentException>(() => native.SetEntry(0x201, 0x4000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX)).ParamName);
            Assert.Equal("mfn", Assert.Throws<ArgumentException>(() => native.SetEntry(0x400, 0x4001, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX)).ParamName);
            Assert.Equal("mfn", Assert.Throws<ArgumentOutOfRangeException>(() => native.SetEntry(0x400, 1UL << 20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX)).ParamName);
            Assert.Equal("access", Assert.Throws<ArgumentException>(() => native.SetEntry(0x400, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.W)).ParamName);
            Assert.Equal(1 + 2, memory.AllocatedFrameCount);

            Assert.Equal("eptp", Assert.Throws<ArgumentOutOfRangeException>(() => new NativeWalker(memory, (1UL << 30) | (3 << 3) | 6)).ParamName);
            Assert.Equal("eptp", Assert.Throws<ArgumentOutOfRangeException>(() => new NativeWalker(memory, (root << 12) | (2 << 3) | 6)).ParamName);
            Assert.Throws<InvalidOperationException>(() => new NativeWalker(new P2m(memory)).ReclaimRetired());
        }

        [Fact]
        public void CustomMemoryTypePolicy_NativeSetEntryIsNotSupported()
        {
            using var memory = new HostMemory(16L << 20);
            using var p2m = new P2m(memory, new P2mOptions { MmioReadOnly = mfn => mfn == 0xFEE00 });
            p2m.SetEntry(0x10, 0x20, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            var native = new NativeWalker(p2m);
            Assert.Equal(p2m.Translate(0x10_123, AccessKind.Read), native.Translate(0x10_123, AccessKind.Read));
            Assert.Throws<NotSupportedException>(() => native.SetEntry(0x11, 0x21, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            Assert.Equal(0x10UL, p2m.MaxMappedPfn);
        }

        [Fact]
        public void DisposedP2mOrMemory_ThrowsObjectDisposed()
        {
            var memory = new HostMemory(16L << 20);
            var p2m = new P2m(memory);
            var native = new NativeWalker(p2m);
            p2m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => native.Translate(0, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => native.GetEntry(0));
            Assert.Throws<ObjectDisposedException>(() => native.SetEntry(0, 0, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            Assert.Throws<ObjectDisposedException>(() => new NativeWalker(p2m));

            ulong root = memory.AllocateFrame();
            var unbound = new NativeWalker(memory, (root << 12) | (3 << 3) | 6);
            memory.Dispose();
            Assert.Throws<ObjectDisposedException>(() => unbound.Translate(0, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => unbound.TranslateBatch(new ulong[1], AccessKind.Read, new EptTranslation[1]));
        }

        // 4K, 2M and 1G RAM, restricted access, MMIO (direct and emulated), PoD, log-dirty.
        private static void BuildSample(P2m p2m)
        {
            p2m.SetEntry(0x100, 0x2000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x101, 0x2001, PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);
            p2m.SetEntry(0x102, 0x2002, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RX);
            p2m.SetEntry(0x103, 0x2003, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX);
            p2m.SetEntry(0x104, 0x2004, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RWX, SuppressVe.Clear);
            p2m.SetEntry(0x105, 0x2005, PageOrder.Size4K, P2mType.RamRw, P2mAccess.X);
            p2m.SetEntry(0x200, 0x10000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.N);
            p2m.SetEntry(0x600, 0x1FEE00, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RW);
            p2m.SetEntry(0x601, Mfn.Invalid, PageOrder.Size4K, P2mType.MmioDm, P2mAccess.RWX);
            p2m.SetEntry(0x800, 0x10200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RX);
            p2m.SetEntry(Gfn1G, Gfn1G, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
        }

        private static List<ulong> SampleGpas(Random random, int addressBits)
        {
            var gpas = new List<ulong>();
            foreach (ulong gfn in new ulong[] { 0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x106, 0x200, 0x3FF, 0x400, 0x600, 0x601, 0x800, 0x9FF })
            {
                gpas.Add((gfn << 12) + (ulong)random.Next(4096));
            }

            for (int i = 0; i < 300; i++)
            {
                ulong gpa = (i % 3) switch
                {
                    0 => (Gfn1G << 12) + (ulong)random.NextInt64(1L << 30),       // inside the 1G page
                    1 => (ulong)random.NextInt64(0xC0_0000),                      // the 4K/2M area
                    _ => (ulong)random.NextInt64(1L << addressBits),              // anywhere: mostly holes
                };
                gpas.Add(gpa);
            }

            return gpas;
        }

        private static Exception Record(Action action)
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                return e;
            }

            throw new Xunit.Sdk.XunitException("expected an exception");
        }

        private static void AssertSameError(Exception expected, Exception actual, string what)
        {
            Assert.True(expected.GetType() == actual.GetType(), $"{what}: P2m threw {expected.GetType().Name}, NativeWalker {actual.GetType().Name}: {actual.Message}");
            Assert.True((expected as ArgumentException)?.ParamName == (actual as ArgumentException)?.ParamName,
                $"{what}: P2m names '{(expected as ArgumentException)?.ParamName}', NativeWalker '{(actual as ArgumentException)?.ParamName}'");
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Every programmer error named in API.md ("Errors") and docs/model/p2m.md §3.3/3.9 throws the named
    /// exception with the right parameter name and changes nothing: every table frame, every
    /// counter and the allocator state are compared before and after. Running out of frames
    /// mid-operation throws <see cref="InsufficientMemoryException"/> with all partial work undone.
    /// </summary>
    public sealed partial class P2mBadInputTests : IDisposable
    {
        private const long GuestFrames = 1L << 18;      // 1 GiB at MFN 0, so a 1G RAM mapping fits
        private const long TableFrames = 2048;
        private const ulong GfnLimit = 1UL << 36;       // 48-bit guest-physical width
        private const ulong GpaLimit = 1UL << 48;
        private const ulong MmioLimit = 1UL << 34;      // 46-bit host-physical width

        private readonly HostMemory _memory;
        private readonly P2m _p2m;

        public P2mBadInputTests()
        {
            _memory = new HostMemory((GuestFrames + TableFrames) << 12);
            Assert.Equal(0UL, _memory.AllocateFrames(GuestFrames));
            _p2m = new P2m(_memory);
            Populate(_p2m);
        }

        public void Dispose()
        {
            _p2m.Dispose();
            _memory.Dispose();
        }

        private ulong FrameCount => (ulong)_memory.FrameCount;

        // ---- SetEntry -------------------------------------------------------------------------

        [Theory]
        [InlineData(GfnLimit, PageOrder.Size4K)]
        [InlineData(GfnLimit, PageOrder.Size2M)]
        [InlineData(GfnLimit, PageOrder.Size1G)]
        [InlineData(GfnLimit + 1, PageOrder.Size4K)]
        [InlineData(ulong.MaxValue, PageOrder.Size4K)]
        [InlineData(1UL << 63, PageOrder.Size1G)]
        public void SetEntry_GfnBeyondAddressWidth_ThrowsOutOfRangeAndChangesNothing(ulong gfn, PageOrder order)
            => AssertRejected<ArgumentOutOfRangeException>("gfn", () => _p2m.SetEntry(gfn, Mfn.Invalid, order, P2mType.PopulateOnDemand, P2mAccess.RWX));

        [Fact]
        public void SetEntry_GfnBeyondNarrowConfiguredWidth_ThrowsOutOfRange()
        {
            // 39-bit guest-physical addresses: GFNs stop at 2^27.
            using P2m narrow = new P2m(_memory, new P2mOptions { AddressBits = 39 });
            AssertRejected<ArgumentOutOfRangeException>("gfn", () => narrow.SetEntry(1UL << 27, 0x200, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("gfn", () => narrow.GetEntry(1UL << 27));
            AssertRejected<ArgumentOutOfRangeException>("gpa", () => narrow.Translate(1UL << 39, AccessKind.Read));
            narrow.SetEntry((1UL << 27) - 1, 0x200, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(EptStatus.Ok, narrow.Translate((1UL << 39) - 1, AccessKind.Read).Status);
        }

        [Theory]
        [InlineData(0x201UL, 0x200UL, PageOrder.Size2M)]
        [InlineData(0x3FFUL, 0x200UL, PageOrder.Size2M)]
        [InlineData(0x40001UL, 0UL, PageOrder.Size1G)]
        [InlineData(0x40200UL, 0UL, PageOrder.Size1G)]
        public void SetEntry_GfnMisalignedForOrder_ThrowsArgumentAndChangesNothing(ulong gfn, ulong mfn, PageOrder order)
            => AssertRejected<ArgumentException>("gfn", () => _p2m.SetEntry(gfn, mfn, order, P2mType.RamRw, P2mAccess.RWX));

        [Theory]
        [InlineData(0x200UL, 0x201UL, PageOrder.Size2M, P2mType.RamRw)]
        [InlineData(0x200UL, 0x80001UL, PageOrder.Size2M, P2mType.GrantMapRo)]
        [InlineData(0x40000UL, 0x200UL, PageOrder.Size1G, P2mType.RamRw)]
        [InlineData(0x200UL, 0x1000_0001UL, PageOrder.Size2M, P2mType.MmioDirect)]
        [InlineData(0x200UL, 0x1001UL, PageOrder.Size2M, P2mType.RamPaged)]
        public void SetEntry_MfnMisalignedForOrder_ThrowsArgumentAndChangesNothing(ulong gfn, ulong mfn, PageOrder order, P2mType type)
            => AssertRejected<ArgumentException>("mfn", () => _p2m.SetEntry(gfn, mfn, order, type, P2mAccess.RWX));

        [Theory]
        [InlineData(1)]
        [InlineData(8)]
        [InlineData(10)]
        [InlineData(19)]
        [InlineData(27)]
        [InlineData(36)]
        [InlineData(255)]
        public void SetEntry_UnsupportedOrder_ThrowsOutOfRangeAndChangesNothing(int order)
            => AssertRejected<ArgumentOutOfRangeException>("order", () => _p2m.SetEntry(0, 0, (PageOrder)order, P2mType.RamRw, P2mAccess.RWX));

        [Fact]
        public void SetEntry_1GWithoutSupport1G_ThrowsOutOfRangeAndChangesNothing()
        {
            using P2m no1G = new P2m(_memory, new P2mOptions { Support1G = false });
            no1G.SetEntry(0x200, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            AssertRejected<ArgumentOutOfRangeException>("order", () => no1G.SetEntry(0x40000, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("order", () => no1G.SetEntry(0, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.N));
        }

        [Fact]
        public void SetEntry_MapForeignAbove4K_ThrowsOutOfRangeAndChangesNothing()
        {
            // docs/model/p2m.md §3.3 step 1: map_foreign only at target 0.
            AssertRejected<ArgumentOutOfRangeException>("order", () => _p2m.SetEntry(0x200, 0x200, PageOrder.Size2M, P2mType.MapForeign, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("order", () => _p2m.SetEntry(0x40000, 0, PageOrder.Size1G, P2mType.MapForeign, P2mAccess.RWX));
        }

        [Theory]
        [InlineData(16)]
        [InlineData(63)]
        [InlineData(255)]
        public void SetEntry_UnknownType_ThrowsOutOfRangeAndChangesNothing(int type)
            => AssertRejected<ArgumentOutOfRangeException>("type", () => _p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, (P2mType)type, P2mAccess.RWX));

        [Theory]
        [InlineData(11)]
        [InlineData(15)]
        [InlineData(255)]
        public void SetEntry_UnknownAccess_ThrowsOutOfRangeAndChangesNothing(int access)
            => AssertRejected<ArgumentOutOfRangeException>("access", () => _p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, (P2mAccess)access));

        [Theory]
        [InlineData(3)]
        [InlineData(255)]
        public void SetEntry_UnknownSuppressVe_ThrowsOutOfRangeAndChangesNothing(int suppressVe)
            => AssertRejected<ArgumentOutOfRangeException>("suppressVe", () => _p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX, (SuppressVe)suppressVe));

        [Theory]
        [InlineData(P2mType.RamRw)]
        [InlineData(P2mType.RamLogDirty)]
        [InlineData(P2mType.RamRo)]
        [InlineData(P2mType.GrantMapRw)]
        [InlineData(P2mType.GrantMapRo)]
        [InlineData(P2mType.RamShared)]
        [InlineData(P2mType.RamBroken)]
        [InlineData(P2mType.MapForeign)]
        [InlineData(P2mType.IoreqServer)]
        public void SetEntry_RamTypeWithFrameOutsideHostMemory_ThrowsOutOfRangeAndChangesNothing(P2mType type)
        {
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x1000, FrameCount, PageOrder.Size4K, type, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x1000, 1UL << 34, PageOrder.Size4K, type, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x1000, Mfn.Invalid, PageOrder.Size4K, type, P2mAccess.RWX));
            if (type != P2mType.MapForeign)
            {
                // Starts inside host memory but runs past its end.
                AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x80000, 1UL << 18, PageOrder.Size1G, type, P2mAccess.RWX));
                AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x200, FrameCount, PageOrder.Size2M, type, P2mAccess.RWX));
                AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x200, Mfn.Invalid, PageOrder.Size2M, type, P2mAccess.RWX));
            }
        }

        [Theory]
        [InlineData(P2mType.MmioDirect)]
        [InlineData(P2mType.MmioDm)]
        public void SetEntry_MmioFrameBeyondHostAddressWidth_ThrowsOutOfRangeAndChangesNothing(P2mType type)
        {
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x1000, MmioLimit, PageOrder.Size4K, type, P2mAccess.RWX));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x200, MmioLimit, PageOrder.Size2M, type, P2mAccess.N));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(0x40000, 1UL << 39, PageOrder.Size1G, type, P2mAccess.RWX));
        }

        [Theory]
        [InlineData(P2mType.RamRw, P2mAccess.W)]
        [InlineData(P2mType.RamRw, P2mAccess.WX)]
        [InlineData(P2mType.GrantMapRw, P2mAccess.W)]
        [InlineData(P2mType.GrantMapRw, P2mAccess.WX)]
        [InlineData(P2mType.MmioDirect, P2mAccess.W)]
        [InlineData(P2mType.MmioDirect, P2mAccess.WX)]
        [InlineData(P2mType.RamLogDirty, P2mAccess.W)]
        [InlineData(P2mType.IoreqServer, P2mAccess.WX)]
        [InlineData(P2mType.MapForeign, P2mAccess.W)]
        [InlineData(P2mType.GrantMapRo, P2mAccess.W)]
        [InlineData(P2mType.RamRo, P2mAccess.WX)]
        public void SetEntry_WriteWithoutReadOnReadableType_ThrowsArgumentAndChangesNothing(P2mType type, P2mAccess access)
        {
            // Over a hole, over an existing 4K leaf, and inside a 1G superpage (no split may happen).
            AssertRejected<ArgumentException>("access", () => _p2m.SetEntry(0x2000, 0x2000, PageOrder.Size4K, type, access));
            AssertRejected<ArgumentException>("access", () => _p2m.SetEntry(0x1001, 0x1001, PageOrder.Size4K, type, access, SuppressVe.Clear));
            AssertRejected<ArgumentException>("access", () => _p2m.SetEntry(0x40005, 0x5, PageOrder.Size4K, type, access));
        }

        [Theory]
        [InlineData(0x1000UL, 0x5UL, PageOrder.Size4K)]
        [InlineData(0x1000UL, 0UL, PageOrder.Size4K)]
        [InlineData(0x200UL, 0x200UL, PageOrder.Size2M)]
        [InlineData(0x40000UL, 0UL, PageOrder.Size1G)]
        public void SetEntry_PopulateOnDemandWithFrame_ThrowsOutOfRangeAndChangesNothing(ulong gfn, ulong mfn, PageOrder order)
            => AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.SetEntry(gfn, mfn, order, P2mType.PopulateOnDemand, P2mAccess.RWX));

        // ---- GetEntry, Translate, TranslateBatch -------------------------------------------------

        [Theory]
        [InlineData(GfnLimit)]
        [InlineData(GfnLimit + 0x1000)]
        [InlineData(ulong.MaxValue)]
        public void GetEntry_GfnBeyondAddressWidth_ThrowsOutOfRangeAndChangesNothing(ulong gfn)
        {
            AssertRejected<ArgumentOutOfRangeException>("gfn", () => _p2m.GetEntry(gfn));
            AssertRejected<ArgumentOutOfRangeException>("gfn", () => _p2m.GetEntry(gfn, P2mQuery.Alloc));
        }

        [Theory]
        [InlineData(2)]
        [InlineData(255)]
        public void GetEntry_UnknownQuery_ThrowsOutOfRangeAndChangesNothing(int query)
        {
            // 0x400 is a PoD 2M entry: an unknown query must not populate it.
            _p2m.Pod.AddPage(0x3_0000, PageOrder.Size2M);
            AssertRejected<ArgumentOutOfRangeException>("query", () => _p2m.GetEntry(0x4AB, (P2mQuery)query));
            Assert.Equal(512, _p2m.Pod.FreeFrames);
        }

        [Theory]
        [InlineData(GpaLimit)]
        [InlineData(GpaLimit + 0xFFF)]
        [InlineData(ulong.MaxValue)]
        public void Translate_GpaBeyondAddressWidth_ThrowsOutOfRangeAndChangesNothing(ulong gpa)
            => AssertRejected<ArgumentOutOfRangeException>("gpa", () => _p2m.Translate(gpa, AccessKind.Read));

        [Theory]
        [InlineData(0)]
        [InlineData(8)]
        [InlineData(0xFF)]
        public void Translate_AccessOutsideReadWriteExecute_ThrowsOutOfRangeAndChangesNothing(int access)
            => AssertRejected<ArgumentOutOfRangeException>("access", () => _p2m.Translate(0x1000UL << 12, (AccessKind)access));

        [Fact]
        public void TranslateBatch_ResultsShorterThanAddresses_ThrowsArgumentAndWritesNothing()
        {
            ulong[] gpas = [0x1000UL << 12, 0x1001UL << 12, 0x200UL << 12];
            EptTranslation[] results = new EptTranslation[2];
            AssertRejected<ArgumentException>("results", () => _p2m.TranslateBatch(gpas, AccessKind.Read, results));
            Assert.All(results, r => Assert.Equal(default, r));
        }

        [Theory]
        [InlineData(0)]
        [InlineData(8)]
        public void TranslateBatch_AccessOutsideReadWriteExecute_ThrowsOutOfRange(int access)
        {
            ulong[] gpas = [0x1000UL << 12];
            EptTranslation[] results = new EptTranslation[1];
            AssertRejected<ArgumentOutOfRangeException>("access", () => _p2m.TranslateBatch(gpas, (AccessKind)access, results));
        }

        [Fact]
        public void TranslateBatch_BadGpaInTheMiddle_ThrowsOutOfRangeBeforeAnyWalk()
        {
            // With A/D on, every good walk would set accessed/dirty bits: clear them first so a
            // walk that ran before the bad address was seen would show.
            using P2m ad = new P2m(_memory, new P2mOptions { AccessDirty = true });
            ad.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ad.SetEntry(0x200, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            ClearAccessedDirty(ad);

            ulong[] gpas = [0x1000UL << 12, 0x200UL << 12, GpaLimit, (0x1000UL << 12) + 8, ulong.MaxValue];
            EptTranslation sentinel = ad.Translate(GpaLimit - 1, AccessKind.Read);   // a hole: no A/D written
            EptTranslation[] results = Enumerable.Repeat(sentinel, gpas.Length).ToArray();
            AssertRejected<ArgumentOutOfRangeException>("gpa", () => ad.TranslateBatch(gpas, AccessKind.Write, results));
            Assert.All(results, r => Assert.Equal(sentinel, r));

            // The same batch without the bad addresses does set the bits (the check above can fail).
            Snapshot before = Snapshot.Capture(_p2m, _memory, GuestFrames);
            ulong[] good = [gpas[0], gpas[1], gpas[3]];
            Assert.Equal(3, ad.TranslateBatch(good, AccessKind.Write, results));
            Assert.NotNull(before.FirstDifference(Snapshot.Capture(_p2m, _memory, GuestFrames)));
        }

        // ---- Disposal ---------------------------------------------------------------------------

        [Fact]
        public void P2m_AfterDispose_EveryMethodThrowsObjectDisposed()
        {
            P2m p2m = new P2m(_memory);
            p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.Dispose();
            p2m.Dispose();      // idempotent

            EptTranslation[] results = new EptTranslation[1];
            Assert.Throws<ObjectDisposedException>(() => p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
            Assert.Throws<ObjectDisposedException>(() => p2m.SetEntry(0x1000, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N));
            Assert.Throws<ObjectDisposedException>(() => p2m.GetEntry(0x1000));
            Assert.Throws<ObjectDisposedException>(() => p2m.GetEntry(0x1000, P2mQuery.Alloc));
            Assert.Throws<ObjectDisposedException>(() => p2m.Translate(0x1000UL << 12, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => p2m.TranslateBatch(new ulong[] { 0x1000UL << 12 }, AccessKind.Read, results));
            Assert.Throws<ObjectDisposedException>(() => p2m.Reclaim());
        }

        [Fact]
        public void P2m_HostMemoryDisposed_ReadersAndWritersThrowObjectDisposed()
        {
            // The p2m itself is left undisposed: its tables went away with the memory.
            HostMemory memory = new HostMemory(1 << 20);
            P2m p2m = new P2m(memory);
            p2m.SetEntry(0x10, 0x10, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            memory.Dispose();

            EptTranslation[] results = new EptTranslation[1];
            Assert.Throws<ObjectDisposedException>(() => p2m.GetEntry(0x10));
            Assert.Throws<ObjectDisposedException>(() => p2m.Translate(0x10UL << 12, AccessKind.Read));
            Assert.Throws<ObjectDisposedException>(() => p2m.TranslateBatch(new ulong[] { 0x10UL << 12 }, AccessKind.Read, results));
            Assert.Throws<ObjectDisposedException>(() => p2m.SetEntry(0x11, 0x11, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX));
        }

        // ---- Options ------------------------------------------------------------------------------

        public static TheoryData<string, P2mOptions> BadOptions => new()
        {
            { "Levels 3", new P2mOptions { Levels = 3 } },
            { "Levels 0", new P2mOptions { Levels = 0 } },
            { "Levels 6", new P2mOptions { Levels = 6 } },
            { "AddressBits 60 with 4 levels", new P2mOptions { AddressBits = 60 } },
            { "AddressBits 49 with 4 levels", new P2mOptions { AddressBits = 49 } },
            { "AddressBits 58 with 5 levels", new P2mOptions { Levels = 5, AddressBits = 58 } },
            { "AddressBits 20", new P2mOptions { AddressBits = 20 } },
            { "HostAddressBits 60", new P2mOptions { HostAddressBits = 60 } },
            { "HostAddressBits 53", new P2mOptions { HostAddressBits = 53 } },
            { "HostAddressBits 31", new P2mOptions { HostAddressBits = 31 } },
            { "DefaultAccess 11", new P2mOptions { DefaultAccess = (P2mAccess)11 } },
        };

        [Theory]
        [MemberData(nameof(BadOptions))]
        public void P2mConstructor_OptionOutOfRange_ThrowsOutOfRangeAndAllocatesNothing(string description, P2mOptions options)
        {
            Assert.NotEmpty(description);
            AssertRejected<ArgumentOutOfRangeException>("options", () => new P2m(_memory, options));
        }

        [Fact]
        public void P2mConstructor_NullMemory_ThrowsArgumentNull()
        {
            ArgumentNullException ex = Assert.Throws<ArgumentNullException>(() => new P2m(null!));
            Assert.Equal("memory", ex.ParamName);
        }

        [Fact]
        public void PodCacheAddPage_BadPage_ThrowsAndCachesNothing()
        {
            AssertRejected<ArgumentOutOfRangeException>("order", () => _p2m.Pod.AddPage(0, PageOrder.Size1G));
            AssertRejected<ArgumentOutOfRangeException>("order", () => _p2m.Pod.AddPage(0, (PageOrder)1));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.Pod.AddPage(FrameCount, PageOrder.Size4K));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _p2m.Pod.AddPage(FrameCount, PageOrder.Size2M));
            AssertRejected<ArgumentException>("mfn", () => _p2m.Pod.AddPage(0x201, PageOrder.Size2M));
            Assert.Equal(0, _p2m.Pod.FreeFrames);
        }

        // ---- Helpers ------------------------------------------------------------------------------

        // A p2m with every kind of entry: 1G, 2M, 4K leaves of several types, PoD, paging, MMIO
        // beyond host memory, and holes under existing tables.
        private static void Populate(P2m p2m)
        {
            p2m.SetEntry(0x40000, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x200, 0x200, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Clear);
            p2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.RWX);
            p2m.SetEntry(0x1000, 0x1000, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x1001, 0x1001, PageOrder.Size4K, P2mType.GrantMapRo, P2mAccess.R, SuppressVe.Clear);
            p2m.SetEntry(0x1002, Mfn.Invalid, PageOrder.Size4K, P2mType.RamPaged, P2mAccess.RWX);
            p2m.SetEntry(0x1003, 0x1_0000_0000, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RW);
            p2m.SetEntry(0x1004, 0x1004, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            p2m.SetEntry(0x1004, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            p2m.SetEntry(0x8000_0000, 0x4000, PageOrder.Size2M, P2mType.RamLogDirty, P2mAccess.RX);
        }

        private static void ClearAccessedDirty(P2m p2m)
        {
            HostMemory m = p2m.Memory;
            Stack<(ulong Table, int Level)> pending = new();
            pending.Push((p2m.RootMfn, p2m.Levels));
            while (pending.Count > 0)
            {
                (ulong table, int level) = pending.Pop();
                for (ulong i = 0; i < 512; i++)
                {
                    ulong hpa = (table << 12) + i * 8;
                    ulong pte = m.ReadUInt64(hpa);
                    if ((pte & EptEntry.RwxMask) == 0)
                    {
                        continue;
                    }

                    m.WriteUInt64(hpa, pte & ~(EptEntry.AccessedBit | EptEntry.DirtyBit));
                    if (level > 1 && (pte & EptEntry.SuperPageBit) == 0)
                    {
                        pending.Push(((pte & EptEntry.MfnMask) >> 12, level - 1));
                    }
                }
            }
        }

        private void AssertRejected<TException>(string paramName, Action action)
            where TException : ArgumentException
            => AssertRejected<TException>(paramName, () =>
            {
                action();
                return null;
            });

        private void AssertRejected<TException>(string paramName, Func<object?> action)
            where TException : ArgumentException
        {
            Snapshot before = Snapshot.Capture(_p2m, _memory, GuestFrames);
            TException ex = Assert.Throws<TException>(action);
            Assert.Equal(paramName, ex.ParamName);
            before.AssertSame(Snapshot.Capture(_p2m, _memory, GuestFrames));
        }

        /// <summary>
        /// Everything a rejected call could change: the bytes of every allocated frame outside the
        /// guest RAM (all table frames of every p2m in the memory), the allocator's bitmap, and
        /// the p2m's counters.
        /// </summary>
        private sealed class Snapshot
        {
            private readonly SortedDictionary<ulong, byte[]> _frames = new();
            private readonly List<(string Name, ulong Value)> _scalars = new();

            public static Snapshot Capture(P2m p2m, HostMemory memory, long guestFrames)
            {
                Snapshot s = new Snapshot();
                for (ulong mfn = (ulong)guestFrames; mfn < (ulong)memory.FrameCount; mfn++)
                {
                    if (memory.IsAllocated(mfn))
                    {
                        s._frames.Add(mfn, memory.Frame(mfn).ToArray());
                    }
                }

                s._scalars.Add(("AllocatedFrameCount", (ulong)memory.AllocatedFrameCount));
                s._scalars.Add(("MaxMappedPfn", p2m.MaxMappedPfn));
                s._scalars.Add(("PodEntryCount", (ulong)p2m.PodEntryCount));
                s._scalars.Add(("TableFrameCount", (ulong)p2m.TableFrameCount));
                s._scalars.Add(("PendingReclaimFrameCount", (ulong)p2m.PendingReclaimFrameCount));
                s._scalars.Add(("Pod.FreeFrames", (ulong)p2m.Pod.FreeFrames));
                return s;
            }

            public string? FirstDifference(Snapshot after)
            {
                for (int i = 0; i < _scalars.Count; i++)
                {
                    if (_scalars[i] != after._scalars[i])
                    {
                        return $"{_scalars[i].Name} changed from 0x{_scalars[i].Value:X} to 0x{after._scalars[i].Value:X}";
                    }
                }

                if (!_frames.Keys.SequenceEqual(after._frames.Keys))
                {
                    return $"allocated frames changed: before [{string.Join(", ", _frames.Keys.Select(k => $"0x{k:X}"))}], after [{string.Join(", ", after._frames.Keys.Select(k => $"0x{k:X}"))}]";
                }

                foreach ((ulong mfn, byte[] bytes) in _frames)
                {
                    byte[] now = after._frames[mfn];
                    int at = bytes.AsSpan().CommonPrefixLength(now);
                    if (at != bytes.Length)
                    {
                        int slot = at / 8;
                        return $"frame 0x{mfn:X} slot {slot} changed from 0x{BitConverter.ToUInt64(bytes, slot * 8):X16} to 0x{BitConverter.ToUInt64(now, slot * 8):X16}";
                    }
                }

                return null;
            }

            public void AssertSame(Snapshot after)
            {
                string? difference = FirstDifference(after);
                Assert.True(difference is null, difference);
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;

namespace FastEpt.Tests.Entries
{
    public sealed class EptEntryTests
    {
        [Fact]
        public void EptEntry_Size_IsEightBytesAndBlittable()
        {
            Assert.Equal(8, Unsafe.SizeOf<EptEntry>());
            Assert.False(RuntimeHelpers.IsReferenceOrContainsReferences<EptEntry>());
        }

        [Fact]
        public void Encode_RwxWbIpatAdMfnRamRwAccess7Sve_MatchesSpecWord()
        {
            // docs/model/ept.md §1.6: r=w=x=1, emt=6, ipat=1, sp=0, a=d=1, mfn=0x12345, type 0, access 7, sve 1.
            EptEntry e = new EptEntry(0).WithRwx(true, true, true).WithMemoryType(6).WithIgnorePat(true)
                .WithAccessed(true).WithDirty(true).WithMfn(0x12345).WithType(P2mType.RamRw)
                .WithAccess(P2mAccess.RWX).WithSuppressVe(true);
            Assert.Equal(0xB800_0000_1234_5377UL, e.Raw);
        }

        [Fact]
        public void Decode_SpecWord_ReturnsEveryField()
        {
            var e = new EptEntry(0xB800_0000_1234_5377);
            Assert.True(e.Read);
            Assert.True(e.Write);
            Assert.True(e.Execute);
            Assert.Equal(6, e.MemoryType);
            Assert.True(e.IgnorePat);
            Assert.False(e.SuperPage);
            Assert.True(e.Accessed);
            Assert.True(e.Dirty);
            Assert.False(e.Recalc);
            Assert.False(e.Snoop);
            Assert.Equal(0x12345UL, e.Mfn);
            Assert.Equal(P2mType.RamRw, e.Type);
            Assert.False(e.PagingWrite);
            Assert.Equal(P2mAccess.RWX, e.Access);
            Assert.True(e.SuppressVe);
            Assert.True(e.IsPresent);
            Assert.True(e.IsValid);
        }

        [Fact]
        public void Encode_Pod2MPlaceholder_MatchesSpecWordAndIsValidNotPresent()
        {
            EptEntry e = new EptEntry(0).WithSuperPage(true).WithMfn(Mfn.Invalid)
                .WithType(P2mType.PopulateOnDemand).WithAccess(P2mAccess.RWX).WithSuppressVe(true);
            Assert.Equal(0xB86F_FFFF_FFFF_F080UL, e.Raw);
            Assert.False(e.IsPresent);
            Assert.True(e.IsValid);
            Assert.True(e.SuperPage);
        }

        [Fact]
        public void Encode_MiddleEntryWithAd_MatchesSpecWord()
        {
            EptEntry e = new EptEntry(0).WithRwx(true, true, true).WithAccessed(true).WithMfn(0x5000)
                .WithAccess(P2mAccess.RWX).WithSuppressVe(true);
            Assert.Equal(0xB800_0000_0500_0107UL, e.Raw);
        }

        [Theory]
        [InlineData(0x8000_0000_0000_0000UL, false)]   // only suppress-#VE: not valid
        [InlineData(0x0010_0000_0000_0007UL, false)]   // type 1 (invalid) with rwx
        [InlineData(0x0010_0000_0000_0000UL, false)]   // type 1 alone
        [InlineData(0x0000_0000_0000_0001UL, true)]    // r only, type ram_rw (0)
        [InlineData(0x0040_0000_0000_0000UL, true)]    // mmio_dm, not present
        public void IsValid_XenPredicate_MatchesSpec(ulong raw, bool valid)
        {
            Assert.Equal(valid, new EptEntry(raw).IsValid);
        }

        [Fact]
        public void WithFields_EachBuilder_TouchesOnlyItsBits()
        {
            var all = new EptEntry(ulong.MaxValue);
            Assert.Equal(ulong.MaxValue & ~EptEntry.MfnMask, all.WithMfn(0).Raw);
            Assert.Equal(ulong.MaxValue & ~EptEntry.TypeMask, all.WithType(P2mType.RamRw).Raw);
            Assert.Equal(ulong.MaxValue & ~EptEntry.AccessMask, all.WithAccess(P2mAccess.N).Raw);
            Assert.Equal(ulong.MaxValue & ~EptEntry.MemoryTypeMask, all.WithMemoryType(0).Raw);
            Assert.Equal(ulong.MaxValue & ~EptEntry.RwxMask, all.WithRwx(false, false, false).Raw);
            Assert.Equal(0b0100_0000UL, new EptEntry(0).WithIgnorePat(true).Raw);
            Assert.Equal(0b1000_0000UL, new EptEntry(0).WithSuperPage(true).Raw);
            Assert.Equal(0b1_0000_0000UL, new EptEntry(0).WithAccessed(true).Raw);
            Assert.Equal(0b10_0000_0000UL, new EptEntry(0).WithDirty(true).Raw);
            Assert.Equal(0b100_0000_0000UL, new EptEntry(0).WithRecalc(true).Raw);
            Assert.Equal(0b1000_0000_0000UL, new EptEntry(0).WithSnoop(true).Raw);
            Assert.Equal(1UL << 58, new EptEntry(0).WithPagingWrite(true).Raw);
            Assert.Equal(1UL << 63, new EptEntry(0).WithSuppressVe(true).Raw);
            Assert.Equal(0xA_BCDE_F012UL, new EptEntry(0).WithMfn(0xA_BCDE_F012).Mfn);
            Assert.Equal(EptEntry.MfnFieldMax, new EptEntry(0).WithMfn(Mfn.Invalid).Mfn);
        }

        [Fact]
        public void Equality_ComparesRawWords()
        {
            Assert.Equal(new EptEntry(5), new EptEntry(5));
            Assert.True(new EptEntry(5) == new EptEntry(5));
            Assert.True(new EptEntry(5) != new EptEntry(6));
            Assert.Contains("mfn=0x12345", new EptEntry(0xB800_0000_1234_5377).ToString());
        }
    }
}

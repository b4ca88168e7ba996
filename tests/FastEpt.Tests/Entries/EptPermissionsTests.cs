// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Entries
{
    // docs/model/types.md §2.4: type x access -> r/w/x (plus A/D and paging-write).
    public sealed class EptPermissionsTests
    {
        private static EptEntry Flags(P2mType type, P2mAccess access, bool superPage = false, P2mOptions? options = null, ulong mfn = 0x1000)
            => EptPermissions.Apply(new EptEntry(0).WithMfn(mfn), type, access, superPage, options ?? new P2mOptions());

        private static string Rwxad(EptEntry e)
            => $"{(e.Read ? 1 : 0)}{(e.Write ? 1 : 0)}{(e.Execute ? 1 : 0)}{(e.Accessed ? 1 : 0)}{(e.Dirty ? 1 : 0)}";

        [Fact]
        public void RamRw_RwxWithAd_AllFiveBitsSet()
        {
            Assert.Equal("11111", Rwxad(Flags(P2mType.RamRw, P2mAccess.RWX, options: new P2mOptions { AccessDirty = true })));
        }

        [Fact]
        public void RamRw_2MWithoutExecutableSuperpages_LosesExecute()
        {
            EptEntry e = Flags(P2mType.RamRw, P2mAccess.RWX, superPage: true, options: new P2mOptions { AccessDirty = true, ExecutableSuperpages = false });
            Assert.Equal("11011", Rwxad(e));
        }

        [Fact]
        public void LogDirty_PmlOffAndOn_WritableOnlyFor4KWithPml()
        {
            Assert.Equal("10110", Rwxad(Flags(P2mType.RamLogDirty, P2mAccess.RWX, options: new P2mOptions { AccessDirty = true })));
            Assert.Equal("11110", Rwxad(Flags(P2mType.RamLogDirty, P2mAccess.RWX, options: new P2mOptions { AccessDirty = true, PmlEnabled = true })));
            Assert.Equal("10110", Rwxad(Flags(P2mType.RamLogDirty, P2mAccess.RWX, superPage: true, options: new P2mOptions { AccessDirty = true, PmlEnabled = true })));
        }

        [Fact]
        public void MmioDirect_InReadOnlyRanges_ReadExecuteNotDirty()
        {
            var o = new P2mOptions { AccessDirty = true, MmioReadOnly = mfn => mfn == 0xFEE00 };
            Assert.Equal("10110", Rwxad(Flags(P2mType.MmioDirect, P2mAccess.RWX, options: o, mfn: 0xFEE00)));
            Assert.Equal("11111", Rwxad(Flags(P2mType.MmioDirect, P2mAccess.RWX, options: o, mfn: 0xFEE01)));
        }

        [Theory]
        [InlineData(P2mType.RamRw, P2mAccess.RX2RW, "101")]
        [InlineData(P2mType.RamRo, P2mAccess.RW, "100")]
        [InlineData(P2mType.GrantMapRo, P2mAccess.RWX, "100")]
        [InlineData(P2mType.PopulateOnDemand, P2mAccess.RWX, "000")]
        [InlineData(P2mType.RamPaged, P2mAccess.RWX, "000")]
        [InlineData(P2mType.RamShared, P2mAccess.RWX, "101")]
        [InlineData(P2mType.GrantMapRw, P2mAccess.RWX, "110")]
        [InlineData(P2mType.MapForeign, P2mAccess.RWX, "110")]
        [InlineData(P2mType.IoreqServer, P2mAccess.RWX, "110")]
        [InlineData(P2mType.RamRw, P2mAccess.N2RWX, "000")]
        [InlineData(P2mType.RamRw, P2mAccess.X, "001")]
        [InlineData(P2mType.RamRw, P2mAccess.RX, "101")]
        [InlineData(P2mType.RamRw, P2mAccess.RW, "110")]
        [InlineData(P2mType.MmioDm, P2mAccess.RWX, "000")]
        [InlineData(P2mType.RamBroken, P2mAccess.RWX, "000")]
        public void Apply_TypeAndAccess_GivesSpecRwx(P2mType type, P2mAccess access, string rwx)
        {
            Assert.Equal(rwx, Rwxad(Flags(type, access))[..3]);
        }

        [Fact]
        public void IoreqServer_WritesClaimed_NotWritable()
        {
            Assert.Equal("100", Rwxad(Flags(P2mType.IoreqServer, P2mAccess.RWX, options: new P2mOptions { IoreqServerClaimsWrites = true }))[..3]);
        }

        [Fact]
        public void RPw_WithAndWithoutPagingWrite_SetsPwOnlyWhenSupported()
        {
            EptEntry with = Flags(P2mType.RamRw, P2mAccess.R_PW, options: new P2mOptions { PagingWriteSupported = true });
            EptEntry without = Flags(P2mType.RamRw, P2mAccess.R_PW);
            Assert.Equal("100", Rwxad(with)[..3]);
            Assert.True(with.PagingWrite);
            Assert.Equal("100", Rwxad(without)[..3]);
            Assert.False(without.PagingWrite);
        }

        [Fact]
        public void RamRwWithW_WouldMisconfigure_IsFlaggedAndRefusedBySetEntry()
        {
            // Xen builds rwx 010 here (a misconfiguration); FastEpt flags it and SetEntry refuses it.
            Assert.Equal("010", Rwxad(Flags(P2mType.RamRw, P2mAccess.W))[..3]);
            Assert.True(EptPermissions.IsWriteWithoutRead(P2mType.RamRw, P2mAccess.W));
            Assert.True(EptPermissions.IsWriteWithoutRead(P2mType.RamRw, P2mAccess.WX));
            Assert.False(EptPermissions.IsWriteWithoutRead(P2mType.PopulateOnDemand, P2mAccess.W));
            using var memory = new HostMemory(1 << 24);
            using var p2m = new P2m(memory);
            ArgumentException ex = Assert.Throws<ArgumentException>(() => p2m.SetEntry(1, 1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.W));
            Assert.Equal("access", ex.ParamName);
            Assert.False(p2m.GetEntry(1).IsMapped);
        }
    }
}

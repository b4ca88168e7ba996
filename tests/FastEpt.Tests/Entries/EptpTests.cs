// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Entries
{
    /// <summary>The managed VM-entry EPTP check (<see cref="Eptp.Check"/>) against the hand-derived
    /// vectors in tests/Data/eptp.txt, and the fields of <see cref="Eptp"/>.</summary>
    public sealed class EptpTests
    {
        public static TheoryData<EptpVector> Vectors() => EptpVector.All();

        [Theory]
        [MemberData(nameof(Vectors))]
        public void Check_HandDerivedVector_GivesItsStatus(EptpVector v)
            => Assert.Equal(v.Expected, new Eptp(v.Eptp).Check(v.Capabilities));

        [Fact]
        public void Vectors_CoverEveryFailingField()
        {
            HashSet<EptpStatus> seen = EptpVector.Load().Select(v => v.Expected).ToHashSet();
            foreach (EptpStatus status in Enum.GetValues<EptpStatus>().Where(s => s != EptpStatus.BadCapabilities))
            {
                Assert.Contains(status, seen);
            }
        }

        [Fact]
        public void Check_DefaultCapabilities_IsBadCapabilities()
            => Assert.Equal(EptpStatus.BadCapabilities, new Eptp(0x12301E).Check(default));

        [Theory]
        [InlineData(31)]
        [InlineData(53)]
        public void Capabilities_MaxPhysicalAddressOutOfRange_Throws(int bits)
            => Assert.Throws<ArgumentOutOfRangeException>("maxPhysicalAddress", () => new EptpCapabilities(0, bits));

        [Fact]
        public void Fields_ReadTheirBits()
        {
            var eptp = new Eptp(0b1110_0110UL | (0x123UL << 12));
            Assert.Equal(6, eptp.MemoryType);
            Assert.Equal(5, eptp.WalkLength);
            Assert.True(eptp.AccessDirtyEnabled);
            Assert.True(eptp.SupervisorShadowStack);
            Assert.Equal(0x123UL, eptp.RootMfn);
            Assert.Equal("0x00000000001230E6", eptp.ToString());
        }

        [Theory]
        [InlineData(4, false)]
        [InlineData(5, true)]
        public void Create_MatchesP2mEptp_AndPassesTheCheck(int levels, bool accessDirty)
        {
            using var memory = new HostMemory(16L << 20);
            using var p2m = new P2m(memory, new P2mOptions { Levels = levels, AddressBits = levels == 5 ? 52 : 48, AccessDirty = accessDirty });
            Eptp eptp = Eptp.Create(p2m.RootMfn, levels, Eptp.MemoryTypeWriteBack, accessDirty);
            Assert.Equal(p2m.Eptp, eptp.Value);
            Assert.Equal(EptpStatus.Ok, eptp.Check(EptpCapabilities.AllWalkable(p2m.Options.HostAddressBits)));
        }
    }
}

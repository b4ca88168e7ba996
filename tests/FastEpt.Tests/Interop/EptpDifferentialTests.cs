// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Interop;
using FastEpt.Tests.Entries;

namespace FastEpt.Tests.Interop
{
    /// <summary>The VM-entry EPTP check in C (<c>fastept_eptp_check</c>) and in C#
    /// (<see cref="Eptp.Check"/>) agree, on the hand-derived vectors and on random EPTPs and CPUs.</summary>
    public sealed class EptpDifferentialTests
    {
        public static TheoryData<EptpVector> Vectors() => EptpVector.All();

        [Theory]
        [MemberData(nameof(Vectors))]
        public void NativeCheck_HandDerivedVector_GivesItsStatus(EptpVector v)
            => Assert.Equal(v.Expected, NativeWalker.CheckEptp(new Eptp(v.Eptp), v.Capabilities));

        [Fact]
        public void NativeCheck_DefaultCapabilities_IsBadCapabilities()
            => Assert.Equal(EptpStatus.BadCapabilities, NativeWalker.CheckEptp(new Eptp(0x12301E), default));

        [Fact]
        public void RandomEptpsAndCpus_ManagedAndNativeAgree()
        {
            var random = new Random(20261207);
            var seen = new Dictionary<EptpStatus, int>();
            for (int i = 0; i < 200_000; i++)
            {
                Eptp eptp = RandomEptp(random);
                EptpCapabilities caps = RandomCapabilities(random);
                EptpStatus managed = eptp.Check(caps);
                EptpStatus native = NativeWalker.CheckEptp(eptp, caps);
                Assert.True(managed == native,
                    $"EPTP {eptp} cap 0x{caps.EptVpidCap:X} maxphys {caps.MaxPhysicalAddress} sss {caps.SupervisorShadowStackControl}: managed {managed}, native {native}");
                seen[managed] = seen.GetValueOrDefault(managed) + 1;
            }

            // The generator must reach every outcome often, or agreement proves little.
            foreach (EptpStatus status in Enum.GetValues<EptpStatus>().Where(s => s != EptpStatus.BadCapabilities))
            {
                Assert.True(seen.GetValueOrDefault(status) >= 1_000, $"{status} seen {seen.GetValueOrDefault(status)} times");
            }
        }

        [Theory]
        [InlineData(0x12301DUL)]                 // WP memory type
        [InlineData(0x12311EUL)]                 // reserved bit 8
        [InlineData(0x12309EUL)]                 // shadow-stack control
        public void NativeWalker_EptpVmEntryRejects_Throws(ulong eptp)
        {
            using var memory = new HostMemory(16L << 20);
            var options = new P2mOptions { HostAddressBits = 46 };
            // Root 0x123 is inside these 4096 frames; only the named field is wrong.
            Assert.Throws<ArgumentException>("eptp", () => new NativeWalker(memory, eptp, options));
            Assert.NotNull(new NativeWalker(memory, 0x12301EUL, options));
        }

        // Mostly valid fields with one or two broken, so each later check is reached often.
        private static Eptp RandomEptp(Random random)
        {
            ulong type = random.Next(4) switch { 0 => 0UL, 1 or 2 => 6UL, _ => (ulong)random.Next(8) };
            ulong walk = random.Next(4) switch { 0 => 4UL, 1 or 2 => 3UL, _ => (ulong)random.Next(8) };
            ulong value = type | (walk << 3) | ((ulong)random.Next(2) << 6);
            value |= random.Next(4) == 0 ? 1UL << 7 : 0;
            value |= random.Next(6) == 0 ? (ulong)random.Next(1, 16) << 8 : 0;
            // The root: below 2^32, or anywhere in 51:12, or any bit at all.
            value |= random.Next(3) switch
            {
                0 => ((ulong)random.NextInt64(1L << 20)) << 12,
                1 => ((ulong)random.NextInt64(1L << 40)) << 12,
                _ => (ulong)random.NextInt64() << 12,
            };
            return new Eptp(value);
        }

        private static EptpCapabilities RandomCapabilities(Random random)
        {
            ulong cap = (ulong)random.NextInt64();
            // Set each bit the check reads with probability 3/4.
            foreach (int bit in new[] { 6, 7, 8, 14, 21 })
            {
                cap = random.Next(4) == 0 ? cap & ~(1UL << bit) : cap | (1UL << bit);
            }

            return new EptpCapabilities(cap, random.Next(32, 53), random.Next(2) == 0);
        }
    }
}

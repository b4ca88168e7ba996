// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Cli.Replay;

namespace FastEpt.Tests.Cli
{
    public sealed partial class ReplayTests
    {
        public static IEnumerable<object[]> BadOptions()
        {
            yield return new object[] { new ReplayOptions { GuestBytes = 0 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = -(2L << 20) }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = (2L << 20) + 4096 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = 2L << 40 }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { GuestBytes = 512L << 20, Pages = PageMode.Size1G }, "GuestBytes" };
            yield return new object[] { new ReplayOptions { Pages = (PageMode)9 }, "Pages" };
            yield return new object[] { new ReplayOptions { TlbEntries = -1 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { TlbEntries = 100 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { TlbEntries = 1 << 25 }, "TlbEntries" };
            yield return new object[] { new ReplayOptions { Batch = -1 }, "Batch" };
            yield return new object[] { new ReplayOptions { Batch = ReplayOptions.MaxBatch + 1 }, "Batch" };
            yield return new object[] { new ReplayOptions { Views = -1 }, "Views" };
            yield return new object[] { new ReplayOptions { Views = ReplayOptions.MaxViews + 1 }, "Views" };
            yield return new object[] { new ReplayOptions { HotN = 0 }, "HotN" };
        }

        [Theory]
        [MemberData(nameof(BadOptions))]
        public void BadOptions_AreRejectedByName(ReplayOptions options, string name)
        {
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10));
            ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => Replayer.Run(reader, options, null, CancellationToken.None));
            Assert.Equal(name, e.ParamName);
        }

        [Fact]
        public void NullArguments_Throw()
        {
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(1));
            Assert.Throws<ArgumentNullException>(() => Replayer.Run(null!, new ReplayOptions(), null, CancellationToken.None));
            Assert.Throws<ArgumentNullException>(() => Replayer.Run(reader, null!, null, CancellationToken.None));
        }

        [Fact]
        public void DefaultOptions_AreThoseDocumented()
        {
            ReplayOptions o = new();
            Assert.Equal(4L << 30, o.GuestBytes);
            Assert.Equal(PageMode.Size4K, o.Pages);
            Assert.Equal(256, o.TlbEntries);
            Assert.Equal(0, o.Batch);
            Assert.Equal(0, o.Views);
            Assert.Equal(20, o.HotN);
        }

        [Fact]
        public void DefaultGuest_ReplaysATrace()
        {
            // The full default guest: 4 GiB of 4K pages.
            ReplayReport report = Run(MakeTrace(1000), new ReplayOptions());
            Assert.Equal(1000, report.WalkDepth.Single(d => d.LeafLevel == 1).Translations);
        }
    }
}

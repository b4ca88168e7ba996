// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Reflection;
using System.Text.RegularExpressions;
using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>One version for everything: the header's FASTEPT_VERSION macros (through the
    /// generated constants), the packages' &lt;Version&gt; in Directory.Build.props and the
    /// assemblies built from it. (CTest's fastept.version checks the header against the same file.)</summary>
    public sealed class VersionTests
    {
        [Fact]
        public void HeaderVersion_EqualsThePackageVersion()
        {
            string props = File.ReadAllText(Path.Combine(InteropPaths.RepositoryRoot(), "Directory.Build.props"));
            Match m = Regex.Match(props, @"<Version>(\d+)\.(\d+)\.(\d+)</Version>");
            Assert.True(m.Success, "Directory.Build.props has no <Version>MAJOR.MINOR.PATCH</Version>");
            // The generated constants on the left (xUnit2000), the package version on the right.
            Assert.Equal(FastEptNative.FASTEPT_VERSION, m.Groups[1].Value + "." + m.Groups[2].Value + "." + m.Groups[3].Value);
            Assert.Equal(FastEptNative.FASTEPT_VERSION_MAJOR, int.Parse(m.Groups[1].Value));
            Assert.Equal(FastEptNative.FASTEPT_VERSION_MINOR, int.Parse(m.Groups[2].Value));
            Assert.Equal(FastEptNative.FASTEPT_VERSION_PATCH, int.Parse(m.Groups[3].Value));

            string? informational = typeof(NativeWalker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            Assert.StartsWith(FastEptNative.FASTEPT_VERSION, informational);
        }
    }
}

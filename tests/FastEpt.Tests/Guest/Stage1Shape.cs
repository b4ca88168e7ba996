// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>One random stage-1 case: the registers and the access (the tables are in memory).</summary>
    internal sealed record Stage1Shape(int Levels, bool Wp, bool Nxe, ulong Cr3, ulong Gla, PageFaultErrorCode Pfec, bool Aliased);
}

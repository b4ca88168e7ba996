// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>The expectation of one case.</summary>
    internal readonly record struct Stage1Expected(GuestStatus Status, ulong Gpa, PageFaultErrorCode ErrorCode, int Level);
}

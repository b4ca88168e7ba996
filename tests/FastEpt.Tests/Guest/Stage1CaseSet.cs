// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    internal sealed record Stage1CaseSet(IReadOnlyList<Stage1Case> Cases, IReadOnlyList<string> Errors);
}

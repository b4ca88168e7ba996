// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;
using FastEpt.Internal;

namespace FastEpt.Tests
{
    // The lock-order checker (docs/model/README.md §0.6) is on for the whole test run, Release
    // builds included: any out-of-order or re-entrant acquisition in any test throws.
    internal static class LockChecking
    {
        [ModuleInitializer]
        internal static void Enable() => OrderedLock.CheckOrder = true;
    }
}

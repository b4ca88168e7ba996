// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>
    /// The concurrency and reclamation tests saturate the CPUs and depend on the process-wide
    /// reclamation epoch (a reader in any test holds back every p2m's frees), so they run on
    /// their own, after the parallel tests.
    /// </summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class P2mConcurrencyCollection
    {
        /// <summary>The collection's name.</summary>
        public const string Name = "P2m concurrency";
    }
}

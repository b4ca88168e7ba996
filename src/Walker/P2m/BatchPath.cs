// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>How <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation}, BatchPath)"/> walks.</summary>
    internal enum BatchPath
    {
        /// <summary>Let the p2m choose per call (table footprint, address locality, ISA).</summary>
        Auto = 0,

        /// <summary>One complete walk after another: the single-address walker in a loop.</summary>
        Scalar,

        /// <summary>Software-pipelined walks: each level's entry prefetched a fixed distance ahead.</summary>
        Pipelined,

        /// <summary>Groups of <see cref="P2m.GatherGroupWalks"/> walks, level by level, with AVX2 gathers (falls back to Pipelined without AVX2).</summary>
        Gather,
    }
}

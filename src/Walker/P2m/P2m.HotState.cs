// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt
{
    // The words writers change on every write (the TLB generation, the PoD and max-mapped
    // bookkeeping, the reclamation flags) live in their own object, away from the fields every
    // walk reads (root, limits, masks, host memory): were they on the same cache lines, each
    // write would take those lines away from every reading core and a lock-free Translate would
    // miss in its cache once per remap on another thread.
    public sealed partial class P2m
    {
        private readonly HotState _hot = new();

        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal sealed class HotState
        {
            // Line 1: read by readers (SoftTlb lookups, GetEntry's shortcut), changed by writers
            // only when a present entry is replaced or the mapped range grows.
            [FieldOffset(64)]
            public long TlbGeneration;

            [FieldOffset(72)]
            public long MaxMappedPfn;

            [FieldOffset(80)]
            public int TlbAttached;            // 1 once a SoftTlb caches this p2m's translations

            // Line 2: writers' bookkeeping, never read on a walk.
            [FieldOffset(128)]
            public long PodEntryCount;

            [FieldOffset(136)]
            public long MaxPublishedPfn;       // the highest GFN a successful write published a valid entry for

            [FieldOffset(144)]
            public int ReclaimDue;             // 1: a retire found a batch pending; the write ends with a pass

            [FieldOffset(148)]
            public int MaxLowerPending;        // a shared-mode write failed after raising max_mapped_pfn
        }
    }
}

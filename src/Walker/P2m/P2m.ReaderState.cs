// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // State that lock-free readers consult. Readers never take the p2m lock (nor any other), so
    // whatever a reader needs besides the tables themselves is a plain field that writers keep
    // with atomic operations and readers load with Volatile.Read.
    public sealed partial class P2m
    {
        // Table frames in the live hierarchy, the root included (what TableFrameCount counts),
        // for readers: the batch policy (TableBytesForPolicy) reads it to size the tables. Writers
        // keep it: the constructor sets it to 1 (the root); every writer that links new tables
        // adds their number with Interlocked.Add after its publishing compare-exchange (SetEntry,
        // recalculation, the native writer's completion); retiring an unlinked subtree subtracts
        // the frames it collected; Dispose sets it to 0. A reader may see it a write behind.
        private long _tableFrameCountForReaders;

        /// <summary>The readers' table count (equal to <see cref="TableFrameCount"/> whenever no write is in flight).</summary>
        internal long TableFrameCountForReaders => Volatile.Read(ref _tableFrameCountForReaders);
    }
}

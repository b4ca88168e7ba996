// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Parallel writers (docs/architecture.md "Lock ranks"): a 4K or 2M write holds the stripe
    // lock of its GFN's 2 MiB region, which also keeps the p2m lock's write side out
    // (OrderedLock.Stripes.cs); a 1G write, a write whose path carries a recalculation mark, and
    // every whole-p2m operation hold the p2m lock exclusive, which waits for every stripe.
    // Every slot is still published with one compare-exchange, so readers are unchanged; a slot
    // two stripes share (an upper-level slot getting a table, a 1G superpage being split) goes to
    // whichever compare-exchange wins and the loser frees what it built and walks again. Only the
    // stripe holder replaces a 4K table by a 2M leaf, and only the exclusive holder a 2M table by
    // a 1G leaf, so no write can land in a table that is being unlinked.
    public sealed partial class P2m
    {
        private const int StripeBits = 6;
        private const int StripeCount = 1 << StripeBits;
        private const int RegionOrder = 9;          // a stripe covers whole 2 MiB regions

        private readonly OrderedLock[] _stripes;

        /// <summary>Tests only: a deliberate writer bug, to show the concurrency tests catch it.</summary>
        internal PlantedWriterBug PlantedBug { get; set; }

        /// <summary>Tests only: called inside the write path with the write locks held (gfn, order).</summary>
        internal Action<ulong, int>? InsideWrite { get; set; }

        private static OrderedLock[] CreateStripes(int rank, string lockName)
        {
            var stripes = new OrderedLock[StripeCount];
            for (int i = 0; i < stripes.Length; i++)
            {
                stripes[i] = new OrderedLock(rank, lockName + " stripe");
            }

            return stripes;
        }

        // The stripe of a GFN's 2 MiB region: the region number hashed (Fibonacci hashing, the
        // top bits of a multiply by 2^64 / golden ratio), not its low bits. With the low bits,
        // vCPUs that fault at the same pace in regions a multiple of 64 apart (two halves of
        // guest memory, say) would ask for the same stripe at every step and take turns.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int StripeOf(ulong gfn) => (int)(unchecked((gfn >> RegionOrder) * 0x9E37_79B9_7F4A_7C15UL) >> (64 - StripeBits));

        /// <summary>True when the calling thread may write <paramref name="gfn"/>: the exclusive lock or the GFN's stripe.</summary>
        internal bool HoldsWriter(ulong gfn)
            => _lock.IsHeldByCurrentThread || _stripes[StripeOf(gfn)].IsHeldByCurrentThread;

        /// <summary>
        /// Takes the locks a write of 2^<paramref name="order"/> frames at <paramref name="gfn"/>
        /// needs: the region's stripe for 4K and 2M on an unmarked path, else the p2m lock exclusive.
        /// Throws <see cref="ObjectDisposedException"/> (nothing held) when the p2m is disposed.
        /// </summary>
        internal WriteScope EnterWrite(ulong gfn, int order)
        {
            ThrowIfDisposed();
            // The mark check is made under the stripe, where it is exact: marks are made and
            // cleared only under the exclusive lock (a marked path is the rare case).
            if (order < (int)PageOrder.Size1G)
            {
                OrderedLock.Scope stripe = PlantedBug == PlantedWriterBug.NoStripeFor2M && order == (int)PageOrder.Size2M
                    ? default
                    : _stripes[StripeOf(gfn)].EnterStripe();
                if (_disposed)
                {
                    stripe.Dispose();
                    ThrowHelper.ThrowObjectDisposedException(this);
                }

                if (!(_marked && PathHasMark(gfn)))
                {
                    return new WriteScope(this, default, stripe, exclusive: false);
                }

                stripe.Dispose();
            }

            return EnterExclusiveWrite();
        }

        /// <summary>The exclusive lock as a write scope (whole-p2m operations, 1G writes, escalations).</summary>
        internal WriteScope EnterExclusiveWrite()
        {
            ThrowIfDisposed();
            OrderedLock.Scope scope = _lock.Enter();
            if (_disposed)
            {
                scope.Dispose();
                ThrowHelper.ThrowObjectDisposedException(this);
            }

            return new WriteScope(this, scope, default, exclusive: true);
        }

        // Whether a present entry on the walk to `gfn` carries a mark (memory type 7): such a
        // write resolves the path first, which rewrites slots other stripes share.
        private bool PathHasMark(ulong gfn)
        {
            _memory.ThrowIfDisposed();
            ulong table = _rootMfn;
            for (int level = _levels; ; level--)
            {
                ulong pte = Volatile.Read(ref TableSlot(table, gfn, level));
                if (!IsValid(pte) || (pte & EptEntry.RwxMask) == 0)
                {
                    return false;
                }

                if (MemoryType(pte) == EptEntry.MemoryTypeFaultMarker)
                {
                    return true;
                }

                ulong next = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if (!IsTablePointer(pte, level) || next >= _frameCount)
                {
                    return false;
                }

                table = next;
            }
        }

        // max_mapped_pfn after a successful publish of a valid entry ending at `last`.
        private void NotePublished(ulong last)
        {
            long current = Volatile.Read(ref _hot.MaxPublishedPfn);
            while ((ulong)current < last)
            {
                long seen = Interlocked.CompareExchange(ref _hot.MaxPublishedPfn, (long)last, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }

        // A write that raised max_mapped_pfn failed. Under the exclusive lock no other writer is in
        // flight, so the highest successful publish is exact; under a stripe the lowering waits
        // for the exclusive lock (WriteScope.Dispose).
        private void LowerMaxAfterFailure()
        {
            if (_lock.IsHeldByCurrentThread)
            {
                Volatile.Write(ref _hot.MaxLowerPending, 0);
                Volatile.Write(ref _hot.MaxMappedPfn, Volatile.Read(ref _hot.MaxPublishedPfn));
            }
            else
            {
                Volatile.Write(ref _hot.MaxLowerPending, 1);
            }
        }

        private void SettleMaxMapped()
        {
            using OrderedLock.Scope s = _lock.Enter();
            if (Interlocked.Exchange(ref _hot.MaxLowerPending, 0) != 0)
            {
                Volatile.Write(ref _hot.MaxMappedPfn, Volatile.Read(ref _hot.MaxPublishedPfn));
            }
        }

        /// <summary>The locks of one write (see <see cref="EnterWrite"/>); released in reverse order.</summary>
        internal ref struct WriteScope
        {
            private readonly P2m _p2m;
            private OrderedLock.Scope _outer;
            private OrderedLock.Scope _stripe;

            internal WriteScope(P2m p2m, OrderedLock.Scope outer, OrderedLock.Scope stripe, bool exclusive)
            {
                _p2m = p2m;
                _outer = outer;
                _stripe = stripe;
                Exclusive = exclusive;
            }

            /// <summary>False for the default (nothing held).</summary>
            public readonly bool Held => _p2m is not null;

            /// <summary>True when the p2m lock is held exclusive.</summary>
            public bool Exclusive { get; }

            /// <summary>Releases the stripe, then the p2m lock; settles a pending max_mapped_pfn lowering.</summary>
            public void Dispose()
            {
                _stripe.Dispose();
                _outer.Dispose();
                _stripe = default;
                _outer = default;
                if (_p2m is not null && Volatile.Read(ref _p2m._hot.MaxLowerPending) != 0)
                {
                    _p2m.SettleMaxMapped();
                }
            }
        }
    }

    /// <summary>Deliberate writer bugs the concurrency tests must catch (tests only).</summary>
    internal enum PlantedWriterBug
    {
        /// <summary>No bug.</summary>
        None,

        /// <summary>A split publishes an empty table first and fills its slots afterwards.</summary>
        TwoStepSplit,

        /// <summary>A 2M write (which may replace a 4K table) skips its region's stripe.</summary>
        NoStripeFor2M,

        /// <summary>PodEntryCount is updated with a plain read-modify-write instead of an atomic add.</summary>
        RacyPodCount,
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed partial class P2m
    {
        // Xen's p2m_pod_demand_populate (docs/model/p2m.md §3.6). Returns true when the caller should read
        // again (populated, re-marked smaller, or someone else populated first), false when the
        // cache cannot back the entry. Every step is one SetEntryLocked, so a racing reader sees
        // the PoD entry or its replacement, never a hole. A 4K or 2M PoD entry is populated under
        // its region's stripe (exactly once: the entry is re-read under it); a 1G one, or one whose
        // write needs it, under the exclusive lock.
        private bool Populate(ulong gfn, int seenOrder)
        {
            bool exclusive = seenOrder >= (int)PageOrder.Size1G;
            while (true)
            {
                int result;
                using (WriteScope w = exclusive ? EnterExclusiveWriteOrNull() : EnterWriteOrNull(gfn))
                {
                    if (!w.Held)
                    {
                        return false;   // disposed
                    }

                    result = PopulateLocked(gfn, mayEscalate: !w.Exclusive);
                }

                if (result != NeedsExclusive)
                {
                    return result != 0;
                }

                exclusive = true;
            }
        }

        private const int NeedsExclusive = 2;

        private WriteScope EnterWriteOrNull(ulong gfn)
        {
            try
            {
                return EnterWrite(gfn, 0);
            }
            catch (ObjectDisposedException) when (_disposed)
            {
                return default;
            }
        }

        private WriteScope EnterExclusiveWriteOrNull()
        {
            try
            {
                return EnterExclusiveWrite();
            }
            catch (ObjectDisposedException) when (_disposed)
            {
                return default;
            }
        }

        // 0: the cache cannot back it; 1: read again; NeedsExclusive: retry under the exclusive lock.
        private int PopulateLocked(ulong gfn, bool mayEscalate)
        {
            _memory.ThrowIfDisposed();
            // Re-read under the lock: a racing populator may have done the work already.
            P2mEntry e = Lookup(gfn);
            if (e.Type != P2mType.PopulateOnDemand || !e.IsMapped)
            {
                return 1;
            }

            if (e.Order >= (int)PageOrder.Size1G && mayEscalate)
            {
                return NeedsExclusive;     // became 1G since the lock-free look
            }

            ulong baseGfn = gfn & ~((1UL << e.Order) - 1);
            try
            {
                if (e.Order == (int)PageOrder.Size1G)
                {
                    // Re-mark the 1G range as 512 PoD 2M entries (one split), then retry.
                    SetEntryLocked(gfn & ~511UL, Mfn.Invalid, (int)PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit);
                    return 1;
                }

                if (e.Order == (int)PageOrder.Size2M)
                {
                    if (Pod.TryTake((int)PageOrder.Size2M, out ulong big))
                    {
                        return MapPopulated(baseGfn, big, (int)PageOrder.Size2M, mayEscalate);
                    }

                    if (Pod.IsEmpty)
                    {
                        return 0;
                    }

                    // No 2M page: re-mark the 2M range as 512 PoD 4K entries, then retry.
                    return SetEntryLocked(gfn, Mfn.Invalid, (int)PageOrder.Size4K, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit, mayEscalate)
                        ? 1
                        : NeedsExclusive;
                }

                return Pod.TryTake((int)PageOrder.Size4K, out ulong small) ? MapPopulated(gfn, small, (int)PageOrder.Size4K, mayEscalate) : 0;
            }
            catch (InsufficientMemoryException)
            {
                return 0;   // no frame for a split table: nothing was changed
            }
        }

        private int MapPopulated(ulong gfn, ulong mfn, int order, bool mayEscalate)
        {
            try
            {
                if (SetEntryLocked(gfn, mfn, order, P2mType.RamRw, _defaultAccess, SuppressVe.Inherit, mayEscalate))
                {
                    return 1;
                }

                Pod.Return(mfn, order);
                return NeedsExclusive;
            }
            catch (InsufficientMemoryException)
            {
                Pod.Return(mfn, order);
                return 0;
            }
        }
    }
}

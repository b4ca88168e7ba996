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
        // the PoD entry or its replacement, never a hole.
        private bool Populate(ulong gfn)
        {
            using OrderedLock.Scope s = _lock.Enter();
            if (_disposed)
            {
                return false;
            }

            _memory.ThrowIfDisposed();
            // Re-read under the lock: a racing populator may have done the work already.
            P2mEntry e = Lookup(gfn);
            if (e.Type != P2mType.PopulateOnDemand || !e.IsMapped)
            {
                return true;
            }

            ulong baseGfn = gfn & ~((1UL << e.Order) - 1);
            try
            {
                if (e.Order == (int)PageOrder.Size1G)
                {
                    // Re-mark the 1G range as 512 PoD 2M entries (one split), then retry.
                    SetEntryLocked(gfn & ~511UL, Mfn.Invalid, (int)PageOrder.Size2M, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit);
                    return true;
                }

                if (e.Order == (int)PageOrder.Size2M)
                {
                    if (Pod.TryTake((int)PageOrder.Size2M, out ulong big))
                    {
                        return MapPopulated(baseGfn, big, (int)PageOrder.Size2M);
                    }

                    if (Pod.IsEmpty)
                    {
                        return false;
                    }

                    // No 2M page: re-mark the 2M range as 512 PoD 4K entries, then retry.
                    SetEntryLocked(gfn, Mfn.Invalid, (int)PageOrder.Size4K, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit);
                    return true;
                }

                return Pod.TryTake((int)PageOrder.Size4K, out ulong small) && MapPopulated(gfn, small, (int)PageOrder.Size4K);
            }
            catch (InsufficientMemoryException)
            {
                return false;   // no frame for a split table: nothing was changed
            }
        }

        private bool MapPopulated(ulong gfn, ulong mfn, int order)
        {
            try
            {
                SetEntryLocked(gfn, mfn, order, P2mType.RamRw, _defaultAccess, SuppressVe.Inherit);
                return true;
            }
            catch (InsufficientMemoryException)
            {
                Pod.Return(mfn, order);
                return false;
            }
        }
    }
}

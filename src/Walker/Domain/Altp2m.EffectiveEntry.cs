// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // What a view has at a GFN when it lacks its own entry: the host's, seen through the view
    // (Xen's altp2m_get_effective_entry), copied in lazily on a fault (docs/model/altp2m.md §4.3, §4.4).
    public sealed partial class Altp2m
    {
        // What a vCPU on `view` has at `gfn` without changing anything: the view's own entry, or
        // for an alternate view lacking it the host's, with the access a lazy copy would get.
        // Lock-free; callers that need the answer to stay true hold the p2m locks for reading.
        internal bool TryEffectiveEntry(int view, ulong gfn, out P2mEntry entry, out P2mAccess access)
        {
            P2m p = ViewLocked(view);
            entry = p.GetEntry(gfn);
            if (HasFrame(entry))
            {
                access = entry.Access;
                return true;
            }

            if (view != 0)
            {
                P2mEntry h = _host.GetEntry(gfn);
                if (HasFrame(h))
                {
                    entry = h;
                    access = p.Representable(h.Type, p.DefaultAccess, 0);
                    return true;
                }
            }

            access = P2mAccess.N;
            return false;
        }

        /// <summary>
        /// Lazy copy (docs/model/altp2m.md §4.3 step 2): with the host, list and view locks held, an empty view
        /// entry over a host mapping receives the host mapping at min(view hole order, host order)
        /// with the view's default access. Returns true when it copied.
        /// </summary>
        internal bool TryLazyCopyLocked(int view, ulong gfn, in P2mEntry host)
        {
            ViewState s = _views[view];
            P2m p = s.P2m!;
            P2mEntry e = p.GetEntry(gfn);
            if (e.IsMapped || !HasFrame(host))
            {
                return false;
            }

            int order = Math.Min(e.Order, host.Order);
            ulong mask = (1UL << order) - 1;
            ulong block = gfn & ~mask;
            ulong mfn = host.Mfn - (gfn & mask);
            P2mAccess access = p.Representable(host.Type, p.DefaultAccess, order);
            p.SetEntryHeld(block, mfn, (PageOrder)order, host.Type, access, FastEpt.SuppressVe.Inherit);
            return true;
        }

        // Xen's altp2m_get_effective_entry with the FastEpt fixes: the host fallback gives the
        // view's default access in both the superpage and the 4K case (docs/model/altp2m.md §4.4 QUIRK), and the
        // superpage is copied only where the view holds nothing (never over the view's own entries).
        // `access` (when given) is the access the caller will set: checked before anything changes.
        private P2mStatus EffectiveLocked(ViewState s, ulong gfn, bool prepopulate, P2mAccess? access,
                                          out ulong mfn, out P2mType type, out P2mAccess effAccess, out bool fromHost)
        {
            P2m p = s.P2m!;
            P2mEntry e = p.GetEntry(gfn);
            if (HasFrame(e))
            {
                mfn = e.Mfn;
                type = e.Type;
                effAccess = e.Access;
                fromHost = false;
                if (access is P2mAccess a1)
                {
                    CheckWriteWithoutRead(type, a1);
                }

                return P2mStatus.Ok;
            }

            P2mEntry h = _host.GetEntry(gfn);
            mfn = Mfn.Invalid;
            type = h.Type;
            effAccess = P2mAccess.N;
            fromHost = true;
            if (!HasFrame(h))
            {
                return P2mStatus.NoEntry;
            }

            if (h.Type != P2mType.RamRw)
            {
                return P2mStatus.InvalidType;
            }

            if (access is P2mAccess a2)
            {
                CheckWriteWithoutRead(h.Type, a2);
            }

            effAccess = p.Representable(h.Type, p.DefaultAccess, 0);
            if (prepopulate && h.Order > 0 && e.Order >= h.Order)
            {
                ulong mask = (1UL << h.Order) - 1;
                P2mAccess big = p.Representable(h.Type, p.DefaultAccess, h.Order);
                p.SetEntryHeld(gfn & ~mask, h.Mfn - (gfn & mask), (PageOrder)h.Order, h.Type, big, FastEpt.SuppressVe.Set);
            }

            mfn = h.Mfn;
            return P2mStatus.Ok;
        }

        // Before any lock: a view operation that will fall back to a shared host page asks the
        // embedder to unshare it (the callback copies guest memory, so no lock may be held).
        private void PrepareHostFallback(int view, ulong gfn)
        {
            P2m p = View(view);
            if (HasFrame(p.GetEntry(gfn)))
            {
                return;
            }

            P2mEntry h = _host.GetEntry(gfn, P2mQuery.Alloc);
            if (h.IsMapped && h.Type == P2mType.RamShared)
            {
                _domain.TryUnshare(gfn);
            }
        }
    }
}

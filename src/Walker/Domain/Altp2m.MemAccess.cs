// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // mem_access in a view (docs/model/altp2m.md §4.6, docs/model/mem-access.md §5.3): setting and
    // reading one GFN's access, and the checks on an access value.
    public sealed partial class Altp2m
    {
        /// <summary>
        /// Sets the access of one GFN in a view (docs/model/altp2m.md §4.6; 5.3 for view 0). In an alternate view
        /// that lacks the GFN the host entry is copied first (the whole host superpage when the view
        /// has nothing there, with the view's default access and suppress-#VE set), then the 4 KiB
        /// entry is set, splitting as needed. The host p2m never changes for a view &gt; 0.
        /// </summary>
        /// <returns><see cref="P2mStatus.NoEntry"/> when neither the view nor the host maps a frame at
        /// the GFN; <see cref="P2mStatus.InvalidType"/> when the host entry is not RamRw (shared pages
        /// need <see cref="Domain.UnshareCallback"/>); else <see cref="P2mStatus.Ok"/>.</returns>
        /// <exception cref="ArgumentOutOfRangeException">Bad view index, GFN or access value.</exception>
        /// <exception cref="ArgumentException">Inactive view, or an access that would be write-without-read on the entry's type.</exception>
        public P2mStatus SetMemAccess(int view, ulong gfn, P2mAccess access)
        {
            CheckIndex(view);
            CheckGfn(gfn);
            ValidateAccess(access);
            _domain.ThrowIfDisposed();
            _domain.MemAccessEnabled = true;
            if (view == 0)
            {
                _host.GetEntry(gfn, P2mQuery.Alloc);    // populate-on-demand first (Xen: ALLOC)
                using OrderedLock.Scope h = _host.P2mLock.Enter();
                P2mEntry e = _host.GetEntry(gfn);
                if (!HasFrame(e))
                {
                    return P2mStatus.NoEntry;
                }

                CheckWriteWithoutRead(e.Type, access);
                _host.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, access, SuppressVe.Inherit);
                return P2mStatus.Ok;
            }

            PrepareHostFallback(view, gfn);
            using OrderedLock.Scope hl = _host.P2mLock.Enter();
            using OrderedLock.Scope ll = _listLock.Enter();
            ViewState s = ActiveLocked(view);
            using OrderedLock.Scope vl = s.P2m!.P2mLock.Enter();
            P2mStatus st = EffectiveLocked(s, gfn, prepopulate: true, access, out ulong mfn, out P2mType type, out _, out _);
            if (st != P2mStatus.Ok)
            {
                return st;
            }

            s.P2m.SetEntryHeld(gfn, mfn, PageOrder.Size4K, type, access, SuppressVe.Inherit);
            return P2mStatus.Ok;
        }

        /// <summary>
        /// Reads the access of one GFN in a view; an alternate view that lacks the GFN answers
        /// with the access a copy from the host would get (its default access).
        /// </summary>
        public P2mStatus GetMemAccess(int view, ulong gfn, out P2mAccess access)
        {
            CheckIndex(view);
            CheckGfn(gfn);
            _ = View(view);
            bool found = TryEffectiveEntry(view, gfn, out _, out access);
            return found ? P2mStatus.Ok : P2mStatus.NoEntry;
        }

        private static void ValidateAccess(P2mAccess access)
        {
            if ((uint)access > (uint)P2mAccess.R_PW)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(access), access, "Unknown P2mAccess value.");
            }
        }

        private static void CheckWriteWithoutRead(P2mType type, P2mAccess access)
        {
            if (EptPermissions.IsWriteWithoutRead(type, access))
            {
                ThrowHelper.ThrowArgumentException(nameof(access), $"Access {access} on readable type {type} would be write-without-read, an EPT misconfiguration.");
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // The suppress-#VE bit of one GFN in a view (docs/model/altp2m.md §4.6).
    public sealed partial class Altp2m
    {
        /// <summary>
        /// Sets the suppress-#VE bit of one GFN (docs/model/altp2m.md §4.6). A view that lacks the GFN gets a
        /// 4 KiB copy of the host entry (with the view's default access) carrying the new bit: the
        /// 2019 fix that lets a fresh view be configured before it was ever populated. View 0 sets
        /// the host entry, which must exist (FastEpt: no empty entry carrying only the bit).
        /// </summary>
        /// <returns>As <see cref="SetMemAccess"/>.</returns>
        public P2mStatus SetSuppressVe(int view, ulong gfn, bool suppress)
        {
            CheckIndex(view);
            CheckGfn(gfn);
            _domain.ThrowIfDisposed();
            SuppressVe sve = suppress ? FastEpt.SuppressVe.Set : FastEpt.SuppressVe.Clear;
            if (view == 0)
            {
                using OrderedLock.Scope h = _host.P2mLock.Enter();
                P2mEntry e = _host.GetEntry(gfn);
                if (!HasFrame(e))
                {
                    return P2mStatus.NoEntry;
                }

                _host.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, e.Access, sve);
                return P2mStatus.Ok;
            }

            PrepareHostFallback(view, gfn);
            using OrderedLock.Scope hl = _host.P2mLock.Enter();
            using OrderedLock.Scope ll = _listLock.Enter();
            ViewState s = ActiveLocked(view);
            using OrderedLock.Scope vl = s.P2m!.P2mLock.Enter();
            P2mStatus st = EffectiveLocked(s, gfn, prepopulate: false, null, out ulong mfn, out P2mType type, out P2mAccess access, out _);
            if (st != P2mStatus.Ok)
            {
                return st;
            }

            s.P2m.SetEntryHeld(gfn, mfn, PageOrder.Size4K, type, access, sve);
            return P2mStatus.Ok;
        }

        /// <summary>
        /// Reads the effective suppress-#VE bit of one GFN: the view's entry, or (docs/model/README.md §0.3)
        /// the host entry when the view lacks the GFN. <paramref name="suppress"/> is true (the
        /// default) when the result is <see cref="P2mStatus.NoEntry"/>.
        /// </summary>
        public P2mStatus GetSuppressVe(int view, ulong gfn, out bool suppress)
        {
            CheckIndex(view);
            CheckGfn(gfn);
            P2mEntry e = View(view).GetEntry(gfn);
            if (!HasFrame(e) && view != 0)
            {
                e = _host.GetEntry(gfn);
            }

            suppress = !HasFrame(e) || e.SuppressVe;
            return HasFrame(e) ? P2mStatus.Ok : P2mStatus.NoEntry;
        }
    }
}

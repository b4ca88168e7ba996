// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // GFN remaps in an alternate view (Xen's p2m_change_altp2m_gfn, docs/model/altp2m.md §4.6).
    public sealed partial class Altp2m
    {
        /// <summary>
        /// Makes <paramref name="oldGfn"/> in an alternate view show the frame of
        /// <paramref name="newGfn"/> (Xen's <c>p2m_change_altp2m_gfn</c>, docs/model/altp2m.md §4.6), as a 4 KiB
        /// entry with suppress-#VE set; the view's remapped range grows to include newGfn. With
        /// <paramref name="newGfn"/> = <see cref="Mfn.Invalid"/> the remap (or any entry) at oldGfn
        /// is removed from the view.
        /// </summary>
        /// <returns><see cref="P2mStatus.NoEntry"/> or <see cref="P2mStatus.InvalidType"/> when either
        /// GFN has no usable effective entry (nothing changes); else <see cref="P2mStatus.Ok"/>.</returns>
        /// <exception cref="ArgumentException">View 0 or an inactive view.</exception>
        public P2mStatus ChangeGfn(int view, ulong oldGfn, ulong newGfn)
        {
            CheckIndex(view);
            CheckGfn(oldGfn);
            if (newGfn != Mfn.Invalid)
            {
                CheckGfn(newGfn, nameof(newGfn));
            }

            if (view == 0)
            {
                ThrowHelper.ThrowArgumentException(nameof(view), "ChangeGfn remaps GFNs in an alternate view; view 0 is the host p2m.");
            }

            _domain.ThrowIfDisposed();
            if (newGfn != Mfn.Invalid)
            {
                PrepareHostFallback(view, oldGfn);
                PrepareHostFallback(view, newGfn);
            }

            using OrderedLock.Scope hl = _host.P2mLock.Enter();
            using OrderedLock.Scope ll = _listLock.Enter();
            ViewState s = ActiveLocked(view);
            using OrderedLock.Scope vl = s.P2m!.P2mLock.Enter();
            if (newGfn == Mfn.Invalid)
            {
                if (s.P2m.GetEntry(oldGfn).IsMapped)
                {
                    s.P2m.SetEntryHeld(oldGfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N, FastEpt.SuppressVe.Inherit);
                }

                s.Remapped.Remove(oldGfn);
                return P2mStatus.Ok;
            }

            P2mStatus st = EffectiveLocked(s, oldGfn, prepopulate: true, null, out _, out _, out _, out _);
            if (st != P2mStatus.Ok)
            {
                return st;
            }

            st = EffectiveLocked(s, newGfn, prepopulate: false, null, out ulong mfn, out P2mType type, out P2mAccess access, out _);
            if (st != P2mStatus.Ok)
            {
                return st;
            }

            // A failure here (out of table frames) throws after undoing any partial work; Xen
            // reported success (docs/model/altp2m.md §4.6 QUIRK).
            s.P2m.SetEntryHeld(oldGfn, mfn, PageOrder.Size4K, type, access, FastEpt.SuppressVe.Set);
            s.Remapped.Add(oldGfn);
            s.MinRemapped = Math.Min(s.MinRemapped, newGfn);
            s.MaxRemapped = Math.Max(s.MaxRemapped, newGfn);
            return P2mStatus.Ok;
        }

        /// <summary>The view's remapped range [min, max] of source GFNs; (ulong.MaxValue, 0) when empty.</summary>
        public (ulong Min, ulong Max) RemappedRange(int view)
        {
            CheckIndex(view);
            if (view == 0)
            {
                return (ulong.MaxValue, 0);
            }

            using OrderedLock.Scope l = _listLock.Enter();
            ViewState s = ActiveLocked(view);
            return (s.MinRemapped, s.MaxRemapped);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Propagation of host p2m changes into the views (docs/model/altp2m.md §4.5), host write locks
    // held: the host stripe of the changed region (so two host writes of one GFN propagate in
    // order) or the host lock exclusive. Host writes of different regions propagate in parallel:
    // the list lock is taken shared and each view's write locks the same way as the host's (its
    // stripe, its lock exclusive for 1G); a view reset takes the view exclusive.
    public sealed partial class Altp2m
    {
        void IHostChangeObserver.OnHostChange(ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access, in P2mEntry before)
        {
            if (Volatile.Read(ref _activeCount) == 0)
            {
                return;
            }

            using OrderedLock.Scope l = _listLock.EnterRead();
            ulong count = 1UL << order;
            // A remap source that goes away, changes frame or becomes shared would leave a view
            // showing a frame the host no longer maps there: reset the view (Xen: on removal).
            // For a superpage write only `before` (its first GFN) is known: unless it was already one
            // mapping of at least this order from the same base frame, assume frames moved.
            bool sameFrames = HasFrame(before) ? before.Mfn == mfn && before.Order >= order : order == 0;
            bool hazard = mfn == Mfn.Invalid || type == P2mType.RamShared || !sameFrames;
            int firstReset = 0;
            if (hazard)
            {
                for (int i = 1; i < _views.Length; i++)
                {
                    ViewState s = _views[i];
                    if (!s.Active || s.MinRemapped > s.MaxRemapped || !(gfn + count > s.MinRemapped && gfn <= s.MaxRemapped))
                    {
                        continue;
                    }

                    if (firstReset == 0)
                    {
                        firstReset = i;
                        continue;
                    }

                    // Two views remap the range: reset every active view (as Xen does) and stop.
                    for (int j = 1; j < _views.Length; j++)
                    {
                        if (_views[j].Active)
                        {
                            ResetViewLocked(j);
                        }
                    }

                    return;
                }

                if (firstReset != 0)
                {
                    ResetViewLocked(firstReset);
                }
            }

            for (int i = 1; i < _views.Length; i++)
            {
                if (i != firstReset && _views[i].Active)
                {
                    PropagateInto(i, gfn, order, mfn, type, access);
                }
            }
        }

        // Every view leaf inside the changed range that holds a frame gets the host's new mapping
        // (or is removed), with the stricter access; remapped GFNs keep their remap.
        private void PropagateInto(int view, ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access)
        {
            ViewState s = _views[view];
            P2m p = s.P2m!;
            bool reset = false;
            using (P2m.WriteScope vl = p.EnterWrite(gfn, order))
            {
                try
                {
                    ulong count = 1UL << order;
                    ulong off = 0;
                    while (off < count)
                    {
                        ulong g = gfn + off;
                        P2mEntry e = p.GetEntry(g);
                        int k = Math.Min(e.Order, order);
                        if ((g & ((1UL << k) - 1)) != 0)
                        {
                            k = 0;
                        }

                        if (HasFrame(e) && !(k == 0 && s.Remapped.Contains(g)))
                        {
                            if (mfn == Mfn.Invalid)
                            {
                                p.SetEntryHeld(g, Mfn.Invalid, (PageOrder)k, P2mType.Invalid, P2mAccess.N, FastEpt.SuppressVe.Inherit);
                            }
                            else
                            {
                                P2mAccess a = p.Representable(type, Stricter(e.Access, access), k);
                                p.SetEntryHeld(g, mfn + off, (PageOrder)k, type, a, FastEpt.SuppressVe.Inherit);
                            }
                        }

                        off += 1UL << k;
                    }
                }
                catch (InsufficientMemoryException)
                {
                    reset = true;
                }
            }

            if (reset)
            {
                // No frame to split the view: it must not keep the old mapping, so empty it.
                ResetViewLocked(view);
            }
        }

        private void ResetViewLocked(int view)
        {
            using (_views[view].P2m!.P2mLock.Enter())
            {
                ResetHeldView(view);
            }
        }

        // A propagation reset (list lock and the view's lock exclusive held): empty the view, forget its remaps, report it.
        private void ResetHeldView(int view)
        {
            ViewState s = _views[view];
            s.P2m!.ResetLocked();
            s.ClearRemaps();
            Interlocked.Increment(ref _resets);
            _domain.NotifyViewReset(view);
        }

        /// <summary>
        /// The stricter of two accesses: the one whose rights are a subset of the other's (keeping
        /// its special meaning, e.g. rx2rw), else the plain intersection of their r/w/x rights.
        /// </summary>
        public static P2mAccess Stricter(P2mAccess a, P2mAccess b)
        {
            uint ra = MemAccessRules.Rights(a), rb = MemAccessRules.Rights(b);
            if ((ra & ~rb) == 0)
            {
                return a;
            }

            if ((rb & ~ra) == 0)
            {
                return b;
            }

            return (P2mAccess)(ra & rb);
        }
    }
}

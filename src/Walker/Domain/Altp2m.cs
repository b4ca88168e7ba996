// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// The alternate p2m views of a <see cref="Domain"/> (docs/model/altp2m.md §4). View 0 is always the host
    /// p2m; alternate views are 1..<see cref="DomainOptions.AltViews"/>, each a full EPT hierarchy
    /// over the same host memory that is filled lazily from the host on faults.
    /// </summary>
    /// <remarks>
    /// <para>Lock order (checked by the lock-order checker in Debug builds and in the tests): host
    /// p2m (16) before the view list (32) before a view (40). Every view-targeted operation takes
    /// all three, in that order; a host write holds the host lock while it propagates into the
    /// views. Readers (<see cref="P2m.Translate"/>, <see cref="P2m.GetEntry"/> on any view) take
    /// no lock.</para>
    /// <para>Propagation never widens a view's own restriction: a host change reaching a view entry
    /// keeps the stricter of the view's access and the host's, and a view's remapped GFNs
    /// (<see cref="ChangeGfn"/>) keep their remap.</para>
    /// </remarks>
    public sealed class Altp2m : IHostChangeObserver
    {
        /// <summary>Most alternate views a domain can have: host + 511 views fill one 512-entry EPTP list.</summary>
        public const int MaxAltViews = 511;

        private readonly Domain _domain;
        private readonly P2m _host;
        private readonly OrderedLock _listLock = new(OrderedLock.AltP2mListRank, "altp2m list");
        private readonly ViewState[] _views;     // [0] unused: view 0 is the host
        private int _activeCount;

        internal Altp2m(Domain domain, P2m host, int altViews)
        {
            _domain = domain;
            _host = host;
            _views = new ViewState[altViews + 1];
            for (int i = 1; i <= altViews; i++)
            {
                _views[i] = new ViewState();
            }
        }

        /// <summary>1 + the number of alternate views (<see cref="DomainOptions.AltViews"/>).</summary>
        public int ViewCount => _views.Length;

        /// <summary>False when the domain was created with <see cref="DomainOptions.AltViews"/> = 0.</summary>
        public bool IsEnabled => _views.Length > 1;

        /// <summary>Number of active alternate views.</summary>
        public int ActiveViewCount => Volatile.Read(ref _activeCount);

        /// <summary>Host changes that reset a view (removal of a GFN inside its remapped range).</summary>
        public long ViewResets => Volatile.Read(ref _resets);

        private long _resets;

        /// <summary>
        /// Activates the first free alternate view with <paramref name="defaultAccess"/> (the access
        /// lazily copied entries get) and returns its index; it starts empty and visible.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Unknown access value.</exception>
        /// <exception cref="InvalidOperationException">altp2m is off, or every view is active.</exception>
        public int CreateView(P2mAccess defaultAccess = P2mAccess.RWX)
        {
            ValidateAccess(defaultAccess);
            ThrowIfOff();
            _domain.ThrowIfDisposed();
            using OrderedLock.Scope l = _listLock.Enter();
            for (int i = 1; i < _views.Length; i++)
            {
                if (!_views[i].Active)
                {
                    ActivateLocked(i, defaultAccess);
                    return i;
                }
            }

            throw new InvalidOperationException($"All {_views.Length - 1} alternate views are active.");
        }

        /// <summary>Activates alternate view <paramref name="view"/> (Xen's <c>init_altp2m_by_id</c>).</summary>
        /// <exception cref="ArgumentOutOfRangeException">The index is outside 1..AltViews, or the access is unknown.</exception>
        /// <exception cref="ArgumentException">The view is already active.</exception>
        public void CreateViewAt(int view, P2mAccess defaultAccess = P2mAccess.RWX)
        {
            ValidateAccess(defaultAccess);
            if (view < 1 || view >= _views.Length)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(view), view, $"Alternate views are 1..{_views.Length - 1}.");
            }

            _domain.ThrowIfDisposed();
            using OrderedLock.Scope l = _listLock.Enter();
            if (_views[view].Active)
            {
                ThrowHelper.ThrowArgumentException(nameof(view), $"View {view} is already active.");
            }

            ActivateLocked(view, defaultAccess);
        }

        /// <summary>
        /// Deactivates an alternate view: its tables are emptied (reclaimed once no reader can be in
        /// them) and the index becomes free.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..ViewCount-1.</exception>
        /// <exception cref="ArgumentException">View 0 (the host) or an inactive view.</exception>
        /// <exception cref="InvalidOperationException">A vCPU is using the view.</exception>
        public void DestroyView(int view)
        {
            CheckIndex(view);
            if (view == 0)
            {
                ThrowHelper.ThrowArgumentException(nameof(view), "View 0 is the host p2m and cannot be destroyed.");
            }

            _domain.ThrowIfDisposed();
            using OrderedLock.Scope l = _listLock.Enter();
            ViewState s = ActiveLocked(view);
            foreach (Vcpu v in _domain.Vcpus)
            {
                if (v.View == view)
                {
                    throw new InvalidOperationException($"View {view} is in use by vCPU {v.Id}.");
                }
            }

            using (s.P2m!.P2mLock.Enter())
            {
                s.P2m.ResetLocked();
            }

            s.ClearRemaps();
            s.Visible = false;
            Volatile.Write(ref s.Active, false);
            Interlocked.Decrement(ref _activeCount);
        }

        /// <summary>True when <paramref name="view"/> is 0 or an active alternate view.</summary>
        public bool IsActive(int view)
        {
            CheckIndex(view);
            return view == 0 || Volatile.Read(ref _views[view].Active);
        }

        /// <summary>True when the view is listed for guest-initiated switching (VMFUNC's EPTP list).</summary>
        public bool IsVisible(int view)
        {
            CheckIndex(view);
            return view == 0 || (Volatile.Read(ref _views[view].Active) && _views[view].Visible);
        }

        /// <summary>Shows or hides an active alternate view in the guest's EPTP list (Xen's <c>set_view_visibility</c>).</summary>
        /// <exception cref="ArgumentException">View 0 or an inactive view.</exception>
        public void SetVisibility(int view, bool visible)
        {
            CheckIndex(view);
            if (view == 0)
            {
                ThrowHelper.ThrowArgumentException(nameof(view), "View 0 (the host) is always visible.");
            }

            using OrderedLock.Scope l = _listLock.Enter();
            ActiveLocked(view).Visible = visible;
        }

        /// <summary>
        /// Moves <paramref name="vcpu"/> to <paramref name="view"/> (Xen's <c>switch_vcpu_altp2m_by_id</c>:
        /// the view must be active, visible or not). Switching to the current view does nothing.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="vcpu"/> is null.</exception>
        /// <exception cref="ArgumentException">The vCPU belongs to another domain, or the view is inactive.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..ViewCount-1.</exception>
        public void Switch(Vcpu vcpu, int view)
        {
            _domain.CheckVcpu(vcpu);
            CheckIndex(view);
            using OrderedLock.Scope l = _listLock.Enter();
            if (view != 0)
            {
                ActiveLocked(view);
            }

            vcpu.SetView(view);
        }

        /// <summary>
        /// Moves every vCPU to <paramref name="view"/> (Xen's <c>switch_domain_altp2m_by_id</c>);
        /// false, and nothing changes, when the view is inactive or hidden.
        /// </summary>
        public bool SwitchAll(int view)
        {
            CheckIndex(view);
            using OrderedLock.Scope l = _listLock.Enter();
            if (view != 0 && !(_views[view].Active && _views[view].Visible))
            {
                return false;
            }

            foreach (Vcpu v in _domain.Vcpus)
            {
                v.SetView(view);
            }

            return true;
        }

        /// <summary>The EPT hierarchy of a view (0 = <see cref="Domain.HostP2m"/>), for lock-free walks.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..ViewCount-1.</exception>
        /// <exception cref="ArgumentException">The view is inactive.</exception>
        public P2m View(int view)
        {
            CheckIndex(view);
            if (view == 0)
            {
                return _host;
            }

            ViewState s = _views[view];
            if (!Volatile.Read(ref s.Active))
            {
                ThrowHelper.ThrowArgumentException(nameof(view), $"View {view} is not active.");
            }

            return s.P2m!;
        }

        /// <summary>The access lazily copied entries of a view get (the host p2m's default for view 0).</summary>
        public P2mAccess DefaultAccess(int view) => View(view).DefaultAccess;

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

        // ---- fault path (called by Domain) ------------------------------------------------

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

        internal OrderedLock ListLock => _listLock;

        internal P2m ViewLocked(int view) => view == 0 ? _host : _views[view].P2m!;

        // ---- propagation (docs/model/altp2m.md §4.5), host lock held -----------------------------------

        void IHostChangeObserver.OnHostChange(ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access, in P2mEntry before)
        {
            if (Volatile.Read(ref _activeCount) == 0)
            {
                return;
            }

            using OrderedLock.Scope l = _listLock.Enter();
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
            using OrderedLock.Scope vl = p.P2mLock.Enter();
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
                // No frame to split the view: it must not keep the old mapping, so empty it.
                ResetHeldView(view);
            }
        }

        private void ResetViewLocked(int view)
        {
            using (_views[view].P2m!.P2mLock.Enter())
            {
                ResetHeldView(view);
            }
        }

        // A propagation reset (list and view locks held): empty the view, forget its remaps, report it.
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

        // ---- helpers ---------------------------------------------------------------------

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

        private void ActivateLocked(int view, P2mAccess defaultAccess)
        {
            if (defaultAccess != P2mAccess.RWX)
            {
                _domain.MemAccessEnabled = true;
            }

            ViewState s = _views[view];
            if (s.P2m is null)
            {
                P2mOptions o = _host.Options.Clone();
                o.DefaultAccess = defaultAccess;
                s.P2m = new P2m(_host.Memory, o, OrderedLock.AltP2mViewRank, $"altp2m view {view}");
            }
            else
            {
                using OrderedLock.Scope vl = s.P2m.P2mLock.Enter();
                s.P2m.DefaultAccess = defaultAccess;
            }

            s.ClearRemaps();
            s.Visible = true;
            Volatile.Write(ref s.Active, true);
            Interlocked.Increment(ref _activeCount);
        }

        private ViewState ActiveLocked(int view)
        {
            ViewState s = _views[view];
            if (!s.Active)
            {
                ThrowHelper.ThrowArgumentException(nameof(view), $"View {view} is not active.");
            }

            return s;
        }

        internal void CheckIndex(int view)
        {
            if (unchecked((uint)view) >= (uint)_views.Length)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(view), view, $"Views are 0..{_views.Length - 1} (0 = host).");
            }
        }

        private void CheckGfn(ulong gfn, string name = "gfn")
        {
            if (gfn >= _host.GpaLimit >> EptEntry.PageBits)
            {
                throw new ArgumentOutOfRangeException(name, $"GFN 0x{gfn:X} is beyond the {_host.AddressBits}-bit guest-physical address width.");
            }
        }

        private void ThrowIfOff()
        {
            if (!IsEnabled)
            {
                throw new InvalidOperationException("altp2m is off for this domain (DomainOptions.AltViews = 0).");
            }
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

        internal static bool HasFrame(in P2mEntry e) => e.IsMapped && e.Mfn != Mfn.Invalid;

        internal void DisposeViews()
        {
            using OrderedLock.Scope l = _listLock.Enter();
            for (int i = 1; i < _views.Length; i++)
            {
                _views[i].P2m?.Dispose();
                _views[i].Active = false;
            }

            _activeCount = 0;
        }

        private sealed class ViewState
        {
            public P2m? P2m;
            public bool Active;
            public bool Visible;
            public ulong MinRemapped = ulong.MaxValue;
            public ulong MaxRemapped;
            public readonly HashSet<ulong> Remapped = new();

            public void ClearRemaps()
            {
                Remapped.Clear();
                MinRemapped = ulong.MaxValue;
                MaxRemapped = 0;
            }
        }
    }
}

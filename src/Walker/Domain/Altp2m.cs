// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// The alternate p2m views of a <see cref="Domain"/> (docs/model/altp2m.md). View 0 is always the host
    /// p2m; alternate views are 1..<see cref="DomainOptions.AltViews"/>, each a full EPT hierarchy
    /// over the same host memory that is filled lazily from the host on faults.
    /// </summary>
    /// <remarks>
    /// <para>Lock order (checked by the lock-order checker in Debug builds and in the tests): host
    /// p2m (16) before a host stripe (24) before the view list (32) before a view (40) before a
    /// view stripe (44). Every view-targeted operation takes the host lock, the list and the view
    /// exclusive, in that order; a 4K or 2M host write holds its region's host
    /// stripe while it propagates into the views (list lock shared, each view's stripe), so host writes of different regions propagate in parallel and two writes of
    /// one GFN propagate in order. Readers (<see cref="P2m.Translate"/>, <see cref="P2m.GetEntry"/>
    /// on any view) take no lock.</para>
    /// <para>Propagation never widens a view's own restriction: a host change reaching a view entry
    /// keeps the stricter of the view's access and the host's, and a view's remapped GFNs
    /// (<see cref="ChangeGfn"/>) keep their remap.</para>
    /// </remarks>
    public sealed partial class Altp2m : IHostChangeObserver
    {
        /// <summary>Most alternate views a domain can have: host + 511 views fill one 512-entry EPTP list.</summary>
        public const int MaxAltViews = 511;

        private readonly Domain _domain;
        private readonly P2m _host;
        private readonly OrderedLock _listLock = new(OrderedLock.AltP2mListRank, "altp2m list", distributedReaders: true);   // every fault reads it
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

        internal OrderedLock ListLock => _listLock;

        internal P2m ViewLocked(int view) => view == 0 ? _host : _views[view].P2m!;

        // ---- helpers ---------------------------------------------------------------------

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

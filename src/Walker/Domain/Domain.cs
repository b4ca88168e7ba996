// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Threading.Channels;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// A guest: the host p2m, its vCPUs, the populate-on-demand pool, MMIO registrations, the
    /// altp2m views (<see cref="Altp2m"/>), the EPT-violation handler with mem_access events and
    /// software #VE (docs/model/altp2m.md and docs/model/mem-access.md).
    /// </summary>
    /// <remarks>
    /// Locks are taken host p2m → view list → view, never across a call that copies guest memory
    /// or calls back into the embedder (the unshare callback, devices). Events are queued after
    /// every lock is dropped. Disposing the domain disposes the host p2m and every view and gives
    /// back the frames the domain allocated (PoD pool, unshared copies); the <see cref="HostMemory"/>
    /// stays the caller's.
    /// </remarks>
    public sealed partial class Domain : IDisposable
    {
        /// <summary>Exit reason written into the #VE information area (EPT violation).</summary>
        public const uint VeExitReason = 48;

        /// <summary>Vector of the virtualization exception.</summary>
        public const int VeVector = 20;

        private readonly HostMemory _memory;
        private readonly DomainOptions _options;
        private readonly Vcpu[] _vcpus;
        private readonly Channel<MemAccessEvent> _events;
        private readonly OrderedLock _frameLock = new(OrderedLock.DomainFramesRank, "domain frames");
        private readonly List<ulong> _ownedFrames = new();
        private readonly OrderedLock _mmioLock = new(OrderedLock.MmioRegistryRank, "MMIO registry");   // writers only
        private MmioRange[] _mmio = [];
        private long _nextEventId;
        private long _lostNotifications;
        private long _ringFullFaults;
        private volatile bool _monitor;
        private volatile bool _memAccessEnabled;
        private volatile string? _crashReason;
        private volatile bool _disposed;

        /// <summary>Creates a domain over <paramref name="memory"/>.</summary>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range (vCPUs, views, PoD frames, ring, p2m options).</exception>
        /// <exception cref="InsufficientMemoryException">Host memory cannot hold the PoD pool; nothing is kept.</exception>
        public Domain(HostMemory memory, DomainOptions options)
        {
            ArgumentNullException.ThrowIfNull(memory);
            ArgumentNullException.ThrowIfNull(options);
            DomainOptions o = options.Clone();
            o.Validate(nameof(options));
            _memory = memory;
            _options = o;
            _memAccessEnabled = o.P2m.DefaultAccess != P2mAccess.RWX;
            HostP2m = new P2m(memory, o.P2m, OrderedLock.P2mRank, "host p2m");
            try
            {
                for (long i = 0; i < o.PodFrames; i++)
                {
                    if (!memory.TryAllocateFrame(out ulong mfn))
                    {
                        ThrowHelper.ThrowInsufficientMemoryException_frames();
                    }

                    _ownedFrames.Add(mfn);
                    HostP2m.Pod.AddPage(mfn, PageOrder.Size4K);
                }
            }
            catch
            {
                HostP2m.Dispose();
                foreach (ulong f in _ownedFrames)
                {
                    memory.FreeFrame(f);
                }

                throw;
            }

            _vcpus = new Vcpu[o.Vcpus];
            for (int i = 0; i < _vcpus.Length; i++)
            {
                _vcpus[i] = new Vcpu(this, i);
            }

            Vcpus = Array.AsReadOnly(_vcpus);
            Altp2m = new Altp2m(this, HostP2m, o.AltViews);
            if (o.AltViews > 0)
            {
                HostP2m.ChangeObserver = Altp2m;
            }

            _events = Channel.CreateBounded<MemAccessEvent>(new BoundedChannelOptions(o.EventRingCapacity)
            {
                FullMode = BoundedChannelFullMode.Wait,   // TryWrite fails when full: nothing is dropped silently
                SingleReader = false,
                SingleWriter = false,
            });
        }

        /// <summary>The host p2m (view 0).</summary>
        public P2m HostP2m { get; }

        /// <summary>The vCPUs, by id.</summary>
        public IReadOnlyList<Vcpu> Vcpus { get; }

        /// <summary>The alternate views.</summary>
        public Altp2m Altp2m { get; }

        /// <summary>The host memory this domain lives in.</summary>
        public HostMemory Memory => _memory;

        /// <summary>
        /// mem_access violations and view-reset notifications, in order. Bounded by
        /// <see cref="DomainOptions.EventRingCapacity"/>: a violation that finds it full is reported
        /// <see cref="FaultOutcome.Unhandled"/>; a notification that finds it full is counted in
        /// <see cref="LostNotifications"/>.
        /// </summary>
        public ChannelReader<MemAccessEvent> MemAccessEvents => _events.Reader;

        /// <summary>
        /// A mem_access listener is attached (Xen: the monitor ring exists). Without one a violation
        /// relaxes the entry to rwx and retries, or crashes the domain when <see cref="AccessRequired"/>.
        /// Turning it off resumes every vCPU paused on an event.
        /// </summary>
        public bool MonitorMemAccess
        {
            get => _monitor;
            set
            {
                _monitor = value;
                if (!value)
                {
                    foreach (Vcpu v in _vcpus)
                    {
                        v.TryUnpause(v.PausedOnEvent);
                    }
                }
            }
        }

        /// <summary>
        /// Some p2m of this domain restricts access rights (Xen's mem_access_enabled). Set by
        /// <see cref="Altp2m.SetMemAccess"/>, by a view or host default access other than rwx, and
        /// settable by an embedder that restricts access through <see cref="P2m.SetEntry"/> directly.
        /// <see cref="Vcpu.GetPageFromGva"/> runs its mem_access fallback only when it is set.
        /// </summary>
        public bool MemAccessEnabled
        {
            get => _memAccessEnabled;
            set => _memAccessEnabled = value;
        }

        /// <summary>A violation with no listener crashes the domain instead of relaxing the access (Xen's access_required).</summary>
        public bool AccessRequired { get; set; }

        /// <summary>
        /// Called (with no lock held) when an operation needs a host page that is
        /// <see cref="P2mType.RamShared"/> to be private: it must make the host entry non-shared
        /// and return true. Without it such operations give <see cref="P2mStatus.InvalidType"/> or
        /// <see cref="FaultOutcome.Unhandled"/>. <see cref="UnsharePage"/> is a ready-made one.
        /// </summary>
        public Func<ulong, bool>? UnshareCallback { get; set; }

        /// <summary>True once the domain was crashed (a required mem_access listener was missing).</summary>
        public bool IsCrashed => _crashReason is not null;

        /// <summary>Why the domain was crashed, or null.</summary>
        public string? CrashReason => _crashReason;

        /// <summary>View-reset notifications that found the event channel full.</summary>
        public long LostNotifications => Volatile.Read(ref _lostNotifications);

        /// <summary>Violations reported unhandled because the event channel was full.</summary>
        public long RingFullFaults => Volatile.Read(ref _ringFullFaults);

        /// <summary>
        /// Registers <paramref name="device"/> for <paramref name="pages"/> pages from
        /// <paramref name="gfn"/>. Whatever the host mapped there is removed (the range reads as
        /// MmioDm holes, and the removal propagates to the views); faults there report
        /// <see cref="FaultOutcome.Mmio"/>.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="device"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Zero pages, or the range leaves the guest-physical address width.</exception>
        /// <exception cref="ArgumentException">The range overlaps another registration.</exception>
        public void MapMmio(ulong gfn, ulong pages, IMmioDevice device)
        {
            ArgumentNullException.ThrowIfNull(device);
            ulong limit = HostP2m.GpaLimit >> EptEntry.PageBits;
            if (pages == 0 || pages > limit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(pages), pages, "An MMIO range has 1 or more pages inside the address width.");
            }

            if (gfn >= limit || pages > limit - gfn)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(gfn), gfn, $"The MMIO range leaves the {HostP2m.AddressBits}-bit guest-physical address width.");
            }

            ThrowIfDisposed();
            using (_mmioLock.Enter())
            {
                foreach (MmioRange r in _mmio)
                {
                    if (gfn < r.First + r.Pages && r.First < gfn + pages)
                    {
                        ThrowHelper.ThrowArgumentException(nameof(gfn), $"GFNs 0x{gfn:X}+{pages} overlap the MMIO range at 0x{r.First:X}+{r.Pages}.");
                    }
                }

                var grown = new MmioRange[_mmio.Length + 1];
                int at = 0;
                while (at < _mmio.Length && _mmio[at].First < gfn)
                {
                    grown[at] = _mmio[at];
                    at++;
                }

                grown[at] = new MmioRange(gfn, pages, device);
                Array.Copy(_mmio, at, grown, at + 1, _mmio.Length - at);
                Volatile.Write(ref _mmio, grown);
            }

            RemoveHostRange(gfn, gfn + pages);
        }

        /// <summary>The device registered for <paramref name="gfn"/>, lock-free.</summary>
        public bool TryGetMmioDevice(ulong gfn, out IMmioDevice device)
        {
            MmioRange[] ranges = Volatile.Read(ref _mmio);
            int lo = 0, hi = ranges.Length - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                MmioRange r = ranges[mid];
                if (gfn < r.First)
                {
                    hi = mid - 1;
                }
                else if (gfn - r.First >= r.Pages)
                {
                    lo = mid + 1;
                }
                else
                {
                    device = r.Device;
                    return true;
                }
            }

            device = null!;
            return false;
        }

        /// <summary>
        /// Copy-on-write unsharing for <see cref="UnshareCallback"/>: gives a
        /// <see cref="P2mType.RamShared"/> GFN a private copy of its page (a new frame owned by the
        /// domain, type RamRw, same access). True when the GFN is mapped and not shared afterwards.
        /// </summary>
        public bool UnsharePage(ulong gfn)
        {
            ThrowIfDisposed();
            P2mEntry h = HostP2m.GetEntry(gfn);
            if (!Altp2m.HasFrame(h) || h.Type != P2mType.RamShared)
            {
                return Altp2m.HasFrame(h);
            }

            if (!_memory.TryAllocateFrame(out ulong copy))
            {
                return false;
            }

            // The copy touches guest memory: no lock is held.
            _memory.Frame(h.Mfn).CopyTo(_memory.Frame(copy));
            using (HostP2m.P2mLock.Enter())
            {
                P2mEntry now = HostP2m.GetEntry(gfn);
                if (now.Type == P2mType.RamShared && now.Mfn == h.Mfn)
                {
                    HostP2m.SetEntryHeld(gfn, copy, PageOrder.Size4K, P2mType.RamRw, now.Access, SuppressVe.Inherit);
                    using (_frameLock.Enter())
                    {
                        _ownedFrames.Add(copy);
                    }

                    return true;
                }

                _memory.FreeFrame(copy);
                return Altp2m.HasFrame(now) && now.Type != P2mType.RamShared;
            }
        }

        /// <summary>
        /// Answers a synchronous <see cref="MemAccessEvent"/>: optionally moves the vCPU to
        /// <paramref name="switchToView"/> (active, visible or not), then resumes it.
        /// </summary>
        /// <exception cref="ArgumentException">Not a synchronous violation of this domain, or an inactive view.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The view index is out of range.</exception>
        /// <exception cref="InvalidOperationException">The vCPU is not paused on this event (already answered).</exception>
        public void RespondToMemAccess(MemAccessEvent request, int? switchToView = null)
        {
            if (request.Kind != MemAccessEventKind.Violation || !request.IsSynchronous || unchecked((uint)request.VcpuId) >= (uint)_vcpus.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(request), "Only a synchronous violation event of this domain can be answered.");
            }

            Vcpu vcpu = _vcpus[request.VcpuId];
            if (switchToView is int view && !Altp2m.IsActive(view))
            {
                ThrowHelper.ThrowArgumentException(nameof(switchToView), $"View {view} is not active.");
            }

            if (vcpu.PausedOnEvent != request.Id)
            {
                throw new InvalidOperationException($"vCPU {vcpu.Id} is not paused on event {request.Id}.");
            }

            if (switchToView is int v)
            {
                Altp2m.Switch(vcpu, v);
            }

            if (!vcpu.TryUnpause(request.Id))
            {
                throw new InvalidOperationException($"Event {request.Id} was answered concurrently.");
            }
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _events.Writer.TryComplete();
            foreach (Vcpu v in _vcpus)
            {
                v.TryUnpause(v.PausedOnEvent);
            }

            Altp2m.DisposeViews();
            HostP2m.Dispose();
            using (_frameLock.Enter())
            {
                if (!_memory.IsDisposed)
                {
                    foreach (ulong f in _ownedFrames)
                    {
                        _memory.FreeFrame(f);
                    }
                }

                _ownedFrames.Clear();
            }
        }

        internal void ThrowIfDisposed()
        {
            if (_disposed)
            {
                ThrowHelper.ThrowObjectDisposedException(this);
            }
        }

        internal void CheckVcpu(Vcpu vcpu)
        {
            ArgumentNullException.ThrowIfNull(vcpu);
            if (!ReferenceEquals(vcpu.Domain, this))
            {
                ThrowHelper.ThrowArgumentException(nameof(vcpu), "The vCPU belongs to another domain.");
            }
        }

        internal bool TryUnshare(ulong gfn)
        {
            Func<ulong, bool>? cb = UnshareCallback;
            if (cb is null)
            {
                return false;
            }

            Debug.Assert(!HostP2m.P2mLock.IsHeldByCurrentThread, "the unshare callback runs with no lock held");
            return cb(gfn) && HostP2m.GetEntry(gfn).Type != P2mType.RamShared;
        }

        internal void NotifyViewReset(int view)
        {
            var ev = new MemAccessEvent(Interlocked.Increment(ref _nextEventId), MemAccessEventKind.ViewReset, -1, view,
                                        Mfn.Invalid, 0, ~0UL, MemAccessFlags.AlternateView, P2mAccess.N);
            if (!_events.Writer.TryWrite(ev))
            {
                Interlocked.Increment(ref _lostNotifications);
            }
        }

        // Removes every host mapping in [first, end) with the largest aligned orders.
        private void RemoveHostRange(ulong first, ulong end)
        {
            ulong g = first;
            while (g < end)
            {
                P2mEntry e = HostP2m.GetEntry(g);
                if (!e.IsMapped)
                {
                    ulong next = e.Order >= 64 ? end : (g | ((1UL << e.Order) - 1)) + 1;
                    g = next > g && next < end ? next : end;
                    continue;
                }

                int k = (int)PageOrder.Size1G;
                while (k > 0 && ((g & ((1UL << k) - 1)) != 0 || end - g < 1UL << k || k > e.Order))
                {
                    k -= EptEntry.TableOrder;
                }

                HostP2m.SetEntry(g, Mfn.Invalid, (PageOrder)k, P2mType.MmioDm, P2mAccess.N);
                g += 1UL << k;
            }
        }

        private readonly record struct MmioRange(ulong First, ulong Pages, IMmioDevice Device);
    }
}

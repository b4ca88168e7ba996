// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>Guest paging mode of a <see cref="Vcpu"/> (Intel SDM Vol. 3A 4.1.1), derived from CR0, CR4 and EFER.</summary>
    public enum GuestPagingMode
    {
        /// <summary>Paging off (CR0.PG = 0): a linear address is the guest-physical address.</summary>
        Flat,

        /// <summary>IA-32e mode, 4-level paging.</summary>
        LongMode4,

        /// <summary>IA-32e mode, 5-level paging (CR4.LA57).</summary>
        LongMode5,

        /// <summary>32-bit paging (CR4.PAE = 0): two levels of 4-byte entries, 4 MiB pages with CR4.PSE (PSE-36 high bits).</summary>
        Paging32,

        /// <summary>PAE paging (CR4.PAE = 1, EFER.LMA = 0): four PDPTE registers loaded with CR3, then two levels of 8-byte entries.</summary>
        Pae,
    }

    /// <summary>
    /// A virtual CPU of a <see cref="Domain"/>: its current altp2m view, paging registers, #VE
    /// set-up, pause state (synchronous mem_access events) and pending exception.
    /// </summary>
    /// <remarks>
    /// Thread-safety: <see cref="View"/>, <see cref="IsPaused"/> and the #VE state may be read from
    /// any thread. Switch views with <see cref="Altp2m.Switch"/>. The paging registers are plain
    /// properties for the thread that runs the vCPU.
    /// </remarks>
    public sealed partial class Vcpu
    {
        private readonly Domain _domain;
        private readonly ManualResetEventSlim _running = new(true);
        private readonly OrderedLock _pauseLock = new(OrderedLock.VcpuPauseRank, "vCPU pause");
        private volatile int _view;
        private long _veInfoGfn = unchecked((long)Mfn.Invalid);
        private long _pausedOn;          // id of the synchronous event this vCPU waits for; 0 = running
        private int _pendingVector = -1;
        private int _spuriousMisconfig;

        internal Vcpu(Domain domain, int id)
        {
            _domain = domain;
            Id = id;
        }

        /// <summary>Index of this vCPU in <see cref="Domain.Vcpus"/>.</summary>
        public int Id { get; }

        /// <summary>The domain that owns this vCPU.</summary>
        public Domain Domain => _domain;

        /// <summary>The view this vCPU translates through (0 = host p2m). Change it with <see cref="Altp2m.Switch"/>.</summary>
        public int View => _view;

        // Seams between the control-register model (Vcpu.cs and the walks) and the linear TLB
        // (Vcpu.Tlb.cs). The register side calls them after the register changed.
        // A MOV to CR3 with its value (bit 63 = no-flush when CR4.PCIDE is set).
        partial void OnCr3Load(ulong value);

        // A change of a control bit that the SDM says flushes the TLB (CR0.PG/WP, CR4.PGE/PAE/PSE/
        // PCIDE/SMEP/SMAP/PKE/PKS/LA57, EFER.NXE/LMA) or that changes what a cached right means
        // (PKRU, IA32_PKRS). Not called for RFLAGS.AC, which each access reads (Vcpu.Registers.cs).
        partial void OnPagingControlChange();

        // A write of RFLAGS.AC (no flush: the TLB keys its access classes by it).
        partial void OnAcChange(bool value);

        /// <summary>True while the vCPU waits for the answer to a synchronous <see cref="MemAccessEvent"/>.</summary>
        public bool IsPaused => Volatile.Read(ref _pausedOn) != 0;

        /// <summary>Id of the event the vCPU is paused on, 0 when running.</summary>
        public long PausedOnEvent => Volatile.Read(ref _pausedOn);

        /// <summary>GFN of the #VE information page, or <see cref="Mfn.Invalid"/> when #VE is off.</summary>
        public ulong VeInfoGfn => unchecked((ulong)Volatile.Read(ref _veInfoGfn));

        /// <summary>The exception vector injected and not yet taken (20 = #VE), or -1.</summary>
        public int PendingVector => Volatile.Read(ref _pendingVector);

        /// <summary>Takes the pending exception vector (-1 when none), as an emulator does at its next entry.</summary>
        public int TakePendingVector() => Interlocked.Exchange(ref _pendingVector, -1);

        /// <summary>Blocks until the vCPU is not paused or the timeout expires; true when running.</summary>
        public bool WaitUntilRunning(TimeSpan timeout, CancellationToken cancellationToken = default)
            => _running.Wait(timeout, cancellationToken);

        /// <summary>
        /// Enables software #VE with the information page at <paramref name="veInfoGfn"/> (Xen's
        /// <c>altp2m_vcpu_enable_ve</c>, docs/model/altp2m.md §4.7).
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The GFN is beyond the host p2m's address width.</exception>
        /// <exception cref="ArgumentException">The GFN is not plain guest RAM (RamRw or RamLogDirty) in the host p2m.</exception>
        /// <exception cref="InvalidOperationException">#VE is already enabled on this vCPU.</exception>
        public void EnableVe(ulong veInfoGfn)
        {
            if (veInfoGfn >= _domain.HostP2m.GpaLimit >> EptEntry.PageBits)
            {
                throw new ArgumentOutOfRangeException(nameof(veInfoGfn), $"GFN 0x{veInfoGfn:X} is beyond the guest-physical address width.");
            }

            P2mEntry e = _domain.HostP2m.GetEntry(veInfoGfn, P2mQuery.Alloc);
            if (!e.IsMapped || e.Mfn == Mfn.Invalid || e.Type is not (P2mType.RamRw or P2mType.RamLogDirty))
            {
                throw new ArgumentException($"GFN 0x{veInfoGfn:X} is not guest RAM (type {e.Type}); the #VE information page must be.", nameof(veInfoGfn));
            }

            if (Interlocked.CompareExchange(ref _veInfoGfn, (long)veInfoGfn, unchecked((long)Mfn.Invalid)) != unchecked((long)Mfn.Invalid))
            {
                throw new InvalidOperationException($"#VE is already enabled on vCPU {Id}; disable it first.");
            }
        }

        /// <summary>Disables #VE; returns false when it was not enabled.</summary>
        public bool DisableVe()
            => Interlocked.Exchange(ref _veInfoGfn, unchecked((long)Mfn.Invalid)) != unchecked((long)Mfn.Invalid);

        internal void SetView(int view)
        {
            _view = view;
            Interlocked.MemoryBarrier();        // the view before the TLB: a TLB created meanwhile reads the new view (LinearTlb.Synchronize)
            Volatile.Read(ref _tlb)?.MarkStale();
        }

        // The pause word and the wait handle change together under a leaf lock (never held
        // across anything else), so a racing unpause cannot leave the handle reset.
        internal bool TryPause(long eventId)
        {
            using (_pauseLock.Enter())
            {
                if (_pausedOn != 0)
                {
                    return false;
                }

                _running.Reset();
                Volatile.Write(ref _pausedOn, eventId);
                return true;
            }
        }

        // Xen's ept_spurious_misconfig: another vCPU fixed a marked path since this one last asked.
        internal void NoteSpuriousMisconfig() => Volatile.Write(ref _spuriousMisconfig, 1);

        internal bool TakeSpuriousMisconfig() => Interlocked.Exchange(ref _spuriousMisconfig, 0) != 0;

        internal bool TryUnpause(long eventId)
        {
            using (_pauseLock.Enter())
            {
                if (_pausedOn != eventId || eventId == 0)
                {
                    return false;
                }

                Volatile.Write(ref _pausedOn, 0);
                _running.Set();
                return true;
            }
        }

        internal void Inject(int vector) => Volatile.Write(ref _pendingVector, vector);
    }
}

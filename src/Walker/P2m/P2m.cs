// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// One EPT hierarchy (4 or 5 levels) whose tables live in <see cref="HostMemory"/> frames,
    /// with Xen's p2m semantics: superpages of 2 MiB and 1 GiB, atomic superpage splits,
    /// populate-on-demand, p2m types and access rights, and a hardware-exact walker.
    /// </summary>
    /// <remarks>
    /// <para><b>Concurrency.</b> Readers (<see cref="Translate"/>, <see cref="TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>,
    /// <see cref="GetEntry"/> without populate) take no lock and read every entry exactly once,
    /// from any number of threads. Writers of 4K and 2M entries (<see cref="SetEntry"/>,
    /// populate-on-demand, the log-dirty write fault) run in parallel when their GFNs lie in
    /// different 2 MiB regions: each holds only its region's stripe lock.
    /// 1G writes and whole-p2m operations (global type change, range operations, view reset,
    /// <see cref="Dispose"/>) hold the p2m lock exclusive. A writer builds every new entry and every new
    /// subtree in unpublished memory and publishes it with a single 64-bit compare-exchange on
    /// one slot, so a reader sees either the old or the new state, never a mix or a hole; a writer
    /// whose compare-exchange lost (to a writer of another region, or to the walker's
    /// accessed/dirty update) frees what it built and walks again. A table is only ever unlinked
    /// by the holder of its region's stripe (2M) or under the exclusive lock (1G), so no write can
    /// land in an unlinked table.</para>
    /// <para><b>Reclamation.</b> A subtree replaced by a superpage is unlinked first and its
    /// frames are returned to host memory only once no reader can still be inside it
    /// (epoch-based reclamation, see <c>Internal/Epoch.cs</c>).</para>
    /// <para><b>Lock order.</b> p2m lock (rank 16), then a region stripe (24; 44 in an altp2m
    /// view), then the PoD cache lock (48), then
    /// host memory's allocator lock (56). No lock is held while guest memory is
    /// translated or copied on a reader's behalf.</para>
    /// </remarks>
    public sealed partial class P2m : IDisposable
    {
        // Middle (non-leaf) entries: r=w=x=1, default access, suppress-#VE, A preset on A/D CPUs.
        private const ulong EmptySlot = EptEntry.SuppressVeBit;

        private readonly HostMemory _memory;
        private readonly OrderedLock _lock;
        private readonly TableSet _tables;                              // owned table frames, root included
        private readonly ulong _rootMfn;
        private readonly int _levels;
        private readonly int _addressBits;
        private readonly ulong _gfnLimit;
        private readonly ulong _gpaLimit;
        private readonly ulong _frameCount;
        private readonly ulong _hostFrameLimit;    // 2^(MAXPHYADDR-12): MMIO frames must fit the address width
        private readonly bool _support1G;
        private readonly bool _accessDirty;
        private P2mAccess _defaultAccess;   // changed only for a re-activated altp2m view, under the write lock
        private readonly EptPermissions.Inputs _inputs;
        private readonly IEmtPolicy _emt;

        // Misconfiguration masks (docs/model/ept.md §1.4), precomputed from the options.
        private readonly ulong _nonLeafReserved;   // bits 6:3 and 51:MAXPHYADDR
        private readonly ulong _leafReserved1;     // PTE: 51:MAXPHYADDR
        private readonly ulong _leafReserved2;     // 2M PDE: also 20:12
        private readonly ulong _leafReserved3;     // 1G PDPTE: also 29:12, or everything without 1G support
        private readonly uint _badRwx;             // bit n set: rwx value n misconfigures
        private readonly ulong _fastPointerMask;   // fast path: bits 51:MAXPHYADDR, 7:3 and r; a plain pointer has exactly r
        private readonly ulong _fastLeafMask;      // fast path: bits 51:MAXPHYADDR and r; a plain readable PTE has exactly r
        private readonly ulong _tableLimit;        // first HPA past host memory: a pointer field at or above it names no frame

        private volatile bool _disposed;

        /// <summary>Creates an empty hierarchy (one zeroed root table) in <paramref name="memory"/>.</summary>
        /// <param name="memory">Where the tables live; must outlive this p2m.</param>
        /// <param name="options">Settings, copied now; null for the defaults.</param>
        /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
        /// <exception cref="InsufficientMemoryException">No frame for the root table.</exception>
        public P2m(HostMemory memory, P2mOptions? options = null)
            : this(memory, options, OrderedLock.P2mRank, "p2m")
        {
        }

        // Alternate views use the altp2m-view lock rank (docs/model/p2m.md §3.1), so that a host update can
        // hold the host lock while it propagates into the views.
        internal P2m(HostMemory memory, P2mOptions? options, int lockRank, string lockName)
        {
            ArgumentNullException.ThrowIfNull(memory);
            _lock = new OrderedLock(lockRank, lockName, distributedReaders: true);   // GetPageFromGva shares it from every vCPU
            _stripes = CreateStripes(lockRank == OrderedLock.P2mRank ? OrderedLock.P2mStripeRank : OrderedLock.AltP2mViewStripeRank, lockName);
            _lock.AttachStripes(_stripes);
            P2mOptions o = (options ?? new P2mOptions()).Clone();
            o.Validate(nameof(options));
            _memory = memory;
            Options = o;
            _levels = o.Levels;
            _addressBits = o.AddressBits;
            _gfnLimit = 1UL << (o.AddressBits - EptEntry.PageBits);
            _gpaLimit = 1UL << o.AddressBits;
            _frameCount = (ulong)memory.FrameCount;
            _hostFrameLimit = 1UL << (o.HostAddressBits - EptEntry.PageBits);
            _support1G = o.Support1G;
            _accessDirty = o.AccessDirty;
            _defaultAccess = o.DefaultAccess;
            _inputs = new EptPermissions.Inputs(o);
            _emt = o.EmtPolicy ?? new DefaultEmtPolicy(o.MmioReadOnly);

            ulong high = EptEntry.MfnMask & ~((1UL << o.HostAddressBits) - 1);
            _nonLeafReserved = 0x78UL | high;
            _leafReserved1 = high;
            _leafReserved2 = high | (((1UL << 21) - 1) & ~EptEntry.PageMask);
            _leafReserved3 = o.Support1G ? high | (((1UL << 30) - 1) & ~EptEntry.PageMask) : ~0UL;
            _badRwx = (1u << 2) | (1u << 6) | (o.ExecuteOnly ? 0u : 1u << 4);
            // With r set, no rwx value misconfigures (both bad patterns have r clear), so one
            // AND-and-compare covers presence, rwx, reserved bits and (for pointers) bit 7.
            _fastLeafMask = high | 1;
            _fastPointerMask = high | 0xF8 | 1;
            _tableLimit = (ulong)memory.FrameCount << EptEntry.PageBits;

            _tables = new TableSet(_frameCount);
            Pod = new PodCache(memory);
            _rootMfn = memory.AllocateFrame();   // zeroed: the root is not pre-filled (docs/model/ept.md §1.2)
            _tables.Add(_rootMfn);
            RegisterForTlbInvalidation(this);
        }

        /// <summary>A copy of the options this p2m was created with.</summary>
        public P2mOptions Options { get; }

        /// <summary>The host memory the tables live in.</summary>
        public HostMemory Memory => _memory;

        /// <summary>
        /// The EPT pointer: root table HPA | (Levels-1) &lt;&lt; 3 | write-back (6) | A/D enable (bit 6).
        /// </summary>
        public ulong Eptp
            => (_rootMfn << EptEntry.PageBits) | ((ulong)(_levels - 1) << 3) | EptEntry.MemoryTypeWriteBack
               | (_accessDirty ? 1UL << 6 : 0);

        /// <summary>The MFN of the root table.</summary>
        public ulong RootMfn => _rootMfn;

        /// <summary>Paging levels (4 or 5).</summary>
        public int Levels => _levels;

        /// <summary>2^AddressBits: the first guest-physical address <see cref="Translate"/> rejects.</summary>
        internal ulong GpaLimit => _gpaLimit;

        /// <summary>The guest-physical address width this p2m was created with.</summary>
        internal int AddressBits => _addressBits;

        /// <summary>The populate-on-demand cache that <see cref="P2mQuery.Alloc"/> draws from.</summary>
        public PodCache Pod { get; }

        /// <summary>The highest GFN any valid entry was ever written for (Xen's <c>max_mapped_pfn</c>; never lowered).</summary>
        public ulong MaxMappedPfn
        {
            get => (ulong)Volatile.Read(ref _hot.MaxMappedPfn);
            internal set => Volatile.Write(ref _hot.MaxMappedPfn, (long)value);
        }

        /// <summary>Number of GFNs currently marked populate-on-demand (Xen's <c>pod.entry_count</c>).</summary>
        public long PodEntryCount => Volatile.Read(ref _hot.PodEntryCount);

        /// <summary>Number of table frames in the live hierarchy, the root included.</summary>
        /// <remarks>Lock-free: exact whenever no write is in flight, else the count of some moment during it.</remarks>
        public long TableFrameCount => _tables.Count;

        /// <summary>The table count without a lock, for the batch walkers' path choice.</summary>
        internal long TableCountRelaxed => _tables.Count;

        /// <summary>
        /// Returns every table frame (live and pending reclaim) to host memory. No other call may
        /// be running on this p2m, and none may follow.
        /// </summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            using OrderedLock.Scope s = _lock.Enter();
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            BumpTlbGeneration();    // after the flag: a TLB that sees the bump misses, and its walk throws
            if (_memory.IsDisposed)
            {
                // The frames went with the host memory; nothing to give back.
                _tables.Clear();
                DisposeRetired();
                return;
            }

            foreach (ulong mfn in _tables)
            {
                _memory.FreeFrame(mfn);
            }

            _tables.Clear();
            DisposeRetired();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ThrowIfDisposed()
        {
            if (_disposed)
            {
                ThrowHelper.ThrowObjectDisposedException(this);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int ShiftOf(int level) => EptEntry.PageBits + EptEntry.TableOrder * (level - 1);

        // The slot that indexes `gfn` in the table at `level` held by frame `table`. Unchecked:
        // callers follow only tables they own or frame numbers checked against host memory, and
        // checked on entry that host memory is not disposed.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ref ulong TableSlot(ulong table, ulong gfn, int level)
            => ref _memory.DangerousSlot((table << EptEntry.PageBits)
                                         + (((gfn >> (EptEntry.TableOrder * (level - 1))) & (EptEntry.EntriesPerTable - 1)) << 3));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool IsValid(ulong pte)
            => (pte & ~EptEntry.SuppressVeBit) != 0 && ((pte & EptEntry.TypeMask) >> EptEntry.TypeShift) != (ulong)P2mType.Invalid;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static P2mType TypeOf(ulong pte) => (P2mType)((pte & EptEntry.TypeMask) >> EptEntry.TypeShift);

        private ulong MiddleEntry(ulong tableMfn)
            => EptEntry.SuppressVeBit | ((ulong)_defaultAccess << EptEntry.AccessShift)
               | (_accessDirty ? EptEntry.AccessedBit : 0) | (tableMfn << EptEntry.PageBits) | EptEntry.RwxMask;
    }
}

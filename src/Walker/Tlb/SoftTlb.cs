// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// A software TLB: a per-vCPU (or per-view) cache of successful <see cref="P2m.Translate"/>
    /// results over one <see cref="P2m"/>, holding guest page → host page, the effective r/w/x
    /// (ANDed over the walk) and the page size. A hit costs a handful of instructions and returns
    /// exactly what <see cref="P2m.Translate"/> would return; a miss walks the live tables.
    /// </summary>
    /// <remarks>
    /// <para><b>Layout.</b> A direct-mapped array of <see cref="Capacity"/> 4 KiB translations,
    /// indexed by the low bits of the GFN, plus two small direct-mapped arrays of 2 MiB and
    /// 1 GiB translations probed after a 4 KiB miss, so one walk of a superpage serves every
    /// 4 KiB page inside it (a superpage hit also fills the 4 KiB slot with the sliced
    /// translation). Only <see cref="EptStatus.Ok"/> results are cached: violations and
    /// misconfigurations are walked every time. A cached entry that lacks a right the access
    /// needs is a miss (the walk decides). With <see cref="P2mOptions.AccessDirty"/> an entry
    /// filled by a walk without write access never grants write, so a write always walks once
    /// and sets the dirty flag, as a hardware TLB does.</para>
    /// <para><b>Coherence (INVEPT semantics).</b> Every <see cref="P2m.SetEntry"/> that replaces
    /// a present entry (removal, remap, restriction, type change, split, merge) bumps the p2m's
    /// generation before it returns, as does <see cref="P2m.InvalidateTlbs"/> (single-context
    /// invalidation) and <see cref="P2m.Dispose"/>; <see cref="InvalidateAll"/> (all-context
    /// invalidation) bumps the generation of every live p2m. After the bump the writer marks
    /// every TLB attached to the p2m stale (a shootdown: one bit the hit path tests with the tag);
    /// the next lookup of a stale TLB misses, compares the generation with the one the TLB last
    /// saw and empties itself first when it changed, so a lookup that starts after an
    /// invalidating write returned never sees a stale translation. A miss clears the stale bit
    /// and reads the generation before it walks, so a fill that raced a writer is dropped
    /// by the next lookup. Emptying is O(1): entries are tagged with a per-TLB epoch and the
    /// arrays are cleared only when the 12-bit epoch wraps. Changes made to the tables behind the
    /// p2m's back (raw <see cref="HostMemory.WriteUInt64"/>) need an explicit
    /// <see cref="P2m.InvalidateTlbs"/>, as on hardware.</para>
    /// <para><b>Dynamic sizing.</b> With distinct minimum and maximum capacities the 4 KiB array
    /// is resized when it is emptied, like QEMU's TLB: doubled when more than 70 % of its slots
    /// were filled since the last flush, halved when fewer than 30 % were.</para>
    /// <para><b>Threads.</b> One <see cref="SoftTlb"/> belongs to one thread at a time (one per
    /// vCPU); it takes no lock and is not safe for concurrent use. Any number of TLBs over one
    /// p2m run concurrently with that p2m's writers.</para>
    /// </remarks>
    public sealed unsafe partial class SoftTlb : ITlbShootdown
    {
        /// <summary>The default number of 4 KiB entries.</summary>
        public const int DefaultCapacity = 256;

        /// <summary>The largest number of 4 KiB entries a TLB may have (2^24).</summary>
        public const int MaxCapacityLimit = 1 << 24;

        /// <summary>Entries of the 2 MiB array.</summary>
        internal const int Entries2M = 64;

        /// <summary>Entries of the 1 GiB array.</summary>
        internal const int Entries1G = 16;

        // Tag: the page-aligned GPA | NoRead (bit 11, 4K array only) | the epoch (bits 10:0,
        // 1..EpochMax; 0 marks an empty slot). Data: the page-aligned HPA | r/w/x (bits 2:0,
        // bits 7:3 zero) | leaf level << 8. NoRead marks a translation without read (execute-
        // only): the hit path never matches it, so it tests no right for a read; Miss serves it.
        private const ulong EpochMask = 0x7FF;
        private const ulong EpochMax = EpochMask;
        private const ulong NoReadTag = 0x800;
        private const ulong StaleBit = 1UL << 63;           // in _hitKey: no tag has it (GPAs are below 2^57)
        private const int LevelShift = 8;
        private const ulong Mask2M = (1UL << 21) - 1;
        private const ulong Mask1G = (1UL << 30) - 1;

        private readonly P2m _p2m;
        private readonly P2m.HotState _hot;     // the p2m's generation holder: one load less per lookup
        private readonly bool _accessDirty;
        private readonly ulong _gpaLimit;
        private readonly int _minCapacity;
        private readonly int _maxCapacity;
        private readonly Entry[] _entries2M = new Entry[Entries2M];
        private readonly Entry[] _entries1G = new Entry[Entries1G];
        private Entry[] _entries = null!; // pinned (see AllocateEntries); _base points at element 0
        private Entry* _base;
        private ulong _byteMask;        // (capacity - 1) << 4: a GPA's slot offset in bytes
        private ulong _epoch = 1;
        private long _generation;       // p2m generation + global generation when last emptied
        private int _used;              // 4 KiB slots filled since the last flush
        private readonly FastEptMetrics.TlbCounters _counts;  // lifetime hits/misses, summed by the FastEpt meter
        private long _hitsBase;         // _counts at the last ResetCounters (or at construction)
        private long _missesBase;
        private long _flushes;
        private long _resizes;
        private ulong _hitKey = 1;      // _epoch | StaleBit while a p2m writer's invalidation (ITlbShootdown) is not yet looked at

        /// <summary>Creates a TLB of fixed size over <paramref name="p2m"/>.</summary>
        /// <param name="p2m">The p2m whose translations are cached.</param>
        /// <param name="capacity">Number of 4 KiB entries: a power of two in [1, <see cref="MaxCapacityLimit"/>].</param>
        /// <exception cref="ArgumentNullException"><paramref name="p2m"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is not a power of two in range.</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="p2m"/> was disposed.</exception>
        public SoftTlb(P2m p2m, int capacity = DefaultCapacity)
            : this(p2m, CheckPowerOfTwo(capacity, nameof(capacity), 1, MaxCapacityLimit), capacity, capacity)
        {
        }

        /// <summary>
        /// Creates a TLB over <paramref name="p2m"/> whose 4 KiB array starts at
        /// <paramref name="capacity"/> entries and is resized at flush time within
        /// [<paramref name="minCapacity"/>, <paramref name="maxCapacity"/>].
        /// </summary>
        /// <param name="p2m">The p2m whose translations are cached.</param>
        /// <param name="capacity">Initial number of 4 KiB entries: a power of two in [1, <see cref="MaxCapacityLimit"/>].</param>
        /// <param name="minCapacity">Smallest size: a power of two in [1, <paramref name="capacity"/>].</param>
        /// <param name="maxCapacity">Largest size: a power of two in [<paramref name="capacity"/>, <see cref="MaxCapacityLimit"/>].</param>
        /// <exception cref="ArgumentNullException"><paramref name="p2m"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">A size is not a power of two, or they are out of order or range.</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="p2m"/> was disposed.</exception>
        public SoftTlb(P2m p2m, int capacity, int minCapacity, int maxCapacity)
        {
            ArgumentNullException.ThrowIfNull(p2m);
            CheckPowerOfTwo(capacity, nameof(capacity), 1, MaxCapacityLimit);
            CheckPowerOfTwo(minCapacity, nameof(minCapacity), 1, capacity);
            CheckPowerOfTwo(maxCapacity, nameof(maxCapacity), capacity, MaxCapacityLimit);
            if (p2m.IsDisposed)
            {
                ThrowHelper.ThrowObjectDisposedException(p2m);
            }

            _p2m = p2m;
            _hot = p2m.TlbHotState;
            p2m.AttachTlb(this); // before the first generation read: from now on every write that must invalidate tells this TLB
            _accessDirty = p2m.AccessDirtyEnabled;
            _gpaLimit = p2m.GpaLimit;
            _minCapacity = minCapacity;
            _maxCapacity = maxCapacity;
            AllocateEntries(capacity);
            _generation = CurrentGeneration();
            _counts = FastEptMetrics.RegisterTlb(this);
            _hitsBase = _counts.Hits;
            _missesBase = _counts.Misses;
        }

        /// <summary>The p2m whose translations this TLB caches.</summary>
        public P2m P2m => _p2m;

        /// <summary>The current number of 4 KiB entries (a power of two).</summary>
        public int Capacity => _entries.Length;

        /// <summary>The smallest <see cref="Capacity"/> dynamic sizing may choose (= the capacity for a fixed-size TLB).</summary>
        public int MinCapacity => _minCapacity;

        /// <summary>The largest <see cref="Capacity"/> dynamic sizing may choose (= the capacity for a fixed-size TLB).</summary>
        public int MaxCapacity => _maxCapacity;

        /// <summary>Lookups answered from the cache (4 KiB or superpage entries) since the last <see cref="ResetCounters"/>.</summary>
        public long Hits => _counts.Hits - _hitsBase;

        /// <summary>Lookups that walked the p2m since the last <see cref="ResetCounters"/>.</summary>
        public long Misses => _counts.Misses - _missesBase;

        /// <summary>Times the TLB was emptied (by <see cref="Flush"/> or an invalidation) since the last <see cref="ResetCounters"/>.</summary>
        public long Flushes => _flushes;

        /// <summary>Times dynamic sizing changed <see cref="Capacity"/> since the last <see cref="ResetCounters"/>.</summary>
        public long Resizes => _resizes;

        /// <summary>
        /// Translates <paramref name="gpa"/> for <paramref name="access"/>, from the cache when it
        /// holds the page with enough rights, else by walking the p2m (and caching an
        /// <see cref="EptStatus.Ok"/> result). Returns exactly what <see cref="P2m.Translate"/> returns.
        /// </summary>
        /// <param name="gpa">Guest-physical address, below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one).</param>
        /// <returns>The translation; violations and misconfigurations are statuses, never exceptions.</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gpa"/> or <paramref name="access"/> is out of range (also when the page is cached).</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <remarks>Allocation-free and lock-free; not safe for concurrent use of one TLB.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public EptTranslation Translate(ulong gpa, AccessKind access)
        {
            unchecked
            {
                ref Entry e = ref Slot(gpa);
                ulong data = e.Data;
                uint a = (uint)access;
                // One test: same page and epoch, and no invalidation announced since the last
                // look at the generation (the key's stale bit, which no tag has; a GPA out of
                // range was never cached), the cached rights cover the access (access > 7 has a
                // bit in 7:3, where data is zero; every entry has read, so a read needs no test),
                // and access is not 0.
                ulong miss = (((gpa & ~EptEntry.PageMask) | Volatile.Read(ref _hitKey)) ^ e.Tag)
                             | (a & ~(uint)data & ~(uint)AccessKind.Read)
                             | ((a - 1) >> 31);
                if (miss == 0)
                {
                    _counts.Hits++;
                    return new EptTranslation(EptStatus.Ok, gpa + (data & ~EptEntry.PageMask), (int)((data >> LevelShift) & 7), 0);
                }

                return Miss(gpa, access);
            }
        }
        /// <summary>Sets <see cref="Hits"/>, <see cref="Misses"/>, <see cref="Flushes"/> and <see cref="Resizes"/> to zero.</summary>
        public void ResetCounters()
        {
            _hitsBase = _counts.Hits;
            _missesBase = _counts.Misses;
            _flushes = 0;
            _resizes = 0;
        }

        /// <inheritdoc/>
        void ITlbShootdown.Shootdown() => Interlocked.Or(ref _hitKey, StaleBit);

        /// <inheritdoc/>
        public override string ToString()
            => $"SoftTlb capacity={Capacity} hits={Hits} misses={Misses} flushes={_flushes}";

        [MethodImpl(MethodImplOptions.NoInlining)]
        private EptTranslation Miss(ulong gpa, AccessKind access)
        {
            // Clear the stale bit, then read the generation, before walking: a writer that
            // publishes after this read bumps it and sets the bit again, and the next lookup
            // drops whatever this walk fills.
            if ((Volatile.Read(ref _hitKey) & StaleBit) != 0)
            {
                Interlocked.And(ref _hitKey, ~StaleBit);
            }

            long generation = CurrentGeneration();
            if (generation != _generation)
            {
                FlushCore(generation);
            }

            uint a = (uint)access;
            if (gpa < _gpaLimit && unchecked(a - 1) < 7)
            {
                // An execute-only 4K entry (NoRead), which the hit path never matches.
                ref Entry e = ref Slot(gpa);
                if (e.Tag == ((gpa & ~EptEntry.PageMask) | NoReadTag | _epoch) && (a & ~unchecked((uint)e.Data)) == 0)
                {
                    _counts.Hits++;
                    return new EptTranslation(EptStatus.Ok, unchecked(gpa + (e.Data & ~EptEntry.PageMask)), (int)((e.Data >> LevelShift) & 7), 0);
                }

                // A superpage entry covers this page: serve it and fill the 4 KiB slot.
                ref Entry e2 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries2M), (nint)((gpa >> 21) & (Entries2M - 1)));
                if (e2.Tag == ((gpa & ~Mask2M) | _epoch) && (a & ~unchecked((uint)e2.Data)) == 0)
                {
                    return SuperpageHit(gpa, e2.Data, Mask2M);
                }

                ref Entry e1 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_entries1G), (nint)((gpa >> 30) & (Entries1G - 1)));
                if (e1.Tag == ((gpa & ~Mask1G) | _epoch) && (a & ~unchecked((uint)e1.Data)) == 0)
                {
                    return SuperpageHit(gpa, e1.Data, Mask1G);
                }
            }

            EptTranslation t = _p2m.Translate(gpa, access);   // validates the arguments, throws as it does
            _counts.Misses++;

            if (t.Status == EptStatus.Ok)
            {
                Fill(gpa, t, a);
            }

            return t;
        }

        // The 4K slot of `gpa`: the index pre-shifted by the entry size (16 bytes), from the
        // pinned array's base.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ref Entry Slot(ulong gpa) => ref *(Entry*)((byte*)_base + ((gpa >> (EptEntry.PageBits - 4)) & _byteMask));

        // Allocates the 4K array on the pinned object heap: it never moves, so hits address it
        // through a raw pointer (no null or bounds check).
        private void AllocateEntries(int capacity)
        {
            _entries = GC.AllocateArray<Entry>(capacity, pinned: true);
            _base = (Entry*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_entries));
            _byteMask = (ulong)(capacity - 1) << 4;
        }

        private static int CheckPowerOfTwo(int value, string name, int min, int max)
        {
            if (value < min || value > max || (value & (value - 1)) != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(name, value, $"Must be a power of two in [{min}, {max}].");
            }

            return value;
        }

        // One cached translation: 16 bytes, four to a cache line.
        private struct Entry
        {
            public ulong Tag;
            public ulong Data;
        }
    }
}

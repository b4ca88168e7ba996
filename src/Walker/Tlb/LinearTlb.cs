// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// A vCPU's combined TLB: guest linear page → host page, what a CPU caches for one
    /// VPID + EPTP + PCID (Intel SDM Vol. 3A 4.10 and Vol. 3C 29.4 "combined mappings"). A hit
    /// answers the host-physical address in a few instructions; a miss walks both dimensions
    /// (<see cref="Vcpu.TranslateLinear"/>) and caches the result when it is guest RAM.
    /// </summary>
    /// <remarks>
    /// <para><b>What an entry holds.</b> One 4 KiB linear page of the current PCID and altp2m view
    /// (the EPTP): its host page, guest-physical page, p2m type, whether the stage-1 leaf was
    /// global (G set while CR4.PGE), and the <i>access classes</i> a real walk verified: each of
    /// read, write and fetch, user or supervisor, with or without RFLAGS.AC, is a class. A hit
    /// needs the class of the access among them, so rights are never wider than some walk that
    /// succeeded; a write hit needs a write walk, which set the guest's dirty flag (and EPT's).
    /// A large stage-1 page is cached as 4 KiB fragments. Only guest RAM (RamRw, RamLogDirty,
    /// RamRo, RamShared) in host memory is cached; MMIO and every failure walk each time.</para>
    /// <para><b>Invalidation</b> follows SDM 4.10.4: <see cref="Invlpg"/>, <see cref="Invpcid"/>
    /// types 0-3, <see cref="Invvpid"/>, MOV to CR3 (non-global entries of the new PCID, nothing
    /// with the no-flush bit) and changes of paging control bits (everything) through the
    /// vCPU's register model, and INVEPT: every p2m change that removes or restricts a mapping
    /// bumps the view's TLB generation and marks this TLB stale (as for <see cref="SoftTlb"/>);
    /// the next lookup then compares the generation. Entries are tagged with the view, so a view switch keeps each view's entries
    /// for as long as its generation does not change. Emptying is O(1) (epochs); the TLB may
    /// drop more than asked, never less.</para>
    /// <para><b>Threads.</b> One TLB belongs to its vCPU's thread: lookups and flushes are not
    /// safe for concurrent use (a remote shootdown runs on the target vCPU's thread, as an IPI
    /// does). p2m writers and view switches on other threads are safe: they mark the TLB stale (the
    /// INVEPT's shootdown), and its next lookup synchronises.</para>
    /// </remarks>
    public sealed unsafe partial class LinearTlb : ITlbShootdown
    {
        /// <summary>The number of 4 KiB entries of a vCPU's TLB.</summary>
        public const int DefaultCapacity = 512;

        // Ctx word: the stamp, which names the epoch (every entry), the view and that view's own
        // epoch (moved on when its p2m generation moved), the PCID and that PCID's own epoch
        // (non-global entries). Bits 15:0 PCID epoch, 27:16 PCID, 43:28 view epoch, 53:44 view,
        // 63:54 epoch. View epochs are unique across views (each value is given to one view once
        // per epoch), so the hit path compares the live view with the entry's view bits alone.
        private const int PcidEpochBits = 16, PcidShift = 16, PcidBits = 12, ViewEpochShift = 28, ViewEpochBits = 16;
        private const int ViewShift = 44, ViewBits = 10, EpochShift = 54, EpochBits = 10;
        private const ulong ViewMask = ((1UL << ViewBits) - 1) << ViewShift;
        private const ulong SlotMask = (DefaultCapacity - 1) << 5;        // a linear page's slot offset in bytes
        private const ulong Empty = EptEntry.PageMask;                       // the tag of an empty slot: page 0, no class
        private const ulong PcidEpochMax = (1UL << PcidEpochBits) - 1;
        private const ulong ViewEpochMax = (1UL << ViewEpochBits) - 1;
        private const ulong EpochMax = (1UL << EpochBits) - 1;
        private const ulong GlobalStampMask = ~((1UL << ViewEpochShift) - 1);   // all but the PCID and its epoch

        // Tag: the page-aligned linear address | the access classes NOT verified (bits 11:0, one
        // bit each; all of them in an empty slot, so it never hits). Inverted, the test of one
        // class is one AND with a constant: (page difference | missing classes) & (~0xFFF | bit). Info: the guest-physical page | type (bits 4:0) |
        // EPT leaf level (6:5) | guest leaf level (8:7) | Global (9) | page size (11:10).
        private const int EptLevelShift = 5, GuestLevelShift = 7, SizeShift = 10;
        private const ulong TypeMask = 0x1F, GlobalBit = 1UL << 9;

        // The #PF error-code bits that describe an access the TLB caches (P is ignored).
        private const uint KnownPfec = (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch);

        private readonly Vcpu _vcpu;
        private readonly Entry[] _entries;      // pinned; _base points at its first 64-byte boundary
        private readonly Entry* _base;
        private readonly ushort[] _pcidEpochs = new ushort[1 << PcidBits];
        private readonly ushort[] _viewEpochs = new ushort[Altp2m.MaxAltViews + 1];
        private readonly P2m?[] _viewP2m = new P2m?[Altp2m.MaxAltViews + 1];   // null: no entry of that view since the last full flush
        private readonly long[] _viewGeneration = new long[Altp2m.MaxAltViews + 1];
        private ulong _stamp;                   // the current context's stamp
        private int _nextViewEpoch = Altp2m.MaxAltViews + 1;
        private ulong _epoch = 1;
        private int _view;
        private ushort _pcid;
        private uint _acBit;                    // RFLAGS.AC as the low bit of an access class (kept by Vcpu.Ac's setter)
        private P2m _p2m;                       // the current view's p2m
        private P2m.HotState _hot;              // its generation holder (one load less per lookup)
        private long _generation;               // its TLB generation when this TLB last synchronised
        private ulong _largeAddr;               // QEMU's large-page region: every cached large page lies inside
        private ulong _largeMask;
        private bool _hasLarge;                 // a large page was cached since the last full flush
        private long _misses;
        private int _stale = 1;                 // set by p2m writers and view switches (ITlbShootdown); 1 until the first synchronisation
        private long _flushes;

        internal LinearTlb(Vcpu vcpu)
        {
            _vcpu = vcpu;
            ResetViewEpochs();
            // Pinned, with room to start at a 64-byte boundary: a 32-byte entry never straddles lines.
            _entries = GC.AllocateArray<Entry>(DefaultCapacity + 2, pinned: true);
            ulong start = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_entries));
            _base = (Entry*)((start + 63) & ~63UL);
            Slots.Fill(new Entry { Tag = Empty });
            _view = vcpu.View;
            _p2m = vcpu.Domain.Altp2m.ViewLocked(_view);
            _hot = _p2m.TlbHotState;
            _p2m.AttachTlb(this); // before the first generation read, as SoftTlb does
            _generation = _p2m.TlbGeneration;
            _viewP2m[_view] = _p2m;
            _viewGeneration[_view] = _generation;
            _pcid = vcpu.Pcid;
            _acBit = vcpu.Ac ? 1u : 0u;
            UpdateStamp();
        }

        /// <summary>The vCPU whose translations this TLB caches.</summary>
        public Vcpu Vcpu => _vcpu;

        /// <summary>The number of 4 KiB entries (direct-mapped by linear page).</summary>
        public int Capacity => DefaultCapacity;

        /// <summary>Lookups that walked (the TLB did not hold the page for that access) since the last <see cref="ResetCounters"/>. Hits are not counted: a counter would cost every hit a store.</summary>
        public long Misses => _misses;

        /// <summary>Times the whole TLB was emptied since the last <see cref="ResetCounters"/>.</summary>
        public long Flushes => _flushes;

        /// <summary>Sets <see cref="Misses"/> and <see cref="Flushes"/> to zero.</summary>
        public void ResetCounters()
        {
            _misses = 0;
            _flushes = 0;
        }

        /// <summary>
        /// The hit path alone: true, with the host-physical address, when the TLB holds
        /// <paramref name="gla"/>'s page for this access in the current PCID and view and no
        /// invalidation happened since; false otherwise (nothing is walked: call
        /// <see cref="Translate"/>).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="pfec">The access, as for <see cref="Vcpu.TranslateLinear"/> (unknown bits never hit).</param>
        /// <param name="hpa">The host-physical address on a hit.</param>
        /// <remarks>Allocation-free, lock-free, no call: one slot load and one compare.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TryLookup(ulong gla, PageFaultErrorCode pfec, out ulong hpa)
        {
            ref Entry e = ref Slot(gla);
            hpa = unchecked(gla + e.Data);
            return Miss(ref e, gla, pfec) == 0;
        }

        /// <summary>
        /// Translates <paramref name="gla"/> as <see cref="Vcpu.TranslateLinear"/> does, from the
        /// TLB when it holds the page for this access, else by walking (and caching a guest-RAM
        /// result). A hit returns what the walk that filled the entry returned for this address;
        /// it may be stale exactly where a CPU's TLB may be: the guest changed its paging entry
        /// and has not invalidated it yet.
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="pfec">The access, as for <see cref="Vcpu.TranslateLinear"/> (an implicit supervisor access is never cached).</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="pfec"/> is not a valid access description.</exception>
        public GuestTranslation Translate(ulong gla, PageFaultErrorCode pfec)
        {
            ref Entry e = ref Slot(gla);
            if (Miss(ref e, gla, pfec) == 0)
            {
                return TranslationOf(ref e, gla);
            }

            return Walk(gla, pfec);
        }

        /// <inheritdoc/>
        public override string ToString() => $"LinearTlb capacity={DefaultCapacity} view={_view} pcid={_pcid} misses={_misses} flushes={_flushes}";

        // Non-zero unless the slot holds this page, in this context, verified for this access,
        // and nothing announced a view switch or a p2m change since the last synchronisation.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ulong Miss(ref Entry e, ulong gla, PageFaultErrorCode pfec)
        {
            uint p = (uint)pfec;
            ulong x = (gla & ~EptEntry.PageMask) ^ e.Tag;     // bits 63:12 the page's difference, 11:0 the classes missing
            return (x & (~EptEntry.PageMask | ClassBit(p, _acBit)))
                   | WriteAndFetch(p)
                   | (e.Ctx ^ _stamp)                          // filled in this context (view, PCID, their epochs)
                   | (p & ~KnownPfec)
                   | (uint)Volatile.Read(ref _stale);
        }

        // A view switch (Altp2m.Switch, from any thread) or an invalidating write to a p2m this
        // TLB has entries of: the next lookup misses and synchronises.
        void ITlbShootdown.Shootdown() => MarkStale();

        internal void MarkStale() => Volatile.Write(ref _stale, 1);

        // The access class of `pfec` as one bit of 12: (none, W or I) x U x AC. W together with I
        // gives a bit above 11: WriteAndFetch makes that a miss (the walk decides).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong ClassBit(uint pfec, uint acBit)
            => 1UL << (int)(((pfec & 2) << 1) | ((pfec & 16) >> 1) | ((pfec & 4) >> 1) | acBit);

        // RFLAGS.AC changed (STAC/CLAC, POPF): no entry is dropped, it only selects other classes.
        internal void AcChanged(bool ac) => _acBit = ac ? 1u : 0u;

        // Non-zero for W and I/D together, which no class stands for.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong WriteAndFetch(uint pfec) => (pfec >> 1) & (pfec >> 4) & 1;

        private GuestTranslation TranslationOf(ref Entry e, ulong gla) => TranslationOf(gla, unchecked(gla + e.Data), e.Info);

        // The 32-byte slot of a linear page.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ref Entry Slot(ulong gla) => ref *(Entry*)((byte*)_base + ((gla >> (EptEntry.PageBits - 5)) & SlotMask));

        // Every slot, for the scans of the flushes that keep global entries.
        private Span<Entry> Slots => new(_base, DefaultCapacity);

        // One cached translation: 32 bytes, two to a cache line.
        [StructLayout(LayoutKind.Sequential, Size = 32)]
        private struct Entry
        {
            public ulong Tag;   // linear page | access classes not verified; Empty = empty
            public ulong Ctx;   // the stamp of the context it was filled (or adopted) in
            public ulong Data;  // host page - linear page (unchecked), so a hit adds it to the address
            public ulong Info;  // guest-physical page | type | levels | global | page size
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics.CodeAnalysis;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// Reference counts and types of guest stage-1 page-table frames held in
    /// <see cref="HostMemory"/>, validated the way Xen validates a PV guest's page tables
    /// (docs/model/page-types.md and docs/model/README.md §0.8): taking a frame as an L2..L4 table validates
    /// each present entry's child as the next level down, recursively, and the work can be
    /// preempted and resumed at any entry while the XSA-299 invariants hold.
    /// </summary>
    /// <remarks>
    /// <para><b>Entries.</b> A table is one frame of 512 little-endian 64-bit x86 entries: present
    /// bit 0, R/W bit 1, PS bit 7, frame address bits 51:12. A present L2..L4 entry names a child
    /// table; an L1 entry names a data frame and takes a general reference on it, plus a
    /// <see cref="PageType.Writable"/> type reference when R/W is set. An entry is invalid (the
    /// operation fails) when PS is set at L2..L4 (large pages are refused, as Xen refuses them to
    /// PV guests), when its frame is outside host memory or not allocated, or when its child
    /// cannot take the type (it is typed otherwise, or fails its own validation). Other bits are
    /// not examined. The entries of a frame that holds a page-table type (or is partial) must not
    /// change: Xen enforces this with write protection, FastEpt leaves it to the embedder, which
    /// can rely on the exclusion below. A table whose entries changed behind the table's back
    /// releases references it never took; where that shows, an
    /// <see cref="InvariantViolationException"/> reports it.</para>
    /// <para><b>Exclusion.</b> A frame with page-table type references cannot be taken as
    /// <see cref="PageType.Writable"/> (and the reverse) until its last type reference is put and
    /// it is demoted; an L1 entry with R/W set to a page-table frame is invalid. An embedder that
    /// takes a writable reference for each writable mapping it caches (a software TLB) therefore
    /// knows that no cached writable mapping reaches a page table.</para>
    /// <para><b>State.</b> Each frame has one 64-bit type word (Xen's <c>type_info</c>: type, type
    /// count, validated, partial, and <c>nr_validated_ptes</c>/<c>partial_flags</c> packed beside
    /// them), changed only by compare-exchange, and a general count of its own. The general
    /// count counts only this table's references, so it can be checked exactly against the
    /// entries; while it is non-zero the table also holds one <see cref="HostMemory"/> reference
    /// (<see cref="HostMemory.TryAddReference"/>), so a frame the table references is never
    /// reused by the allocator, even after <see cref="HostMemory.FreeFrame"/> (the XSA-299
    /// appendix scenario). New references are refused on a frame that is not allocated.</para>
    /// <para><b>Concurrency.</b> Lock-free, as Xen's: the compare-exchange that gives a page-table
    /// frame its first type reference (or takes its last one, or takes over its partial state)
    /// makes the calling operation the frame's owner until it settles the frame again;
    /// meanwhile another operation that needs the frame waits (spinning), or stops with nothing
    /// done at a preemption point. An operation owns frames only while it runs: however it stops
    /// (done, preempted, a child stopped, failed), one settling step records how far the entries
    /// hold references and derives the frame's state from that alone (all 512: validated; none:
    /// untyped; otherwise partial). Waits only go down the levels, so they cannot form a cycle.
    /// No lock is taken, so no lock rank applies. All members are thread-safe.</para>
    /// <para><b>Caller protocol.</b> <see cref="GetPageType"/> returning
    /// <see cref="Progress.Done"/> gives the caller one general and one type reference, which one
    /// <see cref="PutPageType"/> gives back. After <see cref="Progress.Restart"/> or
    /// <see cref="Progress.Failed"/> from <see cref="GetPageType"/> the caller holds nothing; the
    /// frame may be left partial, holding its progress, and the next
    /// <see cref="GetPageType"/> on it (from anyone, as a top-level call or through a parent
    /// entry) continues the validation, while a <see cref="PutPageType"/> on it abandons the
    /// partial validation and demotes what was validated (how a failed promotion is cleaned
    /// up: every entry's references are released exactly once). After
    /// <see cref="Progress.Restart"/> from <see cref="PutPageType"/> the caller's put is
    /// pending (<see cref="PageTypeState.PendingPuts"/>), and it calls
    /// <see cref="PutPageType"/> again until <see cref="Progress.Done"/>.</para>
    /// </remarks>
    public sealed partial class PageTypeTable
    {
        internal const int EntriesPerTable = 512;

        // Guest stage-1 entry bits (x86 4-level paging).
        private const ulong PresentBit = 1UL << 0;
        private const ulong WritableBit = 1UL << 1;
        private const ulong LargePageBit = 1UL << 7;               // PS: refused at L2..L4
        private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;   // bits 51:12

        // The type word (Xen's type_info). Count 0 <=> word 0.
        private const long CountMask = 0xFFFF_FFFF;                 // bits 31:0: type count (at most int.MaxValue)
        private const long ValidatedBit = 1L << 32;                 // PGT_validated
        private const long PartialBit = 1L << 33;                   // PGT_partial
        private const long PartialSetBit = 1L << 34;                // partial_flags = PTF_partial_set (with PartialBit)
        private const int TypeShift = 35;
        private const long TypeMask = 7L << TypeShift;              // bits 37:35: PageType
        private const int NrShift = 38;
        private const long NrMask = 0x3FFL << NrShift;              // bits 47:38: nr_validated_ptes, 0..512

        private const int ChunkBits = 12;                           // 4096 frames (64 KiB of slots) per chunk
        private const int ChunkMask = (1 << ChunkBits) - 1;

        private readonly HostMemory _memory;
        private readonly Slot[]?[] _chunks;
        private string? _broken;                                    // set once an invariant failed

        /// <summary>Creates an empty table (every frame untyped, no reference) over <paramref name="memory"/>.</summary>
        /// <param name="memory">The host memory whose frames hold the guest page tables; not owned.</param>
        /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
        public PageTypeTable(HostMemory memory)
        {
            ArgumentNullException.ThrowIfNull(memory);
            _memory = memory;
            _chunks = new Slot[]?[(memory.FrameCount + ChunkMask) >> ChunkBits];
        }

        /// <summary>The host memory whose frames this table tracks.</summary>
        public HostMemory Memory => _memory;

        /// <summary>
        /// Tests only: called with (frame, entry index) before a promotion or demotion visits an
        /// entry, on the thread doing it, so a test can run another operation at that instant.
        /// </summary>
        internal Action<ulong, int>? EntryHook { get; set; }

        /// <summary>Reads one frame's bookkeeping. Thread-safe, lock-free; see <see cref="PageTypeState"/> for what is consistent.</summary>
        /// <param name="mfn">A frame of <see cref="Memory"/>.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        public PageTypeState GetState(ulong mfn)
        {
            CheckMfn(mfn);
            Slot[]? chunk = Volatile.Read(ref _chunks[(int)(mfn >> ChunkBits)]);
            if (chunk is null)
            {
                return default;
            }

            ref Slot slot = ref chunk[(int)(mfn & ChunkMask)];
            long word = Volatile.Read(ref slot.Word);
            return new PageTypeState(Volatile.Read(ref slot.General), TypeOf(word), Count(word),
                                     (word & ValidatedBit) != 0, (word & PartialBit) != 0, Nr(word),
                                     (word & PartialSetBit) != 0, Volatile.Read(ref slot.PendingPuts));
        }

        /// <summary>
        /// Takes a general and a type reference on <paramref name="mfn"/> as <paramref name="type"/>
        /// (Xen's <c>get_page_and_type</c>), validating a page table recursively when it has no
        /// type reference yet, or continuing its partial validation. Thread-safe.
        /// </summary>
        /// <param name="mfn">A frame of <see cref="Memory"/>.</param>
        /// <param name="type">Any type but <see cref="PageType.None"/>.</param>
        /// <param name="preemption">The budget. Its points come before each entry of an L2 or L3 table
        /// except the entry a call starts that table at (so every call makes progress), and while waiting
        /// for a frame another operation owns. As in Xen, an L4 has no points of its own (its L3s have)
        /// and L1 validation has none.</param>
        /// <returns>
        /// <see cref="Progress.Done"/>: the caller holds one reference (general and type) to give back with
        /// <see cref="PutPageType"/>. <see cref="Progress.Restart"/>: preempted; the caller holds nothing, and
        /// the progress (if any) is recorded in partial frames; call again to continue. <see cref="Progress.Failed"/>:
        /// the frame is not allocated, is typed otherwise, or an entry below it is invalid; the caller holds
        /// nothing, and the frame is either untyped or left partial (<see cref="PageTypeState.Partial"/>) until
        /// a <see cref="PutPageType"/> demotes what was validated.
        /// </returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory, or <paramref name="type"/> is not a type.</exception>
        /// <exception cref="InvariantViolationException">The table's invariants failed (now or earlier).</exception>
        public Progress GetPageType(ulong mfn, PageType type, ref Preemption preemption)
        {
            CheckMfn(mfn);
            if (type is <= PageType.None or > PageType.Writable)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(type), type, "The type must be L1..L4 or Writable.");
            }

            ThrowIfBroken();
            if (!TryGetGeneral(mfn))
            {
                return Progress.Failed;
            }

            Outcome outcome = GetType(mfn, type, preemptible: true, ref preemption);
            if (outcome == Outcome.Ok)
            {
                return Progress.Done;
            }

            // Like Xen's pin, the caller keeps nothing when it stops: a partial frame holds its own
            // general reference, and a new call takes a fresh one and continues from there.
            PutGeneral(mfn);
            return outcome is Outcome.Interrupted or Outcome.Restart ? Progress.Restart : Progress.Failed;
        }

        /// <summary>
        /// Gives back one reference taken by <see cref="GetPageType"/> (Xen's
        /// <c>put_page_and_type</c>), demoting a page table recursively when it was the last type
        /// reference; or continues a put that returned <see cref="Progress.Restart"/>; or, on a
        /// partial frame nobody holds, abandons its partial validation and demotes what it had
        /// validated. Thread-safe.
        /// </summary>
        /// <param name="mfn">A frame of <see cref="Memory"/>.</param>
        /// <param name="preemption">The budget; checked after each entry of an L2..L4 demotion but the last.</param>
        /// <returns>
        /// <see cref="Progress.Done"/>: the reference (or the pending put) is released.
        /// <see cref="Progress.Restart"/>: preempted; the demotion's progress is recorded in partial frames and
        /// the put is pending (<see cref="PageTypeState.PendingPuts"/>): call again to continue it.
        /// Never <see cref="Progress.Failed"/>.
        /// </returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        /// <exception cref="InvalidOperationException">The frame has no type reference to put and no pending or
        /// partial operation (a double put, or a put without a reference); nothing changed.</exception>
        /// <exception cref="InvariantViolationException">The table's invariants failed (now or earlier).</exception>
        public Progress PutPageType(ulong mfn, ref Preemption preemption)
        {
            CheckMfn(mfn);
            ThrowIfBroken();
            ref Slot slot = ref SlotOf(mfn);

            // A continuation uses its pending put (a general reference with Xen's PTF_partial_set
            // meaning) first. Pending puts are interchangeable between callers: each is a general
            // reference whose type reference is already gone, or belongs to the partial state.
            bool claim = TryTakePendingPut(ref slot.PendingPuts);
            if (!claim && (Volatile.Read(ref slot.Word) & PartialBit) != 0)
            {
                // Abandon a partial frame nobody holds. If every reference went meanwhile, there is
                // nothing left to abandon.
                claim = TryAddGeneralIfHeld(mfn);
                if (!claim)
                {
                    return Progress.Done;
                }
            }

            Outcome outcome = PutType(mfn, partialSet: claim, topLevel: true, ref preemption);
            if (outcome == Outcome.Restart)
            {
                // The caller's general reference stays, as its pending put.
                Interlocked.Increment(ref slot.PendingPuts);
                return Progress.Restart;
            }

            PutGeneral(mfn);
            return Progress.Done;
        }

        // ---- General references (Xen's get_page / put_page) ----

        // A new reference: only on an allocated frame. The first one also takes a HostMemory
        // reference, released with the last, so the allocator never reuses a referenced frame.
        private bool TryGetGeneral(ulong mfn)
        {
            ref int general = ref SlotOf(mfn).General;
            while (true)
            {
                int count = Volatile.Read(ref general);
                if (count == 0)
                {
                    if (!_memory.TryAddReference(mfn))
                    {
                        return false;
                    }

                    if (Interlocked.CompareExchange(ref general, 1, 0) == 0)
                    {
                        return true;
                    }

                    _memory.ReleaseReference(mfn);
                }
                else if (count == int.MaxValue || !_memory.IsAllocated(mfn))
                {
                    return false;
                }
                else if (Interlocked.CompareExchange(ref general, count + 1, count) == count)
                {
                    return true;
                }
            }
        }

        // Another reference on a frame that is referenced already (Xen's get_page_light): a
        // partial frame's reference on itself, or an abandoning put's. False only at count 0.
        private bool TryAddGeneralIfHeld(ulong mfn)
        {
            ref int general = ref SlotOf(mfn).General;
            while (true)
            {
                int count = Volatile.Read(ref general);
                if (count == 0)
                {
                    return false;
                }

                if (count == int.MaxValue)
                {
                    Fail($"General count overflow on frame 0x{mfn:X}.");
                }

                if (Interlocked.CompareExchange(ref general, count + 1, count) == count)
                {
                    return true;
                }
            }
        }

        private void PutGeneral(ulong mfn)
        {
            ref int general = ref SlotOf(mfn).General;
            while (true)
            {
                int count = Volatile.Read(ref general);
                if (count == 0)
                {
                    Fail($"Frame 0x{mfn:X} lost a general reference it does not hold.");
                }

                if (Interlocked.CompareExchange(ref general, count - 1, count) == count)
                {
                    if (count == 1)
                    {
                        _memory.ReleaseReference(mfn);
                    }

                    return;
                }
            }
        }

        private static bool TryTakePendingPut(ref int pending)
        {
            while (true)
            {
                int count = Volatile.Read(ref pending);
                if (count == 0)
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref pending, count - 1, count) == count)
                {
                    return true;
                }
            }
        }

        // ---- Storage ----

        private struct Slot
        {
            public long Word;           // the type word
            public int General;         // general references held through this table
            public int PendingPuts;     // interrupted top-level puts, each holding one general reference
        }

        private ref Slot SlotOf(ulong mfn)
        {
            ref Slot[]? chunkRef = ref _chunks[(int)(mfn >> ChunkBits)];
            Slot[]? chunk = Volatile.Read(ref chunkRef);
            if (chunk is null)
            {
                Interlocked.CompareExchange(ref chunkRef, new Slot[1 << ChunkBits], null);
                chunk = Volatile.Read(ref chunkRef)!;
            }

            return ref chunk[(int)(mfn & ChunkMask)];
        }

        private ulong ReadEntry(ulong table, int index)
            => _memory.ReadUInt64((table << EptEntry.PageBits) + ((ulong)index << 3));

        private static int Count(long word) => (int)(word & CountMask);

        private static PageType TypeOf(long word) => (PageType)((word & TypeMask) >> TypeShift);

        private static int Nr(long word) => (int)((word & NrMask) >> NrShift);

        private static long Pack(PageType type, int count) => ((long)type << TypeShift) | (uint)count;

        private static bool IsTable(PageType type) => type is >= PageType.L1 and <= PageType.L4;

        private void CheckMfn(ulong mfn)
        {
            if (mfn >= (ulong)_memory.FrameCount)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_mfn(mfn, _memory.FrameCount);
            }
        }

        private void ThrowIfBroken()
        {
            if (Volatile.Read(ref _broken) is string why)
            {
                ThrowBroken(why);
            }
        }

        // Xen's BUG(): the table is unusable from here on, and says so on every later call.
        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Fail(string message)
        {
            Interlocked.CompareExchange(ref _broken, message, null);
            throw new InvariantViolationException(message);
        }

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ThrowBroken(string why)
            => throw new InvariantViolationException("The page-type table is unusable after an invariant violation: " + why);

        [DoesNotReturn]
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void ThrowInvalidOperationException_noTypeReference(ulong mfn)
            => throw new InvalidOperationException($"Frame 0x{mfn:X} has no type reference to put (a double put, or a put without a reference).");
    }
}

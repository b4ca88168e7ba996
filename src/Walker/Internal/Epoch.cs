// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt.Internal
{
    /// <summary>
    /// Epoch-based reclamation of table frames, shared by every p2m in the process: the reader
    /// side (per-thread slots) and the epoch itself. <see cref="Reclaimer"/> is the writer side.
    /// </summary>
    /// <remarks>
    /// <para>Readers (walks, lookups) never lock. Around each walk a reader publishes the global
    /// epoch it saw, and the p2m it walks (a tag), in its own cache-line-sized slot and clears the
    /// slot afterwards; nesting keeps the outer (older) epoch, and a nested section in another p2m
    /// widens the tag to <see cref="AnyTag"/>. A writer that unlinks a subtree stamps it with the
    /// global epoch E it reads after the unlink (<see cref="Stamp"/>); only a reclamation pass
    /// advances the epoch (<see cref="Advance"/>), once per pass, so one stamp covers every
    /// subtree retired between two passes (a generation). Frames stamped E may be freed once E is
    /// below the epoch the pass advanced to and every slot that could be in their p2m holds an
    /// epoch above E (or none): a reader that can still be inside read the old link, so it read
    /// the global epoch no later than the unlink and shows E or less; a reader that shows more
    /// read an epoch some pass advanced to after the stamp was read, so it sees the unlink
    /// (the unlink precedes the stamp's load, a full fence; the advance is an interlocked
    /// increment; the reader's epoch load is an acquire).</para>
    /// <para>Ordering on the reader side costs no fence: the slot is written with plain release
    /// stores, which the hardware may let pass the walk's first loads. The pass closes that
    /// window with <see cref="Interlocked.MemoryBarrierProcessWide"/> (membarrier on Linux,
    /// FlushProcessWriteBuffers on Windows) before it reads the slots, so every store a reader made
    /// before the barrier is visible and every load it makes after the barrier sees every unlink
    /// made before the pass advanced. Volatile accesses are not reordered by the JIT, so program
    /// order is what the barrier fixes. The tag is written (release) before the epoch and read
    /// (acquire) after it, so a scan that sees a section's epoch sees its tag.</para>
    /// <para>C readers (<c>fastept_read_enter</c> in native/include/fastept.h) publish into the
    /// native library's own slot array, which the library hands over once it is loaded
    /// (<see cref="RegisterNative"/>); they read the epoch from a native cell the pass keeps equal
    /// to (or, briefly, below) the global epoch, and count as <see cref="AnyTag"/>.</para>
    /// </remarks>
    internal static class Epoch
    {
        /// <summary>The tag of a section that may be in any p2m (nested across p2ms, native, untagged).</summary>
        public const int AnyTag = 0;

        /// <summary>A reader in a section that has seen this many passes advance the epoch is parked.</summary>
        public const long ParkedEpochs = 2;

        private static long s_global = 1;
        private static ReaderSlot[] s_slots = [];
        private static int s_nextTag;
        private static NativeSlots? s_native;

        // The slot itself, for the hot path (one thread-static load, no dereference of the
        // owner); t_owner only exists so the slot is given back when the thread dies.
        [ThreadStatic]
        private static ReaderSlot? t_slot;

        [ThreadStatic]
        private static SlotOwner? t_owner;

        /// <summary>The global epoch now (tests and diagnostics).</summary>
        public static long Current => Volatile.Read(ref s_global);

        /// <summary>A fresh tag for one p2m's sections (never <see cref="AnyTag"/>).</summary>
        public static int NewTag()
        {
            int tag;
            do
            {
                tag = Interlocked.Increment(ref s_nextTag);
            }
            while (tag == AnyTag);

            return tag;
        }

        /// <summary>Announces a read-side critical section that may be in any p2m; returns the previous slot value (0 = outermost).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Enter(out ReaderSlot slot) => Enter(AnyTag, out slot);

        /// <summary>
        /// Announces a read-side critical section in the p2m tagged <paramref name="tag"/>; returns
        /// the previous slot value (0 = outermost). Nothing between this and <see cref="Exit"/> may
        /// throw: a section left by an exception holds back every later free until its thread dies.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Enter(int tag, out ReaderSlot slot)
        {
            slot = t_slot ?? Register();
            long previous = slot.Value;
            if (previous == 0)
            {
                Volatile.Write(ref slot.Tag, tag);
                Volatile.Write(ref slot.Value, Volatile.Read(ref s_global));
            }
            else if (slot.Tag != tag)
            {
                Volatile.Write(ref slot.Tag, AnyTag);   // nested in another p2m: hold back every p2m
            }

            return previous;
        }

        /// <summary>Ends the section begun by the matching <see cref="Enter(int, out ReaderSlot)"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Exit(ReaderSlot slot, long previous)
        {
            if (previous == 0)
            {
                Volatile.Write(ref slot.Value, 0);
            }
        }

        /// <summary>The stamp for frames whose unlink the caller has just published (a full fence).</summary>
        public static long Stamp() => Volatile.Read(ref s_global);

        /// <summary>
        /// Advances the epoch (one reclamation pass; the caller serialises passes) and returns the
        /// new value: every stamp taken before is below it. Native readers see it next.
        /// </summary>
        public static long Advance()
        {
            long now = Interlocked.Increment(ref s_global);
            s_native?.PublishEpoch(now);
            return now;
        }

        /// <summary>
        /// Hands the native library's reader slots to the scan (once; later calls with the same
        /// array change nothing). The caller serialises with the passes (the reclaimer's lock).
        /// </summary>
        public static void RegisterNative(nint slots, int count, int stride, nint epochCell, nint overflow)
        {
            if (s_native is not null)
            {
                return;
            }

            var native = new NativeSlots(slots, count, stride, epochCell, overflow);
            native.PublishEpoch(Volatile.Read(ref s_global));
            Volatile.Write(ref s_native, native);
        }

        /// <summary>
        /// Makes every reader's slot stores visible (asymmetric fence), then copies each open
        /// section's epoch and tag into <paramref name="buffer"/> (grown when short) and returns how
        /// many there are. A native reader without a slot shows as epoch 1, tag any.
        /// </summary>
        public static int Snapshot(ref Section[] buffer)
        {
            Interlocked.MemoryBarrierProcessWide();
            int n = 0;
            ReaderSlot[] slots = Volatile.Read(ref s_slots);
            for (int i = 0; i < slots.Length; i++)
            {
                long v = Volatile.Read(ref slots[i].Value);
                if (v != 0)
                {
                    Add(ref buffer, ref n, new Section(v, Volatile.Read(ref slots[i].Tag)));
                }
            }

            NativeSlots? native = Volatile.Read(ref s_native);
            if (native is not null)
            {
                for (int i = 0; i < native.Count; i++)
                {
                    long v = native.Read(i);
                    if (v != 0)
                    {
                        Add(ref buffer, ref n, new Section(v, AnyTag));
                    }
                }

                if (native.Overflow() != 0)
                {
                    Add(ref buffer, ref n, new Section(1, AnyTag));
                }
            }

            return n;
        }

        /// <summary>Reader sections (managed and native) open since at least <see cref="ParkedEpochs"/> passes ago.</summary>
        public static int ParkedReaders()
        {
            long limit = Volatile.Read(ref s_global) - ParkedEpochs;
            int parked = 0;
            foreach (ReaderSlot s in Volatile.Read(ref s_slots))
            {
                long v = Volatile.Read(ref s.Value);
                parked += v != 0 && v <= limit ? 1 : 0;
            }

            NativeSlots? native = Volatile.Read(ref s_native);
            for (int i = 0; native is not null && i < native.Count; i++)
            {
                long v = native.Read(i);
                parked += v != 0 && v <= limit ? 1 : 0;
            }

            return parked;
        }

        private static void Add(ref Section[] buffer, ref int n, Section s)
        {
            if (n == buffer.Length)
            {
                Array.Resize(ref buffer, Math.Max(16, buffer.Length * 2));
            }

            buffer[n++] = s;
        }

        // A thread's first read claims a slot without a lock (readers never lock): a free slot is
        // claimed by compare-exchange on its in-use word, else a new slot is appended by a
        // compare-exchange of the whole array, retried if another thread appended meanwhile.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ReaderSlot Register()
        {
            ReaderSlot? slot = null;
            while (true)
            {
                ReaderSlot[] current = Volatile.Read(ref s_slots);
                foreach (ReaderSlot s in current)
                {
                    if (s.TryClaim())
                    {
                        slot = s;
                        break;
                    }
                }

                if (slot is not null)
                {
                    break;
                }

                var fresh = new ReaderSlot();
                fresh.TryClaim();
                ReaderSlot[] grown = new ReaderSlot[current.Length + 1];
                current.CopyTo(grown, 0);
                grown[^1] = fresh;
                if (Interlocked.CompareExchange(ref s_slots, grown, current) == current)
                {
                    slot = fresh;
                    break;
                }
            }

            t_owner = new SlotOwner(slot);
            t_slot = slot;
            return slot;
        }

        private static void Unregister(ReaderSlot slot)
        {
            Volatile.Write(ref slot.Value, 0);
            slot.Release();
        }

        /// <summary>One open section as a scan saw it.</summary>
        public readonly record struct Section(long Epoch, int Tag);

        /// <summary>One reader thread's published epoch and p2m tag, alone on its cache lines.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 192)]
        internal sealed class ReaderSlot
        {
            [FieldOffset(64)]
            public long Value;      // 0 = not reading; else the epoch seen on entry

            [FieldOffset(72)]
            public int Tag;         // the p2m the section is in (AnyTag: any); meaningful while Value != 0

            [FieldOffset(128)]
            private int _inUse;     // 1 while a thread owns the slot

            /// <summary>Whether a live thread owns this slot.</summary>
            public bool InUse => Volatile.Read(ref _inUse) != 0;

            /// <summary>Claims the slot for the calling thread; false if another thread owns it.</summary>
            public bool TryClaim() => Volatile.Read(ref _inUse) == 0 && Interlocked.CompareExchange(ref _inUse, 1, 0) == 0;

            /// <summary>Gives the slot back (its thread died).</summary>
            public void Release() => Volatile.Write(ref _inUse, 0);
        }

        // The native library's slot array: `count` int64 epochs, `stride` bytes apart, the epoch
        // cell native readers load, and the count of native readers that found no free slot.
        // Read with Marshal (no pointer in this file); each address is 8-byte aligned.
        private sealed class NativeSlots(nint slots, int count, int stride, nint epochCell, nint overflow)
        {
            public int Count { get; } = count;

            public long Read(int i) => Marshal.ReadInt64(slots, i * stride);

            public long Overflow() => Marshal.ReadInt64(overflow);

            public void PublishEpoch(long epoch) => Marshal.WriteInt64(epochCell, epoch);
        }

        // Thread-static holder: when its thread dies it becomes garbage and gives the slot back.
        private sealed class SlotOwner
        {
            public readonly ReaderSlot Slot;

            public SlotOwner(ReaderSlot slot) => Slot = slot;

            ~SlotOwner() => Unregister(Slot);
        }
    }
}

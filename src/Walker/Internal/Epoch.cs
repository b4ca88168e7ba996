// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;

namespace FastEpt.Internal
{
    /// <summary>
    /// Epoch-based reclamation of table frames, shared by every p2m in the process.
    /// </summary>
    /// <remarks>
    /// <para>Readers (walks, lookups) never lock. Around each walk a reader publishes the global
    /// epoch it saw in its own cache-line-sized slot and clears the slot afterwards; nesting keeps
    /// the outer (older) value. A writer that unlinks a subtree stamps it with the current epoch
    /// R and then advances the global epoch to R+1. The subtree's frames may be freed once every
    /// active slot holds an epoch greater than R: a reader that can still be inside the subtree
    /// read the old link, so it read the global epoch no later than the unlink and shows R or less.
    /// A reader that saw R+1 also sees the unlink, because the unlink precedes the increment
    /// (a full fence) and the reader's epoch load is an acquire.</para>
    /// <para>Ordering on the reader side costs no fence: the slot is written with a plain release
    /// store, which the hardware may let pass the walk's first loads. The reclaiming writer closes
    /// that window with <see cref="Interlocked.MemoryBarrierProcessWide"/> (membarrier on Linux,
    /// FlushProcessWriteBuffers on Windows) before it scans the slots, so every store a reader made
    /// before the barrier is visible and every load it makes after the barrier sees the unlink.
    /// Volatile accesses are not reordered by the JIT, so program order is what the barrier fixes.</para>
    /// </remarks>
    internal static class Epoch
    {
        private static long s_global = 1;
        private static ReaderSlot[] s_slots = [];
        private static readonly OrderedLock s_registryLock = new(OrderedLock.EpochRegistryRank, "epoch registry");

        // The slot itself, for the hot path (one thread-static load, no dereference of the
        // owner); t_owner only exists so the slot is given back when the thread dies.
        [ThreadStatic]
        private static ReaderSlot? t_slot;

        [ThreadStatic]
        private static SlotOwner? t_owner;

        /// <summary>Announces a read-side critical section; returns the previous slot value (0 = outermost).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static long Enter(out ReaderSlot slot)
        {
            slot = t_slot ?? Register();
            long previous = slot.Value;
            if (previous == 0)
            {
                Volatile.Write(ref slot.Value, Volatile.Read(ref s_global));
            }

            return previous;
        }

        /// <summary>Ends the section begun by the matching <see cref="Enter"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Exit(ReaderSlot slot, long previous)
        {
            if (previous == 0)
            {
                Volatile.Write(ref slot.Value, 0);
            }
        }

        /// <summary>Called after an unlink is published: returns the stamp for the unlinked frames and advances the epoch.</summary>
        public static long Retire() => Interlocked.Increment(ref s_global) - 1;

        /// <summary>True when frames stamped <paramref name="stamp"/> can no longer be reached by any reader.</summary>
        public static bool IsSafe(long stamp, long oldestActive) => stamp < oldestActive;

        /// <summary>
        /// Makes every reader's slot store visible (asymmetric fence) and returns the oldest epoch
        /// any reader is in, or <see cref="long.MaxValue"/> when none is reading.
        /// </summary>
        public static long OldestActive()
        {
            Interlocked.MemoryBarrierProcessWide();
            long oldest = long.MaxValue;
            ReaderSlot[] slots = Volatile.Read(ref s_slots);
            for (int i = 0; i < slots.Length; i++)
            {
                long v = Volatile.Read(ref slots[i].Value);
                if (v != 0 && v < oldest)
                {
                    oldest = v;
                }
            }

            return oldest;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static ReaderSlot Register()
        {
            using (s_registryLock.Enter())
            {
                ReaderSlot? slot = null;
                foreach (ReaderSlot s in s_slots)
                {
                    if (!s.InUse)
                    {
                        slot = s;
                        break;
                    }
                }

                if (slot is null)
                {
                    slot = new ReaderSlot();
                    ReaderSlot[] grown = new ReaderSlot[s_slots.Length + 1];
                    s_slots.CopyTo(grown, 0);
                    grown[^1] = slot;
                    Volatile.Write(ref s_slots, grown);
                }

                slot.InUse = true;
                t_owner = new SlotOwner(slot);
                t_slot = slot;
                return slot;
            }
        }

        private static void Unregister(ReaderSlot slot)
        {
            using (s_registryLock.Enter())
            {
                Volatile.Write(ref slot.Value, 0);
                slot.InUse = false;
            }
        }

        /// <summary>One reader thread's published epoch, alone on its cache lines.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 192)]
        internal sealed class ReaderSlot
        {
            [FieldOffset(64)]
            public long Value;      // 0 = not reading; else the epoch seen on entry

            [FieldOffset(128)]
            public bool InUse;
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

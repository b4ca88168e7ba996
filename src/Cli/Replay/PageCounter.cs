// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// Per-page read/write/fetch counters of a replay: an open-addressing hash table (linear
    /// probing, Fibonacci hashing, at most half full) whose slots hold the page and its three
    /// counters side by side, so counting an access to a page already seen costs one multiply and
    /// one cache line. About 64 bytes per distinct page at worst.
    /// </summary>
    internal sealed class PageCounter
    {
        private const int InitialBits = 12;

        // Key = page + 1 (trace pages are below 2^52), so a zeroed slot is empty.
        [StructLayout(LayoutKind.Sequential)]
        private struct Slot
        {
            public ulong Key;
            public long Reads;
            public long Writes;
            public long Fetches;
        }

        private Slot[] _slots = new Slot[1 << InitialBits];
        private int _shift = 64 - InitialBits;
        private int _count;

        /// <summary>Distinct pages counted.</summary>
        public int Count => _count;

        /// <summary>
        /// The counters of <paramref name="page"/> (reads, then writes, then fetches: index by the
        /// access kind with <see cref="Unsafe.Add{T}(ref T, int)"/>), created at zero on first use.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ref long Counters(ulong page)
        {
            ulong key = unchecked(page + 1);
            nint i = (nint)(unchecked(key * 0x9E3779B97F4A7C15UL) >> _shift);
            ref Slot s = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_slots), i);
            if (s.Key == key)
            {
                return ref s.Reads;
            }

            return ref Find(key, i);
        }

        /// <summary>Calls <paramref name="visit"/> with every page and its counters, in no particular order.</summary>
        public void ForEach(Action<ulong, long, long, long> visit)
        {
            foreach (Slot s in _slots)
            {
                if (s.Key != 0)
                {
                    visit(s.Key - 1, s.Reads, s.Writes, s.Fetches);
                }
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private ref long Find(ulong key, nint i)
        {
            while (true)
            {
                Slot[] slots = _slots;
                int mask = slots.Length - 1;
                int j = (int)i;
                while (true)
                {
                    ref Slot s = ref slots[j];
                    if (s.Key == key)
                    {
                        return ref s.Reads;
                    }

                    if (s.Key == 0)
                    {
                        if ((_count + 1) * 2 <= slots.Length)
                        {
                            s.Key = key;
                            _count++;
                            return ref s.Reads;
                        }

                        break;
                    }

                    j = (j + 1) & mask;
                }

                Grow();
                i = (nint)(unchecked(key * 0x9E3779B97F4A7C15UL) >> _shift);
            }
        }

        private void Grow()
        {
            Slot[] old = _slots;
            Slot[] slots = new Slot[old.Length * 2];
            int shift = _shift - 1;
            int mask = slots.Length - 1;
            foreach (Slot s in old)
            {
                if (s.Key == 0)
                {
                    continue;
                }

                int j = (int)(unchecked(s.Key * 0x9E3779B97F4A7C15UL) >> shift);
                while (slots[j].Key != 0)
                {
                    j = (j + 1) & mask;
                }

                slots[j] = s;
            }

            _slots = slots;
            _shift = shift;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Numerics;

namespace FastEpt
{
    /// <summary>
    /// The table frames a p2m owns: one bit per host frame, changed with atomic OR/AND so
    /// concurrent writers (each holding only its region's stripe) may add and remove frames, and
    /// a count kept exactly with the same atomics (readers may read it without a lock).
    /// </summary>
    /// <remarks>A frame is added before the slot that links it is published and removed after
    /// the slot that linked it was replaced, so a writer that finds a pointer in a live slot
    /// finds its frame here (Ryujinx's <c>ConcurrentBitmap</c> shape).</remarks>
    internal sealed class TableSet
    {
        private readonly ulong[] _bits;
        private readonly ulong _frames;
        private long _count;

        public TableSet(ulong frames)
        {
            _frames = frames;
            _bits = new ulong[(frames + 63) / 64];
        }

        /// <summary>Frames in the set (exact once the writers that changed it returned).</summary>
        public long Count => Volatile.Read(ref _count);

        /// <summary>Whether <paramref name="mfn"/> is an owned table; false for frames outside host memory.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Contains(ulong mfn)
            => mfn < _frames && (Volatile.Read(ref _bits[mfn >> 6]) & (1UL << (int)(mfn & 63))) != 0;

        /// <summary>Adds <paramref name="mfn"/>; false when it was already in the set.</summary>
        public bool Add(ulong mfn)
        {
            if (mfn >= _frames)
            {
                return false;
            }

            ulong bit = 1UL << (int)(mfn & 63);
            if ((Interlocked.Or(ref _bits[mfn >> 6], bit) & bit) != 0)
            {
                return false;
            }

            Interlocked.Increment(ref _count);
            return true;
        }

        /// <summary>Removes <paramref name="mfn"/>; false when it was not in the set.</summary>
        public bool Remove(ulong mfn)
        {
            if (mfn >= _frames)
            {
                return false;
            }

            ulong bit = 1UL << (int)(mfn & 63);
            if ((Interlocked.And(ref _bits[mfn >> 6], ~bit) & bit) == 0)
            {
                return false;
            }

            Interlocked.Decrement(ref _count);
            return true;
        }

        /// <summary>Empties the set. No writer may be running (the p2m lock is held exclusive).</summary>
        public void Clear()
        {
            Array.Clear(_bits);
            Volatile.Write(ref _count, 0);
        }

        /// <summary>The frames in the set, ascending. No writer may be running.</summary>
        public IEnumerator<ulong> GetEnumerator()
        {
            for (int w = 0; w < _bits.Length; w++)
            {
                for (ulong word = _bits[w]; word != 0; word &= word - 1)
                {
                    yield return ((ulong)w << 6) | (uint)BitOperations.TrailingZeroCount(word);
                }
            }
        }
    }
}

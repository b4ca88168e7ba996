// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // Invalidation (INVEPT semantics) and flushing: the generation check every lookup makes, and
    // the O(1) epoch flush with QEMU-style dynamic sizing.
    public sealed partial class SoftTlb
    {
        /// <summary>
        /// All-context invalidation: makes every translation cached by every <see cref="SoftTlb"/>
        /// in the process unreachable before this call returns (each TLB empties itself on its next lookup).
        /// </summary>
        /// <remarks>Lock-free, O(1).</remarks>
        public static void InvalidateAll() => P2m.InvalidateAllTlbs();

        /// <summary>Empties the TLB (O(1)); with dynamic sizing, may resize it.</summary>
        public void Flush() => FlushCore(CurrentGeneration());

        // The p2m's generation; all-context invalidation bumps every live p2m's (P2m.InvalidateAllTlbs),
        // so one load serves both.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private long CurrentGeneration() => Volatile.Read(ref _hot.TlbGeneration);

        private void FlushCore(long generation)
        {
            _generation = generation;
            _flushes++;
            int used = _used;
            _used = 0;
            int capacity = _entries.Length;
            if (_minCapacity != _maxCapacity)
            {
                // QEMU's rule, decided only here: > 70 % of the slots filled since the last flush
                // doubles the array, < 30 % halves it.
                int wanted = capacity;
                if ((long)used * 10 > (long)capacity * 7 && capacity < _maxCapacity)
                {
                    wanted = capacity * 2;
                }
                else if ((long)used * 10 < (long)capacity * 3 && capacity > _minCapacity)
                {
                    wanted = capacity / 2;
                }

                if (wanted != capacity)
                {
                    AllocateEntries(wanted);        // zeroed: every slot empty
                    _resizes++;
                }
            }

            if (_epoch == EpochMax)
            {
                // The epoch wraps: clear every tag so no entry from 4095 flushes ago can match.
                Array.Clear(_entries);
                Array.Clear(_entries2M);
                Array.Clear(_entries1G);
                _epoch = 1;
            }
            else
            {
                _epoch++;
            }

            SetHitKeyEpoch();
        }

        // The hit path's key: the epoch, with the stale flag (bit 63, set by the p2m's writers
        // through ITlbShootdown) kept as it is.
        private void SetHitKeyEpoch()
        {
            ulong old;
            do
            {
                old = Volatile.Read(ref _hitKey);
            }
            while (Interlocked.CompareExchange(ref _hitKey, (old & StaleBit) | _epoch, old) != old);
        }
    }
}

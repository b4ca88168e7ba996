// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Generic;

namespace FastEpt.Cli.Replay
{
    // The n most accessed spots (ties: lower address first), kept in a bounded heap whose
    // root is the least of them: O(spots log n), one HotSpot per winner.
    internal sealed class TopN
    {
        private readonly int _n;
        private readonly PriorityQueue<(ulong Address, long Reads, long Writes, long Fetches), (long Accesses, ulong Address)> _heap;

        public TopN(int n)
        {
            _n = n;
            _heap = new(n + 1, Comparer<(long Accesses, ulong Address)>.Create(static (a, b) =>
                a.Accesses != b.Accesses ? a.Accesses.CompareTo(b.Accesses) : b.Address.CompareTo(a.Address)));
        }

        public void Offer(ulong address, long reads, long writes, long fetches)
        {
            var key = (reads + writes + fetches, address);
            if (_heap.Count < _n)
            {
                _heap.Enqueue((address, reads, writes, fetches), key);
            }
            else if (_heap.TryPeek(out _, out var least) && _heap.Comparer.Compare(key, least) > 0)
            {
                _heap.EnqueueDequeue((address, reads, writes, fetches), key);
            }
        }

        public HotSpot[] ToArray()
        {
            var all = new HotSpot[_heap.Count];
            for (int i = all.Length - 1; i >= 0; i--)
            {
                var (a, r, w, f) = _heap.Dequeue();
                all[i] = new HotSpot(a, r + w + f, r, w, f);
            }

            return all;
        }
    }
}

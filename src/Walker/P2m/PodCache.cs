// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// The populate-on-demand cache of one p2m: free 2 MiB and 4 KiB frames that back PoD
    /// entries on first access (docs/model/p2m.md §3.6). Thread-safe; its lock ranks after the p2m's.
    /// </summary>
    public sealed class PodCache
    {
        private readonly HostMemory _memory;
        private readonly OrderedLock _lock = new(OrderedLock.PodRank, "pod");
        private readonly Stack<ulong> _pages2M = new();
        private readonly Stack<ulong> _pages4K = new();

        internal PodCache(HostMemory memory) => _memory = memory;

        /// <summary>Free 2 MiB pages in the cache.</summary>
        public int Count2M
        {
            get
            {
                using OrderedLock.Scope s = _lock.Enter();
                return _pages2M.Count;
            }
        }

        /// <summary>Free 4 KiB pages in the cache.</summary>
        public int Count4K
        {
            get
            {
                using OrderedLock.Scope s = _lock.Enter();
                return _pages4K.Count;
            }
        }

        /// <summary>Total free 4 KiB frames in the cache (2 MiB pages count 512).</summary>
        public long FreeFrames
        {
            get
            {
                using OrderedLock.Scope s = _lock.Enter();
                return ((long)_pages2M.Count << 9) + _pages4K.Count;
            }
        }

        /// <summary>Adds a free page, already owned by the caller, to the cache.</summary>
        /// <param name="mfn">First frame; must be aligned to <paramref name="order"/> and inside host memory.</param>
        /// <param name="order"><see cref="PageOrder.Size4K"/> or <see cref="PageOrder.Size2M"/>.</param>
        /// <exception cref="ArgumentOutOfRangeException">Order not 4K/2M, or the page is outside host memory.</exception>
        /// <exception cref="ArgumentException"><paramref name="mfn"/> is misaligned.</exception>
        public void AddPage(ulong mfn, PageOrder order)
        {
            if (order is not (PageOrder.Size4K or PageOrder.Size2M))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(order), order, "The PoD cache holds 4 KiB and 2 MiB pages.");
            }

            ulong count = 1UL << (int)order;
            if (mfn >= (ulong)_memory.FrameCount || count > (ulong)_memory.FrameCount - mfn)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_mfn(mfn, _memory.FrameCount);
            }

            if ((mfn & (count - 1)) != 0)
            {
                ThrowHelper.ThrowArgumentException(nameof(mfn), $"Frame 0x{mfn:X} is not aligned to order {(int)order}.");
            }

            using OrderedLock.Scope s = _lock.Enter();
            (order == PageOrder.Size2M ? _pages2M : _pages4K).Push(mfn);
        }

        internal bool TryTake(int order, out ulong mfn)
        {
            using OrderedLock.Scope s = _lock.Enter();
            if (order == (int)PageOrder.Size2M)
            {
                return _pages2M.TryPop(out mfn);
            }

            if (_pages4K.Count == 0 && _pages2M.TryPop(out ulong big))
            {
                // Xen breaks a 2 MiB page up when a 4 KiB request finds no 4 KiB page.
                for (ulong i = 511; i >= 1; i--)
                {
                    _pages4K.Push(big + i);
                }

                mfn = big;
                return true;
            }

            return _pages4K.TryPop(out mfn);
        }

        internal void Return(ulong mfn, int order)
        {
            using OrderedLock.Scope s = _lock.Enter();
            (order == (int)PageOrder.Size2M ? _pages2M : _pages4K).Push(mfn);
        }

        internal bool IsEmpty
        {
            get
            {
                using OrderedLock.Scope s = _lock.Enter();
                return _pages2M.Count == 0 && _pages4K.Count == 0;
            }
        }
    }
}

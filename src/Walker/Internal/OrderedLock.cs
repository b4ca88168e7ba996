// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Internal
{
    /// <summary>
    /// A writer lock with a rank. Locks must be taken in increasing rank and never re-entered;
    /// the checker enforces it in Debug builds and whenever <see cref="CheckOrder"/> is set.
    /// </summary>
    /// <remarks>
    /// Ranks follow Xen's mm-locks order (SPEC.md 3.1): host p2m 16 &lt; altp2m list 32 &lt;
    /// altp2m view 40 &lt; PoD 48. HostMemory's allocator lock is a leaf below all of them and
    /// is not ranked. No ranked lock is held across a call that translates or copies guest memory.
    /// </remarks>
    internal sealed class OrderedLock
    {
        public const int P2mRank = 16;
        public const int AltP2mListRank = 32;
        public const int AltP2mViewRank = 40;
        public const int PodRank = 48;

#if DEBUG
        public static bool CheckOrder = true;
#else
        public static bool CheckOrder;
#endif

        [ThreadStatic]
        private static OrderedLock?[]? t_held;
        [ThreadStatic]
        private static int t_depth;

        private readonly Lock _lock = new();

        public OrderedLock(int rank, string name)
        {
            Rank = rank;
            Name = name;
        }

        public int Rank { get; }

        public string Name { get; }

        public bool IsHeldByCurrentThread => _lock.IsHeldByCurrentThread;

        public Scope Enter()
        {
            // Remember whether this acquisition was recorded, so that its release pops exactly
            // what it pushed even if CheckOrder is switched in between (tests switch it).
            bool tracked = CheckOrder;
            if (tracked)
            {
                CheckBeforeEnter();
            }

            _lock.Enter();
            return new Scope(this, tracked);
        }

        private void CheckBeforeEnter()
        {
            if (_lock.IsHeldByCurrentThread)
            {
                throw new LockRecursionException($"Lock '{Name}' (rank {Rank}) is not re-entrant: this thread already holds it.");
            }

            OrderedLock?[] held = t_held ??= new OrderedLock?[16];
            if (t_depth > 0 && held[t_depth - 1]!.Rank >= Rank)
            {
                OrderedLock top = held[t_depth - 1]!;
                throw new InvalidOperationException($"Lock order violated: '{Name}' (rank {Rank}) taken while holding '{top.Name}' (rank {top.Rank}).");
            }

            if (t_depth == held.Length)
            {
                Array.Resize(ref t_held, held.Length * 2);
                held = t_held;
            }

            held[t_depth++] = this;
        }

        private void Exit(bool tracked)
        {
            if (tracked)
            {
                Debug.Assert(t_depth > 0 && ReferenceEquals(t_held![t_depth - 1], this), "locks released out of order");
                t_held![--t_depth] = null;
            }

            _lock.Exit();
        }

        public readonly ref struct Scope
        {
            private readonly OrderedLock _owner;
            private readonly bool _tracked;

            public Scope(OrderedLock owner, bool tracked)
            {
                _owner = owner;
                _tracked = tracked;
            }

            public void Dispose() => _owner?.Exit(_tracked);
        }
    }
}

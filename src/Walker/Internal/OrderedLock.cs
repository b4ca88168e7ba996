// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Internal
{
    /// <summary>
    /// A writer-preferring reader/writer lock with a rank. Locks must be taken in increasing rank
    /// and never re-entered, in either mode; the checker enforces it in Debug builds and whenever
    /// <see cref="CheckOrder"/> is set, throwing at the offending acquisition with both lock names.
    /// </summary>
    /// <remarks>
    /// <para>Ranks follow Xen's mm-locks order (docs/model/p2m.md §3.1): host p2m 16 &lt; altp2m list 32 &lt;
    /// altp2m view 40 &lt; PoD 48 &lt; page_alloc 56 (HostMemory's allocator). A 4K or 2M write holds the
    /// stripe of the GFN's 2 MiB region, which keeps its p2m lock's write side out (OrderedLock.Stripes.cs): host p2m stripes rank 24 (between
    /// the host p2m and the altp2m list, so a host write propagates into the views with its stripe
    /// held), view stripes 44 (between a view and PoD). FastEpt's own
    /// leaf locks rank above them: MMIO registry 50, domain frames 52 (it frees frames while held),
    /// dirty log 54, epoch reclaimer 55 (a pass frees frames while held), retired frames 57 and
    /// reclaim queue 58 (leaves), vCPU pause 60, software-TLB registry 62. Every lock in FastEpt is one of
    /// these. No lock is held across a call that translates or copies guest memory (docs/model/mem-access.md §5.4):
    /// <see cref="AssertNoneHeld"/> guards every guest-memory accessor.</para>
    /// <para>Writer preference is deliberate: it is the lock shape that turned Xen's recursive
    /// read acquisition in get_page_from_gva into a deadlock (a new reader waits while a writer is
    /// queued, and the writer waits for the first reader). Lock-free readers (GetEntry, Translate,
    /// batch walks) never take this lock; the read side serves callers that must see the tables
    /// still while they take a page reference.</para>
    /// </remarks>
    internal sealed partial class OrderedLock
    {
        public const int P2mRank = 16;
        public const int P2mStripeRank = 24;       // a host p2m's 2 MiB-region stripes (P2m.Writers.cs)
        public const int AltP2mListRank = 32;
        public const int AltP2mViewRank = 40;
        public const int AltP2mViewStripeRank = 44; // an altp2m view's 2 MiB-region stripes
        public const int PodRank = 48;
        public const int MmioRegistryRank = 50;
        public const int DomainFramesRank = 52;
        public const int DirtyLogRank = 54;
        public const int ReclaimerRank = 55;       // epoch reclamation passes: held while frames go back to the allocator
        public const int PageAllocRank = 56;       // HostMemory's allocator (Xen's page_alloc)
        public const int RetiredFramesRank = 57;   // one p2m's retired generations (leaf)
        public const int ReclaimQueueRank = 58;    // the reclaimer's list of p2ms with frames pending (leaf)
        public const int VcpuPauseRank = 60;
        public const int TlbRegistryRank = 62;

        private const int WriterHeld = 1 << 30;     // _state when a writer owns the lock; else the reader count
        private const int SpinsBeforeSleep = 32;
        private const int ReaderSlots = 16;         // distributed read side: counters, one per thread-id class
        private const int ReaderStride = 32;        // ints between two counters (128 bytes: no false sharing)

#if DEBUG
        public static bool CheckOrder = true;
#else
        public static bool CheckOrder;
#endif

        [ThreadStatic]
        private static Held[]? t_held;
        [ThreadStatic]
        private static int t_depth;

        private readonly object _gate = new();
        private int _state;
        private int _writersWaiting;
        private int _sleepers;
        private int _owner;            // managed thread id of the writer, 0 when none

        // Distributed read side (locks that many threads take shared at once, such as a p2m's
        // lock under parallel region writers): each reader counts itself in the counter of its
        // thread-id class instead of in _state, so readers on different cores do not bounce one
        // cache line between them. A writer then sets _state to WriterHeld first (new readers
        // see it and wait) and waits for every counter to drain. Reader: increment, then look
        // at _state; writer: set _state, then look at the counters; both steps are full fences,
        // so at least one of the two sees the other.
        private readonly int[]? _readerCounts;

        public OrderedLock(int rank, string name, bool distributedReaders = false)
        {
            Rank = rank;
            Name = name;
            if (distributedReaders)
            {
                _readerCounts = new int[(ReaderSlots + 1) * ReaderStride];
            }
        }

        public int Rank { get; }

        public string Name { get; }

        /// <summary>True when the calling thread holds the write side.</summary>
        public bool IsHeldByCurrentThread
            => Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId && Volatile.Read(ref _state) == WriterHeld;

        /// <summary>Writers waiting for the lock (tests use it to queue a writer deterministically).</summary>
        public int WritersWaiting => Volatile.Read(ref _writersWaiting);

        /// <summary>Readers holding the lock now.</summary>
        public int Readers
        {
            get
            {
                if (_readerCounts is not null)
                {
                    return ReaderTotal();
                }

                int s = Volatile.Read(ref _state);
                return s == WriterHeld ? 0 : s;
            }
        }

        /// <summary>
        /// Throws when the calling thread holds any ranked lock (checker on only). Called on entry
        /// to every accessor that translates or copies guest memory.
        /// </summary>
        public static void AssertNoneHeld(string accessor)
        {
            if (CheckOrder && t_depth > 0)
            {
                Held top = t_held![t_depth - 1];
                throw new LockRecursionException(
                    $"{accessor} entered while this thread holds '{top.Lock.Name}' ({(top.Read ? "read" : "write")}, rank {top.Lock.Rank}): no lock may be held across a guest-memory access.");
            }
        }

        /// <summary>Takes the write side (exclusive).</summary>
        public Scope Enter()
        {
            // Remember whether this acquisition was recorded, so that its release pops exactly
            // what it pushed even if CheckOrder is switched in between (tests switch it).
            bool tracked = CheckOrder;
            if (tracked)
            {
                CheckBeforeEnter(read: false);
            }

            if (Interlocked.CompareExchange(ref _state, WriterHeld, 0) != 0)
            {
                EnterWriteSlow();
            }

            Volatile.Write(ref _owner, Environment.CurrentManagedThreadId);
            if (_readerCounts is not null && ReaderTotal() != 0)
            {
                WaitForReadersToDrain();
            }

            if (_stripes is not null && AnyStripeHeld())
            {
                WaitForStripesToDrain();
            }

            return new Scope(this, tracked, read: false);
        }

        /// <summary>Takes the read side (shared). Not re-entrant: a reader that asks again while a
        /// writer is queued would wait forever, so the checker refuses it.</summary>
        public Scope EnterRead()
        {
            bool tracked = CheckOrder;
            if (tracked)
            {
                CheckBeforeEnter(read: true);
            }

            if (!TryEnterRead())
            {
                EnterReadSlow();
            }

            return new Scope(this, tracked, read: true);
        }

        private bool TryEnterRead()
        {
            int[]? counts = _readerCounts;
            if (counts is not null)
            {
                if (Volatile.Read(ref _state) != 0 || Volatile.Read(ref _writersWaiting) != 0)
                {
                    return false;
                }

                ref int mine = ref counts[ReaderIndex()];
                Interlocked.Increment(ref mine);
                if (Volatile.Read(ref _state) == 0 && Volatile.Read(ref _writersWaiting) == 0)
                {
                    return true;
                }

                // A writer came meanwhile: step back (it may be waiting for this counter).
                Interlocked.Decrement(ref mine);
                Wake();
                return false;
            }

            int s = Volatile.Read(ref _state);
            return s < WriterHeld - 1 && Volatile.Read(ref _writersWaiting) == 0
                   && Interlocked.CompareExchange(ref _state, s + 1, s) == s;
        }

        private void EnterWriteSlow()
        {
            if (Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId && Volatile.Read(ref _state) == WriterHeld)
            {
                throw new LockRecursionException($"Lock '{Name}' (rank {Rank}) is not re-entrant: this thread already holds it for writing.");
            }

            Interlocked.Increment(ref _writersWaiting);
            try
            {
                Acquire(static l => Interlocked.CompareExchange(ref l._state, WriterHeld, 0) == 0);
            }
            finally
            {
                Interlocked.Decrement(ref _writersWaiting);
            }
        }

        private void EnterReadSlow() => Acquire(static l => l.TryEnterRead());

        // The writer owns _state; readers that came before it leave one by one.
        private void WaitForReadersToDrain()
        {
            Interlocked.Increment(ref _writersWaiting);
            try
            {
                Acquire(static l => l.ReaderTotal() == 0);
            }
            finally
            {
                Interlocked.Decrement(ref _writersWaiting);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int ReaderIndex() => ((Environment.CurrentManagedThreadId & (ReaderSlots - 1)) + 1) * ReaderStride;

        private int ReaderTotal()
        {
            int[]? counts = _readerCounts;
            if (counts is null)
            {
                return 0;
            }

            int total = 0;
            for (int i = 1; i <= ReaderSlots; i++)
            {
                total += Volatile.Read(ref counts[i * ReaderStride]);
            }

            return total;
        }

        // Spin briefly, then sleep on the gate. A sleeper registers (interlocked) before its last
        // try; a releaser changes the state (interlocked) before it looks for sleepers, so one of
        // the two always sees the other and no wake-up is lost.
        private void Acquire(Func<OrderedLock, bool> tryTake)
        {
            for (int i = 0; i < SpinsBeforeSleep; i++)
            {
                if (tryTake(this))
                {
                    return;
                }

                Thread.SpinWait(8 << Math.Min(i, 6));
            }

            lock (_gate)
            {
                Interlocked.Increment(ref _sleepers);
                try
                {
                    while (!tryTake(this))
                    {
                        Monitor.Wait(_gate);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _sleepers);
                }
            }
        }

        private void Wake()
        {
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_gate)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }

        private void CheckBeforeEnter(bool read)
        {
            Held[] held = t_held ??= new Held[16];
            for (int i = 0; i < t_depth; i++)
            {
                if (ReferenceEquals(held[i].Lock, this))
                {
                    throw new LockRecursionException(
                        $"Lock '{Name}' (rank {Rank}) is not re-entrant: this thread already holds '{Name}' for {(held[i].Read ? "reading" : "writing")} and asked again for {(read ? "reading" : "writing")}.");
                }
            }

            if (t_depth > 0 && held[t_depth - 1].Lock.Rank >= Rank)
            {
                OrderedLock top = held[t_depth - 1].Lock;
                throw new InvalidOperationException($"Lock order violated: '{Name}' (rank {Rank}) taken while holding '{top.Name}' (rank {top.Rank}).");
            }

            if (t_depth == held.Length)
            {
                Array.Resize(ref t_held, held.Length * 2);
                held = t_held;
            }

            held[t_depth++] = new Held(this, read);
        }

        private void Exit(bool tracked, bool read)
        {
            if (tracked)
            {
                Debug.Assert(t_depth > 0 && ReferenceEquals(t_held![t_depth - 1].Lock, this), "locks released out of order");
                t_held![--t_depth] = default;
            }

            if (read)
            {
                int[]? counts = _readerCounts;
                if (counts is not null)
                {
                    // Full fence, then: a writer that set _state may be waiting for this counter.
                    Interlocked.Decrement(ref counts[ReaderIndex()]);
                    if (Volatile.Read(ref _state) != 0)
                    {
                        Wake();
                    }
                }
                else if (Interlocked.Decrement(ref _state) == 0)
                {
                    Wake();
                }
            }
            else
            {
                Debug.Assert(Volatile.Read(ref _state) == WriterHeld, "write side released by a non-owner");
                Volatile.Write(ref _owner, 0);
                Interlocked.Exchange(ref _state, 0);
                Wake();
                _parent?.Wake();    // an exclusive holder of the parent may wait for this stripe
            }
        }

        private readonly record struct Held(OrderedLock Lock, bool Read);

        public readonly ref struct Scope
        {
            private readonly OrderedLock _owner;
            private readonly bool _tracked;
            private readonly bool _read;

            public Scope(OrderedLock owner, bool tracked, bool read)
            {
                _owner = owner;
                _tracked = tracked;
                _read = read;
            }

            public void Dispose() => _owner?.Exit(_tracked, _read);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Internal
{
    /// <summary>
    /// One p2m's unlinked table frames waiting for reclamation, in generations: every subtree
    /// retired between two passes shares one epoch stamp, so a pass decides per generation, not
    /// per frame. Retiring is safe from any number of writers at once (a small leaf lock); the
    /// process-wide <see cref="Reclaimer"/> frees what the readers allow, including after the
    /// owning p2m was disposed.
    /// </summary>
    internal sealed class RetiredFrames
    {
        /// <summary>At least this many frames retire between two passes a p2m's writes start.</summary>
        public const int MinBatch = 64;

        private readonly OrderedLock _lock = new(OrderedLock.RetiredFramesRank, "retired frames");
        private readonly List<Generation> _generations = new();    // stamps ascending
        private long _pending;
        private long _batch = MinBatch;
        private bool _ownerDisposed;
        private long _nextPass;                // pending count at which a writer starts a pass (0: one batch)

        public RetiredFrames(HostMemory memory, int tag)
        {
            Memory = memory;
            Tag = tag;
        }

        /// <summary>Where the frames go back to.</summary>
        public HostMemory Memory { get; }

        /// <summary>The reader tag of the owning p2m: readers tagged otherwise (and not any) never hold these frames back.</summary>
        public int Tag { get; }

        /// <summary>Frames retired and not yet freed.</summary>
        public long Pending => Volatile.Read(ref _pending);

        /// <summary>The batch size the last retire asked for (the owner's table count / 8, at least <see cref="MinBatch"/>).</summary>
        public long Batch => Volatile.Read(ref _batch);

        /// <summary>
        /// Set once the owning p2m is disposed: by Dispose's contract no reader is in it any more,
        /// so untagged sections (native, nested across p2ms) no longer hold these frames back;
        /// sections tagged with the p2m itself (a walk racing Dispose) still do.
        /// </summary>
        public bool OwnerDisposed
        {
            get => Volatile.Read(ref _ownerDisposed);
            set => Volatile.Write(ref _ownerDisposed, value);
        }

        /// <summary>Set while the reclaimer lists this instance (written under the reclaimer's queue lock).</summary>
        internal bool QueuedFlag;

        /// <summary>
        /// Adds the frames of one unlinked subtree (its unlink already published) to the open
        /// generation and returns true when the p2m's writes should start a pass now: pending
        /// frames grew by a batch since the last pass. <paramref name="batch"/> is the batch size
        /// (at least <see cref="MinBatch"/>, proportional to the p2m's table count).
        /// </summary>
        public bool Add(List<ulong> frames, long batch)
        {
            if (frames.Count == 0)
            {
                return false;
            }

            bool due;
            batch = Math.Max(batch, MinBatch);
            Volatile.Write(ref _batch, batch);
            using (_lock.Enter())
            {
                long stamp = Epoch.Stamp();     // read after the unlink, under the lock: stamps ascend
                Generation? last = _generations.Count == 0 ? null : _generations[^1];
                if (last is not null && last.Stamp == stamp)
                {
                    last.Frames.AddRange(frames);
                }
                else
                {
                    _generations.Add(new Generation(stamp, new List<ulong>(frames)));
                }

                long pending = _pending + frames.Count;
                Volatile.Write(ref _pending, pending);
                long next = _nextPass == 0 ? batch : _nextPass;
                due = pending >= next;
                _nextPass = due ? pending + batch : next;   // one writer starts it
            }

            Reclaimer.Enqueue(this);
            return due;
        }

        /// <summary>
        /// Detaches every generation stamped below <paramref name="limit"/> (a pass's verdict for
        /// this tag), moves its frames into <paramref name="freed"/> and returns how many frames
        /// are left pending. <paramref name="batch"/> sets the next pass point.
        /// </summary>
        public long Detach(long limit, List<ulong> freed, long batch)
        {
            using (_lock.Enter())
            {
                int n = 0;
                while (n < _generations.Count && _generations[n].Stamp < limit)
                {
                    freed.AddRange(_generations[n].Frames);
                    _pending -= _generations[n].Frames.Count;
                    n++;
                }

                _generations.RemoveRange(0, n);
                Volatile.Write(ref _pending, _pending);
                _nextPass = _pending + Math.Max(batch, MinBatch);
                return _pending;
            }
        }

        /// <summary>Forgets every generation without freeing (the host memory is gone).</summary>
        public void Drop()
        {
            using (_lock.Enter())
            {
                _generations.Clear();
                Volatile.Write(ref _pending, 0);
            }
        }

        /// <summary>The batch size a p2m with <paramref name="tables"/> table frames uses: max(64, tables / 8).</summary>
        public static long BatchFor(long tables) => Math.Max(MinBatch, tables / 8);

        private sealed record Generation(long Stamp, List<ulong> Frames);
    }
}

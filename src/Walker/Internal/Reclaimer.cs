// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Internal
{
    /// <summary>
    /// The process-wide writer side of epoch-based reclamation (<see cref="Epoch"/>): it lists
    /// every <see cref="RetiredFrames"/> with frames pending (live p2ms, destroyed views and
    /// disposed p2ms alike) and frees, in one pass, what the readers allow in all of them, behind
    /// a single <see cref="Interlocked.MemoryBarrierProcessWide"/>.
    /// </summary>
    /// <remarks>
    /// <para>A pass runs when a p2m's pending frames grew by a batch since its last pass (max(64,
    /// tables / 8) frames), when a table allocation finds host memory full, on
    /// <see cref="P2m.Reclaim"/> and <see cref="P2m.ReclaimAll"/>, on a view reset and on
    /// <see cref="P2m.Dispose"/>; never as a side effect of every write. The pass advances the
    /// epoch, issues the barrier, snapshots the reader slots (O(readers)), then asks each queued
    /// list to detach the generations stamped below both the new epoch and the oldest reader that
    /// could be in that p2m (O(generations)); a reader in another p2m holds nothing back.</para>
    /// <para>Locks: the pass lock (rank <see cref="OrderedLock.ReclaimerRank"/>) serialises passes and
    /// is held while frames go back to host memory (its allocator ranks above); the queue lock
    /// and each list's lock are leaves above the allocator. A pass may run while the caller holds
    /// p2m, stripe, view or PoD locks, all of which rank below.</para>
    /// </remarks>
    internal static class Reclaimer
    {
        private static readonly OrderedLock s_passLock = new(OrderedLock.ReclaimerRank, "epoch reclaimer");
        private static readonly OrderedLock s_queueLock = new(OrderedLock.ReclaimQueueRank, "reclaim queue");
        private static readonly List<ulong> s_freed = new();
        private static List<RetiredFrames> s_queue = new();
        private static List<RetiredFrames> s_taken = new();
        private static Epoch.Section[] s_sections = new Epoch.Section[16];
        private static int s_queued;
        private static long s_barriers;
        private static long s_framesReclaimed;

        /// <summary>Process-wide barriers issued by reclamation passes (one per pass that found work).</summary>
        public static long Barriers => Volatile.Read(ref s_barriers);

        /// <summary>Table frames returned to host memory by reclamation passes.</summary>
        public static long FramesReclaimed => Volatile.Read(ref s_framesReclaimed);

        /// <summary>Frames retired and not yet freed, over every queued list.</summary>
        public static long PendingFrames
        {
            get
            {
                long total = 0;
                using (s_queueLock.Enter())
                {
                    foreach (RetiredFrames r in s_queue)
                    {
                        total += r.Pending;
                    }
                }

                return total;
            }
        }

        /// <summary>Lists <paramref name="retired"/> for the next pass unless it is listed already.</summary>
        public static void Enqueue(RetiredFrames retired)
        {
            if (Volatile.Read(ref retired.QueuedFlag))
            {
                return;
            }

            using (s_queueLock.Enter())
            {
                if (!retired.QueuedFlag)
                {
                    Volatile.Write(ref retired.QueuedFlag, true);
                    s_queue.Add(retired);
                    Volatile.Write(ref s_queued, s_queue.Count);
                }
            }
        }

        /// <summary>Hands the native library's reader slots to the scan (see <see cref="Epoch.RegisterNative"/>).</summary>
        public static void RegisterNative(nint slots, int count, int stride, nint epochCell, nint overflow)
        {
            using (s_passLock.Enter())
            {
                Epoch.RegisterNative(slots, count, stride, epochCell, overflow);
            }
        }

        /// <summary>
        /// One reclamation pass over every list with frames pending; returns how many frames went
        /// back to host memory. Issues no barrier when nothing is pending anywhere.
        /// </summary>
        public static long Pass()
        {
            // Even with nothing queued the pass lock is taken: a pass in flight may have detached
            // a list's frames (its pending count already lowered) without having freed them yet,
            // and a caller that then reads host memory's counts must see them freed.
            using (s_passLock.Enter())
            {
                if (Volatile.Read(ref s_queued) == 0)
                {
                    return 0;
                }

                List<RetiredFrames> work;
                using (s_queueLock.Enter())
                {
                    work = s_queue;
                    s_queue = s_taken;
                    s_taken = work;
                    foreach (RetiredFrames r in work)
                    {
                        Volatile.Write(ref r.QueuedFlag, false);
                    }

                    Volatile.Write(ref s_queued, 0);
                }

                if (work.Count == 0)
                {
                    return 0;
                }

                long now = Epoch.Advance();         // every generation listed so far is stamped below
                int n = Epoch.Snapshot(ref s_sections);
                Interlocked.Increment(ref s_barriers);
                long freedTotal = 0;
                foreach (RetiredFrames r in work)
                {
                    if (r.Memory.IsDisposed)
                    {
                        r.Drop();       // the frames went with the host memory
                        continue;
                    }

                    long left = r.Detach(LimitFor(r.Tag, !r.OwnerDisposed, n, now), s_freed, r.Batch);
                    freedTotal += FreeAll(r.Memory, s_freed);
                    if (left > 0)
                    {
                        Enqueue(r);
                    }
                }

                work.Clear();
                Interlocked.Add(ref s_framesReclaimed, freedTotal);
                return freedTotal;
            }
        }

        // Generations stamped below the result are unreachable: below the epoch this pass
        // advanced to (retired before the advance, hence before the barrier) and below the epoch
        // of every open section that may be in the list's p2m (untagged ones only while it lives).
        private static long LimitFor(int tag, bool untaggedCount, int n, long now)
        {
            long limit = now;
            for (int i = 0; i < n; i++)
            {
                Epoch.Section s = s_sections[i];
                if ((s.Tag == tag || (untaggedCount && s.Tag == Epoch.AnyTag)) && s.Epoch < limit)
                {
                    limit = s.Epoch;
                }
            }

            return limit;
        }

        private static long FreeAll(HostMemory memory, List<ulong> frames)
        {
            long freed = 0;
            try
            {
                foreach (ulong f in frames)
                {
                    memory.FreeFrame(f);
                    freed++;
                }
            }
            catch (ObjectDisposedException)
            {
                // The host memory went away with the frames (it may be disposed once its p2ms are).
            }

            frames.Clear();
            return freed;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Epoch-based reclamation of unlinked table frames: a subtree replaced by a superpage (or
    // emptied by a view reset) is stamped when it is unlinked and its frames go back to host
    // memory once no reader that could have entered it is still inside (Internal/Epoch.cs). The
    // frames wait in generations (Internal/RetiredFrames.cs) and are freed in batches by the
    // process-wide reclaimer (Internal/Reclaimer.cs), never as a side effect of every write.
    public sealed partial class P2m
    {
        // This p2m's reader tag: its walks publish it, so a reader here holds back only this
        // p2m's frees (and a reader elsewhere none of them).
        private readonly int _readerTag = Epoch.NewTag();
        private RetiredFrames? _retired;    // created on the first retire

        /// <summary>The tag this p2m's read sections publish (tests park readers with it).</summary>
        internal int ReaderTag => _readerTag;

        /// <summary>Table frames unlinked but not yet returned to host memory (readers may still be in them).</summary>
        public long PendingReclaimFrameCount => Volatile.Read(ref _retired)?.Pending ?? 0;

        /// <summary>
        /// Tries to return unlinked table frames to host memory now (one reclamation pass over every
        /// p2m with frames pending); returns how many of this p2m's frames are still pending
        /// because a reader may be inside them.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The p2m was disposed.</exception>
        public long Reclaim()
        {
            ThrowIfDisposed();
            Reclaimer.Pass();
            return PendingReclaimFrameCount;
        }

        /// <summary>
        /// One reclamation pass over every p2m in the process with frames pending, disposed p2ms and
        /// destroyed views included: frees what no reader can still be in, behind one process-wide
        /// barrier (none when nothing is pending). Returns how many frames went back to host memory.
        /// </summary>
        /// <remarks>Thread-safe; takes no p2m lock. Frames a reader holds back stay pending for a later pass.</remarks>
        public static long ReclaimAll() => Reclaimer.Pass();

        // The subtree is unlinked already; stamp its frames for reclamation. FastEpt.Interop's
        // writer calls this too (CompleteExternalSet), hence the check of host memory here.
        // Safe for concurrent writers: the generations have their own lock.
        private void RetireSubtree(ulong table, int level)
        {
            _memory.ThrowIfDisposed();
            List<ulong> frames = new();
            Collect(table, level, frames);
            if (RetiredList().Add(frames, RetiredFrames.BatchFor(_tables.Count)))
            {
                Volatile.Write(ref _hot.ReclaimDue, 1);
            }
        }

        private RetiredFrames RetiredList()
        {
            RetiredFrames? r = Volatile.Read(ref _retired);
            if (r is null)
            {
                Interlocked.CompareExchange(ref _retired, new RetiredFrames(_memory, _readerTag), null);
                r = Volatile.Read(ref _retired)!;
            }

            return r;
        }

        private void Collect(ulong table, int level, List<ulong> frames)
        {
            if (!_tables.Remove(table))
            {
                return;     // not ours (corruption) or already visited (a cycle): never free it
            }

            frames.Add(table);
            if (level == 1)
            {
                return;
            }

            Span<ulong> slots = _memory.DangerousTable(table);
            for (int i = 0; i < slots.Length; i++)
            {
                ulong pte = Volatile.Read(ref slots[i]);
                if ((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                {
                    Collect((pte & EptEntry.MfnMask) >> EptEntry.MfnShift, level - 1, frames);
                }
            }
        }

        // Called at the end of every write: a pass only when a retire of this write (or of a
        // concurrent one) found a batch pending, so a write costs no barrier otherwise.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void TryReclaimLocked()
        {
            if (Volatile.Read(ref _hot.ReclaimDue) != 0 && Interlocked.Exchange(ref _hot.ReclaimDue, 0) != 0)
            {
                Reclaimer.Pass();
            }
        }

        // A view reset (destroy, or Xen's altp2m_reset on a propagation conflict) retired the
        // whole view: return it promptly, whatever the batch. What a reader still holds back
        // stays with the process-wide reclaimer, which frees it on any later pass.
        private void ReclaimRetiredNow()
        {
            Volatile.Write(ref _hot.ReclaimDue, 0);
            Reclaimer.Pass();
        }

        // A table frame for a writer: when host memory is full, one reclamation pass first (what
        // the epochs allow, in every p2m), then one more try.
        private bool TryAllocateTableFrame(out ulong mfn)
            => _memory.TryAllocateFrame(out mfn) || (Reclaimer.Pass() > 0 && _memory.TryAllocateFrame(out mfn));

        // Dispose, with the writer lock held and _disposed set: no reader may be in this p2m any
        // more (the contract of Dispose), so untagged sections elsewhere stop counting and the
        // pass frees everything unless a walk tagged with this p2m still races Dispose; what such
        // a walk holds back stays queued with the process-wide reclaimer, for its next pass from
        // anywhere (P2m.ReclaimAll, any p2m's batch, a full host memory), never waiting for a
        // write to this dead p2m. Without host memory there is nothing to give back.
        private void DisposeRetired()
        {
            RetiredFrames? r = Volatile.Read(ref _retired);
            if (r is null)
            {
                return;
            }

            if (_memory.IsDisposed)
            {
                r.Drop();
                return;
            }

            r.OwnerDisposed = true;
            Reclaimer.Pass();
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Epoch-based reclamation of unlinked table frames: a subtree replaced by a superpage (or
    // emptied by a view reset) is stamped when it is unlinked and its frames go back to host
    // memory once no reader that could have entered it is still inside (Internal/Epoch.cs).
    public sealed partial class P2m
    {
        /// <summary>
        /// Tries to return unlinked table frames to host memory now; returns how many are still
        /// pending because a reader may be inside them.
        /// </summary>
        public long Reclaim()
        {
            ThrowIfDisposed();
            using OrderedLock.Scope s = _lock.Enter();
            TryReclaimLocked();
            return _pendingReclaim;
        }

        // The subtree is unlinked already; stamp its frames for reclamation. FastEpt.Interop's
        // writer calls this too (CompleteExternalSet), hence the check of host memory here.
        private void RetireSubtree(ulong table, int level)
        {
            _memory.ThrowIfDisposed();
            List<ulong> frames = new();
            Collect(table, level, frames);
            Interlocked.Add(ref _tableFrameCountForReaders, -frames.Count);
            _retired.Add((Epoch.Retire(), frames));
            _pendingReclaim += frames.Count;
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

        private void TryReclaimLocked()
        {
            if (_retired.Count == 0)
            {
                return;
            }

            long oldest = Epoch.OldestActive();
            int kept = 0;
            for (int i = 0; i < _retired.Count; i++)
            {
                (long stamp, List<ulong> frames) = _retired[i];
                if (Epoch.IsSafe(stamp, oldest))
                {
                    _pendingReclaim -= frames.Count;
                    FreeAll(frames);
                }
                else
                {
                    _retired[kept++] = _retired[i];
                }
            }

            _retired.RemoveRange(kept, _retired.Count - kept);
        }
    }
}

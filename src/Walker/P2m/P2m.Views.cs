// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Internal plumbing for Domain and Altp2m: writes under a lock the caller already holds, view
    // reset, and the host-change hook.
    public sealed partial class P2m
    {
        private IHostChangeObserver? _observer;

        internal OrderedLock P2mLock => _lock;

        internal IHostChangeObserver? ChangeObserver
        {
            get => _observer;
            set => _observer = value;
        }

        /// <summary>The default access (lazy copies into a view, PoD population, middle entries).</summary>
        internal P2mAccess DefaultAccess
        {
            get => _defaultAccess;
            set
            {
                Debug.Assert(_lock.IsHeldByCurrentThread);
                _defaultAccess = value;
                Options.DefaultAccess = value;
            }
        }

        /// <summary>
        /// <see cref="SetEntry"/> for a caller that already holds this p2m's write locks for
        /// <paramref name="gfn"/> (<see cref="EnterWrite"/>: the region's stripe, or the exclusive lock).
        /// </summary>
        internal void SetEntryHeld(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            Debug.Assert(HoldsWriter(gfn) && (order != PageOrder.Size1G || _lock.IsHeldByCurrentThread));
            ThrowIfDisposed();
            ValidateSet(gfn, mfn, order, type, access, suppressVe);
            SetEntryLocked(gfn, mfn, (int)order, type, access, suppressVe);
        }

        /// <summary>
        /// The access a write of <paramref name="type"/> can actually carry: write is dropped where
        /// it would be write-without-read, and execute-only where this CPU cannot execute-only.
        /// </summary>
        internal P2mAccess Representable(P2mType type, P2mAccess access, int order)
        {
            if (EptPermissions.IsWriteWithoutRead(type, access))
            {
                access = access == P2mAccess.WX ? P2mAccess.X : P2mAccess.N;
            }

            if (!Options.ExecuteOnly
                && (EptPermissions.Apply(0, type, access, order != 0, _inputs) & EptEntry.RwxMask) == 4)
            {
                access = P2mAccess.N;
            }

            return access;
        }

        /// <summary>
        /// Empties the whole p2m (Xen's altp2m view reset): every root slot is cleared with one
        /// store, the subtrees below are reclaimed once no reader can be inside them, and
        /// software TLBs are invalidated. The caller holds the writer lock.
        /// </summary>
        internal void ResetLocked()
        {
            Debug.Assert(_lock.IsHeldByCurrentThread);
            ThrowIfDisposed();
            _memory.ThrowIfDisposed();
            Span<ulong> root = _memory.DangerousTable(_rootMfn);
            bool changed = false;
            for (int i = 0; i < root.Length; i++)
            {
                ulong old = Volatile.Read(ref root[i]);
                if (old == 0)
                {
                    continue;
                }

                Volatile.Write(ref root[i], 0);
                changed = true;
                ulong child = (old & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if ((old & EptEntry.RwxMask) != 0 && (old & EptEntry.SuperPageBit) == 0 && _tables.Contains(child))
                {
                    RetireSubtree(child, _levels - 1);
                }
            }

            Volatile.Write(ref _hot.MaxMappedPfn, 0);
            Volatile.Write(ref _hot.MaxPublishedPfn, 0);
            Volatile.Write(ref _hot.MaxLowerPending, 0);
            Volatile.Write(ref _hot.PodEntryCount, 0);
            if (changed)
            {
                BumpTlbGeneration();
            }

            ReclaimRetiredNow();
        }
    }
}

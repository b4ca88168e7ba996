// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Hooks for FastEpt.Interop's NativeWalker, which writes this p2m's tables with the native
    // twin (native/include/fastept.h) instead of SetEntryLocked. The native writer follows the
    // same protocol; these keep the p2m's bookkeeping (owned tables, retirement, PoD count,
    // max_mapped_pfn) coherent with what it did. Nothing here changes public behaviour.
    public sealed unsafe partial class P2m
    {
        /// <summary>True once <see cref="Dispose"/> has started.</summary>
        internal bool IsDisposed => _disposed;

        /// <summary>
        /// Takes the writer lock for an external writer, as <see cref="SetEntry"/> does; throws
        /// <see cref="ObjectDisposedException"/> (with the lock released) when the p2m is disposed.
        /// </summary>
        internal OrderedLock.Scope EnterWriter()
        {
            ThrowIfDisposed();
            OrderedLock.Scope scope = _lock.Enter();
            if (_disposed)
            {
                scope.Dispose();
                ThrowHelper.ThrowObjectDisposedException(this);
            }

            return scope;
        }

        /// <summary>
        /// Whether <see cref="SetEntry"/> with these (validated) arguments writes a valid entry,
        /// i.e. whether it raises <see cref="MaxMappedPfn"/> before publishing (SetEntryLocked's rule).
        /// </summary>
        internal bool WritesValidEntry(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access)
            => IsValid(BuildLeaf(gfn, mfn, (int)order, type, access));

        /// <summary>
        /// Records what an external writer did after it published its entry, as SetEntryLocked
        /// does for its own: <paramref name="linked"/> table frames are now owned, the unlinked
        /// subtree rooted at <paramref name="retiredTable"/> (a table at <paramref name="retiredLevel"/>;
        /// <see cref="Mfn.Invalid"/> for none) goes to epoch-based reclamation, and
        /// <paramref name="podDelta"/> is added to <see cref="PodEntryCount"/>; every <see cref="SoftTlb"/>
        /// over this p2m is invalidated (it may have replaced a present entry). Writer lock held.
        /// </summary>
        internal void CompleteExternalSet(ReadOnlySpan<ulong> linked, ulong retiredTable, int retiredLevel, long podDelta)
        {
            Debug.Assert(_lock.IsHeldByCurrentThread);
            // The native writer does not say what it replaced: flush the software TLBs always.
            BumpTlbGeneration();
            foreach (ulong f in linked)
            {
                _tables.Add(f);
            }

            if (podDelta != 0)
            {
                Interlocked.Add(ref _podEntryCount, podDelta);
            }

            if (retiredTable != Mfn.Invalid && retiredLevel >= 1)
            {
                RetireSubtree(retiredTable, retiredLevel);
            }

            TryReclaimLocked();
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Threading;
using FastEpt.Interop.Internal;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    // The writes: SetEntry (under the p2m's writer lock, or this walker's own) with its frame
    // pool and error mapping, and ReclaimRetired for memory-bound walkers.
    public sealed unsafe partial class NativeWalker
    {
        /// <summary>
        /// Maps (or, with <see cref="P2mType.Invalid"/>, removes) the 2^order frames at
        /// <paramref name="gfn"/> with the native writer, with the semantics of
        /// <see cref="FastEpt.P2m.SetEntry"/>. New tables come from the host memory's allocator;
        /// a replaced subtree is retired: on a p2m-bound walker through the p2m's own epoch-based
        /// reclamation, on a memory-bound walker until <see cref="ReclaimRetired"/>.
        /// </summary>
        /// <param name="gfn">First guest frame; aligned to <paramref name="order"/>.</param>
        /// <param name="mfn">First host frame, aligned to <paramref name="order"/>; <see cref="Mfn.Invalid"/>
        /// for removal, populate-on-demand, paging and MMIO types.</param>
        /// <param name="order">4K, 2M or 1G (1G only with <see cref="P2mOptions.Support1G"/>).</param>
        /// <param name="type">The p2m type.</param>
        /// <param name="access">The p2m access.</param>
        /// <param name="suppressVe">The suppress-#VE bit: inherited from the replaced entry by default.</param>
        /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range or enum (nothing changed).</exception>
        /// <exception cref="ArgumentException">Misaligned <paramref name="gfn"/>/<paramref name="mfn"/>, or an access that
        /// would misconfigure (nothing changed).</exception>
        /// <exception cref="NotSupportedException">The options carry a custom <see cref="P2mOptions.EmtPolicy"/> or
        /// <see cref="P2mOptions.MmioReadOnly"/>: the native library implements only the default memory-type policy.</exception>
        /// <exception cref="InsufficientMemoryException">Host memory ran out for new tables; nothing changed.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>
        /// On a p2m-bound walker the p2m's writer lock is held throughout, <see cref="FastEpt.P2m.MaxMappedPfn"/>
        /// is raised before the entry is published (and restored if the call fails), new tables join
        /// the p2m's <see cref="FastEpt.P2m.TableFrameCount"/> and the populate-on-demand change is
        /// added to <see cref="FastEpt.P2m.PodEntryCount"/>, exactly as a managed write would.
        /// </remarks>
        public void SetEntry(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe = SuppressVe.Inherit)
        {
            ThrowIfDisposed();
            if (_customMemoryTypes)
            {
                throw new NotSupportedException("The native library implements only the default memory-type policy; SetEntry is not supported when P2mOptions.EmtPolicy or P2mOptions.MmioReadOnly is set.");
            }

            if (_p2m is not null)
            {
                SetEntryBound(_p2m, gfn, mfn, order, type, access, suppressVe);
            }
            else
            {
                SetEntryUnbound(gfn, mfn, order, type, access, suppressVe);
            }
        }

        /// <summary>
        /// Returns to host memory the table frames of every subtree that this memory-bound walker's
        /// <see cref="SetEntry"/> unlinked (frames that are no longer allocated are skipped).
        /// Call it only when no translation can be in flight in those tables, on any thread.
        /// </summary>
        /// <returns>The number of frames freed.</returns>
        /// <exception cref="InvalidOperationException">The walker is bound to a p2m, whose own reclamation
        /// (<see cref="FastEpt.P2m.Reclaim"/>) frees retired tables.</exception>
        /// <exception cref="ObjectDisposedException">The host memory was disposed.</exception>
        public long ReclaimRetired()
        {
            if (_retired is null || _writeLock is null)
            {
                throw new InvalidOperationException("This walker is bound to a P2m: retired tables are freed by the p2m's epoch-based reclamation (P2m.Reclaim).");
            }

            lock (_writeLock)
            {
                ThrowIfDisposed();
                long freed = 0;
                ulong* small = stackalloc ulong[64];
                foreach ((ulong table, uint level) in _retired)
                {
                    ulong count;
                    fixed (fastept_walker* w = &_walker)
                    {
                        count = fastept_collect_tables(w, table, level, small, 64);
                    }

                    ulong[]? large = null;
                    if (count > 64)
                    {
                        large = new ulong[count];
                        fixed (fastept_walker* w = &_walker)
                        fixed (ulong* l = large)
                        {
                            count = Math.Min(count, fastept_collect_tables(w, table, level, l, (ulong)large.Length));
                        }
                    }

                    for (ulong i = 0; i < count; i++)
                    {
                        ulong frame = large is not null ? large[i] : small[i];
                        if (frame < (ulong)_memory.FrameCount && _memory.IsAllocated(frame))
                        {
                            _memory.FreeFrame(frame);
                            freed++;
                        }
                    }
                }

                _retired.Clear();
                return freed;
            }
        }

        private void SetEntryBound(P2m p2m, ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            // The native library's own checks (fastept_check_set), before any lock: it also says
            // up to which GFN a valid entry raises max_mapped_pfn.
            ulong last = CheckSet(gfn, mfn, order, type, access, suppressVe);
            using NativeAccess.WriterScope scope = NativeAccess.EnterWriter(p2m, gfn, order);
            bool raised = false;
            bool completed = false;
            try
            {
                // As SetEntryLocked: raised before the entry is published, so a reader that finds
                // the entry never finds max_mapped_pfn below it; lowered again if the call fails.
                if (last != FASTEPT_INVALID_MFN)
                {
                    NativeAccess.RaiseMaxMappedPfn(p2m, last);
                    raised = true;
                }

                fastept_walker w = _walker;
                w.max_mapped_pfn = p2m.MaxMappedPfn;
                ulong* pool = stackalloc ulong[WorstCasePool];
                int pooled = 0;
                int used = 0;
                try
                {
                    fastept_set_result result = RunSet(&w, pool, ref pooled, gfn, mfn, order, type, access, suppressVe);
                    used = (int)result.frames_used;
                    NativeAccess.CompleteExternalSet(p2m, new ReadOnlySpan<ulong>(pool, used), result.retired_table, (int)result.retired_level, result.pod_delta);
                    completed = true;
                }
                finally
                {
                    FreePool(pool, used, pooled);
                }
            }
            finally
            {
                if (raised)
                {
                    if (completed)
                    {
                        NativeAccess.NotePublished(p2m, last);
                    }
                    else
                    {
                        NativeAccess.FailedSet(p2m);
                    }
                }
            }
        }

        private void SetEntryUnbound(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            // The native library's own checks (fastept_check_set), mapped to the exceptions
            // SetEntry documents; nothing is locked or changed when they refuse.
            CheckSet(gfn, mfn, order, type, access, suppressVe);

            Lock writeLock = _writeLock!;
            lock (writeLock)
            {
                ThrowIfDisposed();
                ulong* pool = stackalloc ulong[WorstCasePool];
                int pooled = 0;
                int used = 0;
                try
                {
                    fastept_set_result result;
                    fixed (fastept_walker* w = &_walker)
                    {
                        result = RunSet(w, pool, ref pooled, gfn, mfn, order, type, access, suppressVe);
                    }

                    used = (int)result.frames_used;
                    if (result.retired_table != FASTEPT_INVALID_MFN && result.retired_level != 0)
                    {
                        _retired!.Add((result.retired_table, result.retired_level));
                    }
                }
                finally
                {
                    FreePool(pool, used, pooled);
                }
            }
        }

        // Runs fastept_set_entry with a pool of `levels` frames (enough for any new chain), and
        // once more with the worst case if that was too few. `pooled` tracks what was allocated
        // so the caller frees the unused tail whatever happens.
        private fastept_set_result RunSet(fastept_walker* w, ulong* pool, ref int pooled, ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            pooled = Refill(pool, pooled, _levels);
            fastept_set_result result;
            int rc;
            while (true)
            {
                rc = fastept_set_entry(w, pool, (uint)pooled, gfn, mfn, (uint)order, (uint)type, (uint)access, (uint)suppressVe, &result);
                if (rc != FASTEPT_ERR_NO_FRAMES || pooled == WorstCasePool)
                {
                    break;
                }

                int before = pooled;
                pooled = Refill(pool, pooled, WorstCasePool);
                if (pooled == before)
                {
                    break;      // host memory is exhausted
                }
            }

            if (rc != FASTEPT_OK)
            {
                ThrowForNativeError(rc);
            }

            if (result.frames_used > (uint)pooled)
            {
                throw new InvalidOperationException($"fastept_set_entry reported {result.frames_used} frames used from a pool of {pooled}.");
            }

            return result;
        }

        private int Refill(ulong* pool, int count, int target)
        {
            while (count < target && _memory.TryAllocateFrame(out ulong frame))
            {
                pool[count++] = frame;
            }

            return count;
        }

        private void FreePool(ulong* pool, int used, int pooled)
        {
            for (int i = used; i < pooled; i++)
            {
                _memory.FreeFrame(pool[i]);
            }
        }

        // Runs fastept_check_set on this walker's fields and throws what SetEntry documents for
        // the status and argument it reports; returns the GFN a valid entry raises
        // max_mapped_pfn to, or FASTEPT_INVALID_MFN when the write stores a not-valid entry.
        private ulong CheckSet(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            uint argument;
            ulong raisesTo;
            int rc;
            fixed (fastept_walker* w = &_walker)
            {
                rc = fastept_check_set(w, gfn, mfn, (uint)order, (uint)type, (uint)access, (uint)suppressVe, &argument, &raisesTo);
            }

            if (rc != FASTEPT_OK)
            {
                ThrowForRefusedArgument(rc, argument, gfn, mfn, order, type, access, suppressVe);
            }

            return raisesTo;
        }

        // FASTEPT_ERR_RANGE: ArgumentOutOfRangeException; FASTEPT_ERR_ALIGN and
        // FASTEPT_ERR_PERMISSION: ArgumentException; each names the argument the library named.
        private static void ThrowForRefusedArgument(int rc, uint argument, ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            (string name, object value) = argument switch
            {
                FASTEPT_ARG_GFN => (nameof(gfn), (object)$"0x{gfn:X}"),
                FASTEPT_ARG_MFN => (nameof(mfn), mfn == Mfn.Invalid ? "INVALID" : $"0x{mfn:X}"),
                FASTEPT_ARG_ORDER => (nameof(order), order),
                FASTEPT_ARG_TYPE => (nameof(type), type),
                FASTEPT_ARG_ACCESS => (nameof(access), access),
                FASTEPT_ARG_SUPPRESS_VE => (nameof(suppressVe), suppressVe),
                _ => throw new InvalidOperationException($"fastept_check_set refused ({rc}) without naming an argument ({argument})."),
            };
            string context = $"type {type}, order {(int)order}, access {access}";
            switch (rc)
            {
                case FASTEPT_ERR_RANGE:
                    ThrowHelper.ThrowArgumentOutOfRangeException(name, value, $"The native library refused {name} ({context}): outside its range or enum, or not allowed for this type (FASTEPT_ERR_RANGE).");
                    break;
                case FASTEPT_ERR_ALIGN:
                    ThrowHelper.ThrowArgumentException(name, $"The native library refused {name} {value}: not aligned to order {(int)order} (FASTEPT_ERR_ALIGN).");
                    break;
                case FASTEPT_ERR_PERMISSION:
                    ThrowHelper.ThrowArgumentException(name, $"The native library refused {name} ({context}): the entry would be an EPT misconfiguration on this CPU, write without read or unsupported execute-only (FASTEPT_ERR_PERMISSION).");
                    break;
                default:
                    throw new InvalidOperationException($"fastept_check_set returned the unknown code {rc}.");
            }
        }

        // What fastept_set_entry can still refuse once fastept_check_set accepted the arguments.
        private static void ThrowForNativeError(int rc)
        {
            switch (rc)
            {
                case FASTEPT_ERR_NO_FRAMES:
                    ThrowHelper.ThrowInsufficientMemoryException_frames();
                    break;
                case FASTEPT_ERR_RANGE:
                    throw new InvalidOperationException("fastept_set_entry refused a pool frame or the walker (FASTEPT_ERR_RANGE) after fastept_check_set accepted the arguments.");
                default:
                    throw new InvalidOperationException($"fastept_set_entry returned {rc} after fastept_check_set accepted the arguments.");
            }
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Numerics;
using FastEpt.Internal;

namespace FastEpt
{
    // Log-dirty tracking end to end (docs/model/p2m.md §3.7): a global type change marks the p2m lazily, a
    // walk misconfigures on a marked path (HandleEptMisconfig resolves it), a write to a
    // log-dirty page faults, the fault handler marks the GFN dirty and makes it RamRw again.
    public sealed partial class Domain
    {
        private const int DirtyChunkBits = 15;                 // 32768 GFNs (4 KiB of bits) per chunk

        // Marking is lock-free (write faults of different GFNs mark in parallel): a chunk is
        // created once, bits are set with atomic OR and harvested with atomic exchange, so a mark
        // racing a harvest lands in this harvest or the next, never in neither. The lock
        // serialises harvests and the clearing on enable.
        private readonly OrderedLock _dirtyLock = new(OrderedLock.DirtyLogRank, "dirty log");
        private readonly ConcurrentDictionary<ulong, ulong[]> _dirty = new();
        // The count of marked GFNs, spread over padded counters by thread-id class so that write
        // faults on different cores do not bounce one cache line; the count is their sum (a
        // harvest subtracts what it took from its own counter, so one may go negative).
        private const int CountSlots = 16, CountStride = 16;   // 16 longs = 128 bytes apart
        private readonly long[] _dirtyCounts = new long[(CountSlots + 1) * CountStride];
        private volatile bool _logDirty;

        /// <summary>True between <see cref="EnableLogDirty"/> and <see cref="DisableLogDirty"/>.</summary>
        public bool LogDirtyEnabled => _logDirty;

        /// <summary>GFNs marked dirty and not yet harvested.</summary>
        public long DirtyPageCount => DirtyCountSum();

        /// <summary>
        /// Starts log-dirty mode (live-migration style): the dirty log is cleared and every RamRw
        /// page of the host p2m and of every active view becomes RamLogDirty, lazily, in O(1)
        /// per p2m (<see cref="P2m.ChangeTypeGlobal"/>). From then on the first write to a page
        /// faults, marks it dirty and makes it writable again.
        /// </summary>
        /// <exception cref="InvalidOperationException">Log-dirty mode is already on.</exception>
        public void EnableLogDirty()
        {
            ThrowIfDisposed();
            if (_logDirty)
            {
                throw new InvalidOperationException("Log-dirty mode is already on.");
            }

            using (_dirtyLock.Enter())
            {
                _dirty.Clear();
                for (int i = 1; i <= CountSlots; i++)
                {
                    Interlocked.Exchange(ref _dirtyCounts[i * CountStride], 0);
                }

            }

            _logDirty = true;
            ChangeTypeGlobalAll(P2mType.RamRw, P2mType.RamLogDirty);
        }

        /// <summary>Ends log-dirty mode: log-dirty pages become RamRw again (lazily). The dirty log is kept for a last harvest.</summary>
        /// <exception cref="InvalidOperationException">Log-dirty mode is off.</exception>
        public void DisableLogDirty()
        {
            ThrowIfDisposed();
            if (!_logDirty)
            {
                throw new InvalidOperationException("Log-dirty mode is off.");
            }

            _logDirty = false;
            ChangeTypeGlobalAll(P2mType.RamLogDirty, P2mType.RamRw);
        }

        /// <summary>
        /// Records that <paramref name="gfn"/> was written (Xen's paging_mark_dirty). The fault
        /// handler calls it for log-dirty writes; an embedder that writes guest memory behind the
        /// p2m's back (DMA, a device model) calls it too. Does nothing when log-dirty mode is off.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gfn"/> is beyond the guest-physical width.</exception>
        public void MarkDirty(ulong gfn)
        {
            if (gfn >= HostP2m.GpaLimit >> EptEntry.PageBits)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(gfn), gfn, "The GFN is beyond the guest-physical width.");
            }

            if (!_logDirty)
            {
                return;
            }

            if (!_dirty.TryGetValue(gfn >> DirtyChunkBits, out ulong[]? bits))
            {
                bits = _dirty.GetOrAdd(gfn >> DirtyChunkBits, static _ => new ulong[(1 << DirtyChunkBits) / 64]);
            }

            int i = (int)(gfn & ((1UL << DirtyChunkBits) - 1));
            ulong bit = 1UL << (i & 63);
            if ((Volatile.Read(ref bits[i >> 6]) & bit) == 0 && (Interlocked.Or(ref bits[i >> 6], bit) & bit) == 0)
            {
                Interlocked.Increment(ref _dirtyCounts[CountIndex()]);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int CountIndex() => ((Environment.CurrentManagedThreadId & (CountSlots - 1)) + 1) * CountStride;

        private long DirtyCountSum()
        {
            long total = 0;
            for (int i = 1; i <= CountSlots; i++)
            {
                total += Volatile.Read(ref _dirtyCounts[i * CountStride]);
            }

            return total;
        }

        /// <summary>
        /// Returns the GFNs written since the last harvest, in ascending order, and clears the log
        /// (Xen's log-dirty "clean" operation). While log-dirty mode is on, the pages are made
        /// log-dirty again (lazily), so their next write is caught for the next round.
        /// </summary>
        public ulong[] HarvestDirty()
        {
            ThrowIfDisposed();
            ulong[] result;
            using (_dirtyLock.Enter())
            {
                var list = new List<ulong>((int)Math.Clamp(DirtyCountSum(), 0, int.MaxValue));
                var chunks = new List<ulong>(_dirty.Keys);
                chunks.Sort();
                foreach (ulong chunk in chunks)
                {
                    ulong[] bits = _dirty[chunk];
                    for (int w = 0; w < bits.Length; w++)
                    {
                        if (Volatile.Read(ref bits[w]) == 0)
                        {
                            continue;
                        }

                        for (ulong word = Interlocked.Exchange(ref bits[w], 0); word != 0; word &= word - 1)
                        {
                            list.Add((chunk << DirtyChunkBits) | (uint)((w << 6) + BitOperations.TrailingZeroCount(word)));
                        }
                    }
                }

                Interlocked.Add(ref _dirtyCounts[CountIndex()], -list.Count);
                result = list.ToArray();
            }

            if (_logDirty)
            {
                ChangeTypeGlobalAll(P2mType.RamRw, P2mType.RamLogDirty);
            }

            return result;
        }

        /// <summary>
        /// Handles an EPT misconfiguration exit of <paramref name="vcpu"/> at <paramref name="gpa"/>
        /// (Xen's ept_handle_misconfig): the vCPU's current view resolves the marked path
        /// (<see cref="P2m.ResolveMisconfig"/>). Handled when something was rewritten, or when
        /// nothing was but another vCPU fixed a path since this vCPU last asked (the spurious
        /// flag); otherwise the misconfiguration is real and the domain is crashed.
        /// </summary>
        /// <returns><see cref="FaultOutcome.Retry"/> when handled; <see cref="FaultOutcome.Unhandled"/> when the domain was crashed.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="vcpu"/> is null.</exception>
        /// <exception cref="ArgumentException">The vCPU belongs to another domain.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gpa"/> is beyond the guest-physical width.</exception>
        public FaultOutcome HandleEptMisconfig(Vcpu vcpu, ulong gpa)
        {
            CheckVcpu(vcpu);
            if (gpa >= HostP2m.GpaLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gpa(gpa, HostP2m.AddressBits);
            }

            ThrowIfDisposed();
            if (IsCrashed)
            {
                return FaultOutcome.Unhandled;
            }

            bool spurious = vcpu.TakeSpuriousMisconfig();
            bool fixedSomething;
            try
            {
                fixedSomething = Altp2m.ViewLocked(vcpu.View).ResolveMisconfig(gpa >> EptEntry.PageBits);
            }
            catch (InsufficientMemoryException)
            {
                Crash($"EPT misconfiguration at GPA 0x{gpa:X}: no frame to split a marked superpage.");
                return FaultOutcome.Unhandled;
            }

            if (fixedSomething)
            {
                foreach (Vcpu v in _vcpus)
                {
                    v.NoteSpuriousMisconfig();
                }

                return FaultOutcome.Retry;
            }

            if (spurious)
            {
                return FaultOutcome.Retry;
            }

            Crash($"EPT misconfiguration at GPA 0x{gpa:X} that no recalculation explains.");
            return FaultOutcome.Unhandled;
        }

        private void Crash(string reason) => Interlocked.CompareExchange(ref _crashReason, reason, null);

        private void ChangeTypeGlobalAll(P2mType from, P2mType to)
        {
            HostP2m.ChangeTypeGlobal(from, to);
            for (int v = 1; v < Altp2m.ViewCount; v++)
            {
                if (Altp2m.IsActive(v))
                {
                    Altp2m.View(v).ChangeTypeGlobal(from, to);
                }
            }
        }
    }
}

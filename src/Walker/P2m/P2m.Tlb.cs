// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Coherence with the software TLBs (SoftTlb, LinearTlb): the single-context INVEPT of this
    // p2m is a generation counter plus a shootdown of every attached TLB. Every writer that
    // replaces a present entry (remap, restriction, removal, split, merge, type change) bumps the
    // generation after its publishing compare-exchange and then sets each attached TLB's stale
    // flag, before it returns; a TLB whose flag is set misses, compares the generation and drops
    // everything it cached from this p2m. Filling a hole needs no bump: a TLB never caches a
    // failed walk.
    public sealed partial class P2m
    {
        // Only ever increases (Interlocked.Increment).

        // Every p2m ever created and still alive, for all-context invalidation. Weak: a p2m
        // nobody references can have no TLB that looks up through it.
        private static readonly List<WeakReference<P2m>> s_live = new();
        private static readonly OrderedLock s_liveLock = new(OrderedLock.TlbRegistryRank, "software TLB registry");
        private static int s_pruneAt = 64;

        // Called by the constructor.
        private static void RegisterForTlbInvalidation(P2m p2m)
        {
            using (s_liveLock.Enter())
            {
                if (s_live.Count >= s_pruneAt)
                {
                    s_live.RemoveAll(w => !w.TryGetTarget(out _));
                    s_pruneAt = Math.Max(64, s_live.Count * 2);
                }

                s_live.Add(new WeakReference<P2m>(p2m));
            }
        }

        /// <summary>
        /// All-context INVEPT (<see cref="SoftTlb.InvalidateAll"/>): bumps the TLB generation of
        /// every live p2m before it returns.
        /// </summary>
        internal static void InvalidateAllTlbs()
        {
            using (s_liveLock.Enter())
            {
                foreach (WeakReference<P2m> w in s_live)
                {
                    if (w.TryGetTarget(out P2m? p2m))
                    {
                        p2m.BumpTlbGeneration();
                    }
                }
            }
        }

        /// <summary>
        /// Makes every translation a <see cref="SoftTlb"/> cached from this p2m unreachable, as a
        /// single-context INVEPT does: a lookup that starts after this call returns walks the
        /// live tables again. <see cref="SetEntry"/> does this by itself for every change that
        /// removes, remaps or restricts a present entry; call it after changing the tables behind
        /// the p2m's back (for example through <see cref="HostMemory.WriteUInt64"/>).
        /// </summary>
        /// <exception cref="ObjectDisposedException">The p2m was disposed.</exception>
        /// <remarks>Lock-free, O(1): one atomic increment; each TLB drops its entries on its next lookup.</remarks>
        public void InvalidateTlbs()
        {
            ThrowIfDisposed();
            BumpTlbGeneration();
        }

        /// <summary>The single-context TLB generation: changes whenever cached translations may have become stale.</summary>
        internal long TlbGeneration
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Volatile.Read(ref _hot.TlbGeneration);
        }

        /// <summary>The object holding <see cref="TlbGeneration"/>: a TLB keeps it and reads the generation with one load less per lookup.</summary>
        internal HotState TlbHotState => _hot;

        /// <summary>Whether walks set accessed/dirty flags (<see cref="P2mOptions.AccessDirty"/> at creation).</summary>
        internal bool AccessDirtyEnabled => _accessDirty;

        // Called after the store that made an old translation stale has been published (a full
        // fence), so a reader that sees the new generation also sees the new tables; then every
        // attached TLB is told (ITlbShootdown), so its hit path needs only a look at its own flag.
        // With no TLB attached there is nothing to invalidate, and the bump (a write every region
        // writer would make to one shared line) is skipped. Ordering: the writer's publish (a full
        // fence) comes before its read of TlbAttached and of the TLB list; AttachTlb (a full
        // fence) comes after the TLB joins the list and before the TLB's first generation read and
        // fill. A writer that read 0, or a list without the TLB, published before the attach, so
        // every fill the TLB makes already sees the new entry.
        private void BumpTlbGeneration()
        {
            if (Volatile.Read(ref _hot.TlbAttached) != 0)
            {
                Interlocked.Increment(ref _hot.TlbGeneration);
                foreach (WeakReference<ITlbShootdown> w in Volatile.Read(ref _tlbs))
                {
                    if (w.TryGetTarget(out ITlbShootdown? tlb))
                    {
                        tlb.Shootdown();
                    }
                }
            }
        }

        /// <summary>
        /// Called by a TLB before it first reads the generation: from now on every write that must
        /// invalidate bumps it and calls <see cref="ITlbShootdown.Shootdown"/> on <paramref name="tlb"/>
        /// (held weakly: a TLB nobody references drops out). Attaching twice is harmless.
        /// </summary>
        internal void AttachTlb(ITlbShootdown tlb)
        {
            using (s_liveLock.Enter())
            {
                WeakReference<ITlbShootdown>[] list = _tlbs;
                int live = 0;
                foreach (WeakReference<ITlbShootdown> w in list)
                {
                    if (w.TryGetTarget(out ITlbShootdown? t))
                    {
                        live++;
                        if (ReferenceEquals(t, tlb))
                        {
                            live = -1;
                            break;
                        }
                    }
                }

                if (live >= 0)
                {
                    // Copy on write, dropping TLBs that are gone: writers iterate without a lock.
                    var next = new WeakReference<ITlbShootdown>[live + 1];
                    int n = 0;
                    foreach (WeakReference<ITlbShootdown> w in list)
                    {
                        if (w.TryGetTarget(out _))
                        {
                            next[n++] = w;
                        }
                    }

                    next[n] = new WeakReference<ITlbShootdown>(tlb);
                    Volatile.Write(ref _tlbs, next);
                }
            }

            Interlocked.Exchange(ref _hot.TlbAttached, 1);   // a full fence either way
        }

        // The TLBs to tell about an invalidation (copy on write under s_liveLock).
        private WeakReference<ITlbShootdown>[] _tlbs = [];

        /// <summary>Entries in the list of attached TLBs, collected ones included until the next attach prunes them (for tests).</summary>
        internal int AttachedTlbCount => Volatile.Read(ref _tlbs).Length;

        /// <summary>
        /// For a TLB fill after a successful <see cref="Translate"/>: re-reads the path to the leaf
        /// at <paramref name="level"/> that maps <paramref name="gpa"/> to the page at
        /// <paramref name="hpaBase"/> and returns the r/w/x bits ANDed over that path (bits 0-2).
        /// Never sets accessed/dirty flags. Returns false when the path no longer ends in that
        /// leaf (a writer raced the walk; its generation bump then flushes the TLB anyway).
        /// The walk is the software walk of <see cref="GetEntry"/> (Descend), stopped at <paramref name="level"/>.
        /// </summary>
        internal bool TryGetTlbRights(ulong gpa, int level, ulong hpaBase, out uint rights)
        {
            rights = 0;
            if (_disposed || gpa >= _gpaLimit || level < 1 || level > 3)
            {
                return false;
            }

            _memory.ThrowIfDisposed();
            long previous = Epoch.Enter(_readerTag, out Epoch.ReaderSlot slot);
            ulong pte = Descend(gpa >> EptEntry.PageBits, level, out int stopped, out ulong r, out _);
            Epoch.Exit(slot, previous);
            ulong offsetMask = (1UL << ShiftOf(level)) - 1;
            bool found = stopped == level
                         && (level == 1 || (pte & EptEntry.SuperPageBit) != 0)
                         && (pte & EptEntry.MfnMask & ~offsetMask) == hpaBase;
            rights = (uint)(r & EptEntry.RwxMask);
            return found;
        }
    }

    /// <summary>
    /// A software TLB that a p2m tells about invalidations (the IPI of a TLB shootdown): the
    /// call sets a flag the TLB's hit path reads, so a hit needs no load of the p2m's generation.
    /// Called by writers on any thread, concurrently with the TLB's own lookups and each other.
    /// </summary>
    internal interface ITlbShootdown
    {
        /// <summary>Marks the TLB stale: its next lookup misses and compares the generations.</summary>
        void Shootdown();
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed partial class P2m
    {
        /// <summary>
        /// Looks up what <paramref name="gfn"/> maps to (Xen's <c>get_entry</c>, docs/model/p2m.md §3.5).
        /// A hole reads as <see cref="Mfn.Invalid"/>/<see cref="P2mType.MmioDm"/>/<see cref="P2mAccess.N"/>
        /// with the order of the level where the walk stopped. A populate-on-demand entry reads
        /// as <see cref="P2mType.PopulateOnDemand"/>; with <see cref="P2mQuery.Alloc"/> it is
        /// populated from <see cref="Pod"/> first and the new RAM entry is returned (if the cache
        /// is empty the result is a hole, as in Xen).
        /// </summary>
        /// <param name="gfn">Guest frame number, below 2^(AddressBits-12).</param>
        /// <param name="query">Whether populate-on-demand entries may be populated.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gfn"/> or <paramref name="query"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <remarks>Without <see cref="P2mQuery.Alloc"/>: lock-free, allocation-free, never changes a
        /// table. Populating takes the write locks of the GFN's 2 MiB region (the p2m's exclusive lock
        /// for a 1G entry); racing populators of one GFN allocate once.</remarks>
        public P2mEntry GetEntry(ulong gfn, P2mQuery query = P2mQuery.None)
        {
            if (gfn >= _gfnLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gfn(gfn, _addressBits);
            }

            if ((uint)query > (uint)P2mQuery.Alloc)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(query), query, "Unknown P2mQuery value.");
            }

            ThrowIfDisposed();
            _memory.ThrowIfDisposed();
            // A 1G PoD entry takes at most three rounds: 1G -> 2M PoD -> (4K PoD ->) RAM.
            for (int round = 0; ; round++)
            {
                long previous = Epoch.Enter(_readerTag, out Epoch.ReaderSlot slot);
                P2mEntry e = Lookup(gfn);
                Epoch.Exit(slot, previous);
                if (e.Type != P2mType.PopulateOnDemand || !e.IsMapped || query == P2mQuery.None)
                {
                    return e;
                }

                if (round == 6 || !Populate(gfn, e.Order))
                {
                    return P2mEntry.Hole(e.Order);
                }
            }
        }

        // Xen's get_entry over the software walk; a recalc mark on any entry of the path counts
        // (only marks this p2m made, see _marked).
        private P2mEntry Lookup(ulong gfn)
        {
            ulong max = MaxMappedPfn;
            if (gfn > max)
            {
                return P2mEntry.Hole(HoleOrderBeyond(gfn, max));
            }

            ulong pte = Descend(gfn, 1, out int level, out _, out ulong marks);
            if (IsTablePointer(pte, level))
            {
                return P2mEntry.Hole(EptEntry.TableOrder * (level - 1));    // corrupt pointer: never followed
            }

            P2mEntry e = DecodeLeaf(pte, gfn, level);
            return (marks & EptEntry.RecalcBit) == 0 || !e.IsMapped || !_marked ? e : e.WithType(RecalcType(true, e.Type, gfn));
        }

        // The software walk, shared by GetEntry, the paging-write check and the TLB fill: from the
        // root down to `stopLevel` at most, one snapshot per slot, no table change, no A/D update,
        // no misconfiguration check. It follows present non-superpage entries and stops at the
        // first other one; a table pointer whose frame lies outside host memory is never followed
        // (it is returned, at its level, for the caller to tell apart with IsTablePointer). Returns
        // the entry where the walk stopped, at `level`; `rights` is the AND and `marks` the OR of
        // every entry read, that one included. The caller checked that host memory is not disposed.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private ulong Descend(ulong gfn, int stopLevel, out int level, out ulong rights, out ulong marks)
        {
            ulong table = _rootMfn;
            int l = _levels;
            ulong and = ~0UL;
            ulong or = 0;
            while (true)
            {
                ulong pte = Volatile.Read(ref TableSlot(table, gfn, l));
                and &= pte;
                or |= pte;
                ulong next = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if (l == stopLevel || !IsTablePointer(pte, l) || next >= _frameCount)
                {
                    level = l;
                    rights = and;
                    marks = or;
                    return pte;
                }

                table = next;
                l--;
            }
        }

        // A present non-leaf entry: what a walk follows to the next table (bit 7 clear above level 1).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool IsTablePointer(ulong pte, int level)
            => level > 1 && (pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0;

        // A leaf candidate: a PTE, a present superpage, or a not-present entry at any level.
        private P2mEntry DecodeLeaf(ulong pte, ulong gfn, int level)
        {
            int order = EptEntry.TableOrder * (level - 1);
            ulong type = (pte & EptEntry.TypeMask) >> EptEntry.TypeShift;
            ulong access = (pte & EptEntry.AccessMask) >> EptEntry.AccessShift;
            // Not valid, no leaf above 1G, or fields outside their enums (corruption): a hole.
            if (!IsValid(pte) || level > 3 || type > (ulong)P2mType.IoreqServer || access > (ulong)P2mAccess.R_PW)
            {
                return P2mEntry.Hole(order);
            }

            bool sve = (pte & EptEntry.SuppressVeBit) != 0;
            if ((P2mType)type == P2mType.PopulateOnDemand)
            {
                return new P2mEntry(Mfn.Invalid, P2mType.PopulateOnDemand, P2mAccess.N, sve, true, order);
            }

            ulong field = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
            ulong mfn = field == EptEntry.MfnFieldMax ? Mfn.Invalid : field + (gfn & ((1UL << order) - 1));
            return new P2mEntry(mfn, (P2mType)type, (P2mAccess)access, sve, true, order);
        }

        // Xen: beyond max_mapped_pfn, the largest level whose aligned block still lies beyond it.
        private int HoleOrderBeyond(ulong gfn, ulong max)
        {
            for (int level = _levels; level >= 2; level--)
            {
                int order = EptEntry.TableOrder * (level - 1);
                if (order < 64 && ((gfn >> order) << order) > max)
                {
                    return order;
                }
            }

            return 0;
        }
    }
}

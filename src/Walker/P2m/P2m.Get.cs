// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed unsafe partial class P2m
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
        /// table. Populating takes the writer lock; racing populators of one GFN allocate once.</remarks>
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
            byte* b = _memory.Base;
            // A 1G PoD entry takes at most three rounds: 1G -> 2M PoD -> (4K PoD ->) RAM.
            for (int round = 0; ; round++)
            {
                long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
                P2mEntry e = Lookup(b, gfn);
                Epoch.Exit(slot, previous);
                if (e.Type != P2mType.PopulateOnDemand || !e.IsMapped || query == P2mQuery.None)
                {
                    return e;
                }

                if (round == 4 || !Populate(gfn))
                {
                    return P2mEntry.Hole(e.Order);
                }
            }
        }

        // The software walk: one snapshot per slot, no table change.
        private P2mEntry Lookup(byte* b, ulong gfn)
        {
            ulong max = MaxMappedPfn;
            if (gfn > max)
            {
                return P2mEntry.Hole(HoleOrderBeyond(gfn, max));
            }

            ulong table = _rootMfn;
            int level = _levels;
            ulong recalc = 0;       // a recalc mark on any entry of the path (Xen's get_entry); only marks this p2m made count
            while (true)
            {
                ulong pte = Volatile.Read(ref *SlotPointer(b, table, gfn, level));
                int order = EptEntry.TableOrder * (level - 1);
                recalc |= pte;
                if (level > 1 && (pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                {
                    ulong next = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    if (next >= _frameCount)
                    {
                        return P2mEntry.Hole(order);    // corrupt pointer: never followed
                    }

                    table = next;
                    level--;
                    continue;
                }

                P2mEntry e = DecodeLeaf(pte, gfn, level);
                return (recalc & EptEntry.RecalcBit) == 0 || !e.IsMapped || !_marked ? e : e.WithType(RecalcType(true, e.Type, gfn));
            }
        }

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

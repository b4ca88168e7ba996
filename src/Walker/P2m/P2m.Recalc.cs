// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Lazy type recalculation (docs/model/p2m.md §3.7): a type change over a large range marks entries with
    // memory type 7 (a misconfiguration for the CPU) and the recalc bit; GetEntry reports the new
    // type at once, and ResolveMisconfig rewrites a marked path when a walk stumbles on it.
    public sealed partial class P2m
    {
        private volatile bool _globalLogDirty;
        private volatile LogDirtyRange[] _logDirtyRanges = [];
        private volatile bool _marked;          // some entry was ever marked: writers resolve their path first

        /// <summary>
        /// True after <see cref="ChangeTypeGlobal"/> to <see cref="P2mType.RamLogDirty"/> (Xen's
        /// global_logdirty): every changeable entry recalculates as log-dirty.
        /// </summary>
        public bool GlobalLogDirty => _globalLogDirty;

        /// <summary>
        /// Changes every <see cref="P2mType.RamRw"/> entry to <see cref="P2mType.RamLogDirty"/> or
        /// back, in O(1): the root's entries are marked (memory type 7 plus recalc), so the CPU
        /// walk (<see cref="Translate"/>) misconfigures on every marked path until
        /// <see cref="ResolveMisconfig"/> rewrites it, while <see cref="GetEntry"/> reports the new
        /// type immediately (Xen's change_entry_type_global on EPT).
        /// </summary>
        /// <param name="from">The type changed from: RamRw or RamLogDirty.</param>
        /// <param name="to">The other of the two.</param>
        /// <exception cref="ArgumentException">The pair is not RamRw/RamLogDirty in either order (Xen: only changeable types).</exception>
        /// <exception cref="ObjectDisposedException">The p2m was disposed.</exception>
        /// <remarks>Only this p2m changes; a domain's views are changed by their own call. Every
        /// <see cref="SoftTlb"/> over this p2m is invalidated.</remarks>
        public void ChangeTypeGlobal(P2mType from, P2mType to)
        {
            if (!IsChangeable(from) || !IsChangeable(to) || from == to)
            {
                ThrowHelper.ThrowArgumentException(nameof(to), "A global type change goes between RamRw and RamLogDirty.");
            }

            ThrowIfDisposed();
            _memory.ThrowIfDisposed();
            using OrderedLock.Scope s = _lock.Enter();
            _globalLogDirty = to == P2mType.RamLogDirty;
            _marked = true;
            if (MarkTable(_rootMfn, recalc: true))
            {
                BumpTlbGeneration();
            }
        }

        /// <summary>
        /// Rewrites the marked entries on the path to <paramref name="gfn"/> (Xen's
        /// resolve_misconfig): marks on tables are pushed one level down; a marked 4K table has
        /// all its entries recalculated; a marked superpage whose range is partly log-dirty is
        /// split one level at a time until each piece has one type.
        /// </summary>
        /// <returns>True when something was rewritten; false when the path had no mark (a
        /// misconfiguration there is not of FastEpt's making, or another vCPU fixed it first).</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gfn"/> is out of range.</exception>
        /// <exception cref="InsufficientMemoryException">A split needed a table frame and none was free; what was rewritten before stays valid.</exception>
        /// <exception cref="ObjectDisposedException">The p2m was disposed.</exception>
        public bool ResolveMisconfig(ulong gfn)
        {
            if (gfn >= _gfnLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gfn(gfn, _addressBits);
            }

            ThrowIfDisposed();
            using OrderedLock.Scope s = _lock.Enter();
            return ResolveLocked(gfn);
        }

        /// <summary>
        /// Whether the GFN range [<paramref name="first"/>, <paramref name="last"/>] is log-dirty:
        /// 1 all of it, 0 none, -1 partly (Xen's p2m_is_logdirty_range).
        /// </summary>
        internal int LogDirtyState(ulong first, ulong last)
        {
            if (_globalLogDirty)
            {
                return 1;
            }

            bool overlaps = false;
            foreach (LogDirtyRange r in _logDirtyRanges)
            {
                if (r.First <= first && last <= r.Last)
                {
                    return 1;
                }

                overlaps |= r.First <= last && first <= r.Last;
            }

            return overlaps ? -1 : 0;
        }

        internal static bool IsChangeable(P2mType type) => type is P2mType.RamRw or P2mType.RamLogDirty;

        // The type an entry reads as: a changeable type under a recalc mark follows the log-dirty state.
        private P2mType RecalcType(bool recalc, P2mType type, ulong gfn)
            => recalc && IsChangeable(type) ? (LogDirtyState(gfn, gfn) > 0 ? P2mType.RamLogDirty : P2mType.RamRw) : type;

        // Xen's ept_invalidate_emt_subtree: marks every valid present entry of one table with
        // memory type 7 (and recalc when asked). Compare-exchange: a walker may set A/D meanwhile.
        private bool MarkTable(ulong table, bool recalc)
        {
            bool changed = false;
            Span<ulong> slots = _memory.DangerousTable(table);
            for (int j = 0; j < slots.Length; j++)
            {
                while (true)
                {
                    ulong e = Volatile.Read(ref slots[j]);
                    if (!IsValid(e) || (e & EptEntry.RwxMask) == 0
                        || (MemoryType(e) == EptEntry.MemoryTypeFaultMarker && ((e & EptEntry.RecalcBit) != 0 || !recalc)))
                    {
                        break;
                    }

                    ulong marked = e | EptEntry.MemoryTypeMask | (recalc ? EptEntry.RecalcBit : 0);
                    if (Interlocked.CompareExchange(ref slots[j], marked, e) == e)
                    {
                        changed = true;
                        break;
                    }
                }
            }

            return changed;
        }

        private static int MemoryType(ulong pte) => (int)((pte & EptEntry.MemoryTypeMask) >> EptEntry.MemoryTypeShift);

        // Writer lock held. See ResolveMisconfig.
        private bool ResolveLocked(ulong gfn)
        {
            Debug.Assert(_lock.IsHeldByCurrentThread);
            _memory.ThrowIfDisposed();
            ulong table = _rootMfn;
            int level = _levels;
            bool changed = false;
            while (true)
            {
                ref ulong slot = ref TableSlot(table, gfn, level);
                ulong e = Volatile.Read(ref slot);
                if (!IsValid(e) || (e & EptEntry.RwxMask) == 0)
                {
                    return changed;
                }

                bool marked = MemoryType(e) == EptEntry.MemoryTypeFaultMarker;
                if (level > 1 && (e & EptEntry.SuperPageBit) == 0)
                {
                    ulong child = (e & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    if (!_tables.Contains(child))
                    {
                        return changed;     // not a table of ours: never followed
                    }

                    if (marked)
                    {
                        // Push the mark down, then clear it here (children first, so a reader
                        // never finds an unmarked parent over unmarked stale children).
                        MarkTable(child, (e & EptEntry.RecalcBit) != 0);
                        ReplaceSlot(ref slot, e => e & ~(EptEntry.MemoryTypeMask | EptEntry.RecalcBit));
                        changed = true;
                    }

                    table = child;
                    level--;
                    continue;
                }

                if (!marked)
                {
                    return changed;
                }

                if (level == 1)
                {
                    RecalcLeafTable(table, gfn & ~(ulong)(EptEntry.EntriesPerTable - 1));
                    BumpTlbGeneration();
                    return true;
                }

                // A marked superpage: one type for the whole range, or split it one level.
                int order = EptEntry.TableOrder * (level - 1);
                ulong first = gfn & ~((1UL << order) - 1);
                if (TryRebuildLeaf(e, first, order, out ulong rebuilt))
                {
                    ReplaceSlot(ref slot, cur => rebuilt | (cur & (EptEntry.AccessedBit | EptEntry.DirtyBit)));
                    BumpTlbGeneration();
                    return true;
                }

                if (!SplitOneLevel(ref slot, e, level))
                {
                    continue;       // A/D set meanwhile: look again
                }

                changed = true;
                // Continue the walk in the new table (its pointer carries no mark).
            }
        }

        // Replaces the superpage `e` in `slot` by a table of its 512 children (which keep its
        // fields, marks included), published with one compare-exchange. False when the slot
        // changed meanwhile (the walker set A/D): nothing was published.
        private bool SplitOneLevel(ref ulong slot, ulong e, int level)
        {
            List<ulong> built = new();
            ulong top;
            try
            {
                top = BuildSplit(e, level, level - 1, built);
            }
            catch (InsufficientMemoryException)
            {
                FreeAll(built);
                throw;
            }

            foreach (ulong f in built)
            {
                _tables.Add(f);     // owned before reachable, as in SetEntryCore
            }

            if (Interlocked.CompareExchange(ref slot, top, e) != e)
            {
                foreach (ulong f in built)
                {
                    _tables.Remove(f);
                }

                FreeAll(built);
                return false;
            }


            BumpTlbGeneration();
            return true;
        }

        // Rebuilds a marked leaf of `order` at `first` with its recalculated type and a decided
        // memory type; false when it must be split (a partly log-dirty range, or no memory type
        // fits the whole order).
        private bool TryRebuildLeaf(ulong e, ulong first, int order, out ulong rebuilt)
        {
            rebuilt = 0;
            P2mType type = TypeOf(e);
            if ((e & EptEntry.RecalcBit) != 0 && IsChangeable(type))
            {
                int state = LogDirtyState(first, first + (1UL << order) - 1);
                if (state < 0)
                {
                    return false;
                }

                type = state > 0 ? P2mType.RamLogDirty : P2mType.RamRw;
            }

            var access = (P2mAccess)((e & EptEntry.AccessMask) >> EptEntry.AccessShift);
            ulong field = (e & EptEntry.MfnMask) >> EptEntry.MfnShift;
            ulong mfn = field == EptEntry.MfnFieldMax ? Mfn.Invalid : field;
            rebuilt = BuildLeaf(first, mfn, order, type, access) | (e & EptEntry.SuppressVeBit);
            return order == 0 || MemoryType(rebuilt) != EptEntry.MemoryTypeFaultMarker;
        }

        // Level 1: every present entry of the table gets its memory type recomputed, its type
        // recalculated where marked, and its marks cleared (Xen does the whole table at once).
        private void RecalcLeafTable(ulong table, ulong firstGfn)
        {
            Span<ulong> slots = _memory.DangerousTable(table);
            for (int j = 0; j < slots.Length; j++)
            {
                ulong e = Volatile.Read(ref slots[j]);
                if (!IsValid(e) || (e & EptEntry.RwxMask) == 0)
                {
                    continue;
                }

                _ = TryRebuildLeaf(e, firstGfn + (ulong)j, 0, out ulong rebuilt);
                if (MemoryType(e) != EptEntry.MemoryTypeFaultMarker && (e & EptEntry.RecalcBit) == 0)
                {
                    continue;       // unmarked: left as it is
                }

                ReplaceSlot(ref slots[j], cur => rebuilt | (cur & (EptEntry.AccessedBit | EptEntry.DirtyBit)));
            }
        }

        // Compare-exchange loop: the walker's atomic A/D updates are never lost.
        private static void ReplaceSlot(ref ulong slot, Func<ulong, ulong> change)
        {
            while (true)
            {
                ulong cur = Volatile.Read(ref slot);
                if (Interlocked.CompareExchange(ref slot, change(cur), cur) == cur)
                {
                    return;
                }
            }
        }

        private readonly record struct LogDirtyRange(ulong First, ulong Last);
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Preemptible range operations: a type change over [first, last] and relinquishing every
    // mapping. Each keeps a cursor, so a call after Restart continues where the last one stopped;
    // between calls the tables are as consistent as after any SetEntry.
    public sealed partial class P2m
    {
        private RangeCursor _changeCursor;
        private ulong _relinquishCursor;

        /// <summary>
        /// Changes every GFN in [<paramref name="first"/>, <paramref name="last"/>] whose type is
        /// <paramref name="from"/> to <paramref name="to"/>, keeping its frame and access; a
        /// superpage that straddles either end is split so that only the covered part changes.
        /// Between RamRw and RamLogDirty the change is lazy, as Xen's on EPT: the range joins (or
        /// leaves) the log-dirty ranges and its entries are marked for recalculation, a whole
        /// aligned block per mark (<see cref="GetEntry"/> reports the new type at once;
        /// <see cref="ResolveMisconfig"/> rewrites a marked path). Other pairs rewrite the entries.
        /// </summary>
        /// <param name="first">First GFN.</param>
        /// <param name="last">Last GFN (inclusive), at least <paramref name="first"/>.</param>
        /// <param name="from">The type to change.</param>
        /// <param name="to">The new type: a type that keeps a frame (not Invalid, MmioDm, PopulateOnDemand or a paging type).</param>
        /// <param name="preemption">The budget: one preemption point per entry changed or block marked.</param>
        /// <returns><see cref="Progress.Done"/>, or <see cref="Progress.Restart"/>: call again with the
        /// same arguments to continue (other arguments start a new change).</returns>
        /// <exception cref="ArgumentOutOfRangeException">A GFN or type is out of range, or <paramref name="last"/> &lt; <paramref name="first"/>.</exception>
        /// <exception cref="ArgumentException"><paramref name="to"/> cannot replace a mapping in place, or a type is special.</exception>
        /// <exception cref="InsufficientMemoryException">A split found no table frame; what changed before stays changed (call again later).</exception>
        public Progress ChangeTypeRange(ulong first, ulong last, P2mType from, P2mType to, ref Preemption preemption)
        {
            if (last < first || last >= _gfnLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(last), last, "The range must be first..last within the guest-physical width.");
            }

            if ((uint)from > (uint)P2mType.IoreqServer || (uint)to > (uint)P2mType.IoreqServer)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(to), to, "Unknown P2mType value.");
            }

            if (!NeedsFrame(to) || !NeedsFrame(from) || to == P2mType.MapForeign || from == P2mType.MapForeign)
            {
                ThrowHelper.ThrowArgumentException(nameof(to), "A range type change goes between types that keep their frame (RAM, grant, shared, ioreq, broken types).");
            }

            ThrowIfDisposed();
            if (from == to)
            {
                return Progress.Done;
            }

            using OrderedLock.Scope s = _lock.Enter();
            var key = new RangeCursor(true, first, last, from, to, first);
            ulong gfn = _changeCursor.SameCall(key) ? _changeCursor.Next : first;
            bool lazy = IsChangeable(from) && IsChangeable(to);
            if (lazy && gfn == first)
            {
                UpdateLogDirtyRanges(first, last, add: to == P2mType.RamLogDirty);
                _marked = true;
            }

            while (gfn <= last)
            {
                if (preemption.ShouldStop())
                {
                    _changeCursor = key with { Next = gfn };
                    return Progress.Restart;
                }

                ulong next = lazy ? MarkBlock(gfn, last) : ChangeOne(gfn, last, from, to);
                if (next == 0)
                {
                    break;      // wrapped past the top of the GFN space
                }

                gfn = next;
            }

            _changeCursor = default;
            return Progress.Done;
        }

        /// <summary>
        /// Removes every mapping (Xen's relinquish / teardown), one entry per preemption point,
        /// then gives back every table but the root. PoD counts and altp2m propagation follow each
        /// removal as for <see cref="SetEntry"/>. Resumable: call again after
        /// <see cref="Progress.Restart"/>; a later <see cref="SetEntry"/> meanwhile is allowed and
        /// is removed too if the cursor has not passed it.
        /// </summary>
        /// <param name="preemption">The budget: one point per entry removed.</param>
        /// <exception cref="ObjectDisposedException">The p2m was disposed.</exception>
        public Progress Relinquish(ref Preemption preemption)
        {
            ThrowIfDisposed();
            using OrderedLock.Scope s = _lock.Enter();
            ulong gfn = _relinquishCursor;
            while (gfn <= MaxMappedPfn && gfn < _gfnLimit)
            {
                P2mEntry e = GetEntry(gfn);
                ulong size = 1UL << e.Order;
                ulong baseGfn = gfn & ~(size - 1);
                if (e.IsMapped)
                {
                    if (preemption.ShouldStop())
                    {
                        _relinquishCursor = gfn;
                        return Progress.Restart;
                    }

                    SetEntryLocked(baseGfn, Mfn.Invalid, e.Order, P2mType.Invalid, _defaultAccess, FastEpt.SuppressVe.Inherit);
                }

                gfn = baseGfn + size;
                if (gfn == 0)
                {
                    break;
                }
            }

            _relinquishCursor = 0;
            ResetLocked();
            return Progress.Done;
        }

        // Eager change of the entry at `gfn` (or the part of it up to `last`); returns the next GFN.
        private ulong ChangeOne(ulong gfn, ulong last, P2mType from, P2mType to)
        {
            if (_marked)
            {
                // Settle a lazily changed path first: a marked superpage may hold two types.
                ResolveLocked(gfn);
            }

            P2mEntry e = GetEntry(gfn);
            ulong size = 1UL << e.Order;
            ulong baseGfn = gfn & ~(size - 1);
            if (!e.IsMapped || e.Type != from)
            {
                return baseGfn + size;
            }

            // The largest aligned piece inside both the entry and the range (a straddling
            // superpage is split by the write).
            int order = e.Order;
            while (order > 0 && ((gfn & ((1UL << order) - 1)) != 0 || gfn + (1UL << order) - 1 > last))
            {
                order -= EptEntry.TableOrder;
            }

            SetEntryLocked(gfn, e.Mfn, order, to, e.Access, FastEpt.SuppressVe.Inherit);
            return gfn + (1UL << order);
        }

        // Lazy change: marks the largest aligned block at `gfn` inside the range (Xen's
        // change_entry_type_range), splitting a superpage above it that straddles the range.
        // Returns the next GFN.
        private ulong MarkBlock(ulong gfn, ulong last)
        {
            _memory.ThrowIfDisposed();
            int blockLevel = 1;
            while (blockLevel < Math.Min(_levels, 3)
                   && (gfn & ((1UL << (EptEntry.TableOrder * blockLevel)) - 1)) == 0
                   && gfn + (1UL << (EptEntry.TableOrder * blockLevel)) - 1 <= last)
            {
                blockLevel++;
            }

            ulong blockEnd = gfn + (1UL << (EptEntry.TableOrder * (blockLevel - 1)));
            ulong table = _rootMfn;
            int level = _levels;
            while (true)
            {
                ref ulong slot = ref TableSlot(table, gfn, level);
                ulong e = Volatile.Read(ref slot);
                if (!IsValid(e) || (e & EptEntry.RwxMask) == 0)
                {
                    return blockEnd;        // nothing mapped there
                }

                bool leaf = level == 1 || (e & EptEntry.SuperPageBit) != 0;
                if (level == blockLevel)
                {
                    ReplaceSlot(ref slot, static cur => cur | EptEntry.MemoryTypeMask | EptEntry.RecalcBit);
                    BumpTlbGeneration();
                    return blockEnd;
                }

                if (leaf)
                {
                    // A superpage larger than the block: split it one level (children keep its
                    // marks) and go on down; the pieces outside the range keep their type.
                    SplitOneLevel(ref slot, e, level);
                    continue;
                }

                ulong child = (e & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if (!_tables.Contains(child))
                {
                    return blockEnd;
                }

                if (MemoryType(e) == EptEntry.MemoryTypeFaultMarker)
                {
                    // Already marked above: push that mark down first so this block's mark is
                    // not lost when the parent is resolved later.
                    MarkTable(child, (e & EptEntry.RecalcBit) != 0);
                    ReplaceSlot(ref slot, static cur => cur & ~(EptEntry.MemoryTypeMask | EptEntry.RecalcBit));
                }

                table = child;
                level--;
            }
        }

        private void UpdateLogDirtyRanges(ulong first, ulong last, bool add)
        {
            var list = new List<LogDirtyRange>();
            foreach (LogDirtyRange r in _logDirtyRanges)
            {
                if (r.Last < first || r.First > last)
                {
                    list.Add(r);
                    continue;
                }

                // Keep the parts outside [first, last]; with `add` they merge into it below.
                if (r.First < first)
                {
                    list.Add(new LogDirtyRange(r.First, first - 1));
                }

                if (r.Last > last)
                {
                    list.Add(new LogDirtyRange(last + 1, r.Last));
                }
            }

            if (add)
            {
                list.Add(new LogDirtyRange(first, last));
            }

            list.Sort(static (x, y) => x.First.CompareTo(y.First));
            var merged = new List<LogDirtyRange>();
            foreach (LogDirtyRange r in list)
            {
                if (merged.Count > 0 && merged[^1].Last != ulong.MaxValue && merged[^1].Last + 1 >= r.First)
                {
                    merged[^1] = new LogDirtyRange(merged[^1].First, Math.Max(merged[^1].Last, r.Last));
                }
                else
                {
                    merged.Add(r);
                }
            }

            _logDirtyRanges = merged.ToArray();
        }

        private readonly record struct RangeCursor(bool Active, ulong First, ulong Last, P2mType From, P2mType To, ulong Next)
        {
            public bool SameCall(RangeCursor other)
                => Active && other.First == First && other.Last == Last && other.From == From && other.To == To;
        }
    }
}

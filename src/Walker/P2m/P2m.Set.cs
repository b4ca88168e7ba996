// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed partial class P2m
    {
        /// <summary>
        /// Maps (or, with <see cref="P2mType.Invalid"/>, removes) the 2^order frames at
        /// <paramref name="gfn"/> (Xen's <c>ept_set_entry</c>, docs/model/p2m.md §3.3, with FastEpt's fixes).
        /// r/w/x come from the type and access (docs/model/types.md §2.3), the memory type from
        /// <see cref="P2mOptions.EmtPolicy"/>. A smaller order inside a superpage splits it (all
        /// the way down, as Xen does); a superpage over a table replaces the table, whose frames
        /// are freed once no reader can still be in them.
        /// </summary>
        /// <param name="gfn">First guest frame; aligned to <paramref name="order"/>.</param>
        /// <param name="mfn">First host frame, aligned to <paramref name="order"/>; <see cref="Mfn.Invalid"/>
        /// for removal, populate-on-demand, paging and MMIO types. RAM-backed types need frames inside host memory.</param>
        /// <param name="order">4K, 2M or 1G (1G only with <see cref="P2mOptions.Support1G"/>).</param>
        /// <param name="type">The p2m type.</param>
        /// <param name="access">The p2m access; W and WX are refused on readable types (they would misconfigure).</param>
        /// <param name="suppressVe">The suppress-#VE bit: inherited from the replaced entry (or the split superpage) by default.</param>
        /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range or enum (nothing changed).</exception>
        /// <exception cref="ArgumentException">Misaligned <paramref name="gfn"/>/<paramref name="mfn"/>, or an access that
        /// would give write-without-read (nothing changed).</exception>
        /// <exception cref="InsufficientMemoryException">Host memory ran out for new tables; the live tree is untouched and nothing leaked.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <remarks>Thread-safe. Writes of 4K and 2M entries in different 2 MiB regions run in
        /// parallel (each holds its region's stripe); writes in one region,
        /// 1G writes and writes whose path carries a recalculation mark are serialised (the last
        /// two under the p2m lock held exclusive). Readers never wait.</remarks>
        public void SetEntry(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe = SuppressVe.Inherit)
        {
            ThrowIfDisposed();
            ValidateSet(gfn, mfn, order, type, access, suppressVe);
            WriteEntry(gfn, mfn, (int)order, type, access, suppressVe);
        }

        // A write of validated arguments with the locks it needs (P2m.Writers.cs): the region's
        // stripe, or the p2m lock exclusive when the order, a recalc mark or a pointer not in _tables asks for it.
        internal void WriteEntry(ulong gfn, ulong mfn, int order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            using (WriteScope w = EnterWrite(gfn, order))
            {
                if (SetEntryLocked(gfn, mfn, order, type, access, suppressVe, mayEscalate: !w.Exclusive))
                {
                    return;
                }
            }

            using WriteScope x = EnterExclusiveWrite();
            SetEntryLocked(gfn, mfn, order, type, access, suppressVe, mayEscalate: false);
        }

        // Every write goes through here: the core write, then (host p2m of a domain with views)
        // propagation with the host locks still held, as Xen does from ept_set_entry. False (only
        // with mayEscalate) when the write needs the exclusive lock; nothing was changed.
        private bool SetEntryLocked(ulong gfn, ulong mfn, int order, P2mType type, P2mAccess access, SuppressVe sveMode, bool mayEscalate = false)
        {
            IHostChangeObserver? observer = _observer;
            if (observer is null)
            {
                return SetEntryCore(gfn, mfn, order, type, access, sveMode, mayEscalate);
            }

            _memory.ThrowIfDisposed();
            P2mEntry before = Lookup(gfn);
            if (!SetEntryCore(gfn, mfn, order, type, access, sveMode, mayEscalate))
            {
                return false;
            }

            bool namesFrame = mfn != Mfn.Invalid && type is not (P2mType.Invalid or P2mType.PopulateOnDemand);
            observer.OnHostChange(gfn, order, namesFrame ? mfn : Mfn.Invalid, type, access, before);
            return true;
        }

        // Xen step 5: the new leaf, built from zero. Suppress-#VE is added by the caller.
        private ulong BuildLeaf(ulong gfn, ulong mfn, int order, P2mType type, P2mAccess access)
        {
            if (type == P2mType.Invalid || (mfn == Mfn.Invalid && type == P2mType.MmioDm))
            {
                return 0;
            }

            bool superPage = order > 0;
            ulong e = (superPage ? EptEntry.SuperPageBit : 0)
                      | ((ulong)type << EptEntry.TypeShift)
                      | ((ulong)access << EptEntry.AccessShift)
                      | ((mfn << EptEntry.MfnShift) & EptEntry.MfnMask);
            e = EptPermissions.Apply(e, type, access, superPage, _inputs);
            if ((e & EptEntry.RwxMask) != 0)
            {
                int emt = _emt.GetMemoryType(gfn, mfn, order, type, out bool ignorePat);
                if (emt < 0 || emt > 6 || emt is 2 or 3)
                {
                    // "Cannot decide for this order": the fault marker makes the next use misconfigure.
                    emt = EptEntry.MemoryTypeFaultMarker;
                    ignorePat = false;
                }

                e |= ((ulong)emt << EptEntry.MemoryTypeShift) | (ignorePat ? EptEntry.IgnorePatBit : 0);
            }

            return e;
        }

        private static ulong WithSuppressVe(ulong leaf, SuppressVe mode, ulong old)
        {
            bool sve = mode switch
            {
                SuppressVe.Set => true,
                SuppressVe.Clear => false,
                _ => !IsValid(old) || (old & EptEntry.SuppressVeBit) != 0,
            };
            return sve ? leaf | EptEntry.SuppressVeBit : leaf & ~EptEntry.SuppressVeBit;
        }

        // Called with the write locks held (HoldsWriter). Everything below the one slot that
        // changes is built in frames no reader can reach; that slot is then published with one
        // compare-exchange. False only with mayEscalate: a pointer not in _tables was met (a
        // native writer of another region may not have recorded it yet), nothing was changed.
        private bool SetEntryCore(ulong gfn, ulong mfn, int order, P2mType type, P2mAccess access, SuppressVe sveMode, bool mayEscalate)
        {
            Debug.Assert(HoldsWriter(gfn));
            if (_marked && _lock.IsHeldByCurrentThread)
            {
                ResolveLocked(gfn);     // Xen's ept_set_entry: no recalc mark left above the new entry
            }

            _memory.ThrowIfDisposed();
            InsideWrite?.Invoke(gfn, order);
            int target = order / EptEntry.TableOrder + 1;
            ulong leaf = BuildLeaf(gfn, mfn, order, type, access);
            bool newValid = IsValid(leaf);
            long newPod = newValid && type == P2mType.PopulateOnDemand ? 1L << order : 0;
            ulong last = gfn + (1UL << order) - 1;
            if (newValid)
            {
                // Raised before the entry is published, so a reader that finds the entry never
                // also finds max_mapped_pfn below it (FastEpt: only for entries that are valid).
                // A failed set lowers it again (LowerMaxAfterFailure): a reader that saw the
                // raised value meanwhile only walked the tables instead of taking the shortcut.
                RaiseMaxMapped(last);
            }

            while (true)
            {
                ulong table = _rootMfn;
                int level = _levels;
                while (level > target)
                {
                    ulong pte = Volatile.Read(ref TableSlot(table, gfn, level));
                    ulong child = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    if ((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                    {
                        if (_tables.Contains(child))
                        {
                            table = child;
                            level--;
                            continue;
                        }

                        if (mayEscalate)
                        {
                            return false;
                        }
                    }

                    break;
                }

                ref ulong slot = ref TableSlot(table, gfn, level);
                ulong old = Volatile.Read(ref slot);
                if (level == target)
                {
                    ulong word = WithSuppressVe(leaf, sveMode, old);
                    if (word == old)
                    {
                        Published(newValid, last);
                        return true;
                    }

                    ulong oldTable = (old & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    bool oldIsPointer = level > 1 && (old & EptEntry.RwxMask) != 0 && (old & EptEntry.SuperPageBit) == 0;
                    bool replacesTable = oldIsPointer && _tables.Contains(oldTable);
                    if (oldIsPointer && !replacesTable && mayEscalate)
                    {
                        return false;
                    }

                    long oldPod = replacesTable ? PodGfnsInTable(oldTable, level - 1) : PodGfnsInEntry(old, level);
                    if (Interlocked.CompareExchange(ref slot, word, old) != old)
                    {
                        continue;   // the walker set A/D meanwhile: rebuild from the new snapshot
                    }

                    if ((old & EptEntry.RwxMask) != 0)
                    {
                        // A present entry (leaf or table) was replaced: software TLBs must not
                        // keep what they cached from it (INVEPT, see P2m.Tlb.cs).
                        BumpTlbGeneration();
                    }

                    FastEptMetrics.CountWrite(0);
                    AddPod(newPod - oldPod);
                    Published(newValid, last);
                    if (replacesTable)
                    {
                        RetireSubtree(oldTable, level - 1);
                    }

                    TryReclaimLocked();
                    return true;
                }

                // The walk stopped above the target: a superpage (or a valid not-present
                // placeholder) to split, or nothing (empty, invalid, or a pointer we do not own).
                bool isLeaf = level <= 3 && IsValid(old) && ((old & EptEntry.RwxMask) == 0 || (old & EptEntry.SuperPageBit) != 0);
                if (!isLeaf && !newValid)
                {
                    return true;    // removing from a range that maps nothing: no tables to build
                }

                List<ulong> built = new();
                ulong top;
                try
                {
                    top = isLeaf ? BuildSplit(old, level, target, built) : BuildEmptyChain(level, target, gfn, built);
                    // Place the new leaf in the private subtree; its old value is what the split inherited.
                    ulong t = (top & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    for (int l = level - 1; l > target; l--)
                    {
                        t = (TableSlot(t, gfn, l) & EptEntry.MfnMask) >> EptEntry.MfnShift;
                    }

                    ref ulong leafSlot = ref TableSlot(t, gfn, target);
                    leafSlot = WithSuppressVe(leaf, sveMode, leafSlot);
                }
                catch (InsufficientMemoryException)
                {
                    FreeAll(built);
                    if (newValid)
                    {
                        LowerMaxAfterFailure();
                    }

                    throw;
                }

                // Owned before they are reachable: a writer of another region that meets the new
                // pointer must find it in _tables (else it would take it for a foreign pointer).
                foreach (ulong f in built)
                {
                    _tables.Add(f);
                }

                if (!Publish(ref slot, top, old))
                {
                    foreach (ulong f in built)
                    {
                        _tables.Remove(f);
                    }

                    FreeAll(built);
                    continue;   // another region's writer (or the walker's A/D update) changed the slot
                }

                if ((old & EptEntry.RwxMask) != 0)
                {
                    // A present superpage was split (or a foreign pointer replaced): flush the TLBs.
                    BumpTlbGeneration();
                }

                FastEptMetrics.CountWrite(isLeaf ? built.Count : 0);   // each table a split built replaced one superpage

                // A split replaces only this GFN range's share of a PoD superpage.
                long oldPodShare = isLeaf && TypeOf(old) == P2mType.PopulateOnDemand ? 1L << order : 0;
                AddPod(newPod - oldPodShare);
                Published(newValid, last);
                TryReclaimLocked();
                return true;
            }
        }

        private void Published(bool valid, ulong last)
        {
            if (valid)
            {
                NotePublished(last);
            }
        }

        // The one compare-exchange that links a private subtree (PlantedWriterBug.TwoStepSplit:
        // an empty table first, its slots after, which readers and other writers can see).
        private bool Publish(ref ulong slot, ulong top, ulong old)
        {
            if (PlantedBug != PlantedWriterBug.TwoStepSplit || (old & EptEntry.RwxMask) == 0)
            {
                return Interlocked.CompareExchange(ref slot, top, old) == old;
            }

            Span<ulong> slots = _memory.DangerousTable((top & EptEntry.MfnMask) >> EptEntry.MfnShift);
            ulong[] saved = slots.ToArray();
            slots.Fill(EmptySlot);
            if (Interlocked.CompareExchange(ref slot, top, old) != old)
            {
                saved.CopyTo(slots);
                return false;
            }

            Thread.Yield();
            for (int i = 0; i < saved.Length; i++)
            {
                Volatile.Write(ref slots[i], saved[i]);
            }

            return true;
        }

        private void AddPod(long delta)
        {
            if (delta == 0)
            {
                return;
            }

            if (PlantedBug == PlantedWriterBug.RacyPodCount)
            {
                long v = Volatile.Read(ref _hot.PodEntryCount);
                Thread.SpinWait(50);
                Volatile.Write(ref _hot.PodEntryCount, v + delta);
                return;
            }

            Interlocked.Add(ref _hot.PodEntryCount, delta);
        }

        private static long PodGfnsInEntry(ulong pte, int level)
            => IsValid(pte) && (pte & EptEntry.RwxMask) == 0 && TypeOf(pte) == P2mType.PopulateOnDemand
                ? 1L << (EptEntry.TableOrder * (level - 1))
                : 0;

        private long PodGfnsInTable(ulong table, int level)
        {
            long n = 0;
            Span<ulong> slots = _memory.DangerousTable(table);
            for (int i = 0; i < slots.Length; i++)
            {
                ulong pte = Volatile.Read(ref slots[i]);
                ulong child = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if (level > 1 && (pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                {
                    n += _tables.Contains(child) ? PodGfnsInTable(child, level - 1) : 0;
                }
                else
                {
                    n += PodGfnsInEntry(pte, level);
                }
            }

            return n;
        }

        private ulong AllocateTable(List<ulong> built)
        {
            if (!TryAllocateTableFrame(out ulong mfn))
            {
                ThrowHelper.ThrowInsufficientMemoryException_frames();
            }

            built.Add(mfn);
            _memory.DangerousTable(mfn).Fill(EmptySlot);
            return mfn;
        }

        // Empty tables from `level - 1` down to `target`, each linked by a middle entry; returns
        // the middle entry for the slot at `level`.
        private ulong BuildEmptyChain(int level, int target, ulong gfn, List<ulong> built)
        {
            ulong top = AllocateTable(built);
            ulong t = top;
            for (int l = level - 1; l > target; l--)
            {
                ulong next = AllocateTable(built);
                TableSlot(t, gfn, l) = MiddleEntry(next);
                t = next;
            }

            return MiddleEntry(top);
        }

        // Xen's ept_split_super_page: 512 children inheriting the parent's fields with their own
        // frame and recomputed r/w/x; recursing into every child until the target level. Returns
        // the middle entry that replaces the superpage.
        private ulong BuildSplit(ulong pte, int level, int target, List<ulong> built)
        {
            ulong table = AllocateTable(built);
            Span<ulong> slots = _memory.DangerousTable(table);
            int childLevel = level - 1;
            bool childSuper = childLevel > 1;
            ulong field = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
            ulong stride = 1UL << (EptEntry.TableOrder * (childLevel - 1));
            P2mType type = TypeOf(pte);
            var access = (P2mAccess)((pte & EptEntry.AccessMask) >> EptEntry.AccessShift);
            ulong template = childSuper ? pte | EptEntry.SuperPageBit : pte & ~EptEntry.SuperPageBit;
            for (int j = 0; j < slots.Length; j++)
            {
                // An all-ones frame field means "no frame" (PoD, paging): children keep it.
                ulong childField = field == EptEntry.MfnFieldMax ? field : field + (ulong)j * stride;
                ulong child = (template & ~EptEntry.MfnMask) | ((childField << EptEntry.MfnShift) & EptEntry.MfnMask);
                child = EptPermissions.Apply(child, type, access, childSuper, _inputs);
                slots[j] = childLevel > target ? BuildSplit(child, childLevel, target, built) : child;
            }

            return MiddleEntry(table);
        }

        private void FreeAll(List<ulong> frames)
        {
            foreach (ulong f in frames)
            {
                _memory.FreeFrame(f);
            }

            frames.Clear();
        }

        private void RaiseMaxMapped(ulong last)
        {
            long current = Volatile.Read(ref _hot.MaxMappedPfn);
            while ((ulong)current < last)
            {
                long seen = Interlocked.CompareExchange(ref _hot.MaxMappedPfn, (long)last, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }
    }
}

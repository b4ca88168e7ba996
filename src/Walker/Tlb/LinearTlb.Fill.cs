// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The miss path: synchronising with the vCPU's view and its p2m generation, the walk, and
    // what a successful walk puts into a slot.
    public sealed partial class LinearTlb
    {
        // Walks on a miss (after a global entry of another PCID had its chance) and caches the
        // result when it is guest RAM.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private GuestTranslation Walk(ulong gla, PageFaultErrorCode pfec)
        {
            Vcpu.CheckPfec(pfec);
            Synchronize(out _);
            ref Entry e = ref Slot(gla);
            if (Miss(ref e, gla, pfec) == 0 || TryAdoptGlobal(ref e, gla, pfec))     // back in a view whose entries stayed; a global entry
            {
                return TranslationOf(ref e, gla);
            }

            _misses++;
            GuestTranslation t = _vcpu.TranslateForTlb(_p2m, gla, pfec);
            if (t.Status == GuestStatus.Ok)
            {
                P2mEntry pe = _p2m.GetEntry(t.Gpa >> EptEntry.PageBits);
                if (Vcpu.IsGuestRam(pe.Type) && pe.Mfn == t.Hpa >> EptEntry.PageBits)
                {
                    Fill(gla, pfec, t, pe.Type);
                }
            }

            return t;
        }

        /// <summary>
        /// Brings the TLB to the vCPU's current view and that view's p2m generation, emptying
        /// what may be stale, and returns that view (<paramref name="view"/>) and its p2m for the
        /// walk. Called before every walk whose result may be filled. The stale flag is cleared
        /// first, then the live view and the generation are read (a switch or a write announced
        /// after the clear sets the flag again), and the generation is read before the walk, so a
        /// fill that raced a p2m writer is dropped by the next lookup (the writer's bump and
        /// shootdown come after its publish).
        /// </summary>
        internal P2m Synchronize(out int view)
        {
            if (Volatile.Read(ref _stale) != 0)
            {
                Interlocked.Exchange(ref _stale, 0);
            }

            view = _vcpu.View;
            P2m p2m = _vcpu.Domain.Altp2m.ViewLocked(view);
            Synchronize(view, p2m);
            return p2m;
        }

        private void Synchronize(int view, P2m p2m)
        {
            if (view == _view && ReferenceEquals(p2m, _p2m))
            {
                long g = p2m.TlbGeneration;
                if (g != _generation)
                {
                    FlushView(view);    // INVEPT: a mapping of this view was removed or restricted
                    Adopt(view, p2m, g);
                }

                return;
            }

            // A view switch. Entries are tagged with the view: the new view's survive when its
            // p2m is the same object and its generation did not move since this TLB last used it.
            if (!ReferenceEquals(_viewP2m[view], p2m))
            {
                p2m.AttachTlb(this);    // first use of this p2m since the last full flush (attached ones stay attached)
            }

            long generation = p2m.TlbGeneration;
            P2m? known = _viewP2m[view];
            if (known is not null && (!ReferenceEquals(known, p2m) || _viewGeneration[view] != generation))
            {
                FlushView(view);
            }

            Adopt(view, p2m, generation);
        }

        /// <summary>
        /// Caches a successful walk of <paramref name="gla"/> for <paramref name="pfec"/> on the
        /// current view (the caller synchronised before the walk). <paramref name="type"/> must
        /// be guest RAM and the host page inside host memory; the caller checked both.
        /// </summary>
        internal void Fill(ulong gla, PageFaultErrorCode pfec, in GuestTranslation t, P2mType type)
        {
            uint p = (uint)pfec;
            ulong hostPage = t.Hpa & ~EptEntry.PageMask;
            if ((p & ~KnownPfec) != 0 || WriteAndFetch(p) != 0 || (ulong)type > TypeMask || hostPage >= (ulong)_vcpu.Domain.Memory.FrameCount << EptEntry.PageBits)
            {
                return;
            }

            uint ac = _acBit;
            ulong rights = ClassBit(p, ac);
            if ((p & (uint)PageFaultErrorCode.Write) != 0)
            {
                // A write allowed over every level is a read allowed (SDM 4.6, and EPT's W needs R):
                // the same walk proved both, A flags included.
                rights |= ClassBit(p & ~(uint)PageFaultErrorCode.Write, ac);
            }

            int shift = t.PageShift;
            ulong sizeCode = shift switch { 21 => 1, 22 => 2, 30 => 3, _ => 0 };
            ulong linearPage = gla & ~EptEntry.PageMask;
            ulong data = unchecked(hostPage - linearPage);
            ulong info = (t.Gpa & ~EptEntry.PageMask) | (ulong)type
                         | ((ulong)(t.Ept.Level & 3) << EptLevelShift) | ((ulong)(t.Level & 3) << GuestLevelShift)
                         | (t.Global ? GlobalBit : 0) | (sizeCode << SizeShift);
            ref Entry e = ref Slot(gla);
            if ((e.Tag & ~EptEntry.PageMask) == linearPage && e.Ctx == _stamp && e.Data == data && e.Info == info)
            {
                rights |= ~e.Tag & EptEntry.PageMask;   // the same translation, verified for another access too
            }

            e.Tag = linearPage | (~rights & EptEntry.PageMask);
            e.Ctx = _stamp;
            e.Data = data;
            e.Info = info;
            if (shift > EptEntry.PageBits)
            {
                AddLargePage(gla, shift);
            }
        }

        /// <summary>Counts a walk made for this TLB by its vCPU's own miss path (<see cref="Vcpu.GetPageFromGva"/>).</summary>
        internal void CountMiss() => _misses++;

        /// <summary>The hit path with what <see cref="Vcpu.GetPageFromGva"/> needs: the host address and the entry's info word.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool TryHit(ulong gla, PageFaultErrorCode pfec, out ulong hpa, out ulong info)
        {
            ref Entry e = ref Slot(gla);
            hpa = unchecked(gla + e.Data);
            info = e.Info;
            return Miss(ref e, gla, pfec) == 0;
        }

        /// <summary>True while no invalidation of the current view happened since the TLB last synchronised (re-read after a page reference is taken).</summary>
        internal bool StillCurrent
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => Volatile.Read(ref _hot.TlbGeneration) == _generation && _vcpu.View == _view;
        }

        /// <summary>The guest-physical address of a hit from its info word.</summary>
        internal static ulong GpaOf(ulong info, ulong gla) => (info & ~EptEntry.PageMask) | (gla & EptEntry.PageMask);

        /// <summary>The p2m type of a hit from its info word.</summary>
        internal static P2mType TypeOf(ulong info) => (P2mType)(info & TypeMask);

        /// <summary>The translation a hit stands for (what the filling walk returned for this address).</summary>
        internal GuestTranslation TranslationOf(ulong gla, ulong hpa, ulong info)
            => new(GuestStatus.Ok, GpaOf(info, gla), hpa, 0, new EptTranslation(EptStatus.Ok, hpa, (int)((info >> EptLevelShift) & 3), 0),
                   (int)((info >> GuestLevelShift) & 3), SizeShiftOf((int)((info >> SizeShift) & 3)), (info & GlobalBit) != 0);

        // A global entry filled under another PCID serves this one too (SDM 4.10.2.4): it is
        // re-stamped with the current context.
        private bool TryAdoptGlobal(ref Entry e, ulong gla, PageFaultErrorCode pfec)
        {
            uint p = (uint)pfec;
            ulong x = (gla & ~EptEntry.PageMask) ^ e.Tag;
            if ((x & (~EptEntry.PageMask | ClassBit(p, _acBit))) != 0 || (p & ~KnownPfec) != 0 || WriteAndFetch(p) != 0
                || (e.Info & GlobalBit) == 0 || (e.Ctx & GlobalStampMask) != (_stamp & GlobalStampMask))
            {
                return false;
            }

            e.Ctx = _stamp;
            return true;
        }

        private void Adopt(int view, P2m p2m, long generation)
        {
            _view = view;
            _p2m = p2m;
            _hot = p2m.TlbHotState;
            _generation = generation;
            _viewP2m[view] = p2m;
            _viewGeneration[view] = generation;
            UpdateStamp();
        }

        private void UpdateStamp()
        {
            _stamp = (_epoch << EpochShift) | ((ulong)_view << ViewShift) | ((ulong)_viewEpochs[_view] << ViewEpochShift)
                     | ((ulong)_pcid << PcidShift) | _pcidEpochs[_pcid];
        }

        // Each view starts with its own number as its epoch: distinct from every other view's.
        private void ResetViewEpochs()
        {
            for (int v = 0; v < _viewEpochs.Length; v++)
            {
                _viewEpochs[v] = (ushort)v;
            }

            _nextViewEpoch = _viewEpochs.Length;
        }

        // QEMU's tlb_add_large_page: one aligned region covers every large page cached, so an
        // INVLPG inside it empties the TLB (the page's 4 KiB fragments may sit in any slot).
        private void AddLargePage(ulong gla, int shift)
        {
            ulong mask = ~((1UL << shift) - 1);
            if (!_hasLarge)
            {
                _hasLarge = true;
                _largeAddr = gla & mask;
                _largeMask = mask;
                return;
            }

            mask &= _largeMask;
            while (((_largeAddr ^ gla) & mask) != 0)
            {
                mask <<= 1;
            }

            _largeMask = mask;
            _largeAddr &= mask;
        }

        private bool InLargeRegion(ulong gla) => _hasLarge && ((gla ^ _largeAddr) & _largeMask) == 0;

        private static int SizeShiftOf(int code) => code switch { 1 => 21, 2 => 22, 3 => 30, _ => 12 };
    }
}

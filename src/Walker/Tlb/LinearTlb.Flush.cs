// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // The invalidations of SDM Vol. 3A 4.10.4 and Vol. 3C 29.4.3. Each removes at least what the
    // SDM says it must; some remove more (always allowed: a TLB may drop any entry at any time).
    public sealed partial class LinearTlb
    {
        /// <summary>
        /// INVLPG: removes the translations of the stage-1 page that contains <paramref name="gla"/>,
        /// for every PCID and view, global ones included. When a large page was cached since the
        /// last full flush and <paramref name="gla"/> lies in the region it spans, the whole TLB
        /// is emptied (the page's 4 KiB fragments may be in any slot).
        /// </summary>
        /// <param name="gla">Any address in the page.</param>
        public void Invlpg(ulong gla)
        {
            if (InLargeRegion(gla))
            {
                FlushCore();
                return;
            }

            ref Entry e = ref Slot(gla);
            if ((e.Tag & ~EptEntry.PageMask) == (gla & ~EptEntry.PageMask))
            {
                e.Tag = Empty;
            }
        }

        /// <summary>INVPCID of <paramref name="type"/> (Intel SDM Vol. 2B): see <see cref="InvpcidType"/>.</summary>
        /// <param name="type">Individual address (0), single context (1), all contexts with globals (2) or without (3).</param>
        /// <param name="pcid">The PCID (types 0 and 1), 0 to 4095.</param>
        /// <param name="gla">The linear address (type 0).</param>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="type"/>, or <paramref name="pcid"/> above 4095.</exception>
        public void Invpcid(InvpcidType type, int pcid, ulong gla)
        {
            if ((uint)pcid >= 1u << PcidBits)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(pcid), pcid, "A PCID is 12 bits.");
            }

            switch (type)
            {
                case InvpcidType.IndividualAddress:
                    if (InLargeRegion(gla))
                    {
                        FlushCore();
                        return;
                    }

                    ref Entry e = ref Slot(gla);
                    if ((e.Tag & ~EptEntry.PageMask) == (gla & ~EptEntry.PageMask) && (e.Info & GlobalBit) == 0)
                    {
                        e.Tag = Empty;      // any PCID's: more than asked, allowed
                    }

                    return;

                case InvpcidType.SingleContext:
                    FlushPcid((ushort)pcid);
                    return;

                case InvpcidType.AllContextIncludingGlobal:
                    FlushCore();
                    return;

                case InvpcidType.AllContext:
                    FlushNonGlobal();
                    return;

                default:
                    ThrowHelper.ThrowArgumentOutOfRangeException(nameof(type), type, "INVPCID types are 0 to 3.");
                    return;
            }
        }

        /// <summary>INVVPID of <paramref name="type"/> for this vCPU's VPID (Intel SDM Vol. 3C): see <see cref="InvvpidType"/>.</summary>
        /// <param name="type">Individual address (0), single context (1), all contexts (2), single context retaining globals (3).</param>
        /// <param name="gla">The linear address (type 0).</param>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="type"/>.</exception>
        public void Invvpid(InvvpidType type, ulong gla)
        {
            switch (type)
            {
                case InvvpidType.IndividualAddress:
                    Invlpg(gla);
                    return;

                case InvvpidType.SingleContext:
                case InvvpidType.AllContext:
                    FlushCore();
                    return;

                case InvvpidType.SingleContextRetainingGlobals:
                    FlushNonGlobal();
                    return;

                default:
                    ThrowHelper.ThrowArgumentOutOfRangeException(nameof(type), type, "INVVPID types are 0 to 3.");
                    return;
            }
        }

        /// <summary>Empties the TLB, global entries included (O(1)).</summary>
        public void FlushAll() => FlushCore();

        /// <summary>
        /// MOV to CR3, after the register changed: the current PCID becomes <paramref name="pcid"/>
        /// and, unless <paramref name="noFlush"/> (bit 63 of the source under CR4.PCIDE), its
        /// non-global entries are removed (SDM 4.10.4.1). Global entries stay.
        /// </summary>
        internal void LoadCr3(ushort pcid, bool noFlush)
        {
            _pcid = (ushort)(pcid & ((1 << PcidBits) - 1));
            if (noFlush)
            {
                UpdateStamp();
                return;
            }

            FlushPcid(_pcid);
        }

        /// <summary>A paging control bit changed (CR0, CR4, EFER, paging mode, PKRU/PKRS): everything goes, globals included.</summary>
        internal void PagingControlChanged(ushort pcid)
        {
            _pcid = (ushort)(pcid & ((1 << PcidBits) - 1));
            FlushCore();
        }

        // The non-global entries of one PCID: its epoch moves on (O(1)).
        private void FlushPcid(ushort pcid)
        {
            if (_pcidEpochs[pcid] == PcidEpochMax)
            {
                Array.Clear(_pcidEpochs);
                FlushCore();        // the epoch wraps: empty everything instead
                return;
            }

            _pcidEpochs[pcid]++;
            UpdateStamp();
        }

        // Every entry of one view, global ones included: its epoch moves on (O(1)).
        private void FlushView(int view)
        {
            if ((ulong)_nextViewEpoch > ViewEpochMax)
            {
                ResetViewEpochs();
                FlushCore();        // the view epochs are used up: empty everything instead
                return;
            }

            _viewEpochs[view] = (ushort)_nextViewEpoch++;       // a value no view had in this epoch
            UpdateStamp();
        }

        // Every non-global entry of every PCID and view: a scan (global entries stay).
        private void FlushNonGlobal()
        {
            foreach (ref Entry e in Slots)
            {
                if ((e.Info & GlobalBit) == 0)
                {
                    e.Tag = Empty;
                }
            }
        }

        // Everything: the epoch moves on (entries of older epochs never match); the array is
        // cleared only when the epoch wraps.
        private void FlushCore()
        {
            _flushes++;
            _hasLarge = false;
            Array.Clear(_viewP2m);
            _viewP2m[_view] = _p2m;
            _viewGeneration[_view] = _generation;
            if (_epoch == EpochMax)
            {
                Slots.Fill(new Entry { Tag = Empty });
                _epoch = 1;
            }
            else
            {
                _epoch++;
            }

            UpdateStamp();
        }
    }
}

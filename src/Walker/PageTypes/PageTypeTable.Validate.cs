// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // Type references, promotion and demotion (docs/model/page-types.md §7.2-7.6). The XSA-299 invariants, for a
    // page-table frame that is validated or partial and not owned by an operation in flight:
    // entries [0, nr) hold one general and one type reference on their child; the entry at nr
    // holds one general reference iff PTF_partial_set is recorded; a partial frame holds one
    // general reference on itself and its one type reference. An operation that owns a frame
    // keeps its position in a local and writes nr/flags back only in Settle.
    public sealed partial class PageTypeTable
    {
        // How a type operation ended (Xen's return codes).
        private enum Outcome
        {
            Ok,             // 0
            Interrupted,    // -EINTR: stopped with nothing done, no partial state anywhere
            Restart,        // -ERESTART: stopped with the progress recorded in a partial frame
            Failed,         // -EINVAL with nothing held
            FailedPartial,  // -EINVAL after progress: the frame is left partial, for a demotion to clean up
        }

        // Xen's _get_page_type: one more type reference, validating the frame when it is a page
        // table that has none, or continuing its partial validation.
        private Outcome GetType(ulong mfn, PageType type, bool preemptible, ref Preemption preemption)
        {
            ref long word = ref SlotOf(mfn).Word;
            SpinWait spin = default;
            long before;
            while (true)
            {
                before = Volatile.Read(ref word);
                int count = Count(before);
                long next;
                if (count == 0)
                {
                    next = Pack(type, 1);                   // the first reference sets the type; a table is validated below
                }
                else if (TypeOf(before) != type || count == int.MaxValue)
                {
                    return Outcome.Failed;                  // typed otherwise (this is the writable/table exclusion), or overflow
                }
                else if (!IsTable(type) || (before & ValidatedBit) != 0)
                {
                    next = before + 1;
                }
                else if ((before & PartialBit) != 0)
                {
                    next = before & ~PartialBit;            // take over the partial state: its type reference becomes ours
                }
                else
                {
                    // Another operation owns the frame. Wait for it, or stop with nothing done.
                    if (preemptible && preemption.ShouldStop())
                    {
                        return Outcome.Interrupted;
                    }

                    ThrowIfBroken();
                    spin.SpinOnce();
                    continue;
                }

                if (Interlocked.CompareExchange(ref word, next, before) == before)
                {
                    break;
                }
            }

            return IsTable(type) && (before & ValidatedBit) == 0 ? Promote(mfn, type, before, ref preemption) : Outcome.Ok;
        }

        // Xen's _put_page_type: one type reference fewer; the last one of a page table demotes it.
        // With partialSet the caller holds only a general reference, on a child its operation left
        // partial: if the child is still partial, the caller takes over its type reference and
        // demotes it; otherwise someone else finished it and there is nothing to do.
        private Outcome PutType(ulong mfn, bool partialSet, bool topLevel, ref Preemption preemption)
        {
            ref long word = ref SlotOf(mfn).Word;
            long before;
            bool demote;
            while (true)
            {
                before = Volatile.Read(ref word);
                int count = Count(before);
                bool table = IsTable(TypeOf(before));
                if (partialSet)
                {
                    if ((before & PartialBit) == 0)
                    {
                        return Outcome.Ok;
                    }

                    if (count != 1)
                    {
                        Fail($"Partial frame 0x{mfn:X} has type count {count}, not 1.");
                    }
                }
                else if (count == 0 || (table && (before & ValidatedBit) == 0))
                {
                    // No full reference exists: nothing, a partial frame (its one type reference is
                    // its partial state's), or a frame another operation owns.
                    NoTypeReference(mfn, before, topLevel);
                }

                demote = table && count == 1;
                long next = demote ? before & ~(ValidatedBit | PartialBit)   // keep count 1: the frame is ours to demote
                          : count == 1 ? 0
                          : before - 1;
                if (Interlocked.CompareExchange(ref word, next, before) == before)
                {
                    break;
                }
            }

            return demote ? Demote(mfn, TypeOf(before), before, ref preemption) : Outcome.Ok;
        }

        private void NoTypeReference(ulong mfn, long word, bool topLevel)
        {
            if (topLevel)
            {
                ThrowInvalidOperationException_noTypeReference(mfn);
            }

            Fail((word & PartialBit) != 0
                ? $"Type put without PTF_partial_set on partial frame 0x{mfn:X}."
                : $"A validated entry names frame 0x{mfn:X}, which holds no type reference for it (word 0x{word:X}).");
        }

        // promote_lN_table from the recorded position: nr and flags of the partial state taken
        // over, or entry 0 for a fresh validation.
        private Outcome Promote(ulong mfn, PageType type, long before, ref Preemption preemption)
        {
            bool wasPartial = (before & PartialBit) != 0;
            if (type == PageType.L1)
            {
                return PromoteL1(mfn);
            }

            int start = wasPartial ? Nr(before) : 0;
            bool startSet = wasPartial && (before & PartialSetBit) != 0;
            for (int i = start; i < EntriesPerTable; i++)
            {
                bool set = i == start && startSet;        // the recorded flags belong to the first entry only

                // Never before the first entry of a call (each call makes progress). Xen's L4 has
                // no check of its own: its children's validations are preemptible.
                if (i > start && type != PageType.L4 && preemption.ShouldStop())
                {
                    return Settle(mfn, type, wasPartial, i, false, Outcome.Interrupted);
                }

                EntryHook?.Invoke(mfn, i);
                ulong pte = ReadEntry(mfn, i);
                if ((pte & PresentBit) == 0)
                {
                    if (set)
                    {
                        Fail($"Entry {i} of partial frame 0x{mfn:X} holds a reference but is no longer present.");
                    }

                    continue;
                }

                Outcome outcome = GetChild(pte, type, set, ref preemption);
                if (outcome != Outcome.Ok)
                {
                    // The entry keeps a general reference when it had one, or its child is now partial.
                    return Settle(mfn, type, wasPartial, i, set || outcome is Outcome.Restart or Outcome.FailedPartial, outcome);
                }
            }

            return Settle(mfn, type, wasPartial, EntriesPerTable, false, Outcome.Ok);
        }

        // Xen's get_page_and_type_from_mfn for entry pte of a table of parentType, whose recorded
        // flags say whether it holds a general reference already (set). The reference is kept on
        // success, or when the child is left partial (PTF_retain_ref_on_restart), or when it was
        // held before.
        private Outcome GetChild(ulong pte, PageType parentType, bool set, ref Preemption preemption)
        {
            ulong child = (pte & AddressMask) >> EptEntry.PageBits;
            if ((pte & LargePageBit) != 0 || child >= (ulong)_memory.FrameCount || (!set && !TryGetGeneral(child)))
            {
                return Outcome.Failed;
            }

            // An L2's children (L1s) are validated without preemption, as in Xen.
            Outcome outcome = GetType(child, parentType - 1, preemptible: parentType >= PageType.L3, ref preemption);
            if (!set && outcome is Outcome.Interrupted or Outcome.Failed)
            {
                PutGeneral(child);
            }

            return outcome;
        }

        // demote_lN_table from the recorded position: nr and flags of the partial state taken
        // over, or all 512 entries of a validated table.
        private Outcome Demote(ulong mfn, PageType type, long before, ref Preemption preemption)
        {
            bool wasPartial = (before & PartialBit) != 0;
            if (type == PageType.L1)
            {
                for (int i = EntriesPerTable - 1; i >= 0; i--)
                {
                    EntryHook?.Invoke(mfn, i);
                    PutData(mfn, ReadEntry(mfn, i));
                }

                return Settle(mfn, type, wasPartial, 0, false, Outcome.Ok);
            }

            bool set = wasPartial && (before & PartialSetBit) != 0;
            int index = wasPartial ? Nr(before) - (set ? 0 : 1) : EntriesPerTable - 1;
            while (true)
            {
                EntryHook?.Invoke(mfn, index);
                ulong pte = ReadEntry(mfn, index);
                if ((pte & PresentBit) != 0)
                {
                    if (PutChild(mfn, pte, type, set, ref preemption) == Outcome.Restart)
                    {
                        return Settle(mfn, type, wasPartial, index, true, Outcome.Restart);
                    }
                }
                else if (set)
                {
                    Fail($"Entry {index} of partial frame 0x{mfn:X} holds a reference but is no longer present.");
                }

                if (index == 0)
                {
                    return Settle(mfn, type, wasPartial, 0, false, Outcome.Ok);
                }

                index--;
                set = false;
                if (preemption.ShouldStop())
                {
                    return Settle(mfn, type, wasPartial, index + 1, false, Outcome.Interrupted);
                }
            }
        }

        // Xen's put_page_from_lNe for a table child: put the type (preemptible, so the child's own
        // demotion may stop), then the general reference once the type is settled.
        private Outcome PutChild(ulong table, ulong pte, PageType parentType, bool set, ref Preemption preemption)
        {
            ulong child = (pte & AddressMask) >> EptEntry.PageBits;
            if (child >= (ulong)_memory.FrameCount
                || (!set && TypeOf(Volatile.Read(ref SlotOf(child).Word)) != parentType - 1))
            {
                Fail($"A validated entry of frame 0x{table:X} names frame 0x{child:X}, which is not its {parentType - 1} child.");
            }

            Outcome outcome = PutType(child, set, topLevel: false, ref preemption);
            if (outcome == Outcome.Ok)
            {
                PutGeneral(child);
            }

            return outcome;
        }

        // L1 validation is not preemptible and undoes itself on failure (docs/model/page-types.md §7.4).
        private Outcome PromoteL1(ulong mfn)
        {
            for (int i = 0; i < EntriesPerTable; i++)
            {
                EntryHook?.Invoke(mfn, i);
                ulong pte = ReadEntry(mfn, i);
                if ((pte & PresentBit) != 0 && !TryGetData(pte))
                {
                    while (--i >= 0)
                    {
                        PutData(mfn, ReadEntry(mfn, i));
                    }

                    return Settle(mfn, PageType.L1, false, 0, false, Outcome.Failed);
                }
            }

            return Settle(mfn, PageType.L1, false, EntriesPerTable, false, Outcome.Ok);
        }

        // Xen's get_page_from_l1e: a general reference on the data frame, and a writable type
        // reference when the mapping can write it.
        private bool TryGetData(ulong pte)
        {
            ulong frame = (pte & AddressMask) >> EptEntry.PageBits;
            if (frame >= (ulong)_memory.FrameCount || !TryGetGeneral(frame))
            {
                return false;
            }

            Preemption never = Preemption.Never;
            if ((pte & WritableBit) != 0 && GetType(frame, PageType.Writable, preemptible: false, ref never) != Outcome.Ok)
            {
                PutGeneral(frame);
                return false;
            }

            return true;
        }

        private void PutData(ulong table, ulong pte)
        {
            if ((pte & PresentBit) == 0)
            {
                return;
            }

            ulong frame = (pte & AddressMask) >> EptEntry.PageBits;
            if (frame >= (ulong)_memory.FrameCount)
            {
                Fail($"A validated entry of L1 frame 0x{table:X} names frame 0x{frame:X}, outside host memory.");
            }

            if ((pte & WritableBit) != 0)
            {
                if (TypeOf(Volatile.Read(ref SlotOf(frame).Word)) != PageType.Writable)
                {
                    Fail($"A writable entry of L1 frame 0x{table:X} names frame 0x{frame:X}, which is not writable.");
                }

                Preemption never = Preemption.Never;
                PutType(frame, partialSet: false, topLevel: false, ref never);
            }

            PutGeneral(frame);
        }

        // The single place where an operation that owns a page-table frame gives it up, whether
        // it completed, was preempted, met a child that stopped, or failed. The caller says only
        // how far the entries hold references: [0, nr) fully, entry nr a general one iff
        // partialSet. That decides the frame's state: all 512 held -> validated; none -> untyped;
        // anything else -> partial, holding its progress, its type reference and one general
        // reference on itself.
        private Outcome Settle(ulong mfn, PageType type, bool wasPartial, int nr, bool partialSet, Outcome why)
        {
            long state;
            if (nr == EntriesPerTable && !partialSet)
            {
                state = Pack(type, 1) | ValidatedBit | ((long)nr << NrShift);
            }
            else if (nr == 0 && !partialSet)
            {
                state = 0;
            }
            else
            {
                state = Pack(type, 1) | PartialBit | (partialSet ? PartialSetBit : 0) | ((long)nr << NrShift);
            }

            bool partial = (state & PartialBit) != 0;
            if (partial && !wasPartial && !TryAddGeneralIfHeld(mfn))
            {
                Fail($"Frame 0x{mfn:X} went partial without a general reference held on it.");
            }

            // Publishes nr/flags with the rest; from here on the frame is no longer ours.
            Interlocked.Exchange(ref SlotOf(mfn).Word, state);
            if (wasPartial && !partial)
            {
                PutGeneral(mfn);
            }

            // A promotion ends validated only on success and a demotion untyped only on success;
            // a validated end of a demotion means it stopped with nothing done.
            return partial ? (why is Outcome.Failed or Outcome.FailedPartial ? Outcome.FailedPartial : Outcome.Restart)
                 : why == Outcome.Ok ? Outcome.Ok
                 : state == 0 ? why
                 : Outcome.Interrupted;
        }
    }
}

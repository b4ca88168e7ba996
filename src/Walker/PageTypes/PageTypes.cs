// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// What a host frame is used as, for <see cref="PageTypeTable"/> (Xen's <c>PGT_*</c> type in
    /// <c>type_info</c>, docs/model/page-types.md §7.1). A frame has one type at a time while it holds type
    /// references; page-table types and <see cref="Writable"/> exclude each other.
    /// </summary>
    public enum PageType
    {
        /// <summary>No type: the frame holds no type reference.</summary>
        None = 0,

        /// <summary>A guest level-1 page table (PTEs); its present entries reference data frames.</summary>
        L1 = 1,

        /// <summary>A guest level-2 page table (PDEs); its present entries are validated as <see cref="L1"/>.</summary>
        L2 = 2,

        /// <summary>A guest level-3 page table (PDPTEs); its present entries are validated as <see cref="L2"/>.</summary>
        L3 = 3,

        /// <summary>A guest level-4 page table (PML4Es); its present entries are validated as <see cref="L3"/>.</summary>
        L4 = 4,

        /// <summary>A data frame some mapping may write (Xen's <c>PGT_writable_page</c>); never a page table at the same time.</summary>
        Writable = 5,
    }

    /// <summary>
    /// One frame's bookkeeping in a <see cref="PageTypeTable"/>, read by
    /// <see cref="PageTypeTable.GetState"/> (Xen's <c>count_info</c>, <c>type_info</c>,
    /// <c>nr_validated_ptes</c> and <c>partial_flags</c>, docs/model/page-types.md §7.1).
    /// </summary>
    /// <remarks>
    /// The type fields come from one atomic read and are consistent with each other;
    /// <see cref="GeneralCount"/> and <see cref="PendingPuts"/> are read separately. While an
    /// operation on the frame is in flight on another thread (the frame is "owned": a page-table
    /// type with <see cref="TypeCount"/> 1, neither validated nor partial),
    /// <see cref="NrValidated"/> and <see cref="PartialSet"/> are the values from before it began.
    /// </remarks>
    public readonly record struct PageTypeState
    {
        internal PageTypeState(int generalCount, PageType type, int typeCount, bool validated, bool partial,
                               int nrValidated, bool partialSet, int pendingPuts)
        {
            GeneralCount = generalCount;
            Type = type;
            TypeCount = typeCount;
            Validated = validated;
            Partial = partial;
            NrValidated = nrValidated;
            PartialSet = partialSet;
            PendingPuts = pendingPuts;
        }

        /// <summary>General references held through the table (Xen's <c>count_info</c> count): one per
        /// referencing entry, one per caller reference or pending put, and one while <see cref="Partial"/>.</summary>
        public int GeneralCount { get; }

        /// <summary>The frame's type; <see cref="PageType.None"/> exactly when <see cref="TypeCount"/> is 0.</summary>
        public PageType Type { get; }

        /// <summary>Type references: one per fully validated entry or caller reference, or exactly 1 while
        /// <see cref="Partial"/> (that reference belongs to the partial state).</summary>
        public int TypeCount { get; }

        /// <summary>True when the frame is a page table whose 512 entries are all validated (<c>PGT_validated</c>).</summary>
        public bool Validated { get; }

        /// <summary>True when an interrupted or failed validation or demotion left the frame part-way (<c>PGT_partial</c>).</summary>
        public bool Partial { get; }

        /// <summary>
        /// Entries [0, NrValidated) hold a general and a type reference on their child
        /// (<c>nr_validated_ptes</c>): 512 when validated, 0 when untyped, the recorded progress when partial.
        /// </summary>
        public int NrValidated { get; }

        /// <summary>
        /// Xen's <c>partial_flags</c> (<c>PTF_partial_set</c>): the entry at <see cref="NrValidated"/>
        /// holds one general reference on a child this frame's operation left partial. Only set while <see cref="Partial"/>.
        /// </summary>
        public bool PartialSet { get; }

        /// <summary>
        /// Interrupted <see cref="PageTypeTable.PutPageType"/> calls still to be continued: each holds one
        /// general reference (Xen's vCPU <c>old_guest_table</c> with <c>old_guest_table_partial</c>).
        /// </summary>
        public int PendingPuts { get; }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    public readonly partial struct EptEntry
    {
        // Bit layout of one EPT paging-structure entry, numbered as in the Intel SDM (Vol. 3C,
        // 29.3.2) plus the software fields Xen keeps in the ignored bits (docs/model/ept.md §1.1).

        /// <summary>Bit 0: read allowed.</summary>
        public const int ReadShift = 0;
        /// <summary>Bit 1: write allowed.</summary>
        public const int WriteShift = 1;
        /// <summary>Bit 2: execute allowed.</summary>
        public const int ExecuteShift = 2;
        /// <summary>Bits 2:0, the r/w/x permissions; an entry is present when any is set.</summary>
        public const ulong RwxMask = 0x7;
        /// <summary>Bits 5:3: EPT memory type (leaf only).</summary>
        public const int MemoryTypeShift = 3;
        /// <summary>Mask of the memory-type field in place.</summary>
        public const ulong MemoryTypeMask = 0x7UL << MemoryTypeShift;
        /// <summary>Bit 6: ignore guest PAT (leaf only).</summary>
        public const int IgnorePatShift = 6;
        /// <summary>Bit 7: this PDE/PDPTE maps a superpage.</summary>
        public const int SuperPageShift = 7;
        /// <summary>Bit 8: accessed.</summary>
        public const int AccessedShift = 8;
        /// <summary>Bit 9: dirty (leaf only).</summary>
        public const int DirtyShift = 9;
        /// <summary>Bit 10: software "recalculate this entry's type" (Xen's recalc).</summary>
        public const int RecalcShift = 10;
        /// <summary>Bit 11: VT-d snoop control.</summary>
        public const int SnoopShift = 11;
        /// <summary>Bits 51:12: frame number of the next table or of the mapped page.</summary>
        public const int MfnShift = 12;
        /// <summary>Mask of the frame-number field in place.</summary>
        public const ulong MfnMask = 0x000F_FFFF_FFFF_F000;
        /// <summary>The largest value the 40-bit frame-number field holds.</summary>
        public const ulong MfnFieldMax = MfnMask >> MfnShift;
        /// <summary>Bits 57:52: software p2m type.</summary>
        public const int TypeShift = 52;
        /// <summary>Mask of the p2m-type field in place.</summary>
        public const ulong TypeMask = 0x3FUL << TypeShift;
        /// <summary>Bit 58: paging-write permission.</summary>
        public const int PagingWriteShift = 58;
        /// <summary>Bits 62:59: software p2m access.</summary>
        public const int AccessShift = 59;
        /// <summary>Mask of the p2m-access field in place.</summary>
        public const ulong AccessMask = 0xFUL << AccessShift;
        /// <summary>Bit 63: suppress #VE.</summary>
        public const int SuppressVeShift = 63;

        /// <summary>Bit 7 in place.</summary>
        public const ulong SuperPageBit = 1UL << SuperPageShift;
        /// <summary>Bit 8 in place.</summary>
        public const ulong AccessedBit = 1UL << AccessedShift;
        /// <summary>Bit 9 in place.</summary>
        public const ulong DirtyBit = 1UL << DirtyShift;
        /// <summary>Bit 6 in place.</summary>
        public const ulong IgnorePatBit = 1UL << IgnorePatShift;
        /// <summary>Bit 10 in place.</summary>
        public const ulong RecalcBit = 1UL << RecalcShift;
        /// <summary>Bit 11 in place.</summary>
        public const ulong SnoopBit = 1UL << SnoopShift;
        /// <summary>Bit 58 in place.</summary>
        public const ulong PagingWriteBit = 1UL << PagingWriteShift;
        /// <summary>Bit 63 in place.</summary>
        public const ulong SuppressVeBit = 1UL << SuppressVeShift;

        /// <summary>Geometry: a frame is 4 KiB.</summary>
        public const int PageBits = 12;
        /// <summary>Bytes in a 4 KiB frame.</summary>
        public const int PageSize = 1 << PageBits;
        /// <summary>Mask of the offset within a 4 KiB frame.</summary>
        public const ulong PageMask = PageSize - 1;
        /// <summary>Index bits per table level (512 entries).</summary>
        public const int TableOrder = 9;
        /// <summary>Entries per table.</summary>
        public const int EntriesPerTable = 1 << TableOrder;

        /// <summary>Xen's memory type 7: reserved in a leaf, used as a deliberate "please fault" marker.</summary>
        public const byte MemoryTypeFaultMarker = 7;
        /// <summary>Write-back memory type.</summary>
        public const byte MemoryTypeWriteBack = 6;
        /// <summary>Uncacheable memory type.</summary>
        public const byte MemoryTypeUncacheable = 0;
    }
}

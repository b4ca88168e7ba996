// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>One line of stage1-cases.txt with its config.</summary>
    internal sealed record Stage1Case(string Id, int Levels, bool Wp, bool Nxe, int MaxPhysAddr, ulong Gla, PageFaultErrorCode Access, ulong[] Entries, Stage1Expected Expected)
    {
        /// <summary>Guest frame of the top table (CR3); table i is TableGfn + i.</summary>
        public const ulong TableGfn = 0x10;

        public const ulong Leaf4K = 0x6543_2000;
        public const ulong Leaf2M = 0x6540_0000;
        public const ulong Leaf1G = 0x4000_0000;

        public static ulong Index(ulong gla, int level) => (gla >> (12 + (9 * (level - 1)))) & 511;

        public static bool IsLeaf(ulong entry, int level) => level == 1 || (level is 2 or 3 && (entry & Pte.PageSize) != 0);

        /// <summary>The raw entry i with its address field filled in as the file header says.</summary>
        public ulong EntryValue(int i)
        {
            ulong e = Entries[i];
            if (e == 0)
            {
                return 0;
            }

            int level = Levels - i;
            ulong address = !IsLeaf(e, level) ? (TableGfn + (ulong)i + 1) << 12 : level == 1 ? Leaf4K : level == 2 ? Leaf2M : Leaf1G;
            return e | address;
        }
    }
}

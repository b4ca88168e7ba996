// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;

namespace FastEpt.Tests.Guest
{
    /// <summary>Guest paging-structure entry bits (Intel SDM Vol. 3A tables 4-15 to 4-20).</summary>
    internal static class Pte
    {
        public const ulong Present = GuestPageTableBuilder.Present;
        public const ulong Writable = GuestPageTableBuilder.Writable;
        public const ulong User = GuestPageTableBuilder.User;
        public const ulong Accessed = GuestPageTableBuilder.Accessed;
        public const ulong Dirty = GuestPageTableBuilder.Dirty;
        public const ulong PageSize = GuestPageTableBuilder.PageSize;
        public const ulong ExecuteDisable = 1UL << 63;

        /// <summary>Bits <paramref name="high"/>..<paramref name="low"/> inclusive; 0 when high &lt; low.</summary>
        public static ulong Bits(int high, int low)
        {
            ulong mask = 0;
            for (int b = low; b <= high; b++)
            {
                mask |= 1UL << b;
            }

            return mask;
        }
    }

    /// <summary>What the reference walk decided (the EPT never fails in its model).</summary>
    internal readonly record struct Stage1Outcome(GuestStatus Status, ulong Gpa, PageFaultErrorCode ErrorCode, int Level)
    {
        public override string ToString() => $"{Status} gpa=0x{Gpa:X} pfec=0x{(uint)ErrorCode:X} level={Level}";
    }

    /// <summary>
    /// A deliberately plain model of the IA-32e 4-level / 5-level linear-address translation
    /// (SDM Vol. 3A 4.5 to 4.8) over a dictionary of guest-physical quadwords, written from the
    /// SDM without looking at FastEpt's walker: no EPT (every guest-physical access succeeds), no
    /// SMEP, SMAP, protection keys or PCIDs. It lists the entries of the walk, checks P and the
    /// reserved bits entry by entry, then applies the access-rights rules of 4.6 to the list, and
    /// only for a walk without a fault sets A in every entry used and D in the leaf of a write.
    /// </summary>
    internal sealed class ReferenceStage1Walker
    {
        private readonly Dictionary<ulong, ulong> _memory;

        /// <param name="memory">Guest memory: 8-byte-aligned guest-physical address → quadword; a missing address reads as 0.
        /// A/D updates are written back into it.</param>
        public ReferenceStage1Walker(Dictionary<ulong, ulong> memory) => _memory = memory;

        /// <summary>4 (IA-32e 4-level paging, 48-bit linear addresses) or 5 (LA57).</summary>
        public int Levels { get; set; } = 4;

        /// <summary>CR0.WP.</summary>
        public bool Wp { get; set; } = true;

        /// <summary>IA32_EFER.NXE.</summary>
        public bool Nxe { get; set; } = true;

        /// <summary>MAXPHYADDR (the CPU never reports more than 52).</summary>
        public int MaxPhysAddr { get; set; } = 48;

        /// <summary>CR3: bits MAXPHYADDR-1:12 locate the top table; the low 12 bits are flags (ignored here).</summary>
        public ulong Cr3 { get; set; }

        public ulong Read(ulong gpa) => _memory.TryGetValue(gpa, out ulong v) ? v : 0;

        public Stage1Outcome Translate(ulong gla, PageFaultErrorCode access)
        {
            bool isWrite = (access & PageFaultErrorCode.Write) != 0;
            bool isUser = (access & PageFaultErrorCode.User) != 0;
            bool isFetch = (access & PageFaultErrorCode.InstructionFetch) != 0;

            // 4.5.1 / 3.3.7.1: bits 63:47 (63:56 with LA57) must all equal, else #GP and no walk.
            int linearBits = Levels == 5 ? 57 : 48;
            ulong top = gla >> (linearBits - 1);
            if (top != 0 && top != Pte.Bits(63 - (linearBits - 1), 0))
            {
                return new Stage1Outcome(GuestStatus.NonCanonical, 0, PageFaultErrorCode.None, Levels);
            }

            // 4.7: W/R and U/S describe the access; I/D is reported for fetches only when NXE = 1
            // (or SMEP, not modelled).
            PageFaultErrorCode described = PageFaultErrorCode.None;
            if (isWrite)
            {
                described |= PageFaultErrorCode.Write;
            }

            if (isUser)
            {
                described |= PageFaultErrorCode.User;
            }

            if (isFetch && Nxe)
            {
                described |= PageFaultErrorCode.InstructionFetch;
            }

            int m = Math.Min(MaxPhysAddr, 52);
            List<(ulong Gpa, ulong Value)> used = new(5);
            ulong table = Cr3 & Pte.Bits(m - 1, 12);
            int leafLevel = 0;
            ulong gpa = 0;
            for (int level = Levels; level >= 1; level--)
            {
                int shift = 12 + (9 * (level - 1));
                ulong index = (gla >> shift) & 511;
                ulong entryGpa = table + (index * 8);
                ulong entry = Read(entryGpa);

                // Not present: no translation, P = 0 in the error code; nothing else of the entry counts.
                if ((entry & Pte.Present) == 0)
                {
                    return new Stage1Outcome(GuestStatus.PageFault, 0, described, level);
                }

                bool pageSize = (entry & Pte.PageSize) != 0;
                bool isLeaf = level == 1 || ((level == 2 || level == 3) && pageSize);

                // Reserved bits (tables 4-15 to 4-20).
                ulong reserved = Pte.Bits(51, m);
                if (!Nxe)
                {
                    reserved |= Pte.ExecuteDisable;
                }

                if (level == 5 || level == 4)
                {
                    reserved |= Pte.PageSize;
                }

                if (level == 3 && pageSize)
                {
                    reserved |= Pte.Bits(29, 13);
                }

                if (level == 2 && pageSize)
                {
                    reserved |= Pte.Bits(20, 13);
                }

                if ((entry & reserved) != 0)
                {
                    return new Stage1Outcome(GuestStatus.PageFault, 0, described | PageFaultErrorCode.Present | PageFaultErrorCode.Reserved, level);
                }

                used.Add((entryGpa, entry));
                if (isLeaf)
                {
                    // The leaf supplies address bits M-1:shift (bit 12 of a 1G/2M entry is PAT, below shift);
                    // the linear address supplies shift-1:0.
                    leafLevel = level;
                    gpa = (entry & Pte.Bits(m - 1, shift)) | (gla & Pte.Bits(shift - 1, 0));
                    break;
                }

                table = entry & Pte.Bits(m - 1, 12);
            }

            // 4.6: access rights, from the combined flags of every entry used.
            bool everyLevelWritable = true, everyLevelUser = true, anyLevelXd = false;
            foreach ((ulong _, ulong value) in used)
            {
                everyLevelWritable &= (value & Pte.Writable) != 0;
                everyLevelUser &= (value & Pte.User) != 0;
                anyLevelXd |= (value & Pte.ExecuteDisable) != 0;
            }

            bool allowed;
            if (isUser)
            {
                // A user-mode access is only to user-mode addresses (U/S = 1 at every level).
                if (!everyLevelUser)
                {
                    allowed = false;
                }
                else if (isFetch)
                {
                    allowed = !Nxe || !anyLevelXd;
                }
                else if (isWrite)
                {
                    allowed = everyLevelWritable;           // regardless of CR0.WP
                }
                else
                {
                    allowed = true;
                }
            }
            else
            {
                // Supervisor: reads always; fetches unless XD (no SMEP); writes when WP = 0 or R/W = 1 everywhere.
                if (isFetch)
                {
                    allowed = !Nxe || !anyLevelXd;
                }
                else if (isWrite)
                {
                    allowed = !Wp || everyLevelWritable;
                }
                else
                {
                    allowed = true;
                }
            }

            if (!allowed)
            {
                return new Stage1Outcome(GuestStatus.PageFault, 0, described | PageFaultErrorCode.Present, leafLevel);
            }

            // 4.8: A in every entry used, D in the leaf of a write. Entries are updated in memory
            // (a slot used at two levels ends up with the union of both updates).
            for (int i = 0; i < used.Count; i++)
            {
                ulong set = Pte.Accessed;
                if (i == used.Count - 1 && isWrite)
                {
                    set |= Pte.Dirty;
                }

                _memory[used[i].Gpa] = Read(used[i].Gpa) | set;
            }

            return new Stage1Outcome(GuestStatus.Ok, gpa, PageFaultErrorCode.None, leafLevel);
        }
    }
}

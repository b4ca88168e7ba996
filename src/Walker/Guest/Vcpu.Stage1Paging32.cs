// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // 32-bit paging (Intel SDM Vol. 3A 4.3): a page directory and page tables of 1024 4-byte
    // entries, 4 MiB pages where CR4.PSE is set, with PSE-36 physical-address bits above 31.
    // Each entry is read as the 8-byte-aligned quadword that holds it, so both table accessors
    // serve both entry sizes; the A/D compare-exchange covers that quadword (a change to the other
    // half makes the walk re-read, as any change does).
    public sealed partial class Vcpu
    {
        private const uint Pde4MReserved21 = 1u << 21;

        private GuestTranslation Stage1Paging32<TTables>(ref TTables tables, int maxPhys, ulong gla, PageFaultErrorCode pfec, in WalkControls c)
            where TTables : struct, IGuestTableAccess
        {
            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            bool pse = c.Has(WalkControls.Pse);
            int m = Math.Clamp(maxPhys, 32, 40);
            Span<ulong> slotGpa = stackalloc ulong[2];
            Span<ulong> entryGpa = stackalloc ulong[2];
            Span<ulong> slotHpa = stackalloc ulong[2];
            Span<ulong> slotVal = stackalloc ulong[2];
            Span<ulong> slotSet = stackalloc ulong[2];

            for (int attempt = 0; ; attempt++)
            {
                ulong table = _cr3 & 0xFFFF_F000UL;
                int rights = RightsAll;
                int used = 0;
                int level = 2;
                uint pte;
                int half;
                while (true)
                {
                    // 10 index bits a level: 31:22 for the directory, 21:12 for a table.
                    ulong gpa = table | (((gla >> (EptEntry.PageBits + (10 * (level - 1)))) & 1023) << 2);
                    if (!tables.ReadEntry(gpa & ~7UL, out ulong quad, out ulong hpa, out GuestTranslation readFault, level))
                    {
                        return AtEntry(readFault, gpa);
                    }

                    half = (int)(gpa & 4) * 8;
                    pte = (uint)(quad >> half);
                    EntryStep step = Stage1Step32(pte, level, ref rights, pfec, pse, m, c);
                    if (step >= EntryStep.NotPresent)
                    {
                        return PageFault(Stage1ErrorCode(step, pfec, c), level);
                    }

                    slotGpa[used] = gpa & ~7UL;
                    entryGpa[used] = gpa;
                    slotHpa[used] = hpa;
                    slotSet[used] = PteAccessed << half;
                    slotVal[used++] = quad;
                    if (step == EntryStep.Leaf)
                    {
                        break;
                    }

                    table = pte & 0xFFFF_F000UL;
                    level--;
                }

                slotSet[used - 1] |= write ? PteDirty << half : 0;
                int adResult = tables.SetAccessedDirty(2, slotGpa[..used], slotHpa[..used], slotVal[..used], slotSet[..used], out GuestTranslation adFault);
                if (adResult < 0)
                {
                    return AtEntry(adFault, entryGpa[2 - adFault.Level]);
                }

                if (adResult > 0 && attempt < MaxAdRetries)
                {
                    continue;   // an entry changed under us: walk again, as the CPU re-reads
                }

                ulong leafGpa = level == 1
                    ? (pte & 0xFFFF_F000UL) | (gla & EptEntry.PageMask)
                    : (pte & 0xFFC0_0000UL) | (((ulong)(pte >> 13) & ((1UL << (m - 32)) - 1)) << 32) | (gla & 0x3F_FFFFUL);
                return Stage1Done(leafGpa, level, level == 1 ? EptEntry.PageBits : 22, (pte & PteGlobal) != 0 && Pge);
            }
        }

        // One 32-bit entry: present; a leaf at level 1 or a PS PDE under CR4.PSE, whose bit 21 and
        // bits 20:(M-19) are reserved (table 4-4: bits (M-20):13 are physical bits (M-1):32, M at most
        // 40); no other reserved bits and no XD in 32-bit paging.
        private static EntryStep Stage1Step32(uint pte, int level, ref int rights, PageFaultErrorCode pfec, bool pse, int m, in WalkControls c)
        {
            if ((pte & PtePresent) == 0)
            {
                return EntryStep.NotPresent;
            }

            bool leaf = level == 1 || (pse && (pte & PtePs) != 0);
            if (leaf && level == 2)
            {
                uint reserved = Pde4MReserved21 | ((Pde4MReserved21 - 1) & ~((1u << (m - 19)) - 1));
                if ((pte & reserved) != 0)
                {
                    return EntryStep.Reserved;
                }
            }

            rights &= (int)((pte & (PteWrite | PteUser)) >> 1);
            return leaf ? LeafAccess(pfec, rights, pte, c) : EntryStep.Table;
        }

        // An EPT failure on a 4-byte entry names the entry, not the quadword it was read as.
        private static GuestTranslation AtEntry(GuestTranslation fault, ulong entryGpa)
            => fault.Status is GuestStatus.EptViolation or GuestStatus.EptMisconfig
                ? new GuestTranslation(fault.Status, entryGpa, fault.Hpa, fault.ErrorCode, fault.Ept, fault.Level)
                : fault;
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>
    /// An EPT walk written from the Intel SDM's tables (Vol. 3C 29.3.2 "EPT Translation
    /// Mechanism", 29.3.3.1 "EPT Misconfigurations", 29.3.3.2 "EPT Violations") and
    /// docs/model/ept.md, as data: what bits 2:0 mean, which memory types are reserved, which
    /// levels may map a page and which bits each format reserves. It shares no code with the
    /// walkers under test (P2m.WalkFrom, the batch paths, the C library) and is checked against
    /// the hand-derived vectors of tests/Data (SdmEptModelTests), so it can serve as their oracle.
    /// native/tests/reference.c holds the same tables in C.
    /// </summary>
    internal static class SdmEptModel
    {
        /// <summary>The walker's inputs besides the tables.</summary>
        /// <param name="Levels">4 or 5 (EPTP bits 5:3 + 1).</param>
        /// <param name="MaxPhyAddr">MAXPHYADDR: entry bits 51:MAXPHYADDR are reserved.</param>
        /// <param name="ExecuteOnly">IA32_VMX_EPT_VPID_CAP bit 0: bits 2:0 = 100b allowed.</param>
        /// <param name="Support1G">IA32_VMX_EPT_VPID_CAP bit 17: a PDPTE may map a 1 GiB page.</param>
        /// <param name="AccessDirty">EPTP bit 6: the walk sets accessed (and, for writes, dirty) flags.</param>
        /// <param name="HostFrames">Frames of host memory: a table pointer at or beyond it is a misconfiguration (docs/model/ept.md).</param>
        public readonly record struct Config(int Levels, int MaxPhyAddr, bool ExecuteOnly, bool Support1G, bool AccessDirty, ulong HostFrames)
        {
            public static Config Of(P2mOptions o, ulong hostFrames)
                => new(o.Levels, o.HostAddressBits, o.ExecuteOnly, o.Support1G, o.AccessDirty, hostFrames);
        }

        // SDM 29.3.3.1: what an entry's bits 2:0 (read, write, execute) make of it.
        private enum Rights
        {
            NotPresent,         // 000b: the walk ends in an EPT violation at this entry
            Usable,
            Misconfigured,      // write without read (010b, 110b)
            ExecuteOnly,        // 100b: a misconfiguration unless the CPU supports execute-only
        }

        private static readonly Rights[] s_rights =
        [
            Rights.NotPresent,      // 000
            Rights.Usable,          // r
            Rights.Misconfigured,   // w
            Rights.Usable,          // rw
            Rights.ExecuteOnly,     // x
            Rights.Usable,          // rx
            Rights.Misconfigured,   // wx
            Rights.Usable,          // rwx
        ];

        // SDM 29.3.3.1: EPT memory types 2, 3 and 7 are reserved (bits 5:3 of a page-mapping entry).
        private static readonly bool[] s_reservedMemoryType = [false, false, true, true, false, false, false, true];

        // One row per level (index = Intel level): whether bit 7 makes the entry map a page, the
        // page size, and the address bits below the page size that a mapping entry reserves.
        private enum MapsPage
        {
            Always,             // PTE: bit 7 is ignored
            IfBit7,             // PDE: bit 7 = 2 MiB page
            IfBit7With1G,       // PDPTE: bit 7 = 1 GiB page where supported, else reserved
            Never,              // PML4E, PML5E: bit 7 reserved
        }

        private readonly record struct LevelFormat(MapsPage Maps, int PageShift);

        private static readonly LevelFormat[] s_levels =
        [
            default,
            new(MapsPage.Always, 12),
            new(MapsPage.IfBit7, 21),
            new(MapsPage.IfBit7With1G, 30),
            new(MapsPage.Never, 39),
            new(MapsPage.Never, 48),
        ];

        private const ulong RwxBits = 0b111;                        // bits 2:0
        private const int MemoryTypeShift = 3;                      // bits 5:3 of a page-mapping entry
        private const ulong PageBit = 1UL << 7;
        private const ulong AccessedBit = 1UL << 8;
        private const ulong DirtyBit = 1UL << 9;
        private const ulong TableReservedLow = 0b0111_1000;         // bits 6:3 of an entry referencing a table
        private const ulong AddressField = 0x000F_FFFF_FFFF_F000;   // bits 51:12

        /// <summary>Walks <paramref name="gpa"/> for <paramref name="access"/> from <paramref name="rootMfn"/>.</summary>
        public static EptTranslation Walk(HostMemory memory, ulong rootMfn, Config config, ulong gpa, AccessKind access)
        {
            ulong aboveMaxPhy = AddressField & ~((1UL << config.MaxPhyAddr) - 1);
            ulong table = rootMfn;
            ulong rights = RwxBits;                 // ANDed over every entry walked (qualification bits 5:3)
            for (int level = config.Levels; ; level--)
            {
                LevelFormat format = s_levels[level];
                ulong slot = (table << 12) + (((gpa >> (format.PageShift)) & 511) * 8);
                ulong pte = memory.ReadUInt64(slot);
                switch (s_rights[pte & RwxBits])
                {
                    case Rights.NotPresent:
                        return new EptTranslation(EptStatus.Violation, 0, level, (ulong)access);
                    case Rights.Misconfigured:
                    case Rights.ExecuteOnly when !config.ExecuteOnly:
                        return Misconfig(level);
                }

                // Bit 7 where it is reserved (PML4E, PML5E, a PDPTE without 1G support) is
                // taken as a page-mapping entry the level does not allow: a misconfiguration.
                bool mapsPage = format.Maps == MapsPage.Always || (pte & PageBit) != 0;
                if (!mapsPage)
                {
                    ulong next = (pte & AddressField) >> 12;
                    if ((pte & (TableReservedLow | aboveMaxPhy)) != 0 || next >= config.HostFrames)
                    {
                        return Misconfig(level);
                    }

                    rights &= pte;
                    if (config.AccessDirty && (pte & AccessedBit) == 0)
                    {
                        memory.WriteUInt64(slot, pte | AccessedBit);
                    }

                    table = next;
                    continue;
                }

                // A page-mapping entry: allowed at this level, no reserved address bits below the
                // page size or above MAXPHYADDR, a defined memory type.
                bool allowed = format.Maps != MapsPage.Never && (format.Maps != MapsPage.IfBit7With1G || config.Support1G);
                ulong pageMask = (1UL << format.PageShift) - 1;
                ulong reserved = aboveMaxPhy | (pageMask & AddressField);
                if (!allowed || (pte & reserved) != 0 || s_reservedMemoryType[(pte >> MemoryTypeShift) & 7])
                {
                    return Misconfig(level);
                }

                rights &= pte;
                ulong wanted = (ulong)access;
                if ((wanted & ~rights) != 0)
                {
                    return new EptTranslation(EptStatus.Violation, 0, level, wanted | (rights << 3));
                }

                if (config.AccessDirty)
                {
                    ulong flags = AccessedBit | ((access & AccessKind.Write) != 0 ? DirtyBit : 0);
                    if ((pte & flags) != flags)
                    {
                        memory.WriteUInt64(slot, pte | flags);
                    }
                }

                return new EptTranslation(EptStatus.Ok, (pte & AddressField & ~pageMask) | (gpa & pageMask), level, 0);
            }
        }

        private static EptTranslation Misconfig(int level) => new(EptStatus.Misconfig, 0, level, 0);
    }
}

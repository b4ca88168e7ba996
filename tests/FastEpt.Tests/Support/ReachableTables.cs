// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>
    /// Counts the table frames reachable from a root by reading the raw entry words, independently
    /// of the p2m's own bookkeeping (a table pointer: r, w or x set and bit 7 clear above level 1).
    /// </summary>
    internal static class ReachableTables
    {
        public static long Count(HostMemory memory, ulong table, int level)
        {
            long n = 1;
            for (ulong i = 0; i < 512 && level > 1; i++)
            {
                ulong pte = memory.ReadUInt64((table << 12) + i * 8);
                if ((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                {
                    n += Count(memory, (pte & EptEntry.MfnMask) >> 12, level - 1);
                }
            }

            return n;
        }
    }
}

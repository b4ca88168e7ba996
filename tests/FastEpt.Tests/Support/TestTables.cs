// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>Reads and pokes live tables directly through HostMemory, independently of the walker.</summary>
    internal static class TestTables
    {
        /// <summary>Host-physical address of the slot for <paramref name="gfn"/> at Intel level <paramref name="level"/>
        /// (following present non-superpage entries from the root), or null if the path stops earlier.</summary>
        public static ulong? SlotHpa(P2m p2m, ulong gfn, int level)
        {
            HostMemory m = p2m.Memory;
            ulong table = p2m.RootMfn;
            for (int l = p2m.Levels; ; l--)
            {
                ulong hpa = (table << 12) + (((gfn >> (9 * (l - 1))) & 511) * 8);
                if (l == level)
                {
                    return hpa;
                }

                ulong pte = m.ReadUInt64(hpa);
                if ((pte & 7) == 0 || (pte & 0x80) != 0)
                {
                    return null;
                }

                table = (pte & EptEntry.MfnMask) >> 12;
            }
        }

        public static EptEntry Read(P2m p2m, ulong gfn, int level)
            => new(p2m.Memory.ReadUInt64(SlotHpa(p2m, gfn, level) ?? throw new InvalidOperationException("no path")));

        public static void Write(P2m p2m, ulong gfn, int level, ulong raw)
            => p2m.Memory.WriteUInt64(SlotHpa(p2m, gfn, level) ?? throw new InvalidOperationException("no path"), raw);

        /// <summary>A hash of every allocated frame outside [guestFirst, guestFirst+guestCount).</summary>
        public static ulong HashTables(HostMemory m, ulong guestFirst = 0, ulong guestCount = 0)
        {
            ulong h = 1469598103934665603UL;
            for (ulong f = 0; f < (ulong)m.FrameCount; f++)
            {
                if ((f >= guestFirst && f < guestFirst + guestCount) || !m.IsAllocated(f))
                {
                    continue;
                }

                h = unchecked((h ^ f) * 1099511628211UL);
                foreach (ulong w in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(m.Frame(f)))
                {
                    h = unchecked((h ^ w) * 1099511628211UL);
                }
            }

            return h;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>The registers the reference reads, named as the SDM names them.</summary>
    internal struct PagingRegs
    {
        public GuestPagingMode Mode;
        public bool Wp, Nxe, Pse, Pge, Smep, Smap, Ac, Pke, Pks;
        public uint Pkru, Pkrs;
        public ulong Cr3;
    }

    /// <summary>What the reference decided; <see cref="Qualification"/> only for EPT violations.</summary>
    internal readonly record struct PagingOutcome(GuestStatus Status, ulong Gpa, PageFaultErrorCode ErrorCode, int Level, ulong Qualification, int PageShift, bool Global)
    {
        public override string ToString()
            => $"{Status} gpa=0x{Gpa:X} pfec=0x{(uint)ErrorCode:X} level={Level} qual=0x{Qualification:X} shift={PageShift} g={Global}";
    }

    /// <summary>One paging structure of a mode: the linear-address bits that index it, its entry size, and whether PS maps a page there.</summary>
    internal readonly record struct StructureRow(string Name, int Level, int IndexHigh, int IndexLow, int EntryBytes, bool PsMapsPage);

    /// <summary>
    /// An independent model of stage-1 translation in every paging mode, written from the Intel
    /// SDM Vol. 3A 4.3 to 4.8 tables and prose, not from FastEpt's walker: the structure of each
    /// mode is a table of rows (figures 4-2, 4-5, 4-8, 4-9), reserved bits are spelled per SDM
    /// table, the access-rights decision follows 4.6.1 sentence by sentence, and the error code
    /// follows 4.7 flag by flag. The EPT is a permission function of the guest-physical address
    /// (identity map); guest memory is a dictionary of quadwords (missing = 0), and A/D writes
    /// go back into it.
    /// </summary>
    internal sealed class PagingReference
    {
        public const ulong QualRead = 1, QualWrite = 2, QualFetch = 4, QualGla = 0x80, QualFinal = 0x100;

        private static readonly StructureRow[] s_paging32 = [new("PDE", 2, 31, 22, 4, true), new("PTE", 1, 21, 12, 4, false)];
        private static readonly StructureRow[] s_pae = [new("PDE", 2, 29, 21, 8, true), new("PTE", 1, 20, 12, 8, false)];
        private static readonly StructureRow[] s_level4 =
        [
            new("PML4E", 4, 47, 39, 8, false), new("PDPTE", 3, 38, 30, 8, true), new("PDE", 2, 29, 21, 8, true), new("PTE", 1, 20, 12, 8, false),
        ];

        private static readonly StructureRow[] s_level5 = [new("PML5E", 5, 56, 48, 8, false), .. s_level4];

        private readonly Dictionary<ulong, ulong> _memory;
        private readonly Func<ulong, int> _eptPerms;       // R=1, W=2, X=4 of the EPT at a GPA; 0 = not mapped
        private readonly bool _eptAccessDirty;
        private readonly ulong[] _pdpte = new ulong[4];
        private readonly (ulong Gpa, int Bytes)[] _used = new (ulong, int)[5];
        private readonly ulong[] _usedValue = new ulong[5];

        public PagingReference(Dictionary<ulong, ulong> memory, int maxPhysAddr, Func<ulong, int> eptPerms, bool eptAccessDirty)
        {
            _memory = memory;
            M = Math.Min(maxPhysAddr, 52);
            _eptPerms = eptPerms;
            _eptAccessDirty = eptAccessDirty;
        }

        /// <summary>MAXPHYADDR.</summary>
        public int M { get; }

        public PagingRegs Regs;

        public static ulong Bits(int high, int low) => high < low ? 0 : (high == 63 ? ~0UL : (1UL << (high + 1)) - 1) & ~((1UL << low) - 1);

        private ulong ReadQuad(ulong gpa) => _memory.TryGetValue(gpa & ~7UL, out ulong v) ? v : 0;

        private ulong ReadEntry(ulong gpa, int bytes)
            => bytes == 8 ? ReadQuad(gpa) : (ReadQuad(gpa) >> (int)((gpa & 4) * 8)) & 0xFFFF_FFFF;

        private void OrEntry(ulong gpa, int bytes, ulong bits)
            => _memory[gpa & ~7UL] = ReadQuad(gpa) | (bytes == 8 ? bits : bits << (int)((gpa & 4) * 8));

        private static ulong EptPermBits(int perms) => (ulong)perms << 3;

        /// <summary>MOV to CR3 under PAE paging (SDM 4.4.1): the four PDPTEs through the EPT as reads, reserved bits 2:1, 8:5, 63:M.</summary>
        public PagingOutcome LoadPdptes()
        {
            ulong[] loaded = new ulong[4];
            for (int i = 0; i < 4; i++)
            {
                ulong gpa = (Regs.Cr3 & Bits(31, 5)) + (ulong)(8 * i);
                int perms = _eptPerms(gpa);
                if ((perms & 1) == 0)
                {
                    // A read of a register load: no linear address (bits 7 and 8 clear), even with EPT A/D on.
                    return new PagingOutcome(GuestStatus.EptViolation, gpa, 0, 3, QualRead | EptPermBits(perms), 0, false);
                }

                ulong e = ReadQuad(gpa);
                if ((e & 1) != 0 && (e & (Bits(2, 1) | Bits(8, 5) | Bits(63, M))) != 0)
                {
                    return new PagingOutcome(GuestStatus.GeneralProtection, gpa, 0, 3, 0, 0, false);
                }

                loaded[i] = e;
            }

            loaded.CopyTo(_pdpte, 0);
            return new PagingOutcome(GuestStatus.Ok, 0, 0, 0, 0, 0, false);
        }

        private ulong Reserved(int level, bool mapsPage)
        {
            ulong xd = Regs.Nxe ? 0 : 1UL << 63;
            switch (Regs.Mode)
            {
                case GuestPagingMode.Paging32:
                    // Table 4-4 (4 MiB PDE): bit 21, and 20:(M'-19) with M' = min(MAXPHYADDR, 40). Nothing else anywhere.
                    return level == 2 && mapsPage ? Bits(21, 21) | Bits(20, Math.Min(M, 40) - 19) : 0;
                case GuestPagingMode.Pae:
                    // Tables 4-9 to 4-11: 62:M (and XD without NXE); a 2 MiB PDE also 20:13.
                    return Bits(62, M) | xd | (level == 2 && mapsPage ? Bits(20, 13) : 0);
                default:
                    // Tables 4-14 to 4-20: 51:M, XD without NXE; PS in a PML5E/PML4E; 29:13 of a 1 GiB, 20:13 of a 2 MiB leaf.
                    ulong r = Bits(51, M) | xd;
                    if (level >= 4)
                    {
                        r |= 1UL << 7;
                    }

                    if (mapsPage && level == 3)
                    {
                        r |= Bits(29, 13);
                    }

                    if (mapsPage && level == 2)
                    {
                        r |= Bits(20, 13);
                    }

                    return r;
            }
        }

        /// <summary>Translates <paramref name="gla"/>; a walk that completes sets A/D in memory.</summary>
        public PagingOutcome Translate(ulong gla, PageFaultErrorCode access)
        {
            bool write = (access & PageFaultErrorCode.Write) != 0;
            bool user = (access & PageFaultErrorCode.User) != 0;
            bool fetch = (access & PageFaultErrorCode.InstructionFetch) != 0;
            bool implicitSv = (access & PageFaultErrorCode.ImplicitSupervisor) != 0;
            bool ia32e = Regs.Mode is GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5;
            bool nxeInEffect = Regs.Nxe && Regs.Mode != GuestPagingMode.Paging32;

            // 4.7, flag by flag, for any #PF of this access.
            PageFaultErrorCode pf = (write ? PageFaultErrorCode.Write : 0) | (user ? PageFaultErrorCode.User : 0)
                                    | (fetch && (Regs.Smep || nxeInEffect) ? PageFaultErrorCode.InstructionFetch : 0);
            PagingOutcome Fault(PageFaultErrorCode extra, int level) => new(GuestStatus.PageFault, 0, pf | extra, level, 0, 0, false);

            StructureRow[] rows;
            ulong la;
            ulong table;
            switch (Regs.Mode)
            {
                case GuestPagingMode.Paging32:
                    rows = s_paging32;
                    la = gla & 0xFFFF_FFFF;
                    table = Regs.Cr3 & Bits(31, 12);
                    break;
                case GuestPagingMode.Pae:
                    rows = s_pae;
                    la = gla & 0xFFFF_FFFF;
                    ulong pdpte = _pdpte[la >> 30];
                    if ((pdpte & 1) == 0)
                    {
                        return Fault(0, 3);
                    }

                    table = pdpte & Bits(M - 1, 12);
                    break;
                default:
                    rows = Regs.Mode == GuestPagingMode.LongMode5 ? s_level5 : s_level4;
                    int width = Regs.Mode == GuestPagingMode.LongMode5 ? 57 : 48;
                    ulong top = gla >> (width - 1);
                    if (top != 0 && top != Bits(63 - width + 1, 0))
                    {
                        return new PagingOutcome(GuestStatus.NonCanonical, 0, 0, rows.Length, 0, 0, false);
                    }

                    la = gla;
                    table = Regs.Cr3 & Bits(M - 1, 12);
                    break;
            }

            int n = 0;
            ulong leafEntry = 0;
            int shift = 12;
            foreach (StructureRow row in rows)
            {
                ulong entryGpa = table + (((la >> row.IndexLow) & Bits(row.IndexHigh - row.IndexLow, 0)) * (ulong)row.EntryBytes);
                int perms = _eptPerms(entryGpa);
                if ((perms & 1) == 0 || (_eptAccessDirty && (perms & 2) == 0))
                {
                    ulong q = QualRead | (_eptAccessDirty ? QualWrite : 0) | EptPermBits(perms) | QualGla;
                    return new PagingOutcome(GuestStatus.EptViolation, entryGpa, 0, row.Level, q, 0, false);
                }

                ulong e = ReadEntry(entryGpa, row.EntryBytes);
                if ((e & 1) == 0)
                {
                    return Fault(0, row.Level);
                }

                bool ps = (e & (1UL << 7)) != 0;
                bool mapsPage = row.Level == 1 || (row.PsMapsPage && ps && (Regs.Mode != GuestPagingMode.Paging32 || Regs.Pse));
                if ((e & Reserved(row.Level, mapsPage)) != 0)
                {
                    return Fault(PageFaultErrorCode.Present | PageFaultErrorCode.Reserved, row.Level);
                }

                _used[n] = (entryGpa, row.EntryBytes);
                _usedValue[n++] = e;
                if (mapsPage)
                {
                    leafEntry = e;
                    shift = row.IndexLow;
                    break;
                }

                table = Regs.Mode == GuestPagingMode.Paging32 ? e & Bits(31, 12) : e & Bits(M - 1, 12);
            }

            int leafLevel = rows[Array.FindIndex(rows, r => r.IndexLow == shift)].Level;

            // 4.6: R/W and U/S from every entry used; XD only where NXE is in effect (never in 32-bit paging).
            bool allWritable = true, allUser = true, anyXd = false;
            for (int i = 0; i < n; i++)
            {
                allWritable &= (_usedValue[i] & 2) != 0;
                allUser &= (_usedValue[i] & 4) != 0;
                anyXd |= nxeInEffect && (_usedValue[i] >> 63) != 0;
            }

            bool allowed = Allowed(user, write, fetch, implicitSv, allWritable, allUser, anyXd);
            bool pk = !fetch && ia32e && KeyForbids(leafEntry, allUser, user, write);
            if (!allowed || pk)
            {
                return Fault(PageFaultErrorCode.Present | (pk ? PageFaultErrorCode.ProtectionKey : 0), leafLevel);
            }

            // 4.8: A in every entry used (top down), D in the leaf of a write; each a guest write the EPT must allow.
            for (int i = 0; i < n; i++)
            {
                ulong set = 1UL << 5 | (i == n - 1 && write ? 1UL << 6 : 0);
                if ((ReadEntry(_used[i].Gpa, _used[i].Bytes) & set) == set)
                {
                    continue;
                }

                int perms = _eptPerms(_used[i].Gpa);
                if ((perms & 2) == 0)
                {
                    // With EPT A/D off the update of an entry read for it is a read and a write.
                    ulong q = QualWrite | (_eptAccessDirty ? 0 : QualRead) | EptPermBits(perms) | QualGla;
                    return new PagingOutcome(GuestStatus.EptViolation, _used[i].Gpa, 0, rows[0].Level - i, q, 0, false);
                }

                OrEntry(_used[i].Gpa, _used[i].Bytes, set);
            }

            ulong gpa = LeafAddress(leafEntry, shift) | (la & Bits(shift - 1, 0));
            bool global = Regs.Pge && (leafEntry & (1UL << 8)) != 0;
            int fperms = _eptPerms(gpa);
            ulong kind = fetch ? QualFetch : write ? QualWrite : QualRead;
            if ((fperms & (int)kind) == 0)
            {
                return new PagingOutcome(GuestStatus.EptViolation, gpa, 0, leafLevel, kind | EptPermBits(fperms) | QualGla | QualFinal, 0, false);
            }

            return new PagingOutcome(GuestStatus.Ok, gpa, 0, leafLevel, 0, shift, global);
        }

        private ulong LeafAddress(ulong e, int shift)
        {
            if (Regs.Mode != GuestPagingMode.Paging32)
            {
                return e & Bits(M - 1, shift);
            }

            if (shift == 12)
            {
                return e & Bits(31, 12);
            }

            // Table 4-4: bits 31:22 of the page from 31:22, bits (M'-1):32 from (M'-20):13 (PSE-36).
            int mm = Math.Min(M, 40);
            return (e & Bits(31, 22)) | (((e >> 13) & Bits(mm - 33, 0)) << 32);
        }

        // SDM 4.6.1, one case per sentence.
        private bool Allowed(bool user, bool write, bool fetch, bool implicitSv, bool allWritable, bool userAddress, bool anyXd)
        {
            if (user)
            {
                if (!userAddress)
                {
                    return false;                                   // user-mode accesses never reach supervisor-mode addresses
                }

                return fetch ? !anyXd : !write || allWritable;       // writes need R/W everywhere, whatever CR0.WP
            }

            if (fetch)
            {
                if (userAddress && Regs.Smep)
                {
                    return false;                                   // SMEP: no supervisor fetch from a user-mode address
                }

                return !anyXd;
            }

            if (userAddress && Regs.Smap && (implicitSv || !Regs.Ac))
            {
                return false;                                       // SMAP: implicit always, explicit unless RFLAGS.AC
            }

            return !write || !Regs.Wp || allWritable;
        }

        // SDM 4.6.2 and the PK flag of 4.7: PKRU for user-mode addresses (CR4.PKE), IA32_PKRS for
        // supervisor-mode addresses (CR4.PKS); the key is in bits 62:59 of the leaf.
        private bool KeyForbids(ulong leaf, bool userAddress, bool user, bool write)
        {
            int key = (int)((leaf >> 59) & 0xF);
            if (userAddress && Regs.Pke)
            {
                bool ad = ((Regs.Pkru >> (2 * key)) & 1) != 0, wd = ((Regs.Pkru >> ((2 * key) + 1)) & 1) != 0;
                return ad || (wd && write && (Regs.Wp || user));
            }

            if (!userAddress && Regs.Pks)
            {
                bool ad = ((Regs.Pkrs >> (2 * key)) & 1) != 0, wd = ((Regs.Pkrs >> ((2 * key) + 1)) & 1) != 0;
                return ad || (wd && write && (Regs.Wp || user));
            }

            return false;
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The rules for one guest paging entry of a stage-1 walk (Intel SDM Vol. 3A 4.5 to 4.7), written
    // once for the single-address walk (Stage1) and the level-synchronous batch (BatchWalk.Run), so
    // the two walks cannot disagree on what an entry means.
    public sealed partial class Vcpu
    {
        private const ulong PtePresent = 1, PteWrite = 2, PteUser = 4, PteAccessed = 1 << 5, PteDirty = 1 << 6, PtePs = 1 << 7, PteGlobal = 1 << 8;
        private const ulong PteXd = 1UL << 63;

        // Rights accumulated over the levels of a walk, one bit each (SDM 4.6): R/W and U/S hold
        // only while every entry grants them, XD as soon as one entry sets it under EFER.NXE.
        // R/W and U/S sit one bit below their entry bits 1 and 2.
        private const int RightsRw = 0b001, RightsUs = 0b010, RightsXd = 0b100;
        private const int RightsAll = RightsRw | RightsUs;

        // What one entry does to the walk. The failures sort after the two ways to go on.
        private enum EntryStep : byte
        {
            Table,          // a paging structure: the walk goes one level down
            Leaf,           // maps the page, and the access is allowed over all levels
            NotPresent,     // #PF, P clear
            Reserved,       // #PF, P and RSVD set
            Denied,         // #PF, P set: the rights over all levels refuse the access
            DeniedKey,      // #PF, P and PK set: a protection key refuses the data access
        }

        // The control bits one walk reads (SDM 4.6), captured by every register write
        // (Vcpu.Registers.cs) so a walk reads one field. NXE, PKE and PKS are the effective ones:
        // NXE only under PAE or IA-32e paging, PKE/PKS only under IA-32e paging.
        private readonly struct WalkControls
        {
            public const int Wp = 1, Nxe = 2, Smep = 4, Smap = 8, Ac = 16, Pke = 32, Pks = 64, Pse = 128;

            public readonly int Flags;
            public readonly uint Pkru, Pkrs;

            private WalkControls(int flags, uint pkru, uint pkrs)
            {
                Flags = flags;
                Pkru = pkru;
                Pkrs = pkrs;
            }

            public bool Has(int flag) => (Flags & flag) != 0;

            public static WalkControls From(Cr0Flags cr0, Cr4Flags cr4, EferFlags efer, GuestPagingMode mode, uint pkru, uint pkrs, bool ac)
            {
                bool pae = mode is GuestPagingMode.Pae or GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5;
                bool ia32e = mode is GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5;
                int f = ((cr0 & Cr0Flags.WP) != 0 ? Wp : 0)
                        | (pae && (efer & EferFlags.Nxe) != 0 ? Nxe : 0)
                        | ((cr4 & Cr4Flags.Smep) != 0 ? Smep : 0)
                        | ((cr4 & Cr4Flags.Smap) != 0 ? Smap : 0)
                        | (ac ? Ac : 0)
                        | (ia32e && (cr4 & Cr4Flags.Pke) != 0 ? Pke : 0)
                        | (ia32e && (cr4 & Cr4Flags.Pks) != 0 ? Pks : 0)
                        | ((cr4 & Cr4Flags.Pse) != 0 ? Pse : 0);
                return new WalkControls(f, pkru, pkrs);
            }
        }

        // Splits the physical-address width of the EPT into the two masks a guest entry needs:
        // its table or page address (bits MAXPHYADDR-1:12) and its reserved high bits
        // (51:MAXPHYADDR). Bits 62:52 of a guest entry are ignored.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Stage1Masks(int addressBits, out ulong addrMask, out ulong highReserved)
        {
            int maxPhys = Math.Min(addressBits, 52);
            addrMask = ((1UL << maxPhys) - 1) & ~EptEntry.PageMask;
            highReserved = EptEntry.MfnMask & ~((1UL << maxPhys) - 1);
        }

        // A linear address is canonical when bits 63:47 (63:56 under LA57) are all equal; the CPU
        // raises #GP, not #PF, for any other.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool IsCanonical(ulong gla, int levels)
        {
            int vaBits = levels == 5 ? 57 : 48;
            return unchecked((ulong)(((long)gla << (64 - vaBits)) >> (64 - vaBits))) == gla;
        }

        // The GPA of the entry for `gla` in the table at `table` at `level` (9 index bits a level).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong EntryGpa(ulong table, ulong gla, int level)
            => table | (((gla >> (EptEntry.PageBits + (EptEntry.TableOrder * (level - 1)))) & 511) << 3);

        // The GPA a leaf at `level` maps `gla` to: the page address from the entry, the offset
        // (12, 21 or 30 bits) from the linear address.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong LeafGpa(ulong pte, ulong addrMask, ulong gla, int level)
        {
            ulong pageMask = (1UL << (EptEntry.PageBits + (EptEntry.TableOrder * (level - 1)))) - 1;
            return (pte & addrMask & ~pageMask) | (gla & pageMask);
        }

        // One entry of a stage-1 walk for the access `pfec` (W, U, I/D): present, reserved bits,
        // leaf (level 1, or PS at levels 3 and 2), the entry's R/W, U/S and XD folded into
        // `rights`, and at the leaf the permission check over all levels. `rights` changes only
        // on a step that gets past the reserved bits. Accessed and dirty flags are the caller's.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static EntryStep Stage1Step(ulong pte, int level, ref int rights, PageFaultErrorCode pfec, ulong highReserved, in WalkControls c)
        {
            bool nxe = c.Has(WalkControls.Nxe);
            if ((pte & PtePresent) == 0)
            {
                return EntryStep.NotPresent;
            }

            bool leaf = level == 1 || (level <= 3 && (pte & PtePs) != 0);
            if ((pte & ReservedBits(level, leaf, highReserved, nxe)) != 0)
            {
                return EntryStep.Reserved;
            }

            int r = rights & ((int)((pte & (PteWrite | PteUser)) >> 1) | RightsXd);
            r |= nxe && (pte & PteXd) != 0 ? RightsXd : 0;
            rights = r;
            if (!leaf)
            {
                return EntryStep.Table;
            }

            return LeafAccess(pfec, r, pte, c);
        }

        // The #PF error code of a failed step (SDM 4.7): W and U of the access (an implicit
        // supervisor access reports U/S clear), I/D for a fetch where SMEP is on or NXE is in effect,
        // P unless the entry was not present, RSVD for a reserved bit, PK for a key's refusal.
        private static PageFaultErrorCode Stage1ErrorCode(EntryStep step, PageFaultErrorCode pfec, in WalkControls c)
        {
            PageFaultErrorCode code = pfec & (PageFaultErrorCode.Write | PageFaultErrorCode.User);
            if ((c.Flags & (WalkControls.Nxe | WalkControls.Smep)) != 0)
            {
                code |= pfec & PageFaultErrorCode.InstructionFetch;
            }

            return step switch
            {
                EntryStep.NotPresent => code,
                EntryStep.Reserved => code | PageFaultErrorCode.Present | PageFaultErrorCode.Reserved,
                EntryStep.DeniedKey => code | PageFaultErrorCode.Present | PageFaultErrorCode.ProtectionKey,
                _ => code | PageFaultErrorCode.Present,
            };
        }

        // Reserved bits of a guest paging entry at `level` (SDM 4.5): 51:MAXPHYADDR always, XD
        // without EFER.NXE, PS at levels 4/5, and the must-be-zero bits of a 1G or 2M leaf.
        private static ulong ReservedBits(int level, bool leaf, ulong highReserved, bool nxe)
        {
            ulong reserved = highReserved | (nxe ? 0 : PteXd);
            if (level >= 4)
            {
                reserved |= PtePs;
            }
            else if (leaf && level == 3)
            {
                reserved |= 0x3FFF_E000UL;           // 29:13 of a 1G PDPTE
            }
            else if (leaf && level == 2)
            {
                reserved |= 0x1F_E000UL;             // 20:13 of a 2M PDE
            }

            return reserved;
        }

        // The access rights of a leaf over all levels (SDM 4.6.1) and its protection key (4.6.2).
        // A user-mode address has U/S set at every level. `rights` carries XD only under NXE.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static EntryStep LeafAccess(PageFaultErrorCode pfec, int rights, ulong leaf, in WalkControls c)
        {
            bool user = (pfec & PageFaultErrorCode.User) != 0;
            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            bool rw = (rights & RightsRw) != 0, us = (rights & RightsUs) != 0, xd = (rights & RightsXd) != 0;
            if ((pfec & PageFaultErrorCode.InstructionFetch) != 0)
            {
                // Fetches: XD anywhere refuses; a user fetch needs a user page; SMEP refuses
                // supervisor fetches from user pages. Keys never apply to fetches.
                bool deniedFetch = xd || (user ? !us : us && c.Has(WalkControls.Smep));
                return deniedFetch ? EntryStep.Denied : EntryStep.Leaf;
            }

            bool wp = c.Has(WalkControls.Wp);
            bool denied = user
                ? !us || (write && !rw)
                : (write && wp && !rw)
                  || (us && c.Has(WalkControls.Smap) && ((pfec & PageFaultErrorCode.ImplicitSupervisor) != 0 || !c.Has(WalkControls.Ac)));
            if ((c.Flags & (WalkControls.Pke | WalkControls.Pks)) != 0 && KeyDenies(leaf, us, user, write, wp, c))
            {
                return EntryStep.DeniedKey;
            }

            return denied ? EntryStep.Denied : EntryStep.Leaf;
        }

        // A protection key's refusal of a data access (the PK conditions of SDM 4.7): the key is leaf
        // bits 62:59; PKRU governs user-mode pages under CR4.PKE, IA32_PKRS supervisor-mode pages under
        // CR4.PKS. AD refuses every data access; WD refuses writes by a user-mode access, and by a
        // supervisor-mode access only with CR0.WP set (for both registers, as KVM's update_pkr_bitmask).
        private static bool KeyDenies(ulong leaf, bool userPage, bool user, bool write, bool wp, in WalkControls c)
        {
            if (!c.Has(userPage ? WalkControls.Pke : WalkControls.Pks))
            {
                return false;
            }

            uint bits = (userPage ? c.Pkru : c.Pkrs) >> (2 * ((int)(leaf >> 59) & 15));
            return (bits & 1) != 0 || ((bits & 2) != 0 && write && (user || wp));
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Guest linear translation: the guest's tables in any paging mode (Intel SDM Vol. 3A chapter 4),
    // every paging-structure access itself translated through the vCPU's EPT view (a 2D walk).
    public sealed partial class Vcpu
    {
        private const ulong QualGlaValid = 1UL << 7, QualFinal = 1UL << 8;
        private const int MaxAdRetries = 64;

        /// <summary>
        /// Translates a guest linear address as the CPU does for this vCPU's paging mode and
        /// registers (<see cref="Cr0"/>, <see cref="Cr3"/>, <see cref="Cr4"/>, <see cref="Efer"/>,
        /// <see cref="Pkru"/>, <see cref="Pkrs"/>, <see cref="Ac"/>): present, R/W (with WP), U/S, XD,
        /// SMEP, SMAP and protection-key checks over every level, reserved bits, large pages,
        /// accessed/dirty flags set with a compare-exchange on the guest entry. Each paging-structure
        /// read, each A/D write and the final access go through the vCPU's current EPT view; an EPT
        /// failure is reported with qualification bit 7 set and bit 8 clear for a paging-structure
        /// access, both set for the final access (docs/model/ept.md §1.5, docs/model/guest-paging.md §8.4).
        /// </summary>
        /// <param name="gla">The linear address (under 32-bit and PAE paging its bits 63:32 are ignored).</param>
        /// <param name="pfec">The access: <see cref="PageFaultErrorCode.Write"/>, <see cref="PageFaultErrorCode.User"/>,
        /// <see cref="PageFaultErrorCode.InstructionFetch"/>, <see cref="PageFaultErrorCode.ImplicitSupervisor"/>;
        /// <see cref="PageFaultErrorCode.Present"/> is ignored.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="pfec"/> has other bits, or ImplicitSupervisor with User or InstructionFetch.</exception>
        /// <remarks>
        /// Takes no lock; A/D updates are atomic. A walk that loses an A/D race re-reads the tables.
        /// Under PAE paging a translation after a register write that needs the PDPTEs loads them
        /// first (<see cref="Cr3"/>); a failed load is the result (EPT failure with qualification
        /// bits 7 and 8 clear, or <see cref="GuestStatus.GeneralProtection"/>).
        /// </remarks>
        public GuestTranslation TranslateLinear(ulong gla, PageFaultErrorCode pfec)
        {
            CheckPfec(pfec);
            return TranslateOn(_domain.Altp2m.ViewLocked(_view), gla, pfec);
        }

        private GuestTranslation TranslateOn(P2m ept, ulong gla, PageFaultErrorCode pfec) => _mode switch
        {
            GuestPagingMode.Flat => Final(ept, gla, gla, pfec, 0),
            GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5 or GuestPagingMode.Paging32 => WalkThroughEpt(ept, gla, pfec),
            GuestPagingMode.Pae => WalkPae(ept, gla, pfec),
            _ => throw new InvalidOperationException($"Unknown paging mode {_mode}."),
        };

        // The one check of an access description, for TranslateLinear, TranslateLinearBatch and
        // the emulator's accesses.
        internal static void CheckPfec(PageFaultErrorCode pfec)
        {
            const uint Allowed = (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User
                                        | PageFaultErrorCode.InstructionFetch | PageFaultErrorCode.ImplicitSupervisor);
            const uint NotWithImplicit = (uint)(PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch);
            if (((uint)pfec & ~Allowed) != 0
                || ((pfec & PageFaultErrorCode.ImplicitSupervisor) != 0 && ((uint)pfec & NotWithImplicit) != 0))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(pfec), pfec,
                    "Only Present, Write, User, InstructionFetch and ImplicitSupervisor (without User or InstructionFetch) describe an access.");
            }
        }

        private static AccessKind FinalKind(PageFaultErrorCode pfec)
            => (pfec & PageFaultErrorCode.InstructionFetch) != 0 ? AccessKind.Execute
               : (pfec & PageFaultErrorCode.Write) != 0 ? AccessKind.Write : AccessKind.Read;

        private GuestTranslation WalkThroughEpt(P2m ept, ulong gla, PageFaultErrorCode pfec)
        {
            var tables = new EptTableAccess(ept, _domain.Memory);
            GuestTranslation s1 = Stage1(ref tables, ept.AddressBits, gla, pfec);
            return s1.Status == GuestStatus.Ok ? Final(ept, gla, s1, pfec) : s1;
        }

        // PAE paging: the PDPTE registers first (loaded now if a register write left them stale).
        private GuestTranslation WalkPae(P2m ept, ulong gla, PageFaultErrorCode pfec)
        {
            if (!_pdptesLoaded && ReadPdptes(ept, _cr3, out GuestTranslation loadFault) != GuestStatus.Ok)
            {
                return loadFault;
            }

            return WalkThroughEpt(ept, gla, pfec);
        }

        private static GuestTranslation Stage1Done(ulong gpa, int level)
            => new(GuestStatus.Ok, gpa, 0, 0, default, level);

        private static GuestTranslation Stage1Done(ulong gpa, int level, int pageShift, bool global)
            => new(GuestStatus.Ok, gpa, 0, 0, default, level, pageShift, global);

        // The final access of a completed stage-1 walk, keeping its page size and G flag.
        private static GuestTranslation Final(P2m ept, ulong gla, GuestTranslation s1, PageFaultErrorCode pfec)
        {
            GuestTranslation t = Final(ept, gla, s1.Gpa, pfec, s1.Level);
            return t.Status == GuestStatus.Ok
                ? new GuestTranslation(GuestStatus.Ok, t.Gpa, t.Hpa, 0, t.Ept, t.Level, s1.PageShift, s1.Global)
                : t;
        }

        // The final access of a completed stage-1 walk.
        private static GuestTranslation Final(P2m ept, ulong gla, ulong gpa, PageFaultErrorCode pfec, int level)
        {
            AccessKind kind = FinalKind(pfec);
            if (gpa >= ept.GpaLimit)
            {
                // Beyond the EPT's guest-physical width: not present at the top level.
                return new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0,
                                            new EptTranslation(EptStatus.Violation, 0, ept.Levels, (ulong)kind | QualGlaValid | QualFinal), level);
            }

            return FinalResult(gpa, ept.Translate(gpa, kind), level);
        }

        private static GuestTranslation FinalResult(ulong gpa, EptTranslation t, int level)
        {
            if (t.Status == EptStatus.Ok)
            {
                return new GuestTranslation(GuestStatus.Ok, gpa, t.Hpa, 0, t, level);
            }

            return EptFailure(gpa, t, final: true, level);
        }

        private static GuestTranslation EptFailure(ulong gpa, EptTranslation t, bool final, int level, ulong extraQualification = 0)
        {
            if (t.Status == EptStatus.Misconfig)
            {
                return new GuestTranslation(GuestStatus.EptMisconfig, gpa, 0, 0, t, level);
            }

            ulong q = t.Qualification | extraQualification | QualGlaValid | (final ? QualFinal : 0);
            return new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0, new EptTranslation(EptStatus.Violation, 0, t.Level, q), level);
        }

        // The stage-1 walk of the current mode over any way of reading guest paging structures.
        // Returns Ok with the final GPA and the leaf level, or the fault. Under PAE paging the
        // PDPTE registers must be loaded (the software walk of the fallback finds them so, or fails).
        private GuestTranslation Stage1<TTables>(ref TTables tables, int addressBits, ulong gla, PageFaultErrorCode pfec)
            where TTables : struct, IGuestTableAccess
        {
            WalkControls c = _controls;
            int maxPhys = Math.Min(addressBits, 52);
            switch (_mode)
            {
                case GuestPagingMode.LongMode4:
                case GuestPagingMode.LongMode5:
                {
                    int levels = _mode == GuestPagingMode.LongMode5 ? 5 : 4;
                    if (!IsCanonical(gla, levels))
                    {
                        return new GuestTranslation(GuestStatus.NonCanonical, 0, 0, 0, default, levels);
                    }

                    Stage1Masks(addressBits, out ulong addrMask, out ulong highReserved);
                    return Stage1Long(ref tables, _cr3 & addrMask, levels, addrMask, highReserved, gla, pfec, c);
                }

                case GuestPagingMode.Pae:
                {
                    // SDM 4.4.2: bits 31:30 pick a PDPTE register; it has no R/W, U/S or XD.
                    gla &= 0xFFFF_FFFFUL;
                    ulong pdpte = _pdptes[(int)(gla >> 30)];
                    if (!_pdptesLoaded)
                    {
                        return new GuestTranslation(GuestStatus.EptViolation, 0, 0, 0, default, 3);
                    }

                    if ((pdpte & PtePresent) == 0)
                    {
                        return PageFault(Stage1ErrorCode(EntryStep.NotPresent, pfec, c), 3);
                    }

                    // PAE PDEs and PTEs reserve bits 62:MAXPHYADDR (table 4-9 to 4-11), not only 51:M.
                    Stage1Masks(addressBits, out ulong addrMask, out _);
                    ulong highReserved = 0x7FFF_FFFF_FFFF_FFFFUL & ~((1UL << maxPhys) - 1);
                    return Stage1Long(ref tables, pdpte & addrMask, 2, addrMask, highReserved, gla, pfec, c);
                }

                default:
                    return Stage1Paging32(ref tables, Math.Min(maxPhys, 40), gla & 0xFFFF_FFFFUL, pfec, c);
            }
        }

        // The 8-byte-entry walk (IA-32e from the top table, PAE from the page directory) down to a
        // leaf, then the A/D writes.
        private GuestTranslation Stage1Long<TTables>(ref TTables tables, ulong top, int levels, ulong addrMask, ulong highReserved,
                                                     ulong gla, PageFaultErrorCode pfec, in WalkControls c)
            where TTables : struct, IGuestTableAccess
        {
            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            Span<ulong> entryGpa = stackalloc ulong[5];
            Span<ulong> entryHpa = stackalloc ulong[5];
            Span<ulong> entryVal = stackalloc ulong[5];
            Span<ulong> entrySet = stackalloc ulong[5];

            for (int attempt = 0; ; attempt++)
            {
                ulong table = top;
                int rights = RightsAll;
                int used = 0;
                int level = levels;
                ulong pte;
                while (true)
                {
                    ulong gpa = EntryGpa(table, gla, level);
                    if (!tables.ReadEntry(gpa, out pte, out ulong hpa, out GuestTranslation readFault, level))
                    {
                        return readFault;
                    }

                    EntryStep step = Stage1Step(pte, level, ref rights, pfec, highReserved, c);
                    if (step >= EntryStep.NotPresent)
                    {
                        return PageFault(Stage1ErrorCode(step, pfec, c), level);
                    }

                    entryGpa[used] = gpa;
                    entryHpa[used] = hpa;
                    entrySet[used] = PteAccessed;
                    entryVal[used++] = pte;
                    if (step == EntryStep.Leaf)
                    {
                        break;
                    }

                    table = pte & addrMask;
                    level--;
                }

                // Accessed on every entry used, dirty on the leaf of a write: guest-memory writes,
                // so each needs EPT write permission on the entry's GPA.
                entrySet[used - 1] |= write ? PteDirty : 0;
                int adResult = tables.SetAccessedDirty(levels, entryGpa[..used], entryHpa[..used], entryVal[..used], entrySet[..used], out GuestTranslation adFault);
                if (adResult < 0)
                {
                    return adFault;
                }

                if (adResult > 0 && attempt < MaxAdRetries)
                {
                    continue;   // an entry changed under us: walk again, as the CPU re-reads
                }

                return Stage1Done(LeafGpa(pte, addrMask, gla, level), level,
                                  EptEntry.PageBits + (EptEntry.TableOrder * (level - 1)), (pte & PteGlobal) != 0 && Pge);
            }
        }

        private static GuestTranslation PageFault(PageFaultErrorCode code, int level)
            => new(GuestStatus.PageFault, 0, 0, code, default, level);
    }
}

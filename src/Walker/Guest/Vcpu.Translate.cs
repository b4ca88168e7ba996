// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Guest linear translation: the guest's 4- or 5-level tables (Intel SDM Vol. 3A chapter 4),
    // every paging-structure access itself translated through the vCPU's EPT view (a 2D walk).
    public sealed partial class Vcpu
    {
        private const ulong QualGlaValid = 1UL << 7, QualFinal = 1UL << 8;
        private const int MaxAdRetries = 64;

        /// <summary>
        /// Translates a guest linear address as the CPU does for this vCPU's paging mode, CR3, CR0.WP
        /// and EFER.NXE: present, R/W (with WP), U/S and XD checks over every level, reserved bits,
        /// 2M/1G pages, accessed/dirty flags set with a compare-exchange on the guest entry. Each
        /// paging-structure read, each A/D write and the final access go through the vCPU's current
        /// EPT view; an EPT failure is reported with qualification bit 7 set and bit 8 clear for a
        /// paging-structure access, both set for the final access (docs/model/ept.md §1.5).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="pfec">The access: <see cref="PageFaultErrorCode.Write"/>, <see cref="PageFaultErrorCode.User"/>,
        /// <see cref="PageFaultErrorCode.InstructionFetch"/>; <see cref="PageFaultErrorCode.Present"/> is ignored.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="pfec"/> has bits other than P, W, U and I/D.</exception>
        /// <remarks>Takes no lock; A/D updates are atomic. A walk that loses an A/D race re-reads the tables.</remarks>
        public GuestTranslation TranslateLinear(ulong gla, PageFaultErrorCode pfec)
        {
            CheckPfec(pfec);
            return TranslateOn(_domain.Altp2m.ViewLocked(_view), gla, pfec);
        }

        private GuestTranslation TranslateOn(P2m ept, ulong gla, PageFaultErrorCode pfec) => Mode switch
        {
            GuestPagingMode.Flat => Final(ept, gla, gla, pfec, 0),
            GuestPagingMode.LongMode4 => WalkLong(ept, gla, pfec, 4),
            GuestPagingMode.LongMode5 => WalkLong(ept, gla, pfec, 5),
            _ => throw new InvalidOperationException($"Unknown paging mode {Mode}."),
        };

        // The one check of an access description, for TranslateLinear, TranslateLinearBatch and
        // the emulator's accesses.
        internal static void CheckPfec(PageFaultErrorCode pfec)
        {
            const uint Allowed = (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch);
            if (((uint)pfec & ~Allowed) != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(pfec), pfec, "Only Present, Write, User and InstructionFetch describe an access.");
            }
        }

        private static AccessKind FinalKind(PageFaultErrorCode pfec)
            => (pfec & PageFaultErrorCode.InstructionFetch) != 0 ? AccessKind.Execute
               : (pfec & PageFaultErrorCode.Write) != 0 ? AccessKind.Write : AccessKind.Read;

        private GuestTranslation WalkLong(P2m ept, ulong gla, PageFaultErrorCode pfec, int levels)
        {
            GuestTranslation s1 = Stage1(ept, gla, pfec, levels);
            return s1.Status == GuestStatus.Ok ? Final(ept, gla, s1, pfec) : s1;
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

        private static GuestTranslation EptFailure(ulong gpa, EptTranslation t, bool final, int level)
        {
            if (t.Status == EptStatus.Misconfig)
            {
                return new GuestTranslation(GuestStatus.EptMisconfig, gpa, 0, 0, t, level);
            }

            ulong q = t.Qualification | QualGlaValid | (final ? QualFinal : 0);
            return new GuestTranslation(GuestStatus.EptViolation, gpa, 0, 0, new EptTranslation(EptStatus.Violation, 0, t.Level, q), level);
        }

        // The stage-1 walk through the vCPU's EPT view, as the CPU does it.
        private GuestTranslation Stage1(P2m ept, ulong gla, PageFaultErrorCode pfec, int levels)
        {
            var tables = new EptTableAccess(ept, _domain.Memory);
            return Stage1(ref tables, ept.AddressBits, gla, pfec, levels);
        }

        // The stage-1 walk over any way of reading guest paging structures. Returns Ok with the
        // final GPA and the leaf level, or the fault.
        private GuestTranslation Stage1<TTables>(ref TTables tables, int addressBits, ulong gla, PageFaultErrorCode pfec, int levels)
            where TTables : struct, IGuestTableAccess
        {
            if (!IsCanonical(gla, levels))
            {
                return new GuestTranslation(GuestStatus.NonCanonical, 0, 0, 0, default, levels);
            }

            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            bool nxe = Nxe, wp = Wp;
            Stage1Masks(addressBits, out ulong addrMask, out ulong highReserved);
            Span<ulong> entryGpa = stackalloc ulong[5];
            Span<ulong> entryHpa = stackalloc ulong[5];
            Span<ulong> entryVal = stackalloc ulong[5];

            for (int attempt = 0; ; attempt++)
            {
                ulong table = Cr3 & addrMask;
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

                    EntryStep step = Stage1Step(pte, level, ref rights, pfec, highReserved, nxe, wp);
                    if (step >= EntryStep.NotPresent)
                    {
                        return PageFault(Stage1ErrorCode(step, pfec, nxe), level);
                    }

                    entryGpa[used] = gpa;
                    entryHpa[used] = hpa;
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
                int adResult = tables.SetAccessedDirty(levels, entryGpa[..used], entryHpa[..used], entryVal[..used], write, out GuestTranslation adFault);
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

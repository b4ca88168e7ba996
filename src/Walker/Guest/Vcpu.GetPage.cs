// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // get-page-from-GVA (Xen's get_page_from_gva with its mem_access fallback) and the two ways
    // the stage-1 walk can read guest paging structures.
    public sealed partial class Vcpu
    {
        /// <summary>
        /// Test hook: runs on the calling thread while the fast path still holds the p2m read lock,
        /// after the fast translation failed (the seed scenario queues a writer here).
        /// </summary>
        internal Action? AfterFastPathFailed { get; set; }

        /// <summary>Tests only: runs on the fast path after the translation, before the reference is taken.</summary>
        internal Action? BeforeReference { get; set; }

        /// <summary>
        /// Finds the host frame behind a guest linear address for an access the hypervisor makes on
        /// the guest's behalf (copying to or from guest memory), and takes a reference on it so
        /// the frame is not reused while the caller works on it (Xen's <c>get_page_from_gva</c>).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="access">Exactly one of <see cref="AccessKind.Read"/>, <see cref="AccessKind.Write"/>, <see cref="AccessKind.Execute"/>.</param>
        /// <param name="user">A user-mode access (U/S checks apply).</param>
        /// <returns>
        /// <see cref="GuestPageStatus.Ok"/> with a referenced page: dispose the result exactly once
        /// to drop the reference. Otherwise the reason (#PF error code, the EPT failure, or a frame
        /// that is not guest RAM) and no reference.
        /// </returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="access"/> is not exactly one access kind.</exception>
        /// <remarks>
        /// <para><b>TLB.</b> First the vCPU's combined TLB (<see cref="Tlb"/>): a hit references
        /// the frame and checks that the view's TLB generation did not move, without a walk or a
        /// lock (docs/concurrency.md, "The combined TLB"); a miss takes the paths below and caches
        /// a guest-RAM result. As on a CPU, a hit may reflect a guest paging entry changed and not
        /// yet invalidated (<see cref="LinearTlb.Invlpg"/>).</para>
        /// <para><b>Fast path.</b> Under the read lock of the vCPU's current view (whole-p2m
        /// operations excluded; 4K and 2M writers, which hold it shared with their region's stripe,
        /// and lock-free readers unaffected) the address is translated as the CPU would
        /// (<see cref="TranslateLinear"/>, which itself takes no lock) and, when the access is
        /// allowed and the frame is allocated guest RAM, referenced. The entry is then read again:
        /// if a concurrent write changed it, the reference is dropped and the address translated
        /// again, so a returned page was mapped there, with this access, while referenced.</para>
        /// <para><b>mem_access fallback</b> (docs/model/mem-access.md §5.4), only when the fast path met an EPT
        /// violation and <see cref="Domain.MemAccessEnabled"/> is set. It is entered with no lock
        /// held: the linear address is resolved by the failed walk itself when stage 1 completed,
        /// else by a software stage-1 walk whose guest-memory reads take the p2m read locks
        /// themselves (no A/D updates; stage-1 permissions apply, so a write needs a writable
        /// mapping). Only then are the read locks taken (host, then the view) to look up the
        /// GFN's access, decide whether mem_access explains the failure
        /// (<see cref="MemAccessRules.ExplainsFailure"/>), require a RamRw frame, take the
        /// reference and confirm the entry did not change meanwhile (if it did: the fast path's
        /// EPT violation is returned, for the caller to handle and retry). No lock is ever held across a guest-memory access, and none is taken twice.</para>
        /// <para>The page is granted to the hypervisor's own access: mem_access raises no event
        /// for it, as in Xen.</para>
        /// </remarks>
        public GuestPage GetPageFromGva(ulong gla, AccessKind access, bool user = false)
        {
            if (access != AccessKind.Read && access != AccessKind.Write && access != AccessKind.Execute)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(access), access, "Exactly one of Read, Write or Execute.");
            }

            PageFaultErrorCode pfec = (access == AccessKind.Write ? PageFaultErrorCode.Write : 0)
                                      | (access == AccessKind.Execute ? PageFaultErrorCode.InstructionFetch : 0)
                                      | (user ? PageFaultErrorCode.User : 0);
            // The TLB first: a hit is a probe, a reference and a generation check (docs/concurrency.md).
            LinearTlb tlb = Tlb;
            if (tlb.TryHit(gla, pfec, out ulong hitHpa, out ulong hitInfo) && TryReferenceHit(tlb, gla, hitHpa, hitInfo, out GuestPage hit))
            {
                return hit;
            }

            return GetPageFromGvaWalk(tlb, gla, pfec);
        }

        // The walk behind a TLB miss: the fast path, then the mem_access fallback.
        private GuestPage GetPageFromGvaWalk(LinearTlb tlb, ulong gla, PageFaultErrorCode pfec)
        {
            P2m ept = tlb.Synchronize(out int view);     // reads the generation before the walk a fill comes from
            tlb.CountMiss();
            GuestTranslation fast;
            int freedRetries = 0;
            while (true)
            {
                using (ept.P2mLock.EnterRead())
                {
                    fast = TranslateOn(ept, gla, pfec);
                    if (fast.Status == GuestStatus.Ok)
                    {
                        ulong gfn = fast.Gpa >> EptEntry.PageBits;
                        P2mEntry e = ept.GetEntry(gfn);
                        ulong mfn = fast.Hpa >> EptEntry.PageBits;
                        BeforeReference?.Invoke();
                        GuestPage page = Referenced(fast, fast.Gpa, mfn, e.Type, IsGuestRam(e.Type), viaMemAccess: false);
                        if (page.Status != GuestPageStatus.Ok)
                        {
                            if (IsGuestRam(e.Type) && mfn < (ulong)_domain.Memory.FrameCount && ++freedRetries < MaxAdRetries)
                            {
                                // A RAM frame that could not be referenced was freed under a remap
                                // (and may be mapped again already, so the entry alone cannot tell):
                                // translate again. Bounded, for an entry left naming a freed frame.
                                continue;
                            }

                            return page;
                        }

                        if (StillMaps(ept.GetEntry(gfn), mfn, e))
                        {
                            tlb.Fill(gla, pfec, fast, e.Type);
                            return page;
                        }

                        page.Dispose();     // the entry changed under us: translate again
                        continue;
                    }

                    AfterFastPathFailed?.Invoke();
                }

                break;
            }

            if (fast.Status != GuestStatus.EptViolation || !_domain.MemAccessEnabled)
            {
                return Failed(fast);
            }

            return MemAccessCheckAndGetPage(view, gla, pfec, fast);
        }

        // A TLB hit: the frame is referenced, then the view's generation read again. Unchanged,
        // no invalidation (INVEPT) of the view completed before the reference was taken, and a
        // frame is freed only after the write that unmapped it bumped the generation, so the
        // frame is still the one the entry names and cannot be reused while referenced.
        private bool TryReferenceHit(LinearTlb tlb, ulong gla, ulong hpa, ulong info, out GuestPage page)
        {
            page = default;
            HostMemory memory = _domain.Memory;
            ulong mfn = hpa >> EptEntry.PageBits;   // inside host memory: checked at fill
            BeforeReference?.Invoke();
            if (!memory.TryAddReference(mfn))
            {
                return false;
            }

            if (!tlb.StillCurrent)
            {
                memory.ReleaseReference(mfn);
                return false;
            }

            page = new GuestPage(memory, GuestPageStatus.Ok, tlb.TranslationOf(gla, hpa, info), LinearTlb.GpaOf(info, gla), mfn, LinearTlb.TypeOf(info), viaMemAccess: false);
            return true;
        }

        // Xen's p2m_mem_access_check_and_get_page, entered with no lock held.
        private GuestPage MemAccessCheckAndGetPage(int view, ulong gla, PageFaultErrorCode pfec, GuestTranslation fast)
        {
            OrderedLock.AssertNoneHeld("The get-page-from-GVA fallback");
            bool onStructure = (fast.Ept.Qualification & QualFinal) == 0;
            ulong gpa;
            if (!onStructure)
            {
                gpa = fast.Gpa;     // stage 1 completed; only the final access failed
            }
            else
            {
                var tables = new SoftwareTableAccess(this, view);
                GuestTranslation walk = Mode == GuestPagingMode.Flat ? Stage1Done(gla, 0) : Stage1(ref tables, _domain.HostP2m.AddressBits, gla, pfec);
                if (walk.Status == GuestStatus.PageFault)
                {
                    return Failed(walk);
                }

                if (walk.Status != GuestStatus.Ok)
                {
                    return Failed(fast);
                }

                gpa = walk.Gpa;
            }

            P2m ept = _domain.Altp2m.ViewLocked(view);
            if (gpa >= ept.GpaLimit)
            {
                return Failed(fast);
            }

            using OrderedLock.Scope hl = _domain.HostP2m.P2mLock.EnterRead();
            using OrderedLock.Scope vl = view != 0 ? ept.P2mLock.EnterRead() : default;
            ulong gfn = gpa >> EptEntry.PageBits;
            if (onStructure)
            {
                // FastEpt beyond Xen (docs/divergences.md): the walk failed on a guest paging
                // structure, so it is that GFN's access that must explain the failure; the final
                // access then needs EPT's permission outright, or Xen's rule below.
                if (!_domain.Altp2m.TryEffectiveEntry(view, fast.Gpa >> EptEntry.PageBits, out _, out P2mAccess sa)
                    || !MemAccessRules.ExplainsFailure(sa, (fast.Ept.Qualification & (ulong)AccessKind.Write) != 0))
                {
                    return Failed(fast);
                }

                EptTranslation t = ept.Translate(gpa, FinalKind(pfec));
                if (t.Status == EptStatus.Ok)
                {
                    P2mEntry te = ept.GetEntry(gfn);
                    ulong tm = t.Hpa >> EptEntry.PageBits;
                    GuestPage page = Referenced(fast, gpa, tm, te.Type, IsGuestRam(te.Type), viaMemAccess: true);
                    return Confirmed(page, StillMaps(ept.GetEntry(gfn), tm, te), fast);
                }
            }

            // Xen's rule for the final GFN: its access must explain the failure, and the type must
            // allow any access (ram_rw only).
            if (!_domain.Altp2m.TryEffectiveEntry(view, gfn, out P2mEntry e, out P2mAccess a)
                || !MemAccessRules.ExplainsFailure(a, (pfec & PageFaultErrorCode.Write) != 0))
            {
                return Failed(fast);
            }

            GuestPage held = Referenced(fast, gpa, e.Mfn, e.Type, e.Type == P2mType.RamRw, viaMemAccess: true);
            bool same = _domain.Altp2m.TryEffectiveEntry(view, gfn, out P2mEntry now, out P2mAccess na) && na == a && StillMaps(now, e.Mfn, e);
            return Confirmed(held, same, fast);
        }

        // Writers of 4K and 2M entries hold only their region's stripe, not the p2m lock, so an
        // entry can change between the lookup that named a frame and the reference taken
        // on it. The reference is kept only if the entry, read again after it was taken, still
        // names the same frame with the same type and access (Xen's get_page, then re-check);
        // the page was then mapped there at that moment, with the reference already held.
        private static bool StillMaps(P2mEntry now, ulong mfn, P2mEntry before)
            => now.Mfn == mfn && now.Type == before.Type && now.Access == before.Access;

        // The fallback's answer when the entry changed meanwhile: the EPT violation the fast path
        // saw, which the caller handles (and retries) as it would any violation.
        private static GuestPage Confirmed(GuestPage page, bool stillMaps, GuestTranslation fast)
        {
            if (page.Status != GuestPageStatus.Ok || stillMaps)
            {
                return page;
            }

            page.Dispose();
            return Failed(fast);
        }

        // Takes the reference on a RAM frame; the callers confirm the entry afterwards (StillMaps).
        private GuestPage Referenced(GuestTranslation t, ulong gpa, ulong mfn, P2mType type, bool ram, bool viaMemAccess)
        {
            HostMemory memory = _domain.Memory;
            if (!ram || mfn >= (ulong)memory.FrameCount || !memory.TryAddReference(mfn))
            {
                return new GuestPage(null, GuestPageStatus.NotRam, t, gpa, mfn, type, viaMemAccess);
            }

            return new GuestPage(memory, GuestPageStatus.Ok, t, gpa, mfn, type, viaMemAccess);
        }

        private static GuestPage Failed(GuestTranslation t)
        {
            GuestPageStatus status = t.Status switch
            {
                GuestStatus.PageFault => GuestPageStatus.PageFault,
                GuestStatus.EptViolation => GuestPageStatus.EptViolation,
                GuestStatus.EptMisconfig => GuestPageStatus.EptMisconfig,
                GuestStatus.NonCanonical or GuestStatus.GeneralProtection => GuestPageStatus.NonCanonical,
                _ => GuestPageStatus.NotRam,
            };
            return new GuestPage(null, status, t, t.Gpa, Mfn.Invalid, P2mType.Invalid, viaMemAccess: false);
        }

        internal static bool IsGuestRam(P2mType type)
            => type is P2mType.RamRw or P2mType.RamLogDirty or P2mType.RamRo or P2mType.RamShared;

        // The guest-memory accessor of the software walk (Xen's access_guest_memory_by_gpa): it
        // looks the GFN up and reads guest RAM under read locks it takes itself, so it must be
        // entered with no lock held (docs/model/mem-access.md §5.4). EPT access rights do not apply: it is the
        // hypervisor reading, not the guest.
        internal bool TryReadGuestUInt64(int view, ulong gpa, out ulong value)
        {
            OrderedLock.AssertNoneHeld("The guest-memory accessor");
            value = 0;
            P2m ept = _domain.Altp2m.ViewLocked(view);
            if (gpa >= ept.GpaLimit)
            {
                return false;
            }

            HostMemory memory = _domain.Memory;
            using OrderedLock.Scope hl = _domain.HostP2m.P2mLock.EnterRead();
            using OrderedLock.Scope vl = view != 0 ? ept.P2mLock.EnterRead() : default;
            if (!_domain.Altp2m.TryEffectiveEntry(view, gpa >> EptEntry.PageBits, out P2mEntry e, out _)
                || !IsGuestRam(e.Type) || e.Mfn >= (ulong)memory.FrameCount)
            {
                return false;
            }

            value = memory.ReadUInt64((e.Mfn << EptEntry.PageBits) | (gpa & EptEntry.PageMask));
            return true;
        }
    }
}

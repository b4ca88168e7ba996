// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt
{
    // The EPT-violation handler: Xen's hvm_hap_nested_page_fault order of events (docs/model/altp2m.md §4.3),
    // p2m_mem_access_check (5.2) and software #VE (4.7).
    public sealed partial class Domain
    {
        private const ulong QualGlaValid = 1UL << 7;
        private const ulong QualFinal = 1UL << 8;

        /// <summary>
        /// Handles an EPT violation of <paramref name="vcpu"/> at <paramref name="gpa"/>: lazy copy into
        /// the vCPU's view, mem_access (promotion, events, relaxing), software #VE, then the type's
        /// own handling (MMIO, discarded writes, log-dirty, unsharing). A given <paramref name="gla"/>
        /// is taken as the linear address whose final translation faulted.
        /// </summary>
        /// <param name="vcpu">The faulting vCPU (of this domain).</param>
        /// <param name="gpa">The faulting guest-physical address.</param>
        /// <param name="access">What the access did: any non-empty combination of Read, Write and Execute.</param>
        /// <param name="gla">The guest linear address, when known.</param>
        /// <returns>What the embedder should do next.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="vcpu"/> is null.</exception>
        /// <exception cref="ArgumentException">The vCPU belongs to another domain.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Bad GPA or access kind.</exception>
        public FaultOutcome HandleEptViolation(Vcpu vcpu, ulong gpa, AccessKind access, ulong? gla)
        {
            if (access == 0 || ((uint)access & ~7u) != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_access(access);
            }

            ulong qual = (ulong)access & 7;
            if (gla is not null)
            {
                qual |= QualGlaValid | QualFinal;
            }

            return HandleEptViolationExit(vcpu, gpa, qual, gla ?? ~0UL);
        }

        /// <summary>
        /// <see cref="HandleEptViolation(Vcpu, ulong, AccessKind, ulong?)"/> from a raw exit
        /// qualification, decoded as Xen does: read = bit 0 or bit 1 (read-modify-write may report
        /// only the write), write = bit 1, fetch = bit 2, linear address valid = bit 7, final
        /// translation (bit 8) versus guest paging-structure access.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The qualification reports no access, or the GPA is out of range.</exception>
        public FaultOutcome HandleEptViolationExit(Vcpu vcpu, ulong gpa, ulong exitQualification, ulong gla)
        {
            CheckVcpu(vcpu);
            if (gpa >= HostP2m.GpaLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gpa(gpa, HostP2m.AddressBits);
            }

            if ((exitQualification & 7) == 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(exitQualification), exitQualification, "The qualification reports no access (bits 0-2).");
            }

            ThrowIfDisposed();
            if (IsCrashed)
            {
                return FaultOutcome.Unhandled;
            }

            var kind = (AccessKind)(exitQualification & 7);
            if ((kind & AccessKind.Write) != 0)
            {
                kind |= AccessKind.Read;
            }

            bool write = (kind & AccessKind.Write) != 0;
            bool glaValid = (exitQualification & QualGlaValid) != 0;
            if (!glaValid)
            {
                gla = ~0UL;
            }

            ulong gfn = gpa >> EptEntry.PageBits;

            // 1. The host entry first, populating PoD; a write to a shared page unshares it (the
            //    callback copies guest memory, so this happens before any lock).
            P2mEntry host = HostP2m.GetEntry(gfn, P2mQuery.Alloc);
            if (write && host.IsMapped && host.Type == P2mType.RamShared)
            {
                if (!TryUnshare(gfn))
                {
                    return FaultOutcome.Unhandled;
                }

                host = HostP2m.GetEntry(gfn, P2mQuery.Alloc);
            }

            // 2. Lazy copy into the vCPU's view, under host -> list -> view locks. In the host view
            //    there is nothing to copy: the shared locks keep the view choice still, so faults
            //    of different vCPUs (the log-dirty write fault above all) do not serialise here.
            if (!FaultingEntry(vcpu, gfn, write, out int view, out P2m faulting, out P2mEntry e))
            {
                return FaultOutcome.Retry;      // the lazy copy filled the view: the access retries
            }

            // 3. mem_access violation (only where the entry names a frame, as Xen).
            bool violation = Altp2m.HasFrame(e) && MemAccessRules.IsViolation(e.Access, kind);

            // 4. XSA-304: a fetch from a superpage the CPU must not execute from is shattered.
            if (!violation && (kind & AccessKind.Execute) != 0 && e.Order > 0 && Altp2m.HasFrame(e)
                && !HostP2m.Options.ExecutableSuperpages)
            {
                return Shatter(vcpu, view, gfn);
            }

            // 5. Violation: software #VE when the entry allows it, else mem_access.
            if (violation)
            {
                if (!e.SuppressVe && TryDeliverVe(vcpu, view, faulting, gpa, kind, exitQualification, gla))
                {
                    return FaultOutcome.VirtualizationException;
                }

                return MemAccessCheck(vcpu, view, gfn, gpa, kind, exitQualification, gla);
            }

            // 6. The type's own handling.
            return HandleType(faulting, e, gfn, gpa, kind);
        }

        // Step 2 of HandleEptViolationExit, out of line so that the handler's own frame stays small
        // (the lock scopes live here; with them inlined the handler zeroed a 648-byte frame on
        // every fault): the faulting view, its p2m and its entry for gfn. False when a lazy copy
        // into the view handled the fault.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private bool FaultingEntry(Vcpu vcpu, ulong gfn, bool write, out int view, out P2m faulting, out P2mEntry e)
        {
            using (HostP2m.P2mLock.EnterRead())
            using (Altp2m.ListLock.EnterRead())
            {
                view = vcpu.View;
                faulting = Altp2m.ViewLocked(view);
                if (view == 0)
                {
                    e = faulting.GetEntry(gfn);
                    return true;
                }
            }

            return LazyCopyOrEntry(vcpu, gfn, write, out view, out faulting, out e);
        }

        // A fault in an alternate view: the lazy copy from the host under host -> list -> view
        // locks (the view may have changed since the shared look; it is read again here).
        [MethodImpl(MethodImplOptions.NoInlining)]
        private bool LazyCopyOrEntry(Vcpu vcpu, ulong gfn, bool write, out int view, out P2m faulting, out P2mEntry e)
        {
            using (HostP2m.P2mLock.Enter())
            using (Altp2m.ListLock.Enter())
            {
                view = vcpu.View;
                faulting = Altp2m.ViewLocked(view);
                if (view != 0)
                {
                    using (faulting.P2mLock.Enter())
                    {
                        P2mEntry host = HostP2m.GetEntry(gfn);
                        if (!(write && host.Type == P2mType.RamShared) && Altp2m.TryLazyCopyLocked(view, gfn, host))
                        {
                            e = default;
                            return false;
                        }
                    }
                }

                e = faulting.GetEntry(gfn);
                return true;
            }
        }

        private FaultOutcome Shatter(Vcpu vcpu, int view, ulong gfn)
        {
            using (HostP2m.P2mLock.Enter())
            {
                // The list lock only for a view: a host write takes it itself to propagate.
                using OrderedLock.Scope ll = view != 0 ? Altp2m.ListLock.Enter() : default;
                if (vcpu.View != view)
                {
                    return FaultOutcome.Retry;
                }

                P2m p = Altp2m.ViewLocked(view);
                using OrderedLock.Scope vl = view != 0 ? p.P2mLock.Enter() : default;
                P2mEntry e = p.GetEntry(gfn);
                if (e.Order > 0 && Altp2m.HasFrame(e))
                {
                    p.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, e.Access, SuppressVe.Inherit);
                }

                return FaultOutcome.Retry;
            }
        }

        // Xen's p2m_mem_access_check: the bool's two meanings become outcomes.
        private FaultOutcome MemAccessCheck(Vcpu vcpu, int view, ulong gfn, ulong gpa, AccessKind kind, ulong qual, ulong gla)
        {
            bool write = (kind & AccessKind.Write) != 0;
            bool n2rwx;
            P2mAccess seen;
            using (HostP2m.P2mLock.Enter())
            {
                using OrderedLock.Scope ll = view != 0 ? Altp2m.ListLock.Enter() : default;
                if (vcpu.View != view)
                {
                    return FaultOutcome.Retry;   // switched meanwhile: fault again in the new view
                }

                P2m p = Altp2m.ViewLocked(view);
                using OrderedLock.Scope vl = view != 0 ? p.P2mLock.Enter() : default;
                P2mEntry e = p.GetEntry(gfn);
                if (!Altp2m.HasFrame(e) || !MemAccessRules.IsViolation(e.Access, kind))
                {
                    return FaultOutcome.Retry;   // changed meanwhile
                }

                seen = e.Access;
                if (write && e.Access == P2mAccess.RX2RW)
                {
                    // rx2rw: a write promotes to rw; no event, the guest retries.
                    p.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, p.Representable(e.Type, P2mAccess.RW, 0), SuppressVe.Inherit);
                    return FaultOutcome.Retry;
                }

                n2rwx = e.Access == P2mAccess.N2RWX;
                if (n2rwx)
                {
                    p.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, p.Representable(e.Type, P2mAccess.RWX, 0), SuppressVe.Inherit);
                }

                if (!_monitor)
                {
                    if (AccessRequired)
                    {
                        _crashReason = $"mem_access violation at GFN 0x{gfn:X} (access {e.Access}) with no listener and AccessRequired set";
                        return FaultOutcome.Unhandled;
                    }

                    if (!n2rwx)
                    {
                        p.SetEntryHeld(gfn, e.Mfn, PageOrder.Size4K, e.Type, p.Representable(e.Type, P2mAccess.RWX, 0), SuppressVe.Inherit);
                    }

                    return FaultOutcome.Retry;
                }
            }

            // Every lock is dropped: build and queue the request (Xen's monitor_traps).
            MemAccessFlags flags = MemAccessFlags.None;
            flags |= (kind & AccessKind.Read) != 0 ? MemAccessFlags.Read : 0;
            flags |= (kind & AccessKind.Write) != 0 ? MemAccessFlags.Write : 0;
            flags |= (kind & AccessKind.Execute) != 0 ? MemAccessFlags.Execute : 0;
            if ((qual & QualGlaValid) != 0)
            {
                flags |= MemAccessFlags.GlaValid | ((qual & QualFinal) != 0 ? MemAccessFlags.FaultWithGla : MemAccessFlags.FaultInGuestPageTable);
            }

            if (view != 0)
            {
                flags |= MemAccessFlags.AlternateView;
            }

            bool sync = !n2rwx;
            long id = Interlocked.Increment(ref _nextEventId);
            if (sync)
            {
                flags |= MemAccessFlags.VcpuPaused;
                if (!vcpu.TryPause(id))
                {
                    return FaultOutcome.Unhandled;   // already paused: the embedder ran a paused vCPU
                }
            }

            var ev = new MemAccessEvent(id, MemAccessEventKind.Violation, vcpu.Id, view, gfn, gpa & EptEntry.PageMask,
                                        (flags & MemAccessFlags.GlaValid) != 0 ? gla : ~0UL, flags, seen);
            if (!_events.Writer.TryWrite(ev))
            {
                if (sync)
                {
                    vcpu.TryUnpause(id);
                }

                Interlocked.Increment(ref _ringFullFaults);
                return FaultOutcome.Unhandled;
            }

            return FaultOutcome.MemAccessEvent;
        }

        private FaultOutcome HandleType(P2m faulting, in P2mEntry e, ulong gfn, ulong gpa, AccessKind kind)
        {
            bool write = (kind & AccessKind.Write) != 0;
            if (!e.IsMapped || e.Type == P2mType.MmioDm)
            {
                return TryGetMmioDevice(gfn, out _) ? FaultOutcome.Mmio : FaultOutcome.Unhandled;
            }

            switch (e.Type)
            {
                case P2mType.RamRo or P2mType.GrantMapRo or P2mType.IoreqServer or P2mType.MmioDirect when write:
                    return FaultOutcome.Mmio;          // emulated: discarded, forwarded or device write
                case P2mType.RamLogDirty when write:
                    LogDirtyWrite(gfn);
                    return FaultOutcome.Retry;
                case P2mType.RamShared when write:
                    return TryUnshare(gfn) ? FaultOutcome.Retry : FaultOutcome.Unhandled;
            }

            // Nothing else to do: retry only if the access now succeeds (a stale fault).
            return faulting.Translate(gpa, kind).Status == EptStatus.Ok ? FaultOutcome.Retry : FaultOutcome.Unhandled;
        }

        // The log-dirty write fault (Xen's paging_mark_dirty, then p2m_change_type_one to ram_rw),
        // out of line like the other steps (its write scope lives in this frame).
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void LogDirtyWrite(ulong gfn)
        {
            MarkDirty(gfn);
            using (HostP2m.EnterWrite(gfn, 0))
            {
                // The page becomes RamRw in the host; propagation carries it into the views.
                // Only the GFN's 2 MiB-region stripe is held, so log-dirty faults on other
                // regions run in parallel.
                P2mEntry h = HostP2m.GetEntry(gfn);
                if (h.Type == P2mType.RamLogDirty && Altp2m.HasFrame(h))
                {
                    HostP2m.SetEntryHeld(gfn, h.Mfn, PageOrder.Size4K, P2mType.RamRw, h.Access, SuppressVe.Inherit);
                }
            }
        }

        // docs/model/altp2m.md §4.7: software #VE. The information page is claimed through its semaphore with
        // one compare-exchange, so two vCPUs (or the guest) never both own it.
        private bool TryDeliverVe(Vcpu vcpu, int view, P2m faulting, ulong gpa, AccessKind kind, ulong qual, ulong gla)
        {
            ulong veGfn = vcpu.VeInfoGfn;
            if (veGfn == Mfn.Invalid)
            {
                return false;
            }

            P2mEntry page = HostP2m.GetEntry(veGfn);
            if (!Altp2m.HasFrame(page) || page.Mfn >= (ulong)_memory.FrameCount
                || page.Type is not (P2mType.RamRw or P2mType.RamLogDirty))
            {
                return false;
            }

            // The #VE information area (Intel SDM Vol. 3C, "Virtualization Exceptions"): exit
            // reason in dword 0, the semaphore in dword 1, exit qualification, guest linear and
            // guest-physical address in qwords 1 to 3, the EPTP index in word 16.
            Span<byte> info = _memory.Frame(page.Mfn);
            Span<uint> dwords = MemoryMarshal.Cast<byte, uint>(info);
            Span<ulong> qwords = MemoryMarshal.Cast<byte, ulong>(info);
            if (Interlocked.CompareExchange(ref dwords[1], 0xFFFF_FFFFu, 0u) != 0)
            {
                return false;   // the guest has not consumed the previous #VE: mem_access instead
            }

            // Bits 0-5 from the walk of the faulting view (effective rights), 7-8 from the exit.
            EptTranslation t = faulting.Translate(gpa, kind);
            ulong q = (qual & 7) | (t.Status == EptStatus.Violation ? t.Qualification & 0x38 : 0) | (qual & (QualGlaValid | QualFinal));
            dwords[0] = VeExitReason;
            qwords[1] = q;
            qwords[2] = (qual & QualGlaValid) != 0 ? gla : ~0UL;
            qwords[3] = gpa;
            MemoryMarshal.Cast<byte, ushort>(info)[16] = (ushort)view;
            Thread.MemoryBarrier();
            vcpu.Inject(VeVector);
            return true;
        }
    }
}

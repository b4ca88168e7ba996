// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>Result of a view-targeted operation of <see cref="Altp2m"/>.</summary>
    public enum P2mStatus
    {
        /// <summary>Done.</summary>
        Ok,

        /// <summary>Neither the view nor the host p2m has a valid entry (Xen's -ESRCH).</summary>
        NoEntry,

        /// <summary>
        /// The host entry exists but its type cannot be used from a view: not <see cref="P2mType.RamRw"/>,
        /// or <see cref="P2mType.RamShared"/> with no <see cref="Domain.UnshareCallback"/> able to unshare it.
        /// </summary>
        InvalidType,

        /// <summary>
        /// The entry is being changed by someone else; try again. Part of the API contract; the
        /// current operations never return it, because every view operation serialises on the host
        /// p2m's writer lock.
        /// </summary>
        Busy,
    }

    /// <summary>What <see cref="Domain.HandleEptViolation(Vcpu, ulong, AccessKind, ulong?)"/> decided.</summary>
    public enum FaultOutcome
    {
        /// <summary>The fault is resolved (lazy copy, rx2rw promotion, relaxed access, stale fault): re-run the access.</summary>
        Retry,

        /// <summary>
        /// A <see cref="MemAccessEvent"/> was queued on <see cref="Domain.MemAccessEvents"/>. When it is
        /// synchronous the vCPU is paused until <see cref="Domain.RespondToMemAccess"/>.
        /// </summary>
        MemAccessEvent,

        /// <summary>A software #VE (vector 20) was delivered: the VE information page is filled and the vCPU has it pending.</summary>
        VirtualizationException,

        /// <summary>The access must be emulated: MMIO, a write to read-only RAM or MMIO (discarded), or an ioreq server.</summary>
        Mmio,

        /// <summary>
        /// Nothing can handle the fault (no mapping and no device, a full event ring, a required
        /// listener missing — the domain is then crashed —, paging types, sharing without an unshare callback).
        /// </summary>
        Unhandled,
    }

    /// <summary>Kind of a <see cref="MemAccessEvent"/>.</summary>
    public enum MemAccessEventKind
    {
        /// <summary>An access violated the p2m access of the vCPU's view (Xen's VM_EVENT_REASON_MEM_ACCESS).</summary>
        Violation = 1,

        /// <summary>A host change reset an alternate view (removal inside its remapped range); the view is now empty.</summary>
        ViewReset = 2,
    }

    /// <summary>Request flags of a <see cref="MemAccessEvent"/>; values are Xen's vm_event ones.</summary>
    [Flags]
    public enum MemAccessFlags : uint
    {
        /// <summary>No flag.</summary>
        None = 0,

        /// <summary>The faulting access read (Xen also sets it for writes: read-modify-write instructions may report only the write).</summary>
        Read = 1 << 0,

        /// <summary>The faulting access wrote.</summary>
        Write = 1 << 1,

        /// <summary>The faulting access was an instruction fetch.</summary>
        Execute = 1 << 2,

        /// <summary><see cref="MemAccessEvent.Gla"/> is valid.</summary>
        GlaValid = 1 << 3,

        /// <summary>The access was to the final translation of the linear address.</summary>
        FaultWithGla = 1 << 4,

        /// <summary>The access was to a guest paging-structure entry.</summary>
        FaultInGuestPageTable = 1 << 5,

        /// <summary>The vCPU is paused until the event is answered (a synchronous event).</summary>
        VcpuPaused = 1u << 16,

        /// <summary>The fault happened in an alternate view; <see cref="MemAccessEvent.View"/> names it.</summary>
        AlternateView = 1u << 17,
    }

    /// <summary>
    /// One message on <see cref="Domain.MemAccessEvents"/>: a mem_access violation (docs/model/mem-access.md §5.2) or
    /// a view reset notification.
    /// </summary>
    /// <param name="Id">Sequence number, unique per domain (start at 1).</param>
    /// <param name="Kind">Violation or view reset.</param>
    /// <param name="VcpuId">The faulting vCPU (-1 for a view reset).</param>
    /// <param name="View">The view the fault happened in (0 = host), or the view that was reset.</param>
    /// <param name="Gfn">The faulting GFN (<see cref="Mfn.Invalid"/> for a view reset).</param>
    /// <param name="Offset">Offset of the faulting GPA in its page.</param>
    /// <param name="Gla">The guest linear address when <see cref="MemAccessFlags.GlaValid"/>, else ~0.</param>
    /// <param name="Flags">Access kind, GLA and pause flags.</param>
    /// <param name="Access">The entry's access when the fault was seen.</param>
    public readonly record struct MemAccessEvent(
        long Id,
        MemAccessEventKind Kind,
        int VcpuId,
        int View,
        ulong Gfn,
        ulong Offset,
        ulong Gla,
        MemAccessFlags Flags,
        P2mAccess Access)
    {
        /// <summary>True when the vCPU waits for <see cref="Domain.RespondToMemAccess"/>.</summary>
        public bool IsSynchronous => (Flags & MemAccessFlags.VcpuPaused) != 0;
    }

    /// <summary>Result of a device access.</summary>
    public enum MmioResult
    {
        /// <summary>The access completed.</summary>
        Okay,

        /// <summary>The device cannot complete it now; the instruction is retried later.</summary>
        Retry,
    }

    /// <summary>An emulated device that owns a range of guest-physical pages (<see cref="Domain.MapMmio"/>).</summary>
    public interface IMmioDevice
    {
        /// <summary>Reads <paramref name="size"/> (1, 2, 4 or 8) bytes at <paramref name="gpa"/>.</summary>
        MmioResult Read(ulong gpa, int size, out ulong value);

        /// <summary>Writes the low <paramref name="size"/> (1, 2, 4 or 8) bytes of <paramref name="value"/> at <paramref name="gpa"/>.</summary>
        MmioResult Write(ulong gpa, int size, ulong value);
    }

    /// <summary>Settings of a <see cref="Domain"/>.</summary>
    public sealed class DomainOptions
    {
        /// <summary>Number of vCPUs (1 to 4096).</summary>
        public int Vcpus { get; set; } = 1;

        /// <summary>Alternate views 1..AltViews; 0 turns altp2m off. At most 511 (host + views fill one EPTP list).</summary>
        public int AltViews { get; set; } = 10;

        /// <summary>4 KiB frames given to the host p2m's populate-on-demand pool at creation.</summary>
        public long PodFrames { get; set; }

        /// <summary>Options of the host p2m; views copy them (with their own default access).</summary>
        public P2mOptions P2m { get; set; } = new();

        /// <summary>Capacity of <see cref="Domain.MemAccessEvents"/> (Xen's ring); a full ring makes the fault unhandled.</summary>
        public int EventRingCapacity { get; set; } = 64;

        internal DomainOptions Clone()
        {
            var c = (DomainOptions)MemberwiseClone();
            c.P2m = (P2m ?? new P2mOptions()).Clone();
            return c;
        }

        internal void Validate(string paramName)
        {
            if (Vcpus is < 1 or > 4096)
            {
                throw new ArgumentOutOfRangeException(paramName, Vcpus, "DomainOptions.Vcpus must be in [1, 4096].");
            }

            if (AltViews is < 0 or > Altp2m.MaxAltViews)
            {
                throw new ArgumentOutOfRangeException(paramName, AltViews, $"DomainOptions.AltViews must be in [0, {Altp2m.MaxAltViews}].");
            }

            if (PodFrames < 0)
            {
                throw new ArgumentOutOfRangeException(paramName, PodFrames, "DomainOptions.PodFrames must not be negative.");
            }

            if (EventRingCapacity is < 1 or > 1 << 20)
            {
                throw new ArgumentOutOfRangeException(paramName, EventRingCapacity, "DomainOptions.EventRingCapacity must be in [1, 2^20].");
            }

            P2m.Validate(paramName);
        }
    }
}

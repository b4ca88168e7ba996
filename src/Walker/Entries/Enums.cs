// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// The p2m type of a guest frame, with Xen's <c>p2m_type_t</c> values. It is stored in bits
    /// 57:52 of an <see cref="EptEntry"/> (the values fit in four bits, so 57:56 stay zero).
    /// </summary>
    public enum P2mType : byte
    {
        /// <summary>Ordinary read/write RAM.</summary>
        RamRw = 0,
        /// <summary>No entry; an entry of this type is never valid.</summary>
        Invalid = 1,
        /// <summary>RAM whose writes are being tracked (log-dirty mode).</summary>
        RamLogDirty = 2,
        /// <summary>Read-only RAM; guest writes are silently dropped.</summary>
        RamRo = 3,
        /// <summary>MMIO emulated by a device model; also what a hole reads as.</summary>
        MmioDm = 4,
        /// <summary>Pass-through MMIO.</summary>
        MmioDirect = 5,
        /// <summary>Populate-on-demand placeholder: backed by a frame on first access.</summary>
        PopulateOnDemand = 6,
        /// <summary>Grant mapping, writable.</summary>
        GrantMapRw = 7,
        /// <summary>Grant mapping, read-only.</summary>
        GrantMapRo = 8,
        /// <summary>RAM on its way out to the pager.</summary>
        RamPagingOut = 9,
        /// <summary>RAM that has been paged out.</summary>
        RamPaged = 10,
        /// <summary>RAM on its way back in from the pager.</summary>
        RamPagingIn = 11,
        /// <summary>Shared (deduplicated) RAM, read-only until unshared.</summary>
        RamShared = 12,
        /// <summary>RAM with a broken frame behind it.</summary>
        RamBroken = 13,
        /// <summary>A foreign domain's frame.</summary>
        MapForeign = 14,
        /// <summary>RAM whose accesses may be claimed by an ioreq server.</summary>
        IoreqServer = 15,
    }

    /// <summary>
    /// The access restriction of a guest frame, with Xen's <c>p2m_access_t</c> values, stored in
    /// bits 62:59 of an <see cref="EptEntry"/>. The low three bits of N..RWX are an r/w/x mask.
    /// </summary>
    public enum P2mAccess : byte
    {
        /// <summary>No access.</summary>
        N = 0,
        /// <summary>Read only.</summary>
        R = 1,
        /// <summary>Write only (rejected on a readable type: it would be an EPT misconfiguration).</summary>
        W = 2,
        /// <summary>Read and write.</summary>
        RW = 3,
        /// <summary>Execute only.</summary>
        X = 4,
        /// <summary>Read and execute.</summary>
        RX = 5,
        /// <summary>Write and execute (rejected on a readable type, like <see cref="W"/>).</summary>
        WX = 6,
        /// <summary>Everything the type allows.</summary>
        RWX = 7,
        /// <summary>Read/execute; becomes read/write on the first write fault, with no event.</summary>
        RX2RW = 8,
        /// <summary>No access; becomes RWX on the first fault, with an event.</summary>
        N2RWX = 9,
        /// <summary>Read only, but the CPU's own paging-structure A/D writes go through.</summary>
        R_PW = 10,
    }

    /// <summary>The size of a mapping, as a power of two in 4 KiB frames.</summary>
    public enum PageOrder : byte
    {
        /// <summary>A 4 KiB page (a PTE).</summary>
        Size4K = 0,
        /// <summary>A 2 MiB superpage (a PDE with bit 7 set).</summary>
        Size2M = 9,
        /// <summary>A 1 GiB superpage (a PDPTE with bit 7 set).</summary>
        Size1G = 18,
    }

    /// <summary>The kinds of access a guest makes to memory; combinable.</summary>
    [Flags]
    public enum AccessKind : byte
    {
        /// <summary>A data read.</summary>
        Read = 1,
        /// <summary>A data write.</summary>
        Write = 2,
        /// <summary>An instruction fetch.</summary>
        Execute = 4,
    }

    /// <summary>How <see cref="P2m.SetEntry"/> sets an entry's suppress-#VE bit (bit 63).</summary>
    public enum SuppressVe : byte
    {
        /// <summary>Keep the bit of the entry being replaced (or of the superpage being split); 1 if none.</summary>
        Inherit = 0,
        /// <summary>Clear the bit: EPT violations on this GFN may become #VE.</summary>
        Clear = 1,
        /// <summary>Set the bit: EPT violations on this GFN always exit.</summary>
        Set = 2,
    }

    /// <summary>What <see cref="P2m.GetEntry"/> may do beyond reading.</summary>
    public enum P2mQuery : byte
    {
        /// <summary>Read only; the tables are never changed.</summary>
        None = 0,
        /// <summary>Populate a populate-on-demand entry from the PoD cache and return the RAM entry.</summary>
        Alloc = 1,
    }

    /// <summary>The outcome of a hardware-style EPT walk.</summary>
    public enum EptStatus : byte
    {
        /// <summary>The access is allowed; <see cref="EptTranslation.Hpa"/> is valid.</summary>
        Ok = 0,
        /// <summary>EPT violation (exit reason 48): not present or insufficient rights.</summary>
        Violation = 1,
        /// <summary>EPT misconfiguration (exit reason 49): an entry on the walk is malformed.</summary>
        Misconfig = 2,
    }

    /// <summary>Frame-number constants.</summary>
    public static class Mfn
    {
        /// <summary>"No frame" (Xen's <c>INVALID_MFN</c>); also used for GFNs.</summary>
        public const ulong Invalid = ~0UL;
    }
}

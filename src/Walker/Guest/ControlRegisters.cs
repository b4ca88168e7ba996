// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>CR0 bits (Intel SDM Vol. 3A 2.5); the walk reads PG and WP.</summary>
    [Flags]
    public enum Cr0Flags : ulong
    {
        /// <summary>No bit.</summary>
        None = 0,

        /// <summary>Bit 0, protection enable.</summary>
        PE = 1UL << 0,

        /// <summary>Bit 16, write protect: supervisor writes honour read-only pages.</summary>
        WP = 1UL << 16,

        /// <summary>Bit 29, not write-through (a change reloads the PAE PDPTEs).</summary>
        NW = 1UL << 29,

        /// <summary>Bit 30, cache disable (a change reloads the PAE PDPTEs).</summary>
        CD = 1UL << 30,

        /// <summary>Bit 31, paging.</summary>
        PG = 1UL << 31,
    }

    /// <summary>CR4 bits (Intel SDM Vol. 3A 2.5) that control paging.</summary>
    [Flags]
    public enum Cr4Flags : ulong
    {
        /// <summary>No bit.</summary>
        None = 0,

        /// <summary>Bit 4, page size extensions: 4 MiB pages under 32-bit paging.</summary>
        Pse = 1UL << 4,

        /// <summary>Bit 5, physical address extension: PAE paging, and required by IA-32e paging.</summary>
        Pae = 1UL << 5,

        /// <summary>Bit 7, global pages: a leaf's G flag counts.</summary>
        Pge = 1UL << 7,

        /// <summary>Bit 12, 57-bit linear addresses: 5-level paging when IA-32e mode is active.</summary>
        La57 = 1UL << 12,

        /// <summary>Bit 17, process-context identifiers: CR3 bits 11:0 are the PCID (IA-32e mode only).</summary>
        Pcide = 1UL << 17,

        /// <summary>Bit 20, supervisor-mode execution prevention.</summary>
        Smep = 1UL << 20,

        /// <summary>Bit 21, supervisor-mode access prevention (with RFLAGS.AC).</summary>
        Smap = 1UL << 21,

        /// <summary>Bit 22, protection keys for user-mode pages (PKRU; IA-32e paging only).</summary>
        Pke = 1UL << 22,

        /// <summary>Bit 24, protection keys for supervisor-mode pages (IA32_PKRS; IA-32e paging only).</summary>
        Pks = 1UL << 24,
    }

    /// <summary>IA32_EFER bits (Intel SDM Vol. 3A 2.2.1) that control paging.</summary>
    [Flags]
    public enum EferFlags : ulong
    {
        /// <summary>No bit.</summary>
        None = 0,

        /// <summary>Bit 8, IA-32e mode enable.</summary>
        Lme = 1UL << 8,

        /// <summary>Bit 10, IA-32e mode active: the processor's, LME and CR0.PG together (see <see cref="Vcpu.Efer"/>).</summary>
        Lma = 1UL << 10,

        /// <summary>Bit 11, execute-disable enable: bit 63 of PAE and IA-32e entries is XD.</summary>
        Nxe = 1UL << 11,
    }
}

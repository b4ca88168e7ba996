// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>
    /// The outcome of the VM-entry EPTP check (<see cref="Eptp.Check"/>): <see cref="Ok"/> or the
    /// first failing field, in bit order. The values are those of the C
    /// <c>enum fastept_eptp_status</c> (docs/model/ept.md §1.7).
    /// </summary>
    public enum EptpStatus
    {
        /// <summary>VM entry accepts the EPTP.</summary>
        Ok = 0,
        /// <summary>Bits 2:0 are neither UC (0) nor WB (6), or the capability bit of that type (8 or 14) is clear.</summary>
        MemoryType = 1,
        /// <summary>Bits 5:3 are neither 3 (4-level walk, capability bit 6) nor 4 (5-level walk, capability bit 7), or that bit is clear.</summary>
        WalkLength = 2,
        /// <summary>Bit 6 (accessed/dirty flags enable) is set while capability bit 21 is clear.</summary>
        AccessDirty = 3,
        /// <summary>Bit 7 (supervisor shadow-stack control) is set without <see cref="EptpCapabilities.SupervisorShadowStackControl"/>.</summary>
        SupervisorShadowStack = 4,
        /// <summary>A reserved bit in 11:8 is set.</summary>
        Reserved = 5,
        /// <summary>A bit at or above MAXPHYADDR (bits 63:MAXPHYADDR) is set.</summary>
        Address = 6,
        /// <summary>The capabilities are unusable (MAXPHYADDR outside 32 .. 52, as in a default value): nothing was checked.</summary>
        BadCapabilities = 255,
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>The INVPCID types (Intel SDM Vol. 2B, INVPCID; Vol. 3A 4.10.4.1).</summary>
    public enum InvpcidType
    {
        /// <summary>Type 0: the mappings of one linear address for one PCID, except global translations.</summary>
        IndividualAddress = 0,

        /// <summary>Type 1: every mapping of one PCID, except global translations.</summary>
        SingleContext = 1,

        /// <summary>Type 2: every mapping of every PCID, global translations included.</summary>
        AllContextIncludingGlobal = 2,

        /// <summary>Type 3: every mapping of every PCID, except global translations.</summary>
        AllContext = 3,
    }

    /// <summary>The INVVPID types (Intel SDM Vol. 3C 30.3, INVVPID); the VPID is the vCPU's own.</summary>
    public enum InvvpidType
    {
        /// <summary>Type 0: the mappings of one linear address (every PCID, global translations included).</summary>
        IndividualAddress = 0,

        /// <summary>Type 1: every mapping of the VPID.</summary>
        SingleContext = 1,

        /// <summary>Type 2: every mapping of every VPID (for one vCPU, the same as type 1).</summary>
        AllContext = 2,

        /// <summary>Type 3: every mapping of the VPID except global translations.</summary>
        SingleContextRetainingGlobals = 3,
    }
}

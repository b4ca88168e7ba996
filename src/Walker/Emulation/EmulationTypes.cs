// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>Outcome of an <see cref="HvmEmulation"/> access (Xen's X86EMUL_* codes).</summary>
    public enum EmulationResult
    {
        /// <summary>The access completed.</summary>
        Okay,

        /// <summary>
        /// A device (or a transient p2m state) asked to try again: re-run the same instruction;
        /// completed device reads replay from the MMIO cache and completed device writes are not
        /// re-issued.
        /// </summary>
        Retry,

        /// <summary>An exception is to be injected: see <see cref="HvmEmulation.LastException"/>.</summary>
        Exception,

        /// <summary>The access cannot be emulated; nothing was changed by this call. <see cref="HvmEmulation.LastFailure"/> says why.</summary>
        Unhandleable,
    }

    /// <summary>The class of an emulated access: each class has its own MMIO cache entries (docs/model/README.md §0.7).</summary>
    public enum AccessTag
    {
        /// <summary>An instruction operand.</summary>
        Operand,

        /// <summary>An instruction fetch (never from MMIO).</summary>
        InstructionFetch,

        /// <summary>An implicit supervisor access, such as a descriptor-table read (always a supervisor access).</summary>
        SystemTable,
    }

    /// <summary>An exception an emulated access raised (<see cref="EmulationResult.Exception"/>).</summary>
    /// <param name="Vector">14 (#PF), 13 (#GP, a non-canonical address) or 20 (#VE).</param>
    /// <param name="ErrorCode">The #PF error code (0 for #GP and #VE).</param>
    /// <param name="LinearAddress">The faulting linear address (CR2 for a #PF).</param>
    public readonly record struct EmulationException(int Vector, uint ErrorCode, ulong LinearAddress);
}

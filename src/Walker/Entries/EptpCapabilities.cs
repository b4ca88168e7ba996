// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// What the VM-entry EPTP check depends on: the CPU's <c>IA32_VMX_EPT_VPID_CAP</c> MSR (0x48C,
    /// SDM Vol. 3C Appendix A.10), its MAXPHYADDR and whether it allows supervisor shadow-stack
    /// control (EPTP bit 7). The C twin is <c>fastept_eptp_caps</c>.
    /// </summary>
    /// <remarks>The shadow-stack permission is an input of its own rather than an MSR bit: FastEpt
    /// does not read it from <see cref="EptVpidCap"/>. A <c>default</c> value (MAXPHYADDR 0) is
    /// unusable and every check against it returns <see cref="EptpStatus.BadCapabilities"/>.
    /// Thread-safe (a plain value).</remarks>
    public readonly struct EptpCapabilities : IEquatable<EptpCapabilities>
    {
        /// <summary><c>IA32_VMX_EPT_VPID_CAP</c> bit 6: a page-walk length of 4 is supported.</summary>
        public const ulong PageWalk4Bit = 1UL << 6;
        /// <summary><c>IA32_VMX_EPT_VPID_CAP</c> bit 7: a page-walk length of 5 is supported.</summary>
        public const ulong PageWalk5Bit = 1UL << 7;
        /// <summary><c>IA32_VMX_EPT_VPID_CAP</c> bit 8: the EPT paging structures may be uncacheable (UC).</summary>
        public const ulong UncacheableBit = 1UL << 8;
        /// <summary><c>IA32_VMX_EPT_VPID_CAP</c> bit 14: the EPT paging structures may be write-back (WB).</summary>
        public const ulong WriteBackBit = 1UL << 14;
        /// <summary><c>IA32_VMX_EPT_VPID_CAP</c> bit 21: accessed and dirty flags for EPT are supported.</summary>
        public const ulong AccessDirtyBit = 1UL << 21;

        /// <summary>The smallest MAXPHYADDR accepted (32).</summary>
        public const int MinPhysicalAddressBits = 32;
        /// <summary>The largest MAXPHYADDR accepted (52).</summary>
        public const int MaxPhysicalAddressBits = 52;

        /// <summary>Creates the capabilities of a CPU.</summary>
        /// <param name="eptVpidCap">The value of <c>IA32_VMX_EPT_VPID_CAP</c>.</param>
        /// <param name="maxPhysicalAddress">MAXPHYADDR (CPUID 80000008H EAX[7:0]), 32 .. 52.</param>
        /// <param name="supervisorShadowStackControl">Whether the CPU allows EPTP bit 7.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxPhysicalAddress"/> is outside 32 .. 52.</exception>
        public EptpCapabilities(ulong eptVpidCap, int maxPhysicalAddress, bool supervisorShadowStackControl = false)
        {
            if ((uint)(maxPhysicalAddress - MinPhysicalAddressBits) > MaxPhysicalAddressBits - MinPhysicalAddressBits)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(maxPhysicalAddress), maxPhysicalAddress, "MAXPHYADDR must be 32 .. 52.");
            }

            EptVpidCap = eptVpidCap;
            MaxPhysicalAddress = maxPhysicalAddress;
            SupervisorShadowStackControl = supervisorShadowStackControl;
        }

        /// <summary>A CPU with everything FastEpt walks: UC and WB tables, 4- and 5-level walks, accessed/dirty flags; no shadow-stack control.</summary>
        /// <param name="maxPhysicalAddress">MAXPHYADDR, 32 .. 52.</param>
        /// <returns>The capabilities.</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxPhysicalAddress"/> is outside 32 .. 52.</exception>
        public static EptpCapabilities AllWalkable(int maxPhysicalAddress)
            => new(PageWalk4Bit | PageWalk5Bit | UncacheableBit | WriteBackBit | AccessDirtyBit, maxPhysicalAddress);

        /// <summary>The value of <c>IA32_VMX_EPT_VPID_CAP</c>.</summary>
        public ulong EptVpidCap { get; }

        /// <summary>MAXPHYADDR: EPTP bits 63:MAXPHYADDR must be zero (0 in a <c>default</c> value).</summary>
        public int MaxPhysicalAddress { get; }

        /// <summary>Whether the CPU allows EPTP bit 7 (supervisor shadow-stack control).</summary>
        public bool SupervisorShadowStackControl { get; }

        /// <inheritdoc/>
        public bool Equals(EptpCapabilities other)
            => EptVpidCap == other.EptVpidCap && MaxPhysicalAddress == other.MaxPhysicalAddress
               && SupervisorShadowStackControl == other.SupervisorShadowStackControl;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is EptpCapabilities other && Equals(other);

        /// <inheritdoc/>
        public override int GetHashCode() => HashCode.Combine(EptVpidCap, MaxPhysicalAddress, SupervisorShadowStackControl);

        /// <summary>Compares two values field by field.</summary>
        /// <param name="left">The first value.</param>
        /// <param name="right">The second value.</param>
        /// <returns>Whether they are equal.</returns>
        public static bool operator ==(EptpCapabilities left, EptpCapabilities right) => left.Equals(right);

        /// <summary>Compares two values field by field.</summary>
        /// <param name="left">The first value.</param>
        /// <param name="right">The second value.</param>
        /// <returns>Whether they differ.</returns>
        public static bool operator !=(EptpCapabilities left, EptpCapabilities right) => !left.Equals(right);
    }
}

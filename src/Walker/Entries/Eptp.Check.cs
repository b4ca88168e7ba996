// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    public readonly partial struct Eptp
    {
        /// <summary>
        /// Checks this EPTP as VM entry does when "enable EPT" is set (SDM Vol. 3C "Checks on VMX
        /// Controls", the EPTP paragraph; docs/model/ept.md §1.7), against a CPU's
        /// <paramref name="capabilities"/>. The C twin is <c>fastept_eptp_check</c>.
        /// </summary>
        /// <param name="capabilities">The CPU's EPT capabilities and MAXPHYADDR.</param>
        /// <returns><see cref="EptpStatus.Ok"/>, or the first failing field in bit order: memory
        /// type, walk length, accessed/dirty, shadow stack, reserved 11:8, address above MAXPHYADDR;
        /// <see cref="EptpStatus.BadCapabilities"/> for a <c>default</c> <paramref name="capabilities"/>.</returns>
        /// <remarks>Only the EPTP's own fields are checked; whether the root frame is RAM, or
        /// inside some host memory, is not (a VM entry does not check it either).</remarks>
        public EptpStatus Check(in EptpCapabilities capabilities)
        {
            int maxPhys = capabilities.MaxPhysicalAddress;
            if ((uint)(maxPhys - EptpCapabilities.MinPhysicalAddressBits)
                > EptpCapabilities.MaxPhysicalAddressBits - EptpCapabilities.MinPhysicalAddressBits)
            {
                return EptpStatus.BadCapabilities;
            }

            ulong cap = capabilities.EptVpidCap;

            // Only UC and WB exist for the paging structures, each only where the CPU reports it.
            ulong type = _value & MemoryTypeMask;
            bool typeOk = (type == MemoryTypeUncacheable && (cap & EptpCapabilities.UncacheableBit) != 0)
                          || (type == MemoryTypeWriteBack && (cap & EptpCapabilities.WriteBackBit) != 0);
            if (!typeOk)
            {
                return EptpStatus.MemoryType;
            }

            // Bits 5:3 hold the walk length minus one: 3 (4-level) or 4 (5-level).
            ulong walk = (_value & WalkLengthMask) >> WalkLengthShift;
            bool walkOk = (walk == 3 && (cap & EptpCapabilities.PageWalk4Bit) != 0)
                          || (walk == 4 && (cap & EptpCapabilities.PageWalk5Bit) != 0);
            if (!walkOk)
            {
                return EptpStatus.WalkLength;
            }

            if ((_value & AccessDirtyBit) != 0 && (cap & EptpCapabilities.AccessDirtyBit) == 0)
            {
                return EptpStatus.AccessDirty;
            }

            if ((_value & SupervisorShadowStackBit) != 0 && !capabilities.SupervisorShadowStackControl)
            {
                return EptpStatus.SupervisorShadowStack;
            }

            if ((_value & ReservedMask) != 0)
            {
                return EptpStatus.Reserved;
            }

            // Bits 63:MAXPHYADDR (maxPhys <= 52, so the shift is in range).
            if ((_value >> maxPhys) != 0)
            {
                return EptpStatus.Address;
            }

            return EptpStatus.Ok;
        }
    }
}

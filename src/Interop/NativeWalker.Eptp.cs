// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using static FastEpt.Interop.FastEptNative;

namespace FastEpt.Interop
{
    public sealed unsafe partial class NativeWalker
    {
        /// <summary>
        /// Checks <paramref name="eptp"/> as VM entry does with the C library's
        /// <c>fastept_eptp_check</c>; the same answer as the managed <see cref="Eptp.Check"/>
        /// (docs/model/ept.md §1.7).
        /// </summary>
        /// <param name="eptp">The EPTP.</param>
        /// <param name="capabilities">The CPU's EPT capabilities and MAXPHYADDR.</param>
        /// <returns><see cref="EptpStatus.Ok"/> or the first failing field.</returns>
        /// <remarks>Loads the native library on first use (as creating a walker does). Thread-safe.</remarks>
        public static EptpStatus CheckEptp(Eptp eptp, in EptpCapabilities capabilities)
        {
            EnsureNative();
            fastept_eptp_caps caps = new fastept_eptp_caps
            {
                ept_vpid_cap = capabilities.EptVpidCap,
                max_phys_addr = (uint)capabilities.MaxPhysicalAddress,
                flags = capabilities.SupervisorShadowStackControl ? FASTEPT_EPTP_CAP_SHADOW_STACK : 0,
            };
            return (EptpStatus)fastept_eptp_check(eptp.Value, &caps);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    // The vCPU's combined TLB (LinearTlb) and the two seams through which the register model
    // invalidates it: MOV to CR3 and the paging control bits.
    public sealed partial class Vcpu
    {
        private LinearTlb? _tlb;

        /// <summary>
        /// This vCPU's combined GVA → HPA TLB (created on first use). <see cref="GetPageFromGva"/>
        /// and <see cref="HvmEmulation"/> answer from it; invalidate it as the guest does
        /// (<see cref="LinearTlb.Invlpg"/>, <see cref="LinearTlb.Invpcid"/>, <see cref="LinearTlb.Invvpid"/>);
        /// CR3 loads and paging control changes invalidate it by themselves, p2m changes through
        /// the p2m's TLB generation.
        /// </summary>
        /// <remarks>Belongs to the thread that runs the vCPU, like the paging registers.</remarks>
        public LinearTlb Tlb => _tlb ??= new LinearTlb(this);

        /// <summary>
        /// <see cref="TranslateLinear"/> through <see cref="Tlb"/>: a hit answers without walking
        /// (stale only where a CPU's TLB may be: a guest paging entry changed and not yet invalidated).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="pfec">The access, as for <see cref="TranslateLinear"/> (an implicit supervisor access always walks).</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="pfec"/> is not a valid access description.</exception>
        public GuestTranslation TranslateLinearCached(ulong gla, PageFaultErrorCode pfec) => Tlb.Translate(gla, pfec);

        // The walk the TLB fills from, on the view it synchronised with.
        internal GuestTranslation TranslateForTlb(P2m ept, ulong gla, PageFaultErrorCode pfec) => TranslateOn(ept, gla, pfec);

        partial void OnCr3Load(ulong value) => _tlb?.LoadCr3(Pcid, noFlush: (value >> 63) != 0);

        partial void OnPagingControlChange() => _tlb?.PagingControlChanged(Pcid);

        // RFLAGS.AC is part of an access's class in the TLB (SMAP depends on it, and it is no flush event).
        partial void OnAcChange(bool value) => _tlb?.AcChanged(value);
    }
}

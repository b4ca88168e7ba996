/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* eptp.c - the VM-entry check of an EPTP (Intel SDM Vol. 3C "Checks on VMX Controls", the
   EPTP paragraph; capability bits from Appendix A.10, IA32_VMX_EPT_VPID_CAP). The managed twin
   is FastEpt.Eptp.Check; both report the first failing field in bit order. */

#include "internal.h"

/* IA32_VMX_EPT_VPID_CAP bits (SDM Vol. 3C Appendix A.10). */
#define EPTP_CAP_WALK4 (UINT64_C(1) << 6)  /* page-walk length 4 supported */
#define EPTP_CAP_WALK5 (UINT64_C(1) << 7)  /* page-walk length 5 supported */
#define EPTP_CAP_UC (UINT64_C(1) << 8)     /* EPT paging structures may be uncacheable */
#define EPTP_CAP_WB (UINT64_C(1) << 14)    /* EPT paging structures may be write-back */
#define EPTP_CAP_AD (UINT64_C(1) << 21)    /* accessed and dirty flags for EPT */

/* EPTP fields (SDM Vol. 3C, the VMCS "extended-page-table pointer"). */
#define EPTP_TYPE_MASK UINT64_C(7)             /* bits 2:0 memory type */
#define EPTP_WALK_SHIFT 3                      /* bits 5:3 page-walk length - 1 */
#define EPTP_AD_BIT (UINT64_C(1) << 6)         /* accessed/dirty enable */
#define EPTP_SSS_BIT (UINT64_C(1) << 7)        /* supervisor shadow-stack control */
#define EPTP_RESERVED_MASK UINT64_C(0xF00)     /* bits 11:8 */

int32_t fastept_eptp_check(uint64_t eptp, const fastept_eptp_caps *caps)
{
    if (caps == NULL || caps->max_phys_addr - 32u > 20u
        || (caps->flags & ~(uint32_t)FASTEPT_EPTP_CAP_SHADOW_STACK) != 0) {
        return FASTEPT_EPTP_BAD_CAPS;
    }

    uint64_t cap = caps->ept_vpid_cap;
    /* Only UC and WB exist for the paging structures, and each only where the CPU says so. */
    uint64_t type = eptp & EPTP_TYPE_MASK;
    if (!((type == 0 && (cap & EPTP_CAP_UC) != 0) || (type == 6 && (cap & EPTP_CAP_WB) != 0))) {
        return FASTEPT_EPTP_MEMORY_TYPE;
    }

    uint64_t walk = (eptp >> EPTP_WALK_SHIFT) & 7;
    if (!((walk == 3 && (cap & EPTP_CAP_WALK4) != 0) || (walk == 4 && (cap & EPTP_CAP_WALK5) != 0))) {
        return FASTEPT_EPTP_WALK_LENGTH;
    }

    if ((eptp & EPTP_AD_BIT) != 0 && (cap & EPTP_CAP_AD) == 0) {
        return FASTEPT_EPTP_ACCESS_DIRTY;
    }

    if ((eptp & EPTP_SSS_BIT) != 0 && (caps->flags & FASTEPT_EPTP_CAP_SHADOW_STACK) == 0) {
        return FASTEPT_EPTP_SHADOW_STACK;
    }

    if ((eptp & EPTP_RESERVED_MASK) != 0) {
        return FASTEPT_EPTP_RESERVED;
    }

    /* Bits 63:MAXPHYADDR; max_phys_addr <= 52 keeps the shift in range. */
    if ((eptp >> caps->max_phys_addr) != 0) {
        return FASTEPT_EPTP_ADDRESS;
    }

    return FASTEPT_EPTP_OK;
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* util.c - version, EPTP construction and walker validation (the EPTP itself: eptp.c). */

#include "internal.h"

uint32_t fastept_abi_version(void)
{
    return FASTEPT_ABI_VERSION;
}

uint64_t fastept_make_eptp(uint64_t root_mfn, uint32_t levels, uint32_t access_dirty)
{
    /* SDM 24.6.11: bits 2:0 memory type (6 = write-back), 5:3 walk length - 1, 6 A/D enable,
       51:12 the root table. Out-of-range inputs are masked into their fields, which
       fastept_walker_check then rejects (e.g. levels 0 reads as 8). */
    return ((root_mfn << EPT_PAGE_BITS) & EPT_MFN_MASK) | ((uint64_t)((levels - 1u) & 7u) << 3) | UINT64_C(6)
           | (access_dirty != 0 ? UINT64_C(1) << 6 : 0);
}

int32_t fastept_walker_check(const fastept_walker *walker)
{
    if (!ept_walker_usable(walker)) {
        return FASTEPT_ERR_RANGE;
    }

    /* Unknown capability bits and a default access outside FastEpt.P2mAccess. */
    if ((walker->caps & ~(uint32_t)63) != 0 || walker->default_access > P2M_ACCESS_MAX) {
        return FASTEPT_ERR_RANGE;
    }

    /* The EPTP as VM entry would take it on a CPU with everything FastEpt walks (UC/WB tables,
       4 and 5 levels, A/D flags) and MAXPHYADDR = host_address_bits, without supervisor
       shadow-stack control: a type other than UC/WB, bits 11:7 or bits above MAXPHYADDR fail. */
    const fastept_eptp_caps caps = {
        (UINT64_C(1) << 6) | (UINT64_C(1) << 7) | (UINT64_C(1) << 8) | (UINT64_C(1) << 14) | (UINT64_C(1) << 21),
        walker->host_address_bits, 0};
    if (fastept_eptp_check(walker->eptp, &caps) != FASTEPT_EPTP_OK) {
        return FASTEPT_ERR_RANGE;
    }

    return FASTEPT_OK;
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * set_perms.c - what a p2m type and access allow: the entry permissions (Xen's
 * ept_p2m_type_to_flags, managed EptPermissions.Apply) and fastept_set_entry's argument checks
 * (managed ValidateSet), which refuse the combinations that would misconfigure.
 */

#include "set.h"

/* ---- Permissions (Xen's ept_p2m_type_to_flags, managed EptPermissions.Apply) -------------- */

/* Types whose base permissions include read (step 1 grants r). */
static int ept_readable_type(unsigned type)
{
    switch (type) {
    case P2M_RAM_RW:
    case P2M_IOREQ_SERVER:
    case P2M_MMIO_DIRECT:
    case P2M_RAM_LOGDIRTY:
    case P2M_RAM_RO:
    case P2M_RAM_SHARED:
    case P2M_GRANT_RW:
    case P2M_MAP_FOREIGN:
    case P2M_GRANT_RO:
        return 1;
    default:
        return 0;
    }
}

/* Access w or wx on a readable type would give rwx 010/110, a misconfiguration: refused. */
static int ept_write_without_read(unsigned type, unsigned access)
{
    return (access == P2M_ACCESS_W || access == P2M_ACCESS_WX) && ept_readable_type(type);
}

/*
 * Returns raw with r/w/x, paging-write and (for present types) A/D recomputed from type and
 * access. The type grants base rights, the access only clears them, and a superpage loses x
 * without FASTEPT_CAP_EXEC_SUPERPAGES (XSA-304). With A/D enabled new leaves get A preset, and
 * D where the type is writable, as Xen does. Values outside the enums grant nothing.
 */
EPT_HIDDEN uint64_t ept_apply(uint64_t raw, unsigned type, unsigned access, int superpage, uint32_t caps, int ad)
{
    const uint64_t r = 1, w = 2, x = 4;
    uint64_t rwx;
    int a = 0, d = 0, touch_ad = 1;
    switch (type) {
    case P2M_RAM_RW:
        rwx = r | w | x;
        a = d = ad;
        break;
    case P2M_IOREQ_SERVER:
        rwx = (caps & FASTEPT_CAP_IOREQ_CLAIMS_WRITES) != 0 ? r : r | w;
        a = ad;
        d = (rwx & w) != 0 && a;
        break;
    case P2M_MMIO_DIRECT:
        /* The native library has no read-only MMIO ranges: always writable. */
        rwx = r | w | x;
        a = d = ad;
        break;
    case P2M_RAM_LOGDIRTY:
        /* With PML, 4K log-dirty leaves stay writable and the CPU logs the dirtying. */
        rwx = (caps & FASTEPT_CAP_PML) != 0 && !superpage ? r | w | x : r | x;
        a = ad;
        break;
    case P2M_RAM_RO:
    case P2M_RAM_SHARED:
        rwx = r | x;
        a = ad;
        break;
    case P2M_GRANT_RW:
    case P2M_MAP_FOREIGN:
        rwx = r | w;
        a = d = ad;
        break;
    case P2M_GRANT_RO:
        rwx = r;
        a = ad;
        break;
    default:
        /* invalid, mmio_dm, pod, paging, broken, unknown: not present, A/D left alone. */
        rwx = 0;
        touch_ad = 0;
        break;
    }

    int pw = 0;
    switch (access) {
    case P2M_ACCESS_N:
    case P2M_ACCESS_N2RWX:
        rwx = 0;
        break;
    case P2M_ACCESS_R_PW:
        pw = (caps & FASTEPT_CAP_PAGING_WRITE) != 0;
        rwx &= r;
        break;
    case P2M_ACCESS_R:
        rwx &= r;
        break;
    case P2M_ACCESS_W:
        rwx &= w;
        break;
    case P2M_ACCESS_X:
        rwx &= x;
        break;
    case P2M_ACCESS_RX:
    case P2M_ACCESS_RX2RW:
        rwx &= r | x;
        break;
    case P2M_ACCESS_WX:
        rwx &= w | x;
        break;
    case P2M_ACCESS_RW:
        rwx &= r | w;
        break;
    default:
        /* rwx and unknown values: the type's rights unchanged. */
        break;
    }

    if (superpage && (caps & FASTEPT_CAP_EXEC_SUPERPAGES) == 0) {
        rwx &= ~x;
    }

    raw = (raw & ~(EPT_RWX_MASK | EPT_PAGING_WRITE)) | rwx | (pw ? EPT_PAGING_WRITE : 0);
    if (touch_ad) {
        raw = (raw & ~(EPT_ACCESSED | EPT_DIRTY)) | (a ? EPT_ACCESSED : 0) | (d ? EPT_DIRTY : 0);
    }

    return raw;
}

/* ---- Validation (managed ValidateSet: same checks, same order) ---------------------------- */

/* Types whose entries must name a real frame (Xen accepts INVALID_MFN only for these others). */
static int ept_needs_frame(unsigned type)
{
    switch (type) {
    case P2M_INVALID:
    case P2M_MMIO_DM:
    case P2M_MMIO_DIRECT:
    case P2M_POD:
    case P2M_PAGING_OUT:
    case P2M_PAGED:
    case P2M_PAGING_IN:
        return 0;
    default:
        return 1;
    }
}

/* Refuses with `status`, naming the refused argument in *argument. */
static int32_t ept_refuse(uint32_t *argument, uint32_t which, int32_t status)
{
    *argument = which;
    return status;
}

EPT_HIDDEN int32_t ept_validate_set(const fastept_walker *w, uint64_t gfn, uint64_t mfn, uint32_t order,
                                    uint32_t type, uint32_t access, uint32_t sve_mode, uint32_t *argument)
{
    *argument = FASTEPT_ARG_NONE;
    if (order != FASTEPT_ORDER_4K && order != FASTEPT_ORDER_2M && order != FASTEPT_ORDER_1G) {
        return ept_refuse(argument, FASTEPT_ARG_ORDER, FASTEPT_ERR_RANGE);
    }

    if (order == FASTEPT_ORDER_1G && (w->caps & FASTEPT_CAP_1G) == 0) {
        return ept_refuse(argument, FASTEPT_ARG_ORDER, FASTEPT_ERR_RANGE);
    }

    if (type > P2M_TYPE_MAX) {
        return ept_refuse(argument, FASTEPT_ARG_TYPE, FASTEPT_ERR_RANGE);
    }

    if (access > P2M_ACCESS_MAX) {
        return ept_refuse(argument, FASTEPT_ARG_ACCESS, FASTEPT_ERR_RANGE);
    }

    if (sve_mode > FASTEPT_SVE_SET) {
        return ept_refuse(argument, FASTEPT_ARG_SUPPRESS_VE, FASTEPT_ERR_RANGE);
    }

    if ((gfn >> (w->address_bits - EPT_PAGE_BITS)) != 0) {
        return ept_refuse(argument, FASTEPT_ARG_GFN, FASTEPT_ERR_RANGE);
    }

    uint64_t count = UINT64_C(1) << order;
    if ((gfn & (count - 1)) != 0) {
        return ept_refuse(argument, FASTEPT_ARG_GFN, FASTEPT_ERR_ALIGN);
    }

    if (type == P2M_MAP_FOREIGN && order != FASTEPT_ORDER_4K) {
        return ept_refuse(argument, FASTEPT_ARG_ORDER, FASTEPT_ERR_RANGE);   /* foreign mappings are 4K only */
    }

    if (mfn == FASTEPT_INVALID_MFN) {
        if (ept_needs_frame(type)) {
            return ept_refuse(argument, FASTEPT_ARG_MFN, FASTEPT_ERR_RANGE);
        }
    } else {
        if ((mfn & (count - 1)) != 0) {
            return ept_refuse(argument, FASTEPT_ARG_MFN, FASTEPT_ERR_ALIGN);
        }

        if (type == P2M_POD) {
            return ept_refuse(argument, FASTEPT_ARG_MFN, FASTEPT_ERR_RANGE);  /* PoD entries carry no frame */
        }

        /* RAM-backed frames must be host memory; MMIO frames must fit MAXPHYADDR. */
        uint64_t limit = type == P2M_MMIO_DM || type == P2M_MMIO_DIRECT || type == P2M_INVALID
                             ? UINT64_C(1) << (w->host_address_bits - EPT_PAGE_BITS)
                             : w->host_frames;
        if (mfn >= limit || count > limit - mfn) {
            return ept_refuse(argument, FASTEPT_ARG_MFN, FASTEPT_ERR_RANGE);
        }
    }

    if (ept_write_without_read(type, access)) {
        return ept_refuse(argument, FASTEPT_ARG_ACCESS, FASTEPT_ERR_PERMISSION);
    }

    /* Likewise an execute-only leaf on a CPU without the capability (SDM 29.3.3.1). */
    if ((w->caps & FASTEPT_CAP_EXECUTE_ONLY) == 0
        && (ept_apply(0, type, access, order != FASTEPT_ORDER_4K, w->caps, ept_ad_of(w->eptp)) & EPT_RWX_MASK) == 4) {
        return ept_refuse(argument, FASTEPT_ARG_ACCESS, FASTEPT_ERR_PERMISSION);
    }

    return FASTEPT_OK;
}

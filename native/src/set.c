/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * set.c - fastept_set_entry: Xen's ept_set_entry with FastEpt's fixes, as the managed
 * P2m.SetEntry (ValidateSet + SetEntryLocked) does it.
 *
 * Everything below the one live slot that changes (missing tables, a split superpage) is
 * built in frames taken from the caller's pool, which no reader can reach yet; the slot is
 * then published with one compare-exchange. The only other writers of live slots are walkers
 * setting A/D flags (atomic OR), so a failed compare-exchange means "rebuild from a fresh read".
 *
 * "Table frames owned by the p2m" (the managed _tables set) has no equivalent here: a present
 * non-superpage entry above level 1 is followed, retired or counted iff its frame is inside
 * host memory; beyond it, it is treated as a pointer the p2m does not own.
 */

#include "internal.h"

struct set_ctx {
    uint8_t *base;
    uint64_t frames;
    uint64_t root;
    uint64_t middle;        /* a middle entry without its frame field */
    const uint64_t *pool;
    uint32_t used;          /* pool frames taken by the current build */
    uint32_t caps;
    unsigned levels;
    int ad;
};

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
static uint64_t ept_apply(uint64_t raw, unsigned type, unsigned access, int superpage, uint32_t caps, int ad)
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

static int32_t ept_validate_set(const fastept_walker *w, uint64_t gfn, uint64_t mfn, uint32_t order,
                                uint32_t type, uint32_t access, uint32_t sve_mode)
{
    if (order != FASTEPT_ORDER_4K && order != FASTEPT_ORDER_2M && order != FASTEPT_ORDER_1G) {
        return FASTEPT_ERR_RANGE;
    }

    if (order == FASTEPT_ORDER_1G && (w->caps & FASTEPT_CAP_1G) == 0) {
        return FASTEPT_ERR_RANGE;
    }

    if (type > P2M_TYPE_MAX || access > P2M_ACCESS_MAX || sve_mode > FASTEPT_SVE_SET) {
        return FASTEPT_ERR_RANGE;
    }

    if ((gfn >> (w->address_bits - EPT_PAGE_BITS)) != 0) {
        return FASTEPT_ERR_RANGE;
    }

    uint64_t count = UINT64_C(1) << order;
    if ((gfn & (count - 1)) != 0) {
        return FASTEPT_ERR_ALIGN;
    }

    if (type == P2M_MAP_FOREIGN && order != FASTEPT_ORDER_4K) {
        return FASTEPT_ERR_RANGE;                       /* foreign mappings are 4K only */
    }

    if (mfn == FASTEPT_INVALID_MFN) {
        if (ept_needs_frame(type)) {
            return FASTEPT_ERR_RANGE;
        }
    } else {
        if ((mfn & (count - 1)) != 0) {
            return FASTEPT_ERR_ALIGN;
        }

        if (type == P2M_POD) {
            return FASTEPT_ERR_RANGE;                   /* PoD entries carry no frame */
        }

        /* RAM-backed frames must be host memory; MMIO frames must fit MAXPHYADDR. */
        uint64_t limit = type == P2M_MMIO_DM || type == P2M_MMIO_DIRECT || type == P2M_INVALID
                             ? UINT64_C(1) << (w->host_address_bits - EPT_PAGE_BITS)
                             : w->host_frames;
        if (mfn >= limit || count > limit - mfn) {
            return FASTEPT_ERR_RANGE;
        }
    }

    if (ept_write_without_read(type, access)) {
        return FASTEPT_ERR_PERMISSION;
    }

    /* Likewise an execute-only leaf on a CPU without the capability (SDM 29.3.3.1). */
    if ((w->caps & FASTEPT_CAP_EXECUTE_ONLY) == 0
        && (ept_apply(0, type, access, order != FASTEPT_ORDER_4K, w->caps, ept_ad_of(w->eptp)) & EPT_RWX_MASK) == 4) {
        return FASTEPT_ERR_PERMISSION;
    }

    return FASTEPT_OK;
}

/* ---- Building ----------------------------------------------------------------------------- */

/* Xen's step 5: the new leaf, from zero. Suppress-#VE is added by ept_with_sve. */
static uint64_t ept_build_leaf(const struct set_ctx *c, uint64_t mfn, uint32_t order, unsigned type, unsigned access)
{
    if (type == P2M_INVALID || (mfn == FASTEPT_INVALID_MFN && type == P2M_MMIO_DM)) {
        return 0;
    }

    int superpage = order > 0;
    uint64_t e = (superpage ? EPT_SUPERPAGE : 0) | ((uint64_t)type << EPT_TYPE_SHIFT)
                 | ((uint64_t)access << EPT_ACCESS_SHIFT) | ((mfn << EPT_PAGE_BITS) & EPT_MFN_MASK);
    e = ept_apply(e, type, access, superpage, c->caps, c->ad);
    if ((e & EPT_RWX_MASK) != 0 && type != P2M_MMIO_DIRECT) {
        /* The default EMT policy (no passed-through device, no read-only MMIO): write-back
           with PAT ignored; mmio_direct stays uncacheable (memory type 0) honouring PAT. */
        e |= (UINT64_C(6) << EPT_MEMTYPE_SHIFT) | EPT_IGNORE_PAT;
    }

    return e;
}

/* Suppress-#VE: set, clear, or inherited from the entry replaced (1 if that was not valid). */
static uint64_t ept_with_sve(uint64_t leaf, uint32_t mode, uint64_t old)
{
    int sve = mode == FASTEPT_SVE_SET ? 1
              : mode == FASTEPT_SVE_CLEAR ? 0
              : !ept_is_valid(old) || (old & EPT_SUPPRESS_VE) != 0;
    return sve ? leaf | EPT_SUPPRESS_VE : leaf & ~EPT_SUPPRESS_VE;
}

static uint64_t *ept_frame(const struct set_ctx *c, uint64_t mfn)
{
    return (uint64_t *)(void *)(c->base + (mfn << EPT_PAGE_BITS));
}

/* The next pool frame; the caller checked beforehand that the pool holds enough. */
static uint64_t ept_take(struct set_ctx *c)
{
    return c->pool[c->used++];
}

static uint64_t ept_middle(const struct set_ctx *c, uint64_t table)
{
    return c->middle | (table << EPT_PAGE_BITS);
}

/* Empty tables (every slot EPT_EMPTY_SLOT) from level - 1 down to target, each linked to the
   next; returns the middle entry for the slot at `level`. Plain stores: the frames are private. */
static uint64_t ept_build_chain(struct set_ctx *c, unsigned level, unsigned target, uint64_t gfn)
{
    uint64_t top = ept_take(c);
    uint64_t t = top;
    for (unsigned l = level - 1;; l--) {
        uint64_t *slots = ept_frame(c, t);
        for (unsigned i = 0; i < EPT_ENTRIES; i++) {
            slots[i] = EPT_EMPTY_SLOT;
        }

        if (l == target) {
            break;
        }

        uint64_t next = ept_take(c);
        slots[(gfn >> (EPT_TABLE_ORDER * (l - 1))) & (EPT_ENTRIES - 1)] = ept_middle(c, next);
        t = next;
    }

    return ept_middle(c, top);
}

/*
 * Xen's ept_split_super_page: 512 children that inherit the superpage's fields with their own
 * frame and r/w/x recomputed for their size, recursing into every child down to the target
 * level (so a 1G split for a 4K target builds 1 + 512 tables, in depth-first pre-order like
 * the managed allocation order). Returns the middle entry replacing the superpage.
 */
static uint64_t ept_build_split(struct set_ctx *c, uint64_t pte, unsigned level, unsigned target)
{
    uint64_t table = ept_take(c);
    uint64_t *slots = ept_frame(c, table);
    unsigned child_level = level - 1;
    int child_super = child_level > 1;
    uint64_t field = ept_mfn_of(pte);
    uint64_t stride = UINT64_C(1) << (EPT_TABLE_ORDER * (child_level - 1));
    unsigned type = ept_type_of(pte);
    unsigned access = ept_access_of(pte);
    uint64_t template = (child_super ? pte | EPT_SUPERPAGE : pte & ~EPT_SUPERPAGE) & ~EPT_MFN_MASK;
    for (unsigned j = 0; j < EPT_ENTRIES; j++) {
        /* An all-ones frame field means "no frame" (PoD, paging): children keep it. */
        uint64_t child_field = field == EPT_MFN_FIELD_MAX ? field : field + (uint64_t)j * stride;
        uint64_t child = template | ((child_field << EPT_PAGE_BITS) & EPT_MFN_MASK);
        child = ept_apply(child, type, access, child_super, c->caps, c->ad);
        slots[j] = child_level > target ? ept_build_split(c, child, child_level, target) : child;
    }

    return ept_middle(c, table);
}

/* Tables a split from `level` down to `target` builds: 1 + 512 + ... */
static uint32_t ept_split_frames(unsigned level, unsigned target)
{
    uint32_t total = 0, row = 1;
    for (unsigned l = level - 1; l >= target; l--) {
        total += row;
        row *= EPT_ENTRIES;
    }

    return total;
}

/* ---- PoD accounting ----------------------------------------------------------------------- */

static int64_t ept_pod_in_entry(uint64_t pte, unsigned level)
{
    return ept_is_valid(pte) && (pte & EPT_RWX_MASK) == 0 && ept_type_of(pte) == P2M_POD
               ? INT64_C(1) << (EPT_TABLE_ORDER * (level - 1))
               : 0;
}

static int64_t ept_pod_in_table(const struct set_ctx *c, uint64_t table, unsigned level)
{
    int64_t n = 0;
    const uint64_t *slots = ept_frame(c, table);
    for (unsigned i = 0; i < EPT_ENTRIES; i++) {
        uint64_t pte = ept_load(&slots[i]);
        if (ept_is_middle(pte, level)) {
            uint64_t child = ept_mfn_of(pte);
            n += child < c->frames ? ept_pod_in_table(c, child, level - 1) : 0;
        } else {
            n += ept_pod_in_entry(pte, level);
        }
    }

    return n;
}

/* ---- The set ------------------------------------------------------------------------------ */

static void ept_raise_max_mapped(fastept_walker *w, uint64_t last)
{
    ept_atomic_u64 *max = (ept_atomic_u64 *)(void *)&w->max_mapped_pfn;
    uint64_t current = atomic_load_explicit(max, memory_order_acquire);
    while (current < last
           && !atomic_compare_exchange_weak_explicit(max, &current, last, memory_order_seq_cst, memory_order_acquire)) {
        /* current was reloaded by the failed exchange */
    }
}

int32_t fastept_set_entry(fastept_walker *walker, const uint64_t *pool, uint32_t pool_count, uint64_t gfn,
                          uint64_t mfn, uint32_t order, uint32_t type, uint32_t access, uint32_t suppress_ve,
                          fastept_set_result *result)
{
    fastept_set_result scratch;
    fastept_set_result *r = result != NULL ? result : &scratch;
    r->retired_table = FASTEPT_INVALID_MFN;
    r->pod_delta = 0;
    r->retired_level = 0;
    r->frames_used = 0;

    if (fastept_walker_check(walker) != FASTEPT_OK || (pool == NULL && pool_count != 0)) {
        return FASTEPT_ERR_RANGE;
    }

    int32_t rc = ept_validate_set(walker, gfn, mfn, order, type, access, suppress_ve);
    if (rc != FASTEPT_OK) {
        return rc;
    }

    struct set_ctx c;
    c.base = walker->host_base;
    c.frames = walker->host_frames;
    c.root = ept_mfn_of(walker->eptp);
    c.levels = ept_levels_of(walker->eptp);
    c.ad = ept_ad_of(walker->eptp);
    c.caps = walker->caps;
    c.pool = pool;
    c.used = 0;
    /* Middle entries: rwx, the default access, suppress-#VE, A preset on A/D CPUs. */
    c.middle = EPT_SUPPRESS_VE | ((uint64_t)walker->default_access << EPT_ACCESS_SHIFT)
               | (c.ad ? EPT_ACCESSED : 0) | EPT_RWX_MASK;

    unsigned target = order / EPT_TABLE_ORDER + 1;
    uint64_t leaf = ept_build_leaf(&c, mfn, order, type, access);
    int new_valid = ept_is_valid(leaf);
    int64_t new_pod = new_valid && type == P2M_POD ? INT64_C(1) << order : 0;
    uint64_t max_before = atomic_load_explicit((ept_atomic_u64 *)(void *)&walker->max_mapped_pfn, memory_order_acquire);
    if (new_valid) {
        /* Raised before the entry is published, so a reader that finds the entry never also
           finds max_mapped_pfn below it; a failed call lowers it again. */
        ept_raise_max_mapped(walker, gfn + (UINT64_C(1) << order) - 1);
    }

    for (;;) {
        uint64_t table = c.root;
        unsigned level = c.levels;
        while (level > target) {
            uint64_t pte = ept_load(ept_slot(c.base, table, gfn, level));
            uint64_t child = ept_mfn_of(pte);
            if (!ept_is_middle(pte, level) || child >= c.frames) {
                break;
            }

            table = child;
            level--;
        }

        uint64_t *slot = ept_slot(c.base, table, gfn, level);
        uint64_t old = ept_load(slot);
        if (level == target) {
            uint64_t word = ept_with_sve(leaf, suppress_ve, old);
            if (word == old) {
                return FASTEPT_OK;
            }

            uint64_t old_table = ept_mfn_of(old);
            int replaces_table = ept_is_middle(old, level) && old_table < c.frames;
            int64_t old_pod = replaces_table ? ept_pod_in_table(&c, old_table, level - 1) : ept_pod_in_entry(old, level);
            if (!ept_cas(slot, old, word)) {
                continue;   /* a walker set A/D meanwhile: rebuild from the new snapshot */
            }

            r->pod_delta = new_pod - old_pod;
            if (replaces_table) {
                r->retired_table = old_table;
                r->retired_level = level - 1;
            }

            return FASTEPT_OK;
        }

        /* The walk stopped above the target: a superpage (or a valid not-present placeholder)
           to split, or nothing (empty, invalid, a pointer outside host memory, a leaf at 4/5). */
        int is_leaf = level <= 3 && ept_is_valid(old) && ((old & EPT_RWX_MASK) == 0 || (old & EPT_SUPERPAGE) != 0);
        if (!is_leaf && !new_valid) {
            return FASTEPT_OK;  /* removing from a range that maps nothing: no tables to build */
        }

        uint32_t needed = is_leaf ? ept_split_frames(level, target) : level - target;
        int32_t fail = FASTEPT_OK;
        if (needed > pool_count) {
            fail = FASTEPT_ERR_NO_FRAMES;
        } else {
            for (uint32_t i = 0; i < needed; i++) {
                if (pool[i] >= c.frames) {
                    fail = FASTEPT_ERR_RANGE;   /* a pool frame outside host memory: never written */
                    break;
                }
            }
        }

        if (fail != FASTEPT_OK) {
            atomic_store_explicit((ept_atomic_u64 *)(void *)&walker->max_mapped_pfn, max_before, memory_order_release);
            return fail;
        }

        c.used = 0;
        uint64_t top = is_leaf ? ept_build_split(&c, old, level, target) : ept_build_chain(&c, level, target, gfn);
        /* Place the new leaf in the private subtree; its old value is what the split inherited. */
        uint64_t t = ept_mfn_of(top);
        for (unsigned l = level - 1; l > target; l--) {
            t = ept_mfn_of(*ept_slot(c.base, t, gfn, l));
        }

        uint64_t *leaf_slot = ept_slot(c.base, t, gfn, target);
        *leaf_slot = ept_with_sve(leaf, suppress_ve, *leaf_slot);
        if (!ept_cas(slot, old, top)) {
            continue;   /* the private frames are rebuilt from the front of the pool */
        }

        r->frames_used = c.used;
        /* A split replaces only this GFN range's share of a PoD superpage. */
        int64_t old_pod_share = is_leaf && ept_type_of(old) == P2M_POD ? INT64_C(1) << order : 0;
        r->pod_delta = new_pod - old_pod_share;
        return FASTEPT_OK;
    }
}

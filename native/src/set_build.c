/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * set_build.c - the tables fastept_set_entry builds in pool frames no reader can reach yet
 * (new leaves, chains of empty tables, superpage splits) and the PoD counts of what it replaces.
 */

#include "set.h"

/* ---- Building ----------------------------------------------------------------------------- */

/* Xen's step 5: the new leaf, from zero. Suppress-#VE is added by ept_with_sve. */
EPT_HIDDEN uint64_t ept_build_leaf(const struct set_ctx *c, uint64_t mfn, uint32_t order, unsigned type, unsigned access)
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
EPT_HIDDEN uint64_t ept_with_sve(uint64_t leaf, uint32_t mode, uint64_t old)
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
EPT_HIDDEN uint64_t ept_build_chain(struct set_ctx *c, unsigned level, unsigned target, uint64_t gfn)
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
EPT_HIDDEN uint64_t ept_build_split(struct set_ctx *c, uint64_t pte, unsigned level, unsigned target)
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
EPT_HIDDEN uint32_t ept_split_frames(unsigned level, unsigned target)
{
    uint32_t total = 0, row = 1;
    for (unsigned l = level - 1; l >= target; l--) {
        total += row;
        row *= EPT_ENTRIES;
    }

    return total;
}

/* ---- PoD accounting ----------------------------------------------------------------------- */

EPT_HIDDEN int64_t ept_pod_in_entry(uint64_t pte, unsigned level)
{
    return ept_is_valid(pte) && (pte & EPT_RWX_MASK) == 0 && ept_type_of(pte) == P2M_POD
               ? INT64_C(1) << (EPT_TABLE_ORDER * (level - 1))
               : 0;
}

EPT_HIDDEN int64_t ept_pod_in_table(const struct set_ctx *c, uint64_t table, unsigned level)
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

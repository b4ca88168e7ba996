/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * set.c - fastept_set_entry: Xen's ept_set_entry with FastEpt's fixes, as the managed
 * P2m.SetEntry (ValidateSet + SetEntryLocked) does it.
 *
 * Everything below the one live slot that changes (missing tables, a split superpage) is
 * built in frames taken from the caller's pool, which no reader can reach yet; the slot is
 * then published with one compare-exchange. The only other writers of live slots are walkers
 * setting A/D flags (by compare-exchange against the value the walk read), so a failed compare-exchange means "rebuild from a fresh read".
 *
 * "Table frames owned by the p2m" (the managed _tables set) has no equivalent here: a present
 * non-superpage entry above level 1 is followed, retired or counted iff its frame is inside
 * host memory; beyond it, it is treated as a pointer the p2m does not own.
 */

#include "set.h"

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

int32_t fastept_check_set(const fastept_walker *walker, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type,
                          uint32_t access, uint32_t suppress_ve, uint32_t *argument, uint64_t *raises_to)
{
    uint32_t scratch_argument;
    uint32_t *a = argument != NULL ? argument : &scratch_argument;
    uint64_t scratch_raise;
    uint64_t *to = raises_to != NULL ? raises_to : &scratch_raise;
    *a = FASTEPT_ARG_NONE;
    *to = FASTEPT_INVALID_MFN;
    if (fastept_walker_check(walker) != FASTEPT_OK) {
        return FASTEPT_ERR_RANGE;
    }

    int32_t rc = ept_validate_set(walker, gfn, mfn, order, type, access, suppress_ve, a);
    if (rc != FASTEPT_OK) {
        return rc;
    }

    /* The same leaf fastept_set_entry builds: only a valid one raises max_mapped_pfn. */
    struct set_ctx c;
    c.ad = ept_ad_of(walker->eptp);
    c.caps = walker->caps;
    c.base = walker->host_base;
    c.frames = walker->host_frames;
    c.root = ept_mfn_of(walker->eptp);
    c.levels = ept_levels_of(walker->eptp);
    c.pool = NULL;
    c.used = 0;
    c.middle = 0;
    if (ept_is_valid(ept_build_leaf(&c, mfn, order, type, access))) {
        *to = gfn + (UINT64_C(1) << order) - 1;
    }

    return FASTEPT_OK;
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

    uint32_t argument;
    int32_t rc = ept_validate_set(walker, gfn, mfn, order, type, access, suppress_ve, &argument);
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

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * get.c - the software lookup (Xen's ept_get_entry without populate-on-demand, as the managed
 * P2m.Lookup/DecodeLeaf/HoleOrderBeyond do it) and the table lister fastept_collect_tables.
 */

#include "internal.h"

static fastept_entry ept_hole(int32_t order)
{
    fastept_entry e;
    e.mfn = FASTEPT_INVALID_MFN;
    e.type = P2M_MMIO_DM;
    e.access = P2M_ACCESS_N;
    e.suppress_ve = 1;
    e.is_mapped = 0;
    e.order = order;
    return e;
}

/* Xen: beyond max_mapped_pfn, the largest level whose aligned block still lies beyond it. */
static int32_t ept_hole_order_beyond(uint64_t gfn, uint64_t max, unsigned levels)
{
    for (unsigned level = levels; level >= 2; level--) {
        unsigned order = EPT_TABLE_ORDER * (level - 1);
        if (((gfn >> order) << order) > max) {
            return (int32_t)order;
        }
    }

    return 0;
}

/* A leaf candidate: a PTE, a present superpage, or a not-present entry at any level. */
static fastept_entry ept_decode_leaf(uint64_t pte, uint64_t gfn, unsigned level)
{
    unsigned order = EPT_TABLE_ORDER * (level - 1);
    unsigned type = ept_type_of(pte);
    unsigned access = ept_access_of(pte);
    /* Not valid, a leaf above 1G, or fields outside their enums (corruption): a hole. */
    if (!ept_is_valid(pte) || level > 3 || type > P2M_TYPE_MAX || access > P2M_ACCESS_MAX) {
        return ept_hole((int32_t)order);
    }

    fastept_entry e;
    e.type = (uint8_t)type;
    e.suppress_ve = (pte & EPT_SUPPRESS_VE) != 0;
    e.is_mapped = 1;
    e.order = (int32_t)order;
    if (type == P2M_POD) {
        /* Xen reports a PoD entry with no frame and access n; FastEpt keeps its own sve bit. */
        e.mfn = FASTEPT_INVALID_MFN;
        e.access = P2M_ACCESS_N;
        return e;
    }

    uint64_t field = ept_mfn_of(pte);
    e.mfn = field == EPT_MFN_FIELD_MAX ? FASTEPT_INVALID_MFN : field + (gfn & ((UINT64_C(1) << order) - 1));
    e.access = (uint8_t)access;
    return e;
}

fastept_entry fastept_get_entry(const fastept_walker *walker, uint64_t gfn)
{
    if (!ept_walker_usable(walker) || (gfn >> (walker->address_bits - EPT_PAGE_BITS)) != 0) {
        return ept_hole(-1);
    }

    const unsigned levels = ept_levels_of(walker->eptp);
    uint64_t max = atomic_load_explicit((const ept_atomic_u64 *)(const void *)&walker->max_mapped_pfn,
                                        memory_order_acquire);
    if (gfn > max) {
        return ept_hole(ept_hole_order_beyond(gfn, max, levels));
    }

    uint8_t *base = walker->host_base;
    /* A frame field (bits 51:12, in place) at or above this names no host frame. */
    const uint64_t frame_limit = walker->host_frames > EPT_MFN_FIELD_MAX ? EPT_MFN_MASK + 1
                                                                          : walker->host_frames << EPT_PAGE_BITS;
    uint64_t table = walker->eptp & EPT_MFN_MASK;      /* byte offset of the current table */
    unsigned order = EPT_TABLE_ORDER * (levels - 1);
    for (unsigned level = levels;; level--, order -= EPT_TABLE_ORDER) {
        uint64_t pte = ept_load((const uint64_t *)(const void *)(base + table) + ((gfn >> order) & (EPT_ENTRIES - 1)));
        /* A present non-superpage entry above level 1 points to the next table. */
        if (level == 1 || (pte & EPT_RWX_MASK) == 0 || (pte & EPT_SUPERPAGE) != 0) {
            return ept_decode_leaf(pte, gfn, level);
        }

        table = pte & EPT_MFN_MASK;
        if (table >= frame_limit) {
            return ept_hole((int32_t)order);   /* corrupt pointer: never followed */
        }
    }
}

/* Whether `mfn` is among the first `n` frames already written to out[]. */
static int ept_listed(const uint64_t *out, uint64_t n, uint64_t mfn)
{
    for (uint64_t i = 0; i < n; i++) {
        if (out[i] == mfn) {
            return 1;
        }
    }

    return 0;
}

/*
 * Pre-order listing (a table before the tables under it, slots in index order), like the
 * managed Collect. A frame outside host memory is never listed nor read. A frame met twice
 * (only in a corrupted tree) is listed and entered once as long as the output holds every
 * frame so far; past the capacity duplicates cannot be recognised, so the count returned is
 * then an upper bound, and a call with that capacity gives the exact list.
 */
static void ept_collect(uint8_t *base, uint64_t frames, uint64_t table, unsigned level,
                        uint64_t *out, uint64_t capacity, uint64_t *count)
{
    if (table >= frames) {
        return;
    }

    if (*count <= capacity && out != NULL && ept_listed(out, *count, table)) {
        return;
    }

    if (*count < capacity && out != NULL) {
        out[*count] = table;
    }

    (*count)++;
    if (level == 1) {
        return;
    }

    const uint64_t *slots = (const uint64_t *)(const void *)(base + (table << EPT_PAGE_BITS));
    for (unsigned i = 0; i < EPT_ENTRIES; i++) {
        uint64_t pte = ept_load(&slots[i]);
        if ((pte & EPT_RWX_MASK) != 0 && (pte & EPT_SUPERPAGE) == 0) {
            ept_collect(base, frames, ept_mfn_of(pte), level - 1, out, capacity, count);
        }
    }
}

uint64_t fastept_collect_tables(const fastept_walker *walker, uint64_t table, uint32_t level,
                                uint64_t *out, uint64_t capacity)
{
    if (!ept_walker_usable(walker) || level < 1 || level > ept_levels_of(walker->eptp)) {
        return 0;
    }

    uint64_t count = 0;
    ept_collect(walker->host_base, walker->host_frames, table, level, out, out != NULL ? capacity : 0, &count);
    return count;
}

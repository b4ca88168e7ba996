/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * internal.h - shared definitions of the native FastEpt library (not installed).
 *
 * The bit layout of an EPT entry (Intel SDM Vol. 3C 29.3.2) comes from ept_bits.g.h, generated
 * by native/tools/gen_bindings.py from the table that also gives the managed FastEpt.EptEntry
 * constants; the rest is written by hand.
 */

#ifndef FASTEPT_INTERNAL_H
#define FASTEPT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fastept.h"

/* Functions shared between the library's sources but not part of its ABI: kept out of the
   shared library's dynamic symbol table, so only fastept_* names are exported. */
#if defined(__GNUC__) || defined(__clang__)
#define EPT_HIDDEN __attribute__((visibility("hidden")))
#else
#define EPT_HIDDEN
#endif

/* EPT_* bit layout and geometry, generated with the managed EptEntry constants from one table. */
#include "ept_bits.g.h"

/* A slot of a freshly built table: not present, suppress-#VE set (the managed EmptySlot). */
#define EPT_EMPTY_SLOT EPT_SUPPRESS_VE

/* EPT memory types 2, 3 and 7 are reserved in a leaf (SDM 29.3.3.1): bit n set = type n bad. */
#define EPT_BAD_MEMTYPES 0x8Cu

/* p2m types (FastEpt.P2mType) and accesses (FastEpt.P2mAccess) the code refers to by name. */
enum {
    P2M_RAM_RW = 0, P2M_INVALID = 1, P2M_RAM_LOGDIRTY = 2, P2M_RAM_RO = 3, P2M_MMIO_DM = 4,
    P2M_MMIO_DIRECT = 5, P2M_POD = 6, P2M_GRANT_RW = 7, P2M_GRANT_RO = 8, P2M_PAGING_OUT = 9,
    P2M_PAGED = 10, P2M_PAGING_IN = 11, P2M_RAM_SHARED = 12, P2M_RAM_BROKEN = 13,
    P2M_MAP_FOREIGN = 14, P2M_IOREQ_SERVER = 15, P2M_TYPE_MAX = 15
};

enum {
    P2M_ACCESS_N = 0, P2M_ACCESS_R = 1, P2M_ACCESS_W = 2, P2M_ACCESS_RW = 3, P2M_ACCESS_X = 4,
    P2M_ACCESS_RX = 5, P2M_ACCESS_WX = 6, P2M_ACCESS_RWX = 7, P2M_ACCESS_RX2RW = 8,
    P2M_ACCESS_N2RWX = 9, P2M_ACCESS_R_PW = 10, P2M_ACCESS_MAX = 10
};

/*
 * Tables live in caller memory typed as bytes; every access to a live slot goes through these
 * helpers, which view the 8-byte-aligned slot as an _Atomic uint64_t (same size and alignment
 * on every supported target, checked below). Loads are acquire: a table published by a writer's
 * compare-exchange is fully visible to a reader that loads the pointer to it.
 */
typedef _Atomic uint64_t ept_atomic_u64;

_Static_assert(sizeof(ept_atomic_u64) == sizeof(uint64_t), "_Atomic uint64_t must be 8 bytes");
_Static_assert(_Alignof(ept_atomic_u64) == _Alignof(uint64_t), "_Atomic uint64_t must be 8-aligned");

static inline uint64_t ept_load(const uint64_t *p)
{
    return atomic_load_explicit((const ept_atomic_u64 *)p, memory_order_acquire);
}

static inline void ept_store(uint64_t *p, uint64_t value)
{
    atomic_store_explicit((ept_atomic_u64 *)p, value, memory_order_release);
}

static inline void ept_or(uint64_t *p, uint64_t bits)
{
    (void)atomic_fetch_or_explicit((ept_atomic_u64 *)p, bits, memory_order_seq_cst);
}

/* One compare-exchange; returns nonzero when *p held expected and now holds desired. */
static inline int ept_cas(uint64_t *p, uint64_t expected, uint64_t desired)
{
    return atomic_compare_exchange_strong_explicit((ept_atomic_u64 *)p, &expected, desired,
                                                   memory_order_seq_cst, memory_order_seq_cst);
}

/* Address of the slot of `table` (an MFN) that `gfn` selects at `level` (1 = PTE). */
static inline uint64_t *ept_slot(uint8_t *base, uint64_t table, uint64_t gfn, unsigned level)
{
    return (uint64_t *)(void *)(base + (table << EPT_PAGE_BITS))
           + ((gfn >> (EPT_TABLE_ORDER * (level - 1))) & (EPT_ENTRIES - 1));
}

static inline uint64_t ept_mfn_of(uint64_t pte)
{
    return (pte & EPT_MFN_MASK) >> EPT_PAGE_BITS;
}

static inline unsigned ept_type_of(uint64_t pte)
{
    return (unsigned)((pte & EPT_TYPE_MASK) >> EPT_TYPE_SHIFT);
}

static inline unsigned ept_access_of(uint64_t pte)
{
    return (unsigned)((pte & EPT_ACCESS_MASK) >> EPT_ACCESS_SHIFT);
}

/* Xen's is_epte_valid: anything but an empty (suppress-#VE only) word or type p2m_invalid. */
static inline int ept_is_valid(uint64_t pte)
{
    return (pte & ~EPT_SUPPRESS_VE) != 0 && ept_type_of(pte) != P2M_INVALID;
}

/* A present entry without bit 7 above level 1: a pointer to the next table. */
static inline int ept_is_middle(uint64_t pte, unsigned level)
{
    return level > 1 && (pte & EPT_RWX_MASK) != 0 && (pte & EPT_SUPERPAGE) == 0;
}

static inline unsigned ept_levels_of(uint64_t eptp)
{
    return (unsigned)((eptp >> 3) & 7) + 1;
}

static inline int ept_ad_of(uint64_t eptp)
{
    return (int)((eptp >> 6) & 1);
}

/*
 * The cheap walker checks every reader repeats (levels, root inside host memory, address
 * widths, an aligned base); fastept_walker_check adds the rest. Returns nonzero when usable.
 */
static inline int ept_walker_usable(const fastept_walker *w)
{
    if (w == NULL) {
        return 0;
    }

    unsigned levels = ept_levels_of(w->eptp);
    uint64_t root = ept_mfn_of(w->eptp);
    return w->host_base != NULL && ((uintptr_t)w->host_base & 7u) == 0
           && (levels - 4u) <= 1u && root < w->host_frames
           && w->address_bits >= 21u && w->address_bits <= 12u + 9u * levels
           && w->host_address_bits - 32u <= 20u;
}

/* Bits 51:MAXPHYADDR, reserved in every entry (SDM 29.3.2). */
static inline uint64_t ept_high_reserved(uint32_t host_address_bits)
{
    return EPT_MFN_MASK & ~((UINT64_C(1) << host_address_bits) - 1);
}

#endif /* FASTEPT_INTERNAL_H */

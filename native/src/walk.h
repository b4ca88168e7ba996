/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * walk.h - what the walk (walk.c) shares with the batch paths (batch.c, batch_pipelined.c,
 * batch_gather.c): the per-call walk context, the result constructors, the general walk every
 * fast path hands its off-shape walks to, and the batch paths themselves. Not installed.
 */

#ifndef FASTEPT_WALK_H
#define FASTEPT_WALK_H

#include "internal.h"

/*
 * Forced inlining keeps the walk's parameters in registers in both entry points; the hot
 * path is instruction-bound once the tables are cached, so this is worth a compiler hint.
 */
#if defined(__GNUC__) || defined(__clang__)
#define EPT_HOT static inline __attribute__((always_inline))
#define EPT_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define EPT_HOT static __forceinline
#define EPT_NOINLINE __declspec(noinline)
#else
#define EPT_HOT static inline
#define EPT_NOINLINE
#endif

/* The batch paths, same values as FastEpt.BatchPath (and FASTEPT_BATCH_* in fastept.h). */
enum ept_batch_path {
    EPT_BATCH_AUTO = 0,
    EPT_BATCH_SCALAR = 1,
    EPT_BATCH_PIPELINED = 2,
    EPT_BATCH_GATHER = 3
};

/* Pipelined walks: the PDE and the PTE are each prefetched this many walks ahead (the managed
   walk prefetches every level 16 ahead; measured in C, 32 keeps more misses in flight); the ring
   holds every walk in flight (a power of two >= 2 D + 1). */
#define EPT_PIPELINE_DISTANCE 32
#define EPT_PIPELINE_RING 128

/* Gathered walks: vectors of four walks per group (the managed P2m.GatherVectors). */
#define EPT_GATHER_VECTORS 4
#define EPT_GATHER_GROUP (4 * EPT_GATHER_VECTORS)

/* What the fast path needs, copied into locals once per call (or once per batch). */
struct walk_ctx {
    uint8_t *base;
    uint64_t frame_limit;   /* host memory size in bytes, capped above the largest frame field */
    uint64_t root_slots;    /* byte offset of the root table */
    uint64_t leaf_mask;     /* bits 51:MAXPHYADDR (a PTE's reserved bits) | r */
    uint64_t pointer_mask;  /* leaf_mask | bits 7:3 */
    unsigned levels;
    int ad;
};

static inline fastept_translation ept_result(uint8_t status, uint64_t hpa, unsigned level, uint32_t qualification)
{
    fastept_translation t;
    t.hpa = hpa;
    t.qualification = qualification;
    t.status = status;
    t.level = (uint8_t)level;
    t.reserved[0] = 0;
    t.reserved[1] = 0;
    return t;
}

static inline fastept_translation ept_bad_argument(void)
{
    return ept_result(FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
}

/* Fills *c from a walker that passed ept_walker_usable. */
EPT_HOT void ept_ctx(const fastept_walker *w, struct walk_ctx *c)
{
    c->base = w->host_base;
    /* A frame field (bits 51:12, in place) at or above this names no host frame. */
    c->frame_limit = w->host_frames > EPT_MFN_FIELD_MAX ? EPT_MFN_MASK + 1 : w->host_frames << EPT_PAGE_BITS;
    c->root_slots = w->eptp & EPT_MFN_MASK;
    c->levels = ept_levels_of(w->eptp);
    c->ad = ept_ad_of(w->eptp);
    c->leaf_mask = ept_high_reserved(w->host_address_bits) | 1u;
    c->pointer_mask = c->leaf_mask | UINT64_C(0xF8);
}

/* A plain readable 4K leaf with a defined memory type that grants `access` under `rights`
   (the AND of the levels above): the one leaf the fast paths finish themselves. */
static inline int ept_fast_leaf(const struct walk_ctx *c, uint64_t pte, uint64_t rights, uint32_t access)
{
    return (pte & c->leaf_mask) == 1u && ((EPT_BAD_MEMTYPES >> ((pte >> EPT_MEMTYPE_SHIFT) & 7)) & 1u) == 0
           && (access & ~(uint32_t)(rights & pte)) == 0;
}

/* The general walk from `level`, whose slot was already read into `pte`; `rights` is the r/w/x
   AND over the levels above (the managed P2m.WalkFrom). */
EPT_HIDDEN EPT_NOINLINE fastept_translation ept_walk_from(const fastept_walker *w, uint64_t gpa, uint32_t access,
                                                          unsigned level, uint64_t *slot, uint64_t pte, uint64_t rights);

/* The batch paths over gpas[0 .. count): every one writes results identical to fastept_translate's.
   Pipelined and gathered walks need 4 levels without A/D updates (ept_batch_resolve sees to it). */
EPT_HIDDEN void ept_batch_scalar(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                 uint32_t access, fastept_translation *results);
EPT_HIDDEN void ept_batch_pipelined(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                    uint32_t access, fastept_translation *results);
EPT_HIDDEN void ept_batch_gathered(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                   uint32_t access, fastept_translation *results);

/* Whether this CPU (and OS) runs the AVX2 gather path, and whether Auto prefers it for cached
   tables (the managed P2m.PreferGather); the answers are computed once. */
EPT_HIDDEN int ept_cpu_has_avx2(void);
EPT_HIDDEN int ept_cpu_prefers_gather(void);

/* The path a batch of gpas[0 .. count) takes when `requested` (EPT_BATCH_*) is asked for. */
EPT_HIDDEN unsigned ept_batch_resolve(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                      unsigned requested);

#endif /* FASTEPT_WALK_H */

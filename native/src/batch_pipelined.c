/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * batch_pipelined.c - software-pipelined walks (BatchPath.Pipelined), the C twin of the managed
 * P2m.WalkPipelined / AdvanceWalk.
 *
 * A walk's PDE and PTE are prefetched EPT_PIPELINE_DISTANCE (D) walks before the walk reads
 * them (see ept_batch_pipelined), so up to 2 D walks are in flight. Every slot is read once, with the acquire load of the scalar walk, into a local; whatever the
 * fast shape does not cover (a superpage, a violation, a misconfiguration, a pointer outside
 * host memory, a non-RAM memory type) is finished on the spot by ept_walk_from from that
 * snapshot, and the walk leaves the pipeline (null slot). Only for 4 levels without A/D
 * updates (batch.c checks), so no compare-exchange can restart a walk here.
 */

#include "walk.h"

#if defined(__GNUC__) || defined(__clang__)
#define EPT_PREFETCH(p) __builtin_prefetch((p), 0, 3)     /* prefetcht0 */
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define EPT_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define EPT_PREFETCH(p) ((void)(p))
#endif

/*
 * The state of a walk in flight is one word: the address of the slot it reads next, with the
 * AND of the rights so far in its low 3 bits (slots are 8-byte aligned); 0 once the walk is
 * finished (off the fast shape, or a bad argument).
 */
#define EPT_PIPE_SLOT(word) ((uint64_t *)(uintptr_t)((word) & ~(uintptr_t)EPT_RWX_MASK))

/*
 * A stage for walk j reading `slot` at `level` with the rights so far: either prefetches the
 * next level's slot and returns its word, or, when the entry is not a well-formed pointer into
 * host memory, finishes the walk from that snapshot and returns 0. Inlined with a constant
 * level, so each stage compiles to straight-line code.
 */
EPT_HOT uintptr_t ept_pipe_step(const fastept_walker *w, const struct walk_ctx *c, unsigned level, uint64_t gpa, uint64_t *slot,
                                uint64_t rights, uint32_t access, fastept_translation *result)
{
    uint64_t pte = ept_load(slot);
    uint64_t next = pte & EPT_MFN_MASK;
    if ((pte & c->pointer_mask) == 1u && next < c->frame_limit) {
        unsigned shift = EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 2);
        uint64_t *q = (uint64_t *)(void *)(c->base + next) + ((gpa >> shift) & (EPT_ENTRIES - 1));
        EPT_PREFETCH(q);
        return (uintptr_t)q | (uintptr_t)(rights & pte & EPT_RWX_MASK);
    }

    *result = ept_walk_from(w, gpa, access, level, slot, pte, rights);
    return 0;
}

/*
 * Three stages, D walks apart: iteration i starts walk i + 2D (reads its PML4E and PDPTE, which
 * stay cached, and prefetches its PDE), advances walk i + D (reads the PDE, prefetches the PTE)
 * and finishes walk i (reads the PTE). The managed walk prefetches the PDPTE as well; in C the
 * shorter pipeline keeps fewer instructions per walk, which is what bounds how many walks the
 * core overlaps.
 */
EPT_HIDDEN void ept_batch_pipelined(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                    uint32_t access, fastept_translation *results)
{
    enum { D = EPT_PIPELINE_DISTANCE, MASK = EPT_PIPELINE_RING - 1 };
    _Static_assert(EPT_PIPELINE_RING >= 2 * EPT_PIPELINE_DISTANCE + 1, "the ring holds every walk in flight");
    uintptr_t ring[EPT_PIPELINE_RING];
    uint64_t *root = (uint64_t *)(void *)(c->base + c->root_slots);
    const uint32_t address_bits = w->address_bits;
    const int64_t n = (int64_t)count;

    for (int64_t i = -2 * D; i < n; i++) {
        /* Start walk j: its PML4E and PDPTE (a GPA beyond the address width is answered here). */
        int64_t j = i + 2 * D;
        if (j < n) {
            uint64_t gpa = gpas[j];
            uintptr_t word = 0;
            if ((gpa >> address_bits) != 0) {
                results[j] = ept_bad_argument();
            } else {
                word = ept_pipe_step(w, c, 4, gpa, root + ((gpa >> 39) & (EPT_ENTRIES - 1)), EPT_RWX_MASK, access, &results[j]);
                if (word != 0) {
                    word = ept_pipe_step(w, c, 3, gpa, EPT_PIPE_SLOT(word), word & EPT_RWX_MASK, access, &results[j]);
                }
            }

            ring[(unsigned)j & MASK] = word;
        }

        /* Walk i + D: its PDE. */
        int64_t k = i + D;
        if ((uint64_t)k < (uint64_t)n) {
            uintptr_t word = ring[(unsigned)k & MASK];
            if (word != 0) {
                ring[(unsigned)k & MASK] = ept_pipe_step(w, c, 2, gpas[k], EPT_PIPE_SLOT(word), word & EPT_RWX_MASK, access, &results[k]);
            }
        }

        /* Finish walk i: its PTE. */
        if (i >= 0) {
            uintptr_t word = ring[(unsigned)i & MASK];
            if (word != 0) {
                uint64_t gpa = gpas[i];
                uint64_t *slot = EPT_PIPE_SLOT(word);
                uint64_t pte = ept_load(slot);
                if (ept_fast_leaf(c, pte, word & EPT_RWX_MASK, access)) {
                    results[i] = ept_result(FASTEPT_STATUS_OK, (pte & EPT_MFN_MASK) | (gpa & EPT_OFFSET_MASK), 1, 0);
                } else {
                    results[i] = ept_walk_from(w, gpa, access, 1, slot, pte, word & EPT_RWX_MASK);
                }
            }
        }
    }
}

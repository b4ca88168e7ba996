/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * batch_pipelined.c - software-pipelined walks (BatchPath.Pipelined), the C twin of the managed
 * P2m.WalkPipelined / AdvanceWalk.
 *
 * A walk's level-n entry is prefetched EPT_PIPELINE_DISTANCE (D) walks before the walk reads
 * it, so up to 3 D walks are in flight: iteration i starts walk i + 3D (reads its PML4E, which
 * stays cached, and prefetches its PDPTE), advances walk i + 2D (reads the PDPTE, prefetches the
 * PDE) and walk i + D (reads the PDE, prefetches the PTE), and finishes walk i (reads the PTE).
 * Every slot is read once, with the acquire load of the scalar walk, into a local; whatever the
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

/* One pipeline's state: per walk in flight, the slot it reads next and the rights so far. */
struct pipe {
    uint64_t *slot[EPT_PIPELINE_RING];
    uint64_t rights[EPT_PIPELINE_RING];
};

/*
 * A middle stage for walk j at `level` (3: its PDPTE, 2: its PDE): reads the entry prefetched
 * one stage earlier, then either prefetches the next level's entry or, when the entry is not a
 * well-formed pointer into host memory, finishes the walk from that snapshot. Inlined with a
 * constant level, so each stage compiles to straight-line code.
 */
EPT_HOT void ept_pipe_advance(const fastept_walker *w, const struct walk_ctx *c, struct pipe *p, unsigned level,
                              int64_t j, int64_t n, const uint64_t *gpas, uint32_t access, fastept_translation *results)
{
    if ((uint64_t)j >= (uint64_t)n) {
        return;     /* before the first walk or past the last: both wrap above n */
    }

    unsigned k = (unsigned)j & (EPT_PIPELINE_RING - 1);
    uint64_t *slot = p->slot[k];
    if (slot == NULL) {
        return;     /* finished earlier (off the fast shape or a bad argument) */
    }

    uint64_t gpa = gpas[j];
    uint64_t pte = ept_load(slot);
    uint64_t next = pte & EPT_MFN_MASK;
    if ((pte & c->pointer_mask) == 1u && next < c->frame_limit) {
        unsigned shift = EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 2);
        uint64_t *q = (uint64_t *)(void *)(c->base + next) + ((gpa >> shift) & (EPT_ENTRIES - 1));
        EPT_PREFETCH(q);
        p->slot[k] = q;
        p->rights[k] &= pte;
    } else {
        results[j] = ept_walk_from(w, gpa, access, level, slot, pte, p->rights[k] & EPT_RWX_MASK);
        p->slot[k] = NULL;
    }
}

EPT_HIDDEN void ept_batch_pipelined(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                    uint32_t access, fastept_translation *results)
{
    enum { D = EPT_PIPELINE_DISTANCE, MASK = EPT_PIPELINE_RING - 1 };
    struct pipe p;
    uint8_t *base = c->base;
    uint64_t *root = (uint64_t *)(void *)(base + c->root_slots);
    const uint32_t address_bits = w->address_bits;
    const int64_t n = (int64_t)count;

    for (int64_t i = -3 * D; i < n; i++) {
        /* Start walk j: its PML4E (a GPA beyond the address width is answered here). */
        int64_t j = i + 3 * D;
        if (j < n) {
            unsigned k = (unsigned)j & MASK;
            uint64_t gpa = gpas[j];
            uint64_t *slot = root + ((gpa >> 39) & (EPT_ENTRIES - 1));
            if ((gpa >> address_bits) != 0) {
                results[j] = ept_bad_argument();
                p.slot[k] = NULL;
            } else {
                uint64_t pte = ept_load(slot);
                uint64_t next = pte & EPT_MFN_MASK;
                if ((pte & c->pointer_mask) == 1u && next < c->frame_limit) {
                    uint64_t *q = (uint64_t *)(void *)(base + next) + ((gpa >> 30) & (EPT_ENTRIES - 1));
                    EPT_PREFETCH(q);
                    p.slot[k] = q;
                    p.rights[k] = pte;
                } else {
                    results[j] = ept_walk_from(w, gpa, access, 4, slot, pte, EPT_RWX_MASK);
                    p.slot[k] = NULL;
                }
            }
        }

        /* Walks i + 2D (PDPTE) and i + D (PDE). */
        ept_pipe_advance(w, c, &p, 3, i + 2 * D, n, gpas, access, results);
        ept_pipe_advance(w, c, &p, 2, i + D, n, gpas, access, results);

        /* Finish walk i: its PTE. */
        if (i >= 0) {
            unsigned k = (unsigned)i & MASK;
            uint64_t *slot = p.slot[k];
            if (slot != NULL) {
                uint64_t gpa = gpas[i];
                uint64_t pte = ept_load(slot);
                if (ept_fast_leaf(c, pte, p.rights[k], access)) {
                    results[i] = ept_result(FASTEPT_STATUS_OK, (pte & EPT_MFN_MASK) | (gpa & EPT_OFFSET_MASK), 1, 0);
                } else {
                    results[i] = ept_walk_from(w, gpa, access, 1, slot, pte, p.rights[k] & EPT_RWX_MASK);
                }
            }
        }
    }
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * set.h - the pieces of fastept_set_entry shared between set.c (the set itself),
 * set_perms.c (permissions and argument checks) and set_build.c (private tables, PoD counts).
 * Not installed; every function here is hidden from the shared library's exports.
 */

#ifndef FASTEPT_SET_H
#define FASTEPT_SET_H

#include "internal.h"

/* One set in progress: the walker's fields it needs and the caller's frame pool. */
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

/* set_perms.c */
EPT_HIDDEN uint64_t ept_apply(uint64_t raw, unsigned type, unsigned access, int superpage, uint32_t caps, int ad);
EPT_HIDDEN int32_t ept_validate_set(const fastept_walker *w, uint64_t gfn, uint64_t mfn, uint32_t order,
                                    uint32_t type, uint32_t access, uint32_t sve_mode, uint32_t *argument);

/* set_build.c */
EPT_HIDDEN uint64_t ept_build_leaf(const struct set_ctx *c, uint64_t mfn, uint32_t order, unsigned type, unsigned access);
EPT_HIDDEN uint64_t ept_with_sve(uint64_t leaf, uint32_t mode, uint64_t old);
EPT_HIDDEN uint64_t ept_build_chain(struct set_ctx *c, unsigned level, unsigned target, uint64_t gfn);
EPT_HIDDEN uint64_t ept_build_split(struct set_ctx *c, uint64_t pte, unsigned level, unsigned target);
EPT_HIDDEN uint32_t ept_split_frames(unsigned level, unsigned target);
EPT_HIDDEN int64_t ept_pod_in_entry(uint64_t pte, unsigned level);
EPT_HIDDEN int64_t ept_pod_in_table(const struct set_ctx *c, uint64_t table, unsigned level);

#endif /* FASTEPT_SET_H */

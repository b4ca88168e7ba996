/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * batch.c - fastept_translate_batch and fastept_translate_batch_path: which walker a batch
 * takes (the managed P2m.ResolveBatchPath, same thresholds), then that walker.
 *
 *  - Not 4 levels, or A/D updates on: one walk at a time (the interleaved walkers implement the
 *    common 4-level shape without compare-exchanges).
 *  - Auto, fewer than 2 D addresses: one at a time (the pipeline never fills).
 *  - Auto, tables possibly beyond the caches and scattered addresses: pipelined. The managed
 *    p2m knows its table count; the C walker knows only host memory's size, which bounds the
 *    table footprint from above, so it stands in for it: tables in at most 8 MiB of host memory
 *    are cache-resident for sure, anything larger is treated as possibly not.
 *  - Auto, otherwise (cached tables, or clustered addresses): gathers where they are fast
 *    (AVX2, not AMD), else one at a time.
 * Every path gives results identical to fastept_translate's, so the choice is only about speed.
 */

#include "walk.h"

/* Auto's thresholds, the managed P2m.MinPipelinedBatch and P2m.CacheResidentTableBytes. */
#define EPT_MIN_PIPELINED_BATCH (2 * EPT_PIPELINE_DISTANCE)
#define EPT_CACHE_RESIDENT_BYTES (UINT64_C(8) << 20)

/* Addresses that mostly stay within a 2 MiB region of their predecessor share leaf tables (and
   cache lines): a sample of 16 neighbours decides (the managed P2m.IsClustered). */
static int ept_is_clustered(const uint64_t *gpas)
{
    int near = 0;
    for (int i = 1; i <= 16; i++) {
        near += ((gpas[i] ^ gpas[i - 1]) >> 21) == 0;
    }

    return near >= 12;
}

EPT_HIDDEN unsigned ept_batch_resolve(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                      unsigned requested)
{
    if (c->levels != 4 || c->ad) {
        return EPT_BATCH_SCALAR;
    }

    switch (requested) {
    case EPT_BATCH_SCALAR:
    case EPT_BATCH_PIPELINED:
        return requested;
    case EPT_BATCH_GATHER:
        return ept_cpu_has_avx2() ? EPT_BATCH_GATHER : EPT_BATCH_PIPELINED;
    default:
        break;
    }

    if (count < EPT_MIN_PIPELINED_BATCH) {
        return EPT_BATCH_SCALAR;
    }

    /* Host memory bounds the table footprint (see the top of this file). */
    uint64_t host_bytes = w->host_frames > (UINT64_MAX >> EPT_PAGE_BITS) ? UINT64_MAX : w->host_frames << EPT_PAGE_BITS;
    if (host_bytes > EPT_CACHE_RESIDENT_BYTES && !ept_is_clustered(gpas)) {
        return EPT_BATCH_PIPELINED;
    }

    return ept_cpu_prefers_gather() ? EPT_BATCH_GATHER : EPT_BATCH_SCALAR;
}

/* The checks both exports share, then the walk on `path`; returns the path taken. */
static uint32_t ept_batch(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access,
                          fastept_translation *results, unsigned path)
{
    if (!ept_walker_usable(walker) || access - 1u >= 7u) {
        for (uint64_t i = 0; i < count; i++) {
            results[i] = ept_bad_argument();
        }

        return EPT_BATCH_SCALAR;
    }

    struct walk_ctx c;
    ept_ctx(walker, &c);
    unsigned chosen = ept_batch_resolve(walker, &c, gpas, count, path);
    switch (chosen) {
    case EPT_BATCH_PIPELINED:
        ept_batch_pipelined(walker, &c, gpas, count, access, results);
        break;
    case EPT_BATCH_GATHER:
        ept_batch_gathered(walker, &c, gpas, count, access, results);
        break;
    default:
        ept_batch_scalar(walker, &c, gpas, count, access, results);
        break;
    }

    return chosen;
}

uint64_t fastept_translate_batch(const fastept_walker *walker, const uint64_t *gpas, uint64_t count,
                                 uint32_t access, fastept_translation *results)
{
    if (count == 0 || gpas == NULL || results == NULL) {
        return 0;
    }

    (void)ept_batch(walker, gpas, count, access, results, EPT_BATCH_AUTO);
    return count;
}

uint32_t fastept_translate_batch_path(const fastept_walker *walker, const uint64_t *gpas, uint64_t count,
                                      uint32_t access, fastept_translation *results, uint32_t path)
{
    if (path > EPT_BATCH_GATHER) {
        return UINT32_MAX;
    }

    if (count == 0 || gpas == NULL || results == NULL) {
        return 0;
    }

    return ept_batch(walker, gpas, count, access, results, path);
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* testutil.c - failure accounting, random numbers, clocks and test host memory. */

#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, MAP_NORESERVE, clock_gettime */

#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

unsigned long tu_failures;

void tu_fail(const char *file, int line, const char *fmt, ...)
{
    tu_failures++;
    if (tu_failures > 40) {
        if (tu_failures == 41) {
            fprintf(stderr, "... further failures not shown\n");
        }

        return;
    }

    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t tu_below(tu_rng *r, uint64_t n)
{
    return tu_next(r) % n;
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tu_env_init(tu_env *e, uint64_t frames, uint64_t table_first, unsigned levels, int ad, uint32_t caps)
{
    memset(e, 0, sizeof(*e));
    e->bytes = (size_t)frames << 12;
    void *p = mmap(NULL, e->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return -1;
    }

    e->base = p;
    e->frames = frames;
    e->table_first = table_first;
    e->table_total = frames - table_first;
    e->free_stack = malloc((size_t)e->table_total * sizeof(uint64_t));
    if (e->free_stack == NULL) {
        munmap(p, e->bytes);
        return -1;
    }

    /* Lowest frames on top, so tables are handed out in ascending order. */
    for (uint64_t i = 0; i < e->table_total; i++) {
        e->free_stack[i] = frames - 1 - i;
    }

    e->free_count = e->table_total;
    uint64_t root = e->free_stack[--e->free_count];
    e->w.host_base = e->base;
    e->w.host_frames = frames;
    e->w.eptp = fastept_make_eptp(root, levels, (uint32_t)ad);
    e->w.max_mapped_pfn = 0;
    e->w.address_bits = 12 + 9 * levels;
    e->w.host_address_bits = 46;
    e->w.caps = caps;
    e->w.default_access = A_RWX;
    return 0;
}

void tu_env_destroy(tu_env *e)
{
    if (e->base != NULL) {
        munmap(e->base, e->bytes);
    }

    free(e->free_stack);
    memset(e, 0, sizeof(*e));
}

int32_t tu_set(tu_env *e, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type, uint32_t access,
               uint32_t sve, int reclaim, fastept_set_result *out)
{
    uint64_t pool[1024];
    uint32_t n = e->free_count < 1024 ? (uint32_t)e->free_count : 1024;
    for (uint32_t i = 0; i < n; i++) {
        pool[i] = e->free_stack[e->free_count - 1 - i];
    }

    fastept_set_result r;
    int32_t rc = fastept_set_entry(&e->w, pool, n, gfn, mfn, order, type, access, sve, &r);
    if (rc == FASTEPT_OK) {
        e->free_count -= r.frames_used;
        if (reclaim && r.retired_table != TU_INVALID) {
            tu_reclaim(e, r.retired_table, r.retired_level);
        }
    }

    if (out != NULL) {
        *out = r;
    }

    return rc;
}

void tu_reclaim(tu_env *e, uint64_t table, uint32_t level)
{
    uint64_t list[2048];
    uint64_t n = fastept_collect_tables(&e->w, table, level, list, 2048);
    CHECK(n <= 2048, "retired subtree of %llu tables", (unsigned long long)n);
    for (uint64_t i = 0; i < n && i < 2048; i++) {
        CHECK(list[i] >= e->table_first && list[i] < e->frames, "retired frame %llu outside the table area",
              (unsigned long long)list[i]);
        e->free_stack[e->free_count++] = list[i];
    }
}

uint64_t tu_live_tables(const tu_env *e)
{
    return fastept_collect_tables(&e->w, (e->w.eptp & TU_MFN_MASK) >> 12, ((e->w.eptp >> 3) & 7) + 1, NULL, 0);
}

uint64_t *tu_slot(const tu_env *e, uint64_t table, uint64_t gfn, unsigned level)
{
    return (uint64_t *)(void *)(e->base + (table << 12)) + ((gfn >> (9 * (level - 1))) & 511);
}

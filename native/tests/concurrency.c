/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * concurrency.c - readers against one writer.
 *
 * The writer keeps splitting a 2M superpage into 4K pages with the same frames and merging it
 * back, and (with A/D on) rewrites a 4K page between log-dirty (no D preset) and RAM while
 * readers write to it, so walkers' atomic D updates race the writer's compare-exchange. Every
 * translation a reader makes is unchanged by all of this: a reader that ever sees anything
 * but OK with the right HPA caught a half-built or torn entry. Retired tables are never
 * reused while readers run (nothing is reclaimed).
 */

#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define C_READERS 3
#define C_GFN UINT64_C(0x200)       /* the 2M page: GFNs 0x200..0x3FF -> MFNs 0x400.. */
#define C_MFN UINT64_C(0x400)
#define C_DIRTY_GFN UINT64_C(0x1000) /* the 4K page rewritten under writing readers */
#define C_DIRTY_MFN UINT64_C(0x77)

struct c_shared {
    tu_env *env;
    atomic_int stop;
    atomic_ulong walks;
};

struct c_reader {
    pthread_t thread;
    struct c_shared *shared;
    uint64_t seed;
    unsigned long failures;
    char first[256];
};

static void c_note(struct c_reader *r, const char *what, uint64_t gpa, fastept_translation t)
{
    if (r->failures++ == 0) {
        snprintf(r->first, sizeof(r->first), "%s gpa 0x%llx: status %u level %u hpa 0x%llx qual 0x%x", what,
                 (unsigned long long)gpa, t.status, t.level, (unsigned long long)t.hpa, t.qualification);
    }
}

static void *c_read(void *arg)
{
    struct c_reader *r = arg;
    const fastept_walker *w = &r->shared->env->w;
    tu_rng rng = { r->seed };
    unsigned long walks = 0;
    while (!atomic_load_explicit(&r->shared->stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            uint64_t off = tu_below(&rng, UINT64_C(512) << 12);
            uint32_t access = (uint32_t)(1 + tu_below(&rng, 7));
            uint64_t gpa = (C_GFN << 12) + off;
            fastept_translation t = fastept_translate(w, gpa, access);
            if (t.status != FASTEPT_STATUS_OK || t.hpa != (C_MFN << 12) + off || (t.level != 1 && t.level != 2)) {
                c_note(r, "superpage", gpa, t);
            }

            fastept_entry e = fastept_get_entry(w, gpa >> 12);
            if (e.mfn != C_MFN + (off >> 12) || !e.is_mapped || (e.order != 0 && e.order != 9)) {
                c_note(r, "get_entry", gpa, t);
            }

            uint64_t dirty = (C_DIRTY_GFN << 12) + (off & 0xFFF);
            t = fastept_translate(w, dirty, FASTEPT_ACCESS_WRITE | FASTEPT_ACCESS_READ);
            if (t.status != FASTEPT_STATUS_OK || t.hpa != (C_DIRTY_MFN << 12) + (off & 0xFFF) || t.level != 1) {
                c_note(r, "dirty page", dirty, t);
            }

            walks += 3;
        }
    }

    atomic_fetch_add(&r->shared->walks, walks);
    return NULL;
}

static void c_phase(const char *name, int ad, double seconds)
{
    enum { CYCLES_MAX = 3000 };
    tu_env e;
    uint32_t caps = FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES | FASTEPT_CAP_PML;
    if (tu_env_init(&e, 0x10000 + CYCLES_MAX + 64, 0x10000, 4, ad, caps) != 0) {
        CHECK(0, "env");
        return;
    }

    CHECK(tu_set(&e, C_GFN, C_MFN, 9, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "2M page");
    CHECK(tu_set(&e, C_DIRTY_GFN, C_DIRTY_MFN, 0, T_LOGDIRTY, A_RWX, 0, 0, NULL) == FASTEPT_OK, "dirty page");

    struct c_shared shared;
    shared.env = &e;
    atomic_init(&shared.stop, 0);
    atomic_init(&shared.walks, 0);
    struct c_reader readers[C_READERS];
    int started = 0;
    for (int i = 0; i < C_READERS; i++) {
        memset(&readers[i], 0, sizeof(readers[i]));
        readers[i].shared = &shared;
        readers[i].seed = (uint64_t)(i + 1) * 7919u + (uint64_t)ad;
        if (pthread_create(&readers[i].thread, NULL, c_read, &readers[i]) != 0) {
            CHECK(0, "pthread_create");
            break;
        }

        started++;
    }

    tu_rng rng = { 99 };
    unsigned long cycles = 0, rewrites = 0, failed_sets = 0;
    double start = tu_now(), end = start + seconds;
    while (tu_now() < end) {
        fastept_set_result r;
        /* The 4K page flips between log-dirty (D clear) and RAM (D preset) under writing readers. */
        for (int i = 0; i < 8; i++) {
            uint32_t type = i % 2 == 0 ? T_RAM_RW : T_LOGDIRTY;
            failed_sets += tu_set(&e, C_DIRTY_GFN, C_DIRTY_MFN, 0, type, A_RWX, 0, 0, NULL) != FASTEPT_OK;
        }

        rewrites += 8;
        if (e.free_count <= 8) {
            continue;   /* out of fresh frames: retired ones are never reused while readers run */
        }

        /* Split: one 4K page rewritten with its own frame, so nothing a reader sees changes. */
        uint64_t k = tu_below(&rng, 512);
        failed_sets += tu_set(&e, C_GFN + k, C_MFN + k, 0, T_RAM_RW, A_RWX, 0, 0, &r) != FASTEPT_OK;
        failed_sets += r.frames_used != 1;
        /* Merge: the 4K table is retired (and kept out of the pool). */
        failed_sets += tu_set(&e, C_GFN, C_MFN, 9, T_RAM_RW, A_RWX, 0, 0, &r) != FASTEPT_OK;
        failed_sets += r.retired_level != 1;
        cycles++;
    }

    double elapsed = tu_now() - start;
    atomic_store(&shared.stop, 1);
    for (int i = 0; i < started; i++) {
        pthread_join(readers[i].thread, NULL);
        CHECK(readers[i].failures == 0, "%s: reader %d saw %lu bad results; first: %s", name, i, readers[i].failures,
              readers[i].first);
    }

    unsigned long walks = atomic_load(&shared.walks);
    CHECK(failed_sets == 0, "%s: %lu writer calls failed", name, failed_sets);
    CHECK(cycles > 10 && walks > 1000, "%s: only %lu cycles and %lu walks", name, cycles, walks);
    printf("  %s: %.2f s, %lu split/merge cycles, %lu 4K rewrites, %lu reader walks\n", name, elapsed, cycles,
           rewrites, walks);
    tu_env_destroy(&e);
}

void concurrency_test_run(void)
{
    c_phase("concurrency[no A/D]", 0, 0.25);
    c_phase("concurrency[A/D]", 1, 0.25);
}

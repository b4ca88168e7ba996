/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* testutil.h - shared helpers of the native test driver (POSIX). */

#ifndef FASTEPT_TESTUTIL_H
#define FASTEPT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fastept.h"

/* Names of p2m types/accesses the tests use (values of FastEpt.P2mType / P2mAccess). */
enum {
    T_RAM_RW = 0, T_INVALID = 1, T_LOGDIRTY = 2, T_RAM_RO = 3, T_MMIO_DM = 4, T_MMIO_DIRECT = 5,
    T_POD = 6, T_GRANT_RW = 7, T_GRANT_RO = 8, T_PAGING_OUT = 9, T_PAGED = 10, T_PAGING_IN = 11,
    T_SHARED = 12, T_BROKEN = 13, T_FOREIGN = 14, T_IOREQ = 15
};

enum {
    A_N = 0, A_R = 1, A_W = 2, A_RW = 3, A_X = 4, A_RX = 5, A_WX = 6, A_RWX = 7, A_RX2RW = 8,
    A_N2RWX = 9, A_R_PW = 10
};

#define TU_INVALID FASTEPT_INVALID_MFN
#define TU_MFN_MASK UINT64_C(0x000FFFFFFFFFF000)

/* Failure accounting: every failed CHECK prints file:line and counts. */
extern unsigned long tu_failures;
void tu_fail(const char *file, int line, const char *fmt, ...);
#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            tu_fail(__FILE__, __LINE__, __VA_ARGS__);     \
        }                                                 \
    } while (0)

/* splitmix64: small, seedable, good enough for test inputs. */
typedef struct tu_rng {
    uint64_t state;
} tu_rng;

uint64_t tu_next(tu_rng *r);
uint64_t tu_below(tu_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */

/* Monotonic seconds. */
double tu_now(void);

/*
 * A host memory for tests: `frames` zeroed frames reserved with mmap (lazily committed, so a
 * large guest costs only the frames touched), tables taken from a free-frame stack over
 * [table_first, frames). Retired subtrees can be given back with tu_reclaim (single-threaded
 * tests only: no reader may still be inside).
 */
typedef struct tu_env {
    uint8_t *base;
    size_t bytes;
    uint64_t frames;
    uint64_t table_first;
    uint64_t *free_stack;   /* top = free_stack[free_count - 1] is the next frame handed out */
    uint64_t free_count;
    uint64_t table_total;   /* frames in the table area, root included */
    fastept_walker w;
} tu_env;

/* Creates the memory and an empty root (taken from the table area); returns 0 on success. */
int tu_env_init(tu_env *e, uint64_t frames, uint64_t table_first, unsigned levels, int ad, uint32_t caps);
void tu_env_destroy(tu_env *e);

/* set_entry with the next free frames as the pool (front = next to hand out); consumes what it
   used. When reclaim is set, a retired subtree goes straight back to the free stack. */
int32_t tu_set(tu_env *e, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type, uint32_t access,
               uint32_t sve, int reclaim, fastept_set_result *out);

/* Gives the subtree at (table, level) back to the free stack. */
void tu_reclaim(tu_env *e, uint64_t table, uint32_t level);

/* Number of table frames reachable from the root (the root included). */
uint64_t tu_live_tables(const tu_env *e);

/* Pointer to a slot of a table frame. */
uint64_t *tu_slot(const tu_env *e, uint64_t table, uint64_t gfn, unsigned level);

/* Test suites (each returns after recording failures through CHECK). */
int tu_run_vector_dir(const char *dir, unsigned long *cases);
void selftest_run(void);
void model_test_run(void);
void reference_test_run(void);

/* reference.c: the walk modelled from the SDM's tables (independent of walk.c); vectors.c checks
   it against every hand-derived vector. A/D flags are set in b as the walk would. */
struct ref_cfg {
    unsigned levels;
    uint64_t frames;
    uint64_t root;
    uint32_t hbits;
    int xo, one_g, ad;
};
fastept_translation reference_translate(uint8_t *b, const struct ref_cfg *c, uint64_t gpa, uint32_t access);
void concurrency_test_run(void);

#endif /* FASTEPT_TESTUTIL_H */

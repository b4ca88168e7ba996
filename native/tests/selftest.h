/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* selftest.h - what the self-test area files share: expectation helpers and the test list. */

#ifndef FASTEPT_SELFTEST_H
#define FASTEPT_SELFTEST_H

#include "testutil.h"

#define CAPS_ALL (FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES)
#define G1 UINT64_C(0x40000) /* a 1 GiB-aligned GFN */

void expect_entry(const char *file, int line, fastept_entry got, uint64_t mfn, unsigned type, unsigned access,
                  unsigned sve, unsigned mapped, int order);
void expect_tr(const char *file, int line, fastept_translation t, unsigned status, unsigned level, uint64_t hpa,
               uint32_t qual);
uint64_t root_of(const tu_env *e);

#define EXPECT_ENTRY(got, ...) expect_entry(__FILE__, __LINE__, (got), __VA_ARGS__)
#define EXPECT_HOLE(got, order) expect_entry(__FILE__, __LINE__, (got), TU_INVALID, T_MMIO_DM, A_N, 1, 0, (order))
#define EXPECT_TR(got, ...) expect_tr(__FILE__, __LINE__, (got), __VA_ARGS__)

/* selftest_errors.c: walker checks, bad arguments, set_entry errors, pool exhaustion. */
void test_walker_check(void);
void test_bad_arguments(void);
void test_set_errors(void);
void test_pool_exhaustion(void);

/* selftest_tables.c: chains, splits, merges, retired subtrees, five levels. */
void test_chains_and_splits(void);
void test_five_levels(void);

/* selftest_walks.c: batch = single, accessed/dirty flags, get_entry corner cases. */
void test_batch(void);
void test_batch_paths(void);
void test_accessed_dirty(void);
void test_get_entry_corners(void);

/* selftest_read.c: read sections (slots, nesting, release). */
void test_read_sections(void);

/* selftest_ad_race.c: A/D updates against a write inside their window (test builds' seam). */
void test_accessed_dirty_races(void);

#endif /* FASTEPT_SELFTEST_H */

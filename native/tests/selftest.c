/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest.c - deterministic self-tests: walker checks, bad arguments, every set_entry error
 * code, chains and splits, merges and retired subtrees, PoD accounting, suppress-#VE, memory
 * types, pool exhaustion, batch = single, accessed/dirty flags, get_entry corner cases.
 *
 * This file holds the expectation helpers and the run order; the tests live by area in
 * selftest_errors.c, selftest_tables.c and selftest_walks.c (declared in selftest.h).
 */

#include "selftest.h"

void expect_entry(const char *file, int line, fastept_entry got, uint64_t mfn, unsigned type, unsigned access,
                  unsigned sve, unsigned mapped, int order)
{
    if (got.mfn != mfn || got.type != type || got.access != access || got.suppress_ve != sve
        || got.is_mapped != mapped || got.order != order) {
        tu_fail(file, line, "entry mfn 0x%llx type %u access %u sve %u mapped %u order %d, expected "
                "mfn 0x%llx type %u access %u sve %u mapped %u order %d",
                (unsigned long long)got.mfn, got.type, got.access, got.suppress_ve, got.is_mapped, got.order,
                (unsigned long long)mfn, type, access, sve, mapped, order);
    }
}

void expect_tr(const char *file, int line, fastept_translation t, unsigned status, unsigned level,
               uint64_t hpa, uint32_t qual)
{
    if (t.status != status || t.level != level || t.hpa != hpa || t.qualification != qual || t.reserved[0] != 0
        || t.reserved[1] != 0) {
        tu_fail(file, line, "translation status %u level %u hpa 0x%llx qual 0x%x, expected %u %u 0x%llx 0x%x",
                t.status, t.level, (unsigned long long)t.hpa, t.qualification, status, level,
                (unsigned long long)hpa, qual);
    }
}

uint64_t root_of(const tu_env *e)
{
    return (e->w.eptp & TU_MFN_MASK) >> 12;
}

void selftest_run(void)
{
    test_walker_check();
    test_bad_arguments();
    test_set_errors();
    test_chains_and_splits();
    test_five_levels();
    test_pool_exhaustion();
    test_batch();
    test_batch_paths();
    test_accessed_dirty();
    test_accessed_dirty_races();
    test_get_entry_corners();
    test_read_sections();
}

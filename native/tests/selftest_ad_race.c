/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_ad_race.c - the walker's accessed/dirty updates against a writer, deterministically:
 * the test build's seam (ept_test_ad_hook, walk.c) runs a write between the walk's read of a
 * slot and its compare-exchange on it. The update must land only on the entry the walk read;
 * a changed slot restarts the walk from the root (Intel SDM 29.3.5). A blind atomic OR would
 * turn a just-removed slot into one that reads as a valid RAM entry of MFN 0. The same cases
 * as the managed AccessDirtyRaceTests, through the fast path and the general walk, single and
 * batched. Without the seam (the driver over the release library) there is nothing to run.
 */

#include "selftest.h"

#include <stdio.h>

#ifdef FASTEPT_TEST_HOOKS

/* The seam (walk.c; hidden, linked statically into the test driver). */
extern void (*ept_test_ad_hook)(uint64_t *slot, unsigned level);

#define A UINT64_C(0x100)
#define D UINT64_C(0x200)
#define SVE (UINT64_C(1) << 63)
#define GFN UINT64_C(0x40123)

/* What the hook does, once, inside the first A/D window. */
static struct {
    tu_env *env;
    int op;                  /* RACE_* */
    uint64_t *poke;          /* RACE_POKE: the slot written by hand */
    int fired;
    unsigned seen_level;
} race;

enum { RACE_NONE, RACE_REMOVE_4K, RACE_REMAP_4K, RACE_REMOVE_2M, RACE_REMOVE_1G, RACE_POKE };

static void race_hook(uint64_t *slot, unsigned level)
{
    (void)slot;
    if (race.fired++ != 0) {
        return;
    }

    race.seen_level = level;
    tu_env *e = race.env;
    switch (race.op) {
    case RACE_REMOVE_4K:
        CHECK(tu_set(e, GFN, TU_INVALID, 0, T_INVALID, A_N, 0, 0, NULL) == FASTEPT_OK, "remove 4K in the window");
        break;
    case RACE_REMAP_4K:
        CHECK(tu_set(e, GFN, 0x77, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "remap 4K in the window");
        break;
    case RACE_REMOVE_2M:
        CHECK(tu_set(e, GFN & ~UINT64_C(511), TU_INVALID, 9, T_INVALID, A_N, 0, 0, NULL) == FASTEPT_OK, "remove 2M in the window");
        break;
    case RACE_REMOVE_1G:
        CHECK(tu_set(e, GFN & ~UINT64_C(0x3FFFF), TU_INVALID, 18, T_INVALID, A_N, 0, 0, NULL) == FASTEPT_OK, "remove 1G in the window");
        break;
    case RACE_POKE:
        *race.poke = SVE;
        break;
    default:
        break;
    }
}

/* Walks gpa (singly or as a batch of one) with `op` run inside the first A/D window. */
static fastept_translation race_walk(tu_env *e, int op, unsigned level, uint64_t *poke, uint64_t gpa, uint32_t access, int batch)
{
    race.env = e;
    race.op = op;
    race.poke = poke;
    race.fired = 0;
    race.seen_level = 0;
    ept_test_ad_hook = race_hook;
    fastept_translation t;
    if (batch) {
        CHECK(fastept_translate_batch(&e->w, &gpa, 1, access, &t) == 1, "batch of one");
    } else {
        t = fastept_translate(&e->w, gpa, access);
    }

    ept_test_ad_hook = NULL;
    CHECK(race.fired > 0, "op %d: the walk opened no A/D window", op);
    CHECK(race.seen_level == level, "op %d: first window at level %u, expected %u", op, race.seen_level, level);
    return t;
}

/* The slots of GFN's path, s[levels..1] (as far as it goes). */
static void race_path(const tu_env *e, uint64_t *s[6])
{
    uint64_t t = root_of(e);
    for (unsigned l = 4; l >= 1; l--) {
        s[l] = tu_slot(e, t, GFN, l);
        if (l == 1 || (*s[l] & 7) == 0 || (*s[l] & 0x80) != 0) {
            for (unsigned k = l - 1; k >= 1 && k < l; k--) {
                s[k] = NULL;
            }

            return;
        }

        t = (*s[l] & TU_MFN_MASK) >> 12;
    }
}

static int race_env(tu_env *e)
{
    if (tu_env_init(e, 1024 + 64, 1024, 4, 1, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return 0;
    }

    return 1;
}

void test_accessed_dirty_races(void)
{
    for (int batch = 0; batch <= 1; batch++) {
        tu_env e;
        uint64_t *s[6];

        /* Leaf removed between the read and the D update (fast path): stays removed, not present. */
        if (!race_env(&e)) {
            return;
        }

        CHECK(tu_set(&e, GFN, 0x55, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map");
        race_path(&e, s);
        uint64_t *leaf = s[1];
        *leaf &= ~D;
        EXPECT_TR(race_walk(&e, RACE_REMOVE_4K, 1, NULL, GFN << 12 | 0x18, FASTEPT_ACCESS_WRITE, batch),
                  FASTEPT_STATUS_VIOLATION, 1, 0, FASTEPT_ACCESS_WRITE);
        CHECK(*leaf == SVE, "batch %d: the removed leaf reads 0x%llx", batch, (unsigned long long)*leaf);
        EXPECT_HOLE(fastept_get_entry(&e.w, GFN), 0);

        /* Leaf remapped in the window: the re-walk uses the new entry and sets its flags. */
        CHECK(tu_set(&e, GFN, 0x55, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map again");
        *leaf &= ~(A | D);
        EXPECT_TR(race_walk(&e, RACE_REMAP_4K, 1, NULL, GFN << 12 | 0x18, FASTEPT_ACCESS_WRITE, batch),
                  FASTEPT_STATUS_OK, 1, UINT64_C(0x77) << 12 | 0x18, 0);
        CHECK(((*leaf & TU_MFN_MASK) >> 12) == 0x77 && (*leaf & (A | D)) == (A | D), "remapped leaf 0x%llx",
              (unsigned long long)*leaf);

        /* Unchanged in the window: one update, the walk goes on. */
        *leaf &= ~D;
        uint64_t before = *leaf;
        EXPECT_TR(race_walk(&e, RACE_NONE, 1, NULL, GFN << 12, FASTEPT_ACCESS_WRITE, batch), FASTEPT_STATUS_OK, 1,
                  UINT64_C(0x77) << 12, 0);
        CHECK(race.fired == 1 && *leaf == (before | D), "unchanged leaf: %d windows, 0x%llx", race.fired,
              (unsigned long long)*leaf);

        /* Pointers (fast path) removed between the read and the A update, at levels 2, 3 and 4. */
        for (unsigned level = 2; level <= 4; level++) {
            CHECK(tu_set(&e, GFN, 0x55, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map for level %u", level);
            race_path(&e, s);
            uint64_t *pointer = s[level];
            *pointer &= ~A;
            int op = level == 2 ? RACE_REMOVE_2M : level == 3 ? RACE_REMOVE_1G : RACE_POKE;
            EXPECT_TR(race_walk(&e, op, level, pointer, GFN << 12, FASTEPT_ACCESS_READ, batch), FASTEPT_STATUS_VIOLATION,
                      level, 0, FASTEPT_ACCESS_READ);
            CHECK(*pointer == SVE, "batch %d: the removed level-%u slot reads 0x%llx", batch, level,
                  (unsigned long long)*pointer);
            fastept_entry got = fastept_get_entry(&e.w, GFN);
            CHECK(!got.is_mapped, "level %u: a removed GFN reads mapped (mfn 0x%llx)", level, (unsigned long long)got.mfn);
        }

        tu_env_destroy(&e);

        /* The general walk: a 2M superpage leaf removed before its D update. */
        if (!race_env(&e)) {
            return;
        }

        CHECK(tu_set(&e, GFN & ~UINT64_C(511), 0x200, 9, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map 2M");
        race_path(&e, s);
        uint64_t *super = s[2];
        *super &= ~D;
        EXPECT_TR(race_walk(&e, RACE_REMOVE_2M, 2, NULL, GFN << 12, FASTEPT_ACCESS_WRITE, batch), FASTEPT_STATUS_VIOLATION,
                  2, 0, FASTEPT_ACCESS_WRITE);
        CHECK(*super == SVE, "batch %d: the removed 2M leaf reads 0x%llx", batch, (unsigned long long)*super);
        EXPECT_HOLE(fastept_get_entry(&e.w, GFN), 9);

        /* The general walk's pointer update: an execute-only PML4E keeps the walk off the fast
           path; the PDE below it, without A, is removed in its window. */
        CHECK(tu_set(&e, GFN, 0x55, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map 4K");
        race_path(&e, s);
        *s[4] = (*s[4] & ~UINT64_C(7)) | 4;
        *s[2] &= ~A;
        uint64_t *pde = s[2];
        EXPECT_TR(race_walk(&e, RACE_REMOVE_2M, 2, NULL, GFN << 12, FASTEPT_ACCESS_EXECUTE, batch), FASTEPT_STATUS_VIOLATION,
                  2, 0, FASTEPT_ACCESS_EXECUTE);
        CHECK(*pde == SVE, "batch %d: the removed PDE reads 0x%llx", batch, (unsigned long long)*pde);
        tu_env_destroy(&e);
    }
}

#else

void test_accessed_dirty_races(void)
{
    printf("accessed/dirty races: skipped (no test seam in this build)\n");
}

#endif

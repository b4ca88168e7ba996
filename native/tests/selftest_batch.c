/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_batch.c - every batch path (fastept_translate_batch_path: scalar, pipelined,
 * gathered, auto) and the header-inline fastept_translate_inline against fastept_translate,
 * address by address, over tables with every shape the fast paths must hand to the general
 * walk: 2M and 1G superpages, read-only and MMIO
 * entries, holes, and planted corruptions (reserved bits, bad memory types, write-only and
 * execute-only rwx, bit 7 in a PML4E, pointers outside host memory), for every access kind,
 * scattered and clustered addresses, GPAs beyond the address width, and batch lengths that are
 * not multiples of a gather group. A/D-enabled and 5-level walkers must take the scalar path.
 */

#include "selftest.h"

#include "fastept_inline.h"

#include <string.h>

enum { BATCH_N = 3001 };   /* not a multiple of 16: the gathered path's scalar tail runs */

/* The slot a walk of gfn reads at `level`, or NULL when the walk stops above it. */
static uint64_t *walk_slot(const tu_env *e, uint64_t gfn, unsigned level)
{
    uint64_t table = root_of(e);
    for (unsigned l = 4; ; l--) {
        uint64_t *slot = tu_slot(e, table, gfn, l);
        if (l == level) {
            return slot;
        }

        uint64_t pte = *slot;
        if ((pte & 7) == 0 || (pte & 0x80) != 0) {
            return NULL;
        }

        table = (pte & TU_MFN_MASK) >> 12;
        if (table >= e->frames) {
            return NULL;
        }
    }
}

/* GFNs the guest maps or corrupts: half of the scattered addresses come from here. */
static uint64_t s_hot[8192];
static unsigned s_hot_count;

static void note_hot(uint64_t gfn)
{
    s_hot[s_hot_count++ % (sizeof(s_hot) / sizeof(s_hot[0]))] = gfn;
}

/*
 * Plants one corruption into the slot of gfn at a random level: at the PTE and PDE any kind;
 * at the PDPTE and PML4E (each covers a quarter or all of the populated 4 GiB) only reduced
 * rights that keep r, so the walks go on and the rights AND over the levels is exercised.
 */
static void plant(tu_env *e, tu_rng *rng, uint64_t gfn)
{
    unsigned pick = (unsigned)tu_below(rng, 100);
    unsigned level = pick < 55 ? 1 : pick < 97 ? 2 : pick < 99 ? 3 : 4;
    uint64_t *slot = walk_slot(e, gfn, level);
    if (slot == NULL || (*slot & 7) == 0) {
        return;
    }

    uint64_t pte = *slot;
    unsigned kind = level >= 3 ? 6 : (unsigned)tu_below(rng, 8);
    switch (kind) {
    case 0: pte |= UINT64_C(1) << 51; break;                             /* above MAXPHYADDR */
    case 1: pte = (pte & ~UINT64_C(0x38)) | ((uint64_t)(2 + 5 * tu_below(rng, 2)) << 3); break;   /* memory type 2 or 7 */
    case 2: pte = (pte & ~UINT64_C(7)) | 2; break;                        /* write-only */
    case 3: pte = (pte & ~UINT64_C(7)) | 4; break;                        /* execute-only */
    case 4: pte |= 0x80; break;                                           /* bit 7: a superpage from a pointer */
    case 5: pte = (pte & ~TU_MFN_MASK) | ((e->frames + tu_below(rng, 64)) << 12); break;   /* outside host memory */
    case 6: pte = (pte & ~UINT64_C(7)) | (1 + 2 * tu_below(rng, 3)); break;   /* r, rw or rx */
    default: pte &= ~UINT64_C(7); break;                                  /* not present */
    }

    *slot = pte;
    note_hot(gfn);
}

/* How many results of each status and level (index status * 8 + level; MISCONFIG is 2). */
static void tally(const fastept_translation *t, unsigned n, unsigned long *counts)
{
    for (unsigned i = 0; i < n; i++) {
        if (t[i].status <= FASTEPT_STATUS_MISCONFIG && t[i].level < 8) {
            counts[t[i].status * 8 + t[i].level]++;
        }
    }
}

/* Every path on gpas[0 .. n), each result against fastept_translate; `want` is the path each
   forced request must report (index = FASTEPT_BATCH_*), 0 = do not check. */
static void check_paths(const tu_env *e, const uint64_t *gpas, unsigned n, const uint32_t *want, const char *what,
                        unsigned long *counts)
{
    static fastept_translation expected[BATCH_N];
    static fastept_translation got[BATCH_N];
    for (uint32_t access = 1; access <= 7; access++) {
        for (unsigned i = 0; i < n; i++) {
            expected[i] = fastept_translate(&e->w, gpas[i], access);
        }

        tally(expected, n, counts);

        /* The header-inline walk (fastept_inline.h) gives the same answers, address by address. */
        fastept_prepared_walker pw;
        CHECK(fastept_walker_prepare(&e->w, &pw) == FASTEPT_OK, "%s: prepare", what);
        unsigned long inline_bad = 0;
        for (unsigned i = 0; i < n; i++) {
            fastept_translation t = fastept_translate_inline(&pw, gpas[i], access);
            inline_bad += memcmp(&t, &expected[i], sizeof(t)) != 0;
        }

        CHECK(inline_bad == 0, "%s: access %u: %lu inline results differ from translate", what, access, inline_bad);

        for (uint32_t path = FASTEPT_BATCH_AUTO; path <= FASTEPT_BATCH_GATHER; path++) {
            memset(got, 0xA5, sizeof(got));
            uint32_t taken = fastept_translate_batch_path(&e->w, gpas, n, access, got, path);
            CHECK(want[path] == 0 || taken == want[path], "%s: path %u took %u, expected %u", what, path, taken, want[path]);
            unsigned long bad = 0;
            unsigned first = n;
            for (unsigned i = 0; i < n; i++) {
                if (memcmp(&got[i], &expected[i], sizeof(got[i])) != 0) {
                    bad++;
                    first = first < i ? first : i;
                }
            }

            CHECK(bad == 0, "%s: path %u (took %u), access %u: %lu results differ from translate, first at %u (gpa 0x%llx: "
                  "status %u level %u hpa 0x%llx qual 0x%x, expected %u %u 0x%llx 0x%x)", what, path, taken, access, bad, first,
                  (unsigned long long)gpas[first < n ? first : 0], got[first < n ? first : 0].status, got[first < n ? first : 0].level,
                  (unsigned long long)got[first < n ? first : 0].hpa, got[first < n ? first : 0].qualification,
                  expected[first < n ? first : 0].status, expected[first < n ? first : 0].level,
                  (unsigned long long)expected[first < n ? first : 0].hpa, expected[first < n ? first : 0].qualification);
        }
    }
}

/* A mixed guest in the first 4 GiB of `e`, then `corruptions` planted entries. */
static void populate(tu_env *e, tu_rng *rng, unsigned corruptions)
{
    const uint64_t gfns = UINT64_C(1) << 20;
    for (int i = 0; i < 3000; i++) {
        uint64_t gfn = tu_below(rng, gfns);
        unsigned kind = (unsigned)tu_below(rng, 8);
        if (kind == 0) {
            CHECK(tu_set(e, gfn & ~UINT64_C(511), gfn & ~UINT64_C(511), 9, T_RAM_RW, A_RWX, 0, 1, NULL) == FASTEPT_OK, "2M");
            note_hot(gfn);
        } else if (kind == 2) {
            CHECK(tu_set(e, gfn, tu_below(rng, gfns), 0, T_RAM_RO, A_RX, 0, 1, NULL) == FASTEPT_OK, "4K ro");
            note_hot(gfn);
        } else if (kind == 3) {
            CHECK(tu_set(e, gfn, gfn + 0x100000, 0, T_MMIO_DIRECT, A_RW, 0, 1, NULL) == FASTEPT_OK, "mmio");
        } else if (kind == 4) {
            CHECK(tu_set(e, gfn, TU_INVALID, 0, T_INVALID, A_N, 0, 1, NULL) == FASTEPT_OK, "hole");
        } else {
            /* Plain RAM around gfn: most walks take the fast shape. */
            for (uint64_t k = 0; k < 8; k++) {
                CHECK(tu_set(e, (gfn + k) % gfns, tu_below(rng, gfns), 0, T_RAM_RW, (uint32_t)(k == 7 ? A_R : A_RWX), 0, 1, NULL)
                      == FASTEPT_OK, "4K");
            }

            note_hot(gfn + 7);
        }
    }

    /* A 1G page just above them (the scattered addresses reach it too). */
    CHECK(tu_set(e, gfns, UINT64_C(0x40000), 18, T_RAM_RW, A_RX, 0, 1, NULL) == FASTEPT_OK, "1G");
    for (unsigned i = 0; i < corruptions; i++) {
        plant(e, rng, tu_below(rng, gfns));
    }
}

static void make_gpas(tu_rng *rng, uint64_t *gpas, unsigned n, int clustered)
{
    uint64_t at = tu_below(rng, UINT64_C(1) << 32);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (unsigned)tu_below(rng, 64);
        if (clustered) {
            at = (at & ~UINT64_C(0x1FFFFF)) | tu_below(rng, UINT64_C(1) << 21);
            at = k == 0 ? tu_below(rng, UINT64_C(1) << 32) : at;
            gpas[i] = at;
        } else {
            gpas[i] = k == 0 ? tu_next(rng)                                     /* beyond the address width */
                      : k == 1 ? tu_below(rng, UINT64_C(1) << 48)               /* anywhere */
                      : k == 2 ? (UINT64_C(1) << 32) + tu_below(rng, UINT64_C(1) << 30)   /* the 1G page */
                      : k < 32 ? (s_hot[tu_below(rng, s_hot_count < 8192 ? s_hot_count : 8192)] << 12) | tu_below(rng, 4096)
                               : tu_below(rng, UINT64_C(1) << 32);              /* the populated 4G */
        }
    }
}

/* The test's own AVX2 probe: the gather path must run wherever the CPU has AVX2. */
static int cpu_has_avx2(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
#else
    return 0;
#endif
}

void test_batch_paths(void)
{
    static uint64_t gpas[BATCH_N];
    tu_rng rng = { 2026 };
    const uint64_t frames = (UINT64_C(1) << 21) + 8192;

    unsigned long counts[24] = { 0 };
    for (int ad = 0; ad <= 1; ad++) {
        s_hot_count = 0;
        tu_env e;
        if (tu_env_init(&e, frames, UINT64_C(1) << 21, 4, ad, CAPS_ALL) != 0) {
            CHECK(0, "env");
            return;
        }

        populate(&e, &rng, 400);
        /* The inline walk applies to 4 levels without A/D updates, and only there. */
        fastept_prepared_walker pw;
        CHECK(fastept_walker_prepare(&e.w, &pw) == FASTEPT_OK && (pw.gpa_limit != 0) == !ad, "prepare: inline shape %d", ad);
        /* Forced paths run as asked (gathers only with AVX2, which the dispatcher reports);
           with A/D on, everything walks one at a time. */
        uint32_t want[4] = { 0, FASTEPT_BATCH_SCALAR, FASTEPT_BATCH_PIPELINED,
                             cpu_has_avx2() ? FASTEPT_BATCH_GATHER : FASTEPT_BATCH_PIPELINED };
        if (ad) {
            want[0] = want[1] = want[2] = want[3] = FASTEPT_BATCH_SCALAR;
        }

        for (int round = 0; round < 3; round++) {
            make_gpas(&rng, gpas, BATCH_N, 0);
            check_paths(&e, gpas, BATCH_N, want, ad ? "4 levels, A/D, scattered" : "4 levels, scattered", counts);
            if (!ad) {
                /* Scattered addresses over more than 8 MiB of host memory: Auto pipelines. */
                fastept_translation r[64];
                CHECK(fastept_translate_batch_path(&e.w, gpas, 64, 1, r, FASTEPT_BATCH_AUTO) == FASTEPT_BATCH_PIPELINED, "auto, scattered");
                CHECK(fastept_translate_batch_path(&e.w, gpas, 31, 1, r, FASTEPT_BATCH_AUTO) == FASTEPT_BATCH_SCALAR, "auto, short");
            }

            make_gpas(&rng, gpas, BATCH_N, 1);
            check_paths(&e, gpas, BATCH_N, want, ad ? "4 levels, A/D, clustered" : "4 levels, clustered", counts);
            /* Short batches: shorter than the pipeline and than a gather group. */
            check_paths(&e, gpas, 1 + (unsigned)tu_below(&rng, 40), want, "short", counts);
        }

        tu_env_destroy(&e);
    }

    /* Never vacuous: the addresses reach every outcome the fast paths hand over or finish. */
    CHECK(counts[FASTEPT_STATUS_OK * 8 + 1] > 1000 && counts[FASTEPT_STATUS_OK * 8 + 2] > 100 && counts[FASTEPT_STATUS_OK * 8 + 3] > 10,
          "too few translations: 4K %lu, 2M %lu, 1G %lu", counts[8 * 0 + 1], counts[8 * 0 + 2], counts[8 * 0 + 3]);
    for (unsigned level = 1; level <= 2; level++) {
        CHECK(counts[FASTEPT_STATUS_VIOLATION * 8 + level] > 10 && counts[FASTEPT_STATUS_MISCONFIG * 8 + level] > 10,
              "level %u: too few violations (%lu) or misconfigurations (%lu)", level, counts[8 + level], counts[16 + level]);
    }

    /* Five levels: every path walks one at a time. */
    tu_env e5;
    if (tu_env_init(&e5, frames, UINT64_C(1) << 21, 5, 0, CAPS_ALL) != 0) {
        CHECK(0, "env5");
        return;
    }

    populate(&e5, &rng, 100);
    const uint32_t scalar[4] = { FASTEPT_BATCH_SCALAR, FASTEPT_BATCH_SCALAR, FASTEPT_BATCH_SCALAR, FASTEPT_BATCH_SCALAR };
    make_gpas(&rng, gpas, BATCH_N, 0);
    check_paths(&e5, gpas, BATCH_N, scalar, "5 levels", counts);

    /* Unknown paths write nothing. */
    fastept_translation one;
    memset(&one, 0x5A, sizeof(one));
    CHECK(fastept_translate_batch_path(&e5.w, gpas, 1, 1, &one, 4) == UINT32_MAX && one.status == 0x5A, "unknown path");
    tu_env_destroy(&e5);
}

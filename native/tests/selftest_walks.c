/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_walks.c - self-tests of the walks: translate_batch = translate, accessed/dirty
 * flags, get_entry corner cases and corrupted entries.
 */

#include "selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- translate_batch = translate ---------------------------------------------------------------- */

void test_batch(void)
{
    tu_env e;
    if (tu_env_init(&e, (UINT64_C(1) << 18) + 1024, UINT64_C(1) << 18, 4, 0, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    tu_rng rng = { 42 };
    /* A mixed guest in the first 1G: 2M pages, 4K pages, holes, read-only and MMIO pieces. */
    for (int i = 0; i < 300; i++) {
        uint64_t gfn = tu_below(&rng, UINT64_C(1) << 18);
        unsigned kind = (unsigned)tu_below(&rng, 4);
        if (kind == 0) {
            gfn &= ~UINT64_C(511);
            CHECK(tu_set(&e, gfn, gfn, 9, T_RAM_RW, A_RWX, 0, 1, NULL) == FASTEPT_OK, "2M");
        } else if (kind == 1) {
            CHECK(tu_set(&e, gfn, tu_below(&rng, UINT64_C(1) << 18), 0, T_RAM_RO, A_RX, 0, 1, NULL) == FASTEPT_OK, "4K ro");
        } else if (kind == 2) {
            CHECK(tu_set(&e, gfn, gfn + 0x100000, 0, T_MMIO_DIRECT, A_RW, 0, 1, NULL) == FASTEPT_OK, "mmio");
        } else {
            CHECK(tu_set(&e, gfn, TU_INVALID, 0, T_INVALID, A_N, 0, 1, NULL) == FASTEPT_OK, "hole");
        }
    }

    enum { N = 4096 };
    static uint64_t gpas[N];
    static fastept_translation batch[N];
    for (uint32_t access = 1; access <= 7; access++) {
        for (unsigned i = 0; i < N; i++) {
            unsigned k = (unsigned)tu_below(&rng, 16);
            gpas[i] = k == 0 ? tu_next(&rng)                                   /* mostly beyond 48 bits */
                      : k == 1 ? tu_below(&rng, UINT64_C(1) << 48)             /* anywhere */
                               : tu_below(&rng, UINT64_C(1) << 30);            /* the mapped 1G */
        }

        CHECK(fastept_translate_batch(&e.w, gpas, N, access, batch) == N, "batch count");
        unsigned long bad = 0;
        for (unsigned i = 0; i < N; i++) {
            fastept_translation t = fastept_translate(&e.w, gpas[i], access);
            bad += memcmp(&t, &batch[i], sizeof(t)) != 0;
        }

        CHECK(bad == 0, "access %u: %lu batch results differ from translate", access, bad);
    }

    tu_env_destroy(&e);
}

/* ---- Accessed and dirty flags ------------------------------------------------------------------ */

void test_accessed_dirty(void)
{
    tu_env e;
    if (tu_env_init(&e, 1024 + 64, 1024, 4, 1, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    const uint64_t A = 0x100, D = 0x200;
    const uint64_t gfn = 0x10;
    CHECK(tu_set(&e, gfn, 0x20, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map");
    uint64_t *s[5];
    uint64_t t = root_of(&e);
    for (unsigned l = 4; l >= 1; l--) {
        s[l] = tu_slot(&e, t, gfn, l);
        t = (*s[l] & TU_MFN_MASK) >> 12;
    }

    CHECK((*s[4] & A) && (*s[3] & A) && (*s[2] & A), "middle entries have A preset");
    CHECK((*s[1] & (A | D)) == (A | D), "RAM leaf has A and D preset");
    for (unsigned l = 1; l <= 4; l++) {
        *s[l] &= ~(A | D);
    }

    EXPECT_TR(fastept_translate(&e.w, 0x10123, FASTEPT_ACCESS_READ), FASTEPT_STATUS_OK, 1, 0x20123, 0);
    CHECK((*s[4] & A) && (*s[3] & A) && (*s[2] & A), "read sets A on every middle entry");
    CHECK((*s[1] & (A | D)) == A, "read sets A, not D, on the leaf");
    CHECK(!(*s[4] & D) && !(*s[3] & D) && !(*s[2] & D), "no D on middle entries");
    EXPECT_TR(fastept_translate(&e.w, 0x10123, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_OK, 1, 0x20123, 0);
    CHECK((*s[1] & (A | D)) == (A | D), "write sets D on the leaf");

    /* Without EPTP bit 6 nothing is written. */
    fastept_walker plain = e.w;
    plain.eptp &= ~UINT64_C(0x40);
    for (unsigned l = 1; l <= 4; l++) {
        *s[l] &= ~(A | D);
    }

    EXPECT_TR(fastept_translate(&plain, 0x10123, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_OK, 1, 0x20123, 0);
    CHECK(!(*s[4] & A) && !(*s[1] & (A | D)), "A/D written without EPTP bit 6");

    /* A violation sets A on the middle entries it used, never on the leaf. */
    CHECK(tu_set(&e, gfn, 0x20, 0, T_RAM_RW, A_R, 0, 0, NULL) == FASTEPT_OK, "remap r");
    for (unsigned l = 1; l <= 4; l++) {
        *s[l] &= ~(A | D);
    }

    EXPECT_TR(fastept_translate(&e.w, 0x10123, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_VIOLATION, 1, 0, 0x2 | 0x8);
    CHECK((*s[4] & A) && (*s[3] & A) && (*s[2] & A), "violation: middle entries accessed");
    CHECK(!(*s[1] & (A | D)), "violation: leaf untouched");

    /* A misconfigured leaf (memory type 2) is not touched either. */
    uint64_t leaf = (*s[1] & ~UINT64_C(0x38)) | (2 << 3);
    *s[1] = leaf;
    EXPECT_TR(fastept_translate(&e.w, 0x10123, FASTEPT_ACCESS_READ), FASTEPT_STATUS_MISCONFIG, 1, 0, 0);
    CHECK(*s[1] == leaf, "misconfigured leaf changed");

    /* A misconfigured middle entry (bit 3 reserved) stops the walk: entries above are accessed. */
    CHECK(tu_set(&e, gfn, 0x20, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "remap rwx");
    for (unsigned l = 1; l <= 4; l++) {
        *s[l] &= ~(A | D);
    }

    *s[2] |= 0x8;
    uint64_t mid = *s[2];
    EXPECT_TR(fastept_translate(&e.w, 0x10123, FASTEPT_ACCESS_READ), FASTEPT_STATUS_MISCONFIG, 2, 0, 0);
    CHECK((*s[4] & A) && (*s[3] & A) && *s[2] == mid && !(*s[1] & A), "misconfigured middle entry");
    *s[2] &= ~UINT64_C(0x8);

    /* A 2M leaf gets A (and D on a write) too. */
    CHECK(tu_set(&e, 0x200, 0x200, 9, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "2M");
    uint64_t *big = tu_slot(&e, (*s[3] & TU_MFN_MASK) >> 12, 0x200, 2);
    *big &= ~(A | D);
    EXPECT_TR(fastept_translate(&e.w, 0x200123, FASTEPT_ACCESS_EXECUTE), FASTEPT_STATUS_OK, 2, 0x200123, 0);
    CHECK((*big & (A | D)) == A, "2M leaf accessed");
    EXPECT_TR(fastept_translate(&e.w, 0x200123, FASTEPT_ACCESS_WRITE | FASTEPT_ACCESS_READ), FASTEPT_STATUS_OK, 2,
              0x200123, 0);
    CHECK((*big & (A | D)) == (A | D), "2M leaf dirty");

    /* New read-only leaves get A but no D preset; log-dirty 4K leaves with PML stay writable. */
    CHECK(tu_set(&e, 0x11, 0x21, 0, T_RAM_RO, A_RWX, 0, 0, NULL) == FASTEPT_OK, "ro");
    CHECK((*tu_slot(&e, (*s[2] & TU_MFN_MASK) >> 12, 0x11, 1) & (A | D | 7)) == (A | 5), "ro leaf bits");
    e.w.caps |= FASTEPT_CAP_PML;
    CHECK(tu_set(&e, 0x12, 0x22, 0, T_LOGDIRTY, A_RWX, 0, 0, NULL) == FASTEPT_OK, "log-dirty");
    uint64_t *ld = tu_slot(&e, (*s[2] & TU_MFN_MASK) >> 12, 0x12, 1);
    CHECK((*ld & (A | D | 7)) == (A | 7), "log-dirty leaf bits 0x%llx", (unsigned long long)*ld);
    EXPECT_TR(fastept_translate(&e.w, 0x12008, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_OK, 1, 0x22008, 0);
    CHECK((*ld & D) != 0, "log-dirty leaf dirtied by a write");
    tu_env_destroy(&e);
}

/* ---- get_entry corner cases and corrupted entries ----------------------------------------------- */

void test_get_entry_corners(void)
{
    tu_env e;
    if (tu_env_init(&e, 1024 + 64, 1024, 4, 0, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    const uint64_t root = root_of(&e);
    CHECK(tu_set(&e, 0x1000, 0x5, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "map");
    CHECK(e.w.max_mapped_pfn == 0x1000, "max_mapped_pfn");
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1001), 0);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1200), 9);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x40000), 18);
    EXPECT_HOLE(fastept_get_entry(&e.w, UINT64_C(1) << 27), 27);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0xFFF), 9);      /* walked: an empty PDE */
    e.w.max_mapped_pfn = UINT64_MAX;
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1001), 0);     /* walked: an empty PTE */
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1200), 9);
    EXPECT_HOLE(fastept_get_entry(&e.w, UINT64_C(1) << 27), 27);

    uint64_t t = root;
    uint64_t *s[5];
    for (unsigned l = 4; l >= 1; l--) {
        s[l] = tu_slot(&e, t, 0x1000, l);
        t = (*s[l] & TU_MFN_MASK) >> 12;
    }

    const uint64_t leaf = *s[1];
    /* PoD: no frame, access n, its own suppress-#VE bit. */
    *s[1] = (UINT64_C(6) << 52) | (UINT64_C(7) << 59) | (UINT64_C(0x77) << 12);
    EXPECT_ENTRY(fastept_get_entry(&e.w, 0x1000), TU_INVALID, T_POD, A_N, 0, 1, 0);
    /* All-ones frame field: no frame. */
    *s[1] = leaf | TU_MFN_MASK;
    EXPECT_ENTRY(fastept_get_entry(&e.w, 0x1000), TU_INVALID, T_RAM_RW, A_RWX, 1, 1, 0);
    /* Type or access outside the enums: a hole. */
    *s[1] = (leaf & ~(UINT64_C(0x3F) << 52)) | (UINT64_C(20) << 52);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 0);
    *s[1] = (leaf & ~(UINT64_C(0xF) << 59)) | (UINT64_C(12) << 59);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 0);
    /* Type invalid, or only suppress-#VE: holes. */
    *s[1] = (leaf & ~(UINT64_C(0x3F) << 52)) | (UINT64_C(1) << 52);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 0);
    *s[1] = UINT64_C(1) << 63;
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 0);
    *s[1] = leaf;

    /* A table pointer outside host memory: a hole for get_entry, a misconfiguration for translate. */
    const uint64_t mid = *s[2];
    *s[2] = (mid & ~TU_MFN_MASK) | (e.frames << 12);
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 9);
    EXPECT_TR(fastept_translate(&e.w, 0x1000000, FASTEPT_ACCESS_READ), FASTEPT_STATUS_MISCONFIG, 2, 0, 0);
    /* ... and set_entry does not follow it: it builds a new leaf table in its place. */
    fastept_set_result r;
    CHECK(tu_set(&e, 0x1000, 0x6, 0, T_RAM_RW, A_RWX, 0, 0, &r) == FASTEPT_OK && r.frames_used == 1
          && r.retired_table == TU_INVALID, "set over a pointer outside host memory");
    EXPECT_ENTRY(fastept_get_entry(&e.w, 0x1000), 0x6, T_RAM_RW, A_RWX, 1, 1, 0);

    /* Bit 7 in a PML4E: never a leaf. */
    const uint64_t top = *s[4];
    *s[4] = top | 0x80;
    EXPECT_HOLE(fastept_get_entry(&e.w, 0x1000), 27);
    EXPECT_TR(fastept_translate(&e.w, 0x1000000, FASTEPT_ACCESS_READ), FASTEPT_STATUS_MISCONFIG, 4, 0, 0);
    *s[4] = top;

    /* A collect over a corrupted level-2 table that names one leaf table twice lists it once. */
    uint64_t l2 = (*s[3] & TU_MFN_MASK) >> 12;
    uint64_t *l2slots = (uint64_t *)(void *)(e.base + (l2 << 12));
    uint64_t saved = l2slots[100];
    l2slots[100] = *tu_slot(&e, l2, 0x1000, 2);
    uint64_t list[8];
    CHECK(fastept_collect_tables(&e.w, l2, 2, list, 8) == 2, "duplicate pointer listed once");
    l2slots[100] = saved;
    tu_env_destroy(&e);
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_tables.c - self-tests of table building: chains, splits, merges and retired
 * subtrees, PoD accounting, suppress-#VE, memory types, five levels.
 */

#include "selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Chains, splits, merges -------------------------------------------------------------------- */

void test_chains_and_splits(void)
{
    tu_env e;
    if (tu_env_init(&e, (UINT64_C(1) << 19) + 2048, UINT64_C(1) << 19, 4, 0, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    const uint64_t root = root_of(&e);
    fastept_set_result r;

    /* A 1G page where nothing is mapped: one new table (the PDPT) linked from the root. */
    CHECK(tu_set(&e, G1, G1, 18, T_RAM_RW, A_RWX, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "1G");
    CHECK(r.frames_used == 1 && r.retired_table == TU_INVALID && r.pod_delta == 0, "1G: used %u", r.frames_used);
    CHECK(e.w.max_mapped_pfn == UINT64_C(0x7FFFF), "max_mapped_pfn 0x%llx", (unsigned long long)e.w.max_mapped_pfn);
    uint64_t l3 = root + 1;
    CHECK(*tu_slot(&e, root, G1, 4) == (UINT64_C(0xB800000000000007) | (l3 << 12)), "root middle entry 0x%llx",
          (unsigned long long)*tu_slot(&e, root, G1, 4));
    CHECK(*tu_slot(&e, l3, G1, 3) == UINT64_C(0xB8000000400000F7), "1G leaf 0x%llx",
          (unsigned long long)*tu_slot(&e, l3, G1, 3));
    CHECK(*tu_slot(&e, l3, G1 + (UINT64_C(1) << 18), 3) == UINT64_C(0x8000000000000000), "empty slot of a new table");
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x12345), G1 + 0x12345, T_RAM_RW, A_RWX, 1, 1, 18);
    EXPECT_TR(fastept_translate(&e.w, 0x41234567, FASTEPT_ACCESS_WRITE | FASTEPT_ACCESS_EXECUTE),
              FASTEPT_STATUS_OK, 3, 0x41234567, 0);

    /* A 2M page inside it: the 1G page is split into 512 2M pages (one table). */
    CHECK(tu_set(&e, G1 + 0x600, 0x1000, 9, T_RAM_RO, A_RWX, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "2M in 1G");
    CHECK(r.frames_used == 1 && r.retired_table == TU_INVALID, "2M in 1G: used %u", r.frames_used);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x607), 0x1007, T_RAM_RO, A_RWX, 1, 1, 9);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x201), G1 + 0x201, T_RAM_RW, A_RWX, 1, 1, 9);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x3FFFF), G1 + 0x3FFFF, T_RAM_RW, A_RWX, 1, 1, 9);
    EXPECT_TR(fastept_translate(&e.w, 0x40600000 + 0x1234, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_VIOLATION, 2, 0, 0x2A);
    EXPECT_TR(fastept_translate(&e.w, 0x40600000 + 0x1234, FASTEPT_ACCESS_READ), FASTEPT_STATUS_OK, 2, 0x1001234, 0);
    EXPECT_TR(fastept_translate(&e.w, 0x7FFFFFFF, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_OK, 2, 0x7FFFFFFF, 0);

    /* A 4K page inside a 2M child: the child is split into 512 4K pages (one table). */
    CHECK(tu_set(&e, G1 + 0xA07, 0x777, 0, T_RAM_RW, A_RWX, FASTEPT_SVE_SET, 0, &r) == FASTEPT_OK, "4K in 2M");
    CHECK(r.frames_used == 1, "4K in 2M: used %u", r.frames_used);
    uint64_t l1_a = root + 3;
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0xA07), 0x777, T_RAM_RW, A_RWX, 1, 1, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0xA08), G1 + 0xA08, T_RAM_RW, A_RWX, 1, 1, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0xBFF), G1 + 0xBFF, T_RAM_RW, A_RWX, 1, 1, 0);
    EXPECT_TR(fastept_translate(&e.w, ((G1 + 0xA07) << 12) | 0xABC, FASTEPT_ACCESS_READ), FASTEPT_STATUS_OK, 1, 0x777ABC, 0);
    /* Split children as raw words: the parent's fields, their own frame, bit 7 only above level 1. */
    uint64_t l2 = root + 2;
    CHECK(*tu_slot(&e, l2, G1 + 0x201, 2) == UINT64_C(0xB8000000402000F7), "2M child 0x%llx",
          (unsigned long long)*tu_slot(&e, l2, G1 + 0x201, 2));
    CHECK(*tu_slot(&e, l1_a, G1 + 0xA08, 1) == UINT64_C(0xB800000040A08077), "4K child 0x%llx",
          (unsigned long long)*tu_slot(&e, l1_a, G1 + 0xA08, 1));

    /* A 4K page inside a fresh 1G page: split all the way down, 1 + 512 tables. */
    const uint64_t g2 = 2 * G1;
    CHECK(tu_set(&e, g2, 0, 18, T_RAM_RW, A_RWX, FASTEPT_SVE_CLEAR, 0, &r) == FASTEPT_OK && r.frames_used == 0, "1G #2");
    CHECK(tu_set(&e, g2 + 0x12345, 0x5, 0, T_RAM_RW, A_RX, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "4K in 1G");
    CHECK(r.frames_used == 513, "4K in 1G: used %u", r.frames_used);
    unsigned long bad = 0;
    for (uint64_t g = g2; g < g2 + (UINT64_C(1) << 18); g++) {
        fastept_entry x = fastept_get_entry(&e.w, g);
        int want_rx = g == g2 + 0x12345;
        uint64_t mfn = want_rx ? 0x5 : g - g2;
        if (x.mfn != mfn || x.order != 0 || x.type != T_RAM_RW || x.access != (want_rx ? A_RX : A_RWX)
            || x.suppress_ve != 0 || !x.is_mapped) {
            bad++;
        }
    }

    CHECK(bad == 0, "%lu GFNs of the split 1G page read wrong", bad);
    EXPECT_TR(fastept_translate(&e.w, ((g2 + 0x12345) << 12) | 1, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_VIOLATION, 1, 0,
              0x2 | (0x5 << 3));
    EXPECT_TR(fastept_translate(&e.w, ((g2 + 0x3FFFF) << 12) | 1, FASTEPT_ACCESS_WRITE), FASTEPT_STATUS_OK, 1,
              (UINT64_C(0x3FFFF) << 12) | 1, 0);
    uint64_t live = tu_live_tables(&e);
    CHECK(live == 1 + 1 + 1 + 1 + 513, "live tables %llu", (unsigned long long)live);

    /* Merging back: a 2M page over the 4K table retires it (level 1), a 1G page over the split
       1G retires 513 tables (level 2). */
    CHECK(tu_set(&e, G1 + 0xA00, G1 + 0xA00, 9, T_RAM_RW, A_RWX, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "2M merge");
    CHECK(r.retired_table == l1_a && r.retired_level == 1 && r.frames_used == 0, "2M merge retired %llu/%u",
          (unsigned long long)r.retired_table, r.retired_level);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0xA07), G1 + 0xA07, T_RAM_RW, A_RWX, 1, 1, 9);
    uint64_t list[600];
    CHECK(fastept_collect_tables(&e.w, r.retired_table, r.retired_level, list, 600) == 1 && list[0] == l1_a, "collect 4K table");
    tu_reclaim(&e, r.retired_table, r.retired_level);

    CHECK(tu_set(&e, g2, 0, 18, T_RAM_RW, A_RWX, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "1G merge");
    CHECK(r.retired_level == 2, "1G merge retired level %u", r.retired_level);
    uint64_t n = fastept_collect_tables(&e.w, r.retired_table, 2, list, 600);
    CHECK(n == 513 && list[0] == r.retired_table, "collect 513 tables: %llu", (unsigned long long)n);
    uint64_t small[4];
    CHECK(fastept_collect_tables(&e.w, r.retired_table, 2, small, 4) == 513, "collect with a small buffer");
    CHECK(memcmp(small, list, sizeof(small)) == 0, "small buffer holds the first frames");
    EXPECT_ENTRY(fastept_get_entry(&e.w, g2 + 0x12345), 0x12345, T_RAM_RW, A_RWX, 1, 1, 18);
    tu_reclaim(&e, r.retired_table, r.retired_level);
    CHECK(tu_live_tables(&e) == 3 && tu_live_tables(&e) + e.free_count == e.table_total, "tables leaked");

    /* A removal inside a superpage splits it; the rest keeps its mapping. */
    CHECK(tu_set(&e, G1 + 0xC01, TU_INVALID, 0, T_INVALID, A_N, FASTEPT_SVE_INHERIT, 0, &r) == FASTEPT_OK, "removal");
    CHECK(r.frames_used == 1, "removal split: used %u", r.frames_used);
    EXPECT_HOLE(fastept_get_entry(&e.w, G1 + 0xC01), 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0xC02), G1 + 0xC02, T_RAM_RW, A_RWX, 1, 1, 0);
    EXPECT_TR(fastept_translate(&e.w, (G1 + 0xC01) << 12, FASTEPT_ACCESS_READ), FASTEPT_STATUS_VIOLATION, 1, 0, 1);

    /* A removal where nothing is mapped builds nothing and leaves max_mapped_pfn alone. */
    uint64_t max = e.w.max_mapped_pfn;
    live = tu_live_tables(&e);
    CHECK(tu_set(&e, UINT64_C(1) << 27, TU_INVALID, 0, T_INVALID, A_N, 0, 0, &r) == FASTEPT_OK && r.frames_used == 0,
          "removal of nothing");
    CHECK(tu_set(&e, UINT64_C(1) << 27, TU_INVALID, 9, T_MMIO_DM, A_RWX, 0, 0, &r) == FASTEPT_OK && r.frames_used == 0,
          "mmio_dm without a frame where nothing is mapped");
    CHECK(tu_live_tables(&e) == live && e.w.max_mapped_pfn == max, "removal of nothing changed the tree");

    /* Suppress-#VE: a 4K page split from a 2M page with the bit clear inherits 0 (FastEpt fix). */
    CHECK(tu_set(&e, G1 + 0x1000, G1 + 0x1000, 9, T_RAM_RW, A_RWX, FASTEPT_SVE_CLEAR, 0, NULL) == FASTEPT_OK, "sve 2M");
    CHECK(tu_set(&e, G1 + 0x1005, 0x10, 0, T_RAM_RW, A_RWX, FASTEPT_SVE_INHERIT, 0, NULL) == FASTEPT_OK, "sve 4K");
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x1005), 0x10, T_RAM_RW, A_RWX, 0, 1, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x1006), G1 + 0x1006, T_RAM_RW, A_RWX, 0, 1, 0);
    CHECK(tu_set(&e, G1 + 0x1006, 0x10, 0, T_RAM_RW, A_RWX, FASTEPT_SVE_SET, 0, NULL) == FASTEPT_OK, "sve set");
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x1006), 0x10, T_RAM_RW, A_RWX, 1, 1, 0);

    /* PoD accounting. */
    CHECK(tu_set(&e, G1 + 0x1200, TU_INVALID, 9, T_POD, A_N, 0, 0, &r) == FASTEPT_OK && r.pod_delta == 512,
          "PoD 2M delta %lld", (long long)r.pod_delta);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x1203), TU_INVALID, T_POD, A_N, 1, 1, 9);
    EXPECT_TR(fastept_translate(&e.w, (G1 + 0x1203) << 12, FASTEPT_ACCESS_READ), FASTEPT_STATUS_VIOLATION, 2, 0, 1);
    CHECK(tu_set(&e, G1 + 0x1203, 0x99, 0, T_RAM_RW, A_RWX, 0, 0, &r) == FASTEPT_OK && r.pod_delta == -1,
          "populate one 4K of a PoD 2M: delta %lld", (long long)r.pod_delta);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x1204), TU_INVALID, T_POD, A_N, 1, 1, 0);
    CHECK(tu_set(&e, G1 + 0x1200, TU_INVALID, 9, T_POD, A_N, 0, 1, &r) == FASTEPT_OK && r.pod_delta == 1,
          "PoD 2M over 511 PoD 4K: delta %lld", (long long)r.pod_delta);
    CHECK(tu_set(&e, G1 + 0x1200, TU_INVALID, 9, T_POD, A_N, 0, 1, &r) == FASTEPT_OK && r.pod_delta == 0,
          "same PoD again: delta %lld", (long long)r.pod_delta);
    CHECK(tu_set(&e, G1 + 0x1200, TU_INVALID, 9, T_INVALID, A_N, 0, 1, &r) == FASTEPT_OK && r.pod_delta == -512,
          "PoD removed: delta %lld", (long long)r.pod_delta);

    /* Memory types: RAM write-back with PAT ignored, pass-through MMIO uncacheable. */
    CHECK(tu_set(&e, G1 + 0x2000, 0x123, 0, T_MMIO_DIRECT, A_RWX, 0, 0, NULL) == FASTEPT_OK, "mmio");
    CHECK(tu_set(&e, G1 + 0x2001, 0x124, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "ram");
    CHECK(tu_set(&e, G1 + 0x2002, 0x125, 0, T_MMIO_DM, A_RWX, 0, 0, NULL) == FASTEPT_OK, "mmio_dm with a frame");
    CHECK(tu_set(&e, G1 + 0x2003, TU_INVALID, 0, T_PAGED, A_RWX, 0, 0, NULL) == FASTEPT_OK, "paged");
    fastept_entry pe = fastept_get_entry(&e.w, G1 + 0x2000);
    CHECK(pe.type == T_MMIO_DIRECT && pe.order == 0, "mmio entry");
    {
        /* Find the leaf table through the raw tree. */
        uint64_t t = root;
        for (unsigned l = 4; l > 1; l--) {
            t = (*tu_slot(&e, t, G1 + 0x2000, l) & TU_MFN_MASK) >> 12;
        }

        CHECK((*tu_slot(&e, t, G1 + 0x2000, 1) & 0x7F) == 0x07, "mmio leaf low bits 0x%llx",
              (unsigned long long)*tu_slot(&e, t, G1 + 0x2000, 1));
        CHECK((*tu_slot(&e, t, G1 + 0x2001, 1) & 0x7F) == 0x77, "ram leaf low bits");
        CHECK(*tu_slot(&e, t, G1 + 0x2002, 1) == (UINT64_C(0xB840000000125000)), "mmio_dm leaf 0x%llx",
              (unsigned long long)*tu_slot(&e, t, G1 + 0x2002, 1));
    }

    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x2002), 0x125, T_MMIO_DM, A_RWX, 1, 1, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, G1 + 0x2003), TU_INVALID, T_PAGED, A_RWX, 1, 1, 0);
    EXPECT_TR(fastept_translate(&e.w, (G1 + 0x2002) << 12, FASTEPT_ACCESS_READ), FASTEPT_STATUS_VIOLATION, 1, 0, 1);
    CHECK(tu_live_tables(&e) + e.free_count == e.table_total, "tables leaked");
    tu_env_destroy(&e);
}

/* Five levels: a chain of four new tables; hole orders up to 36. */
void test_five_levels(void)
{
    tu_env e;
    if (tu_env_init(&e, 1024 + 64, 1024, 5, 0, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    const uint64_t gfn = UINT64_C(1) << 40;
    fastept_set_result r;
    CHECK(tu_set(&e, gfn, 5, 0, T_RAM_RW, A_RWX, 0, 0, &r) == FASTEPT_OK && r.frames_used == 4, "5-level chain");
    EXPECT_TR(fastept_translate(&e.w, (gfn << 12) | 0x123, FASTEPT_ACCESS_READ), FASTEPT_STATUS_OK, 1, 0x5123, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, gfn), 5, T_RAM_RW, A_RWX, 1, 1, 0);
    EXPECT_HOLE(fastept_get_entry(&e.w, gfn + (UINT64_C(1) << 36)), 36);
    EXPECT_HOLE(fastept_get_entry(&e.w, gfn - 1), 36);
    EXPECT_HOLE(fastept_get_entry(&e.w, gfn + 1), 0);
    EXPECT_HOLE(fastept_get_entry(&e.w, UINT64_C(1) << 45), -1);
    EXPECT_TR(fastept_translate(&e.w, 0x1000, FASTEPT_ACCESS_READ), FASTEPT_STATUS_VIOLATION, 5, 0, 1);
    EXPECT_TR(fastept_translate(&e.w, UINT64_C(1) << 57, FASTEPT_ACCESS_READ), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    tu_env_destroy(&e);
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest.c - deterministic self-tests: walker checks, bad arguments, every set_entry error
 * code, chains and splits, merges and retired subtrees, PoD accounting, suppress-#VE, memory
 * types, pool exhaustion, batch = single, accessed/dirty flags, get_entry corner cases.
 */

#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS */

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CAPS_ALL (FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES)
#define G1 UINT64_C(0x40000) /* a 1 GiB-aligned GFN */

static void expect_entry(const char *file, int line, fastept_entry got, uint64_t mfn, unsigned type, unsigned access,
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

static void expect_tr(const char *file, int line, fastept_translation t, unsigned status, unsigned level,
                      uint64_t hpa, uint32_t qual)
{
    if (t.status != status || t.level != level || t.hpa != hpa || t.qualification != qual || t.reserved[0] != 0
        || t.reserved[1] != 0) {
        tu_fail(file, line, "translation status %u level %u hpa 0x%llx qual 0x%x, expected %u %u 0x%llx 0x%x",
                t.status, t.level, (unsigned long long)t.hpa, t.qualification, status, level,
                (unsigned long long)hpa, qual);
    }
}

#define EXPECT_ENTRY(got, ...) expect_entry(__FILE__, __LINE__, (got), __VA_ARGS__)
#define EXPECT_HOLE(got, order) expect_entry(__FILE__, __LINE__, (got), TU_INVALID, T_MMIO_DM, A_N, 1, 0, (order))
#define EXPECT_TR(got, ...) expect_tr(__FILE__, __LINE__, (got), __VA_ARGS__)

static uint64_t root_of(const tu_env *e)
{
    return (e->w.eptp & TU_MFN_MASK) >> 12;
}

/* ---- Walker checks and bad arguments ---------------------------------------------------------- */

static void test_walker_check(void)
{
    CHECK(fastept_make_eptp(0x1234, 4, 0) == UINT64_C(0x123401E), "eptp 0x%llx",
          (unsigned long long)fastept_make_eptp(0x1234, 4, 0));
    CHECK(fastept_make_eptp(7, 5, 1) == UINT64_C(0x7066), "eptp with A/D");

    uint64_t *mem = aligned_alloc(4096, 4 << 12);
    CHECK(mem != NULL, "aligned_alloc");
    if (mem == NULL) {
        return;
    }

    memset(mem, 0, 4 << 12);
    fastept_walker good = { (uint8_t *)mem, 4, fastept_make_eptp(1, 4, 0), 0, 48, 46, CAPS_ALL, A_RWX };
    CHECK(fastept_walker_check(&good) == FASTEPT_OK, "good walker refused");
    CHECK(fastept_walker_check(NULL) == FASTEPT_ERR_RANGE, "NULL walker");

    fastept_walker w;
    w = good; w.host_base = NULL;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "NULL base");
    w = good; w.host_base = (uint8_t *)mem + 4;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "misaligned base");
    w = good; w.eptp = fastept_make_eptp(1, 3, 0);
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "3 levels");
    w = good; w.eptp = fastept_make_eptp(1, 6, 0);
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "6 levels");
    w = good; w.eptp = fastept_make_eptp(4, 4, 0);
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "root outside host memory");
    w = good; w.address_bits = 20;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "20 address bits");
    w = good; w.address_bits = 49;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "49 address bits with 4 levels");
    w = good; w.address_bits = 57; w.eptp = fastept_make_eptp(1, 5, 0);
    CHECK(fastept_walker_check(&w) == FASTEPT_OK, "57 address bits with 5 levels");
    w = good; w.host_address_bits = 31;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "MAXPHYADDR 31");
    w = good; w.host_address_bits = 53;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "MAXPHYADDR 53");
    w = good; w.caps = 64;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "unknown capability");
    w = good; w.default_access = 11;
    CHECK(fastept_walker_check(&w) == FASTEPT_ERR_RANGE, "default access 11");
    free(mem);
}

/* Bad arguments return at once: the walker points at inaccessible memory to prove nothing is read. */
static void test_bad_arguments(void)
{
    size_t bytes = 16 << 12;
    uint8_t *none = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(none != MAP_FAILED, "mmap");
    if (none == MAP_FAILED) {
        return;
    }

    fastept_walker w = { none, 16, fastept_make_eptp(0, 4, 1), UINT64_MAX, 40, 46, CAPS_ALL, A_RWX };
    fastept_translation t;
    t = fastept_translate(&w, UINT64_C(1) << 40, FASTEPT_ACCESS_READ);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    t = fastept_translate(&w, 0x1000, 0);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    t = fastept_translate(&w, 0x1000, 8);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    t = fastept_translate(NULL, 0x1000, 1);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    fastept_walker bad = w;
    bad.eptp = fastept_make_eptp(16, 4, 0);
    t = fastept_translate(&bad, 0x1000, 1);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    bad.eptp = fastept_make_eptp(0, 3, 0);
    t = fastept_translate(&bad, 0x1000, 1);
    EXPECT_TR(t, FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);

    EXPECT_HOLE(fastept_get_entry(&w, UINT64_C(1) << 28), -1);
    EXPECT_HOLE(fastept_get_entry(NULL, 0), -1);
    bad = w;
    bad.host_frames = 0;
    EXPECT_HOLE(fastept_get_entry(&bad, 0), -1);

    uint64_t gpas[3] = { 0x1000, UINT64_C(1) << 40, 0x2000 };
    fastept_translation res[3];
    memset(res, 0xAB, sizeof(res));
    CHECK(fastept_translate_batch(&w, gpas, 3, 0, res) == 3, "batch with access 0 returns count");
    for (int i = 0; i < 3; i++) {
        EXPECT_TR(res[i], FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    }

    CHECK(fastept_translate_batch(&w, NULL, 3, 1, res) == 0, "batch without GPAs");
    CHECK(fastept_translate_batch(&w, gpas, 3, 1, NULL) == 0, "batch without results");
    CHECK(fastept_translate_batch(&w, gpas, 0, 1, res) == 0, "empty batch");
    CHECK(fastept_collect_tables(&w, 0, 0, NULL, 0) == 0, "collect level 0");
    CHECK(fastept_collect_tables(&w, 0, 5, NULL, 0) == 0, "collect level 5 on 4 levels");
    CHECK(fastept_collect_tables(&w, 16, 1, NULL, 0) == 0, "collect outside host memory");
    munmap(none, bytes);
}

/* ---- set_entry errors ------------------------------------------------------------------------- */

struct snapshot {
    uint8_t *tables;
    uint64_t max_mapped;
};

static void snap_take(const tu_env *e, struct snapshot *s)
{
    size_t n = (size_t)e->table_total << 12;
    s->tables = malloc(n);
    if (s->tables != NULL) {
        memcpy(s->tables, e->base + (e->table_first << 12), n);
    }

    s->max_mapped = e->w.max_mapped_pfn;
}

static int snap_same(const tu_env *e, const struct snapshot *s)
{
    return s->tables != NULL && memcmp(s->tables, e->base + (e->table_first << 12), (size_t)e->table_total << 12) == 0
           && s->max_mapped == e->w.max_mapped_pfn;
}

static void snap_free(struct snapshot *s)
{
    free(s->tables);
    s->tables = NULL;
}

struct set_case {
    uint64_t gfn, mfn;
    uint32_t order, type, access, sve;
    int32_t rc;
    const char *what;
};

static void test_set_errors(void)
{
    tu_env e;
    /* 2048 frames of RAM, 64 table frames above; no execute-only, no executable superpages. */
    if (tu_env_init(&e, 2048 + 64, 2048, 4, 0, FASTEPT_CAP_1G) != 0) {
        CHECK(0, "env");
        return;
    }

    CHECK(tu_set(&e, 0x200, 0x200, 9, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "seed mapping");
    const uint64_t host_limit = UINT64_C(1) << (46 - 12);
    const struct set_case cases[] = {
        { 0, 0, 1, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, "order 1" },
        { 0, 0, 27, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, "order 27" },
        { 0, 0, 0, 16, A_RWX, 0, FASTEPT_ERR_RANGE, "type 16" },
        { 0, 0, 0, T_RAM_RW, 11, 0, FASTEPT_ERR_RANGE, "access 11" },
        { 0, 0, 0, T_RAM_RW, A_RWX, 3, FASTEPT_ERR_RANGE, "suppress-#VE mode 3" },
        { UINT64_C(1) << 36, 0, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, "GFN beyond 48 bits" },
        { 0x201, 0x200, 9, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_ALIGN, "misaligned GFN" },
        { 0x201, 0x200, 9, T_FOREIGN, A_RWX, 0, FASTEPT_ERR_ALIGN, "misaligned GFN before 2M foreign" },
        { 0x200, 0x200, 9, T_FOREIGN, A_RWX, 0, FASTEPT_ERR_RANGE, "2M foreign mapping" },
        { 0x5, TU_INVALID, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, "RAM without a frame" },
        { 0x5, TU_INVALID, 0, T_GRANT_RO, A_R, 0, FASTEPT_ERR_RANGE, "grant without a frame" },
        { 0x5, TU_INVALID, 0, T_FOREIGN, A_R, 0, FASTEPT_ERR_RANGE, "foreign without a frame" },
        { 0x5, TU_INVALID, 0, T_BROKEN, A_R, 0, FASTEPT_ERR_RANGE, "broken without a frame" },
        { 0x200, 0x201, 9, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_ALIGN, "misaligned MFN" },
        { 0x200, 0x201, 9, T_POD, A_N, 0, FASTEPT_ERR_ALIGN, "misaligned MFN before PoD-with-frame" },
        { 0x5, 0x5, 0, T_POD, A_N, 0, FASTEPT_ERR_RANGE, "PoD with a frame" },
        { 0x5, 2112, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, "RAM frame outside host memory" },
        { 0x200, 1536 + 512, 9, T_RAM_RO, A_RWX, 0, FASTEPT_ERR_RANGE, "2M RAM running past host memory" },
        { 0x5, host_limit, 0, T_MMIO_DIRECT, A_RWX, 0, FASTEPT_ERR_RANGE, "MMIO frame beyond MAXPHYADDR" },
        { 0x5, host_limit, 0, T_MMIO_DM, A_RWX, 0, FASTEPT_ERR_RANGE, "mmio_dm frame beyond MAXPHYADDR" },
        { 0x5, host_limit, 0, T_INVALID, A_RWX, 0, FASTEPT_ERR_RANGE, "removal frame beyond MAXPHYADDR" },
        { 0x5, 0x5, 0, T_RAM_RW, A_W, 0, FASTEPT_ERR_PERMISSION, "RAM with w" },
        { 0x5, 0x5, 0, T_RAM_RW, A_WX, 0, FASTEPT_ERR_PERMISSION, "RAM with wx" },
        { 0x5, 0x5, 0, T_GRANT_RO, A_W, 0, FASTEPT_ERR_PERMISSION, "grant_ro with w (readable type)" },
        { 0x5, 0x5, 0, T_RAM_RW, A_X, 0, FASTEPT_ERR_PERMISSION, "execute-only without the capability" },
        { 0x5, 0x5, 0, T_MMIO_DIRECT, A_X, 0, FASTEPT_ERR_PERMISSION, "execute-only MMIO" },
        { 0x5, 0x5, 0, T_RAM_RW, 16, 16, FASTEPT_ERR_RANGE, "several errors: the first (range) wins" },
    };

    struct snapshot s;
    snap_take(&e, &s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct set_case *c = &cases[i];
        fastept_set_result r;
        int32_t rc = tu_set(&e, c->gfn, c->mfn, c->order, c->type, c->access, c->sve, 0, &r);
        CHECK(rc == c->rc, "%s: rc %d, expected %d", c->what, rc, c->rc);
        CHECK(r.retired_table == TU_INVALID && r.retired_level == 0 && r.frames_used == 0 && r.pod_delta == 0,
              "%s: result not reset", c->what);
        CHECK(snap_same(&e, &s), "%s: memory or max_mapped_pfn changed", c->what);
    }

    /* 1G needs the capability. */
    uint32_t caps = e.w.caps;
    e.w.caps = 0;
    CHECK(tu_set(&e, 0, 0, 18, T_MMIO_DIRECT, A_RWX, 0, 0, NULL) == FASTEPT_ERR_RANGE, "1G without the capability");
    e.w.caps = caps;

    /* A walker the check refuses, a NULL pool with a count. */
    e.w.default_access = 11;
    CHECK(tu_set(&e, 0x5, 0x5, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_ERR_RANGE, "bad walker");
    e.w.default_access = A_RWX;
    CHECK(fastept_set_entry(&e.w, NULL, 3, 0x5, 0x5, 0, T_RAM_RW, A_RWX, 0, NULL) == FASTEPT_ERR_RANGE, "NULL pool");

    /* A new chain needs 3 tables: too few frames, or one outside host memory, changes nothing. */
    uint64_t far = UINT64_C(1) << 27;   /* another 512 GiB slot of the root */
    uint64_t pool[3] = { e.free_stack[e.free_count - 1], e.free_stack[e.free_count - 2], 2112 };
    fastept_set_result r;
    CHECK(fastept_set_entry(&e.w, pool, 2, far, 0x7, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_ERR_NO_FRAMES, "2 of 3 frames");
    CHECK(r.frames_used == 0, "frames_used after NO_FRAMES");
    CHECK(snap_same(&e, &s), "NO_FRAMES changed memory or max_mapped_pfn");
    CHECK(fastept_set_entry(&e.w, pool, 3, far, 0x7, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_ERR_RANGE, "pool frame outside");
    CHECK(snap_same(&e, &s), "a bad pool frame changed memory or max_mapped_pfn");
    CHECK(fastept_set_entry(&e.w, NULL, 0, far, 0x7, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_ERR_NO_FRAMES, "empty pool");
    CHECK(snap_same(&e, &s), "an empty pool changed memory or max_mapped_pfn");
    snap_free(&s);

    /* Accepted edge cases. */
    CHECK(tu_set(&e, 0x5, host_limit - 1, 0, T_MMIO_DIRECT, A_RWX, 0, 0, NULL) == FASTEPT_OK, "MMIO below MAXPHYADDR");
    CHECK(tu_set(&e, 0x6, 2111, 0, T_RAM_RW, A_RWX, 0, 0, NULL) == FASTEPT_OK, "last host frame");
    CHECK(tu_set(&e, 0x7, TU_INVALID, 0, T_POD, A_W, 0, 0, NULL) == FASTEPT_OK, "PoD with w (not readable)");
    CHECK(tu_set(&e, 0x400, 0x400, 9, T_RAM_RW, A_X, 0, 0, NULL) == FASTEPT_OK,
          "2M with x loses x without executable superpages: not execute-only");
    CHECK(tu_set(&e, 0x8, TU_INVALID, 0, T_PAGED, A_RWX, 0, 0, NULL) == FASTEPT_OK, "paged without a frame");
    CHECK(tu_set(&e, 0x9, TU_INVALID, 0, T_MMIO_DIRECT, A_RWX, 0, 0, NULL) == FASTEPT_OK, "mmio_direct without a frame");
    /* Replacing a leaf in place needs no frame at all. */
    CHECK(fastept_set_entry(&e.w, NULL, 0, 0x200, 0x200, 9, T_RAM_RO, A_RWX, 0, &r) == FASTEPT_OK && r.frames_used == 0,
          "in-place replacement with an empty pool");
    e.w.caps |= FASTEPT_CAP_EXECUTE_ONLY;
    CHECK(tu_set(&e, 0xA, 0xA, 0, T_RAM_RW, A_X, 0, 0, NULL) == FASTEPT_OK, "execute-only with the capability");
    EXPECT_TR(fastept_translate(&e.w, 0xA123, FASTEPT_ACCESS_EXECUTE), FASTEPT_STATUS_OK, 1, 0xA123, 0);
    tu_env_destroy(&e);
}

/* ---- Chains, splits, merges -------------------------------------------------------------------- */

static void test_chains_and_splits(void)
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
static void test_five_levels(void)
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

/* Pool exhaustion: a 1G split needs 513 frames; 512 leave memory byte-identical. */
static void test_pool_exhaustion(void)
{
    tu_env e;
    if (tu_env_init(&e, (UINT64_C(1) << 18) + 1024, UINT64_C(1) << 18, 4, 1, CAPS_ALL) != 0) {
        CHECK(0, "env");
        return;
    }

    CHECK(tu_set(&e, 0, 0, 18, T_POD, A_N, 0, 0, NULL) == FASTEPT_ERR_RANGE, "PoD 1G with a frame");
    CHECK(tu_set(&e, 0, TU_INVALID, 18, T_POD, A_N, 0, 0, NULL) == FASTEPT_OK, "PoD 1G");
    e.w.max_mapped_pfn = 0x100;    /* lowered by hand, so a raise and its undo are visible */
    struct snapshot s;
    snap_take(&e, &s);
    uint64_t pool[513];
    for (unsigned i = 0; i < 513; i++) {
        pool[i] = e.free_stack[e.free_count - 1 - i];
    }

    fastept_set_result r;
    CHECK(fastept_set_entry(&e.w, pool, 512, 0x3FFFF, 0x10, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_ERR_NO_FRAMES,
          "512 frames for a 1G split");
    CHECK(r.frames_used == 0 && r.pod_delta == 0 && r.retired_table == TU_INVALID, "result after NO_FRAMES");
    CHECK(snap_same(&e, &s), "NO_FRAMES left a trace");
    pool[512] = e.frames;
    CHECK(fastept_set_entry(&e.w, pool, 513, 0x3FFFF, 0x10, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_ERR_RANGE,
          "last pool frame outside host memory");
    CHECK(snap_same(&e, &s), "a bad pool frame left a trace");
    snap_free(&s);
    pool[512] = e.free_stack[e.free_count - 513];
    CHECK(fastept_set_entry(&e.w, pool, 513, 0x3FFFF, 0x10, 0, T_RAM_RW, A_RWX, 0, &r) == FASTEPT_OK, "513 frames");
    CHECK(r.frames_used == 513 && r.pod_delta == -1, "split: used %u delta %lld", r.frames_used, (long long)r.pod_delta);
    CHECK(e.w.max_mapped_pfn == 0x3FFFF, "max_mapped_pfn raised");
    e.free_count -= 513;
    EXPECT_ENTRY(fastept_get_entry(&e.w, 0x3FFFE), TU_INVALID, T_POD, A_N, 1, 1, 0);
    EXPECT_ENTRY(fastept_get_entry(&e.w, 0x3FFFF), 0x10, T_RAM_RW, A_RWX, 1, 1, 0);
    tu_env_destroy(&e);
}

/* ---- translate_batch = translate ---------------------------------------------------------------- */

static void test_batch(void)
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

static void test_accessed_dirty(void)
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

static void test_get_entry_corners(void)
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

void selftest_run(void)
{
    test_walker_check();
    test_bad_arguments();
    test_set_errors();
    test_chains_and_splits();
    test_five_levels();
    test_pool_exhaustion();
    test_batch();
    test_accessed_dirty();
    test_get_entry_corners();
}

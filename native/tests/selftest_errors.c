/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_errors.c - self-tests of refusals: walker checks, bad arguments, every set_entry
 * error code, pool exhaustion; a refused call leaves memory byte-identical.
 */

#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS */

#include "selftest.h"

#include "fastept_inline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- Walker checks and bad arguments ---------------------------------------------------------- */

void test_walker_check(void)
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
void test_bad_arguments(void)
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

    /* The header-inline walk: a bad argument or a refused walker never reads host memory
       (PROT_NONE here), and answers as fastept_translate does. */
    fastept_prepared_walker pw;
    CHECK(fastept_walker_prepare(&w, NULL) == FASTEPT_ERR_RANGE, "prepare without output");
    CHECK(fastept_walker_prepare(NULL, &pw) == FASTEPT_ERR_RANGE && pw.gpa_limit == 0, "prepare without walker");
    EXPECT_TR(fastept_translate_inline(&pw, 0x1000, FASTEPT_ACCESS_READ), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    fastept_walker plain = w;
    plain.eptp = fastept_make_eptp(0, 4, 0);
    CHECK(fastept_walker_prepare(&plain, &pw) == FASTEPT_OK && pw.gpa_limit == UINT64_C(1) << 40, "prepare, 4 levels");
    EXPECT_TR(fastept_translate_inline(&pw, UINT64_C(1) << 40, FASTEPT_ACCESS_READ), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    EXPECT_TR(fastept_translate_inline(&pw, 0x1000, 0), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    EXPECT_TR(fastept_translate_inline(&pw, 0x1000, 8), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    bad = plain;
    bad.eptp = fastept_make_eptp(16, 4, 0);
    CHECK(fastept_walker_prepare(&bad, &pw) == FASTEPT_ERR_RANGE && pw.gpa_limit == 0, "prepare, root outside host memory");
    EXPECT_TR(fastept_translate_inline(&pw, 0x1000, FASTEPT_ACCESS_READ), FASTEPT_STATUS_BAD_ARGUMENT, 0, 0, 0);
    CHECK(fastept_walker_prepare(&w, &pw) == FASTEPT_OK && pw.gpa_limit == 0, "prepare, A/D updates: never inline");

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
    uint32_t arg;           /* the argument fastept_check_set names (FASTEPT_ARG_*) */
    const char *what;
};

void test_set_errors(void)
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
        { 0, 0, 1, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_ORDER, "order 1" },
        { 0, 0, 27, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_ORDER, "order 27" },
        { 0, 0, 0, 16, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_TYPE, "type 16" },
        { 0, 0, 0, T_RAM_RW, 11, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_ACCESS, "access 11" },
        { 0, 0, 0, T_RAM_RW, A_RWX, 3, FASTEPT_ERR_RANGE, FASTEPT_ARG_SUPPRESS_VE, "suppress-#VE mode 3" },
        { UINT64_C(1) << 36, 0, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_GFN, "GFN beyond 48 bits" },
        { 0x201, 0x200, 9, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_ALIGN, FASTEPT_ARG_GFN, "misaligned GFN" },
        { 0x201, 0x200, 9, T_FOREIGN, A_RWX, 0, FASTEPT_ERR_ALIGN, FASTEPT_ARG_GFN, "misaligned GFN before 2M foreign" },
        { 0x200, 0x200, 9, T_FOREIGN, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_ORDER, "2M foreign mapping" },
        { 0x5, TU_INVALID, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "RAM without a frame" },
        { 0x5, TU_INVALID, 0, T_GRANT_RO, A_R, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "grant without a frame" },
        { 0x5, TU_INVALID, 0, T_FOREIGN, A_R, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "foreign without a frame" },
        { 0x5, TU_INVALID, 0, T_BROKEN, A_R, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "broken without a frame" },
        { 0x200, 0x201, 9, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_ALIGN, FASTEPT_ARG_MFN, "misaligned MFN" },
        { 0x200, 0x201, 9, T_POD, A_N, 0, FASTEPT_ERR_ALIGN, FASTEPT_ARG_MFN, "misaligned MFN before PoD-with-frame" },
        { 0x5, 0x5, 0, T_POD, A_N, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "PoD with a frame" },
        { 0x5, 2112, 0, T_RAM_RW, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "RAM frame outside host memory" },
        { 0x200, 1536 + 512, 9, T_RAM_RO, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "2M RAM running past host memory" },
        { 0x5, host_limit, 0, T_MMIO_DIRECT, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "MMIO frame beyond MAXPHYADDR" },
        { 0x5, host_limit, 0, T_MMIO_DM, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "mmio_dm frame beyond MAXPHYADDR" },
        { 0x5, host_limit, 0, T_INVALID, A_RWX, 0, FASTEPT_ERR_RANGE, FASTEPT_ARG_MFN, "removal frame beyond MAXPHYADDR" },
        { 0x5, 0x5, 0, T_RAM_RW, A_W, 0, FASTEPT_ERR_PERMISSION, FASTEPT_ARG_ACCESS, "RAM with w" },
        { 0x5, 0x5, 0, T_RAM_RW, A_WX, 0, FASTEPT_ERR_PERMISSION, FASTEPT_ARG_ACCESS, "RAM with wx" },
        { 0x5, 0x5, 0, T_GRANT_RO, A_W, 0, FASTEPT_ERR_PERMISSION, FASTEPT_ARG_ACCESS, "grant_ro with w (readable type)" },
        { 0x5, 0x5, 0, T_RAM_RW, A_X, 0, FASTEPT_ERR_PERMISSION, FASTEPT_ARG_ACCESS, "execute-only without the capability" },
        { 0x5, 0x5, 0, T_MMIO_DIRECT, A_X, 0, FASTEPT_ERR_PERMISSION, FASTEPT_ARG_ACCESS, "execute-only MMIO" },
        { 0x5, 0x5, 0, T_RAM_RW, 16, 16, FASTEPT_ERR_RANGE, FASTEPT_ARG_ACCESS, "several errors: the first (range) wins" },
    };

    struct snapshot s;
    snap_take(&e, &s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct set_case *c = &cases[i];
        fastept_set_result r;
        int32_t rc = tu_set(&e, c->gfn, c->mfn, c->order, c->type, c->access, c->sve, 0, &r);
        CHECK(rc == c->rc, "%s: rc %d, expected %d", c->what, rc, c->rc);
        uint32_t arg = 99;
        uint64_t raises = 0;
        rc = fastept_check_set(&e.w, c->gfn, c->mfn, c->order, c->type, c->access, c->sve, &arg, &raises);
        CHECK(rc == c->rc && arg == c->arg, "%s: check_set rc %d argument %u, expected %d argument %u", c->what, rc, arg,
              c->rc, c->arg);
        CHECK(raises == TU_INVALID, "%s: check_set raises_to 0x%llx on a refusal", c->what, (unsigned long long)raises);
        CHECK(r.retired_table == TU_INVALID && r.retired_level == 0 && r.frames_used == 0 && r.pod_delta == 0,
              "%s: result not reset", c->what);
        CHECK(snap_same(&e, &s), "%s: memory or max_mapped_pfn changed", c->what);
    }

    /* 1G needs the capability. */
    uint32_t caps = e.w.caps;
    e.w.caps = 0;
    CHECK(tu_set(&e, 0, 0, 18, T_MMIO_DIRECT, A_RWX, 0, 0, NULL) == FASTEPT_ERR_RANGE, "1G without the capability");
    uint32_t arg = 99;
    CHECK(fastept_check_set(&e.w, 0, 0, 18, T_MMIO_DIRECT, A_RWX, 0, &arg, NULL) == FASTEPT_ERR_RANGE && arg == FASTEPT_ARG_ORDER,
          "check_set: 1G without the capability, argument %u", arg);
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

    /* fastept_check_set on accepted writes: the last GFN a valid entry maps, nothing for a removal
       or for an entry that is not valid (Xen's max_mapped_pfn counts valid entries only). */
    const struct {
        uint64_t gfn, mfn;
        uint32_t order, type, access;
        uint64_t raises;
        const char *what;
    } accepted[] = {
        { 0x5, 0x5, 0, T_RAM_RW, A_RWX, 0x5, "4K RAM" },
        { 0x400, 0x400, 9, T_RAM_RW, A_RWX, 0x5FF, "2M RAM: the last GFN of the page" },
        { G1, 0, 18, T_MMIO_DIRECT, A_RWX, G1 + 0x3FFFF, "1G MMIO" },
        { 0x5, TU_INVALID, 0, T_INVALID, A_RWX, TU_INVALID, "removal" },
        { 0x5, TU_INVALID, 0, T_MMIO_DM, A_RWX, TU_INVALID, "mmio_dm without a frame: an empty entry" },
        { 0x7, TU_INVALID, 0, T_POD, A_N, 0x7, "PoD: valid though not present" },
        { 0x8, TU_INVALID, 0, T_PAGED, A_RWX, 0x8, "paged: valid though not present" },
        { 0x9, 0x9, 0, T_RAM_RW, A_N, 0x9, "access n: valid though not present" },
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        uint64_t raises = 0;
        arg = 99;
        int32_t rc = fastept_check_set(&e.w, accepted[i].gfn, accepted[i].mfn, accepted[i].order, accepted[i].type,
                                       accepted[i].access, 0, &arg, &raises);
        CHECK(rc == FASTEPT_OK && arg == FASTEPT_ARG_NONE && raises == accepted[i].raises,
              "check_set %s: rc %d argument %u raises_to 0x%llx, expected 0x%llx", accepted[i].what, rc, arg,
              (unsigned long long)raises, (unsigned long long)accepted[i].raises);
    }

    CHECK(snap_same(&e, &s), "check_set changed memory or max_mapped_pfn");
    snap_free(&s);
    CHECK(fastept_check_set(NULL, 0x5, 0x5, 0, T_RAM_RW, A_RWX, 0, NULL, NULL) == FASTEPT_ERR_RANGE, "check_set without a walker");

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

/* Pool exhaustion: a 1G split needs 513 frames; 512 leave memory byte-identical. */
void test_pool_exhaustion(void)
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

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * translate.c - the smallest complete use of libfastept.
 *
 * Host memory is one byte range of 4 KiB frames. The EPT tables live in it, taken from a pool
 * of free frames we hand to fastept_set_entry; guest RAM is other frames of the same range.
 * We map a few 4K pages, one 2M page and one MMIO page, then translate guest-physical
 * addresses the way the CPU would.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fastept.h"

#define HOST_BYTES (64u << 20)              /* 64 MiB of host memory: frames 0 .. 0x3FFF */
#define TABLE_FIRST UINT64_C(0x3F00)        /* the last 256 frames hold EPT tables */
#define TABLE_COUNT 256u

/* P2m types and accesses used here (the values of FastEpt.P2mType / P2mAccess). */
enum { RAM_RW = 0, RAM_RO = 3, MMIO_DIRECT = 5 };
enum { ACCESS_RWX = 7 };

struct guest {
    fastept_walker walker;
    uint64_t pool[TABLE_COUNT];
    uint32_t next;                          /* pool[next ..] are still free */
};

static int map(struct guest *g, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type)
{
    fastept_set_result r;
    int32_t rc = fastept_set_entry(&g->walker, g->pool + g->next, TABLE_COUNT - g->next, gfn, mfn, order, type,
                                   ACCESS_RWX, FASTEPT_SVE_INHERIT, &r);
    if (rc != FASTEPT_OK) {
        fprintf(stderr, "error: set_entry(gfn 0x%" PRIx64 ") failed: %d\n", gfn, (int)rc);
        return 0;
    }

    g->next += r.frames_used;               /* those frames are now live tables */
    /* r.retired_table would name a subtree to free once no reader can be inside it. */
    return 1;
}

/* Translates one GPA, prints the outcome, and compares it with what we expect. */
static int show(const struct guest *g, uint64_t gpa, uint32_t access, uint8_t status, uint64_t hpa, uint32_t qual)
{
    fastept_translation t = fastept_translate(&g->walker, gpa, access);
    if (t.status == FASTEPT_STATUS_OK) {
        printf("gpa 0x%" PRIx64 " -> hpa 0x%" PRIx64 " (level %u)\n", gpa, t.hpa, (unsigned)t.level);
    } else if (t.status == FASTEPT_STATUS_VIOLATION) {
        printf("gpa 0x%" PRIx64 " -> violation qual 0x%x (level %u)\n", gpa, (unsigned)t.qualification,
               (unsigned)t.level);
    } else {
        printf("gpa 0x%" PRIx64 " -> status %u (level %u)\n", gpa, (unsigned)t.status, (unsigned)t.level);
    }

    if (t.status != status || t.hpa != hpa || t.qualification != qual) {
        printf("MISMATCH: expected status %u hpa 0x%" PRIx64 " qual 0x%x\n", (unsigned)status, hpa, (unsigned)qual);
        return 0;
    }

    return 1;
}

int main(void)
{
    struct guest g;
    uint8_t *host = calloc(1, HOST_BYTES);  /* zeroed; only needs 8-byte alignment */
    if (host == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }

    for (uint32_t i = 0; i < TABLE_COUNT; i++) {
        g.pool[i] = TABLE_FIRST + i;
    }

    /* The root table is the first pool frame (zero = every slot empty). */
    g.next = 1;
    g.walker.host_base = host;
    g.walker.host_frames = HOST_BYTES >> 12;
    g.walker.eptp = fastept_make_eptp(g.pool[0], 4, 0);
    g.walker.max_mapped_pfn = 0;
    g.walker.address_bits = 48;
    g.walker.host_address_bits = 46;
    g.walker.caps = FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES;
    g.walker.default_access = ACCESS_RWX;
    if (fastept_walker_check(&g.walker) != FASTEPT_OK) {
        fprintf(stderr, "error: walker refused\n");
        free(host);
        return 1;
    }

    int ok = map(&g, 0x1, 0x201, FASTEPT_ORDER_4K, RAM_RW)              /* GPA 0x1000 -> HPA 0x201000 */
             && map(&g, 0x2, 0x202, FASTEPT_ORDER_4K, RAM_RO)           /* read-only page */
             && map(&g, 0x40000, 0x1000, FASTEPT_ORDER_2M, RAM_RW)      /* GPA 1 GiB -> HPA 16 MiB, 2 MiB */
             && map(&g, 0xFEE00, 0xFEE00, FASTEPT_ORDER_4K, MMIO_DIRECT); /* pass-through MMIO, uncached */
    int checked = 0, good = 0;
    if (ok) {
        const uint32_t r = FASTEPT_ACCESS_READ, w = FASTEPT_ACCESS_WRITE, x = FASTEPT_ACCESS_EXECUTE;
        good += show(&g, 0x1000, r, FASTEPT_STATUS_OK, 0x201000, 0), checked++;
        good += show(&g, 0x1abc, w | x, FASTEPT_STATUS_OK, 0x201abc, 0), checked++;
        good += show(&g, 0x40012345, r, FASTEPT_STATUS_OK, 0x1012345, 0), checked++;
        good += show(&g, 0xfee00030, w, FASTEPT_STATUS_OK, 0xfee00030, 0), checked++;
        /* A write to the read-only page: qualification = access (bit 1) | rights r-x in bits 3-5. */
        good += show(&g, 0x2010, w, FASTEPT_STATUS_VIOLATION, 0, 0x2 | (0x5 << 3)), checked++;
        /* Nothing mapped: not present, so bits 3-5 are 0. */
        good += show(&g, 0x5000, r, FASTEPT_STATUS_VIOLATION, 0, 0x1), checked++;

        /* The p2m view of the 2M page, as Xen's get_entry reports it. */
        fastept_entry e = fastept_get_entry(&g.walker, 0x40012);
        printf("gfn 0x40012: mfn 0x%" PRIx64 " type %u order %d\n", e.mfn, (unsigned)e.type, (int)e.order);
        good += e.mfn == 0x1012 && e.order == FASTEPT_ORDER_2M, checked++;
        printf("tables used: %u of %u pool frames\n", g.next, TABLE_COUNT);
    }

    free(host);
    if (!ok || good != checked) {
        printf("example: FAILED (%d of %d as expected)\n", good, checked);
        return 1;
    }

    printf("example: all %d translations as expected\n", checked);
    return 0;
}

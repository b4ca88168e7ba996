/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * reference.c - random garbage tables against an independent model of the walk.
 *
 * ref_translate is written from the Intel SDM's tables (Vol. 3C 29.3.2 "EPT Translation
 * Mechanism", 29.3.3.1 "EPT Misconfigurations", 29.3.3.2 "EPT Violations") and
 * docs/model/ept.md, as data: what bits 2:0 mean, which memory types are reserved, which levels
 * may map a page and what each format reserves. It shares no code or structure with walk.c or
 * the managed walkers; the same tables, in C#, are tests/FastEpt.Tests/Support/SdmEptModel.cs,
 * and vectors.c checks this model against every hand-derived vector of tests/Data before it
 * judges anything. ref_get_entry decodes a leaf by the software-field layout of
 * docs/model/ept.md (type 57:52, access 62:59, suppress-#VE 63) and Xen's get_entry rules.
 * Random tables of raw entries - pointers inside and outside host memory, every rwx, reserved
 * bits, memory types, bit 7 anywhere, A/D set or clear, software fields in and out of their
 * enums - are walked by both, with A/D on and off; results and (A/D) the memory afterwards
 * must match.
 */

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_FRAMES 64u
#define R_ADDRESS_FIELD UINT64_C(0x000FFFFFFFFFF000)    /* bits 51:12 */
#define R_MFN_MASK R_ADDRESS_FIELD

/* SDM 29.3.3.1: what an entry's bits 2:0 (read, write, execute) make of it. */
enum ref_rights { RIGHTS_NOT_PRESENT, RIGHTS_USABLE, RIGHTS_MISCONFIGURED, RIGHTS_EXECUTE_ONLY };

static const enum ref_rights ref_rights_of[8] = {
    RIGHTS_NOT_PRESENT,     /* 000: the walk ends in an EPT violation at this entry */
    RIGHTS_USABLE,          /* r */
    RIGHTS_MISCONFIGURED,   /* w: write without read */
    RIGHTS_USABLE,          /* rw */
    RIGHTS_EXECUTE_ONLY,    /* x: a misconfiguration unless the CPU supports execute-only */
    RIGHTS_USABLE,          /* rx */
    RIGHTS_MISCONFIGURED,   /* wx: write without read */
    RIGHTS_USABLE,          /* rwx */
};

/* SDM 29.3.3.1: EPT memory types 2, 3 and 7 are reserved (bits 5:3 of a page-mapping entry). */
static const unsigned char ref_reserved_memory_type[8] = { 0, 0, 1, 1, 0, 0, 0, 1 };

/* One row per level (index = Intel level): when the entry maps a page, and the page size. */
enum ref_maps { MAPS_ALWAYS, MAPS_IF_BIT7, MAPS_IF_BIT7_WITH_1G, MAPS_NEVER };

static const struct {
    enum ref_maps maps;
    unsigned page_shift;
} ref_levels[6] = {
    { MAPS_NEVER, 0 },
    { MAPS_ALWAYS, 12 },            /* PTE: bit 7 ignored */
    { MAPS_IF_BIT7, 21 },           /* PDE: 2 MiB page */
    { MAPS_IF_BIT7_WITH_1G, 30 },   /* PDPTE: 1 GiB page where supported, else bit 7 reserved */
    { MAPS_NEVER, 39 },             /* PML4E: bit 7 reserved */
    { MAPS_NEVER, 48 },             /* PML5E: bit 7 reserved */
};

#define R_PAGE_BIT (UINT64_C(1) << 7)
#define R_ACCESSED (UINT64_C(1) << 8)
#define R_DIRTY (UINT64_C(1) << 9)
#define R_TABLE_RESERVED_LOW UINT64_C(0x78)    /* bits 6:3 of an entry referencing a table */

static fastept_translation ref_result(unsigned status, uint64_t hpa, unsigned level, uint64_t qual)
{
    fastept_translation t;
    memset(&t, 0, sizeof(t));
    t.status = (uint8_t)status;
    t.hpa = hpa;
    t.level = (uint8_t)level;
    t.qualification = (uint32_t)qual;
    return t;
}

fastept_translation reference_translate(uint8_t *b, const struct ref_cfg *c, uint64_t gpa, uint32_t access)
{
    uint64_t above_maxphy = R_ADDRESS_FIELD & ~((UINT64_C(1) << c->hbits) - 1);
    uint64_t table = c->root;
    uint64_t rights = 7;                 /* ANDed over every entry walked (qualification bits 5:3) */
    for (unsigned level = c->levels;; level--) {
        unsigned shift = ref_levels[level].page_shift;
        uint64_t *slot = (uint64_t *)(void *)(b + (table << 12)) + ((gpa >> shift) & 511);
        uint64_t pte = *slot;
        enum ref_rights kind = ref_rights_of[pte & 7];
        if (kind == RIGHTS_NOT_PRESENT) {
            return ref_result(FASTEPT_STATUS_VIOLATION, 0, level, access);
        }

        if (kind == RIGHTS_MISCONFIGURED || (kind == RIGHTS_EXECUTE_ONLY && !c->xo)) {
            return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        /* Bit 7 where it is reserved is taken as a page mapping the level does not allow. */
        if (ref_levels[level].maps != MAPS_ALWAYS && (pte & R_PAGE_BIT) == 0) {
            uint64_t next = (pte & R_ADDRESS_FIELD) >> 12;
            if ((pte & (R_TABLE_RESERVED_LOW | above_maxphy)) != 0 || next >= c->frames) {
                return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
            }

            rights &= pte;
            if (c->ad && (pte & R_ACCESSED) == 0) {
                *slot = pte | R_ACCESSED;
            }

            table = next;
            continue;
        }

        /* A page mapping: allowed here, no reserved address bits below the page size or above
           MAXPHYADDR, a defined memory type. */
        enum ref_maps maps = ref_levels[level].maps;
        int allowed = maps != MAPS_NEVER && (maps != MAPS_IF_BIT7_WITH_1G || c->one_g);
        uint64_t page_mask = (UINT64_C(1) << shift) - 1;
        if (!allowed || (pte & (above_maxphy | (page_mask & R_ADDRESS_FIELD))) != 0
            || ref_reserved_memory_type[(pte >> 3) & 7]) {
            return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        rights &= pte;
        if ((access & ~(uint32_t)rights) != 0) {
            return ref_result(FASTEPT_STATUS_VIOLATION, 0, level, access | (rights << 3));
        }

        if (c->ad) {
            uint64_t flags = R_ACCESSED | ((access & FASTEPT_ACCESS_WRITE) != 0 ? R_DIRTY : 0);
            if ((pte & flags) != flags) {
                *slot = pte | flags;
            }
        }

        return ref_result(FASTEPT_STATUS_OK, (pte & R_ADDRESS_FIELD & ~page_mask) | (gpa & page_mask), level, 0);
    }
}

static fastept_entry ref_hole(int order)
{
    fastept_entry e = { TU_INVALID, T_MMIO_DM, A_N, 1, 0, order };
    return e;
}

static int ref_is_valid(uint64_t pte)
{
    return (pte & ~(UINT64_C(1) << 63)) != 0 && ((pte >> 52) & 0x3F) != T_INVALID;
}

static fastept_entry ref_get_entry(uint8_t *b, const struct ref_cfg *c, uint64_t gfn, uint64_t max)
{
    if (gfn > max) {
        for (unsigned level = c->levels; level >= 2; level--) {
            int order = 9 * (int)(level - 1);
            if (((gfn >> order) << order) > max) {
                return ref_hole(order);
            }
        }

        return ref_hole(0);
    }

    uint64_t table = c->root;
    unsigned level = c->levels;
    for (;;) {
        uint64_t pte = ((uint64_t *)(void *)(b + (table << 12)))[(gfn >> (9 * (level - 1))) & 511];
        int order = 9 * (int)(level - 1);
        if (level > 1 && (pte & 7) != 0 && (pte & 0x80) == 0) {
            uint64_t next = (pte & R_MFN_MASK) >> 12;
            if (next >= c->frames) {
                return ref_hole(order);
            }

            table = next;
            level--;
            continue;
        }

        uint64_t type = (pte >> 52) & 0x3F, access = (pte >> 59) & 0xF;
        if (!ref_is_valid(pte) || level > 3 || type > 15 || access > 10) {
            return ref_hole(order);
        }

        fastept_entry e;
        e.type = (uint8_t)type;
        e.suppress_ve = (uint8_t)(pte >> 63);
        e.is_mapped = 1;
        e.order = order;
        if (type == T_POD) {
            e.mfn = TU_INVALID;
            e.access = A_N;
            return e;
        }

        uint64_t field = (pte & R_MFN_MASK) >> 12;
        e.mfn = field == (R_MFN_MASK >> 12) ? TU_INVALID : field + (gfn & ((UINT64_C(1) << order) - 1));
        e.access = (uint8_t)access;
        return e;
    }
}

/* A raw entry: mostly well-formed pointers and leaves, with every kind of damage now and then. */
static uint64_t ref_random_entry(tu_rng *r)
{
    uint64_t k = tu_below(r, 100);
    if (k < 4) {
        return tu_next(r);                                            /* pure garbage */
    }

    if (k < 12) {
        return tu_below(r, 2) ? 0 : UINT64_C(1) << 63;                /* empty */
    }

    static const uint64_t rwx_choice[] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 5, 3, 1, 4, 0, 2, 6 };
    uint64_t e = rwx_choice[tu_below(r, sizeof(rwx_choice) / sizeof(rwx_choice[0]))];
    if (k < 85) {
        /* A pointer: a table inside (mostly) or just outside host memory, bits 7:3 clear. */
        e |= (tu_below(r, 12) == 0 ? R_FRAMES + tu_below(r, 4) : tu_below(r, R_FRAMES)) << 12;
    } else {
        /* A leaf: 4K, 2M or 1G shaped frame, memory type 6 or 0, ipat, bit 7 for superpages. */
        unsigned shape = (unsigned)tu_below(r, 3);
        uint64_t mfn = tu_below(r, UINT64_C(1) << 22) & ~((UINT64_C(1) << (9 * shape)) - 1);
        e |= (mfn << 12) & R_MFN_MASK;
        e |= tu_below(r, 2) ? UINT64_C(0x30) : 0;
        e |= tu_below(r, 2) ? UINT64_C(0x40) : 0;
        e |= shape != 0 || tu_below(r, 4) == 0 ? UINT64_C(0x80) : 0;
    }

    e |= tu_below(r, 4) << 8;                                         /* A/D */
    if (tu_below(r, 2) == 0) {
        e |= (tu_below(r, 18) << 52) | (tu_below(r, 12) << 59);       /* type / access, sometimes out of enum */
    }

    e |= tu_below(r, 2) << 63;
    if (tu_below(r, 8) == 0) {
        /* One damage: a bit of 7:3 (reserved, memory type, superpage), 29:12 (alignment) or 51:32 (MAXPHYADDR). */
        static const unsigned lo[] = { 3, 12, 32 }, span[] = { 5, 18, 20 };
        unsigned which = (unsigned)tu_below(r, 3);
        e ^= UINT64_C(1) << (lo[which] + tu_below(r, span[which]));
    }

    return e;
}

void reference_test_run(void)
{
    uint8_t *lib = aligned_alloc(4096, (size_t)R_FRAMES << 12);
    uint8_t *ref = aligned_alloc(4096, (size_t)R_FRAMES << 12);
    CHECK(lib != NULL && ref != NULL, "out of memory");
    if (lib == NULL || ref == NULL) {
        free(lib);
        free(ref);
        return;
    }

    tu_rng rng = { 2026 };
    unsigned long before = tu_failures;
    unsigned long outcomes[3] = { 0, 0, 0 }, by_level[6] = { 0, 0, 0, 0, 0, 0 }, mapped = 0;
    for (unsigned round = 0; round < 400 && tu_failures - before < 5; round++) {
        struct ref_cfg c;
        c.levels = 4 + (unsigned)tu_below(&rng, 2);
        c.frames = R_FRAMES - tu_below(&rng, 4);
        c.root = tu_below(&rng, c.frames);
        c.hbits = tu_below(&rng, 3) == 0 ? 32 + (uint32_t)tu_below(&rng, 21) : 46;
        c.xo = (int)tu_below(&rng, 2);
        c.one_g = (int)tu_below(&rng, 2);
        c.ad = (int)tu_below(&rng, 2);
        /* Tables: most slots of most frames random, so walks meet structure and garbage. */
        for (uint64_t f = 0; f < R_FRAMES; f++) {
            uint64_t *slots = (uint64_t *)(void *)(lib + (f << 12));
            for (unsigned i = 0; i < 512; i++) {
                slots[i] = ref_random_entry(&rng);
            }
        }

        memcpy(ref, lib, (size_t)R_FRAMES << 12);
        fastept_walker w = { lib, c.frames, fastept_make_eptp(c.root, c.levels, (uint32_t)c.ad), 0,
                             12 + 9 * c.levels, c.hbits,
                             (c.xo ? (uint32_t)FASTEPT_CAP_EXECUTE_ONLY : 0u) | (c.one_g ? (uint32_t)FASTEPT_CAP_1G : 0u),
                             A_RWX };
        uint64_t gpa_bits = 12 + 9 * c.levels;
        for (unsigned i = 0; i < 500; i++) {
            /* Few distinct indices per level, so walks go deep into the random tables. */
            uint64_t gpa = 0;
            for (unsigned l = c.levels; l >= 1; l--) {
                gpa |= tu_below(&rng, 4) << (12 + 9 * (l - 1));
            }

            gpa |= tu_below(&rng, 4096);
            if (tu_below(&rng, 8) == 0) {
                gpa = tu_below(&rng, UINT64_C(1) << gpa_bits);
            }

            uint32_t access = (uint32_t)(1 + tu_below(&rng, 7));
            fastept_translation got = fastept_translate(&w, gpa, access);
            fastept_translation want = reference_translate(ref, &c, gpa, access);
            CHECK(memcmp(&got, &want, sizeof(got)) == 0,
                  "round %u: translate(0x%llx, %u) = %u level %u hpa 0x%llx qual 0x%x, reference %u level %u hpa 0x%llx qual 0x%x",
                  round, (unsigned long long)gpa, access, got.status, got.level, (unsigned long long)got.hpa,
                  got.qualification, want.status, want.level, (unsigned long long)want.hpa, want.qualification);
            outcomes[want.status < 3 ? want.status : 0]++;
            by_level[want.level < 6 ? want.level : 0]++;
            fastept_translation batch;
            CHECK(fastept_translate_batch(&w, &gpa, 1, access, &batch) == 1 && memcmp(&got, &batch, sizeof(got)) == 0,
                  "round %u: batch differs", round);
            if (c.ad) {
                /* The batch walk above wrote the same flags again: a no-op on the library side. */
                reference_translate(ref, &c, gpa, access);
            }

            uint64_t gfn = gpa >> 12;
            w.max_mapped_pfn = tu_below(&rng, 4) == 0 ? tu_below(&rng, UINT64_C(1) << (gpa_bits - 12)) : UINT64_MAX;
            fastept_entry ge = fastept_get_entry(&w, gfn);
            fastept_entry re = ref_get_entry(ref, &c, gfn, w.max_mapped_pfn);
            mapped += re.is_mapped;
            CHECK(memcmp(&ge, &re, sizeof(ge)) == 0,
                  "round %u: get_entry(0x%llx) = mfn 0x%llx type %u access %u sve %u mapped %u order %d, reference "
                  "mfn 0x%llx type %u access %u sve %u mapped %u order %d",
                  round, (unsigned long long)gfn, (unsigned long long)ge.mfn, ge.type, ge.access, ge.suppress_ve,
                  ge.is_mapped, ge.order, (unsigned long long)re.mfn, re.type, re.access, re.suppress_ve, re.is_mapped,
                  re.order);
        }

        CHECK(memcmp(lib, ref, (size_t)R_FRAMES << 12) == 0, "round %u: A/D flags differ from the reference", round);
    }

    printf("  reference: walks ok %lu, violation %lu, misconfig %lu; ending at levels 5..1: %lu %lu %lu %lu %lu; "
           "%lu mapped GFNs\n", outcomes[0], outcomes[1], outcomes[2], by_level[5], by_level[4], by_level[3],
           by_level[2], by_level[1], mapped);
    free(lib);
    free(ref);
}

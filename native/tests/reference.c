/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * reference.c - random garbage tables against a plain transcription of the managed walkers.
 *
 * ref_translate is P2m.WalkFrom started at the root (no fast path), ref_get_entry is
 * P2m.Lookup + DecodeLeaf + HoleOrderBeyond, both written as directly as possible. Random
 * tables of raw entries - pointers inside and outside host memory, every rwx, reserved bits,
 * memory types, bit 7 anywhere, A/D set or clear, software fields in and out of their enums -
 * are walked by both, with A/D on and off; results and (A/D) the memory afterwards must match.
 */

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R_FRAMES 64u
#define R_MFN_MASK UINT64_C(0x000FFFFFFFFFF000)

struct ref_cfg {
    unsigned levels;
    uint64_t frames;
    uint64_t root;
    uint32_t hbits;
    int xo, one_g, ad;
};

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

static fastept_translation ref_translate(uint8_t *b, const struct ref_cfg *c, uint64_t gpa, uint32_t access)
{
    uint64_t high = R_MFN_MASK & ~((UINT64_C(1) << c->hbits) - 1);
    uint64_t non_leaf_reserved = 0x78 | high;
    uint64_t leaf1 = high;
    uint64_t leaf2 = high | (((UINT64_C(1) << 21) - 1) & ~UINT64_C(0xFFF));
    uint64_t leaf3 = c->one_g ? high | (((UINT64_C(1) << 30) - 1) & ~UINT64_C(0xFFF)) : ~UINT64_C(0);
    uint32_t bad_rwx = (1u << 2) | (1u << 6) | (c->xo ? 0u : 1u << 4);
    unsigned level = c->levels;
    int shift = 12 + 9 * (level - 1);
    uint64_t rights = 7;
    uint64_t *p = (uint64_t *)(void *)(b + (c->root << 12)) + ((gpa >> shift) & 511);
    uint64_t pte = *p;
    for (;;) {
        if ((pte & 7) == 0) {
            return ref_result(FASTEPT_STATUS_VIOLATION, 0, level, access);
        }

        if (((bad_rwx >> (pte & 7)) & 1) != 0) {
            return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        if (level == 1 || (pte & 0x80) != 0) {
            uint64_t reserved = level == 1 ? leaf1 : level == 2 ? leaf2 : level == 3 ? leaf3 : ~UINT64_C(0);
            if ((pte & reserved) != 0 || ((0x8Cu >> ((pte >> 3) & 7)) & 1) != 0) {
                return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
            }

            rights &= pte;
            if ((access & ~(uint32_t)rights) != 0) {
                return ref_result(FASTEPT_STATUS_VIOLATION, 0, level, access | (rights << 3));
            }

            if (c->ad) {
                uint64_t want = 0x100 | ((access & 2) != 0 ? 0x200 : 0);
                if ((pte & want) != want) {
                    *p |= want;
                }
            }

            uint64_t offset_mask = (UINT64_C(1) << shift) - 1;
            return ref_result(FASTEPT_STATUS_OK, (pte & R_MFN_MASK & ~offset_mask) | (gpa & offset_mask), level, 0);
        }

        uint64_t next = (pte & R_MFN_MASK) >> 12;
        if ((pte & non_leaf_reserved) != 0 || next >= c->frames) {
            return ref_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        rights &= pte;
        if (c->ad && (pte & 0x100) == 0) {
            *p |= 0x100;
        }

        level--;
        shift -= 9;
        p = (uint64_t *)(void *)(b + (next << 12)) + ((gpa >> shift) & 511);
        pte = *p;
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
            fastept_translation want = ref_translate(ref, &c, gpa, access);
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
                ref_translate(ref, &c, gpa, access);
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

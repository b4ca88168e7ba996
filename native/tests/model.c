/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * model.c - randomized model-based test of set_entry / get_entry / translate.
 *
 * The model is a plain tree of states, written from the p2m rules rather than from the code:
 * a 2 GiB guest window (GFNs [0, 2^19): two 1G slots, 1024 2M slots, 4K leaves), where each
 * 1G/2M slot is empty, a leaf (type, access, frame, suppress-#VE) or a table, and the root
 * chain down to the 1G table exists once something was mapped. Random set_entry calls (valid
 * and invalid, every type, access and size) are applied to both; after every call a few GFNs
 * and GPAs are compared, and every few hundred calls every GFN of the window, the PoD count
 * and the table accounting (no frame leaked) are.
 */

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M_GFNS (UINT64_C(1) << 19)
#define M_2M (M_GFNS >> 9)
#define M_1G (M_GFNS >> 18)

enum { S_NONE = 0, S_LEAF = 1, S_TABLE = 2 };

struct m_leaf {
    uint64_t mfn;       /* frame of the leaf's first GFN, or TU_INVALID */
    uint8_t type;
    uint8_t access;
    uint8_t sve;
    uint8_t valid;      /* 0: a hole */
};

struct model {
    unsigned levels;
    uint32_t caps;
    int top;            /* the tables from the root down to the 1G table exist */
    uint8_t st1g[M_1G];
    struct m_leaf leaf1g[M_1G];
    uint8_t st2m[M_2M];
    struct m_leaf leaf2m[M_2M];
    struct m_leaf *leaf4k;  /* M_GFNS */
    uint64_t max_mapped;
    int64_t pod_count;  /* sum of the deltas set_entry reported */
};

/* What a type and access grant, for a leaf of the given size (Xen's type_to_flags, by table). */
static unsigned m_rwx(const struct model *m, unsigned type, unsigned access, int super)
{
    /* Base rights by type: ram_rw, invalid, logdirty, ro, mmio_dm, mmio_direct, pod, grant_rw,
       grant_ro, paging x3, shared, broken, foreign, ioreq. */
    static const unsigned char base[16] = { 7, 0, 5, 5, 0, 7, 0, 3, 1, 0, 0, 0, 5, 0, 3, 3 };
    /* What each access keeps: n r w rw x rx wx rwx rx2rw n2rwx r_pw. */
    static const unsigned char keep[11] = { 0, 1, 2, 3, 4, 5, 6, 7, 5, 0, 1 };
    unsigned b = base[type];
    if (type == T_LOGDIRTY && (m->caps & FASTEPT_CAP_PML) != 0 && !super) {
        b = 7;
    }

    if (type == T_IOREQ && (m->caps & FASTEPT_CAP_IOREQ_CLAIMS_WRITES) != 0) {
        b = 1;
    }

    unsigned r = b & keep[access];
    if (super && (m->caps & FASTEPT_CAP_EXEC_SUPERPAGES) == 0) {
        r &= 3;
    }

    return r;
}

/* The expected return code of set_entry (FastEpt's argument rules, in their order). */
static int32_t m_validate(const struct model *m, const tu_env *e, uint64_t gfn, uint64_t mfn, uint32_t order,
                          uint32_t type, uint32_t access, uint32_t sve)
{
    if ((order != 0 && order != 9 && order != 18) || (order == 18 && !(m->caps & FASTEPT_CAP_1G)) || type > 15
        || access > 10 || sve > 2 || gfn >= (UINT64_C(1) << (9 * m->levels))) {
        return FASTEPT_ERR_RANGE;
    }

    uint64_t count = UINT64_C(1) << order;
    if (gfn % count != 0) {
        return FASTEPT_ERR_ALIGN;
    }

    if (type == T_FOREIGN && order != 0) {
        return FASTEPT_ERR_RANGE;
    }

    int frameless_ok = type == T_INVALID || type == T_MMIO_DM || type == T_MMIO_DIRECT || type == T_POD
                       || type == T_PAGING_OUT || type == T_PAGED || type == T_PAGING_IN;
    if (mfn == TU_INVALID) {
        if (!frameless_ok) {
            return FASTEPT_ERR_RANGE;
        }
    } else {
        if (mfn % count != 0) {
            return FASTEPT_ERR_ALIGN;
        }

        if (type == T_POD) {
            return FASTEPT_ERR_RANGE;
        }

        uint64_t limit = (type == T_MMIO_DM || type == T_MMIO_DIRECT || type == T_INVALID) ? UINT64_C(1) << 34 : e->frames;
        if (mfn + count > limit) {
            return FASTEPT_ERR_RANGE;
        }
    }

    int readable = m_rwx(m, type, A_RWX, 0) & 1;
    if (type == T_LOGDIRTY || type == T_IOREQ) {
        readable = 1;
    }

    if ((access == A_W || access == A_WX) && readable) {
        return FASTEPT_ERR_PERMISSION;
    }

    if (!(m->caps & FASTEPT_CAP_EXECUTE_ONLY) && m_rwx(m, type, access, order != 0) == 4) {
        return FASTEPT_ERR_PERMISSION;
    }

    return FASTEPT_OK;
}

static struct m_leaf m_child(struct m_leaf parent, uint64_t index, unsigned child_order)
{
    struct m_leaf c = parent;
    if (c.mfn != TU_INVALID) {
        c.mfn += index << child_order;
    }

    return c;
}

static void m_split_2m(struct model *m, uint64_t r2)
{
    for (uint64_t j = 0; j < 512; j++) {
        m->leaf4k[r2 * 512 + j] = m_child(m->leaf2m[r2], j, 0);
    }

    m->st2m[r2] = S_TABLE;
}

/* Applies a set the library accepted. */
static void m_set(struct model *m, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type, uint32_t access,
                  uint32_t mode)
{
    struct m_leaf leaf = { mfn, (uint8_t)type, (uint8_t)access, 0, 1 };
    leaf.valid = !(type == T_INVALID || (mfn == TU_INVALID && type == T_MMIO_DM));
    if (leaf.valid && gfn + (UINT64_C(1) << order) - 1 > m->max_mapped) {
        m->max_mapped = gfn + (UINT64_C(1) << order) - 1;
    }

    unsigned target = order / 9 + 1;
    uint64_t r1 = gfn >> 18, r2 = gfn >> 9;
    struct m_leaf old = { TU_INVALID, 0, 0, 1, 0 };   /* the word at the target before: a hole by default */

    if (!m->top) {
        if (!leaf.valid) {
            return;
        }

        m->top = 1;   /* a chain from the root: every new slot empty */
    }

    if (target == 3) {
        if (m->st1g[r1] == S_LEAF) {
            old = m->leaf1g[r1];
        }
    } else {
        if (m->st1g[r1] == S_NONE) {
            if (!leaf.valid) {
                return;
            }

            m->st1g[r1] = S_TABLE;
            memset(&m->st2m[r1 * 512], S_NONE, 512);
        } else if (m->st1g[r1] == S_LEAF) {
            /* Split all the way down to the target. */
            for (uint64_t j = 0; j < 512; j++) {
                m->st2m[r1 * 512 + j] = S_LEAF;
                m->leaf2m[r1 * 512 + j] = m_child(m->leaf1g[r1], j, 9);
                if (target == 1) {
                    m_split_2m(m, r1 * 512 + j);
                }
            }

            m->st1g[r1] = S_TABLE;
        }

        if (target == 2) {
            if (m->st2m[r2] == S_LEAF) {
                old = m->leaf2m[r2];
            }
        } else {
            if (m->st2m[r2] == S_NONE) {
                if (!leaf.valid) {
                    return;
                }

                m->st2m[r2] = S_TABLE;
                for (uint64_t j = 0; j < 512; j++) {
                    m->leaf4k[r2 * 512 + j].valid = 0;
                }
            } else if (m->st2m[r2] == S_LEAF) {
                m_split_2m(m, r2);
            }

            old = m->leaf4k[gfn];
        }
    }

    /* A table at the target (a middle entry, suppress-#VE set) or an empty slot inherit 1. */
    leaf.sve = mode == FASTEPT_SVE_SET ? 1 : mode == FASTEPT_SVE_CLEAR ? 0 : old.valid ? old.sve : 1;
    if (target == 3) {
        m->st1g[r1] = leaf.valid ? S_LEAF : S_NONE;
        m->leaf1g[r1] = leaf;
    } else if (target == 2) {
        m->st2m[r2] = leaf.valid ? S_LEAF : S_NONE;
        m->leaf2m[r2] = leaf;
    } else {
        m->leaf4k[gfn] = leaf;
    }
}

/* The leaf (or hole) covering gfn and its level. */
static struct m_leaf m_lookup(const struct model *m, uint64_t gfn, unsigned *level)
{
    struct m_leaf hole = { TU_INVALID, T_MMIO_DM, 0, 1, 0 };
    if (gfn >= M_GFNS) {
        *level = m->top ? ((gfn >> (9 * (m->levels - 1))) == 0 ? 3 : m->levels) : m->levels;
        if (m->top && m->levels == 5 && (gfn >> 27) != 0 && (gfn >> 36) == 0) {
            *level = 4;   /* inside the one PML4 table, outside its first slot */
        }

        return hole;
    }

    if (!m->top) {
        *level = m->levels;
        return hole;
    }

    uint64_t r1 = gfn >> 18, r2 = gfn >> 9;
    if (m->st1g[r1] != S_TABLE) {
        *level = 3;
        return m->st1g[r1] == S_LEAF ? m->leaf1g[r1] : hole;
    }

    if (m->st2m[r2] != S_TABLE) {
        *level = 2;
        return m->st2m[r2] == S_LEAF ? m->leaf2m[r2] : hole;
    }

    *level = 1;
    return m->leaf4k[gfn].valid ? m->leaf4k[gfn] : hole;
}

static fastept_entry m_get_entry(const struct model *m, uint64_t gfn)
{
    fastept_entry x = { TU_INVALID, T_MMIO_DM, A_N, 1, 0, 0 };
    if (gfn > m->max_mapped) {
        for (unsigned level = m->levels; level >= 2; level--) {
            unsigned order = 9 * (level - 1);
            if (((gfn >> order) << order) > m->max_mapped) {
                x.order = (int32_t)order;
                return x;
            }
        }

        return x;
    }

    unsigned level;
    struct m_leaf l = m_lookup(m, gfn, &level);
    unsigned order = 9 * (level - 1);
    x.order = (int32_t)order;
    if (!l.valid) {
        return x;
    }

    x.type = l.type;
    x.suppress_ve = l.sve;
    x.is_mapped = 1;
    if (l.type == T_POD) {
        return x;
    }

    x.access = l.access;
    x.mfn = l.mfn == TU_INVALID ? TU_INVALID : l.mfn + (gfn & ((UINT64_C(1) << order) - 1));
    return x;
}

static fastept_translation m_translate(const struct model *m, uint64_t gpa, uint32_t access)
{
    fastept_translation t;
    memset(&t, 0, sizeof(t));
    unsigned level;
    struct m_leaf l = m_lookup(m, gpa >> 12, &level);
    t.level = (uint8_t)level;
    unsigned rwx = l.valid ? m_rwx(m, l.type, l.access, level > 1) : 0;
    if (rwx == 0) {
        t.status = FASTEPT_STATUS_VIOLATION;
        t.qualification = access;
    } else if ((rwx == 4 && !(m->caps & FASTEPT_CAP_EXECUTE_ONLY)) || l.mfn == TU_INVALID) {
        /* execute-only without the capability, or an all-ones frame field (reserved bits) */
        t.status = FASTEPT_STATUS_MISCONFIG;
    } else if ((access & ~rwx) != 0) {
        t.status = FASTEPT_STATUS_VIOLATION;
        t.qualification = access | (rwx << 3);
    } else {
        unsigned shift = 12 + 9 * (level - 1);
        t.status = FASTEPT_STATUS_OK;
        t.hpa = (l.mfn << 12) + (gpa & ((UINT64_C(1) << shift) - 1));
    }

    return t;
}

static int m_same_entry(fastept_entry a, fastept_entry b)
{
    return a.mfn == b.mfn && a.type == b.type && a.access == b.access && a.suppress_ve == b.suppress_ve
           && a.is_mapped == b.is_mapped && a.order == b.order;
}

static void m_check_gfn(const struct model *m, const tu_env *e, uint64_t gfn, const char *cfg, unsigned op)
{
    fastept_entry got = fastept_get_entry(&e->w, gfn);
    fastept_entry want = m_get_entry(m, gfn);
    CHECK(m_same_entry(got, want),
          "%s op %u: get_entry(0x%llx) = mfn 0x%llx type %u access %u sve %u mapped %u order %d, model: "
          "mfn 0x%llx type %u access %u sve %u mapped %u order %d",
          cfg, op, (unsigned long long)gfn, (unsigned long long)got.mfn, got.type, got.access, got.suppress_ve,
          got.is_mapped, got.order, (unsigned long long)want.mfn, want.type, want.access, want.suppress_ve,
          want.is_mapped, want.order);
}

static void m_check_gpa(const struct model *m, const tu_env *e, uint64_t gpa, uint32_t access, const char *cfg,
                        unsigned op)
{
    fastept_translation got = fastept_translate(&e->w, gpa, access);
    fastept_translation want = m_translate(m, gpa, access);
    CHECK(memcmp(&got, &want, sizeof(got)) == 0,
          "%s op %u: translate(0x%llx, %u) = %u level %u hpa 0x%llx qual 0x%x, model %u level %u hpa 0x%llx qual 0x%x",
          cfg, op, (unsigned long long)gpa, access, got.status, got.level, (unsigned long long)got.hpa,
          got.qualification, want.status, want.level, (unsigned long long)want.hpa, want.qualification);
}

static void m_full_check(const struct model *m, const tu_env *e, const char *cfg, unsigned op)
{
    unsigned long before = tu_failures;
    int64_t pods = 0;
    for (uint64_t gfn = 0; gfn < M_GFNS && tu_failures - before < 5; gfn++) {
        m_check_gfn(m, e, gfn, cfg, op);
        unsigned level;
        struct m_leaf l = m_lookup(m, gfn, &level);
        pods += l.valid && l.type == T_POD && m_rwx(m, l.type, l.access, level > 1) == 0;
    }

    CHECK(pods == m->pod_count, "%s op %u: %lld PoD GFNs, set_entry deltas sum to %lld", cfg, op, (long long)pods,
          (long long)m->pod_count);
    CHECK(tu_live_tables(e) + e->free_count == e->table_total, "%s op %u: table frames leaked", cfg, op);
    CHECK(e->w.max_mapped_pfn == m->max_mapped, "%s op %u: max_mapped_pfn 0x%llx, model 0x%llx", cfg, op,
          (unsigned long long)e->w.max_mapped_pfn, (unsigned long long)m->max_mapped);
}

static uint64_t m_pick(tu_rng *r, const uint64_t *choices, unsigned n)
{
    return choices[tu_below(r, n)];
}

static void m_run(const char *cfg, unsigned levels, int ad, uint32_t caps, unsigned ops, uint64_t seed)
{
    tu_env e;
    if (tu_env_init(&e, M_GFNS + 4096, M_GFNS, levels, ad, caps) != 0) {
        CHECK(0, "env");
        return;
    }

    struct model *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        m->leaf4k = calloc(M_GFNS, sizeof(struct m_leaf));
    }

    if (m == NULL || m->leaf4k == NULL) {
        CHECK(0, "out of memory");
        free(m);
        tu_env_destroy(&e);
        return;
    }

    m->levels = levels;
    m->caps = caps;
    tu_rng rng = { seed };
    static const uint64_t types[] = { T_RAM_RW, T_RAM_RW, T_RAM_RW, T_INVALID, T_INVALID, T_POD, T_POD,
                                      T_MMIO_DIRECT, T_MMIO_DM, T_LOGDIRTY, T_RAM_RO, T_IOREQ, 99 };
    unsigned long before = tu_failures, accepted = 0;
    for (unsigned op = 1; op <= ops && tu_failures - before < 10; op++) {
        uint64_t k = tu_below(&rng, 100);
        uint32_t order = k < 70 ? 0 : k < 97 ? 9 : k < 99 ? 18 : (uint32_t)tu_below(&rng, 20);
        uint64_t count = UINT64_C(1) << (order < 64 ? order : 0);
        uint64_t gfn;
        if (order == 0 && tu_below(&rng, 2) == 0) {
            gfn = tu_below(&rng, 4 * 512);                     /* a hot window: many splits and merges */
        } else {
            gfn = tu_below(&rng, M_GFNS) & ~(count - 1);
        }

        if (tu_below(&rng, 100) == 0) {
            gfn |= 1;                                          /* misaligned for superpages */
        }

        uint32_t type = (uint32_t)m_pick(&rng, types, sizeof(types) / sizeof(types[0]));
        if (type == 99) {
            type = (uint32_t)tu_below(&rng, 17);               /* any type, sometimes out of range */
        }

        uint32_t access = tu_below(&rng, 10) < 6 ? A_RWX : (uint32_t)tu_below(&rng, 12);
        uint32_t sve = (uint32_t)tu_below(&rng, 3);
        if (tu_below(&rng, 200) == 0) {
            sve = 3;
        }

        uint64_t mfn;
        uint64_t km = tu_below(&rng, 100);
        if (km < 15 || type == T_POD) {
            mfn = TU_INVALID;
        } else if (km < 17) {
            mfn = tu_below(&rng, UINT64_C(1) << 20);           /* often misaligned */
        } else if (km < 19) {
            mfn = e.frames;                                    /* outside host memory */
        } else if (type == T_MMIO_DIRECT || type == T_MMIO_DM) {
            mfn = tu_below(&rng, UINT64_C(1) << 34) & ~(count - 1);
            mfn = mfn + count > (UINT64_C(1) << 34) ? 0 : mfn;
        } else {
            mfn = tu_below(&rng, M_GFNS) & ~(count - 1);
        }

        if (type == T_POD && tu_below(&rng, 50) == 0) {
            mfn = 0;                                           /* a PoD entry with a frame: refused */
        }

        int32_t want = m_validate(m, &e, gfn, mfn, order, type, access, sve);
        fastept_set_result r;
        int32_t rc = tu_set(&e, gfn, mfn, order, type, access, sve, 1, &r);
        CHECK(rc == want, "%s op %u: set(0x%llx, 0x%llx, %u, %u, %u, %u) = %d, model %d", cfg, op,
              (unsigned long long)gfn, (unsigned long long)mfn, order, type, access, sve, rc, want);
        if (rc != FASTEPT_OK) {
            continue;
        }

        accepted++;
        m_set(m, gfn, mfn, order, type, access, sve);
        m->pod_count += r.pod_delta;

        /* Spot checks: both ends of the range, its neighbours, random GFNs and GPAs. */
        m_check_gfn(m, &e, gfn, cfg, op);
        m_check_gfn(m, &e, gfn + count - 1, cfg, op);
        if (gfn > 0) {
            m_check_gfn(m, &e, gfn - 1, cfg, op);
        }

        m_check_gfn(m, &e, (gfn + count) % M_GFNS, cfg, op);
        for (int i = 0; i < 16; i++) {
            m_check_gfn(m, &e, tu_below(&rng, M_GFNS), cfg, op);
            uint64_t gpa = tu_below(&rng, 8) == 0 ? tu_below(&rng, UINT64_C(1) << (12 + 9 * levels))
                                                   : tu_below(&rng, M_GFNS << 12);
            m_check_gpa(m, &e, gpa, (uint32_t)(1 + tu_below(&rng, 7)), cfg, op);
            m_check_gpa(m, &e, (gfn << 12) + tu_below(&rng, count << 12), (uint32_t)(1 + tu_below(&rng, 7)), cfg, op);
        }

        if (op % 500 == 0) {
            m_full_check(m, &e, cfg, op);
        }
    }

    m_full_check(m, &e, cfg, ops);
    printf("  %s: %u set_entry calls (%lu accepted), %llu live tables, %lld PoD GFNs\n", cfg, ops, accepted,
           (unsigned long long)tu_live_tables(&e), (long long)m->pod_count);
    free(m->leaf4k);
    free(m);
    tu_env_destroy(&e);
}

void model_test_run(void)
{
    m_run("model[4 levels, xo, exec superpages]", 4, 0,
          FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES, 2000, 1);
    m_run("model[4 levels, A/D, PML, ioreq claims writes, no xo]", 4, 1,
          FASTEPT_CAP_1G | FASTEPT_CAP_PML | FASTEPT_CAP_IOREQ_CLAIMS_WRITES, 1500, 2);
    m_run("model[5 levels, no 1G]", 5, 0, FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_EXEC_SUPERPAGES, 800, 3);
}

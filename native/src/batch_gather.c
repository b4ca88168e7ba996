/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * batch_gather.c - gathered walks (BatchPath.Gather), the C twin of the managed
 * P2m.WalkGathered / WalkGatheredGroup.
 *
 * Groups of EPT_GATHER_GROUP (16) walks, EPT_GATHER_VECTORS vectors of four, advance level by
 * level; each level is one masked AVX2 gather per vector, so all the loads of a level are in
 * flight together. A lane leaves its vector as soon as its entry is anything but a well-formed
 * pointer into host memory (or, at the PTE, a plain readable leaf that grants the access): it
 * is finished by ept_walk_from from the entry the gather read, and the mask keeps later gathers
 * from touching its slots. Each gathered element is an aligned 8-byte load, as the scalar walk's
 * acquire load is on x86 (every load is an acquire there; the next level's address depends on
 * the loaded value). Only for 4 levels without A/D updates (batch.c checks).
 *
 * The AVX2 code is compiled with a target attribute and entered only after a runtime CPU check
 * (ept_cpu_has_avx2); without AVX2, or on a compiler without the attribute, the group falls back
 * to the pipelined walk, as the managed path does.
 */

#include "walk.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define EPT_HAVE_AVX2_PATH 1
#include <immintrin.h>
#else
#define EPT_HAVE_AVX2_PATH 0
#endif

#if EPT_HAVE_AVX2_PATH

/* 0: not probed yet; else 1 | 2 (AVX2) | 4 (AMD). Probing twice is harmless: relaxed is enough. */
static _Atomic int s_cpu_state;

static int ept_cpu_state(void)
{
    int state = atomic_load_explicit(&s_cpu_state, memory_order_relaxed);
    if (state == 0) {
        /* __builtin_cpu_supports also checks that the OS saves the YMM state (XGETBV). */
        __builtin_cpu_init();
        state = 1 | (__builtin_cpu_supports("avx2") ? 2 : 0) | (__builtin_cpu_is("amd") ? 4 : 0);
        atomic_store_explicit(&s_cpu_state, state, memory_order_relaxed);
    }

    return state;
}

EPT_HIDDEN int ept_cpu_has_avx2(void)
{
    return (ept_cpu_state() & 2) != 0;
}

/* The managed P2m.PreferGather: AVX2, and not AMD Zen, where gathers are microcoded and lose to
   scalar loads with prefetch. */
EPT_HIDDEN int ept_cpu_prefers_gather(void)
{
    return (ept_cpu_state() & 6) == 2;
}

#define EPT_AVX2 __attribute__((target("avx2")))

/* The second 8 bytes of an OK level-1 result (qualification, status, level, reserved), taken
   from a real one so the vector stores below cannot drift from the struct's layout. */
static inline uint64_t ept_ok_leaf_tail(void)
{
    fastept_translation t = ept_result(FASTEPT_STATUS_OK, 0, 1, 0);
    uint64_t words[2];
    _Static_assert(sizeof(t) == sizeof(words), "fastept_translation is 16 bytes");
    __builtin_memcpy(words, &t, sizeof(words));
    return words[1];
}

/* Finishes the lanes set in `lanes` (a 4-bit mask) with the general walk, from each lane's
   entry as the gather read it at `level`; `rights` is the AND of the levels above. */
static EPT_NOINLINE void ept_finish_lanes(const fastept_walker *w, uint8_t *base, unsigned lanes, const uint64_t *gpa,
                                          const uint64_t *off, const uint64_t *pte, const uint64_t *rights, unsigned level,
                                          uint32_t access, fastept_translation *results)
{
    while (lanes != 0) {
        unsigned lane = (unsigned)__builtin_ctz(lanes);
        results[lane] = ept_walk_from(w, gpa[lane], access, level, (uint64_t *)(void *)(base + off[lane]), pte[lane],
                                      rights[lane] & EPT_RWX_MASK);
        lanes &= lanes - 1;
    }
}

static inline EPT_AVX2 unsigned ept_lanes(__m256i mask)
{
    return (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(mask));
}

/* The same lanes of four vectors, stored to arrays, then finished (the rare, cold case). */
static inline EPT_AVX2 void ept_finish_vector(const fastept_walker *w, uint8_t *base, unsigned lanes, __m256i gpa,
                                              __m256i off, __m256i pte, __m256i rights, unsigned level, uint32_t access,
                                              fastept_translation *results)
{
    uint64_t g[4], o[4], e[4], r[4];
    _mm256_storeu_si256((__m256i *)(void *)g, gpa);
    _mm256_storeu_si256((__m256i *)(void *)o, off);
    _mm256_storeu_si256((__m256i *)(void *)e, pte);
    _mm256_storeu_si256((__m256i *)(void *)r, rights);
    ept_finish_lanes(w, base, lanes, g, o, e, r, level, access, results);
}

/* Stores the OK results of the lanes in `lanes`; all four at once in two 32-byte stores. */
static inline EPT_AVX2 void ept_store_ok(unsigned lanes, __m256i hpa, fastept_translation *results)
{
    if (lanes == 0xF) {
        __m256i tail = _mm256_set1_epi64x((long long)ept_ok_leaf_tail());
        __m256i even = _mm256_unpacklo_epi64(hpa, tail);    /* hpa0, tail, hpa2, tail */
        __m256i odd = _mm256_unpackhi_epi64(hpa, tail);     /* hpa1, tail, hpa3, tail */
        _mm256_storeu_si256((__m256i *)(void *)results, _mm256_permute2x128_si256(even, odd, 0x20));
        _mm256_storeu_si256((__m256i *)(void *)(results + 2), _mm256_permute2x128_si256(even, odd, 0x31));
        return;
    }

    uint64_t h[4];
    _mm256_storeu_si256((__m256i *)(void *)h, hpa);
    while (lanes != 0) {
        unsigned lane = (unsigned)__builtin_ctz(lanes);
        results[lane] = ept_result(FASTEPT_STATUS_OK, h[lane], 1, 0);
        lanes &= lanes - 1;
    }
}

/* One group of EPT_GATHER_GROUP walks, from gpas[0 ..) to results[0 ..). */
static EPT_AVX2 void ept_gather_group(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint32_t access,
                                      fastept_translation *results)
{
    enum { V = EPT_GATHER_VECTORS };
    uint8_t *base = c->base;
    __m256i gpa[V], off[V], live[V], rights[V], pte[V];
    const __m256i pointer_mask = _mm256_set1_epi64x((long long)c->pointer_mask);
    const __m256i limit = _mm256_set1_epi64x((long long)c->frame_limit);
    const __m256i mfn_mask = _mm256_set1_epi64x((long long)EPT_MFN_MASK);
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i nine = _mm256_set1_epi64x(EPT_ENTRIES - 1);
    const __m256i ones = _mm256_set1_epi64x(-1);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i root = _mm256_set1_epi64x((long long)c->root_slots);

    for (int v = 0; v < V; v++) {
        gpa[v] = _mm256_loadu_si256((const __m256i *)(const void *)(gpas + 4 * v));
        off[v] = _mm256_add_epi64(root, _mm256_slli_epi64(_mm256_and_si256(_mm256_srli_epi64(gpa[v], 39), nine), 3));
        live[v] = ones;
        rights[v] = ones;
    }

    for (unsigned level = 4; level > 1; level--) {
        for (int v = 0; v < V; v++) {
            pte[v] = _mm256_mask_i64gather_epi64(zero, (const long long *)(const void *)base, off[v], live[v], 1);
        }

        const __m128i shift = _mm_cvtsi32_si128((int)(EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 2)));
        __m256i any_live = zero;
        for (int v = 0; v < V; v++) {
            __m256i next = _mm256_and_si256(pte[v], mfn_mask);
            /* Table HPAs are below 2^52, so the signed compare is an unsigned one here. */
            __m256i ok = _mm256_and_si256(_mm256_cmpeq_epi64(_mm256_and_si256(pte[v], pointer_mask), one),
                                          _mm256_cmpgt_epi64(limit, next));
            unsigned leave = ept_lanes(_mm256_andnot_si256(ok, live[v]));
            if (leave != 0) {
                ept_finish_vector(w, base, leave, gpa[v], off[v], pte[v], rights[v], level, access, results + 4 * v);
                live[v] = _mm256_and_si256(live[v], ok);
            }

            any_live = _mm256_or_si256(any_live, live[v]);
            rights[v] = _mm256_and_si256(rights[v], pte[v]);
            off[v] = _mm256_add_epi64(next, _mm256_slli_epi64(_mm256_and_si256(_mm256_srl_epi64(gpa[v], shift), nine), 3));
        }

        if (_mm256_testz_si256(any_live, any_live)) {
            return;
        }
    }

    /* PTEs: a plain readable leaf with a defined memory type that grants the access. */
    const __m256i leaf_mask = _mm256_set1_epi64x((long long)c->leaf_mask);
    const __m256i access_v = _mm256_set1_epi64x((long long)access);
    const __m256i bad_types = _mm256_set1_epi64x(EPT_BAD_MEMTYPES);
    const __m256i seven = _mm256_set1_epi64x(7);
    const __m256i offset = _mm256_set1_epi64x((long long)EPT_OFFSET_MASK);
    for (int v = 0; v < V; v++) {
        pte[v] = _mm256_mask_i64gather_epi64(zero, (const long long *)(const void *)base, off[v], live[v], 1);
    }

    for (int v = 0; v < V; v++) {
        __m256i plain = _mm256_cmpeq_epi64(_mm256_and_si256(pte[v], leaf_mask), one);
        __m256i type = _mm256_and_si256(_mm256_srlv_epi64(bad_types, _mm256_and_si256(_mm256_srli_epi64(pte[v], EPT_MEMTYPE_SHIFT), seven)), one);
        __m256i missing = _mm256_and_si256(_mm256_andnot_si256(_mm256_and_si256(rights[v], pte[v]), access_v), seven);
        __m256i good = _mm256_and_si256(_mm256_and_si256(live[v], plain), _mm256_cmpeq_epi64(_mm256_or_si256(type, missing), zero));
        ept_store_ok(ept_lanes(good), _mm256_or_si256(_mm256_and_si256(pte[v], mfn_mask), _mm256_and_si256(gpa[v], offset)),
                     results + 4 * v);
        unsigned rest = ept_lanes(_mm256_andnot_si256(good, live[v]));
        if (rest != 0) {
            ept_finish_vector(w, base, rest, gpa[v], off[v], pte[v], rights[v], 1, access, results + 4 * v);
        }
    }
}

EPT_HIDDEN void ept_batch_gathered(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                   uint32_t access, fastept_translation *results)
{
    if (!ept_cpu_has_avx2()) {
        ept_batch_pipelined(w, c, gpas, count, access, results);
        return;
    }

    const uint32_t address_bits = w->address_bits;
    uint64_t i = 0;
    for (; i + EPT_GATHER_GROUP <= count; i += EPT_GATHER_GROUP) {
        /* A group with a GPA beyond the address width walks one at a time (bad arguments). */
        uint64_t wide = 0;
        for (unsigned k = 0; k < EPT_GATHER_GROUP; k++) {
            wide |= gpas[i + k];
        }

        if ((wide >> address_bits) != 0) {
            ept_batch_scalar(w, c, gpas + i, EPT_GATHER_GROUP, access, results + i);
        } else {
            ept_gather_group(w, c, gpas + i, access, results + i);
        }
    }

    ept_batch_scalar(w, c, gpas + i, count - i, access, results + i);
}

#else /* !EPT_HAVE_AVX2_PATH */

EPT_HIDDEN int ept_cpu_has_avx2(void)
{
    return 0;
}

EPT_HIDDEN int ept_cpu_prefers_gather(void)
{
    return 0;
}

EPT_HIDDEN void ept_batch_gathered(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                   uint32_t access, fastept_translation *results)
{
    ept_batch_pipelined(w, c, gpas, count, access, results);
}

#endif /* EPT_HAVE_AVX2_PATH */

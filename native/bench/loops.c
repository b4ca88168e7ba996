/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * loops.c - libfastept_benchloops, the C side of the managed goals table (bench/FastEpt.Bench,
 * Perf_TranslateSuite.Native.cs): timing loops that must run in C, so that neither the managed
 * loop nor a P/Invoke per address is part of what they measure. One call runs a whole window of
 * GPAs; the managed side times the call. A separate library, never installed or packed, linked
 * against libfastept.so as any C emulator would be (so fastept_translate is a real call through
 * the PLT); libfastept itself exports nothing for benchmarks.
 *
 *   fastept_bench_translate_loop  fastept_translate once per GPA, from C: the per-call API
 *   fastept_bench_inline_loop     fastept_translate_inline (fastept_inline.h) once per GPA with
 *                                 a walker prepared once: the per-call API compiled into the loop
 *   fastept_bench_walk_loop       the same walk written out inline, with the same fast-shape
 *                                 checks but no API (no argument or walker checks, no call, no
 *                                 general walk: a GPA off the 4K fast shape adds nothing)
 *   fastept_bench_leaf_loads      the floor: one load per GPA of its leaf slot, from a
 *                                 precomputed slot address (no walk, no side table)
 *   fastept_bench_leaf_chase      the same loads, each address depending on the previous value
 *                                 (latency)
 * Each returns a sum of what it read, so nothing can be optimised away.
 */

#include <stdint.h>

#include "fastept.h"
#include "fastept_inline.h"

#if defined(__GNUC__) || defined(__clang__)
#define BENCH_EXPORT __attribute__((visibility("default")))
#else
#define BENCH_EXPORT
#endif

#define BENCH_MFN_MASK UINT64_C(0x000FFFFFFFFFF000)

BENCH_EXPORT uint64_t fastept_bench_translate_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access);
BENCH_EXPORT uint64_t fastept_bench_inline_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access);
BENCH_EXPORT uint64_t fastept_bench_walk_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access);
BENCH_EXPORT uint64_t fastept_bench_leaf_loads(const uint64_t *const *slots, uint64_t count);
BENCH_EXPORT uint64_t fastept_bench_leaf_chase(const uint64_t *const *slots, uint64_t count, uint64_t zero);

BENCH_EXPORT uint64_t fastept_bench_translate_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        sum += fastept_translate(walker, gpas[i], access).hpa;
    }

    return sum;
}

BENCH_EXPORT uint64_t fastept_bench_inline_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access)
{
    /* Prepared once per window, as an emulator prepares once per EPTP change. */
    fastept_prepared_walker pw;
    fastept_walker_prepare(walker, &pw);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        sum += fastept_translate_inline(&pw, gpas[i], access).hpa;
    }

    return sum;
}

BENCH_EXPORT uint64_t fastept_bench_walk_loop(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access)
{
    /* The fast path's masks (src/walk.c ept_ctx), computed once: 4 levels assumed. */
    uint8_t *base = walker->host_base;
    const uint64_t high = BENCH_MFN_MASK & ~((UINT64_C(1) << walker->host_address_bits) - 1);
    const uint64_t leaf_mask = high | 1u;
    const uint64_t pointer_mask = leaf_mask | UINT64_C(0xF8);
    const uint64_t limit = walker->host_frames << 12;
    const uint64_t *root = (const uint64_t *)(const void *)(base + (walker->eptp & BENCH_MFN_MASK));
    uint64_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t gpa = gpas[i];
        uint64_t pte = root[(gpa >> 39) & 511];
        uint64_t rights = pte;
        for (unsigned shift = 30; shift >= 12; shift -= 9) {
            uint64_t next = pte & BENCH_MFN_MASK;
            if ((pte & pointer_mask) != 1u || next >= limit) {
                goto next_gpa;
            }

            pte = ((const uint64_t *)(const void *)(base + next))[(gpa >> shift) & 511];
            rights &= pte;
        }

        if ((pte & leaf_mask) == 1u && ((0x8Cu >> ((pte >> 3) & 7)) & 1u) == 0 && (access & ~(uint32_t)rights) == 0) {
            sum += (pte & BENCH_MFN_MASK) | (gpa & 0xFFF);
        }

    next_gpa:;
    }

    return sum;
}

BENCH_EXPORT uint64_t fastept_bench_leaf_loads(const uint64_t *const *slots, uint64_t count)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < count; i++) {
        sum += *slots[i];
    }

    return sum;
}

BENCH_EXPORT uint64_t fastept_bench_leaf_chase(const uint64_t *const *slots, uint64_t count, uint64_t zero)
{
    uint64_t sum = 0;
    uint64_t v = 0;
    for (uint64_t i = 0; i < count; i++) {
        v = slots[i][v & zero];
        sum += v;
    }

    return sum;
}

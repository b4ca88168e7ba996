/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * fastept_inline.h - fastept_translate compiled into the caller, for emulators that translate
 * one address at a time.
 *
 * An exported call costs more than the walk it wraps when the tables are cached: the call, the
 * checks of a walker the library cannot trust between calls, and the masks derived from it take
 * about as many instructions as the walk itself, and on DRAM-size tables they take room in the
 * out-of-order window that would otherwise overlap the next walks' cache misses
 * (docs/performance.md, "One call per address from C"). Here the walker is checked once, by
 * fastept_walker_prepare, and the common walk is inlined into the caller's loop:
 *
 *     fastept_prepared_walker pw;
 *     fastept_walker_prepare(&walker, &pw);            // again after changing any walker field
 *     for (...) {
 *         fastept_translation t = fastept_translate_inline(&pw, gpa, FASTEPT_ACCESS_READ);
 *         ...
 *     }
 *
 * fastept_translate_inline answers exactly as fastept_translate(&pw.walker, gpa, access) does.
 * Its straight line covers 4 levels without A/D updates, readable well-formed pointers inside
 * host memory down to a readable 4 KiB leaf that grants the access (every entry read once, with
 * an acquire load); anything else (a superpage, a violation, a misconfiguration, a bad
 * argument, a walker the preparation refused, 5 levels, A/D updates) is answered by a call to
 * fastept_translate, which walks again from the root. Concurrency is fastept_translate's: any
 * number of threads may translate with one prepared walker (it is only read) while one writer
 * changes the tables. Plain C99 or C++; the only library function it calls is fastept_translate.
 */

#ifndef FASTEPT_INLINE_H
#define FASTEPT_INLINE_H

#include "fastept.h"

#if defined(__GNUC__) || defined(__clang__)
#define FASTEPT_INLINE_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FASTEPT_INLINE_LIKELY(c) __builtin_expect(!!(c), 1)
#else
/* MSVC: volatile reads are acquire loads on x86/x64 (/volatile:ms, the default there). */
#define FASTEPT_INLINE_LOAD(p) (*(const volatile uint64_t *)(p))
#define FASTEPT_INLINE_LIKELY(c) (c)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bits 51:12 of an entry: the frame it names, in place. */
#define FASTEPT_INLINE_MFN_MASK UINT64_C(0x000FFFFFFFFFF000)

/* The slot for gpa in the table an entry names (bits 51:12 checked against the frame limit). */
#define FASTEPT_INLINE_SLOT(pw, next, gpa, shift) \
    ((const uint64_t *)(const void *)((pw)->walker.host_base + (next)) + (((gpa) >> (shift)) & 511u))

/* fastept_translate(&prepared->walker, gpa, access), with the common walk inlined (see above). */
static inline fastept_translation fastept_translate_inline(const fastept_prepared_walker *prepared, uint64_t gpa, uint32_t access)
{
    /* gpa_limit is 0 unless the walker passed and has the inline shape, so one compare covers
       the walker, the shape and the address width; access is usually a constant. */
    if (FASTEPT_INLINE_LIKELY(access - 1u < 7u && gpa < prepared->gpa_limit)) {
        const uint64_t pointer_mask = prepared->pointer_mask;
        const uint64_t limit = prepared->frame_limit;
        uint64_t pte = FASTEPT_INLINE_LOAD(prepared->root + ((gpa >> 39) & 511u));
        uint64_t rights = pte;
        uint64_t next = pte & FASTEPT_INLINE_MFN_MASK;
        if (FASTEPT_INLINE_LIKELY((pte & pointer_mask) == 1u && next < limit)) {
            pte = FASTEPT_INLINE_LOAD(FASTEPT_INLINE_SLOT(prepared, next, gpa, 30));
            rights &= pte;
            next = pte & FASTEPT_INLINE_MFN_MASK;
            if (FASTEPT_INLINE_LIKELY((pte & pointer_mask) == 1u && next < limit)) {
                pte = FASTEPT_INLINE_LOAD(FASTEPT_INLINE_SLOT(prepared, next, gpa, 21));
                rights &= pte;
                next = pte & FASTEPT_INLINE_MFN_MASK;
                if (FASTEPT_INLINE_LIKELY((pte & pointer_mask) == 1u && next < limit)) {
                    pte = FASTEPT_INLINE_LOAD(FASTEPT_INLINE_SLOT(prepared, next, gpa, 12));
                    rights &= pte;
                    /* A readable leaf without reserved bits, memory type not 2, 3 or 7 (0x8C),
                       and every right the access needs granted at all four levels. */
                    if (FASTEPT_INLINE_LIKELY((pte & prepared->leaf_mask) == 1u && ((0x8Cu >> ((pte >> 3) & 7u)) & 1u) == 0
                                              && (access & ~(uint32_t)rights) == 0)) {
                        fastept_translation t;
                        t.hpa = (pte & FASTEPT_INLINE_MFN_MASK) | (gpa & 0xFFFu);
                        t.qualification = 0;
                        t.status = FASTEPT_STATUS_OK;
                        t.level = 1;
                        t.reserved[0] = 0;
                        t.reserved[1] = 0;
                        return t;
                    }
                }
            }
        }
    }

    return fastept_translate(&prepared->walker, gpa, access);
}

#ifdef __cplusplus
}
#endif

#endif /* FASTEPT_INLINE_H */

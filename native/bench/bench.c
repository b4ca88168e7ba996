/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * bench.c - native timing of fastept_translate, the counterpart of the managed Perf_Translate.
 *
 *   fastept_bench [--guest-mib N] [--rounds R] [--gpas N]
 *
 * Builds the default guest (4 GiB of guest RAM in 4 KiB pages, GFN i -> MFN i, RAM rw, rwx:
 * 1,048,576 leaf entries in 2,048 leaf tables) with fastept_set_entry in lazily committed
 * host memory (only the ~8 MiB of tables is ever touched), draws random GPAs inside it, checks
 * every one translates to its identity HPA, then reports the best of R rounds in ns per walk
 * for fastept_translate, fastept_translate_batch, fastept_get_entry and a bare four-load chain
 * over the same tables (the floor for any walker).
 */

#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS, MAP_NORESERVE, clock_gettime */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "fastept.h"

#define MFN_MASK UINT64_C(0x000FFFFFFFFFF000)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static volatile uint64_t sink;

enum { KIND_TRANSLATE, KIND_BATCH, KIND_GET_ENTRY, KIND_RAW };

/* One timed pass: `reps` times over every GPA; returns ns per walk. */
static double run(int kind, const fastept_walker *w, const uint64_t *gpas, uint64_t n, fastept_translation *out,
                  unsigned reps)
{
    uint64_t sum = 0;
    const uint8_t *base = w->host_base;
    const uint64_t root = (w->eptp & MFN_MASK) >> 12;
    double t0 = now();
    for (unsigned r = 0; r < reps; r++) {
        switch (kind) {
        case KIND_TRANSLATE:
            for (uint64_t i = 0; i < n; i++) {
                sum += fastept_translate(w, gpas[i], FASTEPT_ACCESS_READ).hpa;
            }

            break;
        case KIND_BATCH:
            fastept_translate_batch(w, gpas, n, FASTEPT_ACCESS_READ, out);
            sum += out[n - 1].hpa;
            break;
        case KIND_GET_ENTRY:
            for (uint64_t i = 0; i < n; i++) {
                sum += fastept_get_entry(w, gpas[i] >> 12).mfn;
            }

            break;
        default:
            for (uint64_t i = 0; i < n; i++) {
                uint64_t gpa = gpas[i], t = root;
                t = (((const uint64_t *)(const void *)(base + (t << 12)))[(gpa >> 39) & 511] & MFN_MASK) >> 12;
                t = (((const uint64_t *)(const void *)(base + (t << 12)))[(gpa >> 30) & 511] & MFN_MASK) >> 12;
                t = (((const uint64_t *)(const void *)(base + (t << 12)))[(gpa >> 21) & 511] & MFN_MASK) >> 12;
                sum += ((const uint64_t *)(const void *)(base + (t << 12)))[(gpa >> 12) & 511] & MFN_MASK;
            }

            break;
        }
    }

    double ns = (now() - t0) * 1e9 / ((double)reps * (double)n);
    sink += sum;
    return ns;
}

static int arg_u64(int argc, char **argv, int *i, uint64_t *out)
{
    if (*i + 1 >= argc) {
        return 0;
    }

    char *end;
    *out = strtoull(argv[++*i], &end, 10);
    return *end == '\0' && *out > 0;
}

int main(int argc, char **argv)
{
    uint64_t guest_mib = 4096, rounds = 7, gpa_count = 4096;
    for (int i = 1; i < argc; i++) {
        int ok = strcmp(argv[i], "--guest-mib") == 0 ? arg_u64(argc, argv, &i, &guest_mib)
                 : strcmp(argv[i], "--rounds") == 0  ? arg_u64(argc, argv, &i, &rounds)
                 : strcmp(argv[i], "--gpas") == 0    ? arg_u64(argc, argv, &i, &gpa_count)
                                                     : 0;
        if (!ok || guest_mib % 2 != 0 || guest_mib > (UINT64_C(1) << 20)) {
            fprintf(stderr, "usage: %s [--guest-mib N (even)] [--rounds R] [--gpas N]\n", argv[0]);
            return 2;
        }
    }

    /* Host memory: guest RAM frames [0, G), then room for the tables (G/512 leaf tables + a few). */
    const uint64_t guest_frames = guest_mib << 8;
    const uint64_t table_frames = guest_frames / 512 + 64;
    const uint64_t host_frames = guest_frames + table_frames;
    const size_t bytes = (size_t)host_frames << 12;
    uint8_t *host = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint64_t *pool = malloc(table_frames * sizeof(uint64_t));
    if (host == MAP_FAILED || pool == NULL) {
        fprintf(stderr, "cannot reserve %zu bytes of host memory\n", bytes);
        return 1;
    }

    for (uint64_t i = 0; i < table_frames; i++) {
        pool[i] = guest_frames + i;
    }

    fastept_walker w;
    w.host_base = host;
    w.host_frames = host_frames;
    w.eptp = fastept_make_eptp(pool[0], 4, 0);
    w.max_mapped_pfn = 0;
    w.address_bits = 48;
    w.host_address_bits = 46;
    w.caps = FASTEPT_CAP_EXECUTE_ONLY | FASTEPT_CAP_1G | FASTEPT_CAP_EXEC_SUPERPAGES;
    w.default_access = 7;

    double t0 = now();
    uint32_t next = 1;
    for (uint64_t gfn = 0; gfn < guest_frames; gfn++) {
        fastept_set_result r;
        int32_t rc = fastept_set_entry(&w, pool + next, (uint32_t)(table_frames - next), gfn, gfn, FASTEPT_ORDER_4K,
                                       0, 7, FASTEPT_SVE_INHERIT, &r);
        if (rc != FASTEPT_OK) {
            fprintf(stderr, "set_entry(0x%" PRIx64 ") failed: %d\n", gfn, (int)rc);
            return 1;
        }

        next += r.frames_used;
    }

    double build = now() - t0;
    uint64_t *gpas = malloc(gpa_count * sizeof(uint64_t));
    fastept_translation *out = malloc(gpa_count * sizeof(fastept_translation));
    if (gpas == NULL || out == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    uint64_t seed = 20260401;
    for (uint64_t i = 0; i < gpa_count; i++) {
        gpas[i] = ((rng_next(&seed) % guest_frames) << 12) | (rng_next(&seed) & 0xFFF);
        fastept_translation t = fastept_translate(&w, gpas[i], FASTEPT_ACCESS_READ);
        fastept_entry e = fastept_get_entry(&w, gpas[i] >> 12);
        if (t.status != FASTEPT_STATUS_OK || t.hpa != gpas[i] || e.mfn != gpas[i] >> 12) {
            fprintf(stderr, "gpa 0x%" PRIx64 " translated wrongly: status %u hpa 0x%" PRIx64 "\n", gpas[i],
                    (unsigned)t.status, t.hpa);
            return 1;
        }
    }

    printf("guest: %" PRIu64 " MiB in 4K pages, %u table frames, built in %.3f s; %" PRIu64 " random GPAs\n",
           guest_mib, next, build, gpa_count);
    /* Enough repetitions for ~20 ms a pass. */
    unsigned reps = (unsigned)(5000000 / gpa_count) + 1;
    static const char *const names[] = { "translate", "translate_batch", "get_entry", "raw 4-load chain" };
    double best[4] = { 1e30, 1e30, 1e30, 1e30 };
    for (uint64_t r = 0; r < rounds; r++) {
        for (int k = 0; k < 4; k++) {
            double ns = run(k, &w, gpas, gpa_count, out, reps);
            best[k] = ns < best[k] ? ns : best[k];
        }
    }

    for (int k = 0; k < 4; k++) {
        printf("%-18s %7.2f ns/walk (best of %" PRIu64 ")\n", names[k], best[k], rounds);
    }

    free(out);
    free(gpas);
    free(pool);
    munmap(host, bytes);
    return 0;
}

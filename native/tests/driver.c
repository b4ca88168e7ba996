/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * driver.c - the CTest driver of the native library.
 *
 *   fastept_test_driver [--require-sanitizers] [--no-self-test | --suite=unit,model,concurrency] [DIR...]
 *
 * Prints which sanitizers the driver was built with ("sanitizers: ..."); with
 * --require-sanitizers it fails at once when there are none. Runs the built-in self-tests (all
 * three suites, unless --no-self-test or --suite picks some), then every translate*.txt vector
 * file in each DIR. Every DIR must contribute at least one case. Exits 0 only if nothing failed.
 */

#include "testutil.h"

#include <stdio.h>
#include <string.h>

/* GCC defines __SANITIZE_ADDRESS__; Clang answers __has_feature. UBSan has no macro: the
   build adds it together with ASan (FASTEPT_SAN_COMPILE), never alone. */
#if defined(__SANITIZE_ADDRESS__)
#define DRIVER_SANITIZERS "address,undefined"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DRIVER_SANITIZERS "address,undefined"
#endif
#endif
#ifndef DRIVER_SANITIZERS
#define DRIVER_SANITIZERS "none"
#endif

int main(int argc, char **argv)
{
    int unit = 1, model = 1, concurrency = 1;
    printf("sanitizers: %s\n", DRIVER_SANITIZERS);
    if (argc > 1 && strcmp(argv[1], "--require-sanitizers") == 0) {
        if (strcmp(DRIVER_SANITIZERS, "none") == 0) {
            fprintf(stderr, "%s: built without sanitizers although FASTEPT_SANITIZE is on (the compiler could not "
                            "build or run -fsanitize=address,undefined); configure with -DFASTEPT_SANITIZE=OFF to "
                            "test without them\n", argv[0]);
            return 1;
        }

        argv[1] = argv[0];
        argv++;
        argc--;
    }

    int first_dir = 1;
    if (argc > 1 && strcmp(argv[1], "--no-self-test") == 0) {
        unit = model = concurrency = 0;
        first_dir = 2;
    } else if (argc > 1 && strncmp(argv[1], "--suite=", 8) == 0) {
        unit = strstr(argv[1], "unit") != NULL;
        model = strstr(argv[1], "model") != NULL;
        concurrency = strstr(argv[1], "concurrency") != NULL;
        first_dir = 2;
    }

    int self_test = unit || model || concurrency;
    if (!self_test && first_dir >= argc) {
        fprintf(stderr, "usage: %s [--no-self-test | --suite=unit,model,concurrency] [DIR...]\n", argv[0]);
        return 2;
    }

    if (fastept_abi_version() != FASTEPT_ABI_VERSION) {
        fprintf(stderr, "library ABI %u, header ABI %u\n", (unsigned)fastept_abi_version(), (unsigned)FASTEPT_ABI_VERSION);
        return 1;
    }

    if (self_test) {
        double t0 = tu_now();
        unsigned long before = tu_failures;
        if (unit) {
            selftest_run();
            reference_test_run();
        }

        if (model) {
            model_test_run();
        }

        if (concurrency) {
            concurrency_test_run();
        }

        printf("self-tests: %s (%.2f s)\n", tu_failures == before ? "passed" : "FAILED", tu_now() - t0);
    }

    unsigned long total = 0;
    for (int i = first_dir; i < argc; i++) {
        unsigned long cases = 0;
        unsigned long before = tu_failures;
        tu_run_vector_dir(argv[i], &cases);
        printf("vectors: %s: %lu case%s checked, %lu failure%s\n", argv[i], cases, cases == 1 ? "" : "s",
               tu_failures - before, tu_failures - before == 1 ? "" : "s");
        total += cases;
    }

    if (first_dir < argc) {
        printf("vectors: %lu cases checked in all\n", total);
    }

    if (tu_failures != 0) {
        printf("FAILED: %lu failure%s\n", tu_failures, tu_failures == 1 ? "" : "s");
        return 1;
    }

    printf("all passed\n");
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* version_check.c - CTest's fastept.version: the header's FASTEPT_VERSION_* macros must equal
   the package version CMake read from Directory.Build.props (passed as FASTEPT_EXPECTED_*). */

#include "fastept.h"

#include <stdio.h>
#include <string.h>

#define FASTEPT_STR2(x) #x
#define FASTEPT_STR(x) FASTEPT_STR2(x)

int main(void)
{
    const char *joined = FASTEPT_STR(FASTEPT_VERSION_MAJOR) "." FASTEPT_STR(FASTEPT_VERSION_MINOR) "." FASTEPT_STR(
        FASTEPT_VERSION_PATCH);
    int ok = FASTEPT_VERSION_MAJOR == FASTEPT_EXPECTED_MAJOR && FASTEPT_VERSION_MINOR == FASTEPT_EXPECTED_MINOR
             && FASTEPT_VERSION_PATCH == FASTEPT_EXPECTED_PATCH && strcmp(FASTEPT_VERSION, FASTEPT_EXPECTED) == 0
             && strcmp(joined, FASTEPT_VERSION) == 0;
    printf("fastept.h %s (%s), package %s: %s\n", FASTEPT_VERSION, joined, FASTEPT_EXPECTED, ok ? "same" : "MISMATCH");
    return ok ? 0 : 1;
}

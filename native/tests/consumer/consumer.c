/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/* consumer.c - a C program built against an installed libfastept (find_package or pkg-config):
   builds a one-page EPT hierarchy with fastept_set_entry, translates through it (fastept_translate
   and the header-inline fastept_translate_inline) and checks an EPTP with fastept_eptp_check.
   Prints "consumer: ok <version>" and exits 0 when all agree. */

#include <fastept.h>
#include <fastept_inline.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES 64

static int fail(const char *what)
{
    printf("consumer: FAILED: %s\n", what);
    return 1;
}

int main(void)
{
#ifdef FASTEPT_EXPECTED_VERSION
    if (strcmp(FASTEPT_VERSION, FASTEPT_EXPECTED_VERSION) != 0) {
        return fail("the header's FASTEPT_VERSION differs from the package version");
    }
#endif
    uint8_t *host = (uint8_t *)aligned_alloc(4096, (size_t)FRAMES * 4096);
    if (host == NULL) {
        return fail("out of memory");
    }
    memset(host, 0, (size_t)FRAMES * 4096);

    /* Frame 1 is the root; frames 2.. are the pool the writer builds tables from. */
    fastept_walker walker;
    memset(&walker, 0, sizeof walker);
    walker.host_base = host;
    walker.host_frames = FRAMES;
    walker.eptp = fastept_make_eptp(1, 4, 0);
    walker.max_mapped_pfn = 0;
    walker.address_bits = 48;
    walker.host_address_bits = 46;
    walker.default_access = 7;

    uint64_t pool[8];
    for (uint32_t i = 0; i < 8; i++) {
        pool[i] = 2 + i;
    }
    fastept_set_result result;
    int32_t rc = fastept_set_entry(&walker, pool, 8, 0x10, 0x30, FASTEPT_ORDER_4K, 0, 7, FASTEPT_SVE_INHERIT, &result);
    if (rc != FASTEPT_OK) {
        free(host);
        return fail("fastept_set_entry");
    }

    fastept_translation t = fastept_translate(&walker, 0x10123, FASTEPT_ACCESS_READ);
    int ok = t.status == FASTEPT_STATUS_OK && t.hpa == 0x30123;
    /* The header-inline walk, installed beside fastept.h: the same answers, off its shape too. */
    fastept_prepared_walker pw;
    ok = ok && fastept_walker_prepare(&walker, &pw) == FASTEPT_OK;
    fastept_translation ti = fastept_translate_inline(&pw, 0x10123, FASTEPT_ACCESS_READ);
    fastept_translation hole = fastept_translate_inline(&pw, 0x20000, FASTEPT_ACCESS_READ);
    ok = ok && ti.status == FASTEPT_STATUS_OK && ti.hpa == 0x30123 && hole.status == FASTEPT_STATUS_VIOLATION;
    fastept_eptp_caps caps = {(UINT64_C(1) << 6) | (UINT64_C(1) << 14), 46, 0};
    ok = ok && fastept_eptp_check(walker.eptp, &caps) == FASTEPT_EPTP_OK
         && fastept_eptp_check(walker.eptp | 0x100, &caps) == FASTEPT_EPTP_RESERVED;
    free(host);
    if (!ok) {
        return fail("translation or EPTP check");
    }

    printf("consumer: ok %s (abi %u)\n", FASTEPT_VERSION, (unsigned)fastept_abi_version());
    return 0;
}

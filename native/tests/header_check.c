/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * header_check.c - compiled (never run) by CTest as strict C99 and as C++ to prove that
 * fastept.h and fastept_inline.h need nothing beyond the standard and that the structs have the sizes the managed
 * bindings assume. The negative-array trick is a compile-time assertion in both languages.
 */

#include "fastept.h"
#include "fastept.h" /* include guard */
#include "fastept_inline.h"
#include "fastept_inline.h" /* include guard */

#include <stddef.h>

#define FASTEPT_HEADER_CHECK(name, cond) typedef char fastept_header_check_##name[(cond) ? 1 : -1]

FASTEPT_HEADER_CHECK(walker_size, sizeof(fastept_walker) == 48);
FASTEPT_HEADER_CHECK(walker_eptp, offsetof(fastept_walker, eptp) == 16);
FASTEPT_HEADER_CHECK(walker_caps, offsetof(fastept_walker, caps) == 40);
FASTEPT_HEADER_CHECK(translation_size, sizeof(fastept_translation) == 16);
FASTEPT_HEADER_CHECK(translation_status, offsetof(fastept_translation, status) == 12);
FASTEPT_HEADER_CHECK(entry_size, sizeof(fastept_entry) == 16);
FASTEPT_HEADER_CHECK(entry_order, offsetof(fastept_entry, order) == 12);
FASTEPT_HEADER_CHECK(set_result_size, sizeof(fastept_set_result) == 24);
FASTEPT_HEADER_CHECK(set_result_frames, offsetof(fastept_set_result, frames_used) == 20);
FASTEPT_HEADER_CHECK(invalid_mfn, FASTEPT_INVALID_MFN == ~(uint64_t)0);
FASTEPT_HEADER_CHECK(eptp_caps_size, sizeof(fastept_eptp_caps) == 16);
FASTEPT_HEADER_CHECK(prepared_size, sizeof(fastept_prepared_walker) == 88);
FASTEPT_HEADER_CHECK(prepared_limit, offsetof(fastept_prepared_walker, gpa_limit) == 80);
FASTEPT_HEADER_CHECK(version_number, FASTEPT_VERSION_MAJOR >= 0 && FASTEPT_VERSION_MINOR >= 0 && FASTEPT_VERSION_PATCH >= 0);

/* Every function with its exact type, so a signature change breaks this file. */
typedef uint32_t (*abi_version_fn)(void);
typedef uint64_t (*make_eptp_fn)(uint64_t, uint32_t, uint32_t);
typedef int32_t (*walker_check_fn)(const fastept_walker *);
typedef fastept_translation (*translate_fn)(const fastept_walker *, uint64_t, uint32_t);
typedef uint64_t (*translate_batch_fn)(const fastept_walker *, const uint64_t *, uint64_t, uint32_t, fastept_translation *);
typedef fastept_entry (*get_entry_fn)(const fastept_walker *, uint64_t);
typedef int32_t (*set_entry_fn)(fastept_walker *, const uint64_t *, uint32_t, uint64_t, uint64_t, uint32_t, uint32_t,
                                uint32_t, uint32_t, fastept_set_result *);
typedef uint64_t (*collect_tables_fn)(const fastept_walker *, uint64_t, uint32_t, uint64_t *, uint64_t);
typedef int32_t (*eptp_check_fn)(uint64_t, const fastept_eptp_caps *);
typedef int32_t (*walker_prepare_fn)(const fastept_walker *, fastept_prepared_walker *);
typedef fastept_translation (*translate_inline_fn)(const fastept_prepared_walker *, uint64_t, uint32_t);

struct fastept_header_check_api {
    abi_version_fn abi_version;
    make_eptp_fn make_eptp;
    walker_check_fn walker_check;
    translate_fn translate;
    translate_batch_fn translate_batch;
    get_entry_fn get_entry;
    set_entry_fn set_entry;
    collect_tables_fn collect_tables;
    eptp_check_fn eptp_check;
    walker_prepare_fn walker_prepare;
    translate_inline_fn translate_inline;
};

struct fastept_header_check_api fastept_header_check_functions(void);

struct fastept_header_check_api fastept_header_check_functions(void)
{
    struct fastept_header_check_api api;
    api.abi_version = fastept_abi_version;
    api.make_eptp = fastept_make_eptp;
    api.walker_check = fastept_walker_check;
    api.walker_prepare = fastept_walker_prepare;
    api.translate_inline = fastept_translate_inline;
    api.translate = fastept_translate;
    api.translate_batch = fastept_translate_batch;
    api.get_entry = fastept_get_entry;
    api.set_entry = fastept_set_entry;
    api.collect_tables = fastept_collect_tables;
    api.eptp_check = fastept_eptp_check;
    return api;
}

/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * selftest_read.c - read sections (fastept_read_enter / fastept_read_exit): the slot a section
 * publishes the epoch in, nesting, giving the slot back, and the state the managed reclaimer
 * scans. The race against a managed writer is a managed test (ReclamationBatchTests).
 */

#include "selftest.h"

static int64_t slot_value(const fastept_read_state *s, int32_t token)
{
    const int64_t *p = (const int64_t *)(uintptr_t)(s->slots + (uint64_t)(token - 1) * s->stride);
    return *(const volatile int64_t *)p;
}

void test_read_sections(void)
{
    fastept_read_state s;
    fastept_read_state_get(&s);
    CHECK(s.slot_count == FASTEPT_READ_SLOTS && s.stride == FASTEPT_READ_SLOT_STRIDE, "slot geometry %u x %u",
             s.slot_count, s.stride);
    CHECK(s.slots != 0 && s.epoch != 0 && s.shared != 0, "state addresses missing");
    volatile int64_t *cell = (volatile int64_t *)(uintptr_t)s.epoch;
    if (*cell == 0) {
        /* No managed reclaimer in this process: a section protects nothing, and says so. */
        int32_t none = fastept_read_enter();
        CHECK(none == FASTEPT_READ_UNREGISTERED, "token %d before registration", none);
        fastept_read_exit(none);
        *cell = 7;      /* what the managed reclaimer's registration does: publish its epoch */
    }

    int64_t epoch = *cell;

    int32_t outer = fastept_read_enter();
    CHECK(outer > 0 && outer <= FASTEPT_READ_SLOTS, "outer token %d", outer);
    CHECK(slot_value(&s, outer) == epoch, "slot holds %lld, expected the epoch %lld",
             (long long)slot_value(&s, outer), (long long)epoch);

    int32_t inner = fastept_read_enter();
    CHECK(inner == FASTEPT_READ_NESTED, "nested token %d", inner);
    fastept_read_exit(inner);
    CHECK(slot_value(&s, outer) == epoch, "the nested exit cleared the outer section");

    fastept_read_exit(outer);
    CHECK(slot_value(&s, outer) == 0, "the slot is still set after the outer exit");

    /* The same thread keeps its slot; once released, a new section takes one again. */
    int32_t again = fastept_read_enter();
    CHECK(again == outer, "token %d after re-entering, expected %d", again, outer);
    fastept_read_exit(again);
    fastept_read_release();
    int32_t after = fastept_read_enter();
    CHECK(after > 0, "no slot after release: token %d", after);
    fastept_read_exit(after);
    fastept_read_release();
    CHECK(*(const volatile int64_t *)(uintptr_t)s.shared == 0, "the shared count is not zero");
}

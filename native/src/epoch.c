/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * epoch.c - read sections for C walkers, honoured by the managed epoch reclaimer.
 *
 * A C thread that walks tables a managed writer may unlink (and the managed reclaimer free)
 * publishes, for the length of its walk, the epoch it saw in a slot of its own, exactly as a
 * managed reader does (src/Walker/Internal/Epoch.cs): a plain release store, no fence. The
 * managed reclaimer advances the epoch cell here, issues a process-wide barrier (membarrier),
 * then reads every slot: a table unlinked before the pass advanced is freed only when no slot
 * holds an epoch at or below its stamp. A thread that finds no free slot counts itself in a
 * shared counter (an atomic read-modify-write, a full fence) that holds back every free.
 */

#include "internal.h"

typedef struct read_slot {
    _Atomic int64_t epoch;          /* 0 = not reading; else the epoch seen on entry */
    _Atomic int32_t in_use;         /* claimed by a thread */
    char pad[FASTEPT_READ_SLOT_STRIDE - sizeof(int64_t) - sizeof(int32_t)];
} read_slot;

_Static_assert(sizeof(read_slot) == FASTEPT_READ_SLOT_STRIDE, "one slot per cache line");

static _Alignas(64) read_slot g_slots[FASTEPT_READ_SLOTS];
static _Alignas(64) _Atomic int64_t g_epoch;      /* 0 until the managed reclaimer registered the slots */
static _Alignas(64) _Atomic int64_t g_shared;

/* This thread's slot index + 1 (0: none yet) and section depth. */
static _Thread_local int32_t t_slot;
static _Thread_local int32_t t_depth;

static int32_t claim_slot(void)
{
    for (int32_t i = 0; i < FASTEPT_READ_SLOTS; i++) {
        int32_t expected = 0;
        if (atomic_load_explicit(&g_slots[i].in_use, memory_order_relaxed) == 0
            && atomic_compare_exchange_strong(&g_slots[i].in_use, &expected, 1)) {
            return i + 1;
        }
    }

    return 0;
}

int32_t fastept_read_enter(void)
{
    if (t_depth > 0) {
        t_depth++;
        return FASTEPT_READ_NESTED;
    }

    int64_t epoch = atomic_load_explicit(&g_epoch, memory_order_acquire);
    if (epoch == 0) {
        return FASTEPT_READ_UNREGISTERED;   /* no reclaimer reads the slots: nothing to announce */
    }

    t_depth = 1;
    if (t_slot == 0) {
        t_slot = claim_slot();
    }

    if (t_slot == 0) {
        atomic_fetch_add(&g_shared, 1);     /* seq_cst: a full fence before the walk's loads */
        return FASTEPT_READ_SHARED;
    }

    atomic_store_explicit(&g_slots[t_slot - 1].epoch, epoch, memory_order_release);
    /* Keep the compiler from moving the walk's loads above the store; the CPU may, and the
       reclaimer's process-wide barrier covers that. */
    atomic_signal_fence(memory_order_seq_cst);
    return t_slot;
}

void fastept_read_exit(int32_t token)
{
    if (token == FASTEPT_READ_UNREGISTERED) {
        return;
    }

    t_depth--;
    if (token > 0 && token <= FASTEPT_READ_SLOTS) {
        atomic_store_explicit(&g_slots[token - 1].epoch, 0, memory_order_release);
    } else if (token == FASTEPT_READ_SHARED) {
        atomic_fetch_sub_explicit(&g_shared, 1, memory_order_release);
    }
}

void fastept_read_release(void)
{
    if (t_slot != 0 && t_depth == 0) {
        atomic_store_explicit(&g_slots[t_slot - 1].epoch, 0, memory_order_release);
        atomic_store_explicit(&g_slots[t_slot - 1].in_use, 0, memory_order_release);
        t_slot = 0;
    }
}

void fastept_read_state_get(fastept_read_state *state)
{
    if (state == NULL) {
        return;
    }

    state->slots = (uint64_t)(uintptr_t)&g_slots[0].epoch;
    state->epoch = (uint64_t)(uintptr_t)&g_epoch;
    state->shared = (uint64_t)(uintptr_t)&g_shared;
    state->slot_count = FASTEPT_READ_SLOTS;
    state->stride = FASTEPT_READ_SLOT_STRIDE;
}

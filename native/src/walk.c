/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * walk.c - the hardware walk: fastept_translate, the general walk every batch path finishes
 * with, and the scalar batch loop (batch.c chooses among the batch paths).
 *
 * The rules are those of Intel SDM Vol. 3C 29.3 as the managed P2m.Walk/WalkFrom apply them:
 *  - an entry with r/w/x = 000 is not present: EPT violation at that level, qualification =
 *    the access only (bits 3-5 stay 0: the GPA has no permissions at all);
 *  - write-without-read (rwx 010 / 110) and, without the execute-only capability, rwx 100 are
 *    misconfigurations (29.3.3.1), checked before anything else in the entry;
 *  - a non-leaf entry must have bits 6:3 and 51:MAXPHYADDR clear, and (FastEpt) point inside
 *    host memory, else misconfiguration;
 *  - a leaf (level 1, or bit 7 at level 2/3) must have bits 51:MAXPHYADDR clear, an aligned
 *    frame field (20:12 for 2M, 29:12 for 1G), 1G only with the capability, and a memory type
 *    other than 2, 3, 7; bit 7 at level 4/5 is reserved. Misconfiguration wins over violation;
 *  - the effective rights are the AND of r/w/x over every level; a violation reports them in
 *    exit-qualification bits 3-5 next to the access in bits 0-2 (27.2.1, Table 27-7);
 *  - with EPTP bit 6 the walk sets the accessed flag of every non-leaf entry it uses (as it
 *    goes, even if the walk fails further down) and, only for a successful translation, the
 *    accessed flag of the leaf plus its dirty flag for a write (29.3.5), each with one
 *    compare-exchange against the value the walk read: if the slot changed in between (a
 *    writer replaced or removed the entry), the walk starts again from the root, as the CPU
 *    does. A blind atomic OR would turn a just-removed slot (suppress-#VE only) into one with A
 *    set, which reads as a valid RAM entry of MFN 0, and would mark an entry the walk never used.
 * Every slot is loaded exactly once per walk; all decisions about it use that snapshot.
 */

#include "walk.h"

#include <string.h>

#ifdef FASTEPT_TEST_HOOKS
/* Test builds only (the driver's static library): called between a walk's read of a slot and
   its A/D compare-exchange on it, so a test can change the slot inside that window. */
EPT_HIDDEN void (*ept_test_ad_hook)(uint64_t *slot, unsigned level);
#define EPT_AD_HOOK(slot, level)              \
    do {                                      \
        if (ept_test_ad_hook != NULL) {       \
            ept_test_ad_hook((slot), (level)); \
        }                                     \
    } while (0)
#else
#define EPT_AD_HOOK(slot, level) ((void)0)
#endif

/*
 * Sets `want` (accessed; dirty too for a written leaf) in *slot at `level` by one
 * compare-exchange against `pte`, the value the walk read and decided on. Returns 0 when the
 * slot holds anything else (a writer changed it after the read): the walk must start again.
 * A writer compare-exchanges against its own snapshot, so this update makes it rebuild.
 */
static inline int ept_try_set_ad(uint64_t *slot, uint64_t pte, uint64_t want, unsigned level)
{
    EPT_AD_HOOK(slot, level);
    (void)level;
    return ept_cas(slot, pte, pte | want);
}

/* The leaf's A (and, for a write, D) flags: 1 when already set in the snapshot or now set. */
static inline int ept_set_accessed_dirty(uint64_t *slot, uint64_t pte, uint32_t access, unsigned level)
{
    uint64_t want = EPT_ACCESSED | ((access & FASTEPT_ACCESS_WRITE) != 0 ? EPT_DIRTY : 0);
    return (pte & want) == want || ept_try_set_ad(slot, pte, want, level);
}

/*
 * The general walk (the managed WalkFrom), from `level`, whose slot was already read into
 * `pte`; `rights` is the r/w/x AND over the levels above. Every rule in the hardware's order;
 * the fast path hands over anything it does not handle itself, so no slot is read twice.
 */
EPT_HIDDEN EPT_NOINLINE fastept_translation ept_walk_from(const fastept_walker *w, uint64_t gpa, uint32_t access, unsigned level,
                                           uint64_t *slot, uint64_t pte, uint64_t rights)
{
    uint8_t *base = w->host_base;
    const uint64_t frames = w->host_frames;
    const uint64_t high = ept_high_reserved(w->host_address_bits);
    const uint64_t non_leaf_reserved = high | UINT64_C(0x78);          /* bits 6:3 and 51:MAXPHYADDR */
    /* Bit n set: rwx value n misconfigures - write without read always, execute-only without
       the capability (SDM 29.3.3.1). */
    const uint32_t bad_rwx = (1u << 2) | (1u << 6) | ((w->caps & FASTEPT_CAP_EXECUTE_ONLY) != 0 ? 0u : 1u << 4);
    const int ad = ept_ad_of(w->eptp);
    unsigned shift = EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 1);
    for (;;) {
        uint64_t rwx = pte & EPT_RWX_MASK;
        if (rwx == 0) {
            /* Not present: bits 3-5 stay 0 (the GPA has no permissions at all). */
            return ept_result(FASTEPT_STATUS_VIOLATION, 0, level, access);
        }

        if (((bad_rwx >> rwx) & 1u) != 0) {
            return ept_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        if (level == 1 || (pte & EPT_SUPERPAGE) != 0) {
            /* A leaf: PML4E/PML5E bit 7 is reserved, 1G needs the capability, the frame must be
               aligned to the page, memory types 2, 3 and 7 are reserved. */
            uint64_t reserved = level == 1 ? high
                                : level == 2 ? high | UINT64_C(0x1FF000)
                                : level == 3 && (w->caps & FASTEPT_CAP_1G) != 0 ? high | UINT64_C(0x3FFFF000)
                                : ~UINT64_C(0);
            if ((pte & reserved) != 0 || ((EPT_BAD_MEMTYPES >> ((pte >> EPT_MEMTYPE_SHIFT) & 7)) & 1u) != 0) {
                return ept_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
            }

            rights &= rwx;
            if ((access & ~(uint32_t)rights) != 0) {
                return ept_result(FASTEPT_STATUS_VIOLATION, 0, level, access | (uint32_t)(rights << 3));
            }

            if (ad && !ept_set_accessed_dirty(slot, pte, access, level)) {
                goto restart;
            }

            uint64_t offset_mask = (UINT64_C(1) << shift) - 1;
            return ept_result(FASTEPT_STATUS_OK, (pte & EPT_MFN_MASK & ~offset_mask) | (gpa & offset_mask), level, 0);
        }

        uint64_t next = ept_mfn_of(pte);
        if ((pte & non_leaf_reserved) != 0 || next >= frames) {
            return ept_result(FASTEPT_STATUS_MISCONFIG, 0, level, 0);
        }

        if (ad && (pte & EPT_ACCESSED) == 0 && !ept_try_set_ad(slot, pte, EPT_ACCESSED, level)) {
            goto restart;
        }

        rights &= rwx;
        level--;
        shift -= EPT_TABLE_ORDER;
        slot = ept_slot(base, next, gpa >> EPT_PAGE_BITS, level);
        pte = ept_load(slot);
        continue;

    restart:
        /* The entry changed between the read and the A/D update: nothing read so far counts. */
        level = ept_levels_of(w->eptp);
        shift = EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 1);
        rights = EPT_RWX_MASK;
        slot = ept_slot(base, ept_mfn_of(w->eptp), gpa >> EPT_PAGE_BITS, level);
        pte = ept_load(slot);
    }
}

/*
 * One step down the fast path: if *pte (read from *slot) is a readable pointer with bits 7:3
 * and 51:MAXPHYADDR clear and its table inside host memory (a subset of the well-formed
 * pointers: an odd rwx can never misconfigure), set its accessed flag when A/D is on, AND its
 * rights in and read the slot of the next level that `shift` selects, and return 1. Otherwise
 * return 0 having changed nothing (the general walk decides), or -1 when the accessed flag's
 * compare-exchange found the slot changed (the walk starts again from the root). With `ad` a
 * constant 0 the -1 case compiles away.
 */
EPT_HOT int ept_descend(const struct walk_ctx *c, int ad, uint64_t gpa, unsigned shift, uint64_t **slot,
                        uint64_t *pte, uint64_t *rights)
{
    uint64_t e = *pte;
    uint64_t next = e & EPT_MFN_MASK;
    if ((e & c->pointer_mask) != 1u || next >= c->frame_limit) {
        return 0;
    }

    /* Level of this slot: the next table's index starts at `shift`, this one's 9 bits above. */
    if (ad && (e & EPT_ACCESSED) == 0 && !ept_try_set_ad(*slot, e, EPT_ACCESSED, (shift - EPT_PAGE_BITS) / EPT_TABLE_ORDER + 2)) {
        return -1;
    }

    *rights &= e;
    *slot = (uint64_t *)(void *)(c->base + next) + ((gpa >> shift) & (EPT_ENTRIES - 1));
    *pte = ept_load(*slot);
    return 1;
}

/*
 * The walk: the common shape (readable well-formed pointers down to a readable 4K leaf that
 * translates) straight-line with one or two tests per level, unrolled; anything else goes on
 * in ept_walk_from with the snapshot already read. `ad` is a constant at each call site (see
 * ept_walk), so the A/D code disappears from walks that do not need it.
 */
EPT_HOT fastept_translation ept_walk_ad(const fastept_walker *w, const struct walk_ctx *c, int ad, uint64_t gpa,
                                        uint32_t access)
{
    unsigned level;
    uint64_t rights;
    uint64_t *slot;
    uint64_t pte;
    int r;
restart:
    level = c->levels;
    rights = EPT_RWX_MASK;
    slot = (uint64_t *)(void *)(c->base + c->root_slots)
           + ((gpa >> (EPT_PAGE_BITS + EPT_TABLE_ORDER * (level - 1))) & (EPT_ENTRIES - 1));
    pte = ept_load(slot);
    if (level == 5) {
        if ((r = ept_descend(c, ad, gpa, 39, &slot, &pte, &rights)) <= 0) {
            goto stop;
        }

        level = 4;
    }

    if ((r = ept_descend(c, ad, gpa, 30, &slot, &pte, &rights)) <= 0) {
        goto stop;
    }

    level = 3;
    if ((r = ept_descend(c, ad, gpa, 21, &slot, &pte, &rights)) <= 0) {
        goto stop;
    }

    level = 2;
    if ((r = ept_descend(c, ad, gpa, 12, &slot, &pte, &rights)) <= 0) {
        goto stop;
    }

    level = 1;
    /* A readable PTE (so rwx cannot misconfigure) without reserved bits 51:MAXPHYADDR, with a
       defined memory type, granting the access. */
    if ((pte & c->leaf_mask) == 1u && ((EPT_BAD_MEMTYPES >> ((pte >> EPT_MEMTYPE_SHIFT) & 7)) & 1u) == 0
        && (access & ~(uint32_t)(rights & pte)) == 0) {
        if (ad && !ept_set_accessed_dirty(slot, pte, access, 1)) {
            goto restart;
        }

        return ept_result(FASTEPT_STATUS_OK, (pte & EPT_MFN_MASK) | (gpa & EPT_OFFSET_MASK), 1, 0);
    }

stop:
    if (ad && r < 0) {
        goto restart;   /* an accessed flag's compare-exchange found the pointer changed */
    }

    return ept_walk_from(w, gpa, access, level, slot, pte, rights & EPT_RWX_MASK);
}

EPT_HOT fastept_translation ept_walk(const fastept_walker *w, const struct walk_ctx *c, uint64_t gpa, uint32_t access)
{
    return c->ad ? ept_walk_ad(w, c, 1, gpa, access) : ept_walk_ad(w, c, 0, gpa, access);
}

/* The EPTPs fastept_translate's straight line (and fastept_translate_inline) walks: 4 levels
   (bits 5:3 = 3) without A/D updates (bit 6 clear). */
static inline int ept_straight_line(uint64_t eptp)
{
    return (eptp & UINT64_C(0x78)) == UINT64_C(0x18);
}

/*
 * What fastept_translate's straight line does not finish: 5 levels or A/D updates (level 0:
 * nothing read yet, the general walker from the root), or a walk off the fast shape, with the
 * snapshot read so far (level and rights packed as rights | level << 8, so the call has six
 * arguments and compiles to a jump).
 */
static EPT_NOINLINE fastept_translation ept_translate_rest(const fastept_walker *w, uint64_t gpa, uint32_t access,
                                                           uint64_t *slot, uint64_t pte, uint64_t rights_level)
{
    unsigned level = (unsigned)(rights_level >> 8);
    if (level == 0) {
        struct walk_ctx c;
        ept_ctx(w, &c);
        return ept_walk(w, &c, gpa, access);
    }

    return ept_walk_from(w, gpa, access, level, slot, pte, rights_level & EPT_RWX_MASK);
}

/* One level of fastept_translate's straight line: leave for ept_translate_rest unless pte is a
   well-formed readable pointer into host memory, else read the next level's slot. */
#define EPT_TRANSLATE_STEP(shift)                                                                   \
    do {                                                                                            \
        uint64_t next = pte & EPT_MFN_MASK;                                                         \
        if ((pte & pointer_mask) != 1u || next >= limit) {                                          \
            goto rest;                                                                              \
        }                                                                                           \
                                                                                                    \
        rights &= pte;                                                                              \
        slot = (uint64_t *)(void *)(base + next) + ((gpa >> (shift)) & (EPT_ENTRIES - 1));          \
        pte = ept_load(slot);                                                                       \
        level--;                                                                                    \
    } while (0)

/*
 * The common case straight-line and short: 4 levels without A/D updates (EPTP bits 6:3 =
 * 0011b), readable well-formed pointers down to a plain readable 4K leaf that grants the access.
 * Few live values and every other case in one out-of-line function reached by a jump, so the
 * hot path needs no stack frame: a C caller's loop keeps more walks in flight.
 */
fastept_translation fastept_translate(const fastept_walker *walker, uint64_t gpa, uint32_t access)
{
    if (!ept_walker_usable(walker) || access - 1u >= 7u || (gpa >> walker->address_bits) != 0) {
        return ept_bad_argument();
    }

    const uint64_t eptp = walker->eptp;
    if (!ept_straight_line(eptp)) {
        return ept_translate_rest(walker, gpa, access, NULL, 0, 0);
    }

    uint8_t *base = walker->host_base;
    const uint64_t frames = walker->host_frames;
    const uint64_t limit = frames > EPT_MFN_FIELD_MAX ? EPT_MFN_MASK + 1 : frames << EPT_PAGE_BITS;
    const uint64_t leaf_mask = ept_high_reserved(walker->host_address_bits) | 1u;
    const uint64_t pointer_mask = leaf_mask | UINT64_C(0xF8);
    uint64_t *slot = (uint64_t *)(void *)(base + (eptp & EPT_MFN_MASK)) + ((gpa >> 39) & (EPT_ENTRIES - 1));
    uint64_t pte = ept_load(slot);
    uint64_t rights = EPT_RWX_MASK;
    unsigned level = 4;
    EPT_TRANSLATE_STEP(30);
    EPT_TRANSLATE_STEP(21);
    EPT_TRANSLATE_STEP(12);
    if ((pte & leaf_mask) == 1u && ((EPT_BAD_MEMTYPES >> ((pte >> EPT_MEMTYPE_SHIFT) & 7)) & 1u) == 0
        && (access & ~(uint32_t)(rights & pte)) == 0) {
        return ept_result(FASTEPT_STATUS_OK, (pte & EPT_MFN_MASK) | (gpa & EPT_OFFSET_MASK), 1, 0);
    }

rest:
    return ept_translate_rest(walker, gpa, access, slot, pte, (rights & EPT_RWX_MASK) | ((uint64_t)level << 8));
}

/*
 * The walker checked once for fastept_translate_inline: the inline walk applies exactly where
 * fastept_translate's straight line does (a usable walker, 4 levels, no A/D updates), with the
 * same masks and frame limit; everywhere else gpa_limit is 0, so every inline call goes to
 * fastept_translate on the copy and answers as it does.
 */
int32_t fastept_walker_prepare(const fastept_walker *walker, fastept_prepared_walker *prepared)
{
    if (prepared == NULL) {
        return FASTEPT_ERR_RANGE;
    }

    memset(prepared, 0, sizeof(*prepared));
    if (walker == NULL) {
        return FASTEPT_ERR_RANGE;
    }

    prepared->walker = *walker;
    const fastept_walker *w = &prepared->walker;   /* decide on the copy: the caller may change *walker meanwhile */
    if (!ept_walker_usable(w)) {
        return FASTEPT_ERR_RANGE;
    }

    struct walk_ctx c;
    ept_ctx(w, &c);
    prepared->root = (const uint64_t *)(const void *)(c.base + c.root_slots);
    prepared->frame_limit = c.frame_limit;
    prepared->pointer_mask = c.pointer_mask;
    prepared->leaf_mask = c.leaf_mask;
    if (ept_straight_line(w->eptp)) {
        prepared->gpa_limit = UINT64_C(1) << w->address_bits;
    }

    return FASTEPT_OK;
}

/*
 * One complete walk after another (BatchPath.Scalar): the walker of fastept_translate in a
 * loop, a GPA beyond the guest's address width answered as a bad argument. The other batch
 * paths (batch_pipelined.c, batch_gather.c) hand it what they do not cover.
 */
EPT_HIDDEN void ept_batch_scalar(const fastept_walker *w, const struct walk_ctx *c, const uint64_t *gpas, uint64_t count,
                                 uint32_t access, fastept_translation *results)
{
    const uint32_t address_bits = w->address_bits;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t gpa = gpas[i];
        results[i] = (gpa >> address_bits) != 0 ? ept_bad_argument() : ept_walk(w, c, gpa, access);
    }
}

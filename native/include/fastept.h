/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * fastept.h - the native twin of FastEpt's EPT walker.
 *
 * A C99 library over the same memory layout as the managed FastEpt.P2m: host memory is one
 * byte range of 4 KiB frames (frame n at host_base + n * 4096), EPT tables are frames in it,
 * and an EPTP names the root. Everything here is plain data and plain functions: no allocation,
 * no locks, and no global state except the read-section slots (fastept_read_enter). Readers
 * (translate, get_entry) may run on any number of threads alongside one writer (set_entry);
 * writers must be serialised by the caller.
 *
 * The bit layout of an entry, the walk rules (Intel SDM Vol. 3C 29.3) and the p2m semantics
 * (Xen's ept_set_entry / ept_get_entry) are those documented for the managed library:
 * for the same memory and the same arguments both produce bit-identical results.
 */

#ifndef FASTEPT_H
#define FASTEPT_H

#include <stdint.h>

/* The library's version, the same as the FastEpt NuGet packages' (Directory.Build.props
   <Version>; CMake reads it from there and a CTest test fails when these differ). */
#define FASTEPT_VERSION_MAJOR 0
#define FASTEPT_VERSION_MINOR 4 /* minor version (0.x: a new minor may change the ABI) */
#define FASTEPT_VERSION_PATCH 0 /* patch version */
#define FASTEPT_VERSION "0.4.0" /* "MAJOR.MINOR.PATCH" */

/* FASTEPT_API marks every exported function: dllexport while building the DLL (CMake defines
   FASTEPT_BUILDING), dllimport for its users, default visibility on ELF/Mach-O (the library is
   built with -fvisibility=hidden, so only these symbols are exported). Define FASTEPT_STATIC
   when linking a static build. */
#if defined(FASTEPT_STATIC)
#define FASTEPT_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(FASTEPT_BUILDING)
#define FASTEPT_API __declspec(dllexport)
#else
#define FASTEPT_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define FASTEPT_API __attribute__((visibility("default")))
#else
#define FASTEPT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header's ABI: bumped whenever a struct or signature changes. */
enum fastept_abi {
    FASTEPT_ABI_VERSION = 3
};

/* Outcome of one walk (same values as FastEpt.EptStatus). */
enum fastept_status {
    FASTEPT_STATUS_OK = 0,            /* translated: hpa is valid */
    FASTEPT_STATUS_VIOLATION = 1,     /* EPT violation: not present or insufficient rights */
    FASTEPT_STATUS_MISCONFIG = 2,     /* EPT misconfiguration: a malformed entry on the walk */
    FASTEPT_STATUS_BAD_ARGUMENT = 255 /* GPA, access or walker out of range: nothing was read */
};

/* Access kinds, combinable (same values as FastEpt.AccessKind). */
enum fastept_access {
    FASTEPT_ACCESS_READ = 1,
    FASTEPT_ACCESS_WRITE = 2,
    FASTEPT_ACCESS_EXECUTE = 4
};

/* CPU and domain capabilities in fastept_walker.caps (FastEpt.P2mOptions equivalents). */
enum fastept_caps {
    FASTEPT_CAP_EXECUTE_ONLY = 1,        /* execute-only entries allowed (P2mOptions.ExecuteOnly) */
    FASTEPT_CAP_1G = 2,                  /* 1 GiB pages allowed (P2mOptions.Support1G) */
    FASTEPT_CAP_PML = 4,                 /* page-modification logging (P2mOptions.PmlEnabled) */
    FASTEPT_CAP_PAGING_WRITE = 8,        /* paging-write bit usable (P2mOptions.PagingWriteSupported) */
    FASTEPT_CAP_EXEC_SUPERPAGES = 16,    /* superpages may keep x (P2mOptions.ExecutableSuperpages) */
    FASTEPT_CAP_IOREQ_CLAIMS_WRITES = 32 /* an ioreq server claims writes (P2mOptions.IoreqServerClaimsWrites) */
};

/* Page orders accepted by fastept_set_entry (same values as FastEpt.PageOrder). */
enum fastept_order {
    FASTEPT_ORDER_4K = 0,
    FASTEPT_ORDER_2M = 9,
    FASTEPT_ORDER_1G = 18
};

/* Suppress-#VE modes for fastept_set_entry (same values as FastEpt.SuppressVe). */
enum fastept_suppress_ve {
    FASTEPT_SVE_INHERIT = 0,
    FASTEPT_SVE_CLEAR = 1,
    FASTEPT_SVE_SET = 2
};

/* The argument fastept_check_set names when it refuses a set. */
enum fastept_set_argument {
    FASTEPT_ARG_NONE = 0,
    FASTEPT_ARG_GFN = 1,
    FASTEPT_ARG_MFN = 2,
    FASTEPT_ARG_ORDER = 3,
    FASTEPT_ARG_TYPE = 4,
    FASTEPT_ARG_ACCESS = 5,
    FASTEPT_ARG_SUPPRESS_VE = 6
};

/* Return codes of the functions that change or check state. */
enum fastept_result {
    FASTEPT_OK = 0,
    FASTEPT_ERR_RANGE = -1,      /* an argument is outside its range or enum; nothing changed */
    FASTEPT_ERR_ALIGN = -2,      /* gfn or mfn not aligned to the order; nothing changed */
    FASTEPT_ERR_PERMISSION = -3, /* type + access would misconfigure (write without read, unsupported execute-only) */
    FASTEPT_ERR_NO_FRAMES = -4   /* the frame pool is too small; nothing was published or consumed */
};

/* Read sections (fastept_read_enter / fastept_read_exit): C code that walks tables a managed
   FastEpt writer may unlink brackets its walks with them, so the managed epoch reclaimer never
   frees a table the walk may still be in. */
enum fastept_read {
    FASTEPT_READ_SLOTS = 256,        /* threads that can hold a slot at once; more share one count that holds back every free */
    FASTEPT_READ_SLOT_STRIDE = 64,   /* bytes between two slots (one cache line each) */
    FASTEPT_READ_NESTED = 0,         /* token: a section inside an open one (exit changes nothing) */
    FASTEPT_READ_SHARED = -1,        /* token: no slot was free; the section is in the shared count */
    FASTEPT_READ_UNREGISTERED = -2   /* token: no managed reclaimer registered the slots yet (FastEpt.Interop.NativeWalker.RegisterReadSections); nothing is protected */
};

/* Frame number meaning "no frame" (also used for GFNs); same as FastEpt.Mfn.Invalid. */
#define FASTEPT_INVALID_MFN UINT64_C(0xFFFFFFFFFFFFFFFF)

/* One EPT hierarchy in host memory and the CPU it is walked as. */
typedef struct fastept_walker {
    uint8_t *host_base;         /* address of host frame 0 */
    uint64_t host_frames;       /* host memory size in 4 KiB frames: table pointers at or above are misconfigurations */
    uint64_t eptp;              /* root HPA | (levels - 1) << 3 | memory type | A/D enable (bit 6) */
    uint64_t max_mapped_pfn;    /* get_entry: GFNs above it are holes without a walk; set_entry raises it; UINT64_MAX: always walk */
    uint32_t address_bits;      /* guest-physical address width: 21 .. 12 + 9 * levels */
    uint32_t host_address_bits; /* MAXPHYADDR: 32 .. 52 */
    uint32_t caps;              /* FASTEPT_CAP_* flags */
    uint32_t default_access;    /* p2m access recorded in new middle entries (P2mOptions.DefaultAccess; 7 = rwx) */
} fastept_walker;

/* The result of one walk; the same 16 bytes as FastEpt.EptTranslation. */
typedef struct fastept_translation {
    uint64_t hpa;           /* host-physical address for FASTEPT_STATUS_OK, else 0 */
    uint32_t qualification; /* violation: exit-qualification bits 0-2 (access) and 3-5 (effective rwx); else 0 */
    uint8_t status;         /* FASTEPT_STATUS_* */
    uint8_t level;          /* leaf level for OK, else the failing level (5/4 = top .. 1 = PTE) */
    uint8_t reserved[2];    /* always 0 */
} fastept_translation;

/* What the p2m says about one GFN (FastEpt.P2mEntry); a hole is INVALID_MFN, type 4 (mmio_dm), access 0, suppress_ve 1. */
typedef struct fastept_entry {
    uint64_t mfn;        /* this GFN's own frame (superpage base + offset), or FASTEPT_INVALID_MFN */
    uint8_t type;        /* p2m type (FastEpt.P2mType value) */
    uint8_t access;      /* p2m access (FastEpt.P2mAccess value) */
    uint8_t suppress_ve; /* 0 or 1 */
    uint8_t is_mapped;   /* 1 for any valid entry, including populate-on-demand and paging types */
    int32_t order;       /* 0/9/18 for a mapping; for a hole the order where the walk stopped; -1: bad argument */
} fastept_entry;

/* Where the read-section state lives, for the managed reclaimer (FastEpt.Interop registers it when it loads the library). */
typedef struct fastept_read_state {
    uint64_t slots;      /* address of FASTEPT_READ_SLOTS int64 epochs, FASTEPT_READ_SLOT_STRIDE bytes apart (0 = not reading) */
    uint64_t epoch;      /* address of the int64 epoch a section publishes; the managed reclaimer advances it */
    uint64_t shared;     /* address of the int64 count of sections that found no free slot */
    uint32_t slot_count; /* FASTEPT_READ_SLOTS */
    uint32_t stride;     /* FASTEPT_READ_SLOT_STRIDE */
} fastept_read_state;

/* What fastept_set_entry did besides publishing its entry. */
typedef struct fastept_set_result {
    uint64_t retired_table; /* root MFN of a table subtree the call unlinked (free it once no reader can be inside), or FASTEPT_INVALID_MFN */
    int64_t pod_delta;      /* change in the number of populate-on-demand GFNs (Xen's pod.entry_count) */
    uint32_t retired_level; /* level of that table (1 = page table), 0 if none */
    uint32_t frames_used;   /* how many frames from the front of the pool the call linked into the tree */
} fastept_set_result;

/* Returns FASTEPT_ABI_VERSION of the compiled library. */
FASTEPT_API uint32_t fastept_abi_version(void);

/* Builds an EPTP for a root table: root_mfn << 12 | (levels - 1) << 3 | write-back | A/D bit when access_dirty. */
FASTEPT_API uint64_t fastept_make_eptp(uint64_t root_mfn, uint32_t levels, uint32_t access_dirty);

/* Returns FASTEPT_OK if every walker field is in range (root inside host memory, levels 4 or 5, widths valid, and the EPTP passes fastept_eptp_check against the walker's own CPU: UC/WB, 4/5 levels, A/D, MAXPHYADDR = host_address_bits, no shadow-stack control), else FASTEPT_ERR_RANGE. */
FASTEPT_API int32_t fastept_walker_check(const fastept_walker *walker);

/* Outcome of fastept_eptp_check (same values as FastEpt.EptpStatus): the first failing EPTP field, in bit order. */
enum fastept_eptp_status {
    FASTEPT_EPTP_OK = 0,            /* VM entry accepts the EPTP */
    FASTEPT_EPTP_MEMORY_TYPE = 1,   /* bits 2:0 are not UC (0) or WB (6), or that type's capability bit (8 or 14) is clear */
    FASTEPT_EPTP_WALK_LENGTH = 2,   /* bits 5:3 are not 3 (4-level, capability bit 6) or 4 (5-level, capability bit 7), or that bit is clear */
    FASTEPT_EPTP_ACCESS_DIRTY = 3,  /* bit 6 (accessed/dirty enable) set while capability bit 21 is clear */
    FASTEPT_EPTP_SHADOW_STACK = 4,  /* bit 7 (supervisor shadow-stack control) set without FASTEPT_EPTP_CAP_SHADOW_STACK */
    FASTEPT_EPTP_RESERVED = 5,      /* a reserved bit in 11:8 is set */
    FASTEPT_EPTP_ADDRESS = 6,       /* a bit at or above MAXPHYADDR (bits 63:MAXPHYADDR) is set */
    FASTEPT_EPTP_BAD_CAPS = 255     /* caps is NULL, max_phys_addr is outside 32 .. 52 or flags has unknown bits: nothing was checked */
};

/* Flags in fastept_eptp_caps.flags. */
enum fastept_eptp_cap_flags {
    FASTEPT_EPTP_CAP_SHADOW_STACK = 1 /* the CPU allows EPTP bit 7 (supervisor shadow-stack control); an input, not read from the MSR */
};

/* What the VM-entry EPTP check depends on: the CPU's EPT capabilities and physical-address width. */
typedef struct fastept_eptp_caps {
    uint64_t ept_vpid_cap; /* IA32_VMX_EPT_VPID_CAP (MSR 0x48C): bit 6 4-level, 7 5-level, 8 UC, 14 WB, 21 accessed/dirty */
    uint32_t max_phys_addr; /* MAXPHYADDR (CPUID 80000008H EAX[7:0]): 32 .. 52 */
    uint32_t flags;        /* FASTEPT_EPTP_CAP_* */
} fastept_eptp_caps;

/* Checks eptp as VM entry does (SDM Vol. 3C "Checks on VMX Controls", EPTP); returns FASTEPT_EPTP_OK or the first failing field (FASTEPT_EPTP_*). */
FASTEPT_API int32_t fastept_eptp_check(uint64_t eptp, const fastept_eptp_caps *caps);

/* Walks gpa for access (FASTEPT_ACCESS_* bits) exactly as the CPU does; lock-free; sets A/D atomically when the EPTP enables them. */
FASTEPT_API fastept_translation fastept_translate(const fastept_walker *walker, uint64_t gpa, uint32_t access);

/* A walker checked once, for the header-inline walk of fastept_inline.h (fastept_translate_inline): a copy of the walker and what its walk derives from it. Prepare again after changing any walker field; the tables may change at any time, as for fastept_translate. */
typedef struct fastept_prepared_walker {
    fastept_walker walker;  /* the walker as prepared: every walk the inline path does not finish is fastept_translate on this copy */
    const uint64_t *root;   /* the root table's first slot (host_base + the EPTP's root HPA) */
    uint64_t frame_limit;   /* a table pointer (bits 51:12, in place) at or above this names no host frame: misconfiguration */
    uint64_t pointer_mask;  /* pte & pointer_mask == 1: readable, bits 7:3 and 51:MAXPHYADDR clear (a well-formed pointer) */
    uint64_t leaf_mask;     /* pte & leaf_mask == 1: readable, bits 51:MAXPHYADDR clear (a 4 KiB leaf's first check) */
    uint64_t gpa_limit;     /* 2^address_bits when the inline walk applies (usable walker, 4 levels, no A/D updates), else 0 */
} fastept_prepared_walker;

/* Fills *prepared from walker for fastept_translate_inline (fastept_inline.h); returns FASTEPT_OK when the walker is usable, else FASTEPT_ERR_RANGE (then every inline call answers as fastept_translate does: a bad argument). NULL prepared: FASTEPT_ERR_RANGE, nothing written. */
FASTEPT_API int32_t fastept_walker_prepare(const fastept_walker *walker, fastept_prepared_walker *prepared);

/* Translates count GPAs into results[0 .. count); returns the number written (count). */
FASTEPT_API uint64_t fastept_translate_batch(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access, fastept_translation *results);

/* Looks up gfn as Xen's get_entry does (no populate-on-demand); lock-free; never changes a table. */
FASTEPT_API fastept_entry fastept_get_entry(const fastept_walker *walker, uint64_t gfn);

/* Maps 2^order frames (type 1 = invalid removes); builds tables from pool frames in private, publishes with one compare-exchange; callers serialise writers. */
FASTEPT_API int32_t fastept_set_entry(fastept_walker *walker, const uint64_t *pool, uint32_t pool_count, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type, uint32_t access, uint32_t suppress_ve, fastept_set_result *result);

/* Checks fastept_set_entry's arguments, writing nothing: its status, the refused argument in *argument, and in *raises_to the max_mapped_pfn a valid entry raises (else FASTEPT_INVALID_MFN). */
FASTEPT_API int32_t fastept_check_set(const fastept_walker *walker, uint64_t gfn, uint64_t mfn, uint32_t order, uint32_t type, uint32_t access, uint32_t suppress_ve, uint32_t *argument, uint64_t *raises_to);

/* Lists the table frames of a subtree (table at level, e.g. a retired one) into out[0 .. capacity); returns how many there are in all. */
FASTEPT_API uint64_t fastept_collect_tables(const fastept_walker *walker, uint64_t table, uint32_t level, uint64_t *out, uint64_t capacity);

/* Opens a read section on this thread (wait-free after the thread's first call); returns the token for fastept_read_exit. Nothing in it may block on a managed writer. */
FASTEPT_API int32_t fastept_read_enter(void);

/* Closes the section opened by the fastept_read_enter that returned token, on the same thread. */
FASTEPT_API void fastept_read_exit(int32_t token);

/* Gives this thread's slot back (call it outside any section before the thread exits; a later fastept_read_enter takes a slot again). */
FASTEPT_API void fastept_read_release(void);

/* Fills state with the addresses of the read-section slots, the epoch cell and the shared count. */
FASTEPT_API void fastept_read_state_get(fastept_read_state *state);

/* Batch paths of fastept_translate_batch_path (the walkers fastept_translate_batch chooses among). */
enum fastept_batch_path {
    FASTEPT_BATCH_AUTO = 0,      /* choose per call, as fastept_translate_batch does (footprint bound, locality, CPU) */
    FASTEPT_BATCH_SCALAR = 1,    /* one complete walk after another */
    FASTEPT_BATCH_PIPELINED = 2, /* software-pipelined walks, each level prefetched 32 walks ahead */
    FASTEPT_BATCH_GATHER = 3     /* groups of 16 walks with AVX2 gathers (pipelined without AVX2) */
};

/* fastept_translate_batch on a chosen FASTEPT_BATCH_* path (results identical on every path); returns the path taken, 0 if count is 0 or a pointer is null, UINT32_MAX for an unknown path (nothing written). */
FASTEPT_API uint32_t fastept_translate_batch_path(const fastept_walker *walker, const uint64_t *gpas, uint64_t count, uint32_t access, fastept_translation *results, uint32_t path);

#ifdef __cplusplus
}
#endif

#endif /* FASTEPT_H */

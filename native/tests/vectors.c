/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 FastEpt contributors */

/*
 * vectors.c - runs the shared walk vectors (tests/Data/translate*.txt, format in
 * tests/Data/README.md) through fastept_translate and fastept_translate_batch.
 */

#define _DEFAULT_SOURCE 1 /* DIR, opendir */

#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEC_FRAMES 64u
#define VEC_MAX_TOKENS 32
#define VEC_LINE_MAX 4096

struct vec_config {
    unsigned levels;
    unsigned maxphyaddr;
    unsigned xo;
    unsigned one_g;
    unsigned ad;
};

static const struct vec_config vec_defaults = { 4, 46, 1, 1, 0 };

/* Splits s in place at blanks; returns the number of tokens or -1 if there are too many. */
static int vec_tokens(char *s, char **tok)
{
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            s++;
        }

        if (*s == '\0') {
            return n;
        }

        if (n == VEC_MAX_TOKENS) {
            return -1;
        }

        tok[n++] = s;
        while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
            s++;
        }

        if (*s != '\0') {
            *s++ = '\0';
        }
    }
}

/* Hex with an optional 0x prefix, at most 16 digits, nothing else. */
static int vec_hex(const char *s, uint64_t *out)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
    }

    if (*s == '\0' || strlen(s) > 16) {
        return 0;
    }

    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (*s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (*s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            return 0;
        }

        v = (v << 4) | d;
    }

    *out = v;
    return 1;
}

/* Decimal, at most 3 digits. */
static int vec_dec(const char *s, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3) {
        return 0;
    }

    unsigned v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }

        v = v * 10 + (unsigned)(*s - '0');
    }

    *out = v;
    return 1;
}

static int vec_access(const char *s, uint32_t *out)
{
    uint32_t a = 0;
    for (; *s != '\0'; s++) {
        uint32_t bit = *s == 'r' ? FASTEPT_ACCESS_READ : *s == 'w' ? FASTEPT_ACCESS_WRITE
                       : *s == 'x' ? FASTEPT_ACCESS_EXECUTE : 0;
        if (bit == 0 || (a & bit) != 0) {
            return 0;
        }

        a |= bit;
    }

    *out = a;
    return a != 0;
}

static int vec_status(const char *s, unsigned *out)
{
    if (strcmp(s, "ok") == 0) {
        *out = FASTEPT_STATUS_OK;
    } else if (strcmp(s, "violation") == 0) {
        *out = FASTEPT_STATUS_VIOLATION;
    } else if (strcmp(s, "misconfig") == 0) {
        *out = FASTEPT_STATUS_MISCONFIG;
    } else {
        return 0;
    }

    return 1;
}

static const char *vec_status_name(unsigned s)
{
    switch (s) {
    case FASTEPT_STATUS_OK:
        return "ok";
    case FASTEPT_STATUS_VIOLATION:
        return "violation";
    case FASTEPT_STATUS_MISCONFIG:
        return "misconfig";
    case FASTEPT_STATUS_BAD_ARGUMENT:
        return "bad-argument";
    default:
        return "?";
    }
}

/* A `config` line: every key starts from its default. Returns 0 on a parse error. */
static int vec_parse_config(char **tok, int n, struct vec_config *cfg)
{
    *cfg = vec_defaults;
    for (int i = 1; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        unsigned v;
        if (eq == NULL || !vec_dec(eq + 1, &v)) {
            return 0;
        }

        *eq = '\0';
        if (strcmp(tok[i], "levels") == 0 && (v == 4 || v == 5)) {
            cfg->levels = v;
        } else if (strcmp(tok[i], "maxphyaddr") == 0 && v >= 32 && v <= 52) {
            cfg->maxphyaddr = v;
        } else if (strcmp(tok[i], "xo") == 0 && v <= 1) {
            cfg->xo = v;
        } else if (strcmp(tok[i], "1g") == 0 && v <= 1) {
            cfg->one_g = v;
        } else if (strcmp(tok[i], "ad") == 0 && v <= 1) {
            cfg->ad = v;
        } else {
            return 0;
        }
    }

    return 1;
}

static void vec_print(const char *what, fastept_translation t)
{
    fprintf(stderr, " %s %s %u 0x%llx 0x%x", what, vec_status_name(t.status), (unsigned)t.level,
            (unsigned long long)t.hpa, (unsigned)t.qualification);
}

/* One `case` line; returns 1 if it matched, 0 on a mismatch, -1 on a parse error. */
static int vec_run_case(char **tok, int n, const struct vec_config *cfg, uint8_t *mem, const char *where)
{
    uint64_t gpa, entries[VEC_MAX_TOKENS], hpa, qual;
    uint32_t access;
    unsigned status, level;
    int arrow = -1;
    for (int i = 3; i < n; i++) {
        if (strcmp(tok[i], "=>") == 0) {
            arrow = i;
            break;
        }
    }

    int count = arrow - 3;
    if (n < 4 || arrow < 0 || count < 1 || (unsigned)count > cfg->levels || n - arrow != 5
        || !vec_hex(tok[1], &gpa) || !vec_access(tok[2], &access) || !vec_status(tok[arrow + 1], &status)
        || !vec_dec(tok[arrow + 2], &level) || level > 5 || !vec_hex(tok[arrow + 3], &hpa)
        || !vec_hex(tok[arrow + 4], &qual) || qual > UINT32_MAX) {
        return -1;
    }

    for (int i = 0; i < count; i++) {
        if (!vec_hex(tok[3 + i], &entries[i])) {
            return -1;
        }
    }

    /* Host memory all zero, root table MFN 0; each entry goes into the table the previous one
       names, at the slot the GPA selects one level down, until an MFN is outside host memory. */
    memset(mem, 0, (size_t)VEC_FRAMES << 12);
    uint64_t table = 0;
    unsigned lvl = cfg->levels;
    for (int i = 0; i < count; i++, lvl--) {
        uint64_t *slot = (uint64_t *)(void *)(mem + (table << 12)) + ((gpa >> (12 + 9 * (lvl - 1))) & 511);
        *slot = entries[i];
        table = (entries[i] & TU_MFN_MASK) >> 12;
        if (table >= VEC_FRAMES) {
            break;
        }
    }

    fastept_walker w;
    w.host_base = mem;
    w.host_frames = VEC_FRAMES;
    w.eptp = fastept_make_eptp(0, cfg->levels, cfg->ad);
    w.max_mapped_pfn = UINT64_MAX;
    w.address_bits = 12 + 9 * cfg->levels;
    w.host_address_bits = cfg->maxphyaddr;
    w.caps = (cfg->xo ? (uint32_t)FASTEPT_CAP_EXECUTE_ONLY : 0u) | (cfg->one_g ? (uint32_t)FASTEPT_CAP_1G : 0u);
    w.default_access = A_RWX;

    fastept_translation t = fastept_translate(&w, gpa, access);
    /* The batch entry point must agree (A/D flags set by the first walk change no result). */
    fastept_translation b;
    uint64_t written = fastept_translate_batch(&w, &gpa, 1, access, &b);
    int ok = t.status == status && t.level == level && t.hpa == hpa && t.qualification == qual
             && t.reserved[0] == 0 && t.reserved[1] == 0;
    int batch_ok = written == 1 && memcmp(&t, &b, sizeof(t)) == 0;
    /* The reference model (reference.c) must reach the hand-derived answer too, before it may
       judge the library on random tables. */
    struct ref_cfg rc = { cfg->levels, VEC_FRAMES, 0, cfg->maxphyaddr, (int)cfg->xo, (int)cfg->one_g, (int)cfg->ad };
    fastept_translation m = reference_translate(mem, &rc, gpa, access);
    int model_ok = m.status == status && m.level == level && m.hpa == hpa && m.qualification == qual;
    if (!model_ok) {
        tu_failures++;
        fprintf(stderr, "%s: MISMATCH gpa 0x%llx %s: expected %s %u 0x%llx 0x%llx, the reference model gives", where,
                (unsigned long long)gpa, tok[2], vec_status_name(status), level, (unsigned long long)hpa,
                (unsigned long long)qual);
        vec_print("model", m);
        fputc('\n', stderr);
        return 0;
    }

    if (!ok || !batch_ok) {
        tu_failures++;
        fprintf(stderr, "%s: MISMATCH gpa 0x%llx %s: expected %s %u 0x%llx 0x%llx, got", where,
                (unsigned long long)gpa, tok[2], vec_status_name(status), level, (unsigned long long)hpa,
                (unsigned long long)qual);
        vec_print("translate", t);
        if (!batch_ok) {
            vec_print("batch", b);
        }

        fputc('\n', stderr);
        return 0;
    }

    return 1;
}

/* Runs one file; returns the number of cases run (mismatches and parse errors are counted in
   tu_failures). */
static unsigned long vec_run_file(const char *path, uint8_t *mem)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        tu_failures++;
        fprintf(stderr, "%s: cannot open\n", path);
        return 0;
    }

    struct vec_config cfg = vec_defaults;
    char line[VEC_LINE_MAX];
    char where[VEC_LINE_MAX + 32];
    unsigned long cases = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
            tu_failures++;
            fprintf(stderr, "%s: parse error: line too long\n", where);
            break;
        }

        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }

        char *tok[VEC_MAX_TOKENS];
        int n = vec_tokens(line, tok);
        if (n == 0) {
            continue;
        }

        if (n > 0 && strcmp(tok[0], "config") == 0) {
            if (!vec_parse_config(tok, n, &cfg)) {
                tu_failures++;
                fprintf(stderr, "%s: parse error in config line\n", where);
            }
        } else if (n > 0 && strcmp(tok[0], "case") == 0) {
            int r = vec_run_case(tok, n, &cfg, mem, where);
            if (r < 0) {
                tu_failures++;
                fprintf(stderr, "%s: parse error in case line\n", where);
            } else {
                cases++;
            }
        } else {
            tu_failures++;
            fprintf(stderr, "%s: parse error: expected 'config' or 'case'\n", where);
        }
    }

    fclose(f);
    return cases;
}

static int vec_is_vector_file(const char *name)
{
    size_t n = strlen(name);
    return n > strlen("translate") + 4 && strncmp(name, "translate", 9) == 0 && strcmp(name + n - 4, ".txt") == 0;
}

static int vec_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tu_run_vector_dir(const char *dir, unsigned long *cases)
{
    unsigned long before = tu_failures;
    *cases = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        tu_failures++;
        fprintf(stderr, "%s: cannot open the vector directory\n", dir);
        return -1;
    }

    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!vec_is_vector_file(de->d_name)) {
            continue;
        }

        if (count == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            char **grown = realloc(names, cap * sizeof(char *));
            if (grown == NULL) {
                break;
            }

            names = grown;
        }

        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        names[count] = malloc(len);
        if (names[count] == NULL) {
            break;
        }

        snprintf(names[count], len, "%s/%s", dir, de->d_name);
        count++;
    }

    closedir(d);
    if (count > 1) {
        qsort(names, count, sizeof(char *), vec_cmp);
    }

    uint8_t *mem = aligned_alloc(4096, (size_t)VEC_FRAMES << 12);
    if (mem == NULL) {
        tu_failures++;
        fprintf(stderr, "out of memory\n");
        count = 0;
    }

    for (size_t i = 0; i < count; i++) {
        unsigned long n = vec_run_file(names[i], mem);
        printf("  %s: %lu case%s\n", names[i], n, n == 1 ? "" : "s");
        *cases += n;
    }

    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }

    free(names);
    free(mem);
    if (*cases == 0) {
        tu_failures++;
        fprintf(stderr, "%s: no translate*.txt vector cases found (%zu file%s): refusing to pass vacuously\n", dir,
                count, count == 1 ? "" : "s");
    }

    return tu_failures == before ? 0 : -1;
}

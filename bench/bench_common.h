/* bench_common.h: what every allocator workload in bench/ shares: PRNG, clock, option parsing,
 * block patterns that detect corruption, and the one `result` line the runner parses.
 * Header-only; it must only ever use plain malloc/free/realloc so an LD_PRELOADed allocator
 * sees every allocation, and it must never link against hakmem. */
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- deterministic PRNG: splitmix64 seeds, xorshift64* streams ---- */

static inline uint64_t bc_splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct {
    uint64_t s;
} bc_rng;

/* Distinct streams per (seed, stream) so threads never share a sequence. */
static inline void bc_rng_init(bc_rng *r, uint64_t seed, uint64_t stream) {
    r->s = bc_splitmix(seed ^ bc_splitmix(stream + 1));
    if (r->s == 0) r->s = 1; /* xorshift must not start at zero */
}

static inline uint64_t bc_next(bc_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n) by multiply-high: no division on the hot loop, negligible bias. */
static inline uint64_t bc_below(uint64_t r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline size_t bc_range(uint64_t r, size_t lo, size_t hi) {
    return lo + (size_t)bc_below(r, (uint64_t)(hi - lo) + 1);
}

/* ---- clock and memory ---- */

static inline double bc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size now, from /proc/self/statm (pages resident, second field). */
static inline long bc_rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline long bc_maxrss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* ---- result reporting ---- */

static const char *bc_workload = "?";

/* A failed check ends the run at once, with a result line that says so: a broken allocator
 * must never be able to post a number. _exit because other threads may still be running. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void bc_fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: check failed: ", bc_workload);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    printf("result workload=%s checks=fail\n", bc_workload);
    fflush(stdout);
    fflush(stderr);
    _exit(1);
}

static inline void *bc_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) bc_fail("malloc(%zu) returned NULL", n);
    return p;
}

/* params: extra "key=value ..." text describing the run (may be empty). */
static inline void bc_result(const char *params, uint64_t ops, double seconds) {
    printf("result workload=%s %s%sops=%llu seconds=%.6f ops_per_s=%.0f maxrss_kb=%ld checks=ok\n",
           bc_workload, params, *params ? " " : "", (unsigned long long)ops, seconds,
           seconds > 0 ? (double)ops / seconds : 0.0, bc_maxrss_kb());
    fflush(stdout);
}

/* ---- block patterns ----
 * A block of n bytes gets a pattern derived from a 64-bit tag (slot, seed, step). By default
 * only a few spots are written (first word, middle word, last aligned word, last byte) so the
 * check costs little next to malloc/free and the allocator, not memset, dominates the time;
 * the last byte catches blocks shorter than asked. --full-check writes and checks every byte. */

static int bc_full_check = 0;

static inline uint64_t bc_word(uint64_t tag, size_t off) {
    return tag ^ ((uint64_t)off * 0x9E3779B97F4A7C15ull);
}
static inline unsigned char bc_byte(uint64_t tag, size_t i) {
    return (unsigned char)((tag >> ((i & 7) * 8)) ^ i ^ 0xA5);
}

static inline void bc_put(unsigned char *b, size_t off, uint64_t tag) {
    uint64_t w = bc_word(tag, off);
    memcpy(b + off, &w, 8);
}
static inline int bc_ok(const unsigned char *b, size_t off, uint64_t tag) {
    uint64_t w;
    memcpy(&w, b + off, 8);
    return w == bc_word(tag, off);
}

static inline void bc_mark(void *p, size_t n, uint64_t tag) {
    unsigned char *b = (unsigned char *)p;
    if (n < 24 || bc_full_check) {
        size_t i = 0;
        for (; i + 8 <= n && n >= 24; i += 8)
            bc_put(b, i, tag);
        for (; i < n; i++)
            b[i] = bc_byte(tag, i);
        return;
    }
    /* All word offsets are 8-aligned and end before n-1, so they never overlap partially. */
    bc_put(b, 0, tag);
    bc_put(b, (n / 2) & ~(size_t)7, tag);
    bc_put(b, (n - 9) & ~(size_t)7, tag);
    b[n - 1] = bc_byte(tag, n - 1);
}

/* Returns 1 when the block still carries the pattern written by bc_mark(p, n, tag). */
static inline int bc_intact(const void *p, size_t n, uint64_t tag) {
    const unsigned char *b = (const unsigned char *)p;
    if (n < 24 || bc_full_check) {
        size_t i = 0;
        for (; i + 8 <= n && n >= 24; i += 8)
            if (!bc_ok(b, i, tag)) return 0;
        for (; i < n; i++)
            if (b[i] != bc_byte(tag, i)) return 0;
        return 1;
    }
    return bc_ok(b, 0, tag) && bc_ok(b, (n / 2) & ~(size_t)7, tag) &&
           bc_ok(b, (n - 9) & ~(size_t)7, tag) && b[n - 1] == bc_byte(tag, n - 1);
}

static inline void bc_verify(const void *p, size_t n, uint64_t tag, const char *what) {
    if (!bc_intact(p, n, tag)) bc_fail("%s: block %p of %zu bytes was overwritten", what, p, n);
}

/* ---- option parsing: --name=value or --name value; --help prints the table ---- */

typedef enum { BC_U64, BC_SIZE, BC_DBL, BC_FLAG, BC_STR } bc_kind;

typedef struct {
    const char *name;
    bc_kind kind;
    void *ptr; /* uint64_t*, size_t*, double*, int*, const char** */
    const char *help;
} bc_opt;

/* Sizes accept k/m/g suffixes (powers of 1024). */
static inline int bc_parse_size(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s) return 0;
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return 0;
    *out = v;
    return 1;
}

static inline void bc_print_default(const bc_opt *o) {
    switch (o->kind) {
    case BC_U64:
        printf("%llu", (unsigned long long)*(uint64_t *)o->ptr);
        break;
    case BC_SIZE:
        printf("%zu", *(size_t *)o->ptr);
        break;
    case BC_DBL:
        printf("%g", *(double *)o->ptr);
        break;
    case BC_FLAG:
        printf("%s", *(int *)o->ptr ? "on" : "off");
        break;
    case BC_STR:
        printf("%s", *(const char **)o->ptr);
        break;
    }
}

static inline void bc_usage(const char *prog, const char *about, const bc_opt *opts, size_t n) {
    printf("usage: %s [options]\n%s\n\noptions (default in brackets):\n", prog, about);
    for (size_t i = 0; i < n; i++) {
        printf("  --%-14s %s [", opts[i].name, opts[i].help);
        bc_print_default(&opts[i]);
        printf("]\n");
    }
    printf("  --%-14s %s\n", "full-check", "write and verify every byte of every block");
    printf("  --%-14s %s\n", "help", "show this text");
    printf("\nPrints one line: result workload=... ops=... seconds=... ops_per_s=... "
           "checks=ok\nand exits 1 (checks=fail) when a block or a count is wrong.\n");
}

static inline void bc_parse(int argc, char **argv, const char *about, const bc_opt *opts,
                            size_t n) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bc_usage(argv[0], about, opts, n);
            exit(0);
        }
        if (strcmp(a, "--full-check") == 0) {
            bc_full_check = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) goto bad;
        a += 2;
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const bc_opt *o = NULL;
        for (size_t k = 0; k < n; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, a, len) == 0) o = &opts[k];
        if (!o) goto bad;
        if (o->kind == BC_FLAG && !eq) {
            *(int *)o->ptr = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) goto bad;
        uint64_t v = 0;
        char *end = NULL;
        switch (o->kind) {
        case BC_U64:
        case BC_SIZE:
        case BC_FLAG:
            if (!bc_parse_size(val, &v)) goto bad;
            if (o->kind == BC_U64)
                *(uint64_t *)o->ptr = v;
            else if (o->kind == BC_SIZE)
                *(size_t *)o->ptr = (size_t)v;
            else
                *(int *)o->ptr = v != 0;
            break;
        case BC_DBL:
            *(double *)o->ptr = strtod(val, &end);
            if (end == val || *end) goto bad;
            break;
        case BC_STR:
            *(const char **)o->ptr = val;
            break;
        }
        continue;
    bad:
        fprintf(stderr, "%s: bad argument '%s' (see --help)\n", argv[0], argv[i]);
        exit(2);
    }
}

/* ---- the mixed random workload, shared by random_mixed, thread_scaling and soak ----
 * ws slots each hold a live block; each step frees a random slot (after checking its pattern)
 * and puts a new block of random size in [min, max] there. One step = one op. */

typedef struct {
    void *p;
    uint32_t size;
    uint64_t tag;
} bc_slot;

typedef struct {
    size_t min, max, ws;
    uint64_t iters, seed, stream;
} bc_mixed_cfg;

typedef struct {
    bc_slot *slots;
    bc_rng rng;
    uint64_t step;
} bc_mixed;

static inline void bc_mixed_fill(bc_mixed *m, const bc_mixed_cfg *c) {
    m->slots = (bc_slot *)bc_malloc(c->ws * sizeof *m->slots);
    bc_rng_init(&m->rng, c->seed, c->stream);
    m->step = 0;
    for (size_t i = 0; i < c->ws; i++) {
        uint64_t r = bc_next(&m->rng);
        size_t sz = bc_range(r, c->min, c->max);
        m->slots[i].p = bc_malloc(sz);
        m->slots[i].size = (uint32_t)sz;
        m->slots[i].tag = r ^ i;
        bc_mark(m->slots[i].p, sz, m->slots[i].tag);
    }
}

static inline void bc_mixed_steps(bc_mixed *m, const bc_mixed_cfg *c, uint64_t n) {
    bc_slot *s = m->slots;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = bc_next(&m->rng);
        bc_slot *sl = &s[bc_below(r, c->ws)];
        bc_verify(sl->p, sl->size, sl->tag, "random_mixed free");
        free(sl->p);
        /* Upper bits picked the slot; the size comes from a rotated copy so they differ. */
        size_t sz = bc_range((r << 32) | (r >> 32), c->min, c->max);
        sl->p = bc_malloc(sz);
        sl->size = (uint32_t)sz;
        sl->tag = r + m->step++;
        bc_mark(sl->p, sz, sl->tag);
    }
}

static inline void bc_mixed_drain(bc_mixed *m, const bc_mixed_cfg *c) {
    for (size_t i = 0; i < c->ws; i++) {
        bc_verify(m->slots[i].p, m->slots[i].size, m->slots[i].tag, "random_mixed drain");
        free(m->slots[i].p);
    }
    free(m->slots);
    m->slots = NULL;
}

#endif

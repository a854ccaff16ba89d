/* Shared helpers of the allocator tests (tests/alloc_*.c): the mapping of allocation calls for
 * the preload / linked hk_ / TSan builds, checks that fail the program, a deterministic PRNG,
 * block patterns and RSS. Include it after any other header: it redefines malloc and friends
 * when built with -DHK_TEST_PREFIXED. It never allocates except through the mapped calls. */
#ifndef ALLOC_TEST_H
#define ALLOC_TEST_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define HKT_TSAN 1 /* TSan runs 5-15x slower: tests scale their work down */
#else
#define HKT_TSAN 0
#endif

#ifdef HK_TEST_PREFIXED
/* Function-like macros so that `(malloc)(n)` still names the real symbol where a test needs it. */
#include "hakmem.h"
#define malloc(n) hk_malloc(n)
#define calloc(n, s) hk_calloc(n, s)
#define realloc(p, n) hk_realloc(p, n)
#define free(p) hk_free(p)
#define aligned_alloc(a, n) hk_aligned_alloc(a, n)
#define posix_memalign(o, a, n) hk_posix_memalign(o, a, n)
#define HKT_BUILD (HKT_TSAN ? "tsan" : "hk")
#else
#define HKT_BUILD "preload"
#endif

/* Every helper is static; not every test uses every one. */
#define HKT_FN static __attribute__((unused))

/* ---- failures ---------------------------------------------------------------------------- */

static atomic_long hkt_checks, hkt_failures;

HKT_FN void hkt_vreport(const char *file, int line, const char *what, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "FAIL %s:%d: %s: %s\n", file, line, what, msg);
}

HKT_FN void hkt_fail(const char *file, int line, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hkt_vreport(file, line, what, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&hkt_failures, 1);
}

/* A fatal failure ends the process at once: the heap may be corrupt, and other threads must
 * not go on and hide the first symptom. */
__attribute__((noreturn)) static void hkt_die(const char *file, int line, const char *what,
                                              const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    hkt_vreport(file, line, what, fmt, ap);
    va_end(ap);
    fflush(stdout);
    _exit(1);
}

/* CHECK counts and goes on (conformance lists every broken rule); REQUIRE stops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        atomic_fetch_add(&hkt_checks, 1);                                                          \
        if (!(cond)) hkt_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                             \
    } while (0)
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        atomic_fetch_add(&hkt_checks, 1);                                                          \
        if (!(cond)) hkt_die(__FILE__, __LINE__, #cond, __VA_ARGS__);                              \
    } while (0)

/* ---- the allocator under test ------------------------------------------------------------- */

/* Set when HK_TEST_ALLOW_SYSTEM=1 let the preload build run on another allocator (to compare
 * behaviour with glibc or a peer); checks of hakmem-only promises are skipped then. */
static int hkt_system;
static int (*hkt_owns_fn)(const void *);
static int (*hkt_trim_fn)(void);
static void (*hkt_stats_fn)(FILE *);
static size_t (*hkt_usable_fn)(const void *);
static void (*hkt_free_sized_fn)(void *, size_t);

HKT_FN void *hkt_sym(const char *name) {
#ifdef HK_TEST_PREFIXED
    (void)name;
    return NULL;
#else
    return dlsym(RTLD_DEFAULT, name);
#endif
}

/* Bytes usable in p: the hk_ call in the linked builds, malloc_usable_size under preload. */
HKT_FN inline size_t hkt_usable_size(void *p) {
#ifdef HK_TEST_PREFIXED
    return hk_usable_size(p);
#else
    return malloc_usable_size(p);
#endif
}

/* free_sized where it exists; plain free on an allocator that lacks it (system runs only). */
HKT_FN inline void hkt_free_sized(void *p, size_t n) {
#ifdef HK_TEST_PREFIXED
    hk_free_sized(p, n);
#else
    if (hkt_free_sized_fn)
        hkt_free_sized_fn(p, n);
    else
        free(p);
#endif
}

/* -1 when unknown (system allocator), else hk_owns(p). */
HKT_FN inline int hkt_owns(const void *p) {
    return hkt_owns_fn ? hkt_owns_fn(p) : -1;
}
HKT_FN inline int hkt_trim(void) {
    return hkt_trim_fn ? hkt_trim_fn() : -1;
}
HKT_FN inline void hkt_stats_print(FILE *f) {
    if (hkt_stats_fn) hkt_stats_fn(f);
}

/* Every test calls this first: it proves the allocator under test is hakmem, so a broken
 * LD_PRELOAD cannot pass silently on glibc. */
HKT_FN void hkt_init(const char *name) {
#ifdef HK_TEST_PREFIXED
    hkt_owns_fn = hk_owns;
    hkt_trim_fn = hk_trim;
    hkt_stats_fn = hk_stats_print;
    hkt_usable_fn = hk_usable_size;
    hkt_free_sized_fn = hk_free_sized;
#else
    *(void **)&hkt_owns_fn = hkt_sym("hk_owns");
    *(void **)&hkt_trim_fn = hkt_sym("hk_trim");
    *(void **)&hkt_stats_fn = hkt_sym("hk_stats_print");
    *(void **)&hkt_usable_fn = hkt_sym("hk_usable_size");
    *(void **)&hkt_free_sized_fn = hkt_sym("free_sized");
#endif
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *p = malloc(16);
    int owned = p ? hkt_owns(p) : 0;
    free(p);
    if (owned != 1) {
        const char *allow = getenv("HK_TEST_ALLOW_SYSTEM");
        if (!allow || strcmp(allow, "1") != 0) {
            fprintf(stderr,
                    "FAIL %s/%s: hakmem is not the active allocator (hk_owns %s, "
                    "hk_owns(malloc(16)) = %d); run with LD_PRELOAD=build/libhakmem.so, or set "
                    "HK_TEST_ALLOW_SYSTEM=1 to test another allocator\n",
                    name, HKT_BUILD, hkt_owns_fn ? "found" : "missing", owned);
            exit(1);
        }
        hkt_system = 1;
        hkt_owns_fn = NULL; /* a peer's hk_owns would not describe this allocator */
        hkt_trim_fn = NULL;
        hkt_stats_fn = NULL;
        printf("%s/%s: note: HK_TEST_ALLOW_SYSTEM=1, testing the system allocator; "
               "hakmem-only checks skipped\n",
               name, HKT_BUILD);
    } else {
        printf("%s/%s: hakmem is active (hk_owns(malloc(16)) == 1)\n", name, HKT_BUILD);
    }
}

/* ---- the machine ------------------------------------------------------------------------- */

/* RAM plus swap in bytes, from /proc/meminfo; 0 if unknown. */
HKT_FN size_t hkt_ram_and_swap(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[128];
    size_t total = 0, kb;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %zu kB", &kb) == 1 || sscanf(line, "SwapTotal: %zu kB", &kb) == 1)
            total += kb * 1024;
    fclose(f);
    return total;
}

/* vm.overcommit_memory (0 heuristic, 1 always, 2 strict); -1 if unknown. */
HKT_FN int hkt_overcommit_mode(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = -1;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1) mode = -1;
        fclose(f);
    }
    return mode;
}

/* Summary line and exit status for main(). */
HKT_FN int hkt_finish(const char *name) {
    long f = atomic_load(&hkt_failures), c = atomic_load(&hkt_checks);
    printf("%s/%s: %ld checks, %ld failed -> %s\n", name, HKT_BUILD, c, f, f ? "FAIL" : "ok");
    return f ? 1 : 0;
}

/* ---- deterministic randomness -------------------------------------------------------------- */

HKT_FN inline uint64_t hkt_mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct {
    uint64_t s;
} hkt_rng;
/* splitmix64: a Weyl sequence through the finaliser. */
HKT_FN inline uint64_t hkt_next(hkt_rng *r) {
    return hkt_mix(r->s += 0x632BE59BD9B4E019ull);
}
HKT_FN inline uint64_t hkt_below(hkt_rng *r, uint64_t n) {
    return hkt_next(r) % n;
}

/* Sizes skewed toward small, as real programs allocate: most <= 1 KiB, some medium, a few up
 * to max (inclusive). */
HKT_FN inline size_t hkt_size(hkt_rng *r, size_t max) {
    uint64_t x = hkt_below(r, 1000);
    size_t n;
    if (x < 800)
        n = (size_t)hkt_below(r, 257);
    else if (x < 950)
        n = 257 + (size_t)hkt_below(r, 768);
    else if (x < 995)
        n = 1025 + (size_t)hkt_below(r, 128 * 1024);
    else
        n = (size_t)hkt_below(r, max + 1);
    return n > max ? max : n;
}

/* ---- block patterns ------------------------------------------------------------------------- */

/* Byte o of a block with key k is byte (o & 7) of word(k, o >> 3): different keys and shifted
 * copies both show up as mismatches. */
HKT_FN inline uint64_t hkt_word(uint64_t key, size_t i) {
    return (key ^ (i * 0x9E3779B97F4A7C15ull)) + (i << 17);
}

HKT_FN void hkt_fill_range(unsigned char *p, size_t from, size_t to, uint64_t key) {
    size_t o = from;
    for (; o < to && (o & 7); o++)
        p[o] = (unsigned char)(hkt_word(key, o >> 3) >> (8 * (o & 7)));
    for (; o + 8 <= to; o += 8) {
        uint64_t w = hkt_word(key, o >> 3);
        memcpy(p + o, &w, 8);
    }
    for (; o < to; o++)
        p[o] = (unsigned char)(hkt_word(key, o >> 3) >> (8 * (o & 7)));
}

/* Returns the offset of the first wrong byte in [from, to), or (size_t)-1 when all match. */
HKT_FN size_t hkt_check_range(const unsigned char *p, size_t from, size_t to, uint64_t key) {
    size_t o = from;
    for (; o < to && (o & 7); o++)
        if (p[o] != (unsigned char)(hkt_word(key, o >> 3) >> (8 * (o & 7)))) return o;
    for (; o + 8 <= to; o += 8) {
        uint64_t w;
        memcpy(&w, p + o, 8);
        if (w != hkt_word(key, o >> 3)) break;
    }
    for (; o < to; o++)
        if (p[o] != (unsigned char)(hkt_word(key, o >> 3) >> (8 * (o & 7)))) return o;
    return (size_t)-1;
}

/* Blocks above this are patterned sparsely (both ends plus 64 bytes of every 4 KiB page):
 * it still touches every page and catches overlap, at a fraction of the cost. */
#define HKT_DENSE_MAX (64 * 1024)

HKT_FN void hkt_fill(void *p, size_t n, uint64_t key) {
    unsigned char *b = p;
    if (n <= HKT_DENSE_MAX) {
        hkt_fill_range(b, 0, n, key);
        return;
    }
    hkt_fill_range(b, 0, 4096, key);
    for (size_t o = 4096; o + 4096 < n; o += 4096)
        hkt_fill_range(b, o, o + 64, key);
    hkt_fill_range(b, n - 4096, n, key);
}

/* Offset of the first wrong byte among those hkt_fill(p, n, key) wrote, or (size_t)-1. */
HKT_FN size_t hkt_verify(const void *p, size_t n, uint64_t key) {
    const unsigned char *b = p;
    size_t bad;
    if (n <= HKT_DENSE_MAX) return hkt_check_range(b, 0, n, key);
    if ((bad = hkt_check_range(b, 0, 4096, key)) != (size_t)-1) return bad;
    for (size_t o = 4096; o + 4096 < n; o += 4096)
        if ((bad = hkt_check_range(b, o, o + 64, key)) != (size_t)-1) return bad;
    return hkt_check_range(b, n - 4096, n, key);
}

/* Verify only what lies below n of a block filled as hkt_fill(p, filled, key) (a realloc keeps
 * the first min(old, new) bytes). */
HKT_FN size_t hkt_verify_prefix(const void *p, size_t filled, size_t n, uint64_t key) {
    const unsigned char *b = p;
    size_t bad;
    if (n > filled) n = filled;
    if (filled <= HKT_DENSE_MAX) return hkt_check_range(b, 0, n, key);
    if ((bad = hkt_check_range(b, 0, n < 4096 ? n : 4096, key)) != (size_t)-1) return bad;
    for (size_t o = 4096; o + 4096 < filled && o < n; o += 4096)
        if ((bad = hkt_check_range(b, o, o + 64 < n ? o + 64 : n, key)) != (size_t)-1) return bad;
    size_t tail = filled - 4096;
    if (tail < n) return hkt_check_range(b, tail, n, key);
    return (size_t)-1;
}

/* ---- process facts -------------------------------------------------------------------------- */

/* Resident set size in bytes, from /proc/self/statm; open/read rather than stdio so that
 * measuring does not allocate. */
HKT_FN size_t hkt_rss(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    unsigned long size = 0, res = 0;
    if (sscanf(buf, "%lu %lu", &size, &res) != 2) return 0;
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Minor page faults of the process so far. */
HKT_FN long hkt_minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

HKT_FN double hkt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define MiB (1024ull * 1024ull)
#define KiB 1024ull

#endif

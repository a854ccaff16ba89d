/* alloc_workloads: the allocation patterns of well-known allocator benchmarks, with many more
 * threads than cores and every block's contents checked before it is freed. Written for this
 * project (no code of the benchmarks themselves):
 *   xmalloc   threads swap blocks through a shared table, so most frees are of another
 *             thread's blocks, in rounds of fresh threads (dead threads' blocks still live);
 *   scratch   each thread frees a block main allocated, then churns its own of that size;
 *   sh6       batches of rising and falling sizes freed in forward, reverse and strided order;
 *   rptest    per-thread working sets of skewed sizes with realloc up and down, and blocks
 *             mailed to other threads that free or keep them;
 *   growth    strings grown by appends through realloc to 256 KiB (times the scale) and shrunk
 *             back, in parallel.
 * Usage: alloc_workloads [--threads N] [--scale S] [pattern...] (default all, 16 threads). */
#include "alloc_test.h"

#define NAME "alloc_workloads"

static int nthreads = 16;
static long scale = 1;

/* A block: its size and key in the first 16 bytes, then bytes derived from the key. */
static void *blk_new(size_t n, uint64_t key) {
    if (n < 16) n = 16;
    unsigned char *p = malloc(n);
    REQUIRE(p, "malloc(%zu)", n);
    memcpy(p, &n, 8);
    memcpy(p + 8, &key, 8);
    memset(p + 16, (int)(key & 0xff), n - 16);
    return p;
}

static size_t blk_check(const unsigned char *p, const char *where) {
    size_t n;
    uint64_t key;
    memcpy(&n, p, 8);
    memcpy(&key, p + 8, 8);
    REQUIRE(n >= 16 && n < (64u << 20), "%s: block %p header damaged (size %zu)", where, p, n);
    unsigned char c = (unsigned char)(key & 0xff);
    size_t i = 16;
    while (i < n && p[i] == c) i++;
    if (i < n)
        hkt_die(__FILE__, __LINE__, "block intact", "%s: block %p of %zu bytes damaged at %zu "
                "(%#x, want %#x)", where, p, n, i, p[i], c);
    return n;
}

static void blk_free(void *p, const char *where) {
    if (!p) return;
    blk_check(p, where);
    free(p);
}

typedef struct {
    int id;
    pthread_t th;
    uint64_t ops;
} worker_t;

static void run_threads(void *(*fn)(void *), worker_t *w, int n) {
    for (int i = 0; i < n; i++) {
        w[i].id = i;
        w[i].ops = 0;
        REQUIRE(pthread_create(&w[i].th, NULL, fn, &w[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < n; i++) pthread_join(w[i].th, NULL);
}

static uint64_t total_ops(const worker_t *w, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++) s += w[i].ops;
    return s;
}

/* ---- xmalloc ---- */
#define XSLOTS 4096
static _Atomic(void *) xtable[XSLOTS];
static int xround;

static void *xmalloc_worker(void *arg) {
    worker_t *w = arg;
    hkt_rng r = {(uint64_t)w->id * 7919 + (uint64_t)xround * 104729};
    long iters = 8000 * scale;
    for (long i = 0; i < iters; i++) {
        size_t n = hkt_below(&r, 8) == 0 ? 16 + hkt_below(&r, 64 << 10) : 16 + hkt_below(&r, 512);
        void *p = blk_new(n, hkt_next(&r));
        void *old = atomic_exchange(&xtable[hkt_below(&r, XSLOTS)], p);
        blk_free(old, "xmalloc");
        w->ops++;
    }
    return NULL;
}

static void xmalloc_test(void) {
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    REQUIRE(w, "calloc");
    uint64_t ops = 0;
    for (xround = 0; xround < 4; xround++) {
        run_threads(xmalloc_worker, w, nthreads);
        ops += total_ops(w, nthreads);
    }
    size_t live = 0;
    for (size_t i = 0; i < XSLOTS; i++) {
        void *p = atomic_exchange(&xtable[i], NULL);
        if (p) live++;
        blk_free(p, "xmalloc drain");
    }
    free(w);
    printf("  xmalloc: 4 rounds of %d threads, %llu swaps through %d shared slots, %zu left to "
           "main and checked\n",
           nthreads, (unsigned long long)ops, XSLOTS, live);
}

/* ---- cache-scratch ---- */
static void **scratch_given;

static void *scratch_worker(void *arg) {
    worker_t *w = arg;
    blk_free(scratch_given[w->id], "scratch handed"); /* main's block, freed here */
    long iters = 50000 * scale;
    size_t n = 32 + (size_t)(w->id % 4) * 16;
    for (long i = 0; i < iters; i++) {
        unsigned char *p = blk_new(n, (uint64_t)w->id * 131 + (uint64_t)i);
        for (int k = 0; k < 8; k++) p[16 + (size_t)k % (n - 16)] = (unsigned char)((uint64_t)w->id * 131 + (uint64_t)i);
        blk_free(p, "scratch");
        w->ops++;
    }
    return NULL;
}

static void scratch_test(void) {
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    scratch_given = calloc((size_t)nthreads, sizeof *scratch_given);
    REQUIRE(w && scratch_given, "calloc");
    for (int i = 0; i < nthreads; i++) scratch_given[i] = blk_new(32 + (size_t)(i % 4) * 16, (uint64_t)i);
    run_threads(scratch_worker, w, nthreads);
    printf("  scratch: %d threads each freed main's block and made %llu of its own\n", nthreads,
           (unsigned long long)total_ops(w, nthreads) / (unsigned long long)nthreads);
    free(scratch_given);
    free(w);
}

/* ---- sh6 ---- */
static void *sh6_worker(void *arg) {
    worker_t *w = arg;
    enum { BATCH = 2000 };
    void **keep = calloc(BATCH, sizeof *keep);
    REQUIRE(keep, "calloc");
    hkt_rng r = {(uint64_t)w->id + 1};
    long rounds = 12 * scale;
    for (long round = 0; round < rounds; round++) {
        size_t lo = 16, hi = round % 3 == 0 ? 8192 : round % 3 == 1 ? 1024 : 300000;
        void **b = malloc(BATCH * sizeof *b);
        REQUIRE(b, "malloc");
        for (int i = 0; i < BATCH; i++) { /* rising sizes, then falling */
            size_t n = i < BATCH / 2 ? lo + (hi - lo) * (size_t)i / (BATCH / 2)
                                     : hi - (hi - lo) * (size_t)(i - BATCH / 2) / (BATCH / 2);
            if (hi == 300000 && hkt_below(&r, 16)) n = 16 + hkt_below(&r, 200);
            b[i] = blk_new(n, (uint64_t)round * BATCH + (uint64_t)i);
        }
        int order = (int)(round % 3);
        for (int k = 0; k < BATCH; k++) {
            int i = order == 0 ? k : order == 1 ? BATCH - 1 - k : (k * 7) % BATCH;
            if (hkt_below(&r, 10) == 0) { /* kept into the next round */
                blk_free(keep[i], "sh6 kept");
                keep[i] = b[i];
            } else {
                blk_free(b[i], "sh6");
            }
            w->ops++;
        }
        free(b);
    }
    for (int i = 0; i < BATCH; i++) blk_free(keep[i], "sh6 drain");
    free(keep);
    return NULL;
}

static void sh6_test(void) {
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    REQUIRE(w, "calloc");
    run_threads(sh6_worker, w, nthreads);
    printf("  sh6: %d threads, %llu blocks in rising/falling batches freed forward, reverse and "
           "strided\n",
           nthreads, (unsigned long long)total_ops(w, nthreads));
    free(w);
}

/* ---- rptest ---- */
typedef struct {
    _Alignas(64) _Atomic(void *) slot[64];
} mailbox_t;
static mailbox_t *mail;

static size_t rp_size(hkt_rng *r) {
    uint64_t x = hkt_below(r, 100);
    if (x < 70) return 16 + hkt_below(r, 240);
    if (x < 95) return 256 + hkt_below(r, 8 << 10);
    return 8192 + hkt_below(r, 600 << 10);
}

static void *rp_resize(void *p, size_t n) { /* realloc keeping the block's format */
    size_t old = blk_check(p, "rptest realloc");
    uint64_t key;
    memcpy(&key, (unsigned char *)p + 8, 8);
    if (n < 16) n = 16;
    unsigned char *q = realloc(p, n);
    REQUIRE(q, "realloc(%zu)", n);
    size_t o;
    memcpy(&o, q, 8);
    REQUIRE(o == old, "realloc lost the header");
    size_t keep = old < n ? old : n, i = 16;
    while (i < keep && q[i] == (unsigned char)(key & 0xff)) i++;
    REQUIRE(i == keep, "realloc %zu -> %zu lost byte %zu", old, n, i);
    memcpy(q, &n, 8);
    if (n > old) memset(q + old, (int)(key & 0xff), n - old);
    return q;
}

static void *rptest_worker(void *arg) {
    worker_t *w = arg;
    enum { WS = 512 };
    void **ws = calloc(WS, sizeof *ws);
    REQUIRE(ws, "calloc");
    hkt_rng r = {(uint64_t)w->id * 31 + 5};
    long iters = 20000 * scale;
    for (long i = 0; i < iters; i++) {
        size_t k = hkt_below(&r, WS);
        uint64_t what = hkt_below(&r, 100);
        if (ws[k] == NULL) {
            ws[k] = blk_new(rp_size(&r), hkt_next(&r));
        } else if (what < 30) {
            ws[k] = rp_resize(ws[k], rp_size(&r));
        } else if (what < 45) { /* mail it to another thread; take what was there */
            int to = (int)hkt_below(&r, (uint64_t)nthreads);
            void *got = atomic_exchange(&mail[to].slot[hkt_below(&r, 64)], ws[k]);
            ws[k] = NULL;
            if (got && hkt_below(&r, 2)) ws[k] = got; /* adopted: may be realloc'd here later */
            else blk_free(got, "rptest mailed");
        } else {
            blk_free(ws[k], "rptest");
            ws[k] = NULL;
        }
        w->ops++;
    }
    for (int k = 0; k < WS; k++) blk_free(ws[k], "rptest drain");
    free(ws);
    return NULL;
}

static void rptest_test(void) {
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    mail = aligned_alloc(64, (size_t)nthreads * sizeof *mail);
    REQUIRE(w && mail, "alloc");
    memset(mail, 0, (size_t)nthreads * sizeof *mail);
    run_threads(rptest_worker, w, nthreads);
    size_t left = 0;
    for (int t = 0; t < nthreads; t++)
        for (int s = 0; s < 64; s++) {
            void *p = atomic_exchange(&mail[t].slot[s], NULL);
            left += p != NULL;
            blk_free(p, "rptest mail drain");
        }
    free(mail);
    printf("  rptest: %d threads, %llu operations (30%% realloc, 15%% mailed across threads), "
           "%zu mailed blocks left to main\n",
           nthreads, (unsigned long long)total_ops(w, nthreads), left);
    free(w);
}

/* ---- growth ---- */
static void *growth_worker(void *arg) {
    worker_t *w = arg;
    long reps = 2 * scale;
    for (long rep = 0; rep < reps; rep++) {
        size_t len = 0, cap = 0;
        unsigned char *s = NULL;
        unsigned step = 1 + (unsigned)w->id % 13;
        while (len < ((size_t)256 << 10) * (size_t)scale) {
            if (len + step > cap) {
                cap = w->id % 2 ? len + step : (len + step) * 5 / 4; /* exact or some slack */
                unsigned char *q = realloc(s, cap);
                REQUIRE(q, "realloc(%zu)", cap);
                s = q;
            }
            for (unsigned k = 0; k < step; k++) s[len + k] = (unsigned char)((len + k) * 7 + (size_t)w->id);
            len += step;
            w->ops++;
        }
        size_t i = 0;
        while (i < len && s[i] == (unsigned char)(i * 7 + (size_t)w->id)) i++;
        REQUIRE(i == len, "growth: byte %zu of %zu lost", i, len);
        while (len > 64) { /* and back down */
            len /= 3;
            unsigned char *q = realloc(s, len);
            REQUIRE(q, "realloc(%zu) shrinking", len);
            s = q;
            i = 0;
            while (i < len && s[i] == (unsigned char)(i * 7 + (size_t)w->id)) i++;
            REQUIRE(i == len, "shrink: byte %zu lost", i);
        }
        free(s);
    }
    return NULL;
}

static void growth_test(void) {
    worker_t *w = calloc((size_t)nthreads, sizeof *w);
    REQUIRE(w, "calloc");
    run_threads(growth_worker, w, nthreads);
    printf("  growth: %d threads grew strings to %ld KiB by %llu appends through realloc and shrank "
           "them back, contents checked\n",
           nthreads, 256 * scale, (unsigned long long)total_ops(w, nthreads));
    free(w);
}

int main(int argc, char **argv) {
    hkt_init(NAME);
    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {{"xmalloc", xmalloc_test}, {"scratch", scratch_test}, {"sh6", sh6_test},
                 {"rptest", rptest_test},   {"growth", growth_test}};
    const char *only[8];
    int nonly = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) scale = atol(argv[++i]);
        else if (nonly < 8) only[nonly++] = argv[i];
    }
    if (HKT_TSAN) scale = 1;
    REQUIRE(nthreads >= 1 && nthreads <= 256 && scale >= 1, "bad arguments");
    for (size_t t = 0; t < sizeof tests / sizeof tests[0]; t++) {
        int run = nonly == 0;
        for (int i = 0; i < nonly; i++) run |= strcmp(only[i], tests[t].name) == 0;
        if (run) tests[t].fn();
    }
    return hkt_finish(NAME);
}

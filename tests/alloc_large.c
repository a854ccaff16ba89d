/* alloc_large: the large/huge tier. Alloc/free loops of 1-32 MiB blocks with content checks,
 * realloc growth and shrink through that range, big aligned blocks, calloc of reused spans, and
 * RSS: after many large blocks are freed and the allocator is asked to trim, RSS must come back
 * near its baseline (span caches may keep some, not the peak). */
#include "alloc_test.h"

#define NAME "alloc_large"

static size_t large_size(hkt_rng *r) {
    /* 1..32 MiB, odd sizes too, biased toward the low end */
    size_t top = (size_t)1 << (20 + hkt_below(r, 6)); /* 1, 2, 4, 8, 16, 32 MiB */
    return top / 2 + (size_t)hkt_below(r, top / 2 + 1) +
           (hkt_below(r, 2) ? 0 : 1 + hkt_below(r, 4095));
}

static void loops(void) {
    hkt_rng r = {0x1A46E};
    enum { LIVE = 6, ROUNDS = 300 };
    void *p[LIVE] = {0};
    size_t n[LIVE] = {0};
    uint64_t key[LIVE] = {0};
    for (int k = 0; k < ROUNDS; k++) {
        int i = (int)hkt_below(&r, LIVE);
        if (p[i]) {
            size_t bad = hkt_verify(p[i], n[i], key[i]);
            REQUIRE(bad == (size_t)-1, "round %d: %zu-byte block damaged at %zu", k, n[i], bad);
            if (k & 1)
                hkt_free_sized(p[i], n[i]);
            else
                free(p[i]);
        }
        n[i] = large_size(&r);
        key[i] = hkt_mix((uint64_t)k);
        p[i] = malloc(n[i]);
        REQUIRE(p[i], "malloc(%zu)", n[i]);
        REQUIRE(((uintptr_t)p[i] & 15) == 0, "large block %p unaligned", p[i]);
        REQUIRE(hkt_usable_size(p[i]) >= n[i], "usable %zu < %zu", hkt_usable_size(p[i]), n[i]);
        hkt_fill(p[i], n[i], key[i]);
    }
    for (int i = 0; i < LIVE; i++) {
        REQUIRE(hkt_verify(p[i], n[i], key[i]) == (size_t)-1, "block damaged");
        free(p[i]);
    }
    /* Same size freed and allocated back to back: the case a span cache must make cheap. */
    for (int k = 0; k < 200; k++) {
        size_t m = (k % 2 ? 4 : 16) * MiB + 100;
        unsigned char *q = malloc(m);
        REQUIRE(q, "malloc(%zu)", m);
        q[0] = (unsigned char)k;
        q[m - 1] = (unsigned char)~k;
        CHECK(q[0] == (unsigned char)k && q[m - 1] == (unsigned char)~k, "ends of the block");
        free(q);
    }
    printf("  %d rounds over %d live blocks of 1..32 MiB, contents verified; 200 "
           "same-size alloc/free cycles\n",
           ROUNDS, LIVE);
}

static void calloc_reuse(void) {
    for (int k = 0; k < 20; k++) {
        size_t m = (size_t)(1 + k % 7) * MiB + (size_t)k * 4096 + 16;
        unsigned char *d = malloc(m);
        REQUIRE(d, "malloc");
        memset(d, 0xDB, m);
        free(d);
        unsigned char *z = calloc(m / 16, 16);
        REQUIRE(z, "calloc");
        for (size_t o = 0; o < m; o += 509) /* odd stride: every page, varying offsets */
            if (z[o]) {
                CHECK(0, "calloc(%zu) after free of a dirty block: byte %zu = %#x", m, o, z[o]);
                break;
            }
        CHECK(z[m - 1] == 0, "calloc last byte");
        free(z);
    }
    printf("  calloc of 1..7 MiB right after freeing a dirtied block of that size is zeroed\n");
}

/* A piece cut from a freed huge mapping gets its header where the old block's data was (every
 * byte 0xFF here): the piece serves a block of its own, whose size is known while it lives and
 * 0 once it is freed. Not where no huge block is cached (HAKMEM_LARGE_CACHE_MB=0, the hardened
 * build): nothing is cut there. */
static void cut_piece_header(void) {
    const char *cache = getenv("HAKMEM_LARGE_CACHE_MB");
    if (hkt_system || getenv("HK_TEST_HARDENED") || (cache && strcmp(cache, "0") == 0)) return;
    hkt_trim();
    unsigned char *a = malloc(40 * MiB);
    REQUIRE(a, "malloc(40 MiB)");
    memset(a, 0xFF, 40 * MiB);
    free(a);
    unsigned char *b = malloc(9 * MiB); /* the 40 MiB mapping, cut at 12 MiB */
    unsigned char *c = malloc(20 * MiB); /* the rest, 28 MiB */
    REQUIRE(b && c, "malloc(9 MiB), malloc(20 MiB)");
    CHECK(c > a && c < a + 40 * MiB, "20 MiB block %p not in the freed 40 MiB at %p", c, a);
    size_t usable = hkt_usable_size(c);
    CHECK(usable >= 20 * MiB && usable < 28 * MiB, "piece's usable size %zu", usable);
    hkt_fill(c, 20 * MiB, 7);
    CHECK(hkt_verify(c, 20 * MiB, 7) == (size_t)-1, "20 MiB block in a cut piece damaged");
    free(c);
    CHECK(hkt_usable_size(c) == 0, "freed piece still has usable size %zu", hkt_usable_size(c));
    free(b);
    printf("  a piece cut from a freed mapping over old data serves a block whole\n");
}

/* A freed huge block is reused for a request of another size: cut down when it is bigger, moved
 * into a larger mapping when it is smaller. Either way the new block is whole and calloc's is
 * zero, including the part that held the old block's data. */
static void reuse_across_sizes(void) {
    static const size_t sizes[] = {24 * MiB, 6 * MiB + 100,  20 * MiB + 5, 3 * MiB,
                                   30 * MiB, 2 * MiB + 4096, 12 * MiB,     9 * MiB + 1};
    enum { N = sizeof sizes / sizeof sizes[0] };
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < N; k++) {
            size_t m = sizes[k];
            unsigned char *z = calloc(1, m);
            REQUIRE(z, "calloc(1, %zu)", m);
            REQUIRE(hkt_usable_size(z) >= m, "usable %zu < %zu", hkt_usable_size(z), m);
            for (size_t o = 0; o < m; o += 4093)
                if (z[o]) {
                    CHECK(0, "calloc(%zu) after a freed block of %zu: byte %zu = %#x", m,
                          sizes[(k + N - 1) % N], o, z[o]);
                    break;
                }
            CHECK(z[m - 1] == 0, "calloc(%zu) last byte", m);
            free(z);
            unsigned char *d = malloc(m);
            REQUIRE(d, "malloc(%zu)", m);
            uint64_t key = hkt_mix((uint64_t)(round * N + k));
            hkt_fill(d, m, key);
            size_t bad = hkt_verify(d, m, key);
            CHECK(bad == (size_t)-1, "%zu-byte block reused across sizes damaged at %zu", m, bad);
            memset(d, 0xA5, m); /* leave it dirty for the next size */
            free(d);
        }
    }
    printf("  huge blocks of 2..30 MiB reused for bigger and smaller requests: whole, calloc zeroed\n");
}

static void realloc_range(void) {
    static const size_t steps[] = {1 * MiB, 3 * MiB + 7,     8 * MiB,     32 * MiB,  17 * MiB,
                                   2 * MiB, 32 * MiB + 4096, 1 * MiB + 1, 600 * KiB, 24 * MiB};
    size_t n = 700 * KiB;
    unsigned char *p = malloc(n);
    REQUIRE(p, "malloc");
    hkt_fill(p, n, 0);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        unsigned char *q = realloc(p, steps[i]);
        REQUIRE(q, "realloc(%zu -> %zu)", n, steps[i]);
        size_t bad = hkt_verify_prefix(q, n, steps[i], i);
        CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", n, steps[i], bad);
        /* The first MiB was filled densely: realloc must copy everything, not only the bytes
         * the sparse pattern touches. */
        if (n >= MiB) {
            bad = hkt_check_range(q, 0, steps[i] < MiB ? steps[i] : MiB, i);
            CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu of the first MiB", n,
                  steps[i], bad);
        }
        n = steps[i];
        p = q;
        hkt_fill(p, n, i + 1);
        if (n >= MiB) hkt_fill_range(p, 0, MiB, i + 1);
    }
    free(p);
    /* Grown in small steps: an in-place large realloc must not hand out what it did not own. */
    p = malloc(MiB);
    REQUIRE(p, "malloc");
    n = MiB;
    unsigned char *guard = malloc(MiB);
    REQUIRE(guard, "malloc");
    hkt_fill(guard, MiB, 99);
    hkt_fill(p, n, 98);
    for (size_t m = MiB + 4096; m <= 12 * MiB; m += MiB / 2 + 4096) {
        unsigned char *q = realloc(p, m);
        REQUIRE(q, "realloc");
        CHECK(hkt_verify_prefix(q, n, m, 98) == (size_t)-1, "stepwise realloc lost contents");
        p = q;
        hkt_fill(p, m, 98);
        n = m;
        CHECK(hkt_verify(guard, MiB, 99) == (size_t)-1, "growing a neighbour damaged a block");
    }
    free(p);
    free(guard);
    printf("  realloc through 600 KiB..32 MiB up and down, and in 516 KiB steps to 12 MiB next "
           "to a live block: contents kept\n");
}

static void aligned_large(void) {
    for (size_t a = 64 * KiB; a <= 4 * MiB; a *= 2) {
        for (size_t m = 1 * MiB; m <= 9 * MiB; m += 4 * MiB) {
            void *p = aligned_alloc(a, m);
            REQUIRE(p, "aligned_alloc(%zu, %zu)", a, m);
            CHECK(((uintptr_t)p & (a - 1)) == 0, "aligned_alloc(%zu, %zu) = %p", a, m, p);
            hkt_fill(p, m, a ^ m);
            CHECK(hkt_verify(p, m, a ^ m) == (size_t)-1, "aligned large block");
            free(p);
        }
    }
    printf("  aligned_alloc of 1..9 MiB at 64 KiB..4 MiB alignment\n");
}

static void rss_returns(void) {
    enum { K = 48 };
    void *p[K];
    size_t total = 0;
    if (!hkt_system) hkt_trim();
    size_t base = hkt_rss();
    hkt_rng r = {4242};
    for (int i = 0; i < K; i++) {
        size_t m = MiB + (size_t)hkt_below(&r, 7 * MiB); /* 1..8 MiB, ~220 MiB in all */
        p[i] = malloc(m);
        REQUIRE(p[i], "malloc(%zu)", m);
        memset(p[i], 0x77, m); /* touch every page: it is resident now */
        total += m;
    }
    size_t peak = hkt_rss();
    for (int i = 0; i < K; i++)
        free(p[i]);
    size_t after_free = hkt_rss();
#ifndef HK_TEST_PREFIXED
    malloc_trim(0);
#endif
    if (!hkt_system) hkt_trim();
    size_t after_trim = hkt_rss();
    printf("  RSS: base %zu MiB, %zu MiB of large blocks touched -> %zu MiB, freed -> %zu MiB, "
           "trimmed -> %zu MiB\n",
           base / MiB, total / MiB, peak / MiB, after_free / MiB, after_trim / MiB);
    CHECK(peak >= base + total / 2, "RSS did not rise while %zu MiB were touched (measure broken?)",
          total / MiB);
    /* Generous: a span cache may keep a few blocks' worth, never most of the peak. */
    size_t allowed = base + 64 * MiB;
    CHECK(after_trim <= allowed,
          "RSS stayed at %zu MiB after freeing %zu MiB and trimming (base %zu MiB, allowed %zu)",
          after_trim / MiB, total / MiB, base / MiB, allowed / MiB);
}

/* One buffer at a time, filled and freed, over and over (mimalloc-bench's malloc-large):
 * after the first round each block takes the resident pages the one before left, so the
 * rounds after it fault in next to nothing (under hakmem; a C library may unmap and map
 * again). Before, each free's slices were purged as the next block was placed: one fault
 * per page per round. */
static void refill_reuse(void) {
    static const size_t sizes[] = {256 * KiB, MiB, 2 * MiB, 3 * MiB};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s], pages = n / 4096;
        enum { ROUNDS = 40 };
        long f0 = 0;
        for (int r = 0; r <= ROUNDS; r++) {
            if (r == 1) f0 = hkt_minor_faults();
            unsigned char *p = malloc(n);
            REQUIRE(p, "malloc(%zu)", n);
            memset(p, r + 1, n);
            CHECK(p[n / 2] == (unsigned char)(r + 1) && p[n - 1] == (unsigned char)(r + 1),
                  "a %zu-byte block lost its contents", n);
            free(p);
        }
        long faults = hkt_minor_faults() - f0;
        printf("  %zu KiB filled and freed %d times: %ld minor faults after the first\n",
               (size_t)(n / KiB), ROUNDS, faults);
        /* Not where no free memory is kept (HAKMEM_PURGE_DELAY_MS=0), nor for the blocks the
         * hardened build maps on their own (2 MiB and up with its guard pages: huge, and its
         * huge blocks are never cached). */
        const char *delay = getenv("HAKMEM_PURGE_DELAY_MS");
        int kept = !(delay && strcmp(delay, "0") == 0) && !(getenv("HK_TEST_HARDENED") && n >= 2 * MiB);
        if (!hkt_system && kept)
            CHECK(faults < (long)pages * 2, "%zu-byte blocks refilled: %ld faults in %d rounds "
                  "(%zu pages each): freed pages are not reused", n, faults, ROUNDS, pages);
    }
}

int main(void) {
    hkt_init(NAME);
    double t0 = hkt_now();
    loops();
    calloc_reuse();
    reuse_across_sizes();
    cut_piece_header();
    realloc_range();
    aligned_large();
    rss_returns();
    refill_reuse();
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

/* alloc_conformance: every allocation entry point against the contract glibc documents
 * (alignment, zero sizes, zeroing, overflow -> ENOMEM, realloc rules, memalign family, usable
 * size, sized frees, trim) plus hakmem's promise that a foreign pointer given to free is harmless.
 * Entry points with no hk_ form are checked in the preload build only. */
#include "alloc_test.h"

#define NAME "alloc_conformance"

/* Hides a constant from the compiler so impossible sizes reach the allocator instead of
 * drawing -Walloc-size-larger-than. */
static size_t opaque(size_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

static int is_aligned(const void *p, size_t a) {
    return ((uintptr_t)p & (a - 1)) == 0;
}

static const size_t impossible[] = {
    SIZE_MAX,         SIZE_MAX - 1,           SIZE_MAX - 15,           SIZE_MAX - 4095,
    SIZE_MAX / 2 + 1, 1ull << 50 /* 1 PiB */, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX - 4096,
};
#define N_IMPOSSIBLE (sizeof impossible / sizeof impossible[0])

/* 0..1 KiB every size, then every power of two up to 8 MiB and its neighbours, plus points in
 * between, so that each class and tier boundary is crossed. */
static size_t size_list(size_t *out, size_t cap) {
    size_t n = 0;
    for (size_t s = 0; s <= 1024; s++)
        out[n++] = s;
    for (size_t p = 2048; p <= 8 * MiB && n + 8 < cap; p *= 2) {
        size_t cand[] = {p - 17, p - 1, p, p + 1, p + 16, p + p / 4, p + p / 2 + 7};
        for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
            if (cand[i] <= 8 * MiB) out[n++] = cand[i];
    }
    return n;
}

static void test_alignment_and_usable(void) {
    static size_t sizes[1300];
    static void *ptrs[1300];
    size_t n = size_list(sizes, 1300);
    for (size_t i = 0; i < n; i++) {
        void *p = malloc(sizes[i]);
        ptrs[i] = p;
        CHECK(p != NULL, "malloc(%zu) returned NULL", sizes[i]);
        if (!p) continue;
        CHECK(is_aligned(p, 16), "malloc(%zu) = %p is not 16-byte aligned", sizes[i], p);
        size_t u = hkt_usable_size(p);
        CHECK(u >= sizes[i], "usable_size(malloc(%zu)) = %zu", sizes[i], u);
        hkt_fill(p, sizes[i], hkt_mix(i));
    }
    /* All alive at once: any overlap shows as a damaged pattern. */
    for (size_t i = 0; i < n; i++) {
        if (!ptrs[i]) continue;
        size_t bad = hkt_verify(ptrs[i], sizes[i], hkt_mix(i));
        CHECK(bad == (size_t)-1, "block of %zu bytes damaged at offset %zu", sizes[i], bad);
        free(ptrs[i]);
    }
    printf("  malloc: %zu sizes 0..8 MiB 16-byte aligned, usable >= request, no overlap\n", n);

    /* Writing every usable byte must not touch the neighbours. */
    for (size_t s = 1; s <= 70000; s = s * 3 + 1) {
        void *a = malloc(s), *b = malloc(s), *c = malloc(s);
        REQUIRE(a && b && c, "malloc(%zu)", s);
        hkt_fill(a, s, 1);
        hkt_fill(c, s, 3);
        size_t u = hkt_usable_size(b);
        CHECK(u >= s, "usable %zu < %zu", u, s);
        memset(b, 0xEE, u);
        CHECK(hkt_verify(a, s, 1) == (size_t)-1, "writing usable_size(%zu) bytes hit a neighbour",
              s);
        CHECK(hkt_verify(c, s, 3) == (size_t)-1, "writing usable_size(%zu) bytes hit a neighbour",
              s);
        free(a);
        free(b);
        free(c);
    }
    CHECK(hkt_usable_size(NULL) == 0, "usable_size(NULL) = %zu", hkt_usable_size(NULL));
    if (hkt_usable_fn) /* hk_usable_size through dlsym in the preload build */
        CHECK(hkt_usable_fn(NULL) == 0, "hk_usable_size(NULL) = %zu", hkt_usable_fn(NULL));
    printf("  usable_size: whole usable area writable without touching neighbours; NULL -> 0\n");
}

/* nallocx (jemalloc's name, exported for programs built against it): the usable size that
 * malloc, or an aligned allocation (flags: log2 of the alignment), gives the same request.
 * Exact up to 2 MiB; above it a cached mapping may give a block more than a fresh one. */
static void test_nallocx(void) {
    size_t (*nallocx_fn)(size_t, int);
    *(void **)&nallocx_fn = hkt_sym("nallocx");
    if (!nallocx_fn || hkt_system) {
        printf("  nallocx: not exported here (linked build or another allocator), skipped\n");
        return;
    }
    static size_t sizes[1300];
    size_t n = size_list(sizes, 1300), checked = 0;
    const int lgs[] = {0, 4, 5, 6, 12, 16, 21};
    for (size_t j = 0; j < sizeof lgs / sizeof lgs[0]; j++) {
        size_t align = (size_t)1 << lgs[j];
        for (size_t i = 0; i < n; i++) {
            void *p = lgs[j] ? aligned_alloc(align, sizes[i]) : malloc(sizes[i]);
            REQUIRE(p != NULL, "allocation of %zu at alignment %zu", sizes[i], align);
            size_t u = hkt_usable_size(p), g = nallocx_fn(sizes[i], lgs[j]);
            if (u <= 2 * MiB)
                CHECK(g == u, "nallocx(%zu, lg %d) = %zu, usable size %zu", sizes[i], lgs[j], g, u);
            else
                CHECK(g >= sizes[i] && g <= u, "nallocx(%zu, lg %d) = %zu, usable size %zu",
                      sizes[i], lgs[j], g, u);
            free(p);
            checked++;
        }
    }
    CHECK(nallocx_fn(SIZE_MAX - 4096, 0) == 0, "nallocx(SIZE_MAX - 4096) = %zu",
          nallocx_fn(SIZE_MAX - 4096, 0));
    printf("  nallocx: %zu requests at 7 alignments give exactly malloc_usable_size up to 2 MiB\n",
           checked);
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void test_zero_sizes(void) {
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = i % 4 == 0   ? malloc(0)
               : i % 4 == 1 ? calloc(0, 16)
               : i % 4 == 2 ? calloc(16, 0)
                            : realloc(NULL, 0);
        CHECK(p[i] != NULL, "zero-size allocation #%d returned NULL", i);
        if (p[i]) CHECK(is_aligned(p[i], 16), "zero-size block %p not aligned", p[i]);
    }
    void *sorted[N];
    memcpy(sorted, p, sizeof p);
    qsort(sorted, N, sizeof sorted[0], cmp_ptr);
    int dup = 0;
    for (int i = 1; i < N; i++)
        if (sorted[i] && sorted[i] == sorted[i - 1]) dup++;
    CHECK(dup == 0, "%d duplicate pointers among %d live zero-size blocks", dup, N);
    for (int i = 0; i < N; i++)
        free(p[i]);
    free(NULL);
    hkt_free_sized(NULL, 0);
    printf("  malloc(0), calloc(0,n), calloc(n,0), realloc(NULL,0): unique, freeable; "
           "free(NULL) ok\n");
}

static int all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

static void test_calloc(void) {
    static const size_t sizes[] = {1,       8,           16,      100,     1000,
                                   4096,    5000,        65536,   100000,  256 * 1024,
                                   1 * MiB, 3 * MiB + 5, 8 * MiB, 33 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = calloc(1, n);
        REQUIRE(p, "calloc(1, %zu)", n);
        CHECK(all_zero(p, n), "fresh calloc(1, %zu) not zeroed", n);
        free(p);
        /* Recycled memory: dirty blocks of the same size, free them, calloc again. Several
         * rounds and several blocks make it likely that calloc gets a dirtied block back. */
        for (int round = 0; round < 4; round++) {
            enum { K = 8 };
            unsigned char *d[K];
            int k = n >= MiB ? 2 : K;
            for (int j = 0; j < k; j++) {
                d[j] = malloc(n);
                REQUIRE(d[j], "malloc(%zu)", n);
                memset(d[j], 0xA5, n);
            }
            for (int j = 0; j < k; j++)
                free(d[j]);
            for (int j = 0; j < k; j++) {
                d[j] = round & 1 ? calloc(n, 1) : calloc(1, n);
                REQUIRE(d[j], "calloc(%zu)", n);
                CHECK(all_zero(d[j], n), "calloc(%zu) of recycled memory not zeroed", n);
            }
            for (int j = 0; j < k; j++)
                free(d[j]);
        }
    }
    /* count * size forms, including ones whose product is not a multiple of 16. */
    for (size_t c = 1; c < 3000; c = c * 2 + 1) {
        for (size_t s = 1; s < 300; s = s * 3 + 2) {
            unsigned char *p = malloc(c * s);
            REQUIRE(p, "malloc");
            memset(p, 0x5A, c * s);
            free(p);
            p = calloc(c, s);
            REQUIRE(p, "calloc(%zu, %zu)", c, s);
            CHECK(all_zero(p, c * s), "calloc(%zu, %zu) not zeroed", c, s);
            free(p);
        }
    }
    printf("  calloc: zeroed for 1 B..33 MiB, fresh and recycled memory\n");
}

static void test_impossible(void) {
    for (size_t i = 0; i < N_IMPOSSIBLE; i++) {
        size_t n = opaque(impossible[i]);
        errno = 0;
        void *p = malloc(n);
        CHECK(p == NULL && errno == ENOMEM, "malloc(%#zx) = %p errno %d", n, p, errno);
        if (p) free(p);
        errno = 0;
        p = calloc(1, n);
        CHECK(p == NULL && errno == ENOMEM, "calloc(1, %#zx) = %p errno %d", n, p, errno);
        if (p) free(p);
        errno = 0;
        p = calloc(n, 1);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%#zx, 1) = %p errno %d", n, p, errno);
        if (p) free(p);
        errno = 0;
        p = aligned_alloc(64, n);
        CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(64, %#zx) = %p errno %d", n, p, errno);
        if (p) free(p);
        p = NULL;
        int rc = posix_memalign(&p, 4096, n);
        CHECK(rc == ENOMEM && p == NULL, "posix_memalign(4096, %#zx) = %d, %p", n, rc, p);
        if (rc == 0) free(p);
    }
    /* Products that overflow size_t: the result must not be a small block. */
    static const size_t pairs[][2] = {{SIZE_MAX / 2 + 1, 2},          {SIZE_MAX, SIZE_MAX},
                                      {(1ull << 32) + 1, 1ull << 32}, {1ull << 33, 1ull << 31},
                                      {SIZE_MAX / 16 + 1, 16},        {3, SIZE_MAX / 3 + 1},
                                      {1ull << 25, 1ull << 25} /* 1 PiB, no overflow */};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t c = opaque(pairs[i][0]), s = opaque(pairs[i][1]);
        errno = 0;
        void *p = calloc(c, s);
        CHECK(p == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p errno %d", c, s, p, errno);
        if (p) free(p);
#ifndef HK_TEST_PREFIXED
        void *q = malloc(32);
        REQUIRE(q, "malloc");
        memset(q, 7, 32);
        errno = 0;
        p = reallocarray(q, c, s);
        CHECK(p == NULL && errno == ENOMEM, "reallocarray(p, %#zx, %#zx) = %p errno %d", c, s, p,
              errno);
        if (p)
            q = p;
        else
            CHECK(((unsigned char *)q)[31] == 7, "reallocarray failure damaged the block");
        free(q);
#endif
    }
    /* An alignment that pushes a near-limit size over the edge. */
    void *p = NULL;
    int rc = posix_memalign(&p, 1 * MiB, opaque(SIZE_MAX - MiB / 2));
    CHECK(rc == ENOMEM, "posix_memalign(1 MiB, SIZE_MAX - 512 KiB) = %d", rc);
    if (rc == 0) free(p);
#ifdef HK_TEST_PREFIXED
    const char *also = "";
#else
    const char *also = ", reallocarray";
#endif
    printf("  impossible sizes and overflowing products -> NULL + ENOMEM (malloc, calloc, "
           "aligned_alloc, posix_memalign%s)\n",
           also);
}

#ifndef HK_TEST_PREFIXED
static void test_reallocarray(void) {
    unsigned char *p = reallocarray(NULL, 10, 10);
    REQUIRE(p, "reallocarray(NULL, 10, 10)");
    hkt_fill(p, 100, 11);
    unsigned char *q = reallocarray(p, 1000, 10);
    REQUIRE(q, "reallocarray(p, 1000, 10)");
    CHECK(hkt_verify_prefix(q, 100, 100, 11) == (size_t)-1, "reallocarray lost contents");
    free(q);
    printf("  reallocarray: grows and keeps contents\n");
}
#endif

static void test_realloc(void) {
    /* realloc(NULL, n) is malloc(n). */
    void *p = realloc(NULL, 100);
    REQUIRE(p, "realloc(NULL, 100)");
    CHECK(is_aligned(p, 16) && hkt_usable_size(p) >= 100, "realloc(NULL, 100) block");
    /* glibc: realloc(p, 0) frees p and returns NULL. */
    void *z = realloc(p, 0);
    CHECK(z == NULL, "realloc(p, 0) = %p, glibc frees and returns NULL", z);
    if (z) free(z);

    /* Across every tier and back, contents preserved each step. */
    static const size_t chain[] = {8,       24,       100,      1000,    5000,      100 * KiB,
                                   1 * MiB, 10 * MiB, 16 * MiB, 3 * MiB, 100 * KiB, 16,
                                   1,       70000,    33 * MiB, 200,     4 * MiB,   8};
    size_t n = chain[0];
    unsigned char *b = malloc(n);
    REQUIRE(b, "malloc");
    hkt_fill(b, n, 1000);
    for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++) {
        size_t m = chain[i];
        unsigned char *c = realloc(b, m);
        REQUIRE(c, "realloc(%zu -> %zu)", n, m);
        CHECK(is_aligned(c, 16), "realloc result %p unaligned", c);
        CHECK(hkt_usable_size(c) >= m, "usable %zu < %zu after realloc", hkt_usable_size(c), m);
        size_t bad = hkt_verify_prefix(c, n, m, 1000 + i - 1);
        CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", n, m, bad);
        hkt_fill(c, m, 1000 + i);
        b = c;
        n = m;
    }
    free(b);

    /* Byte-by-byte growth and shrink: in-place paths inside one class and at class edges. */
    b = NULL;
    n = 0;
    for (size_t m = 1; m <= 5000; m += 1 + m / 64) {
        unsigned char *c = realloc(b, m);
        REQUIRE(c, "realloc to %zu", m);
        CHECK(hkt_verify_prefix(c, n, n, 77 + n) == (size_t)-1, "grow to %zu lost contents", m);
        hkt_fill(c, m, 77 + m);
        b = c;
        n = m;
    }
    for (size_t m = n; m >= 1; m -= 1 + m / 64) {
        unsigned char *c = realloc(b, m);
        REQUIRE(c, "realloc to %zu", m);
        CHECK(hkt_verify_prefix(c, n, m, 77 + n) == (size_t)-1, "shrink to %zu lost contents", m);
        hkt_fill(c, m, 77 + m);
        b = c;
        n = m;
        if (m < 2) break;
    }
    free(b);

    /* A failed realloc leaves the old block alone, small and large. */
    static const size_t olds[] = {1000, 200 * KiB, 10 * MiB};
    for (size_t i = 0; i < 3; i++) {
        unsigned char *o = malloc(olds[i]);
        REQUIRE(o, "malloc(%zu)", olds[i]);
        hkt_fill(o, olds[i], 555 + i);
        for (size_t j = 0; j < N_IMPOSSIBLE; j++) {
            errno = 0;
            void *r = realloc(o, opaque(impossible[j]));
            CHECK(r == NULL && errno == ENOMEM, "realloc(%zu B block, %#zx) = %p errno %d", olds[i],
                  impossible[j], r, errno);
            if (r) {
                o = r; /* keep going with whatever came back */
                break;
            }
            CHECK(hkt_verify(o, olds[i], 555 + i) == (size_t)-1,
                  "failed realloc damaged the %zu B block", olds[i]);
        }
        free(o);
    }

    /* realloc of aligned blocks must find the block from its aligned address. */
    for (size_t a = 32; a <= 64 * KiB; a *= 8) {
        unsigned char *o = aligned_alloc(a, 3 * a);
        REQUIRE(o, "aligned_alloc(%zu)", a);
        hkt_fill(o, 3 * a, a);
        unsigned char *c = realloc(o, 10 * a + 5);
        REQUIRE(c, "realloc aligned");
        CHECK(hkt_verify_prefix(c, 3 * a, 3 * a, a) == (size_t)-1,
              "realloc of a %zu-aligned block lost contents", a);
        free(c);
    }
    printf("  realloc: NULL -> malloc, (p, 0) -> NULL, contents kept 8 B..33 MiB and back, "
           "failure keeps the block\n");
}

static void exercise_aligned(const char *what, void *p, size_t align, size_t n) {
    CHECK(p != NULL, "%s(%zu, %zu) returned NULL", what, align, n);
    if (!p) return;
    CHECK(is_aligned(p, align), "%s(%zu, %zu) = %p misaligned", what, align, n, p);
    CHECK(hkt_usable_size(p) >= n, "%s(%zu, %zu): usable %zu", what, align, n, hkt_usable_size(p));
}

static const size_t align_sizes[] = {0, 1, 100, 5000, 1 * MiB};
#define N_ALIGN_SIZES 5

static void test_posix_memalign(void) {
    static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, 4097, 3 * MiB, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1;
        int rc = posix_memalign(&p, opaque(bad[i]), 64);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL", bad[i], rc);
        if (rc == 0) free(p);
    }
    for (size_t a = sizeof(void *); a <= 4 * MiB; a *= 2) {
        void *p[N_ALIGN_SIZES];
        for (int i = 0; i < N_ALIGN_SIZES; i++) {
            p[i] = NULL;
            int rc = posix_memalign(&p[i], a, align_sizes[i]);
            CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, align_sizes[i], rc);
            if (rc) p[i] = NULL;
            exercise_aligned("posix_memalign", p[i], a, align_sizes[i]);
            if (p[i]) hkt_fill(p[i], align_sizes[i], a + (size_t)i);
        }
        for (int i = 0; i < N_ALIGN_SIZES; i++) {
            if (!p[i]) continue;
            CHECK(hkt_verify(p[i], align_sizes[i], a + (size_t)i) == (size_t)-1,
                  "posix_memalign(%zu, %zu) block damaged", a, align_sizes[i]);
            free(p[i]);
        }
    }
    /* Alignments beyond the segment size must work too (huge tier). */
    for (size_t a = 8 * MiB; a <= 64 * MiB; a *= 2) {
        for (size_t n = 1; n <= 3 * a; n = n * 97 + 3) {
            void *p = NULL;
            int rc = posix_memalign(&p, a, n);
            CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
            exercise_aligned("posix_memalign", rc ? NULL : p, a, n);
            if (rc == 0) {
                memset(p, 0x44, n < 4096 ? n : 4096);
                free(p);
            }
        }
    }
    printf("  posix_memalign: EINVAL for 0, < sizeof(void*), non-powers of two; every power of "
           "two 8 B..64 MiB works\n");
}

/* Aligned blocks of the medium classes while pages of the same class that malloc filled are
 * live and partly free: such pages may not start their blocks at an aligned place (hakmem's
 * classes above 8 KiB start 64 bytes in), so every aligned result is checked, and malloc
 * and aligned blocks of the class must keep their contents side by side. */
static void test_aligned_medium(void) {
    enum { LIVE = 40 };
    size_t checked = 0;
    for (size_t n = 9 * KiB; n <= 128 * KiB; n += n / 3) {
        for (size_t a = 128; a <= 64 * KiB && a <= n; a *= 8) {
            unsigned char *m[LIVE], *q[LIVE];
            for (int i = 0; i < LIVE; i++) {
                m[i] = malloc(n);
                REQUIRE(m[i], "malloc(%zu)", n);
                hkt_fill(m[i], n, n + (size_t)i);
            }
            for (int i = 0; i < LIVE; i += 2) free(m[i]); /* the malloc'd pages keep free blocks */
            for (int i = 0; i < LIVE; i++) {
                q[i] = aligned_alloc(a, n);
                exercise_aligned("aligned_alloc", q[i], a, n);
                if (q[i]) hkt_fill(q[i], n, 7 * n + (size_t)i);
                checked++;
            }
            for (int i = 0; i < LIVE; i += 2) {
                m[i] = malloc(n);
                REQUIRE(m[i], "malloc(%zu) after aligned ones", n);
                hkt_fill(m[i], n, n + (size_t)i);
            }
            for (int i = 0; i < LIVE; i++) {
                CHECK(hkt_verify(m[i], n, n + (size_t)i) == (size_t)-1, "malloc(%zu) block damaged", n);
                if (q[i])
                    CHECK(hkt_verify(q[i], n, 7 * n + (size_t)i) == (size_t)-1,
                          "aligned_alloc(%zu, %zu) block damaged", a, n);
                free(m[i]);
                free(q[i]);
            }
        }
    }
    printf("  aligned_alloc: %zu medium blocks at 128 B..64 KiB beside live malloc'd ones of their "
           "size, aligned and intact\n", checked);
}

static void test_aligned_alloc(void) {
    for (size_t a = 1; a <= 4 * MiB; a *= 2) {
        void *p[N_ALIGN_SIZES];
        for (int i = 0; i < N_ALIGN_SIZES; i++) {
            p[i] = aligned_alloc(a, align_sizes[i]);
            exercise_aligned("aligned_alloc", p[i], a, align_sizes[i]);
            if (p[i]) hkt_fill(p[i], align_sizes[i], a * 7 + (size_t)i);
        }
        for (int i = 0; i < N_ALIGN_SIZES; i++) {
            if (!p[i]) continue;
            CHECK(hkt_verify(p[i], align_sizes[i], a * 7 + (size_t)i) == (size_t)-1,
                  "aligned_alloc(%zu, %zu) block damaged", a, align_sizes[i]);
            free(p[i]);
        }
    }
    /* C17 (DR 460) and glibc >= 2.38: an alignment that is not a power of two fails with
     * EINVAL. glibc 2.36 still rounds it up, so this is held against hakmem only. */
    if (!hkt_system) {
        static const size_t bad[] = {3, 24, 48, 100, 4097};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            errno = 0;
            void *p = aligned_alloc(opaque(bad[i]), 64);
            CHECK(p == NULL && errno == EINVAL, "aligned_alloc(%zu, 64) = %p errno %d", bad[i], p,
                  errno);
            if (p) free(p);
        }
    }
    printf("  aligned_alloc: every power of two 1 B..4 MiB works%s\n",
           hkt_system ? "" : "; non-powers of two -> NULL + EINVAL");
}

#ifndef HK_TEST_PREFIXED
static void test_memalign_family(void) {
    long page = sysconf(_SC_PAGESIZE);
    for (size_t a = 1; a <= 4 * MiB; a *= 2) {
        for (int i = 0; i < N_ALIGN_SIZES; i++) {
            void *p = memalign(a, align_sizes[i]);
            exercise_aligned("memalign", p, a, align_sizes[i]);
            if (p) memset(p, 0x11, align_sizes[i]);
            free(p);
        }
    }
    /* glibc rounds a non-power-of-two alignment up to the next power of two. */
    static const size_t odd[] = {3, 24, 48, 100, 4097};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        size_t up = 1;
        while (up < odd[i])
            up *= 2;
        errno = 0;
        void *p = memalign(opaque(odd[i]), 100);
        CHECK(p == NULL ? errno == EINVAL : is_aligned(p, up),
              "memalign(%zu, 100) = %p (errno %d): want NULL+EINVAL or %zu-aligned", odd[i], p,
              errno, up);
        free(p);
    }
    static const size_t vs[] = {0, 1, 100, 4096, 4097, 100000, 3 * MiB + 1};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        void *p = valloc(vs[i]);
        exercise_aligned("valloc", p, (size_t)page, vs[i]);
        if (p) memset(p, 0x22, vs[i]);
        free(p);
        p = pvalloc(vs[i]);
        size_t rounded = (vs[i] + (size_t)page - 1) & ~((size_t)page - 1);
        exercise_aligned("pvalloc", p, (size_t)page, rounded);
        if (p) memset(p, 0x33, rounded); /* the rounded-up size belongs to the caller */
        free(p);
    }
    printf("  memalign (powers of two 1 B..4 MiB, odd ones rounded up), valloc, pvalloc "
           "(page aligned, size rounded to page)\n");
}
#endif

static void test_sized_free(void) {
    for (size_t n = 0; n <= 300000; n = n * 2 + 3) {
        void *p = malloc(n);
        REQUIRE(p, "malloc(%zu)", n);
        memset(p, 1, n);
        hkt_free_sized(p, n);
        p = calloc(1, n);
        REQUIRE(p, "calloc");
        hkt_free_sized(p, n);
        /* Any size between the request and the usable size is allowed too. */
        p = malloc(n);
        REQUIRE(p, "malloc");
        hkt_free_sized(p, hkt_usable_size(p));
    }
#ifndef HK_TEST_PREFIXED
    void (*fas)(void *, size_t, size_t);
    *(void **)&fas = dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (!hkt_system) {
        CHECK(hkt_free_sized_fn != NULL, "free_sized is not exported");
        CHECK(fas != NULL, "free_aligned_sized is not exported");
    }
    if (fas) {
        for (size_t a = 16; a <= 1 * MiB; a *= 4) {
            for (int i = 0; i < N_ALIGN_SIZES; i++) {
                void *p = aligned_alloc(a, align_sizes[i]);
                REQUIRE(p, "aligned_alloc(%zu, %zu)", a, align_sizes[i]);
                memset(p, 2, align_sizes[i]);
                fas(p, a, align_sizes[i]);
            }
        }
    }
    printf("  free_sized (%s), free_aligned_sized (%s)\n",
           hkt_free_sized_fn ? "exported" : "absent", fas ? "exported" : "absent");
#else
    printf("  hk_free_sized with the request and with the usable size\n");
#endif
    /* The heap is still sound after all of that. */
    void *q = malloc(5000);
    REQUIRE(q, "malloc after sized frees");
    hkt_fill(q, 5000, 9);
    CHECK(hkt_verify(q, 5000, 9) == (size_t)-1, "block after sized frees");
    free(q);
}

static void test_trim_and_stats(void) {
    enum { K = 64 };
    void *p[K];
    for (int i = 0; i < K; i++) {
        p[i] = malloc((size_t)(i + 1) * 16 * KiB);
        REQUIRE(p[i], "malloc");
        hkt_fill(p[i], (size_t)(i + 1) * 16 * KiB, (uint64_t)i);
    }
    for (int i = 0; i < K; i += 2)
        free(p[i]);
#ifndef HK_TEST_PREFIXED
    int r = malloc_trim(0);
    CHECK(r == 0 || r == 1, "malloc_trim(0) = %d", r);
#endif
    if (!hkt_system) {
        int t = hkt_trim();
        CHECK(t == 0 || t == 1, "hk_trim() = %d", t);
        fflush(stdout);
        hkt_stats_print(stderr);
    }
    for (int i = 1; i < K; i += 2) {
        /* Trimming must only give back free memory. */
        CHECK(hkt_verify(p[i], (size_t)(i + 1) * 16 * KiB, (uint64_t)i) == (size_t)-1,
              "live block of %zu KiB damaged by trim", (size_t)(i + 1) * 16);
        free(p[i]);
    }
    void *q = malloc(100);
    REQUIRE(q, "malloc after trim");
    free(q);
    printf("  malloc_trim(0) (preload), hk_trim in {0,1}, hk_stats_print(stderr) runs; live "
           "blocks intact\n");
}

static unsigned char static_area[4096] __attribute__((aligned(64)));

/* In a child, so that a crash is reported by the parent instead of ending the test. */
static void test_foreign_free(void) {
    if (hkt_system) {
        printf("  foreign free: skipped on the system allocator (glibc aborts, by design)\n");
        return;
    }
    /* The allocator's own option says what a bad free does: fatal by default
     * (HAKMEM_BAD_FREE=abort), reported and ignored with =warn, ignored with =ignore. */
    const char *mode = getenv("HAKMEM_BAD_FREE"); /* abort (the default) | warn | ignore */
    int expect_abort = !mode || strcmp(mode, "abort") == 0;
    int expect_report = mode && strcmp(mode, "warn") == 0;
    char report_path[] = "/tmp/hk_foreign_free_XXXXXX";
    int report_fd = mkstemp(report_path);
    REQUIRE(report_fd >= 0, "mkstemp");
    unlink(report_path);
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        alarm(30);
        int saved_stderr = dup(2);
        long stack_var[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        unsigned char *page =
            mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) _exit(2);
        memset(static_area, 0x5C, sizeof static_area);
        void *foreign[] = {stack_var,       &stack_var[1], static_area, static_area + 64,
                           static_area + 8, page,          page + 4096, page + 512 * KiB};
        int bad = 0;
        for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
            if (hkt_owns(foreign[i]) != 0) {
                fprintf(stderr, "FAIL hk_owns(foreign %p) = %d\n", foreign[i],
                        hkt_owns(foreign[i]));
                bad = 1;
            }
            if (hkt_usable_fn && hkt_usable_fn(foreign[i]) != 0) {
                fprintf(stderr, "FAIL hk_usable_size(foreign %p) = %zu\n", foreign[i],
                        hkt_usable_fn(foreign[i]));
                bad = 1;
            }
        }
        dup2(report_fd, 2); /* whatever the allocator says about the bad frees */
        for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
            free(foreign[i]);
        dup2(saved_stderr, 2);
        /* A block from glibc itself, as when a library bypasses the interposed malloc. */
        void *(*libc_malloc)(size_t);
        *(void **)&libc_malloc = dlsym(RTLD_DEFAULT, "__libc_malloc");
        if (libc_malloc) {
            /* If hakmem also provides __libc_malloc this is an ordinary free. */
            free(libc_malloc(64));
        }
        if (stack_var[0] != 1 || stack_var[7] != 8 || static_area[0] != 0x5C ||
            static_area[4095] != 0x5C || page[0] != 0 || page[4096] != 0) {
            fprintf(stderr, "FAIL free of a foreign pointer wrote into it\n");
            bad = 1;
        }
        /* The allocator keeps working and handing out sound, distinct memory. */
        enum { K = 2000 };
        static void *blk[K];
        static size_t len[K];
        hkt_rng r = {42};
        for (int i = 0; i < K; i++) {
            len[i] = hkt_size(&r, 300 * KiB);
            blk[i] = malloc(len[i]);
            if (!blk[i]) _exit(3);
            hkt_fill(blk[i], len[i], (uint64_t)i);
        }
        for (int i = 0; i < K; i++) {
            if (hkt_verify(blk[i], len[i], (uint64_t)i) != (size_t)-1) {
                fprintf(stderr, "FAIL block %d damaged after foreign frees\n", i);
                bad = 1;
            }
            free(blk[i]);
        }
        _exit(bad ? 4 : 0);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    char report[512] = "";
    ssize_t got = pread(report_fd, report, sizeof report - 1, 0);
    close(report_fd);
    report[got > 0 ? got : 0] = 0;
    for (char *c = report; *c; c++)
        if (*c == '\n') *c = c[1] ? '|' : 0;
    if (got > 0) printf("  allocator's report of the bad frees (first lines): %.200s\n", report);
    if (expect_abort) {
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
              "HAKMEM_BAD_FREE=abort, yet the child %s %d",
              WIFSIGNALED(st) ? "died of signal" : "exited with",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        printf("  foreign free with HAKMEM_BAD_FREE=abort (the default): the child aborted\n");
        return;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child that freed foreign pointers %s %d (stack, static, mmap, glibc block)",
          WIFSIGNALED(st) ? "died of signal" : "exited with",
          WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    if (expect_report)
        CHECK(got > 0, "HAKMEM_BAD_FREE=warn but nothing was reported about the foreign frees");
    printf(
        "  foreign free (stack, static, mmap page, glibc block): ignored%s, heap still sound%s\n",
        expect_report ? " and reported" : "",
        WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : " -- FAILED");
}

int main(void) {
    hkt_init(NAME);
    test_alignment_and_usable();
    test_nallocx();
    test_zero_sizes();
    test_calloc();
    test_impossible();
#ifndef HK_TEST_PREFIXED
    test_reallocarray();
#endif
    test_realloc();
    test_posix_memalign();
    test_aligned_medium();
    test_aligned_alloc();
#ifndef HK_TEST_PREFIXED
    test_memalign_family();
#endif
    test_sized_free();
    test_trim_and_stats();
    test_foreign_free();
    return hkt_finish(NAME);
}

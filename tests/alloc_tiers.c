/* alloc_tiers: the edges between medium size classes, large slice runs and huge mappings,
 * from 1 KiB to 64 MiB. Sizes at, below and above every edge keep their contents next to
 * neighbours of the same size; aligned blocks up to 4 MiB; realloc across every tier edge
 * in both directions keeps the contents; calloc of memory a dirty block of the same size just
 * gave back reads as zero in every tier. */
#include "alloc_test.h"

#define NAME "alloc_tiers"

/* Edges: medium classes are four per doubling from 1 KiB to 128 KiB; large blocks are runs of
 * 64 KiB slices up to 2 MiB; huge blocks are mappings of their own, cut at 4 MiB multiples. */
static size_t edges[256];
static int edge_count;

static void add_edge(size_t e) {
    if (edge_count < (int)(sizeof edges / sizeof edges[0])) edges[edge_count++] = e;
}

static void make_edges(void) {
    for (size_t b = 1 * KiB; b < 128 * KiB; b *= 2)
        for (size_t k = 0; k < 4; k++) add_edge(b + k * (b / 4));
    for (size_t e = 128 * KiB; e <= 2 * MiB; e += 64 * KiB) add_edge(e);
    for (size_t e = 3 * MiB; e <= 8 * MiB; e += MiB) add_edge(e);
    for (size_t e = 12 * MiB; e <= 64 * MiB; e *= 2) {
        add_edge(e);
        add_edge(e + 4 * MiB);
    }
}

/* Three blocks of each size live at once, filled, then all verified: a block shorter than
 * asked or two blocks sharing memory show up as a damaged neighbour. */
static void edge_contents(void) {
    int sizes = 0;
    for (int i = 0; i < edge_count; i++) {
        for (int d = -1; d <= 1; d++) {
            size_t n = edges[i] + (size_t)d;
            int reps = n > 8 * MiB ? 1 : 3;
            void *p[3];
            for (int k = 0; k < reps; k++) {
                p[k] = malloc(n);
                REQUIRE(p[k], "malloc(%zu)", n);
                REQUIRE(((uintptr_t)p[k] & 15) == 0, "malloc(%zu) = %p not 16-aligned", n, p[k]);
                CHECK(hkt_usable_size(p[k]) >= n, "usable %zu < %zu", hkt_usable_size(p[k]), n);
                hkt_fill(p[k], n, hkt_mix(n * 3 + (size_t)k));
            }
            for (int k = 0; k < reps; k++) {
                size_t bad = hkt_verify(p[k], n, hkt_mix(n * 3 + (size_t)k));
                CHECK(bad == (size_t)-1, "%zu-byte block %d damaged at %zu", n, k, bad);
                free(p[k]);
            }
            sizes++;
        }
    }
    printf("  %d sizes at, below and above %d class and tier edges (1 KiB..64 MiB): contents kept\n",
           sizes, edge_count);
}

static void alignments(void) {
    static const size_t sizes[] = {1000, 5000, 70 * KiB, 600 * KiB, 3 * MiB, 9 * MiB};
    int count = 0;
    for (size_t a = 32; a <= 4 * MiB; a *= 2)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            void *p = NULL;
            int rc = posix_memalign(&p, a, sizes[s]);
            REQUIRE(rc == 0 && p, "posix_memalign(%zu, %zu) = %d", a, sizes[s], rc);
            CHECK(((uintptr_t)p & (a - 1)) == 0, "posix_memalign(%zu, %zu) = %p", a, sizes[s], p);
            CHECK(hkt_usable_size(p) >= sizes[s], "usable %zu < %zu", hkt_usable_size(p), sizes[s]);
            hkt_fill(p, sizes[s], a + s);
            void *q = aligned_alloc(a, sizes[s]);
            REQUIRE(q, "aligned_alloc(%zu, %zu)", a, sizes[s]);
            CHECK(((uintptr_t)q & (a - 1)) == 0, "aligned_alloc(%zu, %zu) = %p", a, sizes[s], q);
            hkt_fill(q, sizes[s], ~(a + s));
            CHECK(hkt_verify(p, sizes[s], a + s) == (size_t)-1, "aligned block damaged");
            CHECK(hkt_verify(q, sizes[s], ~(a + s)) == (size_t)-1, "aligned block damaged");
            free(p);
            free(q);
            count += 2;
        }
    printf("  %d aligned blocks, alignment 32 B..4 MiB, sizes 1000 B..9 MiB\n", count);
}

/* One size on each side of every tier edge: small/medium (1 KiB), medium/large (128 KiB),
 * large/huge (2 MiB), and a huge block that spans several segments (40 MiB). */
static void realloc_tiers(void) {
    static const size_t path[] = {900,          1100,          100 * KiB, 200 * KiB, 1900 * KiB,
                                  2300 * KiB,   40 * MiB,      2300 * KiB, 1900 * KiB, 200 * KiB,
                                  100 * KiB,    1100,          900,        40 * MiB,   900,
                                  200 * KiB,    1100,          2300 * KiB, 100 * KiB,  40 * MiB,
                                  1900 * KiB,   1100};
    enum { N = sizeof path / sizeof path[0] };
    size_t n = path[0];
    unsigned char *p = malloc(n);
    REQUIRE(p, "malloc");
    hkt_fill(p, n, 0);
    for (int i = 1; i < N; i++) {
        unsigned char *q = realloc(p, path[i]);
        REQUIRE(q, "realloc(%zu -> %zu)", n, path[i]);
        size_t bad = hkt_verify_prefix(q, n, path[i], (uint64_t)i - 1);
        CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", n, path[i], bad);
        CHECK(hkt_usable_size(q) >= path[i], "usable %zu < %zu", hkt_usable_size(q), path[i]);
        n = path[i];
        p = q;
        hkt_fill(p, n, (uint64_t)i);
    }
    free(p);
    printf("  realloc across the 1 KiB, 128 KiB and 2 MiB tier edges and to 40 MiB, both ways, %d "
           "steps: contents kept\n",
           N - 1);
}

/* Dirty a block, free it, calloc the same size (the allocator's first choice is the memory
 * just freed) and check every byte of it. */
static void calloc_reuse(void) {
    static const size_t sizes[] = {1100,      3000,      8 * KiB,  40 * KiB,   100 * KiB,
                                   129 * KiB, 700 * KiB, 2 * MiB,  2 * MiB + 1, 5 * MiB,
                                   17 * MiB,  40 * MiB};
    int count = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int round = 0; round < 3; round++) {
            size_t n = sizes[s];
            unsigned char *d = malloc(n);
            REQUIRE(d, "malloc(%zu)", n);
            memset(d, 0xC5, n);
            free(d);
            unsigned char *z = calloc(n, 1);
            REQUIRE(z, "calloc(%zu, 1)", n);
            size_t nonzero = n;
            for (size_t o = 0; o < n; o++)
                if (z[o]) {
                    nonzero = o;
                    break;
                }
            CHECK(nonzero == n, "calloc(%zu) after a freed dirty block: byte %zu = %#x (round %d)",
                  n, nonzero, nonzero < n ? z[nonzero] : 0, round);
            memset(z, 0x3A, n); /* dirty again for the next round */
            free(z);
            count++;
        }
    printf("  %d callocs of 1 KiB..40 MiB right after freeing a dirty block of the size: all zero\n",
           count);
}

int main(void) {
    hkt_init(NAME);
    double t0 = hkt_now();
    make_edges();
    edge_contents();
    alignments();
    realloc_tiers();
    calloc_reuse();
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

/* alloc_huge_rss: when a huge block needs fresh pages, freed memory that waits out the purge
 * delay is not kept resident beside them. Run with a long HAKMEM_PURGE_DELAY_MS, so that only
 * these rules can give it back:
 *   1. freed large blocks' slices are purged before a fresh huge mapping is faulted in;
 *   2. a huge block that grows a cached mapping takes the pages of the other cached mappings
 *      that fit in its growth (moved, not faulted in again), and calloc clears them.
 * and the freed memory a new block reuses is not among what they give back:
 *   3. a run a little bigger than a freed one, where that one lay, keeps its pages: only the
 *      growth is faulted in (minor faults from getrusage);
 *   4. a huge block of the size of the last one, after a smaller one, reuses its mapping where
 *      it lies (the part past the smaller one's 4 MiB boundary stays with it).
 * RSS is read from /proc/self/statm; each step touches every page. */
#include <sys/resource.h>

#include "alloc_test.h"

#define NAME "alloc_huge_rss"

static void touch(unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i += 4096) p[i] = v;
    p[n - 1] = v;
}

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static double mib(size_t a, size_t b) { return ((double)a - (double)b) / (double)MiB; }

int main(void) {
    hkt_init(NAME);
    const char *delay = getenv("HAKMEM_PURGE_DELAY_MS");
    REQUIRE(delay && atol(delay) >= 10000, "run with HAKMEM_PURGE_DELAY_MS >= 10000 (got %s)",
            delay ? delay : "unset");
    if (hkt_system) return hkt_finish(NAME);

    /* 1: 16 MiB in 1 MiB blocks (slice runs of the heap's segments), freed, then 32 MiB huge. */
    enum { RUNS = 16 };
    unsigned char *run[RUNS];
    size_t r0 = hkt_rss();
    for (int i = 0; i < RUNS; i++) {
        run[i] = malloc(MiB);
        REQUIRE(run[i], "malloc(1 MiB)");
        touch(run[i], MiB, 1);
    }
    for (int i = 0; i < RUNS; i++) free(run[i]);
    size_t r1 = hkt_rss();
    CHECK(r1 > r0 + 12 * MiB, "freed slice runs kept for the delay: +%.1f MiB", mib(r1, r0));
    unsigned char *big = malloc(32 * MiB);
    REQUIRE(big, "malloc(32 MiB)");
    touch(big, 32 * MiB, 2);
    size_t r2 = hkt_rss();
    CHECK(r2 < r0 + 32 * MiB + 4 * MiB,
          "fresh 32 MiB huge block beside 16 MiB of freed runs: +%.1f MiB (want < 36)", mib(r2, r0));
    printf("%s/%s: runs freed +%.1f MiB, then a fresh 32 MiB block +%.1f MiB\n", NAME, HKT_BUILD,
           mib(r1, r0), mib(r2, r0));
    free(big); /* cached: 32 MiB stays resident */

    /* 2: two smaller huge blocks, freed (cached), then one bigger than both: it grows the
     * larger cached mapping and must take the smaller one's pages for the growth. Twice, the
     * second time with calloc, whose memory must read as zero. */
    for (int round = 0; round < 2; round++) {
        hkt_trim(); /* an empty huge cache to start from */
        size_t b0 = hkt_rss();
        unsigned char *a = malloc(8 * MiB), *b = malloc(12 * MiB);
        REQUIRE(a && b, "malloc(8 / 12 MiB)");
        touch(a, 8 * MiB, 3);
        touch(b, 12 * MiB, 4);
        free(b);
        free(a);
        size_t b1 = hkt_rss();
        unsigned char *c = round ? calloc(1, 22 * MiB) : malloc(22 * MiB);
        REQUIRE(c, "%s(22 MiB)", round ? "calloc" : "malloc");
        size_t nonzero = 0;
        if (round)
            for (size_t i = 0; i < 22 * MiB; i++) nonzero += c[i] != 0;
        CHECK(nonzero == 0, "calloc(22 MiB) over reused mappings: %zu bytes not zero", nonzero);
        touch(c, 22 * MiB, 5);
        size_t b2 = hkt_rss();
        /* without the rule: 20 MiB cached + 10 MiB of growth faulted in beside the 8 MiB */
        CHECK(b2 < b0 + 22 * MiB + 4 * MiB,
              "22 MiB block over 8 + 12 MiB cached: +%.1f MiB (want < 26)", mib(b2, b0));
        printf("%s/%s: %s 8 + 12 MiB cached +%.1f MiB, then 22 MiB +%.1f MiB\n", NAME, HKT_BUILD,
               round ? "calloc:" : "malloc:", mib(b1, b0), mib(b2, b0));
        free(c);
    }

    /* 3: 1 MiB freed, then 1.5 MiB: 128 fresh pages, not 384. */
    hkt_trim();
    unsigned char *one = malloc(MiB);
    REQUIRE(one, "malloc(1 MiB)");
    touch(one, MiB, 6);
    free(one);
    long f0 = minor_faults();
    unsigned char *more = malloc(3 * MiB / 2);
    REQUIRE(more, "malloc(1.5 MiB)");
    touch(more, 3 * MiB / 2, 7);
    long faults = minor_faults() - f0;
    CHECK(faults < 256, "1.5 MiB run after a freed 1 MiB run: %ld minor faults (want < 256)",
          faults);
    printf("%s/%s: 1.5 MiB run after a freed 1 MiB one: %ld minor faults\n", NAME, HKT_BUILD,
           faults);
    free(more);

    /* 4: 40 MiB, 39 MiB, 40 MiB, one at a time: the third is the first's mapping. */
    void *first = malloc(40 * MiB), *again;
    REQUIRE(first, "malloc(40 MiB)");
    free(first);
    void *less = malloc(39 * MiB);
    REQUIRE(less == first, "malloc(39 MiB) after a freed 40 MiB block: %p, not %p", less, first);
    free(less);
    again = malloc(40 * MiB);
    REQUIRE(again, "malloc(40 MiB)");
    CHECK(again == first, "40 MiB after a freed 39 MiB block cut from it: %p, not %p (moved)",
          again, first);
    free(again);
    return hkt_finish(NAME);
}

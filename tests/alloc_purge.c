/* alloc_purge: freed medium, large and huge blocks go back to the OS once the purge delay
 * (HAKMEM_PURGE_DELAY_MS) has passed, and not before it. The program touches about 90 MiB in
 * blocks of 4 KiB..12 MiB (a quarter of the medium ones grown by realloc), frees them all, and
 * then goes on working with a few blocks of each tier while it polls RSS (/proc/self/statm)
 * with a generous timeout.
 *   --expect return  RSS must come back near the baseline within the timeout
 *   --expect keep    (run with a long delay) RSS must still hold most of it after the frees */
#include "alloc_test.h"

#define NAME "alloc_purge"

enum { MEDIUM = 1200, LARGE = 24, HUGE = 3 };
static void *blocks[MEDIUM + LARGE + HUGE];
static size_t sizes[MEDIUM + LARGE + HUGE];

/* A program that keeps running: a few allocations of every tier, freed again. */
static void work(hkt_rng *r) {
    void *p[6];
    size_t n[6] = {64 + hkt_below(r, 900),    2 * KiB + hkt_below(r, 60 * KiB),
                   70 * KiB + hkt_below(r, 50 * KiB), 300 * KiB + hkt_below(r, 1500 * KiB),
                   3 * MiB + hkt_below(r, 2 * MiB),  24 + hkt_below(r, 200)};
    for (int i = 0; i < 6; i++) {
        p[i] = malloc(n[i]);
        REQUIRE(p[i], "malloc(%zu)", n[i]);
        memset(p[i], 0x11, n[i] < 8192 ? n[i] : 8192);
    }
    for (int i = 0; i < 6; i++) free(p[i]);
}

int main(int argc, char **argv) {
    int keep = argc == 3 && strcmp(argv[1], "--expect") == 0 && strcmp(argv[2], "keep") == 0;
    int ret = argc == 3 && strcmp(argv[1], "--expect") == 0 && strcmp(argv[2], "return") == 0;
    if (!keep && !ret) {
        fprintf(stderr, "usage: %s --expect return|keep\n", argv[0]);
        return 2;
    }
    hkt_init(NAME);
    const char *delay = getenv("HAKMEM_PURGE_DELAY_MS");
    hkt_rng r = {77};
    for (int i = 0; i < 50; i++) work(&r); /* every tier has its first segment and page */
    size_t base = hkt_rss(), total = 0;
    for (int i = 0; i < MEDIUM + LARGE + HUGE; i++) {
        size_t n = i < MEDIUM           ? 4 * KiB + hkt_below(&r, 60 * KiB)
                   : i < MEDIUM + LARGE ? 200 * KiB + hkt_below(&r, 1800 * KiB)
                                        : 6 * MiB + hkt_below(&r, 6 * MiB);
        /* A quarter of the medium blocks grow there by realloc (hakmem: slice runs of their own). */
        if (i < MEDIUM && i % 4 == 0) {
            void *q = malloc(n / 4);
            REQUIRE(q, "malloc(%zu)", n / 4);
            memset(q, 0x5A, n / 4);
            blocks[i] = realloc(q, n);
        } else {
            blocks[i] = malloc(n);
        }
        REQUIRE(blocks[i], "malloc(%zu)", n);
        memset(blocks[i], 0x5A, n);
        sizes[i] = n;
        total += n;
    }
    size_t peak = hkt_rss();
    CHECK(peak >= base + total / 2, "RSS %zu MiB did not rise by half of the %zu MiB touched",
          peak / MiB, total / MiB);
    /* Free in an order that empties pages of every class, not one class at a time. */
    for (int i = 0; i < MEDIUM + LARGE + HUGE; i += 2) free(blocks[i]);
    for (int i = 1; i < MEDIUM + LARGE + HUGE; i += 2) free(blocks[i]);
    size_t freed = hkt_rss();
    /* Whatever may stay resident for good: the current page of each class and a segment or
     * two of headers; well under half of what was freed. */
    size_t allowed = base + total / 4;
    printf("  HAKMEM_PURGE_DELAY_MS=%s: base %zu MiB, %zu MiB touched in %d blocks of 4 KiB..12 "
           "MiB -> %zu MiB, freed -> %zu MiB\n",
           delay ? delay : "(default)", base / MiB, total / MiB, MEDIUM + LARGE + HUGE, peak / MiB,
           freed / MiB);
    if (keep) {
        /* Within a delay of many seconds nothing freed is purged yet (the check runs at once). */
        for (int i = 0; i < 20; i++) work(&r);
        size_t now = hkt_rss();
        printf("  right after the frees and some work: %zu MiB (must stay above %zu MiB)\n",
               now / MiB, allowed / MiB);
        CHECK(now > allowed, "RSS fell to %zu MiB before the purge delay had passed", now / MiB);
        return hkt_finish(NAME);
    }
    double t0 = hkt_now(), waited = 0;
    size_t now = freed;
    while (now > allowed && waited < 30.0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        work(&r);
        now = hkt_rss();
        waited = hkt_now() - t0;
    }
    printf("  after %.2f s: %zu MiB (allowed %zu MiB)\n", waited, now / MiB, allowed / MiB);
    CHECK(now <= allowed, "RSS still %zu MiB %.0f s after freeing %zu MiB (base %zu MiB)",
          now / MiB, waited, total / MiB, base / MiB);
    return hkt_finish(NAME);
}

/* alloc_realloc: blocks that change size by realloc. Growth by small appends (one block alone,
 * and many side by side, as string builders and vectors do) keeps every byte; with hakmem a
 * block growing past 2 KiB moves to a slice run of its own and then grows in place, so it
 * moves only a few times. A run shrinks in place and gives its tail back; a shrink below the
 * run threshold, and every tier edge crossed both ways (medium, run, huge), keeps the content;
 * a block realloc'd by a thread that does not own it keeps its content too; a huge block is
 * remapped as it grows (few faults) and shrinks in place. */
#include "alloc_test.h"

#define NAME "alloc_realloc"

/* Grow one block from `from` to `to` bytes by `step`; returns it with [0, to) filled with key.
 * Counts the times realloc moved it in *moves. */
static unsigned char *grow(unsigned char *p, size_t from, size_t to, size_t step, uint64_t key,
                           int *moves) {
    size_t len = from;
    for (size_t n = from + step; len < to; n += step) {
        if (n > to) n = to;
        unsigned char *q = realloc(p, n);
        REQUIRE(q, "realloc(%zu)", n);
        if (q != p) {
            ++*moves;
            size_t bad = hkt_check_range(q, 0, len, key);
            CHECK(bad == (size_t)-1, "realloc %zu -> %zu moved the block and lost byte %zu", len,
                  n, bad);
        }
        hkt_fill_range(q, len, n, key);
        p = q;
        len = n;
    }
    return p;
}

static void lone_growth(void) {
    int moves = 0;
    unsigned char *p = malloc(100);
    REQUIRE(p, "malloc(100)");
    hkt_fill_range(p, 0, 100, 41);
    p = grow(p, 100, 1536 * KiB, 700, 41, &moves);
    size_t bad = hkt_check_range(p, 0, 1536 * KiB, 41);
    CHECK(bad == (size_t)-1, "1.5 MiB block grown by 700 B steps: byte %zu wrong", bad);
    if (!hkt_system)
        CHECK(moves <= 24, "a lone block grown from 100 B to 1.5 MiB moved %d times", moves);
    printf("  one block grown 100 B -> 1.5 MiB by 700 B reallocs: contents kept, moved %d times\n",
           moves);
    free(p);
}

/* Many blocks grown round-robin, so each one's neighbours are in its way. */
static void side_by_side(void) {
    enum { N = 24 };
    unsigned char *p[N];
    size_t len[N];
    int moves = 0;
    for (int i = 0; i < N; i++) {
        len[i] = 16;
        p[i] = malloc(len[i]);
        REQUIRE(p[i], "malloc(16)");
        hkt_fill_range(p[i], 0, len[i], 100 + (uint64_t)i);
    }
    for (int round = 0; round < 200; round++)
        for (int i = 0; i < N; i++) {
            size_t n = len[i] + 1500 + (size_t)i * 37;
            p[i] = grow(p[i], len[i], n, n - len[i], 100 + (uint64_t)i, &moves);
            len[i] = n;
        }
    int bad_blocks = 0;
    for (int i = 0; i < N; i++) {
        if (hkt_check_range(p[i], 0, len[i], 100 + (uint64_t)i) != (size_t)-1) bad_blocks++;
        free(p[i]);
    }
    CHECK(bad_blocks == 0, "%d of %d blocks grown side by side were damaged", bad_blocks, N);
    if (!hkt_system)
        CHECK(moves <= N * 10, "%d blocks grown side by side to ~300 KiB moved %d times", N, moves);
    printf("  %d blocks grown side by side to ~300 KiB: contents kept, %d moves in %d reallocs\n", N,
           moves, N * 200);
}

/* A run shrinks in place (same pointer, smaller usable size); below the threshold it moves. */
static void shrink(void) {
    int moves = 0;
    unsigned char *p = malloc(3000);
    REQUIRE(p, "malloc(3000)");
    hkt_fill_range(p, 0, 3000, 7);
    p = grow(p, 3000, 1 * MiB, 64 * KiB, 7, &moves);
    size_t before = hkt_usable_size(p);
    unsigned char *q = realloc(p, 300 * KiB);
    REQUIRE(q, "realloc(1 MiB -> 300 KiB)");
    size_t bad = hkt_check_range(q, 0, 300 * KiB, 7);
    CHECK(bad == (size_t)-1, "shrink 1 MiB -> 300 KiB lost byte %zu", bad);
    if (!hkt_system) {
        CHECK(q == p, "a run shrunk from 1 MiB to 300 KiB moved (%p -> %p)", (void *)p, (void *)q);
        CHECK(hkt_usable_size(q) >= 300 * KiB && hkt_usable_size(q) < before,
              "usable %zu after shrinking from %zu to 300 KiB", hkt_usable_size(q), before);
    }
    /* The tail it gave back is free memory: a new run can take it, and the shrunk block's
     * content does not change when that one is written. */
    unsigned char *other = malloc(600 * KiB);
    REQUIRE(other, "malloc(600 KiB)");
    memset(other, 0xEE, 600 * KiB);
    bad = hkt_check_range(q, 0, 300 * KiB, 7);
    CHECK(bad == (size_t)-1, "a neighbour written after the shrink changed byte %zu", bad);
    /* ... and growing back in place must not take the neighbour's slices. */
    q = grow(q, 300 * KiB, 900 * KiB, 100 * KiB, 7, &moves);
    for (size_t i = 0; i < 600 * KiB; i += 4096)
        if (other[i] != 0xEE || other[i + 4095] != 0xEE) {
            CHECK(0, "growing the shrunk block overwrote its neighbour at %zu", i);
            break;
        }
    free(other);
    p = realloc(q, 1000);
    REQUIRE(p, "realloc(900 KiB -> 1000)");
    bad = hkt_check_range(p, 0, 1000, 7);
    CHECK(bad == (size_t)-1, "shrink 900 KiB -> 1000 B lost byte %zu", bad);
    CHECK(hkt_usable_size(p) >= 1000, "usable %zu after shrinking to 1000", hkt_usable_size(p));
    if (!hkt_system)
        CHECK(hkt_usable_size(p) < 64 * KiB, "a 1000-byte block kept %zu usable bytes",
              hkt_usable_size(p));
    free(p);
    printf("  a 1 MiB run shrunk to 300 KiB in place, a neighbour in its tail, grown back, shrunk "
           "to 1000 B: contents kept\n");
}

/* Up through every tier and back down, by realloc each way. */
static void tiers(void) {
    static const size_t seq[] = {100,    3000,    9000,     70 * KiB, 600 * KiB, 2 * MiB,
                                 3 * MiB, 9 * MiB, 40 * MiB, 9 * MiB,  3 * MiB,   2 * MiB,
                                 600 * KiB, 70 * KiB, 9000,  3000,     100};
    size_t n = sizeof seq / sizeof seq[0], filled = seq[0];
    unsigned char *p = malloc(seq[0]);
    REQUIRE(p, "malloc");
    hkt_fill(p, filled, 9);
    for (size_t i = 1; i < n; i++) {
        unsigned char *q = realloc(p, seq[i]);
        REQUIRE(q, "realloc(%zu -> %zu)", seq[i - 1], seq[i]);
        size_t bad = hkt_verify_prefix(q, filled, seq[i], 9);
        CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", seq[i - 1], seq[i], bad);
        CHECK(hkt_usable_size(q) >= seq[i], "usable %zu < %zu", hkt_usable_size(q), seq[i]);
        hkt_fill(q, seq[i], 9);
        filled = seq[i];
        p = q;
    }
    free(p);
    printf("  realloc 100 B -> 40 MiB -> 100 B through every tier: contents kept\n");
}

/* A run allocated by another thread, then grown and shrunk here. */
static void *make_run(void *arg) {
    (void)arg;
    unsigned char *p = malloc(100);
    if (!p) return NULL;
    hkt_fill_range(p, 0, 100, 5);
    int moves = 0;
    return grow(p, 100, 200 * KiB, 3000, 5, &moves);
}

static void foreign(void) {
    pthread_t t;
    void *r = NULL;
    REQUIRE(pthread_create(&t, NULL, make_run, NULL) == 0, "pthread_create");
    pthread_join(t, &r);
    REQUIRE(r, "the thread's block");
    unsigned char *p = realloc(r, 150 * KiB);
    REQUIRE(p, "realloc of another thread's run");
    CHECK(hkt_check_range(p, 0, 150 * KiB, 5) == (size_t)-1, "shrinking a foreign run lost data");
    unsigned char *q = realloc(p, 700 * KiB);
    REQUIRE(q, "realloc(700 KiB)");
    CHECK(hkt_check_range(q, 0, 150 * KiB, 5) == (size_t)-1, "growing a foreign run lost data");
    q = realloc(q, 500);
    REQUIRE(q, "realloc(500)");
    CHECK(hkt_check_range(q, 0, 500, 5) == (size_t)-1, "shrinking a foreign run to 500 lost data");
    free(q);
    printf("  another thread's run shrunk, grown and shrunk to 500 B here: contents kept\n");
}

/* A huge block grown by 1 MiB steps to 64 MiB: the content stays, and (hakmem) its pages are
 * remapped, not copied, so about one fault per page written (under 1.2 per page is allowed; a
 * copy into fresh memory faults in more). Shrunk, it stays in place. */
static void huge(void) {
    size_t len = 3 * MiB;
    unsigned char *p = malloc(len);
    REQUIRE(p, "malloc(3 MiB)");
    for (size_t o = 0; o < len; o += 4096) hkt_fill_range(p, o, o + 64, 11);
    long f0 = hkt_minor_faults();
    for (size_t n = len + MiB; n <= 64 * MiB; n += MiB) {
        unsigned char *q = realloc(p, n);
        REQUIRE(q, "realloc(%zu)", n);
        for (size_t o = len; o < n; o += 4096) hkt_fill_range(q, o, o + 64, 11);
        p = q;
        len = n;
    }
    long faults = hkt_minor_faults() - f0;
    size_t bad = (size_t)-1;
    for (size_t o = 0; o < len && bad == (size_t)-1; o += 4096) bad = hkt_check_range(p, o, o + 64, 11);
    CHECK(bad == (size_t)-1, "huge block grown to 64 MiB: byte %zu wrong", bad);
    if (!hkt_system)
        CHECK(faults < (long)(61 * MiB / 4096) * 6 / 5,
              "growing a huge block 3 -> 64 MiB by 1 MiB took %ld minor faults (%llu pages written)",
              faults, 61 * MiB / 4096);
    unsigned char *q = realloc(p, 20 * MiB);
    REQUIRE(q, "realloc(64 -> 20 MiB)");
    if (!hkt_system) CHECK(q == p, "a huge block shrunk from 64 to 20 MiB moved");
    bad = (size_t)-1;
    for (size_t o = 0; o < 20 * MiB && bad == (size_t)-1; o += 4096) bad = hkt_check_range(q, o, o + 64, 11);
    CHECK(bad == (size_t)-1, "huge block shrunk to 20 MiB: byte %zu wrong", bad);
    CHECK(hkt_usable_size(q) >= 20 * MiB, "usable %zu after shrinking to 20 MiB", hkt_usable_size(q));
    if (!hkt_system)
        CHECK(hkt_usable_size(q) < 24 * MiB, "a huge block shrunk to 20 MiB kept %zu usable bytes",
              hkt_usable_size(q));
    free(q);
    printf("  a huge block grown 3 -> 64 MiB by 1 MiB reallocs (%ld minor faults), shrunk to 20 MiB: "
           "contents kept\n", faults);
}

int main(void) {
    hkt_init(NAME);
    lone_growth();
    side_by_side();
    shrink();
    tiers();
    foreign();
    huge();
    return hkt_finish(NAME);
}

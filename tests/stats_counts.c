/* The statistics build's per-class counts (make stats-lib): every path that hands out or
 * takes back a block is counted once. This program, linked with build/stats/libhakmem.a,
 * prints a JSON report, makes a known set of allocations and frees through every tier and
 * entry point (small, medium, slice runs, huge mappings; malloc, calloc, aligned_alloc,
 * realloc; owner and cross-thread frees), then prints a second report.
 * tests/stats_check.py --counts compares the difference with the counts printed here.
 * Run with HAKMEM_BACKGROUND=0: a purger thread's start would allocate in between. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

#define N_SMALL 1000
#define N_MEDIUM 100
#define N_MEDIUM_BIG 50 /* above the direct table's 8 KiB (hk_malloc_medium) */
#define N_LARGE 10
#define N_HUGE 4
#define N_CALLOC_LARGE 5
#define N_ALIGNED 10
#define N_ALIGNED_HUGE 5

static void *to_free[N_SMALL];
static size_t n_to_free;
static atomic_int phase; /* 0 starting, 1 ready, 2 blocks handed over, 3 freed */

/* Frees what main hands it: cross-thread frees for the small and large blocks, a free with
 * no owner for the huge ones. */
static void *freer(void *arg) {
    (void)arg;
    hk_free(hk_malloc(16)); /* its heap exists before the first report */
    atomic_store(&phase, 1);
    while (atomic_load(&phase) != 2) sched_yield();
    for (size_t i = 0; i < n_to_free; i++) hk_free(to_free[i]);
    atomic_store(&phase, 3);
    return NULL;
}

int main(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, freer, NULL) != 0) return 1;
    while (atomic_load(&phase) != 1) sched_yield();
    fputs("before\n", stdout); /* stdout's buffer is allocated before the first report */
    hk_stats_print_json(stdout);

    long allocs = 0, frees = 0, remote = 0, large = 0, large_remote = 0, huge = 0;
    static void *small[N_SMALL];
    for (int i = 0; i < N_SMALL; i++) small[i] = hk_malloc(48);
    allocs += N_SMALL;
    void *medium[N_MEDIUM], *mb[N_MEDIUM_BIG], *lg[N_LARGE], *hg[N_HUGE], *cl[N_CALLOC_LARGE],
        *al[N_ALIGNED], *ah[N_ALIGNED_HUGE];
    for (int i = 0; i < N_MEDIUM; i++) medium[i] = hk_calloc(1, 5000);
    for (int i = 0; i < N_MEDIUM_BIG; i++) mb[i] = hk_malloc(9000 + (size_t)i * 2000);
    for (int i = 0; i < N_LARGE; i++) lg[i] = hk_malloc(512 << 10);
    for (int i = 0; i < N_HUGE; i++) hg[i] = hk_malloc(8 << 20);
    for (int i = 0; i < N_CALLOC_LARGE; i++) cl[i] = hk_calloc(300, 1024);
    for (int i = 0; i < N_ALIGNED; i++) al[i] = hk_aligned_alloc(4096, 4096);
    for (int i = 0; i < N_ALIGNED_HUGE; i++) ah[i] = hk_aligned_alloc(256 << 10, 100 << 10);
    allocs += N_MEDIUM + N_MEDIUM_BIG + N_LARGE + N_HUGE + N_CALLOC_LARGE + N_ALIGNED +
              N_ALIGNED_HUGE;
    large += N_LARGE + N_CALLOC_LARGE;
    huge += N_HUGE + N_ALIGNED_HUGE;
    /* realloc: a small block moves to a slice run, then to a huge mapping; each move is a
     * new block and the free of the old one. */
    void *r = hk_malloc(100);
    void *r2 = hk_realloc(r, 100000);
    void *r3 = r2 ? hk_realloc(r2, 20 << 20) : NULL;
    allocs += 3;
    frees += 2;
    large++;
    huge++;
    for (int i = 0; i < N_SMALL; i++)
        if (!small[i]) return 1;
    for (int i = 0; i < N_MEDIUM; i++)
        if (!medium[i] || ((char *)medium[i])[4999] != 0) return 1;
    for (int i = 0; i < N_MEDIUM_BIG; i++)
        if (!mb[i]) return 1;
    for (int i = 0; i < N_LARGE; i++)
        if (!lg[i]) return 1;
    for (int i = 0; i < N_HUGE; i++)
        if (!hg[i]) return 1;
    for (int i = 0; i < N_CALLOC_LARGE; i++)
        if (!cl[i]) return 1;
    for (int i = 0; i < N_ALIGNED; i++)
        if (!al[i] || (uintptr_t)al[i] % 4096) return 1;
    for (int i = 0; i < N_ALIGNED_HUGE; i++)
        if (!ah[i] || (uintptr_t)ah[i] % (256 << 10)) return 1;
    if (!r3 || r3 == r2 || r2 == r) return 1;

    /* Two fifths of the small blocks, half the large and half the huge ones go to the
     * other thread. */
    for (int i = 0; i < N_SMALL; i++) {
        if (i % 5 < 2) to_free[n_to_free++] = small[i];
        else hk_free(small[i]);
    }
    remote += N_SMALL * 2 / 5;
    for (int i = 0; i < N_LARGE; i++) {
        if (i % 2) to_free[n_to_free++] = lg[i];
        else hk_free(lg[i]);
    }
    remote += N_LARGE / 2;
    large_remote += N_LARGE / 2;
    for (int i = 0; i < N_HUGE; i++) {
        if (i % 2) to_free[n_to_free++] = hg[i];
        else hk_free(hg[i]);
    }
    atomic_store(&phase, 2);
    while (atomic_load(&phase) != 3) sched_yield();
    for (int i = 0; i < N_MEDIUM; i++) hk_free(medium[i]);
    for (int i = 0; i < N_MEDIUM_BIG; i++) hk_free(mb[i]);
    for (int i = 0; i < N_CALLOC_LARGE; i++) hk_free(cl[i]);
    for (int i = 0; i < N_ALIGNED; i++) hk_free(al[i]);
    for (int i = 0; i < N_ALIGNED_HUGE; i++) hk_free(ah[i]);
    hk_free(r3);
    frees += N_SMALL + N_MEDIUM + N_MEDIUM_BIG + N_LARGE + N_HUGE + N_CALLOC_LARGE + N_ALIGNED +
             N_ALIGNED_HUGE + 1;

    hk_stats_print_json(stdout);
    /* The figures the reports' difference must show: all classes, the 48-byte class, the
     * large (slice runs) and huge rows. frees include the cross-thread ones. */
    printf("expect total allocs=%ld frees=%ld remote=%ld\n", allocs, frees, remote);
    printf("expect 48 allocs=%d frees=%d remote=%d\n", N_SMALL, N_SMALL, N_SMALL * 2 / 5);
    printf("expect large allocs=%ld frees=%ld remote=%ld\n", large, large, large_remote);
    printf("expect huge allocs=%ld frees=%ld remote=0\n", huge, huge);
    fflush(stdout);
    pthread_join(t, NULL);
    return 0;
}

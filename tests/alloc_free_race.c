/* alloc_free_race: the same blocks freed by two other threads at the same instant, in the
 * small, medium and large tiers, the two meeting before each block. With HAKMEM_BAD_FREE=warn every block's second free must be
 * reported exactly once (also when both frees pass the first check together), the run must
 * end (no cycle followed on a remote list), and afterwards the heap must be sound: fresh
 * blocks all distinct and keeping their content. Runs with HAKMEM_BAD_FREE=warn only. */
#include <pthread.h>
#include <stdatomic.h>

#include "alloc_test.h"

#define NAME "alloc_free_race"

static const size_t sizes[] = {16, 48, 256, 1000, 3000, 6000, 20000, 200 * KiB};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define MAX_BLOCKS 512
#define ROUNDS 8

static void *blocks[MAX_BLOCKS];
static size_t nblocks;
static atomic_long arrived;

/* The two threads meet before each block (both arrive, then both free it), so that their
 * frees of one block often overlap. */
static void *freer(void *arg) {
    (void)arg;
    for (size_t i = 0; i < nblocks; i++) {
        long target = 2 * (long)(i + 1);
        atomic_fetch_add(&arrived, 1);
        for (unsigned spins = 0; atomic_load(&arrived) < target; spins++)
            if (spins > 1000) sched_yield();
        free(blocks[i]);
    }
    return NULL;
}

/* Fresh blocks of size n after the race: all distinct, each keeping its own pattern. */
static void heap_sound(size_t n, size_t count, uint64_t salt) {
    static void *fresh[2 * MAX_BLOCKS];
    for (size_t i = 0; i < 2 * count; i++) {
        fresh[i] = malloc(n);
        REQUIRE(fresh[i] != NULL, "malloc(%zu) after the race", n);
        hkt_fill(fresh[i], n, hkt_mix(salt + i));
    }
    for (size_t i = 0; i < 2 * count; i++) {
        size_t at = hkt_verify(fresh[i], n, hkt_mix(salt + i));
        CHECK(at == (size_t)-1, "size %zu: fresh block %zu (%p) damaged at byte %zu: a block "
              "handed out twice after racing double frees", n, i, fresh[i], at);
    }
    for (size_t i = 0; i < 2 * count; i++) free(fresh[i]);
}

int main(void) {
    hkt_init(NAME);
    if (hkt_system) {
        printf("  free race: skipped on the system allocator (glibc aborts, by design)\n");
        return hkt_finish(NAME);
    }
    const char *mode = getenv("HAKMEM_BAD_FREE");
    REQUIRE(mode && strcmp(mode, "warn") == 0, "run with HAKMEM_BAD_FREE=warn (it is %s)",
            mode ? mode : "unset");
    alarm(120); /* a cycle followed forever ends the test here */
    char report_path[] = "/tmp/hk_free_race_XXXXXX";
    int report_fd = mkstemp(report_path);
    REQUIRE(report_fd >= 0, "mkstemp");
    unlink(report_path);
    int saved_stderr = dup(2);
    dup2(report_fd, 2); /* what the allocator says about the double frees */
    long expected = 0;
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        nblocks = 4 * MiB / n < MAX_BLOCKS ? 4 * MiB / n : MAX_BLOCKS;
        for (int r = 0; r < ROUNDS; r++) {
            for (size_t i = 0; i < nblocks; i++) {
                blocks[i] = malloc(n);
                REQUIRE(blocks[i] != NULL, "malloc(%zu)", n);
                hkt_fill(blocks[i], n < 64 ? n : 64, i);
            }
            atomic_store(&arrived, 0);
            pthread_t t[2];
            for (int k = 0; k < 2; k++)
                REQUIRE(pthread_create(&t[k], NULL, freer, NULL) == 0, "pthread_create");
            for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
            expected += (long)nblocks;
            heap_sound(n, nblocks, 1000 * s + (size_t)r);
        }
    }
    dup2(saved_stderr, 2);
    /* One line per report; the malloc() ones would be damaged free lists. */
    FILE *f = fdopen(report_fd, "r");
    REQUIRE(f && fseek(f, 0, SEEK_SET) == 0, "read the reports");
    long frees = 0, mallocs = 0, other = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "hakmem: free(): double free of")) frees++;
        else if (strstr(line, "hakmem: malloc(")) mallocs++;
        else if (strstr(line, "hakmem:")) other++;
    }
    fclose(f);
    printf("  %ld blocks freed by two threads at once: %ld double frees reported, %ld damaged "
           "lists, %ld other reports\n", expected, frees, mallocs, other);
    CHECK(frees == expected, "%ld double frees reported, %ld expected (one per block)", frees,
          expected);
    CHECK(mallocs == 0 && other == 0, "%ld damaged-list and %ld other reports", mallocs, other);
    return hkt_finish(NAME);
}

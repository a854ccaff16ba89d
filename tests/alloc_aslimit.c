/* alloc_aslimit: the allocator under an address-space limit (RLIMIT_AS: `ulimit -v`,
 * `prlimit --as`, a fuzzer's memory limit), which counts every mapping, reserved or not. The
 * test sets the limit and runs itself again, so that the allocator starts under it; with
 * --runtime it sets the limit after the allocator has started, as a program that limits
 * itself does. Under LIMIT_MB:
 * - blocks of every tier, a block aligned to 16 MiB and a huge block grown by realloc are
 *   allocated, filled and checked;
 * - a huge block's mapping lands past a foreign mapping that sits where the next one would go,
 *   which is left intact;
 * - allocating 1 MiB blocks until malloc fails ends in NULL with ENOMEM, after most of the
 *   limit (at least half of what the process has left);
 * - after those are freed and 8 MiB blocks have filled the limit and been freed (both kept
 *   for reuse by the caches), 1 MiB blocks fill it again as far as the first time;
 * - threads allocate and free after all that. */
#include <sys/resource.h>

#include "alloc_test.h"

#define NAME "alloc_aslimit"
#define LIMIT_MB 160
#define MIB ((size_t)1 << 20)
#define MAX_BLOCKS 4096

static size_t vm_size_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb >> 10;
}

static void *filled(size_t n, uint64_t key) {
    uint8_t *p = malloc(n);
    if (p) {
        p[0] = (uint8_t)key;
        p[n / 2] = (uint8_t)(key >> 8);
        p[n - 1] = (uint8_t)(key >> 16);
    }
    return p;
}

static int intact(const uint8_t *p, size_t n, uint64_t key) {
    return p[0] == (uint8_t)key && p[n / 2] == (uint8_t)(key >> 8) && p[n - 1] == (uint8_t)(key >> 16);
}

static void *blocks[MAX_BLOCKS];

/* Allocate blocks of n bytes until malloc fails; returns how many it gave. */
static size_t fill(size_t n) {
    size_t k = 0;
    errno = 0;
    for (; k < MAX_BLOCKS; k++) {
        blocks[k] = filled(n, k);
        if (blocks[k] == NULL) break;
    }
    REQUIRE(k < MAX_BLOCKS, "malloc(%zu) never failed under a %d MiB limit", n, LIMIT_MB);
    CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d, not ENOMEM", n, errno);
    for (size_t i = 0; i < k; i++) {
        CHECK(intact(blocks[i], n, i), "block %zu of %zu bytes changed", i, n);
        free(blocks[i]);
    }
    return k;
}

static void tiers(void) {
    static const size_t sizes[] = {16, 1000, 5000, 40000, 200000, 1536 * 1024, 6 * MIB, 30 * MIB};
    size_t count = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < count; i++) blocks[i] = filled(sizes[i], i + 1);
    for (size_t i = 0; i < count; i++) {
        REQUIRE(blocks[i], "malloc(%zu) under the limit", sizes[i]);
        CHECK(intact(blocks[i], sizes[i], i + 1), "block of %zu bytes changed", sizes[i]);
        free(blocks[i]);
    }
    void *a = NULL;
    CHECK(posix_memalign(&a, 16 * MIB, MIB) == 0 && a && ((uintptr_t)a & (16 * MIB - 1)) == 0,
          "posix_memalign(16 MiB, 1 MiB) gave %p", a);
    free(a);
    uint8_t *g = malloc(6 * MIB);
    REQUIRE(g, "malloc(6 MiB)");
    memset(g, 7, 6 * MIB);
    for (size_t n = 12 * MIB; n <= 48 * MIB; n *= 2) {
        g = realloc(g, n);
        REQUIRE(g, "realloc to %zu MiB", n / MIB);
        CHECK(g[0] == 7 && g[3 * MIB] == 7 && g[6 * MIB - 1] == 7,
              "realloc to %zu MiB lost the content", n / MIB);
        memset(g + 6 * MIB, 0, n - 6 * MIB);
    }
    free(g);
}

/* A foreign mapping right after a huge block, where the next one would be placed. */
static void foreign_neighbour(void) {
    uint8_t *p = malloc(8 * MIB);
    REQUIRE(p, "malloc(8 MiB)");
    uintptr_t after = ((uintptr_t)p + 8 * MIB + 4 * MIB - 1) & ~(uintptr_t)(4 * MIB - 1);
    uint8_t *f = mmap((void *)after, 4 * MIB, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (f != (uint8_t *)after) {
        printf("%s: the range after a huge block is taken, foreign-neighbour case skipped\n", NAME);
        if (f != MAP_FAILED) munmap(f, 4 * MIB);
        free(p);
        return;
    }
    memset(f, 0x5a, 4 * MIB);
    uint8_t *q[4];
    for (int i = 0; i < 4; i++) {
        q[i] = malloc(8 * MIB);
        REQUIRE(q[i], "malloc(8 MiB) beside a foreign mapping");
        memset(q[i], 0xa5, 8 * MIB);
        CHECK(q[i] + 8 * MIB <= f || q[i] >= f + 4 * MIB, "block %p overlaps the foreign mapping %p",
              (void *)q[i], (void *)f);
    }
    size_t bad = 0;
    for (size_t i = 0; i < 4 * MIB; i++) bad += f[i] != 0x5a;
    CHECK(bad == 0, "%zu bytes of the foreign mapping changed", bad);
    for (int i = 0; i < 4; i++) free(q[i]);
    munmap(f, 4 * MIB);
    free(p);
}

static void *churn(void *arg) {
    hkt_rng r = {(uint64_t)(uintptr_t)arg};
    void *live[256] = {0};
    for (int i = 0; i < 20000; i++) {
        size_t k = hkt_below(&r, 256);
        free(live[k]);
        size_t n = hkt_size(&r, 256 * 1024);
        live[k] = malloc(n);
        if (live[k]) memset(live[k], 1, n < 64 ? n : 64);
    }
    for (int k = 0; k < 256; k++) free(live[k]);
    return NULL;
}

static void limit(void) {
    struct rlimit rl = {(rlim_t)LIMIT_MB * MIB, (rlim_t)LIMIT_MB * MIB};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        fprintf(stderr, "FAIL %s: setrlimit(RLIMIT_AS): %s\n", NAME, strerror(errno));
        exit(1);
    }
}

int main(int argc, char **argv) {
    int runtime = argc > 1 && strcmp(argv[1], "--runtime") == 0;
    if (!runtime && (argc < 2 || strcmp(argv[1], "--limited") != 0)) {
        limit();
        execl("/proc/self/exe", argv[0], "--limited", (char *)NULL);
        fprintf(stderr, "FAIL %s: exec: %s\n", NAME, strerror(errno));
        return 1;
    }
    hkt_init(NAME);
    if (runtime) limit();
    size_t vm = vm_size_mib();
    REQUIRE(vm < LIMIT_MB, "%zu MiB mapped under a %d MiB limit", vm, LIMIT_MB);
    size_t left = LIMIT_MB - vm;
    printf("%s: RLIMIT_AS %d MiB, %zu MiB left at start\n", NAME, LIMIT_MB, left);
    foreign_neighbour(); /* first: no cached mapping takes the next huge block */
    tiers();
    size_t first = fill(MIB);
    CHECK(first >= left / 2, "only %zu blocks of 1 MiB with %zu MiB left", first, left);
    size_t huge = fill(8 * MIB);
    CHECK(huge >= left / 16, "only %zu blocks of 8 MiB with %zu MiB left", huge, left);
    size_t again = fill(MIB);
    CHECK(again + 2 >= first, "%zu blocks of 1 MiB after the caches filled, %zu before", again, first);
    printf("%s: 1 MiB blocks %zu, then 8 MiB blocks %zu, then 1 MiB blocks %zu\n", NAME, first, huge,
           again);
    pthread_t t[4];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], &attr, churn, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    return hkt_finish(NAME);
}

/* alloc_idle: freed memory goes back to the OS while the program makes no allocator call.
 * A burst of small blocks (and a few huge ones) is freed by 1..N threads that then block;
 * RSS must fall under a bound within a few purge delays; so must the spare pages that batches
 * of blocks allocated and freed in turn leave; segments emptied beyond the cache are unmapped
 * at once. Also: no background thread in a
 * program that never maps much, none with HAKMEM_BACKGROUND=0 (counted in /proc/self/status),
 * and the mechanism survives fork in a threaded program. --expect-retained inverts the RSS
 * check (run with HAKMEM_BACKGROUND=0 it shows the check can fail). */
#include "alloc_test.h"

#define NAME "alloc_idle"

static size_t total = 192 * MiB;
static int nthreads = 1, expect_retained;
static pthread_barrier_t freed_bar;
static pthread_mutex_t never_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_c = PTHREAD_COND_INITIALIZER;

/* "Threads:" of /proc/self/status, read without allocating. */
static int task_count(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : -1;
}

/* Allocates `bytes` of 16-1024 B blocks plus four 3 MiB blocks, writes and checks them, frees
 * everything. Returns the RSS it reached. */
static size_t burst(size_t bytes, uint64_t key) {
    size_t cap = bytes / 400 + 16, n = 0, got = 0;
    void **b = malloc(cap * sizeof *b);
    REQUIRE(b, "malloc of the block table");
    hkt_rng r = {key};
    while (got < bytes && n < cap) {
        size_t sz = 16 + hkt_below(&r, 1009);
        b[n] = malloc(sz);
        REQUIRE(b[n], "malloc(%zu)", sz);
        memset(b[n], (int)(n & 0xff), sz);
        got += sz;
        n++;
    }
    void *huge[4];
    for (int i = 0; i < 4; i++) {
        huge[i] = malloc(3 * MiB);
        REQUIRE(huge[i], "malloc(3 MiB)");
        memset(huge[i], i + 1, 3 * MiB);
    }
    size_t peak = hkt_rss();
    for (size_t i = 0; i < n; i++) {
        REQUIRE(((unsigned char *)b[i])[0] == (unsigned char)(i & 0xff), "block %zu damaged", i);
        free(b[i]);
    }
    for (int i = 0; i < 4; i++)
        free(huge[i]);
    free(b);
    return peak;
}

static void block_forever(void) {
    pthread_mutex_lock(&never_m);
    for (;;)
        pthread_cond_wait(&never_c, &never_m);
}

static _Atomic size_t burst_peak; /* the largest RSS a worker saw before freeing */

static void *worker(void *arg) {
    size_t peak = burst(total / (size_t)nthreads, 0x1D1Eull + (uintptr_t)arg);
    size_t seen = atomic_load(&burst_peak);
    while (peak > seen && !atomic_compare_exchange_weak(&burst_peak, &seen, peak)) {
    }
    pthread_barrier_wait(&freed_bar);
    block_forever(); /* holds its (empty) heap for good; main exits under it */
    return NULL;
}

/* Polls RSS without allocating until it is at most `bound` or `limit_s` passed. */
static size_t wait_rss_below(size_t bound, double limit_s, double *took) {
    double t0 = hkt_now();
    size_t rss;
    while ((rss = hkt_rss()) > bound && hkt_now() - t0 < limit_s) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *took = hkt_now() - t0;
    return rss;
}

/* RSS after idling: at most `bound`, or above it with --expect-retained. */
static void check_idle_rss(size_t rss, size_t bound, double took) {
    if (expect_retained)
        CHECK(rss > bound, "RSS fell to %.1f MiB, expected it retained", (double)rss / MiB);
    else
        CHECK(rss <= bound, "RSS %.1f MiB still above %.1f MiB after %.2f s of idling",
              (double)rss / MiB, (double)bound / MiB, took);
}

/* Burst in `nthreads` threads that stay blocked; RSS must come down under the bound. */
static void scenario_burst(void) {
    size_t base = hkt_rss();
    pthread_barrier_init(&freed_bar, NULL, (unsigned)nthreads + 1);
    pthread_t tid;
    for (int i = 0; i < nthreads; i++) {
        REQUIRE(pthread_create(&tid, NULL, worker, (void *)(uintptr_t)i) == 0, "pthread_create");
        pthread_detach(tid);
    }
    pthread_barrier_wait(&freed_bar);
    size_t at_free = hkt_rss();
    /* Small-block pages each thread keeps current (at most 64 KiB per size class), headers. */
    size_t bound = base + 6 * MiB + (size_t)nthreads * 3 * MiB;
    double took;
    size_t rss = wait_rss_below(bound, expect_retained ? 1.5 : 10.0, &took);
    size_t peak = atomic_load(&burst_peak);
    printf("%s: %d thread(s) freed %zu MiB; RSS base %.1f MiB, before the frees %.1f MiB, "
           "when all were freed %.1f MiB, %.1f MiB after %.2f s (bound %.1f MiB)\n",
           NAME, nthreads, total / MiB, (double)base / MiB, (double)peak / MiB,
           (double)at_free / MiB, (double)rss / MiB, took, (double)bound / MiB);
    CHECK(peak > bound + 64 * MiB, "the burst did not raise RSS (%.1f MiB): nothing measured",
          (double)peak / MiB);
    check_idle_rss(rss, bound, took);
    int tasks = task_count();
    printf("%s: %d tasks (%d blocked workers + main)\n", NAME, tasks, nthreads);
    if (!hkt_system) {
        const char *bg = getenv("HAKMEM_BACKGROUND");
        int extra = bg && strcmp(bg, "0") == 0 ? 0 : 1;
        CHECK(tasks == nthreads + 1 + extra, "%d tasks, expected %d (background thread: %d)", tasks,
              nthreads + 1 + extra, extra);
    }
    /* return from main with the workers still blocked: exit must not wait for anyone */
}

/* Batches of 1 KiB blocks allocated and freed in turn leave their emptied pages whole for the
 * next batch (spare pages, src/segment.c): those go back to the OS after the purge delay as
 * free slices do, while the thread makes no call. */
static void scenario_spares(void) {
    /* 3 MiB: 48 pages, under a heap's segment of spares; the first round maps enough to
     * start the background thread, which a program that never maps 8 MiB goes without. */
    enum { N = 3072, FIRST = 4 * N, SIZE = 1024 };
    static unsigned char *p[FIRST];
    size_t base = hkt_rss();
    for (int round = 0; round < 20; round++) {
        int n = round == 0 ? FIRST : N;
        for (int i = 0; i < n; i++) {
            p[i] = malloc(SIZE);
            REQUIRE(p[i], "malloc(%d)", SIZE);
            memset(p[i], (round + i) & 0xff, SIZE);
        }
        for (int i = 0; i < n; i++) {
            REQUIRE(p[i][0] == ((round + i) & 0xff) && p[i][SIZE - 1] == ((round + i) & 0xff),
                    "block %d of round %d damaged", i, round);
            free(p[i]);
        }
    }
    size_t at_free = hkt_rss(), bound = base + MiB;
    double took;
    size_t rss = wait_rss_below(bound, expect_retained ? 1.5 : 10.0, &took);
    printf("%s: batches of %d x %d B: RSS base %.1f MiB, when freed %.1f MiB, %.1f MiB after "
           "%.2f s (bound %.1f MiB)\n", NAME, N, SIZE, (double)base / MiB, (double)at_free / MiB,
           (double)rss / MiB, took, (double)bound / MiB);
    CHECK(hkt_system || at_free > bound + MiB,
          "the batches did not raise RSS (%.1f MiB): nothing measured", (double)at_free / MiB);
    check_idle_rss(rss, bound, took);
}

/* Segments that frees empty go to the cache (HAKMEM_SEGMENT_CACHE, 16 by default) and the
 * rest are unmapped at once, whatever the purge delay (run with a long one): also when the
 * first pages to empty, one in every segment, became spares. 128 MiB of 1 KiB blocks are
 * freed across the segments (block k of each segment's 4032, then k + 1, ...). */
static void scenario_unmap(void) {
    enum { N = 128 * 1024, PER_SEGMENT = 4032, SIZE = 1024 };
    static unsigned char *p[N];
    size_t base = hkt_rss();
    for (int i = 0; i < N; i++) {
        p[i] = malloc(SIZE);
        REQUIRE(p[i], "malloc(%d)", SIZE);
        memset(p[i], i & 0xff, SIZE);
    }
    size_t full = hkt_rss();
    for (int k = 0; k < PER_SEGMENT; k++)
        for (int i = k; i < N; i += PER_SEGMENT) {
            REQUIRE(p[i][SIZE - 1] == (i & 0xff), "block %d damaged", i);
            free(p[i]);
        }
    size_t after = hkt_rss(), bound = base + 80 * MiB; /* 16 cached segments, 16 MiB slack */
    printf("%s: 128 MiB of %d B blocks freed across segments: RSS base %.1f MiB, full %.1f MiB, "
           "after the frees %.1f MiB (bound %.1f MiB)\n", NAME, SIZE, (double)base / MiB,
           (double)full / MiB, (double)after / MiB, (double)bound / MiB);
    CHECK(full > base + 120 * MiB, "the blocks did not raise RSS (%.1f MiB)", (double)full / MiB);
    if (!hkt_system)
        CHECK(after <= bound, "RSS %.1f MiB after the frees: emptied segments stayed mapped",
              (double)after / MiB);
}

/* A program that never maps much gets no extra thread. */
static void scenario_small(void) {
    void *p[2000];
    for (int k = 0; k < 50; k++) {
        for (int i = 0; i < 2000; i++) {
            p[i] = malloc((size_t)(16 + (i * 37) % 1000));
            REQUIRE(p[i], "malloc");
        }
        for (int i = 0; i < 2000; i++)
            free(p[i]);
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int tasks = task_count();
    printf("%s: small program: %d task(s)\n", NAME, tasks);
    CHECK(tasks == 1, "a program that freed little runs %d tasks, expected 1", tasks);
}

static atomic_int stop;

static void *churn(void *arg) {
    hkt_rng r = {0xC0FFEEull + (uintptr_t)arg};
    void *p[64] = {0};
    while (!atomic_load(&stop)) {
        int i = (int)hkt_below(&r, 64);
        free(p[i]);
        p[i] = malloc(hkt_below(&r, 8) == 0 ? 3 * MiB : 16 + hkt_below(&r, 4000));
        REQUIRE(p[i], "churn malloc");
        memset(p[i], 1, 16);
    }
    for (int i = 0; i < 64; i++)
        free(p[i]);
    return NULL;
}

/* fork while two threads churn and the purger runs: the child has no purger until it needs
 * one, then gets its own; the parent's keeps working. */
static void scenario_fork(void) {
    burst(64 * MiB, 7); /* starts the parent's purger */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i) == 0, "pthread_create");
    for (int round = 0; round < 6; round++) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            alarm(20);
            int tasks = task_count();
            if (tasks != 1) {
                fprintf(stderr, "child: %d tasks right after fork, expected 1\n", tasks);
                _exit(3);
            }
            size_t base = hkt_rss();
            burst(64 * MiB, 100 + (uint64_t)round);
            double took;
            size_t rss = wait_rss_below(base + 12 * MiB, 10.0, &took);
            tasks = task_count();
            if (rss > base + 12 * MiB) {
                fprintf(stderr, "child: RSS %.1f MiB after %.2f s, base %.1f MiB\n",
                        (double)rss / MiB, took, (double)base / MiB);
                _exit(4);
            }
            if (tasks != 2) {
                fprintf(stderr, "child: %d tasks after its burst, expected 2\n", tasks);
                _exit(5);
            }
            exit(0); /* exit, not _exit: atexit handlers and destructors run with the purger up */
        }
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d of round %d: status 0x%x",
              pid, round, status);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t base = hkt_rss();
    burst(96 * MiB, 9);
    double took;
    size_t rss = wait_rss_below(base + 12 * MiB, 10.0, &took);
    printf("%s: after 6 forks, parent burst back to %.1f MiB (base %.1f) in %.2f s; %d tasks\n",
           NAME, (double)rss / MiB, (double)base / MiB, took, task_count());
    CHECK(rss <= base + 12 * MiB, "parent RSS %.1f MiB after forks", (double)rss / MiB);
    CHECK(task_count() == 2, "parent runs %d tasks, expected main + purger", task_count());
}

/* The library loaded with dlopen (no preload), its purger started, then dlclose: the thread
 * must not be left running in unmapped code (the library is linked -z nodelete). */
static int scenario_dlclose(const char *lib) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h, "dlopen(%s): %s", lib, dlerror());
    void *(*m)(size_t) = (void *(*)(size_t))dlsym(h, "hk_malloc");
    void (*f)(void *) = (void (*)(void *))dlsym(h, "hk_free");
    REQUIRE(m && f, "hk_malloc/hk_free not found in %s", lib);
    enum { N = 4096 };
    static void *p[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = m(4096);
            REQUIRE(p[i], "hk_malloc");
            memset(p[i], 1, 4096);
        }
        for (int i = 0; i < N; i++)
            f(p[i]);
    }
    int tasks = task_count();
    dlclose(h);
    struct timespec ts = {0, 400 * 1000 * 1000}; /* several purge delays with the purger up */
    nanosleep(&ts, NULL);
    printf("%s: dlopen, 64 MiB through hk_malloc/hk_free, dlclose: %d tasks before, %d after "
           "400 ms, still running\n", NAME, tasks, task_count());
    CHECK(tasks == 2, "expected the purger to have started (%d tasks)", tasks);
    return hkt_finish(NAME);
}

int main(int argc, char **argv) {
    const char *scenario = "burst";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--total-mib") == 0 && i + 1 < argc)
            total = (size_t)atoi(argv[++i]) * MiB;
        else if (strcmp(argv[i], "--expect-retained") == 0) expect_retained = 1;
        else scenario = argv[i];
    }
    if (nthreads < 1) nthreads = 1;
    if (strcmp(scenario, "dlclose") == 0) {
        const char *lib = getenv("HK_LIB");
        REQUIRE(lib, "HK_LIB must name build/libhakmem.so");
        return scenario_dlclose(lib);
    }
    hkt_init(NAME);
    if (strcmp(scenario, "burst") == 0) scenario_burst();
    else if (strcmp(scenario, "small") == 0) scenario_small();
    else if (strcmp(scenario, "spares") == 0) scenario_spares();
    else if (strcmp(scenario, "unmap") == 0) scenario_unmap();
    else if (strcmp(scenario, "fork") == 0) scenario_fork();
    else {
        fprintf(stderr, "%s: unknown scenario %s (burst, spares, unmap, small, fork)\n", NAME, scenario);
        return 2;
    }
    return hkt_finish(NAME);
}

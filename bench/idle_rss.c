/* idle_rss: a burst of small blocks (16-1024 B, about --total bytes split over --threads
 * threads) is allocated, checked and freed; then every thread stays alive but blocked and the
 * program makes no allocator call while it prints its RSS every --step-ms for --idle-ms.
 * What an allocator keeps resident here is what an idle server keeps after its load is gone. */
#include <fcntl.h>
#include <pthread.h>

#include "bench_common.h"

/* RSS from /proc/self/statm with open/read: unlike bc_rss_kb (stdio) it allocates nothing. */
static long rss_kb_noalloc(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    long size = 0, resident = 0;
    if (sscanf(buf, "%ld %ld", &size, &resident) != 2) return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t total = (size_t)1 << 30, threads = 1;
static uint64_t seed = 1;
static pthread_barrier_t freed, finish;

static void *burst(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    size_t quota = total / threads, got = 0, n = 0, cap = quota / 500 + 16;
    void **blocks = bc_malloc(cap * sizeof *blocks);
    size_t *sizes = bc_malloc(cap * sizeof *sizes);
    bc_rng rng;
    bc_rng_init(&rng, seed, id);
    while (got < quota) {
        if (n == cap) {
            cap *= 2;
            blocks = realloc(blocks, cap * sizeof *blocks);
            sizes = realloc(sizes, cap * sizeof *sizes);
            if (!blocks || !sizes) bc_fail("realloc of the block table failed");
        }
        size_t sz = bc_range(bc_next(&rng), 16, 1024);
        blocks[n] = bc_malloc(sz);
        sizes[n] = sz;
        bc_mark(blocks[n], sz, id << 40 | n);
        got += sz;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        bc_verify(blocks[i], sizes[i], id << 40 | i, "burst");
        free(blocks[i]);
    }
    free(blocks);
    free(sizes);
    pthread_barrier_wait(&freed);
    pthread_barrier_wait(&finish); /* blocked, holding whatever its heap kept */
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t idle_ms = 2000, step_ms = 100;
    const bc_opt opts[] = {
        {"total", BC_SIZE, &total, "bytes of blocks allocated in the burst (all threads)"},
        {"threads", BC_SIZE, &threads, "threads sharing the burst; they stay blocked while idle"},
        {"idle-ms", BC_U64, &idle_ms, "idle time after the frees"},
        {"step-ms", BC_U64, &step_ms, "RSS sampling interval"},
        {"seed", BC_U64, &seed, "PRNG seed"},
    };
    bc_workload = "idle_rss";
    bc_parse(argc, argv, "Burst of small blocks freed, then idle: RSS over time.", opts,
             sizeof opts / sizeof opts[0]);
    if (threads < 1 || threads > 256 || step_ms < 1) {
        fprintf(stderr, "idle_rss: need 1 <= threads <= 256 and step-ms >= 1\n");
        return 2;
    }
    long base_kb = bc_rss_kb();
    pthread_barrier_init(&freed, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&finish, NULL, (unsigned)threads + 1);
    pthread_t tid[256];
    double t0 = bc_now();
    for (size_t i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, burst, (void *)(uintptr_t)i) != 0)
            bc_fail("pthread_create failed");
    pthread_barrier_wait(&freed);
    double t_freed = bc_now();
    long at_1s = -1, last = -1;
    /* From here until the threads are released, nothing calls malloc or free: the samples
     * are written with write(2) from a stack buffer. */
    for (uint64_t t = 0; t <= idle_ms; t += step_ms) {
        double target = t_freed + (double)t / 1000.0, now;
        while ((now = bc_now()) < target) {
            struct timespec ts = {0, (long)((target - now) * 1e9)};
            nanosleep(&ts, NULL);
        }
        last = rss_kb_noalloc();
        if (t <= 1000) at_1s = last;
        char line[96];
        int len = snprintf(line, sizeof line, "sample t_ms=%llu rss_kb=%ld\n",
                           (unsigned long long)t, last);
        if (write(1, line, (size_t)len) != len) bc_fail("write failed");
    }
    pthread_barrier_wait(&finish);
    for (size_t i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    char params[200];
    snprintf(params, sizeof params,
             "threads=%zu total_mib=%zu base_kb=%ld burst_s=%.3f rss_1s_kb=%ld rss_end_kb=%ld",
             threads, total >> 20, base_kb, t_freed - t0, at_1s, last);
    bc_result(params, total, t_freed - t0);
    return 0;
}

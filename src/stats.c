/* Statistics: process-wide counters kept on slow paths (always on), per-class allocation
 * counts (only in a HAKMEM_BUILD_STATS build, because they touch the fast paths), the
 * report printed by hk_stats_print and, with HAKMEM_STATS=1, at exit. */
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "internal.h"

hk_counters_t hk_counters;

void stats_add(_Atomic int64_t *v, _Atomic int64_t *peak, int64_t delta) {
    int64_t now = atomic_fetch_add_explicit(v, delta, memory_order_relaxed) + delta;
    int64_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (now > old &&
           !atomic_compare_exchange_weak_explicit(peak, &old, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* Messages go straight to fd 2 through a stack buffer: no stdio, no allocation. */
void hk_message(const char *fmt, ...) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "hakmem: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n += m < 0 ? 0 : m >= (int)(sizeof buf) - n - 1 ? (int)(sizeof buf) - n - 2 : m;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
}

static long rss_kib(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    long size = 0, rss = 0;
    if (sscanf(buf, "%ld %ld", &size, &rss) != 2) return -1;
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))
#define LOAD(x) atomic_load_explicit(&hk_counters.x, memory_order_relaxed)

HK_API void hk_stats_print(FILE *out) {
    if (out == NULL) out = stderr;
    fprintf(out, "hakmem statistics\n");
    fprintf(out, "  segments      %8lld (peak %lld), huge blocks %lld\n", (long long)LOAD(seg_count),
            (long long)LOAD(seg_peak), (long long)LOAD(huge_count));
    fprintf(out, "  mapped        %10.1f MiB (peak %.1f MiB)\n", MIB(LOAD(mapped)), MIB(LOAD(mapped_peak)));
    fprintf(out, "  committed     %10.1f MiB (peak %.1f MiB)  [slices in use or not yet purged]\n",
            MIB(LOAD(committed)), MIB(LOAD(committed_peak)));
    fprintf(out, "  process RSS   %10.1f MiB\n", (double)rss_kib() / 1024.0);
    fprintf(out, "  purges %lld   bad frees %lld\n", (long long)LOAD(purges),
            (long long)LOAD(bad_frees));
    fprintf(out, "  segments abandoned %lld, reclaimed %lld\n", (long long)LOAD(abandoned),
            (long long)LOAD(reclaimed));
    uint64_t allocs[CLASS_COUNT + 2] = {0}, frees[CLASS_COUNT + 2] = {0};
    uint64_t remote[CLASS_COUNT + 2] = {0};
    heap_stats_merge(allocs, frees, remote);
#ifdef HAKMEM_BUILD_STATS
    fprintf(out, "  %-6s %10s %8s %12s %14s %14s\n", "class", "block", "pages", "remote frees",
            "allocs", "frees");
#else
    fprintf(out, "  %-6s %10s %8s   (alloc, free and cross-thread free counts per class need\n"
                 "  %-6s %10s %8s    a HAKMEM_BUILD_STATS=1 build: make stats-lib)\n",
            "class", "block", "pages", "", "", "");
#endif
    for (size_t c = 0; c < CLASS_COUNT + 2; c++) {
        long long pages = c <= LARGE_CLASS ? (long long)LOAD(pages[c]) : LOAD(huge_count);
        long long rf = (long long)remote[c];
        if (pages == 0 && allocs[c] == 0 && rf == 0) continue;
        char name[16];
        if (c < CLASS_COUNT) snprintf(name, sizeof name, "%u", hk_class_size[c]);
        else snprintf(name, sizeof name, c == LARGE_CLASS ? "large" : "huge");
#ifdef HAKMEM_BUILD_STATS
        fprintf(out, "  %-6zu %10s %8lld %12lld %14llu %14llu\n", c, name, pages, rf,
                (unsigned long long)allocs[c], (unsigned long long)frees[c] + (unsigned long long)rf);
#else
        fprintf(out, "  %-6zu %10s %8lld\n", c, name, pages);
#endif
    }
    fprintf(out, "  options:\n");
    options_print(out);
}

__attribute__((destructor)) static void stats_at_exit(void) {
    if (hk_opt.stats) hk_stats_print(stderr);
}

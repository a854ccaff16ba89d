/* Statistics: process-wide counters kept on slow paths (always on), per-class allocation
 * counts (only in a HAKMEM_BUILD_STATS build, because they touch the fast paths), and the
 * report, readable or JSON, printed by hk_stats_print(_json) and, with HAKMEM_STATS, at exit.
 * A report is formatted in a stack buffer and written out: it never allocates. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

hk_counters_t hk_counters;

void stats_add(_Atomic int64_t *v, _Atomic int64_t *peak, int64_t delta) {
    int64_t now = atomic_fetch_add_explicit(v, delta, memory_order_relaxed) + delta;
    int64_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (now > old && !atomic_compare_exchange_weak_explicit(
                            peak, &old, now, memory_order_relaxed, memory_order_relaxed)) {
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

/* Where a report goes: a stdio stream (hk_stats_print's argument) or a file descriptor
 * (the report at exit), through a buffer on the caller's stack. */
typedef struct {
    FILE *file;
    int fd;
    size_t len;
    char buf[1024];
} out_t;

static void out_flush(out_t *o) {
    if (o->file)
        fwrite(o->buf, 1, o->len, o->file);
    else
        for (size_t done = 0; done < o->len;) {
            ssize_t w = write(o->fd, o->buf + done, o->len - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            done += (size_t)w;
        }
    o->len = 0;
}

/* Lines are short (a JSON string goes through out_json_string); a longer one is cut. */
__attribute__((format(printf, 2, 3))) static void out_printf(out_t *o, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    if (o->len + (size_t)n > sizeof o->buf) out_flush(o);
    memcpy(o->buf + o->len, line, (size_t)n);
    o->len += (size_t)n;
}

static void out_json_string(out_t *o, const char *s) {
    out_printf(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out_printf(o, "\\%c", c);
        else if (c < 0x20)
            out_printf(o, "\\u%04x", c);
        else
            out_printf(o, "%c", c);
    }
    out_printf(o, "\"");
}

static long rss_kib(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
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
#define LOAD(x) ((long long)atomic_load_explicit(&hk_counters.x, memory_order_relaxed))
#define CLASS_ROWS (CLASS_COUNT + 2) /* the size classes, then large and huge */

/* One row of the per-class table; 0 when the class has nothing to show. */
typedef struct {
    long long pages, remote;
    unsigned long long allocs, frees;
    char name[16];
} class_row_t;

static int class_row(size_t c, const uint64_t *allocs, const uint64_t *frees,
                     const uint64_t *remote, class_row_t *r) {
    r->pages = c <= LARGE_CLASS ? LOAD(pages[c]) : LOAD(huge_count);
    r->remote = (long long)remote[c];
    r->allocs = allocs[c];
    r->frees = frees[c] + remote[c];
    if (r->pages == 0 && r->allocs == 0 && r->remote == 0) return 0;
    if (c < CLASS_COUNT)
        snprintf(r->name, sizeof r->name, "%u", hk_class_size[c]);
    else
        snprintf(r->name, sizeof r->name, c == LARGE_CLASS ? "large" : "huge");
    return 1;
}

static void report_text(out_t *o) {
    out_printf(o, "hakmem statistics\n");
    out_printf(o, "  segments      %8lld (peak %lld), huge blocks %lld\n", LOAD(seg_count),
               LOAD(seg_peak), LOAD(huge_count));
    out_printf(o, "  mapped        %10.1f MiB (peak %.1f MiB)\n", MIB(LOAD(mapped)),
               MIB(LOAD(mapped_peak)));
    out_printf(o, "  committed     %10.1f MiB (peak %.1f MiB)  [slices in use or not yet purged]\n",
               MIB(LOAD(committed)), MIB(LOAD(committed_peak)));
    out_printf(o, "  process RSS   %10.1f MiB\n", (double)rss_kib() / 1024.0);
    out_printf(o, "  purges %lld   bad frees %lld\n", LOAD(purges), LOAD(bad_frees));
    out_printf(o, "  segments abandoned %lld, reclaimed %lld\n", LOAD(abandoned), LOAD(reclaimed));
    uint64_t allocs[CLASS_ROWS] = {0}, frees[CLASS_ROWS] = {0}, remote[CLASS_ROWS] = {0};
    heap_stats_merge(allocs, frees, remote);
#ifdef HAKMEM_BUILD_STATS
    out_printf(o, "  %-6s %10s %8s %12s %14s %14s\n", "class", "block", "pages", "remote frees",
               "allocs", "frees");
#else
    out_printf(o, "  %-6s %10s %8s   (alloc, free and cross-thread free counts per class need\n",
               "class", "block", "pages");
    out_printf(o, "  %-6s %10s %8s    a HAKMEM_BUILD_STATS=1 build: make stats-lib)\n", "", "", "");
#endif
    for (size_t c = 0; c < CLASS_ROWS; c++) {
        class_row_t r;
        if (!class_row(c, allocs, frees, remote, &r)) continue;
#ifdef HAKMEM_BUILD_STATS
        out_printf(o, "  %-6zu %10s %8lld %12lld %14llu %14llu\n", c, r.name, r.pages, r.remote,
                   r.allocs, r.frees);
#else
        out_printf(o, "  %-6zu %10s %8lld\n", c, r.name, r.pages);
#endif
    }
    out_printf(o, "  options:\n");
    hk_option_view_t v;
    for (size_t i = 0; options_view(i, 0, &v); i++)
        out_printf(o, "  %-26s %8s  %s\n", v.name, *v.value ? v.value : "-", v.meaning);
}

/* The same figures with memory in bytes; per-class allocs/frees only where they are counted. */
static void report_json(out_t *o) {
    long rss = rss_kib();
    out_printf(o, "{\"version\": \"%d.%d.%d\", \"pid\": %ld, ", HAKMEM_VERSION_MAJOR,
               HAKMEM_VERSION_MINOR, HAKMEM_VERSION_PATCH, (long)getpid());
    out_printf(o, "\"segments\": %lld, \"segments_peak\": %lld, \"huge_blocks\": %lld, ",
               LOAD(seg_count), LOAD(seg_peak), LOAD(huge_count));
    out_printf(o, "\"mapped_bytes\": %lld, \"mapped_peak_bytes\": %lld, ", LOAD(mapped),
               LOAD(mapped_peak));
    out_printf(o, "\"committed_bytes\": %lld, \"committed_peak_bytes\": %lld, ", LOAD(committed),
               LOAD(committed_peak));
    if (rss < 0)
        out_printf(o, "\"rss_bytes\": null, ");
    else
        out_printf(o, "\"rss_bytes\": %lld, ", (long long)rss * 1024);
    out_printf(o, "\"purges\": %lld, \"bad_frees\": %lld, ", LOAD(purges), LOAD(bad_frees));
    out_printf(o, "\"segments_abandoned\": %lld, \"segments_reclaimed\": %lld, ", LOAD(abandoned),
               LOAD(reclaimed));
    uint64_t allocs[CLASS_ROWS] = {0}, frees[CLASS_ROWS] = {0}, remote[CLASS_ROWS] = {0};
    heap_stats_merge(allocs, frees, remote);
#ifdef HAKMEM_BUILD_STATS
    out_printf(o, "\"class_counts\": true, \"classes\": [");
#else
    out_printf(o, "\"class_counts\": false, \"classes\": [");
#endif
    const char *sep = "";
    for (size_t c = 0; c < CLASS_ROWS; c++) {
        class_row_t r;
        if (!class_row(c, allocs, frees, remote, &r)) continue;
        out_printf(o, "%s{\"class\": %zu, \"block\": \"%s\", ", sep, c, r.name);
        if (c < CLASS_COUNT) out_printf(o, "\"block_size\": %u, ", hk_class_size[c]);
#ifdef HAKMEM_BUILD_STATS
        out_printf(o, "\"remote_frees\": %lld, \"allocs\": %llu, \"frees\": %llu, ", r.remote,
                   r.allocs, r.frees);
#endif
        out_printf(o, "\"pages\": %lld}", r.pages);
        sep = ", ";
    }
    out_printf(o, "], \"options\": {");
    hk_option_view_t v;
    for (size_t i = 0; options_view(i, 0, &v); i++) {
        out_printf(o, "%s", i ? ", " : "");
        out_json_string(o, v.name);
        out_printf(o, ": ");
        if (v.is_number)
            out_printf(o, "%s", v.value);
        else
            out_json_string(o, v.value);
    }
    out_printf(o, "}}\n");
}

HK_API void hk_stats_print(FILE *out) {
    out_t o = {.file = out ? out : stderr};
    report_text(&o);
    out_flush(&o);
}

HK_API void hk_stats_print_json(FILE *out) {
    out_t o = {.file = out ? out : stderr};
    report_json(&o);
    out_flush(&o);
}

/* HAKMEM_STATS_FILE with %p replaced by the pid (and %% by %); 0 if it does not fit. */
static int stats_path(char *path, size_t cap) {
    size_t n = 0;
    for (const char *s = hk_opt.stats_file; *s; s++) {
        char pid[24];
        const char *add = s;
        size_t len = 1;
        if (s[0] == '%' && s[1] == 'p') {
            len = (size_t)snprintf(pid, sizeof pid, "%ld", (long)getpid());
            add = pid;
            s++;
        } else if (s[0] == '%' && s[1] == '%')
            s++;
        if (n + len >= cap) return 0;
        memcpy(path + n, add, len);
        n += len;
    }
    path[n] = 0;
    return 1;
}

__attribute__((destructor)) static void stats_at_exit(void) {
    if (!hk_opt.stats) return;
    out_t o = {.fd = 2};
    if (hk_opt.stats_file[0]) {
        char path[sizeof hk_opt.stats_file + 32];
        int fd = -1;
        if (!stats_path(path, sizeof path))
            hk_message("HAKMEM_STATS_FILE: path too long");
        else
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd >= 0)
            o.fd = fd;
        else
            hk_message("cannot open HAKMEM_STATS_FILE %s (errno %d); reporting on stderr", path,
                       errno);
    }
    if (hk_opt.stats == HK_STATS_JSON)
        report_json(&o);
    else
        report_text(&o);
    out_flush(&o);
    if (o.fd != 2) close(o.fd);
}

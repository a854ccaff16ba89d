/* Options: the one table of HAKMEM_* environment variables, read once at process start
 * with getenv and a parser that allocates nothing. No other file reads the environment. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

hk_options_t hk_opt = {.purge_delay_ms = 100, .segment_cache = 4, .large_cache_mb = 64};

static const struct {
    const char *name;
    long *value;
    long min, max;
    const char *meaning;
} table[] = {
    {"HAKMEM_STATS", &hk_opt.stats, 0, 1, "print statistics to stderr at exit"},
    {"HAKMEM_VERBOSE", &hk_opt.verbose, 0, 1, "report bad frees and OS failures on stderr"},
    {"HAKMEM_PURGE_DELAY_MS", &hk_opt.purge_delay_ms, 0, 60000,
     "ms before free memory is returned to the OS (0: at once)"},
    {"HAKMEM_SEGMENT_CACHE", &hk_opt.segment_cache, 0, 1024, "empty 4 MiB segments kept for reuse"},
    {"HAKMEM_LARGE_CACHE_MB", &hk_opt.large_cache_mb, 0, 1 << 20,
     "MiB of freed huge blocks kept for reuse"},
    {"HAKMEM_ABORT_ON_BAD_FREE", &hk_opt.abort_on_bad_free, 0, 1,
     "abort on a free of a pointer that is not a live block"},
};

static int parse_long(const char *s, long *out) {
    long v = 0;
    if (*s == 0) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000) return 0;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 1;
}

void options_load(void) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *s = getenv(table[i].name);
        long v;
        if (s == NULL) continue;
        if (!parse_long(s, &v) || v < table[i].min || v > table[i].max)
            hk_message("ignoring %s=%s: expected an integer in [%ld, %ld]", table[i].name, s,
                       table[i].min, table[i].max);
        else *table[i].value = v;
    }
}

void options_print(FILE *out) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        fprintf(out, "  %-26s %8ld  %s\n", table[i].name, *table[i].value, table[i].meaning);
}

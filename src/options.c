/* Options: the one table of HAKMEM_* environment variables, read once at process start
 * with getenv and a parser that allocates nothing (a text value is copied into hk_opt).
 * No other file reads the environment. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The initial values are the defaults. */
hk_options_t hk_opt = {
    .purge_delay_ms = 100, .segment_cache = 16, .large_cache_mb = 128, .background = 1};
static hk_options_t defaults; /* hk_opt as it was before the environment was read */
static int defaults_saved;

/* An integer option has `value` and its range; a text option has `text` instead. `word`,
 * where set, is accepted in place of the number `word_value` (HAKMEM_STATS=json). `words`
 * ("a|b|c") makes an option take only those words, its value the word's index. The
 * meaning is what the README table shows (tests/install/options_readme.sh compares the
 * two). clang-format is kept off the table so that each option stays one entry of a few lines. */
static const struct {
    const char *name;
    long *value;
    long min, max;
    const char *meaning;
    const char *word;
    long word_value;
    char *text;
    size_t text_cap;
    const char *words;
} table[] = {
    /* clang-format off */
    {.name = "HAKMEM_STATS", .value = &hk_opt.stats, .min = 0, .max = 1, .word = "json",
     .word_value = HK_STATS_JSON,
     .meaning = "1: print statistics to stderr at exit; json: the same as one JSON object"},
    {.name = "HAKMEM_STATS_FILE", .text = hk_opt.stats_file, .text_cap = sizeof hk_opt.stats_file,
     .meaning = "write the statistics to this file instead (%p: the process id)"},
    {.name = "HAKMEM_VERBOSE", .value = &hk_opt.verbose, .min = 0, .max = 1,
     .meaning = "1: report OS failures on stderr"},
    {.name = "HAKMEM_PURGE_DELAY_MS", .value = &hk_opt.purge_delay_ms, .min = 0, .max = 60000,
     .meaning = "ms before free memory is returned to the OS (0: at once)"},
    {.name = "HAKMEM_SEGMENT_CACHE", .value = &hk_opt.segment_cache, .min = 0, .max = 1024,
     .meaning = "empty 4 MiB segments kept for reuse"},
    {.name = "HAKMEM_LARGE_CACHE_MB", .value = &hk_opt.large_cache_mb, .min = 0, .max = 1 << 20,
     .meaning = "MiB of freed huge blocks (> 2 MiB) kept for reuse"},
    {.name = "HAKMEM_BAD_FREE", .value = &hk_opt.bad_free, .words = "abort|warn|ignore",
     .meaning = "heap errors (double/invalid free, damaged free list): abort reports and stops, "
                "warn reports and ignores the call, ignore only counts it (a damaged heap header, "
                "found by the hardened build, always stops)"},
    {.name = "HAKMEM_BACKGROUND", .value = &hk_opt.background, .min = 0, .max = 1,
     .meaning = "1: a background thread returns free memory while the program is idle"},
    {.name = "HAKMEM_THP", .value = &hk_opt.thp, .min = 0, .max = 1,
     .meaning = "1: huge blocks that malloc and realloc map ask for transparent huge pages "
                "(not calloc's); 0: never"},
    /* clang-format on */
};
#define OPTION_COUNT (sizeof table / sizeof table[0])

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

/* Index of word `s` in "a|b|c", or -1. */
static long word_index(const char *s, const char *words) {
    long idx = 0;
    for (const char *c = words;; idx++) {
        size_t len = strcspn(c, "|");
        if (len && strncmp(s, c, len) == 0 && s[len] == 0) return idx;
        if (!c[len]) return -1;
        c += len + 1;
    }
}

void options_load(void) {
    if (!defaults_saved) {
        defaults = hk_opt;
        defaults_saved = 1;
    }
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const char *s = getenv(table[i].name);
        long v;
        if (s == NULL) continue;
        if (table[i].text) {
            size_t n = strlen(s);
            if (n >= table[i].text_cap)
                hk_message("ignoring %s: longer than %zu bytes", table[i].name,
                           table[i].text_cap - 1);
            else
                memcpy(table[i].text, s, n + 1);
        } else if (table[i].words) {
            if ((v = word_index(s, table[i].words)) < 0)
                hk_message("ignoring %s=%s: expected one of %s", table[i].name, s, table[i].words);
            else
                *table[i].value = v;
        } else if (table[i].word && strcmp(s, table[i].word) == 0) {
            *table[i].value = table[i].word_value;
        } else if (!parse_long(s, &v) || v < table[i].min || v > table[i].max) {
            hk_message("ignoring %s=%s: expected an integer in [%ld, %ld]%s%s", table[i].name, s,
                       table[i].min, table[i].max, table[i].word ? " or " : "",
                       table[i].word ? table[i].word : "");
        } else
            *table[i].value = v;
    }
}

int options_view(size_t i, int want_default, hk_option_view_t *v) {
    if (i >= OPTION_COUNT) return 0;
    const hk_options_t *from = want_default && defaults_saved ? &defaults : &hk_opt;
    /* The table points into hk_opt; the same member of `from` is at the same offset. */
    v->name = table[i].name;
    v->meaning = table[i].meaning;
    if (table[i].text) {
        v->value = (const char *)from + (table[i].text - (char *)&hk_opt);
        v->is_number = 0;
        return 1;
    }
    long x = *(const long *)((const char *)from + ((char *)table[i].value - (char *)&hk_opt));
    if (table[i].words) {
        const char *c = table[i].words;
        for (long k = 0; k < x && strchr(c, '|'); k++) c = strchr(c, '|') + 1;
        snprintf(v->number, sizeof v->number, "%.*s", (int)strcspn(c, "|"), c);
        v->value = v->number;
        v->is_number = 0;
    } else if (table[i].word && x == table[i].word_value) {
        v->value = table[i].word;
        v->is_number = 0;
    } else {
        snprintf(v->number, sizeof v->number, "%ld", x);
        v->value = v->number;
        v->is_number = 1;
    }
    return 1;
}

/* alloc_thp: with HAKMEM_THP=1, every huge block that malloc and realloc map asks for
 * transparent huge pages, calloc's never; by default (HAKMEM_THP unset or 0) none does. Read
 * from the kernel's own word on each block's mapping: the THPeligible line of
 * /proc/self/smaps, which in the `madvise` mode of /sys/kernel/mm/transparent_hugepage/enabled
 * is 1 only for advised memory. Whether a huge page then backs it depends on the free memory
 * of the moment, so that is printed, not checked. Skipped where the kernel offers no huge
 * pages (`never`, no such file, no THPeligible line) or the process has them turned off
 * (prctl). */
#include <sys/prctl.h>

#include "alloc_test.h"

#define NAME "alloc_thp"

/* "always", "madvise" or "never" (the bracketed word), or "" if unknown. */
static void thp_mode(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b && (size_t)(b - a) < cap) {
            memcpy(out, a + 1, (size_t)(b - a - 1));
            out[b - a - 1] = 0;
        }
    }
    fclose(f);
}

/* The THPeligible and AnonHugePages (kB) lines of the mapping that holds p; 0 if found. */
static int smaps_of(const void *p, int *eligible, long *huge_kb) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, found = 0;
    *eligible = -1;
    *huge_kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if (found && in) break;
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            found |= in;
            continue;
        }
        if (!in) continue;
        sscanf(line, "THPeligible: %d", eligible);
        sscanf(line, "AnonHugePages: %ld kB", huge_kb);
    }
    fclose(f);
    return found && *eligible >= 0 ? 0 : -1;
}

static void touch(unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i += 4096) p[i] = v;
}

/* Checks that the mapping of p is eligible as `want` says; returns its huge kB. */
static long expect_eligible(const char *what, void *p, int want) {
    int eligible;
    long huge_kb;
    REQUIRE(smaps_of(p, &eligible, &huge_kb) == 0, "%s %p: no mapping with THPeligible", what, p);
    CHECK(eligible == want, "%s: THPeligible %d, want %d", what, eligible, want);
    printf("%s/%s: %s: THPeligible %d, %ld kB on huge pages\n", NAME, HKT_BUILD, what, eligible,
           huge_kb);
    return huge_kb;
}

int main(void) {
    hkt_init(NAME);
    char mode[16];
    thp_mode(mode, sizeof mode);
    int always = strcmp(mode, "always") == 0;
    if (hkt_system || (!always && strcmp(mode, "madvise") != 0) ||
        prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1) {
        printf("%s/%s: transparent huge pages '%s' here, skipped\n", NAME, HKT_BUILD, mode);
        return hkt_finish(NAME);
    }
    const char *opt = getenv("HAKMEM_THP");
    int advised = opt && strcmp(opt, "1") == 0;
    size_t n = 32 * MiB;
    unsigned char *m = malloc(n);
    REQUIRE(m, "malloc(32 MiB)");
    {
        int eligible;
        long huge_kb;
        if (smaps_of(m, &eligible, &huge_kb) != 0) {
            printf("%s/%s: no THPeligible in /proc/self/smaps, skipped\n", NAME, HKT_BUILD);
            free(m);
            return hkt_finish(NAME);
        }
    }
    touch(m, n, 1);
    expect_eligible("malloc(32 MiB)", m, always || advised);

    unsigned char *c = calloc(1, n); /* m is live: a fresh mapping, not m's */
    REQUIRE(c, "calloc(32 MiB)");
    touch(c, n, 2);
    expect_eligible("calloc(32 MiB)", c, always);

    unsigned char *r = realloc(m, 3 * n); /* grows where it lies or moves: still advised */
    REQUIRE(r, "realloc(32 -> 96 MiB)");
    size_t wrong = 0;
    for (size_t i = 0; i < n; i += 4096) wrong += r[i] != 1;
    CHECK(wrong == 0, "realloc to 96 MiB: %zu of its first 32 MiB's pages lost their byte", wrong);
    touch(r, 3 * n, 3);
    expect_eligible("realloc(96 MiB)", r + 2 * n, always || advised);
    free(r);
    free(c);
    return hkt_finish(NAME);
}

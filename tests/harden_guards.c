/* harden_guards: the guard pages of large and huge blocks in the statistics and in use, run
 * under LD_PRELOAD of one build (`harden_guards default|hardened`). Guards are mapped but
 * never committed: a huge block's mapping counts two guard pages more as mapped than as
 * committed, and a large block's slice run two pages less as committed; a block's whole usable
 * size can be written; alloc/free rounds each end, after hk_trim, with the same committed count
 * (guards placed and removed in step). The default build has no guards: 0 pages. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define GUARD ((long long)4096)

static void (*print_json)(FILE *);
static int (*trim)(void);
static int failures;

static void check(int cond, const char *what, long long a, long long b) {
    printf("%s  %s (%lld, %lld)\n", cond ? "ok  " : "FAIL", what, a, b);
    failures += !cond;
}

/* committed_bytes and mapped_bytes of hk_stats_print_json. */
static void stats(long long *mapped, long long *committed) {
    char buf[16384];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    print_json(f);
    fputc(0, f);
    fclose(f);
    const char *m = strstr(buf, "\"mapped_bytes\":"), *c = strstr(buf, "\"committed_bytes\":");
    *mapped = m ? atoll(m + strlen("\"mapped_bytes\":")) : -1;
    *committed = c ? atoll(c + strlen("\"committed_bytes\":")) : -1;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "default") && strcmp(argv[1], "hardened"))) {
        fprintf(stderr, "usage: harden_guards default|hardened (under LD_PRELOAD)\n");
        return 2;
    }
    long long g = strcmp(argv[1], "hardened") == 0 ? GUARD : 0;
    print_json = (void (*)(FILE *))dlsym(RTLD_DEFAULT, "hk_stats_print_json");
    trim = (int (*)(void))dlsym(RTLD_DEFAULT, "hk_trim");
    if (!print_json || !trim) {
        fprintf(stderr, "harden_guards: not run under hakmem\n");
        return 2;
    }
    long long m0, c0, m1, c1, m2, c2, m3;
    printf("harden_guards/%s: guard pages of %lld bytes\n", argv[1], g); /* stdout's buffer */
    stats(&m0, &c0); /* whatever printing the report allocates, allocated once before */
    trim(); /* the baseline holds no free memory waiting to be purged */
    stats(&m0, &c0);

    char *huge = malloc(8 * MiB);
    stats(&m1, &c1);
    check((m1 - m0) - (c1 - c0) == 2 * g, "huge block: mapped minus committed is its guards",
          (m1 - m0) - (c1 - c0), 2 * g);
    memset(huge, 'h', malloc_usable_size(huge));

    char *large = malloc(300 * KiB);
    stats(&m2, &c2);
    long long run = c2 - c1; /* a fresh run of slices: committed in full, less its guards */
    check(run > 0 && (run + 2 * g) % (64 * (long long)KiB) == 0,
          "large block: its run of 64 KiB slices committed less its guards", run, 2 * g);
    memset(large, 'l', malloc_usable_size(large));

    free(huge);
    free(large);
    long long after[3];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) { /* guards placed and removed, slices reused by others */
            char *a = malloc(300 * KiB + (size_t)i * 4 * KiB), *b = malloc(5 * MiB);
            memset(a, 1, malloc_usable_size(a));
            free(a);
            char *s = malloc(1000);
            memset(s, 2, 1000);
            free(s);
            free(b);
        }
        trim();
        stats(&m3, &after[round]);
    }
    /* the first round may retire pages the baseline kept; after it, every round ends alike */
    check(after[2] == after[1], "alloc/free rounds then hk_trim: committed the same each time",
          after[2], after[1]);
    printf("harden_guards/%s: %d failed -> %s\n", argv[1], failures, failures ? "FAIL" : "ok");
    return failures != 0;
}

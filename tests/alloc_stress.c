/* alloc_stress: randomised single-thread stress with content checks. A working set of slots
 * sees malloc/calloc/realloc/free/free_sized/aligned allocations of 0 B..4 MiB (skewed small);
 * each block carries a pattern of (slot, generation), verified before every realloc and free.
 * Usage: alloc_stress [--iters N] [--seed S] [--slots K]. Timing goes to stderr so that stdout
 * is the same on every allocator (tests/suites/programs.sh relies on that). */
#include "alloc_test.h"

#define NAME "alloc_stress"

typedef struct {
    unsigned char *p;
    size_t n;     /* bytes requested (and patterned) */
    size_t align; /* alignment asked for, 0 for plain */
    uint64_t key; /* pattern key: slot and generation */
} slot_t;

enum {
    OP_MALLOC,
    OP_CALLOC,
    OP_REALLOC_NULL,
    OP_MEMALIGN,
    OP_FREE,
    OP_FREE_SIZED,
    OP_REALLOC,
    OP_COUNT
};
static const char *op_names[OP_COUNT] = {"malloc", "calloc",     "realloc(NULL)", "aligned",
                                         "free",   "free_sized", "realloc"};
static unsigned long op_count[OP_COUNT];

/* Zero check of a fresh calloc block, as sparse as the pattern for big blocks. */
static int zeroed(const unsigned char *p, size_t n) {
    if (n <= HKT_DENSE_MAX) {
        for (size_t i = 0; i < n; i++)
            if (p[i]) return 0;
        return 1;
    }
    for (size_t i = 0; i < 4096; i++)
        if (p[i] || p[n - 1 - i]) return 0;
    for (size_t o = 4096; o + 4096 < n; o += 4096)
        for (size_t i = 0; i < 64; i++)
            if (p[o + i]) return 0;
    return 1;
}

static void verify_slot(const slot_t *s, size_t idx, unsigned long op) {
    size_t bad = hkt_verify(s->p, s->n, s->key);
    if (bad != (size_t)-1)
        hkt_die(__FILE__, __LINE__, "pattern",
                "op %lu: slot %zu block %p of %zu bytes (align %zu) damaged at offset %zu", op, idx,
                (void *)s->p, s->n, s->align, bad);
}

static void check_new(const slot_t *s, size_t idx, unsigned long op) {
    size_t a = s->align > 16 ? s->align : 16;
    if (!s->p)
        hkt_die(__FILE__, __LINE__, "alloc", "op %lu: slot %zu: allocation of %zu returned NULL",
                op, idx, s->n);
    if ((uintptr_t)s->p & (a - 1))
        hkt_die(__FILE__, __LINE__, "alignment", "op %lu: %p not %zu-aligned", op, (void *)s->p, a);
    size_t u = hkt_usable_size(s->p);
    if (u < s->n) hkt_die(__FILE__, __LINE__, "usable", "op %lu: usable %zu < %zu", op, u, s->n);
}

int main(int argc, char **argv) {
    unsigned long iters = 2000000, seed = 0x5EED1234, nslots = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--slots") && i + 1 < argc)
            nslots = strtoul(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--iters N] [--seed S] [--slots K]\n", argv[0]);
            return 2;
        }
    }
    hkt_init(NAME);
    printf("%s: seed %#lx, %lu ops, %lu slots, sizes 0..4 MiB\n", NAME, seed, iters, nslots);

    slot_t *slots = calloc(nslots, sizeof *slots);
    REQUIRE(slots, "slot array");
    hkt_rng r = {seed};
    double t0 = hkt_now();
    size_t peak_rss = 0;
    uint64_t gen = 0;

    for (unsigned long op = 0; op < iters; op++) {
        size_t idx = (size_t)hkt_below(&r, nslots);
        slot_t *s = &slots[idx];
        uint64_t x = hkt_below(&r, 100);
        if (!s->p) {
            s->n = hkt_size(&r, 4 * MiB);
            s->align = 0;
            s->key = hkt_mix(((uint64_t)idx << 40) ^ ++gen);
            int kind = x < 55   ? OP_MALLOC
                       : x < 72 ? OP_CALLOC
                       : x < 82 ? OP_REALLOC_NULL
                                : OP_MEMALIGN;
            op_count[kind]++;
            if (kind == OP_MALLOC) {
                s->p = malloc(s->n);
            } else if (kind == OP_CALLOC) {
                /* Split as count * size in varying ways. */
                size_t c = s->n % 3 == 0 && s->n ? 3 : 1;
                s->p = calloc(c, s->n / c);
                s->n = c * (s->n / c);
                check_new(s, idx, op);
                if (!zeroed(s->p, s->n))
                    hkt_die(__FILE__, __LINE__, "calloc", "op %lu: calloc(%zu) not zeroed", op,
                            s->n);
            } else if (kind == OP_REALLOC_NULL) {
                s->p = realloc(NULL, s->n);
            } else {
                /* Mostly small alignments, the odd one up to 2 MiB. */
                unsigned shift =
                    x < 97 ? 4 + (unsigned)hkt_below(&r, 9) : 13 + (unsigned)hkt_below(&r, 9);
                s->align = (size_t)1 << shift;
                if (hkt_below(&r, 2)) {
                    void *p = NULL;
                    int rc = posix_memalign(&p, s->align, s->n);
                    REQUIRE(rc == 0, "op %lu: posix_memalign(%zu, %zu) = %d", op, s->align, s->n,
                            rc);
                    s->p = p;
                } else {
                    s->p = aligned_alloc(s->align, s->n);
                }
            }
            check_new(s, idx, op);
            hkt_fill(s->p, s->n, s->key);
            continue;
        }
        verify_slot(s, idx, op);
        if (x < 45 || (x < 55 && s->align)) {
            op_count[OP_FREE]++;
            free(s->p);
            s->p = NULL;
        } else if (x < 55) {
            op_count[OP_FREE_SIZED]++;
            hkt_free_sized(s->p, s->n);
            s->p = NULL;
        } else {
            op_count[OP_REALLOC]++;
            /* Mostly near the old size (in-place paths), sometimes anywhere. */
            size_t m;
            if (x < 80)
                m = s->n + (size_t)hkt_below(&r, s->n / 4 + 17) -
                    (s->n / 8 + 8 < s->n ? s->n / 8 + 8 : s->n);
            else
                m = hkt_size(&r, 4 * MiB);
            if (m == 0) m = 1; /* realloc(p, 0) frees: covered by alloc_conformance */
            unsigned char *q = realloc(s->p, m);
            if (!q)
                hkt_die(__FILE__, __LINE__, "realloc", "op %lu: realloc(%zu -> %zu) failed", op,
                        s->n, m);
            size_t bad = hkt_verify_prefix(q, s->n, m, s->key);
            if (bad != (size_t)-1)
                hkt_die(__FILE__, __LINE__, "realloc", "op %lu: realloc %zu -> %zu lost byte %zu",
                        op, s->n, m, bad);
            s->p = q;
            s->n = m;
            s->align = 0;
            s->key = hkt_mix(((uint64_t)idx << 40) ^ ++gen);
            check_new(s, idx, op);
            hkt_fill(s->p, s->n, s->key);
        }
        /* Now and then verify the whole working set: damage to blocks nobody touches. */
        if ((op & 0x3FFFF) == 0x3FFFF) {
            for (size_t i = 0; i < nslots; i++)
                if (slots[i].p) verify_slot(&slots[i], i, op);
            size_t rss = hkt_rss();
            if (rss > peak_rss) peak_rss = rss;
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < nslots; i++) {
        if (!slots[i].p) continue;
        live++;
        verify_slot(&slots[i], i, iters);
        free(slots[i].p);
    }
    free(slots);
    double dt = hkt_now() - t0;

    for (int k = 0; k < OP_COUNT; k++)
        printf("  %-14s %lu\n", op_names[k], op_count[k]);
    printf("  every block verified before realloc/free; %zu live at the end, all verified\n", live);
    fprintf(stderr, "%s: %.2f s, %.0f ns/op, peak RSS %zu MiB\n", NAME, dt,
            dt * 1e9 / (double)(iters ? iters : 1), peak_rss / MiB);
    return hkt_finish(NAME);
}

/* large: alloc/touch/free cycles of 64 KiB-32 MiB blocks (log-uniform sizes, so each size
 * decade is equally common). Every page is written and checked, so the cost of mapping,
 * faulting and returning memory shows, and an allocator that hands out short or shared
 * mappings fails. With --fill 1 every byte is written first (memset), as a program that fills
 * its buffers does: then the writes, not the faults, take most of the time. */
#include "bench_common.h"

#define PAGE 4096

static uint64_t fill;

static void touch(unsigned char *p, size_t n, uint64_t tag) {
    if (fill) memset(p, (int)(tag & 0xff), n);
    for (size_t off = 0; off + 8 <= n; off += PAGE)
        bc_put(p, off, tag);
    p[n - 1] = bc_byte(tag, n - 1);
}

static void check(const unsigned char *p, size_t n, uint64_t tag) {
    for (size_t off = 0; off + 8 <= n; off += PAGE)
        if (!bc_ok(p, off, tag))
            bc_fail("large block %p of %zu bytes: page at +%zu overwritten", (const void *)p, n,
                    off);
    if (p[n - 1] != bc_byte(tag, n - 1))
        bc_fail("large block %p: last byte overwritten", (const void *)p);
}

/* log-uniform in [lo, hi]: pick a power-of-two band uniformly, then a size in the band. */
static size_t pick(bc_rng *r, size_t lo, size_t hi) {
    int blo = 63 - __builtin_clzll(lo), bhi = 63 - __builtin_clzll(hi);
    int band = blo + (int)bc_below(bc_next(r), (uint64_t)(bhi - blo + 1));
    size_t a = (size_t)1 << band, b = a * 2 - 1;
    if (a < lo) a = lo;
    if (b > hi) b = hi;
    return bc_range(bc_next(r), a, b);
}

int main(int argc, char **argv) {
    size_t min = 64 << 10, max = 32 << 20, ws = 4;
    uint64_t iters = 300, seed = 1;
    const bc_opt opts[] = {
        {"min", BC_SIZE, &min, "smallest block (bytes, k/m suffixes)"},
        {"max", BC_SIZE, &max, "largest block"},
        {"ws", BC_SIZE, &ws, "blocks live at once"},
        {"iters", BC_U64, &iters, "free+allocate+touch cycles (1 op each)"},
        {"seed", BC_U64, &seed, "PRNG seed"},
        {"fill", BC_U64, &fill, "1: write every byte of each block, not one word per page"},
    };
    bc_workload = "large";
    bc_parse(argc, argv, "Large block alloc/touch/free cycles.", opts,
             sizeof opts / sizeof opts[0]);
    if (min < 8 || max < min || ws < 1) {
        fprintf(stderr, "large: need 8 <= min <= max and ws >= 1\n");
        return 2;
    }
    bc_rng rng;
    bc_rng_init(&rng, seed, 0);
    unsigned char **p = bc_malloc(ws * sizeof *p);
    size_t *sz = bc_malloc(ws * sizeof *sz);
    uint64_t *tag = bc_malloc(ws * sizeof *tag);
    for (size_t i = 0; i < ws; i++) {
        sz[i] = pick(&rng, min, max);
        p[i] = bc_malloc(sz[i]);
        tag[i] = bc_next(&rng);
        touch(p[i], sz[i], tag[i]);
    }
    double t0 = bc_now();
    for (uint64_t it = 0; it < iters; it++) {
        size_t i = (size_t)bc_below(bc_next(&rng), ws);
        check(p[i], sz[i], tag[i]);
        free(p[i]);
        sz[i] = pick(&rng, min, max);
        p[i] = bc_malloc(sz[i]);
        tag[i] = bc_next(&rng) ^ it;
        touch(p[i], sz[i], tag[i]);
    }
    double t1 = bc_now();
    for (size_t i = 0; i < ws; i++) {
        check(p[i], sz[i], tag[i]);
        free(p[i]);
    }
    free(p);
    free(sz);
    free(tag);
    char params[96];
    snprintf(params, sizeof params, "min=%zu max=%zu ws=%zu fill=%llu", min, max, ws,
             (unsigned long long)fill);
    bc_result(params, iters, t1 - t0);
    return 0;
}

/* big_buffers: one large buffer at a time, as a program that reads a file, builds an image or
 * a message, uses it and drops it: allocate (log-uniform 1-64 MiB), write every page, check
 * every page, free. Nothing else is live, so the cost is mapping, faulting and returning
 * memory; a short or shared mapping fails the check. One op = one buffer. With --stride,
 * one page in every `stride` bytes (and the last byte) is written and checked instead: a
 * buffer sized for the worst case and used here and there, whose peak RSS shows what an
 * allocator makes resident beyond what is touched. */
#include "bench_common.h"

#define PAGE 4096

int main(int argc, char **argv) {
    size_t min = 1 << 20, max = 64 << 20;
    uint64_t iters = 200, seed = 1;
    size_t stride = PAGE;
    const bc_opt opts[] = {
        {"min", BC_SIZE, &min, "smallest buffer (bytes, k/m suffixes)"},
        {"max", BC_SIZE, &max, "largest buffer"},
        {"iters", BC_U64, &iters, "buffers allocated, touched, checked and freed (1 op each)"},
        {"seed", BC_U64, &seed, "PRNG seed"},
        {"stride", BC_SIZE, &stride, "bytes between the pages written (a multiple of 4096)"},
    };
    bc_workload = "big_buffers";
    bc_parse(argc, argv, "Single large buffers allocated, touched and freed one after another.",
             opts, sizeof opts / sizeof opts[0]);
    if (min < 8 || max < min || stride < PAGE || stride % PAGE != 0) {
        fprintf(stderr, "big_buffers: need 8 <= min <= max and a stride of whole pages\n");
        return 2;
    }
    bc_rng rng;
    bc_rng_init(&rng, seed, 0);
    /* log-uniform: a power-of-two band picked uniformly, then a size in the band */
    int blo = 63 - __builtin_clzll(min), bhi = 63 - __builtin_clzll(max);
    double t0 = bc_now();
    for (uint64_t it = 0; it < iters; it++) {
        int band = blo + (int)bc_below(bc_next(&rng), (uint64_t)(bhi - blo + 1));
        size_t a = (size_t)1 << band, b = a * 2 - 1;
        if (a < min) a = min;
        if (b > max) b = max;
        size_t n = bc_range(bc_next(&rng), a, b);
        uint64_t tag = bc_next(&rng) ^ it;
        unsigned char *p = bc_malloc(n);
        for (size_t off = 0; off + 8 <= n; off += stride)
            bc_put(p, off, tag);
        p[n - 1] = bc_byte(tag, n - 1);
        for (size_t off = 0; off + 8 <= n; off += stride)
            if (!bc_ok(p, off, tag))
                bc_fail("buffer %p of %zu bytes: page at +%zu wrong", (void *)p, n, off);
        if (p[n - 1] != bc_byte(tag, n - 1)) bc_fail("buffer %p: last byte wrong", (void *)p);
        free(p);
    }
    double t1 = bc_now();
    char params[96];
    snprintf(params, sizeof params, "min=%zu max=%zu stride=%zu", min, max, stride);
    bc_result(params, iters, t1 - t0);
    return 0;
}

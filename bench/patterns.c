/* patterns: batches of equal-size blocks freed in LIFO, FIFO and random order, per size.
 * Shows how free order affects each allocator (free-list locality, cache reuse). One op =
 * one malloc plus its free. Prints a `case` line per (order, size) and one total result. */
#include "bench_common.h"

enum { LIFO, FIFO, RANDOM };
static const char *order_name[] = {"lifo", "fifo", "random"};

int main(int argc, char **argv) {
    size_t batch = 1000;
    uint64_t rounds = 100, seed = 1;
    const char *sizes = "16,32,64,128,256,512,1024";
    const bc_opt opts[] = {
        {"batch", BC_SIZE, &batch, "blocks allocated before the batch is freed"},
        {"rounds", BC_U64, &rounds, "batches per (order, size)"},
        {"sizes", BC_STR, &sizes, "comma-separated block sizes"},
        {"seed", BC_U64, &seed, "PRNG seed (random order, tags)"},
    };
    bc_workload = "patterns";
    bc_parse(argc, argv, "LIFO/FIFO/random-order free of batches, per size.", opts,
             sizeof opts / sizeof opts[0]);
    if (batch < 1) {
        fprintf(stderr, "patterns: batch must be >= 1\n");
        return 2;
    }
    void **p = bc_malloc(batch * sizeof *p);
    size_t *perm = bc_malloc(batch * sizeof *perm);
    bc_rng rng;
    bc_rng_init(&rng, seed, 0);
    /* One Fisher-Yates permutation, made before timing; each round starts it at a different
     * offset so the order is random without spending timed work on shuffling. */
    for (size_t i = 0; i < batch; i++)
        perm[i] = i;
    for (size_t i = batch; i > 1; i--) {
        size_t j = (size_t)bc_below(bc_next(&rng), i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    uint64_t total_ops = 0;
    double total_s = 0;
    const char *s = sizes;
    while (*s) {
        char *end;
        unsigned long long sz = strtoull(s, &end, 10);
        if (end == s || sz < 1 || (*end && *end != ',')) {
            fprintf(stderr, "patterns: bad --sizes '%s'\n", sizes);
            return 2;
        }
        s = *end ? end + 1 : end;
        for (int order = LIFO; order <= RANDOM; order++) {
            double t0 = bc_now();
            for (uint64_t r = 0; r < rounds; r++) {
                uint64_t base = bc_splitmix(seed + r * 7 + (uint64_t)order);
                for (size_t i = 0; i < batch; i++) {
                    p[i] = bc_malloc(sz);
                    bc_mark(p[i], sz, base + i);
                }
                size_t off = (size_t)(r % batch);
                for (size_t k = 0; k < batch; k++) {
                    size_t i = order == LIFO   ? batch - 1 - k
                               : order == FIFO ? k
                                               : perm[(k + off) % batch];
                    bc_verify(p[i], sz, base + i, order_name[order]);
                    free(p[i]);
                }
            }
            double dt = bc_now() - t0;
            uint64_t ops = rounds * batch;
            printf("case workload=patterns order=%s size=%llu ops=%llu seconds=%.6f "
                   "ops_per_s=%.0f\n",
                   order_name[order], sz, (unsigned long long)ops, dt, dt > 0 ? ops / dt : 0.0);
            total_ops += ops;
            total_s += dt;
        }
    }
    free(p);
    free(perm);
    char params[64];
    snprintf(params, sizeof params, "batch=%zu", batch);
    bc_result(params, total_ops, total_s);
    return 0;
}

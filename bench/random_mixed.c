/* random_mixed: the headline workload. A working set of ws live blocks of random size in
 * [min, max]; each step frees a random slot and allocates a new block there. Blocks carry a
 * pattern checked before free, so a broken allocator fails instead of posting a number. */
#include "bench_common.h"

int main(int argc, char **argv) {
    bc_mixed_cfg c = {.min = 16, .max = 1024, .ws = 400, .iters = 2000000, .seed = 1};
    const bc_opt opts[] = {
        {"min", BC_SIZE, &c.min, "smallest block size in bytes"},
        {"max", BC_SIZE, &c.max, "largest block size in bytes"},
        {"ws", BC_SIZE, &c.ws, "working set: live blocks (slots)"},
        {"iters", BC_U64, &c.iters, "steps; each frees one block and allocates one (1 op)"},
        {"seed", BC_U64, &c.seed, "PRNG seed"},
    };
    bc_workload = "random_mixed";
    bc_parse(argc, argv, "Random-size malloc/free over a fixed working set.", opts,
             sizeof opts / sizeof opts[0]);
    if (c.min < 1 || c.max < c.min || c.ws < 1 || c.max > UINT32_MAX) {
        fprintf(stderr, "random_mixed: need 1 <= min <= max < 4 GiB and ws >= 1\n");
        return 2;
    }
    bc_mixed m;
    bc_mixed_fill(&m, &c);
    double t0 = bc_now();
    bc_mixed_steps(&m, &c, c.iters);
    double t1 = bc_now();
    bc_mixed_drain(&m, &c);
    char params[128];
    snprintf(params, sizeof params, "min=%zu max=%zu ws=%zu", c.min, c.max, c.ws);
    bc_result(params, c.iters, t1 - t0);
    return 0;
}

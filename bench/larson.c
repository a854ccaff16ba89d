/* larson: a server-like simulation. Each thread keeps an array of blocks of random size and
 * replaces them at random; when a generation of threads ends, its arrays pass to the next
 * generation (rotated), so most blocks are freed by a thread that did not allocate them. */
#include "bench_common.h"
#include <pthread.h>

typedef struct {
    bc_slot *blocks; /* the array handed from generation to generation */
    size_t n;
    uint64_t steps, seed, stream;
    size_t min, max;
    uint64_t frees; /* counted to check that every block allocated is freed once */
} job;

static void *run(void *arg) {
    job *j = arg;
    bc_rng rng;
    bc_rng_init(&rng, j->seed, j->stream);
    for (uint64_t i = 0; i < j->steps; i++) {
        uint64_t r = bc_next(&rng);
        bc_slot *b = &j->blocks[bc_below(r, j->n)];
        bc_verify(b->p, b->size, b->tag, "larson replace");
        free(b->p);
        size_t sz = bc_range((r << 32) | (r >> 32), j->min, j->max);
        b->p = bc_malloc(sz);
        b->size = (uint32_t)sz;
        b->tag = r ^ (j->stream << 40) ^ i;
        bc_mark(b->p, sz, b->tag);
        j->frees++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 2, gens = 10, steps = 100000, seed = 1;
    size_t blocks = 1000, min = 16, max = 1024;
    const bc_opt opts[] = {
        {"threads", BC_U64, &threads, "threads per generation"},
        {"gens", BC_U64, &gens, "generations of threads"},
        {"blocks", BC_SIZE, &blocks, "blocks in each thread's array"},
        {"steps", BC_U64, &steps, "replacements per thread per generation (1 op each)"},
        {"min", BC_SIZE, &min, "smallest block size in bytes"},
        {"max", BC_SIZE, &max, "largest block size in bytes"},
        {"seed", BC_U64, &seed, "PRNG seed"},
    };
    bc_workload = "larson";
    bc_parse(argc, argv, "Server simulation: blocks outlive the threads that allocated them.", opts,
             sizeof opts / sizeof opts[0]);
    if (threads < 1 || threads > 1024 || blocks < 1 || min < 1 || max < min || max > UINT32_MAX) {
        fprintf(stderr, "larson: need 1..1024 threads, blocks >= 1, 1 <= min <= max\n");
        return 2;
    }
    /* The main thread allocates generation zero's arrays, so even the first generation frees
     * foreign blocks. */
    bc_slot **arrays = bc_malloc(threads * sizeof *arrays);
    bc_rng rng;
    bc_rng_init(&rng, seed, 1u << 20);
    for (uint64_t t = 0; t < threads; t++) {
        arrays[t] = bc_malloc(blocks * sizeof **arrays);
        for (size_t i = 0; i < blocks; i++) {
            uint64_t r = bc_next(&rng);
            size_t sz = bc_range(r, min, max);
            arrays[t][i] = (bc_slot){bc_malloc(sz), (uint32_t)sz, r};
            bc_mark(arrays[t][i].p, sz, r);
        }
    }
    job *jobs = bc_malloc(threads * sizeof *jobs);
    pthread_t *tid = bc_malloc(threads * sizeof *tid);
    uint64_t frees = 0;
    double t0 = bc_now();
    for (uint64_t g = 0; g < gens; g++) {
        for (uint64_t t = 0; t < threads; t++) {
            /* Rotate so a thread never inherits the array of the same index twice in a row
             * (with more than one thread): the hand-off crosses threads. */
            jobs[t] =
                (job){arrays[(t + g) % threads], blocks, steps, seed, g * threads + t, min, max, 0};
            if (pthread_create(&tid[t], NULL, run, &jobs[t]) != 0) bc_fail("pthread_create failed");
        }
        for (uint64_t t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            frees += jobs[t].frees;
        }
    }
    double t1 = bc_now();
    if (frees != gens * threads * steps)
        bc_fail("%llu replacements done, %llu expected", (unsigned long long)frees,
                (unsigned long long)(gens * threads * steps));
    for (uint64_t t = 0; t < threads; t++) {
        for (size_t i = 0; i < blocks; i++) {
            bc_verify(arrays[t][i].p, arrays[t][i].size, arrays[t][i].tag, "larson drain");
            free(arrays[t][i].p);
        }
        free(arrays[t]);
    }
    free(arrays);
    free(jobs);
    free(tid);
    char params[160];
    snprintf(params, sizeof params, "threads=%llu gens=%llu blocks=%zu min=%zu max=%zu",
             (unsigned long long)threads, (unsigned long long)gens, blocks, min, max);
    bc_result(params, frees, t1 - t0);
    return 0;
}

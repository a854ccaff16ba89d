/* thread_churn: short-lived threads, generation after generation. Each thread takes the
 * parcel of blocks that a thread of the previous generation left in its slot, checks and
 * frees every block, allocates a parcel of its own for the next generation, and exits. So
 * every free is by a thread that did not allocate the block, and the allocating thread has
 * exited by then: the allocator's thread start, exit and reuse of dead threads' memory are
 * on the measured path. One op = one malloc and, one generation later, its free. */
#include "bench_common.h"
#include <pthread.h>

typedef struct {
    bc_slot *blocks; /* the parcel in this slot; NULL before the first generation */
    size_t n, min, max;
    uint64_t seed, stream;
    uint64_t freed;
} slot_ctx;

static void *worker(void *arg) {
    slot_ctx *c = arg;
    if (c->blocks) {
        for (size_t i = 0; i < c->n; i++) {
            bc_verify(c->blocks[i].p, c->blocks[i].size, c->blocks[i].tag, "thread_churn parcel");
            free(c->blocks[i].p);
        }
        c->freed += c->n;
        free(c->blocks);
    }
    bc_rng rng;
    bc_rng_init(&rng, c->seed, c->stream);
    c->blocks = bc_malloc(c->n * sizeof *c->blocks);
    for (size_t i = 0; i < c->n; i++) {
        uint64_t r = bc_next(&rng);
        size_t sz = bc_range(r, c->min, c->max);
        c->blocks[i] = (bc_slot){bc_malloc(sz), (uint32_t)sz, r};
        bc_mark(c->blocks[i].p, sz, r);
    }
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t threads = 4, gens = 1000, seed = 1;
    size_t blocks = 500, min = 16, max = 1024;
    const bc_opt opts[] = {
        {"threads", BC_U64, &threads, "threads per generation, each with its own slot"},
        {"gens", BC_U64, &gens, "generations of threads"},
        {"blocks", BC_SIZE, &blocks, "blocks each thread allocates and leaves for the next"},
        {"min", BC_SIZE, &min, "smallest block size in bytes"},
        {"max", BC_SIZE, &max, "largest block size in bytes"},
        {"seed", BC_U64, &seed, "PRNG seed"},
    };
    bc_workload = "thread_churn";
    bc_parse(argc, argv, "Short-lived threads free the blocks of threads that have exited.", opts,
             sizeof opts / sizeof opts[0]);
    if (threads < 1 || threads > 1024 || gens < 1 || blocks < 1 || min < 1 || max < min ||
        max > UINT32_MAX) {
        fprintf(stderr, "thread_churn: need 1..1024 threads, gens >= 1, blocks >= 1, 1 <= min <= max\n");
        return 2;
    }
    slot_ctx *slots = bc_malloc(threads * sizeof *slots);
    pthread_t *tid = bc_malloc(threads * sizeof *tid);
    for (uint64_t t = 0; t < threads; t++) slots[t] = (slot_ctx){NULL, blocks, min, max, seed, 0, 0};
    double t0 = bc_now();
    for (uint64_t g = 0; g < gens; g++) {
        for (uint64_t t = 0; t < threads; t++) {
            slots[t].stream = g * threads + t;
            if (pthread_create(&tid[t], NULL, worker, &slots[t]) != 0) bc_fail("pthread_create failed");
        }
        for (uint64_t t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    }
    double t1 = bc_now();
    uint64_t freed = 0;
    for (uint64_t t = 0; t < threads; t++) {
        for (size_t i = 0; i < blocks; i++) {
            bc_verify(slots[t].blocks[i].p, slots[t].blocks[i].size, slots[t].blocks[i].tag,
                      "thread_churn drain");
            free(slots[t].blocks[i].p);
        }
        free(slots[t].blocks);
        freed += slots[t].freed;
    }
    if (freed != (gens - 1) * threads * blocks)
        bc_fail("%llu blocks freed by the next generation, %llu expected", (unsigned long long)freed,
                (unsigned long long)((gens - 1) * threads * blocks));
    free(slots);
    free(tid);
    char params[160];
    snprintf(params, sizeof params, "threads=%llu gens=%llu blocks=%zu min=%zu max=%zu",
             (unsigned long long)threads, (unsigned long long)gens, blocks, min, max);
    bc_result(params, gens * threads * blocks, t1 - t0);
    return 0;
}

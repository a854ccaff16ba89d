/* prodcons: producer threads allocate blocks and pass them through a bounded hk_spsc channel
 * (include/hakmem_spsc.h) to consumer threads that check and free them, so every free is a
 * cross-thread free. Items must arrive complete and in order; counts are checked at the end. */
#include "bench_common.h"
#include <pthread.h>
#include <sched.h>

#include "hakmem_spsc.h"

/* Both sides wait by yielding the CPU: on a 2-core machine spinning would starve the other
 * side. The consumer does not sleep in hk_spsc_recv: with two pairs on two cores, runs whose
 * consumers fall into the futex sleep/wake rhythm took 7x longer (some 9,500 sleeps in
 * 0.24 s against 0.03 s), for every allocator alike, and that lottery, not the allocator,
 * set the medians. */
static void send_all(hk_spsc_tx *tx, void **items, size_t n) {
    while (n) {
        size_t k = hk_spsc_write_n(tx, items, n);
        items += k;
        n -= k;
        if (hk_spsc_flush(tx) == HK_SPSC_CLOSED) bc_fail("consumer closed the channel early");
        if (n) sched_yield();
    }
}

typedef struct {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    uint64_t items, seed, pair;
    size_t min, max, batch;
    uint64_t received;
} pair_ctx;

/* Size and tag of item i follow from (seed, pair, i), so the consumer can recompute them. */
static inline uint64_t item_key(const pair_ctx *c, uint64_t i) {
    return bc_splitmix(c->seed ^ (c->pair << 48) ^ i);
}
static inline size_t item_size(const pair_ctx *c, uint64_t key) {
    return bc_range(key, c->min, c->max);
}

static void *producer(void *arg) {
    pair_ctx *c = arg;
    void **batch = bc_malloc(c->batch * sizeof *batch);
    for (uint64_t i = 0; i < c->items;) {
        size_t n = 0;
        for (; n < c->batch && i < c->items; n++, i++) {
            uint64_t key = item_key(c, i);
            size_t sz = item_size(c, key);
            batch[n] = bc_malloc(sz);
            bc_mark(batch[n], sz, key);
        }
        send_all(c->tx, batch, n);
    }
    hk_spsc_close_tx(c->tx);
    free(batch);
    return NULL;
}

static void *consumer(void *arg) {
    pair_ctx *c = arg;
    void **batch = bc_malloc(c->batch * sizeof *batch);
    uint64_t i = 0;
    size_t n;
    for (;;) {
        n = hk_spsc_read_n(c->rx, batch, c->batch);
        if (n == 0) { /* nothing buffered: one item, the close, or yield and look again */
            int r = hk_spsc_try_recv(c->rx, &batch[0]);
            if (r == HK_SPSC_CLOSED) break;
            if (r == HK_SPSC_EMPTY) {
                sched_yield();
                continue;
            }
            n = 1;
        }
        for (size_t k = 0; k < n; k++, i++) {
            if (i >= c->items)
                bc_fail("pair %llu: more items than sent", (unsigned long long)c->pair);
            uint64_t key = item_key(c, i);
            bc_verify(batch[k], item_size(c, key), key, "prodcons consumer");
            free(batch[k]);
        }
    }
    c->received = i;
    hk_spsc_close_rx(c->rx);
    free(batch);
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t pairs = 1, items = 1000000, seed = 1;
    size_t cap = 1024, batch = 32, min = 16, max = 512;
    const bc_opt opts[] = {
        {"pairs", BC_U64, &pairs, "producer/consumer thread pairs, one ring each"},
        {"items", BC_U64, &items, "blocks sent per pair (1 op = one malloc + its remote free)"},
        {"cap", BC_SIZE, &cap, "ring capacity (items)"},
        {"batch", BC_SIZE, &batch, "items written / read per ring call"},
        {"min", BC_SIZE, &min, "smallest block size in bytes"},
        {"max", BC_SIZE, &max, "largest block size in bytes"},
        {"seed", BC_U64, &seed, "PRNG seed"},
    };
    bc_workload = "prodcons";
    bc_parse(argc, argv, "Producer threads allocate, consumer threads free, via SPSC rings.", opts,
             sizeof opts / sizeof opts[0]);
    if (pairs < 1 || pairs > 512 || cap < 1 || batch < 1 || min < 1 || max < min) {
        fprintf(stderr, "prodcons: need 1..512 pairs, cap >= 1, batch >= 1, 1 <= min <= max\n");
        return 2;
    }
    pair_ctx *ctx = bc_malloc(pairs * sizeof *ctx);
    pthread_t *tid = bc_malloc(2 * pairs * sizeof *tid);
    double t0 = bc_now();
    for (uint64_t p = 0; p < pairs; p++) {
        ctx[p] = (pair_ctx){NULL, NULL, items, seed, p, min, max, batch, 0};
        if (hk_spsc_open(cap, &ctx[p].tx, &ctx[p].rx) != 0) bc_fail("hk_spsc_open failed");
        if (pthread_create(&tid[2 * p], NULL, consumer, &ctx[p]) != 0 ||
            pthread_create(&tid[2 * p + 1], NULL, producer, &ctx[p]) != 0)
            bc_fail("pthread_create failed");
    }
    for (uint64_t i = 0; i < 2 * pairs; i++)
        pthread_join(tid[i], NULL);
    double t1 = bc_now();
    for (uint64_t p = 0; p < pairs; p++) {
        if (ctx[p].received != items)
            bc_fail("pair %llu: %llu items received, %llu sent", (unsigned long long)p,
                    (unsigned long long)ctx[p].received, (unsigned long long)items);
    }
    free(ctx);
    free(tid);
    char params[128];
    snprintf(params, sizeof params, "pairs=%llu cap=%zu batch=%zu min=%zu max=%zu",
             (unsigned long long)pairs, cap, batch, min, max);
    bc_result(params, pairs * items, t1 - t0);
    return 0;
}

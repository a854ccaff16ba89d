/* alloc_crossthread: blocks freed by a thread other than the one that allocated them.
 * Phase 1: producer/consumer pairs (producer allocates and fills, plain, calloc or aligned;
 * consumer verifies, reallocs some, and frees, plain or sized).
 * Phase 2: owner -> relay -> freer pipelines, where a third thread frees while the owner keeps
 * allocating and freeing locally in the same size classes and checks its own blocks. */
#include "alloc_test.h"

#define NAME "alloc_crossthread"

/* Bounded single-producer/single-consumer ring of (pointer, size, key) records. Spins with
 * sched_yield, which is enough on an oversubscribed 2-core machine. */
#define RING 1024
typedef struct {
    void *p;
    size_t n;
    uint64_t key;
    size_t align; /* 0: malloc/calloc block */
} item_t;
typedef struct {
    _Alignas(64) atomic_size_t head; /* next slot the consumer reads */
    _Alignas(64) atomic_size_t tail; /* next slot the producer writes */
    _Alignas(64) item_t items[RING];
} ring_t;

static void ring_push(ring_t *r, item_t it) {
    size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
        sched_yield();
    r->items[t % RING] = it;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

static item_t ring_pop(ring_t *r) {
    size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (atomic_load_explicit(&r->tail, memory_order_acquire) == h)
        sched_yield();
    item_t it = r->items[h % RING];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return it;
}

#if HKT_TSAN
#define PAIR_BLOCKS 60000
#define PIPE_BLOCKS 30000
#else
#define PAIR_BLOCKS 300000
#define PIPE_BLOCKS 150000
#endif
#define PAIRS 4
#define PIPES 2

typedef struct {
    ring_t *ring; /* to the next stage */
    ring_t *in;   /* from the previous stage (relay, consumer) */
    int id;
    unsigned long blocks;
    unsigned long local_ops;
} stage_t;

static void check_item(const item_t *it, const char *who) {
    size_t bad = hkt_verify(it->p, it->n, it->key);
    if (bad != (size_t)-1)
        hkt_die(__FILE__, __LINE__, who, "block %p of %zu bytes damaged at offset %zu", it->p,
                it->n, bad);
}

/* Sizes for cross-thread blocks: mostly small classes, some medium, rare large. */
static size_t xsize(hkt_rng *r) {
    return hkt_size(r, 1 * MiB);
}

static void *producer(void *arg) {
    stage_t *st = arg;
    hkt_rng r = {0xABCDull + (uint64_t)st->id};
    for (unsigned long i = 0; i < st->blocks; i++) {
        item_t it = {NULL, xsize(&r), hkt_mix(((uint64_t)st->id << 48) ^ i), 0};
        uint64_t kind = hkt_below(&r, 8);
        if (kind == 0) {
            it.p = calloc(1, it.n);
        } else if (kind == 1) {
            /* the remote free must find the block from an aligned (interior) address */
            it.align = (size_t)16 << hkt_below(&r, 13); /* 16 B .. 64 KiB */
            it.p = aligned_alloc(it.align, it.n);
            REQUIRE(!it.p || ((uintptr_t)it.p & (it.align - 1)) == 0, "aligned_alloc(%zu)",
                    it.align);
        } else {
            it.p = malloc(it.n);
        }
        REQUIRE(it.p, "producer %d: malloc(%zu)", st->id, it.n);
        hkt_fill(it.p, it.n, it.key);
        ring_push(st->ring, it);
    }
    ring_push(st->ring, (item_t){0});
    return NULL;
}

static void *consumer(void *arg) {
    stage_t *st = arg;
    hkt_rng r = {0x7777ull + (uint64_t)st->id};
    unsigned long n = 0;
    for (;;) {
        item_t it = ring_pop(st->in);
        if (!it.p) break;
        check_item(&it, "consumer");
        size_t u = hkt_usable_size(it.p);
        REQUIRE(u >= it.n, "usable_size of a block from another thread: %zu < %zu", u, it.n);
        if (n % 4 == 1) {
            /* realloc of another thread's block: its old block is freed remotely */
            size_t m = xsize(&r);
            unsigned char *q = realloc(it.p, m ? m : 1);
            REQUIRE(q, "realloc(%zu -> %zu)", it.n, m);
            size_t bad = hkt_verify_prefix(q, it.n, m, it.key);
            REQUIRE(bad == (size_t)-1, "realloc %zu -> %zu of a remote block lost byte %zu", it.n,
                    m, bad);
            it.p = q;
            it.n = m ? m : 1;
            it.align = 0;
        }
        /* Some frees sized, so both remote-free entry points are used. */
        if ((n & 1) && !it.align)
            hkt_free_sized(it.p, it.n);
        else
            free(it.p);
        n++;
    }
    st->blocks = n;
    return NULL;
}

/* Allocates for the pipeline and, between sends, churns a private working set in the same
 * size classes: its pages receive remote frees while it allocates from them. */
static void *owner(void *arg) {
    stage_t *st = arg;
    enum { LOCAL = 256 };
    item_t local[LOCAL] = {{0}};
    hkt_rng r = {0x0123ull + (uint64_t)st->id};
    unsigned long ops = 0;
    for (unsigned long i = 0; i < st->blocks; i++) {
        item_t it = {NULL, hkt_size(&r, 64 * KiB), hkt_mix(((uint64_t)(st->id + 100) << 48) ^ i),
                     0};
        it.p = malloc(it.n);
        REQUIRE(it.p, "owner: malloc(%zu)", it.n);
        hkt_fill(it.p, it.n, it.key);
        ring_push(st->ring, it);
        for (int k = 0; k < 2; k++, ops++) {
            item_t *l = &local[hkt_below(&r, LOCAL)];
            if (l->p) {
                check_item(l, "owner (local block)");
                free(l->p);
                l->p = NULL;
            } else {
                l->n = hkt_size(&r, 64 * KiB);
                l->key = hkt_mix(((uint64_t)(st->id + 200) << 48) ^ ops);
                l->p = malloc(l->n);
                REQUIRE(l->p, "owner: local malloc");
                hkt_fill(l->p, l->n, l->key);
            }
        }
    }
    for (int k = 0; k < LOCAL; k++)
        if (local[k].p) {
            check_item(&local[k], "owner (local block)");
            free(local[k].p);
        }
    ring_push(st->ring, (item_t){0});
    st->local_ops = ops;
    return NULL;
}

/* Verifies and passes on: the block is touched by three threads before it is freed. */
static void *relay(void *arg) {
    stage_t *st = arg;
    for (;;) {
        item_t it = ring_pop(st->in);
        if (it.p) check_item(&it, "relay");
        ring_push(st->ring, it);
        if (!it.p) break;
    }
    return NULL;
}

int main(int argc, char **argv) {
    /* --scale N multiplies the work, for the slow soak variant */
    unsigned long scale = argc == 3 && !strcmp(argv[1], "--scale") ? strtoul(argv[2], NULL, 0) : 1;
    REQUIRE(argc == 1 || (argc == 3 && !strcmp(argv[1], "--scale") && scale > 0),
            "usage: %s [--scale N]", argv[0]);
    hkt_init(NAME);
    double t0 = hkt_now();

    ring_t *rings = NULL;
    REQUIRE(posix_memalign((void **)&rings, 64, sizeof(ring_t) * (PAIRS + 2 * PIPES)) == 0,
            "rings");
    memset(rings, 0, sizeof(ring_t) * (PAIRS + 2 * PIPES));

    stage_t prod[PAIRS], cons[PAIRS];
    pthread_t tp[PAIRS], tc[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        prod[i] = (stage_t){.ring = &rings[i], .id = i, .blocks = PAIR_BLOCKS * scale};
        cons[i] = (stage_t){.in = &rings[i], .id = i};
        REQUIRE(pthread_create(&tp[i], NULL, producer, &prod[i]) == 0, "pthread_create");
        REQUIRE(pthread_create(&tc[i], NULL, consumer, &cons[i]) == 0, "pthread_create");
    }
    unsigned long freed = 0;
    for (int i = 0; i < PAIRS; i++) {
        pthread_join(tp[i], NULL);
        pthread_join(tc[i], NULL);
        freed += cons[i].blocks;
    }
    CHECK(freed == (unsigned long)PAIRS * PAIR_BLOCKS * scale, "consumers freed %lu of %lu", freed,
          (unsigned long)PAIRS * PAIR_BLOCKS * scale);
    printf("  %d producer/consumer pairs: %lu blocks (0..4 MiB, some aligned) "
           "allocated, filled, verified, some realloc'd, freed on another thread\n",
           PAIRS, freed);

    stage_t own[PIPES], rel[PIPES], fre[PIPES];
    pthread_t to[PIPES], tr[PIPES], tf[PIPES];
    for (int i = 0; i < PIPES; i++) {
        ring_t *a = &rings[PAIRS + 2 * i], *b = &rings[PAIRS + 2 * i + 1];
        own[i] = (stage_t){.ring = a, .id = i, .blocks = PIPE_BLOCKS * scale};
        rel[i] = (stage_t){.in = a, .ring = b, .id = i};
        fre[i] = (stage_t){.in = b, .id = i};
        REQUIRE(pthread_create(&to[i], NULL, owner, &own[i]) == 0, "pthread_create");
        REQUIRE(pthread_create(&tr[i], NULL, relay, &rel[i]) == 0, "pthread_create");
        REQUIRE(pthread_create(&tf[i], NULL, consumer, &fre[i]) == 0, "pthread_create");
    }
    freed = 0;
    unsigned long local = 0;
    for (int i = 0; i < PIPES; i++) {
        pthread_join(to[i], NULL);
        pthread_join(tr[i], NULL);
        pthread_join(tf[i], NULL);
        freed += fre[i].blocks;
        local += own[i].local_ops;
    }
    CHECK(freed == (unsigned long)PIPES * PIPE_BLOCKS * scale, "freers freed %lu of %lu", freed,
          (unsigned long)PIPES * PIPE_BLOCKS * scale);
    printf("  %d owner -> relay -> freer pipelines: %lu blocks freed by a third thread while "
           "owners did %lu local ops in the same classes, all verified\n",
           PIPES, freed, local);
    free(rings);

    /* The main thread's heap still works after all those remote frees. */
    void *q = malloc(777);
    REQUIRE(q, "malloc after");
    free(q);
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

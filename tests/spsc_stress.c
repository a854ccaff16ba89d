/* spsc_stress: two threads move sequence numbers through include/hakmem_spsc.h and the
 * consumer checks there is no loss, duplication or reordering, for every pairing of producer
 * API (write+flush, write_n+flush) and consumer API (try_recv, read_n, poll/sync, recv). */
#include "hakmem_spsc.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PROD_WRITE, PROD_WRITE_N, N_PROD };
enum { CONS_TRY_RECV, CONS_READ_N, CONS_POLL_SYNC, CONS_RECV, N_CONS };
static const char *const prod_name[] = {"write+flush", "write_n+flush"};
static const char *const cons_name[] = {"try_recv", "read_n", "poll/sync", "recv"};

struct run {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    size_t items, batch;
    int prod, cons;
    size_t received;
    int error; /* first failure seen by the consumer */
};

/* Waiting politely matters here: the test machine may have as many busy threads as cores. */
static void backoff(unsigned *spins) {
    if (++*spins % 64 == 0) sched_yield();
}

static void *producer(void *arg) {
    struct run *r = (struct run *)arg;
    void *buf[256];
    uintptr_t next = 0;
    unsigned spins = 0;
    while (next < r->items) {
        size_t want = r->batch;
        if (want > r->items - next) want = r->items - next;
        if (r->prod == PROD_WRITE) {
            for (size_t i = 0; i < want;) {
                int w = hk_spsc_write(r->tx, (void *)(next + 1));
                if (w == HK_SPSC_OK) {
                    next++, i++;
                } else if (w == HK_SPSC_CLOSED) {
                    goto gone; /* the consumer gave up; it reports why */
                } else {
                    /* Full before the batch ended: publish what is staged, or the consumer
                     * could never make room. */
                    hk_spsc_flush(r->tx);
                    backoff(&spins);
                }
            }
        } else {
            for (size_t i = 0; i < want; i++)
                buf[i] = (void *)(next + 1 + i);
            for (size_t done = 0; done < want;) {
                size_t n = hk_spsc_write_n(r->tx, buf + done, want - done);
                if (n == 0) {
                    if (hk_spsc_flush(r->tx) == HK_SPSC_CLOSED) goto gone;
                    backoff(&spins);
                }
                done += n;
            }
            next += want;
        }
        if (hk_spsc_flush(r->tx) != HK_SPSC_OK) break;
    }
gone:
    hk_spsc_close_tx(r->tx);
    return NULL;
}

static int expect(struct run *r, void *v) {
    uintptr_t want = (uintptr_t)r->received + 1;
    if ((uintptr_t)v != want) {
        if (!r->error)
            fprintf(stderr, "consumer: got %lu, expected %lu (cap=%zu batch=%zu %s -> %s)\n",
                    (unsigned long)(uintptr_t)v, (unsigned long)want, r->tx->cap, r->batch,
                    prod_name[r->prod], cons_name[r->cons]);
        r->error = 1;
        return 0;
    }
    r->received++;
    return 1;
}

static void *consumer(void *arg) {
    struct run *r = (struct run *)arg;
    void *buf[256];
    void *v;
    unsigned spins = 0;
    for (;;) {
        int st;
        switch (r->cons) {
        case CONS_TRY_RECV:
            st = hk_spsc_try_recv(r->rx, &v);
            if (st == HK_SPSC_OK && !expect(r, v)) goto out;
            break;
        case CONS_RECV:
            st = hk_spsc_recv(r->rx, &v);
            if (st == HK_SPSC_EMPTY) {
                fprintf(stderr, "consumer: recv returned EMPTY\n");
                r->error = 1;
                goto out;
            }
            if (st == HK_SPSC_OK && !expect(r, v)) goto out;
            break;
        case CONS_READ_N: {
            size_t n = hk_spsc_read_n(r->rx, buf, r->batch);
            for (size_t i = 0; i < n; i++)
                if (!expect(r, buf[i])) goto out;
            /* read_n says nothing about a disconnect; ask try_recv once the ring is dry. */
            st = n ? HK_SPSC_OK : hk_spsc_try_recv(r->rx, &v);
            if (st == HK_SPSC_OK && n == 0 && !expect(r, v)) goto out;
            break;
        }
        default: /* CONS_POLL_SYNC: drain the private view, then both halves separately */
            hk_spsc_sync_read(r->rx);
            st = HK_SPSC_EMPTY;
            while (hk_spsc_poll(r->rx, &v) == HK_SPSC_OK) {
                st = HK_SPSC_OK;
                if (!expect(r, v)) goto out;
            }
            hk_spsc_sync_write(r->rx);
            if (st == HK_SPSC_EMPTY) {
                st = hk_spsc_try_recv(r->rx, &v); /* the only way to learn of a close */
                if (st == HK_SPSC_OK && !expect(r, v)) goto out;
            }
            break;
        }
        if (st == HK_SPSC_CLOSED) break;
        if (st == HK_SPSC_EMPTY) backoff(&spins);
    }
out:
    hk_spsc_close_rx(r->rx);
    return NULL;
}

static int run_one(size_t cap, size_t batch, int prod, int cons, size_t items) {
    struct run r;
    memset(&r, 0, sizeof r);
    r.items = items;
    r.batch = batch;
    r.prod = prod;
    r.cons = cons;
    if (hk_spsc_open(cap, &r.tx, &r.rx) != 0) {
        fprintf(stderr, "open(%zu) failed\n", cap);
        return 1;
    }
    pthread_t pt, ct;
    if (pthread_create(&ct, NULL, consumer, &r) || pthread_create(&pt, NULL, producer, &r)) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    if (r.error || r.received != items) {
        fprintf(stderr, "FAIL cap=%zu batch=%zu %s -> %s: received %zu of %zu\n", cap, batch,
                prod_name[prod], cons_name[cons], r.received, items);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    size_t items = 120000; /* per configuration of capacity 64; 176 configurations */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--items") && i + 1 < argc) {
            items = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--items N-per-configuration-at-capacity-64]\n", argv[0]);
            return 2;
        }
    }
    static const size_t caps[] = {1, 8, 64, 1024};
    /* Tiny rings hand over one item per round trip; give them fewer items so the big rings,
     * where batching and the wrap matter, carry most of the volume in the same time. */
    static const double share[] = {1.0 / 16, 0.5, 1, 4};
    static const size_t batches[] = {1, 2, 3, 7, 8, 31, 32, 64, 128, 255, 256};
    int failed = 0, configs = 0;
    size_t total = 0;
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        size_t n = (size_t)((double)items * share[c]);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
            for (int p = 0; p < N_PROD; p++)
                for (int k = 0; k < N_CONS; k += 1) {
                    /* Half of the pairings per cell, alternating with the batch size, so
                     * each pairing meets every capacity and half the batch sizes. */
                    if ((k + p + (int)b) % 2) continue;
                    failed += run_one(caps[c], batches[b], p, k, n);
                    configs++;
                    total += n;
                }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("capacity %4zu: %zu items per configuration, %.2f s\n", caps[c], n,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    printf("moved %zu items over %d configurations (capacities 1,8,64,1024; batches 1..256; "
           "each producer API with each consumer API): %s\n",
           total, configs, failed ? "FAILED" : "no loss, duplication or reordering");
    return failed != 0;
}

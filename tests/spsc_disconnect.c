/* spsc_disconnect: what each end of include/hakmem_spsc.h sees when the other one leaves.
 * Consumer gone: the producer gets CLOSED within one capacity of writes, at once from flush.
 * Producer gone: the consumer drains every item, flushed or only staged, then gets CLOSED. */
#include "hakmem_spsc.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

#include "spsc_test.h"

/* The producer only writes (never flushes) after the consumer left: the full ring is where it
 * must notice, so it may stage at most one capacity's worth before CLOSED. */
static void consumer_leaves_single_thread(void) {
    static const size_t caps[] = {1, 2, 64, 1000};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        hk_spsc_tx *tx = NULL;
        hk_spsc_rx *rx = NULL;
        void *v;
        CHECK(hk_spsc_open(caps[k], &tx, &rx) == 0);
        size_t cap = tx->cap;
        for (size_t i = 0; i < cap / 2; i++)
            CHECK(hk_spsc_write(tx, P(i)) == HK_SPSC_OK);
        CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
        CHECK(hk_spsc_try_recv(rx, &v) == (cap / 2 ? HK_SPSC_OK : HK_SPSC_EMPTY));
        hk_spsc_close_rx(rx);
        size_t accepted = 0;
        int r;
        while ((r = hk_spsc_write(tx, P(accepted))) == HK_SPSC_OK && accepted <= cap)
            accepted++;
        CHECK(r == HK_SPSC_CLOSED);
        CHECK(accepted <= cap);
        CHECK(hk_spsc_flush(tx) == HK_SPSC_CLOSED);
        CHECK(hk_spsc_send(tx, P(0)) == HK_SPSC_CLOSED);
        void *items[4] = {0};
        CHECK(hk_spsc_write_n(tx, items, 4) == 0);
        hk_spsc_close_tx(tx); /* last closer frees */
    }
    printf("consumer left: write gave CLOSED within one capacity (1,2,64,1024), flush and "
           "send at once\n");
}

static void producer_leaves_single_thread(void) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    void *v;
    CHECK(hk_spsc_open(8, &tx, &rx) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(hk_spsc_write(tx, P(i + 1)) == HK_SPSC_OK);
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    for (int i = 3; i < 8; i++)
        CHECK(hk_spsc_write(tx, P(i + 1)) == HK_SPSC_OK);
    hk_spsc_close_tx(tx); /* the last five were only staged: close publishes them */
    for (uintptr_t i = 1; i <= 8; i++)
        CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_OK && v == P(i));
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_CLOSED);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_CLOSED); /* and stays closed */
    CHECK(hk_spsc_recv(rx, &v) == HK_SPSC_CLOSED);
    hk_spsc_close_rx(rx);

    /* Closing an end that never sent or received anything, in both orders. */
    CHECK(hk_spsc_open(1, &tx, &rx) == 0);
    hk_spsc_close_rx(rx);
    hk_spsc_close_tx(tx);
    CHECK(hk_spsc_open(1, &tx, &rx) == 0);
    hk_spsc_close_tx(tx);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_CLOSED);
    hk_spsc_close_rx(rx);
    printf("producer left: staged and flushed items drained in order, then CLOSED for good; "
           "idle ends closed in both orders\n");
}

struct two {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    size_t items, received, after_close;
    int rx_gone, error;
};

static void *leaving_consumer(void *arg) {
    struct two *t = (struct two *)arg;
    void *v;
    while (t->received < t->items) {
        int r = hk_spsc_try_recv(t->rx, &v);
        if (r == HK_SPSC_OK) {
            if (v != P(t->received + 1)) t->error = 1;
            t->received++;
        } else {
            sched_yield();
        }
    }
    hk_spsc_close_rx(t->rx);
    __atomic_store_n(&t->rx_gone, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The consumer quits part-way; the producer, writing without flushing, must be told within
 * one capacity of writes after it could know. */
static void consumer_leaves_two_threads(size_t cap) {
    struct two t = {0};
    CHECK(hk_spsc_open(cap, &t.tx, &t.rx) == 0);
    size_t real_cap = t.tx->cap;
    t.items = 5000;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, leaving_consumer, &t) == 0);
    uintptr_t next = 1;
    int r;
    for (;;) {
        int gone = __atomic_load_n(&t.rx_gone, __ATOMIC_ACQUIRE);
        r = hk_spsc_write(t.tx, P(next));
        if (r == HK_SPSC_CLOSED) break;
        if (r == HK_SPSC_OK) {
            next++;
            if (gone) t.after_close++;
            if (next % 16 == 0 && !gone) hk_spsc_flush(t.tx);
        } else {
            hk_spsc_flush(t.tx); /* FULL: let the consumer see what is staged */
            sched_yield();
        }
    }
    pthread_join(th, NULL);
    CHECK(!t.error && t.received == t.items);
    CHECK(t.after_close <= real_cap);
    CHECK(hk_spsc_flush(t.tx) == HK_SPSC_CLOSED);
    hk_spsc_close_tx(t.tx);
    printf("consumer left mid-stream (capacity %zu): producer staged %zu items after it could "
           "know, then CLOSED\n",
           real_cap, t.after_close);
}

static void *draining_consumer(void *arg) {
    struct two *t = (struct two *)arg;
    void *v;
    for (;;) {
        int r = hk_spsc_try_recv(t->rx, &v);
        if (r == HK_SPSC_CLOSED) break;
        if (r == HK_SPSC_OK) {
            if (v != P(t->received + 1)) t->error = 1;
            t->received++;
        } else {
            sched_yield();
        }
    }
    hk_spsc_close_rx(t->rx);
    return NULL;
}

static void producer_leaves_two_threads(size_t cap) {
    struct two t = {0};
    CHECK(hk_spsc_open(cap, &t.tx, &t.rx) == 0);
    t.items = 200000;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, draining_consumer, &t) == 0);
    for (uintptr_t next = 1; next <= t.items;) {
        int r = hk_spsc_write(t.tx, P(next));
        if (r == HK_SPSC_OK) {
            next++;
            if (next % 7 == 0) hk_spsc_flush(t.tx);
        } else {
            CHECK(r == HK_SPSC_FULL);
            hk_spsc_flush(t.tx);
            sched_yield();
        }
    }
    hk_spsc_close_tx(t.tx); /* items still staged must reach the consumer */
    pthread_join(th, NULL);
    CHECK(!t.error);
    CHECK(t.received == t.items);
    printf("producer left mid-stream (capacity %zu): consumer drained all %zu items in order, "
           "then CLOSED\n",
           cap, t.received);
}

int main(void) {
    consumer_leaves_single_thread();
    producer_leaves_single_thread();
    consumer_leaves_two_threads(1);
    consumer_leaves_two_threads(64);
    consumer_leaves_two_threads(1024);
    producer_leaves_two_threads(1);
    producer_leaves_two_threads(64);
    producer_leaves_two_threads(1024);
    if (failures) {
        fprintf(stderr, "spsc_disconnect: %d checks failed\n", failures);
        return 1;
    }
    printf("spsc_disconnect: all checks passed\n");
    return 0;
}

/* spsc_basic: single-thread semantics of include/hakmem_spsc.h.
 * Checks open's argument handling, capacity rounding, FULL/EMPTY, visibility only after flush,
 * order, wrap-around, bulk copies across the wrap and the split poll/sync halves. */
#include "hakmem_spsc.h"

#include <stdint.h>
#include <stdio.h>

#include "spsc_test.h"

static void open_arguments(void) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    CHECK(hk_spsc_open(0, &tx, &rx) == EINVAL);
    CHECK(hk_spsc_open(4, NULL, &rx) == EINVAL);
    CHECK(hk_spsc_open(4, &tx, NULL) == EINVAL);
    CHECK(hk_spsc_open(SIZE_MAX, &tx, &rx) == EINVAL);
    CHECK(hk_spsc_open(SIZE_MAX / 2, &tx, &rx) == EINVAL);
    int r = hk_spsc_open(SIZE_MAX / 32, &tx, &rx); /* representable, but no such memory */
    CHECK(r == ENOMEM || r == EINVAL);
    printf("open: capacity 0, NULL out-pointers and overflowing capacities rejected\n");
}

/* Fills a fresh channel without a consumer to count the usable slots. */
static size_t usable_slots(size_t capacity) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    CHECK(hk_spsc_open(capacity, &tx, &rx) == 0);
    size_t n = 0;
    while (hk_spsc_write(tx, P(n)) == HK_SPSC_OK)
        n++;
    CHECK(hk_spsc_write(tx, P(n)) == HK_SPSC_FULL);
    hk_spsc_close_tx(tx);
    hk_spsc_close_rx(rx);
    return n;
}

static void capacity_rounding(void) {
    static const size_t want[][2] = {{1, 1},   {2, 2},     {3, 4},       {5, 8},
                                     {64, 64}, {100, 128}, {1000, 1024}, {4097, 8192}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t got = usable_slots(want[i][0]);
        if (got != want[i][1])
            fprintf(stderr, "capacity %zu: %zu usable slots, want %zu\n", want[i][0], got,
                    want[i][1]);
        CHECK(got == want[i][1]);
    }
    printf("capacity: rounded up to a power of two, every slot usable, FULL after that\n");
}

static void visibility_order_wrap(void) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    void *v;
    CHECK(hk_spsc_open(8, &tx, &rx) == 0);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_EMPTY);
    CHECK(hk_spsc_write(tx, P(1)) == HK_SPSC_OK);
    CHECK(hk_spsc_write(tx, P(2)) == HK_SPSC_OK);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_EMPTY); /* staged, not published */
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_OK && U(v) == 1);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_OK && U(v) == 2);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_EMPTY);
    printf("visibility: written items invisible until flush, then received in order\n");

    /* Many laps of a ring of 8 with uneven batch sizes: every position of the wrap is hit. */
    uintptr_t next_w = 3, next_r = 3;
    for (int lap = 0; lap < 200; lap++) {
        size_t batch = (size_t)(lap % 8) + 1;
        for (size_t i = 0; i < batch; i++)
            CHECK(hk_spsc_write(tx, P(next_w++)) == HK_SPSC_OK);
        CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
        if (batch == 8) CHECK(hk_spsc_write(tx, P(0)) == HK_SPSC_FULL);
        while (hk_spsc_try_recv(rx, &v) == HK_SPSC_OK)
            CHECK(U(v) == next_r++);
    }
    CHECK(next_r == next_w);
    printf("wrap-around: 200 laps of uneven batches through a ring of 8 kept order\n");
    hk_spsc_close_tx(tx);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_CLOSED);
    hk_spsc_close_rx(rx);
}

static void bulk_across_wrap(void) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    void *in[40], *out[40];
    CHECK(hk_spsc_open(16, &tx, &rx) == 0);
    CHECK(hk_spsc_read_n(rx, out, 40) == 0);
    uintptr_t next_w = 0, next_r = 0;
    for (int round = 0; round < 100; round++) {
        size_t want = (size_t)(round * 7 % 23) + 1; /* 1..23, often more than is free */
        for (size_t i = 0; i < want; i++)
            in[i] = P(next_w + i);
        size_t wrote = hk_spsc_write_n(tx, in, want);
        CHECK(wrote <= want && wrote <= 16);
        next_w += wrote;
        CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
        size_t take = (size_t)(round * 5 % 17) + 1;
        size_t got = hk_spsc_read_n(rx, out, take);
        CHECK(got <= take);
        for (size_t i = 0; i < got; i++)
            CHECK(U(out[i]) == next_r + i);
        next_r += got;
    }
    while (next_r < next_w) {
        size_t got = hk_spsc_read_n(rx, out, 40);
        CHECK(got > 0);
        for (size_t i = 0; i < got; i++)
            CHECK(U(out[i]) == next_r + i);
        next_r += got;
        if (got == 0) break;
    }
    CHECK(next_r == next_w);
    /* An exactly full ring taken in one call, starting mid-ring so the copy splits in two.
     * read_n gave its slots back itself: no sync is needed before the ring is free again. */
    for (int i = 0; i < 16; i++)
        in[i] = P(1000 + i);
    CHECK(hk_spsc_write_n(tx, in, 16) == 16);
    CHECK(hk_spsc_write_n(tx, in, 1) == 0);
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    CHECK(hk_spsc_read_n(rx, out, 40) == 16);
    for (int i = 0; i < 16; i++)
        CHECK(U(out[i]) == 1000u + (unsigned)i);
    CHECK(hk_spsc_write_n(tx, in, 16) == 16);
    /* A call that takes the rest of the view also looks for newer items, so the next one finds
     * them without a sync (poll shows only the private view). */
    void *v;
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    CHECK(hk_spsc_read_n(rx, out, 10) == 10); /* sees 16, takes 10 */
    CHECK(hk_spsc_write_n(tx, in, 4) == 4);
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    CHECK(hk_spsc_read_n(rx, out, 10) == 6); /* takes the other 6, and sees the 4 new ones */
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_OK && v == in[0]);
    CHECK(hk_spsc_read_n(rx, out, 10) == 3);
    printf("bulk: write_n/read_n over %lu items with partial batches across the wrap; read_n "
           "gives slots back and refreshes an emptied view\n",
           (unsigned long)next_w);
    hk_spsc_close_rx(rx);
    CHECK(hk_spsc_flush(tx) == HK_SPSC_CLOSED);
    hk_spsc_close_tx(tx);
}

/* poll never touches shared state; sync_read reveals flushed items; sync_write returns slots. */
static void poll_and_sync_halves(void) {
    hk_spsc_tx *tx = NULL;
    hk_spsc_rx *rx = NULL;
    void *v;
    CHECK(hk_spsc_open(4, &tx, &rx) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(hk_spsc_write(tx, P(i)) == HK_SPSC_OK);
    CHECK(hk_spsc_flush(tx) == HK_SPSC_OK);
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_EMPTY); /* private view still empty */
    hk_spsc_sync_read(rx);
    for (int i = 0; i < 4; i++)
        CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_OK && U(v) == (unsigned)i);
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_EMPTY);
    CHECK(hk_spsc_write(tx, P(9)) == HK_SPSC_FULL); /* consumed but not given back */
    hk_spsc_sync_read(rx);
    CHECK(hk_spsc_write(tx, P(9)) == HK_SPSC_FULL); /* the read half gives nothing back */
    hk_spsc_sync_write(rx);
    CHECK(hk_spsc_write(tx, P(4)) == HK_SPSC_OK);
    CHECK(hk_spsc_send(tx, P(5)) == HK_SPSC_OK);
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_EMPTY);
    hk_spsc_sync(rx);
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_OK && U(v) == 4);
    CHECK(hk_spsc_poll(rx, &v) == HK_SPSC_OK && U(v) == 5);
    /* try_recv's implicit sync gives the slots back too. */
    for (int i = 0; i < 2; i++)
        CHECK(hk_spsc_write(tx, P(6 + i)) == HK_SPSC_OK);
    CHECK(hk_spsc_write(tx, P(0)) == HK_SPSC_FULL);
    CHECK(hk_spsc_try_recv(rx, &v) == HK_SPSC_EMPTY); /* unflushed; but head went back */
    CHECK(hk_spsc_write(tx, P(8)) == HK_SPSC_OK);
    printf("poll/sync: poll reads the private view only; sync_read and sync_write act alone\n");
    hk_spsc_close_tx(tx);
    hk_spsc_close_rx(rx);
}

int main(void) {
    open_arguments();
    capacity_rounding();
    visibility_order_wrap();
    bulk_across_wrap();
    poll_and_sync_halves();
    if (failures) {
        fprintf(stderr, "spsc_basic: %d checks failed\n", failures);
        return 1;
    }
    printf("spsc_basic: all checks passed\n");
    return 0;
}

/* hakmem_spsc.h: header-only lock-free single-producer/single-consumer channel of pointers.
 * Owns the channel layout, the publish/sync protocol and the futex sleep/wake handshake.
 * Never locks, never allocates after hk_spsc_open; each end belongs to exactly one thread. */
#ifndef HAKMEM_SPSC_H
#define HAKMEM_SPSC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#if defined(__x86_64__)
#include <cpuid.h>
#else
#include <unistd.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum { HK_SPSC_OK = 0, HK_SPSC_EMPTY, HK_SPSC_FULL, HK_SPSC_CLOSED };

/* Iterations hk_spsc_recv polls before it sleeps: long enough to cover a producer that is
 * a few hundred nanoseconds behind, short enough not to burn a core on an idle channel. */
#ifndef HK_SPSC_SPIN
#define HK_SPSC_SPIN 256
#endif

/* The most pauses a consumer waits, once, when it empties the ring right behind a producer
 * that is streaming (see hk_spsc_rx_lag_), before it looks again. 48 pauses are about 1.8 us
 * where pause takes 37 ns, a few cross-core round trips even between distant cores. Rings
 * below 768 slots wait less (one pause per 16 slots). 0 disables. */
#ifndef HK_SPSC_LAG
#define HK_SPSC_LAG 48
#endif

/* Two 64-byte lines per block: the adjacent-line prefetcher of many x86 parts fetches lines
 * in 128-byte pairs, which would otherwise make neighbouring blocks falsely share. */
#define HK_SPSC_BLOCK 128
#define HK_SPSC_ALIGNED __attribute__((aligned(HK_SPSC_BLOCK)))
#define HK_SPSC_COLD __attribute__((noinline, cold, unused))

typedef struct hk_spsc_chan hk_spsc_chan;
typedef struct hk_spsc_tx hk_spsc_tx;
typedef struct hk_spsc_rx hk_spsc_rx;

/* The two handles live inside the channel allocation, each in its own block, so that each
 * thread's hot state is private to its core. Indices run free (never masked when stored),
 * so "full" is pending - head == cap and every slot of the power-of-two ring is usable. */
struct hk_spsc_tx {
    size_t pending;    /* next index to write; items below it are staged */
    size_t published;  /* last value stored to chan->tail, to make an idle flush free */
    size_t head_cache; /* consumer head as last loaded: reloaded only when it says full */
    size_t cap;
    size_t mask;
    void **slots;
    hk_spsc_chan *chan;
    int fenced;    /* no membarrier: flush pays a full barrier (see hk_spsc_publish_) */
    int prefetchw; /* the CPU has PREFETCHW (see hk_spsc_claim_) */
} HK_SPSC_ALIGNED;

struct hk_spsc_rx {
    size_t head;       /* next index to read: the consumer's private view */
    size_t tail_cache; /* producer tail as last loaded: reloaded only when it says empty */
    size_t published;  /* last value stored to chan->head, so a spinning consumer stays silent */
    size_t streaming;  /* the last look found a short run (2..63 items): see hk_spsc_rx_lag_ */
    size_t mask;
    void **slots;
    hk_spsc_chan *chan;
    int fenced; /* same as the producer's: which half-barrier the other side uses */
} HK_SPSC_ALIGNED;

struct hk_spsc_chan {
    hk_spsc_tx tx;
    hk_spsc_rx rx;
    /* Written by the producer on every flush, read by the consumer when its view is empty.
     * tx_closed shares the line because the same thread writes it and the same reader
     * looks at it right after tail. */
    struct {
        size_t tail;
        size_t tx_closed; /* a size_t so hk_spsc_publish_ serves both words */
    } HK_SPSC_ALIGNED prod;
    /* Written by the consumer once per sync, read by the producer when its view is full. */
    struct {
        size_t head;
    } HK_SPSC_ALIGNED cons;
    /* Written rarely (sleep, close) but read by the producer on every flush: kept apart from
     * cons.head so those reads hit the producer's L1 instead of chasing the consumer. */
    struct {
        uint32_t rx_sleeping; /* futex word: 1 while the consumer is in (or entering) wait */
        uint32_t rx_closed;
        uint32_t refs; /* open ends; the last closer frees */
    } HK_SPSC_ALIGNED ctl;
    /* slots follow, HK_SPSC_BLOCK aligned */
};

/* ---- internals ------------------------------------------------------------------------ */

#define hk_spsc_load_(p, mo) __atomic_load_n((p), __ATOMIC_##mo)
#define hk_spsc_store_(p, v, mo) __atomic_store_n((p), (v), __ATOMIC_##mo)

static inline void hk_spsc_pause_(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* The raw instruction on x86-64 keeps errno untouched (recv must not clobber it) and needs no
 * feature-test macro for syscall(2) under strict -std=c11. */
static inline long hk_spsc_syscall3_(long nr, long a, long b, long c) {
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = 0; /* futex: no timeout; membarrier: unused */
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(nr, a, b, c, 0L, 0L, 0L);
#endif
}

static inline void hk_spsc_futex_(uint32_t *word, int op, uint32_t val) {
    hk_spsc_syscall3_(SYS_futex, (long)(uintptr_t)word, op, (long)val);
}

static HK_SPSC_COLD void hk_spsc_wake_(hk_spsc_chan *c) {
    /* The exchange makes only one waker pay for the syscall when flush and close race. */
    if (__atomic_exchange_n(&c->ctl.rx_sleeping, 0, __ATOMIC_RELAXED))
        hk_spsc_futex_(&c->ctl.rx_sleeping, FUTEX_WAKE_PRIVATE, 1);
}

/* The sleep handshake is a Dekker pair between the producer's publish and the consumer's
 * decision to sleep (hk_spsc_recv_slow_):
 *   producer: store tail (or tx_closed);  [barrier];  load rx_sleeping
 *   consumer: store rx_sleeping = 1;       barrier;   load tail and tx_closed
 * With a full barrier on both sides the two loads cannot both miss the other side's store
 * (the store-buffering outcome is forbidden): either the producer sees the flag and wakes,
 * or the consumer sees the data or the close and does not sleep. FUTEX_WAIT re-checks the
 * word in the kernel, so a wake landing between the consumer's check and its wait is lost
 * neither.
 *
 * A full barrier in flush is what makes it slow, though: a locked instruction or mfence right
 * after the tail store waits for the store to win the tail's cache line back from a consumer
 * that is reading it, a whole cross-core round trip per flush. So where the kernel offers it,
 * the barrier is made asymmetric: the consumer, about to sleep anyway, calls
 * membarrier(PRIVATE_EXPEDITED), which forces a full barrier on every running thread of the
 * process (a descheduled thread had one at its context switch). Wherever that barrier lands
 * in the producer's program, the pair holds: before the tail store, the producer's flag load
 * comes after the consumer's flag store; between store and load, it is the symmetric case;
 * after the load, the tail store is visible before membarrier returns and the consumer's tail
 * load follows. The producer then needs only program order, i.e. a compiler barrier.
 * Without membarrier (old kernel, seccomp), the producer's store and load are seq_cst (an xchg
 * on x86-64), which ThreadSanitizer also understands, unlike a fence. */
static inline int hk_spsc_membarrier_ready_(void) {
#ifdef HK_SPSC_NO_MEMBARRIER /* tests force the fallback with this */
    return 0;
#endif
    return hk_spsc_syscall3_(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static inline void hk_spsc_publish_(hk_spsc_chan *c, size_t *word, size_t value, int fenced) {
    if (__builtin_expect(!fenced, 1)) {
        hk_spsc_store_(word, value, RELEASE);
        __atomic_signal_fence(__ATOMIC_SEQ_CST); /* keep the load after the store */
        if (__builtin_expect(hk_spsc_load_(&c->ctl.rx_sleeping, RELAXED) != 0, 0)) hk_spsc_wake_(c);
    } else {
        hk_spsc_store_(word, value, SEQ_CST);
        if (hk_spsc_load_(&c->ctl.rx_sleeping, SEQ_CST) != 0) hk_spsc_wake_(c);
    }
}

static inline void hk_spsc_release_(hk_spsc_chan *c) {
    /* acq_rel: the last closer must see every write the other end made before it let go. */
    if (__atomic_sub_fetch(&c->ctl.refs, 1, __ATOMIC_ACQ_REL) == 0) free(c);
}

/* Called when the cached head says full: reloads it, and only then looks for a disconnect,
 * so a live channel never pays for the check on the per-item path. */
static HK_SPSC_COLD int hk_spsc_tx_refresh_(hk_spsc_tx *tx) {
    hk_spsc_chan *c = tx->chan;
    tx->head_cache = hk_spsc_load_(&c->cons.head, ACQUIRE);
    if (tx->pending - tx->head_cache != tx->cap) return HK_SPSC_OK;
    return hk_spsc_load_(&c->ctl.rx_closed, RELAXED) ? HK_SPSC_CLOSED : HK_SPSC_FULL;
}

/* PREFETCHW is not part of baseline x86-64 (older Intel parts lack it), so it is looked up once
 * at open rather than assumed or left to compiler flags. */
static inline int hk_spsc_has_prefetchw_(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    return __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & (1u << 8)) != 0;
#else
    return 0;
#endif
}

/* Asks for ownership of the lines holding slots [from, from + n), which must be free. The
 * consumer still holds them from its last lap, and each store into such a line waits for it to
 * be taken back. Claimed ahead, that transfer overlaps whatever the producer does before it
 * writes there instead of stalling the copy. A read prefetch would not do: the line would
 * arrive shared and the store would still wait for the consumer's copy to go. */
static inline void hk_spsc_claim_(const hk_spsc_tx *tx, size_t from, size_t n) {
#if defined(__x86_64__)
    if (!tx->prefetchw) return;
    size_t at = from & tx->mask, first = tx->cap - at;
    if (first > n) first = n;
    const char *p = (const char *)(tx->slots + at), *end = p + first * sizeof(void *);
    for (; p < end; p += 64)
        __asm__("prefetchw %0" : : "m"(*p));
    p = (const char *)tx->slots, end = p + (n - first) * sizeof(void *);
    for (; p < end; p += 64)
        __asm__("prefetchw %0" : : "m"(*p));
#else
    (void)tx, (void)from, (void)n;
#endif
}

/* ---- producer ------------------------------------------------------------------------- */

static inline int hk_spsc_open(size_t capacity, hk_spsc_tx **tx, hk_spsc_rx **rx) {
    if (capacity == 0 || tx == NULL || rx == NULL) return EINVAL;
    /* Free-running indices need cap <= SIZE_MAX/2 for "pending - head" to stay meaningful;
     * the byte count must fit too. */
    size_t limit = (SIZE_MAX - sizeof(hk_spsc_chan)) / sizeof(void *) / 2;
    if (capacity > limit) return EINVAL;
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    size_t bytes = sizeof(hk_spsc_chan) + cap * sizeof(void *);
    bytes = (bytes + HK_SPSC_BLOCK - 1) & ~(size_t)(HK_SPSC_BLOCK - 1); /* aligned_alloc rule */
    hk_spsc_chan *c = (hk_spsc_chan *)aligned_alloc(HK_SPSC_BLOCK, bytes);
    if (c == NULL) return ENOMEM;
    memset(c, 0, sizeof *c);
    void **slots = (void **)(void *)(c + 1);
    c->tx.cap = cap;
    c->tx.mask = cap - 1;
    c->tx.slots = slots;
    c->tx.chan = c;
    c->rx.mask = cap - 1;
    c->rx.slots = slots;
    c->rx.chan = c;
    c->ctl.refs = 2;
    c->tx.fenced = c->rx.fenced = !hk_spsc_membarrier_ready_();
    c->tx.prefetchw = hk_spsc_has_prefetchw_();
    *tx = &c->tx;
    *rx = &c->rx;
    return 0;
}

/* Item writes claim ahead too (see hk_spsc_claim_), one line each time they enter a new one.
 * Without it every line of slots is taken back from the consumer by the stores themselves, and
 * the store queue holds only a few lines' worth of those: between distant cores that capped the
 * producer at about one line per 90 ns. Claimed 16 lines (128 items) ahead, the transfers overlap.
 * Only lines that are free by the cached head are claimed, so a small ring claims nothing. */
#define HK_SPSC_ITEM_CLAIM_AHEAD 128

static inline int hk_spsc_write(hk_spsc_tx *tx, void *item) {
    if (__builtin_expect(tx->pending - tx->head_cache == tx->cap, 0)) {
        int r = hk_spsc_tx_refresh_(tx);
        if (r != HK_SPSC_OK) return r;
    }
    tx->slots[tx->pending & tx->mask] = item;
    tx->pending++;
    if ((tx->pending & 7) == 0 && tx->prefetchw) {
        size_t ahead = tx->pending + HK_SPSC_ITEM_CLAIM_AHEAD;
        if (ahead + 8 - tx->head_cache <= tx->cap) hk_spsc_claim_(tx, ahead, 8);
    }
    return HK_SPSC_OK;
}

/* Stages min(n, free) items with at most two copies (before and after the wrap). Returns 0
 * when the ring is full; hk_spsc_flush then tells a full ring from a departed consumer. Then
 * claims the free lines the next two calls of the same size would write: one call ahead is
 * too short for a transfer between distant cores at batches of about 128. The head is reloaded
 * as soon as the cached room cannot hold this call and the next, not only when this one does
 * not fit: the claim covers only slots free by the cached head, and a stale head would leave
 * the next call's lines unclaimed. (room / 2 < n is room < 2n without overflow.) */
static inline size_t hk_spsc_write_n(hk_spsc_tx *tx, void *const *items, size_t n) {
    if (n == 0) return 0;
    size_t room = tx->cap - (tx->pending - tx->head_cache);
    if (room / 2 < n) {
        tx->head_cache = hk_spsc_load_(&tx->chan->cons.head, ACQUIRE);
        room = tx->cap - (tx->pending - tx->head_cache);
        if (n > room) n = room;
    }
    size_t at = tx->pending & tx->mask;
    size_t first = tx->cap - at;
    if (first > n) first = n;
    memcpy(tx->slots + at, items, first * sizeof(void *));
    memcpy(tx->slots, items + first, (n - first) * sizeof(void *));
    tx->pending += n;
    room -= n;
    hk_spsc_claim_(tx, tx->pending, room < 2 * n ? room : 2 * n);
    return n;
}

static inline int hk_spsc_flush(hk_spsc_tx *tx) {
    hk_spsc_chan *c = tx->chan;
    if (tx->pending != tx->published) {
        tx->published = tx->pending;
        hk_spsc_publish_(c, &c->prod.tail, tx->pending, tx->fenced);
    }
    return hk_spsc_load_(&c->ctl.rx_closed, RELAXED) ? HK_SPSC_CLOSED : HK_SPSC_OK;
}

static inline int hk_spsc_send(hk_spsc_tx *tx, void *item) {
    int r = hk_spsc_write(tx, item);
    if (r != HK_SPSC_OK) return r;
    return hk_spsc_flush(tx);
}

static inline void hk_spsc_close_tx(hk_spsc_tx *tx) {
    hk_spsc_chan *c = tx->chan;
    (void)hk_spsc_flush(tx);
    /* At least release: a consumer that sees tx_closed then reloads tail sees every item. */
    hk_spsc_publish_(c, &c->prod.tx_closed, 1, tx->fenced);
    hk_spsc_release_(c);
}

/* ---- consumer ------------------------------------------------------------------------- */

static inline int hk_spsc_poll(hk_spsc_rx *rx, void **item) {
    if (rx->head == rx->tail_cache) return HK_SPSC_EMPTY;
    *item = rx->slots[rx->head & rx->mask];
    rx->head++;
    return HK_SPSC_OK;
}

static inline void hk_spsc_sync_read(hk_spsc_rx *rx) {
    rx->tail_cache = hk_spsc_load_(&rx->chan->prod.tail, ACQUIRE);
}

static inline void hk_spsc_sync_write(hk_spsc_rx *rx) {
    /* Skipping an unchanged store keeps a spinning consumer from stealing the line. */
    if (rx->head != rx->published) {
        rx->published = rx->head;
        hk_spsc_store_(&rx->chan->cons.head, rx->head, RELEASE);
    }
}

static inline void hk_spsc_sync(hk_spsc_rx *rx) {
    hk_spsc_sync_write(rx);
    hk_spsc_sync_read(rx);
}

/* A short run means the producer is streaming just ahead of this consumer. A consumer that
 * then looks again at once takes the tail line, and the line of slots being filled, from the
 * producer after every item or two, and each of the producer's next stores waits a cross-core
 * round trip to get them back: between distant cores that halves its rate. So when the ring
 * runs empty during a stream, the consumer pauses once before its second look and lets a
 * longer run build up. A single item (a request and its reply) or a long run (the consumer is
 * the slower side) never waits; a call that finds nothing after the pause ends the stream. */
static HK_SPSC_COLD void hk_spsc_rx_lag_(hk_spsc_rx *rx) {
    if (rx->head == rx->tail_cache && rx->streaming) {
        /* One pause per 16 slots: about as long as a producer on a neighbouring core takes to
         * fill the whole ring (some 2 ns an item), so in a small ring it is not left stalled
         * on a full ring for long; between distant cores a producer is about 3x slower. */
        size_t pauses = (rx->mask + 1) / 16;
        if (pauses > HK_SPSC_LAG) pauses = HK_SPSC_LAG;
        for (size_t i = 0; i < pauses; i++)
            hk_spsc_pause_();
        hk_spsc_sync_read(rx);
    }
    rx->streaming = rx->tail_cache - rx->head - 2 < 62; /* 2 <= run < 64, unsigned */
}

/* The view is empty: give consumed slots back (the only head store try_recv makes), look for
 * new items, and only if there are none look for a disconnect. */
static HK_SPSC_COLD int hk_spsc_rx_refill_(hk_spsc_rx *rx) {
    hk_spsc_sync(rx);
    hk_spsc_rx_lag_(rx);
    if (rx->head != rx->tail_cache) return HK_SPSC_OK;
    if (!hk_spsc_load_(&rx->chan->prod.tx_closed, ACQUIRE)) return HK_SPSC_EMPTY;
    hk_spsc_sync_read(rx); /* items flushed just before the close */
    return rx->head != rx->tail_cache ? HK_SPSC_OK : HK_SPSC_CLOSED;
}

static inline int hk_spsc_try_recv(hk_spsc_rx *rx, void **item) {
    if (__builtin_expect(rx->head == rx->tail_cache, 0)) {
        int r = hk_spsc_rx_refill_(rx);
        if (r != HK_SPSC_OK) return r;
    }
    *item = rx->slots[rx->head & rx->mask];
    rx->head++;
    return HK_SPSC_OK;
}

static HK_SPSC_COLD int hk_spsc_recv_slow_(hk_spsc_rx *rx, void **item) {
    hk_spsc_chan *c = rx->chan;
    int r;
    for (int i = 0; i < HK_SPSC_SPIN; i++) {
        hk_spsc_pause_();
        if ((r = hk_spsc_try_recv(rx, item)) != HK_SPSC_EMPTY) return r;
    }
    for (;;) {
        /* Consumer half of the handshake described at hk_spsc_publish_. */
        hk_spsc_store_(&c->ctl.rx_sleeping, 1, SEQ_CST);
        if (!rx->fenced) hk_spsc_syscall3_(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        if (hk_spsc_load_(&c->prod.tail, SEQ_CST) == rx->head &&
            !hk_spsc_load_(&c->prod.tx_closed, SEQ_CST)) {
            hk_spsc_futex_(&c->ctl.rx_sleeping, FUTEX_WAIT_PRIVATE, 1);
            continue; /* woken, interrupted or spurious: the flag is re-armed and re-checked */
        }
        hk_spsc_store_(&c->ctl.rx_sleeping, 0, RELAXED);
        if ((r = hk_spsc_try_recv(rx, item)) != HK_SPSC_EMPTY) return r;
    }
}

static inline int hk_spsc_recv(hk_spsc_rx *rx, void **item) {
    int r = hk_spsc_try_recv(rx, item);
    if (__builtin_expect(r != HK_SPSC_EMPTY, 1)) return r;
    return hk_spsc_recv_slow_(rx, item);
}

/* Takes up to max items. A batch reader gives its slots back on every call, not once per view
 * as try_recv does: one store per batch is cheap, and a producer that is ahead then refills
 * those slots while the caller works on the batch instead of waiting for the whole view to
 * drain. A call that takes the rest of the view also looks for newer items; that load overlaps
 * the copy instead of stalling the next call. */
static inline size_t hk_spsc_read_n(hk_spsc_rx *rx, void **out, size_t max) {
    size_t avail = rx->tail_cache - rx->head;
    if (avail == 0) {
        hk_spsc_sync(rx);
        hk_spsc_rx_lag_(rx);
        avail = rx->tail_cache - rx->head;
    } else if (max >= avail) {
        hk_spsc_sync_read(rx); /* this call empties the view; avail keeps its old bound */
    }
    if (max > avail) max = avail;
    if (max == 0) return 0;
    size_t cap = rx->mask + 1;
    size_t at = rx->head & rx->mask;
    size_t first = cap - at;
    if (first > max) first = max;
    memcpy(out, rx->slots + at, first * sizeof(void *));
    memcpy(out + first, rx->slots, (max - first) * sizeof(void *));
    rx->head += max;
    hk_spsc_sync_write(rx);
    return max;
}

static inline void hk_spsc_close_rx(hk_spsc_rx *rx) {
    hk_spsc_chan *c = rx->chan;
    hk_spsc_store_(&c->ctl.rx_closed, 1, RELAXED);
    hk_spsc_release_(c);
}

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_SPSC_H */

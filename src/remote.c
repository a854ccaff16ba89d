/* Cross-thread frees. A block freed by a thread that does not own its page joins a batch
 * in the freeing thread's heap, one batch per destination page (two per size class); a
 * full batch, or the older one of its class when a third page needs one, goes to the
 * page's remote list with a single CAS. Only the freeing thread builds its batches, with
 * plain stores.
 * A batch is sent when it is full or old, when its thread next refills a page, trims or exits, and
 * otherwise by another thread once the heap has sent nothing for a reclaim period
 * (remote_reclaim_idle), so a thread that stops freeing strands nothing for long.
 * Never touches a page after the CAS that hands it blocks, except under RF_NOTIFYING (the
 * protocol is at RF_FULL in internal.h). */
#include <sched.h>

#include "harden.h"
#include "internal.h"

/* A batch is sent when it holds this many blocks or bytes. Bytes bound what one idle
 * thread keeps from others (REMOTE_SLOTS batches, under 2 MiB); blocks bound how long the first one waits. */
#define BATCH_BLOCKS 64
#define BATCH_BYTES ((uint32_t)16 << 10)
/* A batch is also sent once its thread has batched BATCH_AGE blocks since the batch's first
 * one (looked at every BATCH_SWEEP blocks, so none waits for BATCH_AGE + BATCH_SWEEP): the
 * blocks of a class it frees rarely would otherwise wait for 63 more, and the owner, which
 * cannot see them, touches fresh blocks meanwhile. Each class then keeps back about its share
 * of the thread's last few hundred frees, however many classes are in use. */
#define BATCH_AGE 256u
#define BATCH_SWEEP 128u
/* The shortest period between two looks for idle heaps' batches. */
#define RECLAIM_MIN_NS (10 * 1000000ull)

/* The freer that found a page on its owner's full list sets the owner's hint bit for the
 * class (so the owner collects before it takes a fresh page), then releases the page. */
HK_COLD static void notify_owner(segment_t *seg, page_t *pg) {
    heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_acquire);
    if (owner) /* NULL: abandoned; whoever reclaims the segment collects every page */
        atomic_fetch_or_explicit(&owner->remote_hint, 1ull << pg->class_idx, memory_order_release);
    atomic_fetch_and_explicit(&pg->remote_free, ~RF_NOTIFYING, memory_order_release);
}

/* Push the n blocks head..tail onto the page's remote list and add n to the list's count,
 * which rides in the same word (RF_COUNT), so the owner takes both at once and never walks
 * the list to count it. One CAS pushes the blocks and, if the page was on the owner's full
 * list, claims the duty to tell the owner (RF_FULL becomes RF_NOTIFYING). Before the push
 * the blocks pin the page; after it, only RF_NOTIFYING does. */
static void push_chain(page_t *pg, block_t *head, block_t *tail, uintptr_t n) {
    uintptr_t old = atomic_load_explicit(&pg->remote_free, memory_order_relaxed), next;
    do {
        hk_harden_set_next(tail, RF_LIST(old));
        uintptr_t count = RF_COUNT(old) + n;
        if (unlikely(count > RF_COUNT_MAX)) count = RF_COUNT_MAX;
        next = (uintptr_t)head | (old & RF_NOTIFYING) | ((old & RF_FULL) << 1) |
               (count << RF_COUNT_SHIFT);
    } while (!atomic_compare_exchange_weak_explicit(&pg->remote_free, &old, next,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (unlikely(old & RF_FULL)) notify_owner(hk_page_segment(pg), pg);
}

/* The hand-shake between a heap's thread and a thread that sends its batches for it
 * (an asymmetric Dekker): the owner thread announces itself with a plain store and checks
 * for a sender with a plain load; the sender sets batch_steal, then forces a barrier on
 * every thread (os_barrier_all) before it reads batch_busy. So either the owner sees the
 * sender and leaves the batches alone, or the sender sees the owner busy and backs off. */
static inline int batches_enter(heap_t *h) {
    atomic_store_explicit(&h->batch_busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    return atomic_load_explicit(&h->batch_steal, memory_order_acquire) == 0;
}

static inline void batches_leave(heap_t *h) {
    atomic_store_explicit(&h->batch_busy, 0, memory_order_release);
}

static inline void slot_set(heap_t *h, size_t i, int live) {
    uint64_t bit = 1ull << (i % 64);
    h->batch_live[i / 64] = live ? h->batch_live[i / 64] | bit : h->batch_live[i / 64] & ~bit;
}

/* Hand the batch's blocks to its page. The slot keeps the page, empty, so that the next
 * free into it starts a batch there without the miss path; an empty slot is given up once
 * it has stayed empty for BATCH_AGE (batch_sweep) or another page needs it. An empty slot's
 * page is only ever compared, never read: a block that matches it is a block of the page
 * that lives at that descriptor now, of the same class, so the batch's size holds. */
static void batch_send(heap_t *h, remote_batch_t *bt) {
    push_chain(bt->page, bt->head, bt->tail, (uintptr_t)(bt->cap - bt->room));
    bt->head = NULL;
    bt->room = bt->cap;
    bt->born = h->batch_ticks;
    atomic_store_explicit(&h->batch_count, atomic_load_explicit(&h->batch_count, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->batch_sends, atomic_load_explicit(&h->batch_sends, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* The first block of an empty batch whose slot kept its page. */
static inline void batch_restart(heap_t *h, remote_batch_t *bt, block_t *b) {
    bt->tail = b;
    bt->born = h->batch_ticks;
    atomic_store_explicit(&h->batch_count, atomic_load_explicit(&h->batch_count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void send_all(heap_t *h) {
    for (size_t i = 0; atomic_load_explicit(&h->batch_count, memory_order_relaxed) != 0 && i < REMOTE_SLOTS; i++)
        if (h->batches[i].head) batch_send(h, &h->batches[i]);
}

/* Every BATCH_SWEEP blocks, send the batches BATCH_AGE old and give up the slots empty that
 * long; only the slots in use are looked at (a walk of all of them every 128 frees cost 22
 * instructions per free). */
HK_NOINLINE static void batch_sweep(heap_t *h, uint32_t now) {
    for (size_t w = 0; w < sizeof h->batch_live / sizeof h->batch_live[0]; w++) {
        for (uint64_t bits = h->batch_live[w]; bits; bits &= bits - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
            remote_batch_t *bt = &h->batches[i];
            if (now - bt->born < BATCH_AGE) continue;
            if (bt->head) {
                batch_send(h, bt);
            } else {
                bt->page = NULL;
                slot_set(h, i, 0);
            }
        }
    }
}

/* One more block batched. The caller has entered the heap's batches. */
static inline void batch_tick(heap_t *h) {
    uint32_t now = ++h->batch_ticks;
    if (unlikely(now % BATCH_SWEEP == 0)) batch_sweep(h, now);
}

/* The calling thread's own heap: send every batch. A sender at work on them finishes first. */
void remote_flush(heap_t *h) {
    if (atomic_load_explicit(&h->batch_count, memory_order_relaxed) == 0) return;
    while (!batches_enter(h)) {
        batches_leave(h);
        sched_yield();
    }
    send_all(h);
    batches_leave(h);
}

static void batch_add(page_t *pg, block_t *b);

/* A block for no batch of its class yet, or one that cannot be batched: a thread that has
 * not allocated gets its heap here, so that its exit sends its batches; one past its exit
 * hand-off has nothing that would send them later, a large page's one block and a block
 * as big as a batch gain nothing from one, and a sender may be at work on this heap's
 * batches: those blocks go at once. Otherwise the older of the class's two batches goes
 * and the newer moves down. */
HK_NOINLINE static void remote_free_miss(heap_t *h, page_t *pg, block_t *b) {
    size_t cls = pg->class_idx;
    if (h == &hk_heap_empty &&
        (cls >= CLASS_COUNT || hk_heap_exited || (h = heap_init_thread()) == NULL)) {
        push_chain(pg, b, b, 1);
        return;
    }
    uint32_t room = cls < CLASS_COUNT ? BATCH_BYTES / pg->block_size : 0;
    if (room <= 1 || !batches_enter(h)) {
        batches_leave(h);
        push_chain(pg, b, b, 1);
        return;
    }
    remote_batch_t *bt = &h->batches[2 * cls];
    if (bt[0].page == pg || bt[1].page == pg) { /* a batch appeared: the heap was just made */
        batches_leave(h);
        batch_add(pg, b);
        return;
    }
    if (bt[1].head) batch_send(h, &bt[1]);
    bt[1] = bt[0];
    slot_set(h, 2 * cls + 1, bt[1].page != NULL);
    slot_set(h, 2 * cls, 1);
    bt->page = pg;
    bt->head = bt->tail = b;
    bt->cap = (uint16_t)(room < BATCH_BLOCKS ? room : BATCH_BLOCKS);
    bt->room = (uint16_t)(bt->cap - 1);
    bt->born = h->batch_ticks;
    atomic_store_explicit(&h->batch_count,
                          atomic_load_explicit(&h->batch_count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    batch_tick(h);
    batches_leave(h);
}

/* Add b, marked, to this thread's batch for pg. Each size class has two batches, the most
 * recently started first: a thread that frees what one other thread allocates fills one
 * batch per class, and one that frees what two threads allocate does not send a batch at
 * every free. */
static void batch_add(page_t *pg, block_t *b) {
    /* Neither the class (a large page's pair of slots stays empty) nor the heap is tested:
     * the empty heap's batches are empty too, and nothing ever sends them, so its
     * hand-shake flags are written but never read. Both go to remote_free_miss. */
    heap_t *h = hk_heap_tls;
    remote_batch_t *bt = &h->batches[2 * (size_t)pg->class_idx];
    if (likely(batches_enter(h)) && (likely(bt->page == pg) || (++bt)->page == pg)) {
        block_t *last = bt->head;
        hk_harden_set_next(b, last);
        bt->head = b;
        if (unlikely(last == NULL)) batch_restart(h, bt, b);
        if (unlikely(--bt->room == 0)) batch_send(h, bt);
        batch_tick(h);
        batches_leave(h);
        return;
    }
    batches_leave(h);
    remote_free_miss(h, pg, b);
}

/* b is a block start of pg (checked by the caller). The mark is set with one atomic
 * exchange, which also tells whether it was set: a block freed already, by this thread or
 * another, and of two threads that free the same block at once exactly one goes on. The
 * other reports it, and no block is ever pushed twice (the owner splices remote lists
 * without walking them, so a block pushed twice would make a cycle that malloc followed). */
void remote_free(page_t *pg, block_t *b) {
    if (unlikely(__atomic_exchange_n(&b->freed, (uintptr_t)pg, __ATOMIC_RELAXED) == (uintptr_t)pg)) {
        hk_heap_error("free", HK_ERR_DOUBLE, b, pg->block_size, 0);
        return;
    }
#ifdef HAKMEM_BUILD_STATS
    hk_heap_tls->st_remote[pg->class_idx]++; /* the freeing thread's heap (the empty heap's counts are dropped) */
#endif
    batch_add(pg, b);
}

/* Send the batches of heaps that have sent nothing since the last look (all heaps' when
 * forced), at most once per reclaim period unless forced. Called from slow paths of any
 * thread; takes the heaps lock, so never with a hakmem lock held. */
void remote_reclaim_idle(int force) {
    static _Atomic uint64_t next_look_ns;
    uint64_t now = os_now_ns(), period = (uint64_t)hk_opt.purge_delay_ms * 1000000u;
    if (period < RECLAIM_MIN_NS) period = RECLAIM_MIN_NS;
    uint64_t due = atomic_load_explicit(&next_look_ns, memory_order_relaxed);
    if (!force && (now < due || !atomic_compare_exchange_strong(&next_look_ns, &due, now + period)))
        return;
    heap_t *self = hk_heap_tls;
    int claimed = 0;
    heap_lock_all();
    for (heap_t *h = heap_live_list(); h; h = h->next_all) {
        if (h == self || atomic_load_explicit(&h->batch_count, memory_order_relaxed) == 0) continue;
        uint32_t sends = atomic_load_explicit(&h->batch_sends, memory_order_relaxed);
        if (!force && sends != h->steal_seen) { /* still active: look again next period */
            h->steal_seen = sends;
            continue;
        }
        atomic_store_explicit(&h->batch_steal, 1, memory_order_relaxed);
        claimed++;
    }
    int fenced = claimed && os_barrier_all();
    for (heap_t *h = heap_live_list(); claimed && h; h = h->next_all) {
        if (!atomic_load_explicit(&h->batch_steal, memory_order_relaxed)) continue;
        if (fenced && !atomic_load_explicit(&h->batch_busy, memory_order_acquire)) send_all(h);
        h->steal_seen = atomic_load_explicit(&h->batch_sends, memory_order_relaxed);
        atomic_store_explicit(&h->batch_steal, 0, memory_order_release);
    }
    heap_unlock_all();
}

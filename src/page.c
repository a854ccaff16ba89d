/* Pages: the per-class queues of a heap, lazy extension of fresh pages, collection of
 * remote frees, and moving pages between the queue and the full list.
 * Runs only on the owner thread of the heap; the one cross-thread word is remote_free
 * (its protocol is described at RF_FULL in internal.h). */
#include <sched.h>
#include <string.h>

#include "harden.h"
#include "internal.h"

/* Blocks carved per extension: about 4 KiB, so a fresh page is touched gradually. */
#define EXTEND_BYTES 4096

static void list_remove(page_queue_t *q, page_t *pg) {
    if (pg->prev) pg->prev->next = pg->next;
    else q->first = pg->next;
    if (pg->next) pg->next->prev = pg->prev;
    else q->last = pg->prev;
    pg->next = pg->prev = NULL;
}

static void list_push_back(page_queue_t *q, page_t *pg) {
    pg->next = NULL;
    pg->prev = q->last;
    if (q->last) q->last->next = pg;
    else q->first = pg;
    q->last = pg;
}

static void list_push_front(page_queue_t *q, page_t *pg) {
    pg->prev = NULL;
    pg->next = q->first;
    if (q->first) q->first->prev = pg;
    else q->last = pg;
    q->first = pg;
}

/* The direct table points every size up to DIRECT_MAX at the first page of its class queue. */
static void heap_direct_update(heap_t *h, size_t cls) {
    if (hk_class_size[cls] > DIRECT_MAX) return;
    page_t *pg = h->queues[cls].first ? h->queues[cls].first : &hk_page_empty;
    size_t lo = cls == 0 ? 0 : hk_class_size[cls - 1] / 16 + 1;
    size_t hi = hk_class_size[cls] / 16;
    for (size_t i = lo; i <= hi; i++) h->direct[i] = pg;
}

static void queue_remove(heap_t *h, page_t *pg) {
    page_queue_t *q = &h->queues[pg->class_idx];
    int was_first = q->first == pg;
    list_remove(q, pg);
    if (was_first) heap_direct_update(h, pg->class_idx);
}

static void queue_push_front(heap_t *h, page_t *pg) {
    list_push_front(&h->queues[pg->class_idx], pg);
    heap_direct_update(h, pg->class_idx);
}

/* Make pg, already in its class queue, the first page: one direct-table update, not two. */
static void queue_move_front(heap_t *h, page_t *pg) {
    page_queue_t *q = &h->queues[pg->class_idx];
    if (q->first == pg) return;
    list_remove(q, pg);
    queue_push_front(h, pg);
}

static void queue_push_back(heap_t *h, page_t *pg) {
    page_queue_t *q = &h->queues[pg->class_idx];
    list_push_back(q, pg);
    if (q->first == pg) heap_direct_update(h, pg->class_idx);
}

/* Make remote frees available to malloc. Returns the number of blocks taken. The list's
 * count comes with it in one word (RF_COUNT), so a page without free blocks, the common
 * case, takes the list as its free list without reading a block: no chain of loads
 * through lines the freers wrote. Its links are checked as malloc pops them, like those of
 * the page's own frees (the inline pop within a slice, hk_pop_far and pop_checked beyond).
 * A page that still has free blocks walks the list to find its tail, checking each link
 * and stopping at the count. */
static size_t page_collect(page_t *pg) {
    if ((atomic_load_explicit(&pg->remote_free, memory_order_relaxed) & ~RF_FLAGS) == 0) return 0;
    uintptr_t rf = atomic_fetch_and_explicit(&pg->remote_free, RF_FLAGS, memory_order_acquire);
    block_t *list = RF_LIST(rf);
    uint32_t n = RF_COUNT(rf);
    /* More blocks than are out: the count is damaged or saturated. Leak the list, the safe
     * choice (remote_free's exchange of the mark keeps a block from being pushed twice). */
    if (unlikely(n > pg->used || n == 0)) {
        hk_heap_error("free", HK_ERR_RACE, list, pg->block_size, 0);
        return 0;
    }
    if (likely(hk_free_none(pg->free))) {
        pg->free = list;
        pg->used -= n;
        return n;
    }
    block_t *tail = list, *next;
    for (uint32_t i = 1; (next = hk_harden_next(tail)) != NULL; i++) {
        if (unlikely(i == n || !hk_link_sound(pg, next))) { /* a write after free: cut it off */
            hk_heap_error("malloc", HK_ERR_LINK, tail, pg->block_size, (uintptr_t)tail->next);
            hk_harden_set_next(tail, NULL);
            break;
        }
        tail = next;
    }
    hk_harden_set_next(tail, pg->free);
    pg->free = list;
    pg->used -= n;
    return n;
}

static void page_extend(heap_t *h, page_t *pg) {
    size_t bsize = pg->block_size, usable = hk_page_usable(pg);
    /* By the usable size, not the stride: 2 KiB blocks (2112 apart) two at a time, as before
     * they were spaced (one at a time doubled the page_find calls of 2 KiB rounds). */
    size_t n = usable >= EXTEND_BYTES ? 1 : EXTEND_BYTES / usable;
    /* Blocks that start in slices still resident from the page before are carved in one go
     * (a page taken where an emptied one lay then refills without a page_find per 4 KiB, or
     * per block above 4 KiB). */
    if (pg->warm_slices) {
        size_t warm = ((size_t)pg->warm_slices * SLICE_SIZE -
                       hk_page_lead(pg)) / bsize;
        if (warm > pg->capacity + n) n = warm - pg->capacity;
    }
    size_t left = (size_t)pg->reserved - pg->capacity;
    if (n > left) n = left;
    uint8_t *first = (uint8_t *)pg->start + (size_t)pg->capacity * bsize;
    if (!hk_harden_carve(pg, first, n)) { /* marked free and linked, as a free leaves them */
        uint8_t *p = first;
        for (size_t i = 1; i < n; i++, p += bsize) {
            ((block_t *)p)->freed = (uintptr_t)pg;
            ((block_t *)p)->next = (block_t *)(p + bsize);
        }
        ((block_t *)p)->freed = (uintptr_t)pg;
        ((block_t *)p)->next = pg->free;
        pg->free = (block_t *)first;
    }
    pg->capacity += (uint16_t)n;
    hk_page_set_limit(pg);
    h->carved += n * bsize;
}

/* Wait until no remote freer is between its push and its hint (a few instructions,
 * unless that thread was preempted there). */
void page_await_notifier(page_t *pg) {
    for (unsigned spins = 0;
         atomic_load_explicit(&pg->remote_free, memory_order_acquire) & RF_NOTIFYING; spins++) {
        if (spins < 64) __builtin_ia32_pause();
        else sched_yield();
    }
}

/* Set RF_FULL so remote freers will tell us about their blocks. Returns 1 instead, without
 * setting it, if remote blocks are already waiting. */
static int page_mark_full(page_t *pg) {
    uintptr_t rf = atomic_load_explicit(&pg->remote_free, memory_order_relaxed);
    for (;;) {
        if (rf & ~RF_FLAGS) return 1;
        if (rf & RF_NOTIFYING) { /* one notifier at a time: wait for this one to finish */
            page_await_notifier(pg);
            rf = atomic_load_explicit(&pg->remote_free, memory_order_relaxed);
            continue;
        }
        /* release: a freer that sees RF_FULL also sees the segment's current owner */
        if (atomic_compare_exchange_weak_explicit(&pg->remote_free, &rf, rf | RF_FULL,
                                                  memory_order_release, memory_order_relaxed))
            return 0;
    }
}

/* A full page's `used` is parked at the number of owner frees it waits for before it goes
 * back to its queue (see page_t): 8 (an eighth of the page's blocks if fewer), so a refill
 * from it yields that many blocks instead of the one or two a page gets between random
 * frees. Figures for other counts are in architecture.md. A large page's count is always
 * true. */
#define FULL_WAIT_MAX 8u
static uint32_t full_wait(const page_t *pg) {
    uint32_t k = pg->reserved / 8u;
    return k == 0 ? 1 : k < FULL_WAIT_MAX ? k : FULL_WAIT_MAX;
}

static void used_park(page_t *pg) {
    if (pg->class_idx != LARGE_CLASS) pg->used = full_wait(pg);
}

/* The true count: every block was out when the page was parked, and each owner free since
 * took one off the parked count. */
static void used_unpark(page_t *pg) {
    if (pg->class_idx != LARGE_CLASS) pg->used = pg->reserved - (full_wait(pg) - pg->used);
}

/* pg leaves its heap's full list: the freers' mark goes with it. */
static void page_off_full(heap_t *h, page_t *pg) {
    list_remove(&h->full[pg->class_idx], pg);
    pg->in_full = 0;
    if (atomic_load_explicit(&pg->remote_free, memory_order_relaxed) & RF_FULL)
        atomic_fetch_and_explicit(&pg->remote_free, ~RF_FULL, memory_order_relaxed);
}

static void page_unfull(heap_t *h, page_t *pg) {
    page_off_full(h, pg);
    queue_push_back(h, pg);
}

/* pg leaves the heap's page counts. */
static void page_uncount(heap_t *h, const page_t *pg) {
    atomic_fetch_sub_explicit(&hk_counters.pages[pg->class_idx], 1, memory_order_relaxed);
    if (pg->class_idx != LARGE_CLASS) h->carved -= (size_t)pg->capacity * pg->block_size;
}

static void page_retire(heap_t *h, page_t *pg) {
    page_uncount(h, pg);
    seg_page_free(h, pg);
}

/* An emptied class page leaves its class's queue as a spare (seg_page_spare), for the
 * class's next page; with no purge delay its slices go back at once. */
static void page_retire_spare(heap_t *h, page_t *pg) {
    page_uncount(h, pg);
    if (hk_opt.purge_delay_ms == 0) seg_page_free(h, pg);
    else seg_page_spare(h, pg);
}

/* Move a page without free blocks to the full list. Marking and the freers' pushes act
 * on the one word remote_free, so a block pushed before the mark is seen here and one
 * pushed after it brings a hint. Returns 1 if the page turned out to have blocks after all
 * (it then stays in the queue). */
static int page_to_full(heap_t *h, page_t *pg) {
    if (page_mark_full(pg)) {
        page_collect(pg);
        return 1;
    }
    queue_remove(h, pg);
    pg->in_full = 1;
    used_park(pg); /* every block is out: used == reserved */
    list_push_back(&h->full[pg->class_idx], pg);
    return 0;
}

/* A heap's full pages that received remote frees: take those blocks back. A page that
 * emptied becomes its class's current page, kept empty like one the owner's frees emptied
 * (page_free_slow), unless the current page is empty already: a class whose blocks all go
 * to other threads and whose live count hovers around a page's worth would otherwise retire
 * and take fresh pages over and over, and a fresh page on the resident slices of a retired
 * one extends from its first block while all of them stay resident. */
static void collect_full(heap_t *h) {
    uint64_t bits = atomic_exchange(&h->remote_hint, 0);
    while (bits) {
        size_t cls = (size_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        page_t *next;
        for (page_t *pg = h->full[cls].first; pg; pg = next) {
            next = pg->next;
            if ((atomic_load_explicit(&pg->remote_free, memory_order_relaxed) & ~RF_FLAGS) == 0)
                continue;
            used_unpark(pg);
            page_collect(pg);
            page_t *cur = h->queues[cls].first;
            if (pg->used == 0 && (cls == LARGE_CLASS || (cur && cur->used == 0))) {
                page_off_full(h, pg);
                if (cls == LARGE_CLASS) page_retire(h, pg);
                else page_retire_spare(h, pg);
            } else if (pg->used == 0) {
                page_unfull(h, pg);
                queue_move_front(h, pg);
                h->empty_current |= 1ull << cls;
            } else if (cls != LARGE_CLASS && !hk_free_none(pg->free)) {
                page_unfull(h, pg);
            } else {
                used_park(pg); /* still full (its remote list was dropped as damaged) */
            }
        }
    }
}

static page_t *page_fresh(heap_t *h, size_t cls) {
    size_t slices = hk_class_slices[cls];
    size_t off = (h->aligned_classes >> cls) & 1 ? 0 : hk_class_offset(hk_class_size[cls]);
    page_t *pg = seg_spare_take(h, cls, off); /* carved already, every block free */
    if (pg) {
        atomic_fetch_add_explicit(&hk_counters.pages[cls], 1, memory_order_relaxed);
        h->carved += (size_t)pg->capacity * pg->block_size;
        pg->sparse_looks = 0;
        queue_push_front(h, pg);
        return pg;
    }
    /* The direct table's medium pages (a power of two of slices) at their natural
     * alignment: links between their slices then pass malloc's quick test. */
    size_t align = hk_class_size[cls] > SMALL_MAX && !hk_class_ranged(cls) ? slices : 1;
    pg = seg_page_alloc(h, slices, align, cls);
    if (!pg) return NULL;
    pg->class_idx = (uint8_t)cls;
    hk_page_set_block_size(pg, hk_class_size[cls] + off); /* the stride (KIB_CLASS_OFFSET) */
    pg->start += off;
    hk_harden_fresh_page(pg);
    pg->reserved = (uint16_t)((slices * SLICE_SIZE - off) / pg->block_size);
    hk_page_set_link(pg);
    hk_page_publish(pg);
    page_extend(h, pg);
    queue_push_front(h, pg);
    atomic_fetch_add_explicit(&hk_counters.pages[cls], 1, memory_order_relaxed);
    return pg;
}

/* Fresh pages per generation of retire_empty_current's thrash guard. */
#define RETIRE_GENERATION 4

/* A page that has carved no more than its first extension (page_extend): keeping it empty
 * keeps one block, or one 4 KiB page of small blocks, resident. */
static int carved_once(const page_t *pg) {
    size_t usable = hk_page_usable(pg);
    return (size_t)pg->capacity * usable <= (usable > EXTEND_BYTES ? usable : EXTEND_BYTES);
}

/* Bytes of carved blocks that emptied medium pages may keep beyond their first extension,
 * per heap: a segment's worth. */
#define KEEP_CARVED_MAX SEG_SIZE
/* Looks (fresh pages of other classes) in a row that may find such a page unused before it
 * goes back: 4 generations. */
#define KEEP_IDLE_LOOKS (4 * RETIRE_GENERATION)

/* Whether the empty current page of another class stays at a look of retire_empty_current.
 * A small-block page stays if its class is re-needed (keep_empty) and it has carved no more
 * than its first extension (`once`, carved_once). A medium page (blocks above 1 KiB: many
 * slices in one run, which the class's next fresh page would have to find again and carve
 * again) stays if `once`; if it has carved more, it stays while the pages kept this way
 * hold at most KEEP_CARVED_MAX bytes of carved blocks (*kept, summed over the look), until
 * KEEP_IDLE_LOOKS looks in a row find that its class has not emptied it again (`active`: it
 * has since the last look), so that a class left for good gives its page back, and, once
 * idle, not when the fresh page would raise committed memory past its peak (`growing`):
 * its slices serve that page instead. mimalloc-bench's mstress, whose threads empty every
 * class as they end, faulted 285 k times in 0.8 s when these pages went back
 * (architecture.md, "Peak RSS of medium blocks"). */
static int keep_empty_fits(heap_t *h, const page_t *pg, int once, int active, int growing,
                           size_t *kept) {
    size_t cls = pg->class_idx;
    int medium = hk_class_size[cls] > SMALL_MAX;
    if (once) return medium || (h->keep_empty >> cls & 1);
    if (!medium) return 0;
    size_t carved = (size_t)pg->capacity * pg->block_size;
    if (active) h->kept_looks[cls] = 0;
    if ((growing && !active) || h->kept_looks[cls] >= KEEP_IDLE_LOOKS ||
        *kept + carved > KEEP_CARVED_MAX)
        return 0;
    h->kept_looks[cls]++;
    *kept += carved;
    return 1;
}

/* Before a fresh page of class cls is taken: the current pages of other classes that emptied
 * since (kept so that a class hovering around one page does not thrash) go back to their
 * segments, so the fresh page can reuse their slices, unless keep_empty_fits keeps them.
 * Classes that take turns hovering between none and one live block would retire each
 * other's pages at every malloc this way, and the slices, unfit for the next fresh page, be
 * purged: a class that needs a fresh page within one or two generations of losing its page
 * keeps it from then on (keep_empty) while it has carved no more than its first extension.
 * A class used once and left is not needed again that soon, and a small-block page that
 * carved more goes back whatever its class. A medium page kept for what it carved waits in
 * kept_idle; a class's bit in empty_current says it emptied its page again. */
static void retire_empty_current(heap_t *h, size_t cls) {
    uint64_t self = 1ull << cls;
    if ((h->retired_recent[0] | h->retired_recent[1]) & self) h->keep_empty |= self;
    if (++h->fresh_pages % RETIRE_GENERATION == 0) {
        h->retired_recent[1] = h->retired_recent[0];
        h->retired_recent[0] = 0;
    }
    uint64_t emptied = h->empty_current & ~self, bits = emptied | (h->kept_idle & ~self);
    h->empty_current &= self;
    h->kept_idle = 0; /* set again below for those kept; cls itself is in use */
    if (!bits) return;
    int growing = atomic_load_explicit(&hk_counters.committed, memory_order_relaxed) +
                      (int64_t)(hk_class_slices[cls] * SLICE_SIZE) >
                  atomic_load_explicit(&hk_counters.committed_peak, memory_order_relaxed);
    size_t kept = 0;
    while (bits) {
        size_t c = (size_t)__builtin_ctzll(bits);
        uint64_t bit = 1ull << c;
        bits &= bits - 1;
        page_t *pg = h->queues[c].first;
        if (!pg || pg->used != 0) continue;
        int once = carved_once(pg);
        if (keep_empty_fits(h, pg, once, (emptied & bit) != 0, growing, &kept)) {
            if (once) h->empty_current |= bit;
            else h->kept_idle |= bit;
            continue;
        }
        queue_remove(h, pg);
        page_retire(h, pg);
        h->retired_recent[0] |= bit;
    }
}

/* Looks at which a page must be found nearly empty, with no page_find handing out its blocks
 * in between, before its free blocks are given back: a page that a class's live count only
 * passes through would be refilled (and refaulted) at once. */
#define SPARSE_LOOKS 3

/* RSS is about to grow (src/segment.c, no resident free run fits): give back the inner 4 KiB
 * pages of the free blocks of this heap's pages that stay nearly empty (an eighth or less of
 * the blocks in use, SPARSE_LOOKS times in a row), whose few live blocks would otherwise keep
 * every page their class ever wrote resident for as long as they live: a medium page holds
 * 128 blocks, 1 MiB of 8 KiB blocks. A block's first page keeps its link and mark; blocks of
 * one page (4 KiB and less) have nothing to give. Once per page until page_find hands out its
 * blocks again. Not in the hardened build, whose free blocks carry their fill pattern. */
void page_purge_sparse(heap_t *h) {
    if (HAKMEM_HARDENED) return;
    for (size_t cls = SMALL_CLASSES; cls < CLASS_COUNT; cls++) {
        if (hk_class_size[cls] < 2 * 4096) continue;
        for (page_t *pg = h->queues[cls].first; pg; pg = pg->next) {
            if ((size_t)pg->used * 8 > pg->reserved) {
                pg->sparse_looks = 0;
                continue;
            }
            if (pg->sparse_looks >= SPARSE_LOOKS || ++pg->sparse_looks < SPARSE_LOOKS) continue;
            size_t n = (size_t)pg->capacity - pg->used; /* free blocks: bounds the walk */
            for (block_t *b = pg->free; !hk_list_end(b) && n; b = hk_harden_next(b), n--) {
                uintptr_t lo = ((uintptr_t)b + sizeof(block_t) + 4095) & ~(uintptr_t)4095;
                uintptr_t hi = ((uintptr_t)b + pg->block_size) & ~(uintptr_t)4095;
                if (hi > lo) os_purge((void *)lo, hi - lo);
            }
        }
    }
}

/* The queue walk of page_find and page_find_aligned: the first page of the class's queue
 * that has a free block (remote frees collected on the way), made the current page; NULL if
 * none, with *extendable set to the first page that can still be extended. Pages whose first
 * block is not aligned to `align` are passed over, and retired when they hold no block. */
static inline __attribute__((always_inline)) page_t *queue_pick(heap_t *h, size_t cls, size_t align,
                                                              page_t **extendable) {
    page_t *next;
    *extendable = NULL;
    for (page_t *pg = h->queues[cls].first; pg; pg = next) {
        next = pg->next;
        if ((pg->start & (align - 1)) != 0) {
            if (pg->used == 0) {
                queue_remove(h, pg);
                page_retire(h, pg);
            }
            continue;
        }
        if (hk_free_none(pg->free)) page_collect(pg); /* one with free blocks can wait */
        /* Blocks already touched come before fresh ones: extend only when no page of the
         * class has a free block (keeps RSS at the working set with big medium pages). */
        if (hk_free_none(pg->free) && pg->capacity < pg->reserved) {
            if (!*extendable) *extendable = pg;
            continue;
        }
        if (!hk_free_none(pg->free) || page_to_full(h, pg)) {
            queue_move_front(h, pg);
            pg->sparse_looks = 0;
            return pg;
        }
    }
    return NULL;
}

/* Extend pg and make it the class's current page. */
static page_t *extend_current(heap_t *h, page_t *pg) {
    pg->sparse_looks = 0;
    page_extend(h, pg);
    queue_move_front(h, pg);
    return pg;
}

/* 1 when pg, a page of a class above DIRECT_MAX, would carve its next block past the slices
 * it found resident while a page of its class emptied since the heap's last purge and left
 * its memory resident (as free slices or a spare): a fresh page there finds its blocks' 4 KiB
 * pages written already, where the extension faults (a batch of 1000 blocks of 16 KiB freed
 * and allocated again: the last, partly carved page stays the class's current page and was
 * extended over fresh memory, 216 faults a round). page_find takes the mark away when the
 * fresh page found no such memory, so the class's pages are extended again from then on. */
static int resident_before_extend(heap_t *h, const page_t *pg) {
    if (!hk_class_ranged(pg->class_idx)) return 0;
    uint64_t resident = atomic_load_explicit(&h->freed_classes, memory_order_relaxed) |
                        atomic_load_explicit(&h->spare_classes, memory_order_relaxed);
    if (!(resident >> pg->class_idx & 1)) return 0;
    size_t next = hk_page_lead(pg) + (size_t)pg->capacity * pg->block_size;
    return next >= (size_t)pg->warm_slices * SLICE_SIZE;
}

/* Find a page of class `cls` with a free block and make it the class's current page. */
page_t *page_find(heap_t *h, size_t cls) {
    /* A refill is where this thread's pending remote frees go out: a thread that keeps
     * allocating sends them within a page's worth of mallocs. */
    if (h->batch_count) remote_flush(h);
    int skipped = 0; /* an extension left for a fresh page (resident_before_extend) */
    for (int round = 0; round < 2; round++) {
        page_t *extendable, *pg = queue_pick(h, cls, 1, &extendable);
        if (pg) return pg;
        /* Full pages that got remote frees come before fresh blocks of a page: a class
         * whose blocks are freed by other threads would otherwise touch its page's blocks
         * while as many wait on the full list. */
        int hinted = atomic_load_explicit(&h->remote_hint, memory_order_relaxed) != 0;
        if (extendable && !(round == 0 && hinted)) {
            if (!resident_before_extend(h, extendable)) return extend_current(h, extendable);
            skipped = 1;
        }
        if (!hinted) break;
        collect_full(h);
    }
    retire_empty_current(h, cls);
    seg_purge_heap(h, 0);
    remote_reclaim_idle(0); /* idle threads' batches may hold blocks that spare a fresh page */
    heap_orphans_due(0);    /* and exited threads' heaps nobody adopted, whole segments */
    page_t *pg = page_fresh(h, cls);
    if (skipped && pg && pg->warm_slices == 0 && pg->capacity < pg->reserved)
        atomic_fetch_and_explicit(&h->freed_classes, ~(1ull << cls), memory_order_relaxed);
    return pg;
}

/* A page of class cls with a free block whose blocks are aligned to `align`, made the class's
 * current page. The class's block size is a multiple of `align` (size_class_aligned), so that
 * is a page whose first block is aligned: one without KIB_CLASS_OFFSET. From the first such
 * request on, the heap's new pages of the class start at the page start. The queue is searched
 * as page_find does (touched blocks before fresh ones) among the aligned pages; older pages
 * with the offset that hold no block are retired on the way. When none has a block to give,
 * page_find's choice, or a fresh page if that is one with the offset. */
page_t *page_find_aligned(heap_t *h, size_t cls, size_t align) {
    h->aligned_classes |= 1ull << cls;
    page_t *extendable, *pg = queue_pick(h, cls, align, &extendable);
    if (pg) return pg;
    if (extendable) return extend_current(h, extendable);
    pg = page_find(h, cls);
    if (pg == NULL || (pg->start & (align - 1)) == 0) return pg;
    return page_fresh(h, cls);
}

/* Owner-side free that emptied a page or hit a full one. */
void page_free_slow(heap_t *h, page_t *pg) {
    size_t cls = pg->class_idx;
    if (cls == LARGE_CLASS) {
        list_remove(&h->full[LARGE_CLASS], pg);
        pg->in_full = 0;
        page_retire(h, pg);
        purger_poll();
        return;
    }
    if (pg->in_full) { /* the owner frees this full page waited for have come */
        used_unpark(pg);
        page_unfull(h, pg);
    }
    /* An empty page goes back to its segment unless it is the class's current page,
     * which stays so that a class hovering around one page does not thrash. */
    if (pg->used == 0 && h->queues[cls].first != pg) {
        queue_remove(h, pg);
        page_retire_spare(h, pg);
    } else if (pg->used == 0) {
        h->empty_current |= 1ull << cls;
    }
    purger_poll();
}

/* Take over a page of a reclaimed segment: sort it into this heap's queue or full list.
 * Returns 0, leaving it untouched otherwise, if the page is empty: the caller frees it. */
int page_adopt(heap_t *h, page_t *pg) {
    pg->next = pg->prev = NULL;
    if (pg->in_full) used_unpark(pg);
    pg->in_full = 0;
    atomic_fetch_and_explicit(&pg->remote_free, ~RF_FULL, memory_order_relaxed);
    page_collect(pg);
    if (pg->used == 0) return 0;
    if (pg->class_idx == LARGE_CLASS) {
        if (page_mark_full(pg)) {
            page_collect(pg); /* the one block came back */
            return 0;
        }
        pg->in_full = 1;
        list_push_back(&h->full[LARGE_CLASS], pg);
        return 1;
    }
    queue_push_back(h, pg);
    h->carved += (size_t)pg->capacity * pg->block_size;
    if (hk_free_none(pg->free) && pg->capacity == pg->reserved) page_to_full(h, pg);
    return 1;
}

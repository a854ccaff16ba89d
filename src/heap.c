/* Thread heaps: creation on a thread's first allocation, the registry of live heaps,
 * the pool that recycles heap structures (they are never unmapped, so a stale pointer
 * to one is always safe to read), and the thread-exit hand-off of a whole heap to the next
 * thread (orphans), or of its segments to the abandoned list when nobody takes it. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "harden.h"
#include "internal.h"

__thread heap_t *hk_heap_tls __attribute__((tls_model("initial-exec"))) = &hk_heap_empty;
/* Set once the thread's heap has been handed off at exit: later frees (other libraries'
 * thread-exit destructors) must not create a heap that nothing would hand off again. */
__thread uint8_t hk_heap_exited __attribute__((tls_model("initial-exec")));
const uintptr_t hk_free_end[2] = {(uintptr_t)&hk_free_end[1], (uintptr_t)&hk_free_end[0]};
/* The page of a class with none (and of every class of the empty heap): its list is empty,
 * and its link mask fails any link, so malloc's pop takes the cold path. Threads that have
 * no heap yet store its head concurrently, each an end marker (hk_pop_quick). */
page_t hk_page_empty = {.free = HK_FREE_END, .link_mask = ~(uintptr_t)0};
/* A thread that never allocated points here: every lookup misses into the slow path. */
heap_t hk_heap_empty = {.direct = {[0 ... DIRECT_COUNT - 1] = &hk_page_empty}};

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static heap_t *heaps_live, *heaps_pool;
static heap_t *heaps_orphans; /* exited threads' heaps, on the live list too; newest first */
static _Atomic long orphan_count; /* lets a look for due orphans skip the lock */
static _Atomic long heap_threads; /* live threads that have a heap (thread_id != 0) */
static uint8_t *meta_cursor, *meta_end;
static pthread_key_t heap_key;
static int heap_key_ready;
#ifdef HAKMEM_BUILD_STATS
static uint64_t dead_alloc[CLASS_COUNT + 2], dead_free[CLASS_COUNT + 2], dead_remote[CLASS_COUNT + 2];
#endif

#define META_CHUNK ((size_t)64 << 10)

static heap_t *heap_carve(void) {
    size_t size = (sizeof(heap_t) + 63) & ~(size_t)63;
    if (meta_cursor == NULL || meta_cursor + size > meta_end) {
        meta_cursor = os_map(META_CHUNK);
        if (!meta_cursor) return NULL;
        meta_end = meta_cursor + META_CHUNK;
    }
    heap_t *h = (heap_t *)meta_cursor;
    meta_cursor += size;
    return h;
}

/* Merge a heap's statistics into the dead threads' totals; the caller holds heaps_lock. */
static void heap_stats_retire(heap_t *h) {
#ifdef HAKMEM_BUILD_STATS
    for (size_t c = 0; c < CLASS_COUNT + 2; c++) {
        dead_alloc[c] += h->st_alloc[c];
        dead_free[c] += h->st_free[c];
        dead_remote[c] += h->st_remote[c];
    }
#else
    (void)h;
#endif
}

/* Thread exit: the heap becomes an orphan, kept whole (queues, pages, segments, direct
 * table) on the live list for the next thread to adopt, so a program whose threads come and
 * go hands each new thread a warm heap instead of a walk of abandoned segments. Its segments
 * have no owner meanwhile, so every free into them takes the remote path; seg->heap still
 * names the heap, so a remote freer's hint reaches whoever adopts it. An orphan nobody adopts
 * within the purge delay is dissolved (heap_orphans_due): its segments go to the abandoned
 * list for live threads to reclaim. */
static void heap_thread_exit(void *arg) {
    heap_t *h = arg;
    if (h == NULL || h == &hk_heap_empty) return;
    hk_harden_thread_exit(); /* may free into other threads' pages: before the flush */
    remote_flush(h);
    seg_set_owner_all(h, HK_OWNER_NONE);
    pthread_mutex_lock(&heaps_lock);
    h->thread_id = 0;
    atomic_fetch_sub_explicit(&heap_threads, 1, memory_order_relaxed);
    h->orphaned_ns = os_now_ns();
    h->next_orphan = heaps_orphans;
    heaps_orphans = h;
    atomic_fetch_add_explicit(&orphan_count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&heaps_lock);
    hk_heap_tls = &hk_heap_empty;
    hk_heap_exited = 1;
    purger_thread_exit();
}

/* Take h off the live list into the pool; the caller holds heaps_lock. */
static void heap_unlink(heap_t *h) {
    heap_stats_retire(h);
    for (heap_t **pp = &heaps_live; *pp; pp = &(*pp)->next_all) {
        if (*pp == h) {
            *pp = h->next_all;
            break;
        }
    }
    h->next_all = heaps_pool;
    heaps_pool = h;
}

/* Dissolve the orphans that have waited the purge delay (all when forced): their segments
 * go to the abandoned list, the heap structures to the pool. The time the next one falls
 * due, or 0. Called with no hakmem lock held. */
uint64_t heap_orphans_due(int force) {
    if (atomic_load_explicit(&orphan_count, memory_order_relaxed) == 0) return 0;
    uint64_t now = os_now_ns(), delay = (uint64_t)hk_opt.purge_delay_ms * 1000000u, due = 0;
    pthread_mutex_lock(&heaps_lock);
    for (heap_t **pp = &heaps_orphans; *pp;) {
        heap_t *h = *pp;
        if (!force && now < h->orphaned_ns + delay) {
            if (due == 0 || h->orphaned_ns + delay < due) due = h->orphaned_ns + delay;
            pp = &h->next_orphan;
            continue;
        }
        *pp = h->next_orphan;
        atomic_fetch_sub_explicit(&orphan_count, 1, memory_order_relaxed);
        seg_abandon_all(h);
        heap_unlink(h);
    }
    pthread_mutex_unlock(&heaps_lock);
    return due;
}

void heap_process_init(void) {
    if (pthread_key_create(&heap_key, heap_thread_exit) == 0) heap_key_ready = 1;
}

heap_t *heap_init_thread(void) {
    hk_process_init();
    pthread_mutex_lock(&heaps_lock);
    /* The orphan that has carved the most blocks, the newest of equals (its lines are the
     * warmest): a program whose threads mostly come one at a time keeps one heap busy, and
     * the heaps made while several ran at once stay the size those moments needed. Taking
     * the newest moved the busy role to whichever thread exited last, so every heap grew to
     * the busiest one's size (figures in architecture.md, "Thread heaps"). */
    heap_t **pick = &heaps_orphans, *h;
    for (heap_t **pp = &heaps_orphans; *pp; pp = &(*pp)->next_orphan)
        if ((*pp)->carved > (*pick)->carved) pick = pp;
    h = *pick;
    if (h) {
        *pick = h->next_orphan;
        atomic_fetch_sub_explicit(&orphan_count, 1, memory_order_relaxed);
        h->thread_id = hk_thread_self();
        atomic_fetch_add_explicit(&heap_threads, 1, memory_order_relaxed);
        pthread_mutex_unlock(&heaps_lock);
        seg_set_owner_all(h, h->thread_id);
        hk_heap_tls = h;
        if (heap_key_ready) pthread_setspecific(heap_key, h);
        return h;
    }
    h = heaps_pool;
    if (h) heaps_pool = h->next_all;
    else h = heap_carve();
    if (h) {
        /* A freer that read seg->heap before the heap's segments left it may still set a
         * hint bit (harmless: a needless look at a full list); the word is cleared with an
         * atomic store around the memsets so the two never race. */
        size_t hint = offsetof(heap_t, remote_hint), after = hint + sizeof h->remote_hint;
        memset(h, 0, hint);
        atomic_store_explicit(&h->remote_hint, 0, memory_order_relaxed);
        memset((char *)h + after, 0, sizeof *h - after);
        pthread_mutex_init(&h->seg_lock, NULL);
        for (size_t i = 0; i < DIRECT_COUNT; i++) h->direct[i] = &hk_page_empty;
        h->thread_id = hk_thread_self();
        atomic_fetch_add_explicit(&heap_threads, 1, memory_order_relaxed);
        h->next_all = heaps_live;
        heaps_live = h;
    }
    pthread_mutex_unlock(&heaps_lock);
    if (!h) return NULL;
    hk_heap_tls = h;
    if (heap_key_ready) pthread_setspecific(heap_key, h);
    return h;
}

void heap_lock_all(void) { pthread_mutex_lock(&heaps_lock); }
void heap_unlock_all(void) { pthread_mutex_unlock(&heaps_lock); }
/* 1 while a thread that has a heap lives (the caller's own included, before its exit). */
int heap_threads_live(void) { return atomic_load_explicit(&heap_threads, memory_order_acquire) != 0; }
/* The live heaps, linked by next_all; the caller holds heap_lock_all(). */
heap_t *heap_live_list(void) { return heaps_live; }

/* In a fork child only the forking thread survives. The other heaps may have been caught
 * mid-operation, so their segments are never reused: they are marked as owned by no thread,
 * which sends every free into them down the remote path. Orphans were not (fork holds
 * heaps_lock, under which they are made and adopted, and the purger is between passes):
 * their segments go to the abandoned list, for the child to reclaim. */
void heap_after_fork_child(void) {
    heap_t *self = hk_heap_tls, *next;
    for (heap_t *o = heaps_orphans; o; o = next) {
        next = o->next_orphan;
        pthread_mutex_init(&o->seg_lock, NULL);
        seg_abandon_all(o);
        heap_unlink(o);
    }
    heaps_orphans = NULL;
    atomic_store_explicit(&orphan_count, 0, memory_order_relaxed);
    heap_t *h = heaps_live;
    heaps_live = NULL;
    for (; h; h = next) {
        next = h->next_all;
        if (h == self) {
            h->next_all = heaps_live;
            heaps_live = h;
            continue;
        }
        for (segment_t *seg = h->segments; seg; seg = seg->next) {
            hk_segment_set_owner(seg, HK_OWNER_NONE);
            atomic_store(&seg->heap, NULL);
        }
        h->segments = NULL;
        h->next_all = heaps_pool;
        heaps_pool = h;
    }
    if (self == &hk_heap_empty) self = NULL;
    atomic_store_explicit(&heap_threads, self != NULL, memory_order_relaxed);
    seg_after_fork_child(self);
    if (self) /* every class, the large pseudo-class included */
        atomic_store_explicit(&self->remote_hint, (2ull << LARGE_CLASS) - 1, memory_order_relaxed);
}

/* For the purger: purge every live heap whose purge deadline has passed, idle or blocked
 * threads' heaps included; the earliest deadline still ahead, or 0. Heaps cannot leave the
 * live list while heaps_lock is held, and their segments only change under their seg_lock. */
uint64_t heap_purge_due(uint64_t now) {
    uint64_t next = 0;
    pthread_mutex_lock(&heaps_lock);
    for (heap_t *h = heaps_live; h; h = h->next_all) {
        uint64_t due = seg_purge_due(h, now);
        if (due && (next == 0 || due < next)) next = due;
    }
    pthread_mutex_unlock(&heaps_lock);
    return next;
}

void heap_stats_merge(uint64_t *allocs, uint64_t *frees, uint64_t *remote) {
#ifdef HAKMEM_BUILD_STATS
    pthread_mutex_lock(&heaps_lock);
    for (size_t c = 0; c < CLASS_COUNT + 2; c++) {
        allocs[c] = dead_alloc[c];
        frees[c] = dead_free[c];
        remote[c] = dead_remote[c];
    }
    for (heap_t *h = heaps_live; h; h = h->next_all)
        for (size_t c = 0; c < CLASS_COUNT + 2; c++) {
            allocs[c] += h->st_alloc[c];
            frees[c] += h->st_free[c];
            remote[c] += h->st_remote[c];
        }
    pthread_mutex_unlock(&heaps_lock);
#else
    (void)allocs;
    (void)frees;
    (void)remote;
#endif
}

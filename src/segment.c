/* Segments: SEG_SIZE-aligned regions carved into slice runs (pages), the per-heap segment
 * list, delayed purging of free slices, the cache of empty segments, and abandoning and
 * reclaiming the segments of exited threads. A heap's segment list and slice bitmaps are
 * touched only under its seg_lock: by the owner, or by the purger (src/purger.c). */
#include <pthread.h>
#include <string.h>

#include "harden.h"
#include "internal.h"

/* A heap's spare pages hold at most a segment's worth of slices (seg_page_spare). */
#define SPARE_SLICES SLICES_PER_SEG

#define USABLE_SLICES hk_harden_usable_slices(~1ull) /* slice 0 is the header */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static segment_t *cache_list;
static long cache_count;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static segment_t *abandoned_list;
static _Atomic long abandoned_count; /* lets a reclaim attempt skip the lock */

_Atomic uintptr_t *hk_seg_owner;
_Atomic uintptr_t hk_seg_count;

/* Map the segment map (see internal.h), the segment window's (src/seg_window.c). Without
 * it no segment can be registered, so every allocation fails with ENOMEM; the fast paths
 * see a count of 0 and send every free to the slow path. Returns 1 on success. */
int seg_map_init(void) {
    if (atomic_load_explicit(&hk_seg_count, memory_order_relaxed)) return 1;
    size_t count;
    void *map = seg_window_open(&count);
    if (map == NULL) return 0;
    hk_seg_owner = map;
    atomic_store_explicit(&hk_seg_count, count, memory_order_release);
    return 1;
}

static void seg_list_push(segment_t **list, segment_t *seg) {
    seg->prev = NULL;
    seg->next = *list;
    if (*list) (*list)->prev = seg;
    *list = seg;
}

static void seg_list_remove(segment_t **list, segment_t *seg) {
    if (seg->prev) seg->prev->next = seg->next;
    else *list = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    seg->next = seg->prev = NULL;
}

static int64_t dirty_bytes(const segment_t *seg) {
    return (int64_t)__builtin_popcountll(seg->dirty_mask) * (int64_t)SLICE_SIZE;
}

static void seg_unmap(segment_t *seg) {
    stats_add(&hk_counters.committed, &hk_counters.committed_peak, -dirty_bytes(seg));
    stats_add(&hk_counters.seg_count, &hk_counters.seg_peak, -1);
    stats_add(&hk_counters.mapped, &hk_counters.mapped_peak, -(int64_t)SEG_SIZE);
    hk_segment_set_owner(seg, 0);
    os_unmap(seg, SEG_SIZE);
}

/* Purge the resident-but-free slices of `mask` in a segment, one madvise per maximal run. */
static void seg_purge_slices(segment_t *seg, uint64_t mask) {
    uint64_t d = seg->dirty_mask & mask;
    stats_add(&hk_counters.committed, &hk_counters.committed_peak,
              -(int64_t)__builtin_popcountll(d) * (int64_t)SLICE_SIZE);
    seg->dirty_mask &= ~d;
    seg->full_mask &= ~d;
    seg->warm_mask &= ~d;
    while (d) {
        size_t first = (size_t)__builtin_ctzll(d);
        size_t len = (size_t)__builtin_ctzll(~(d >> first)); /* bit 63 set -> ~ has a zero */
        if (first + len > 64) len = 64 - first;
        os_purge((uint8_t *)seg + first * SLICE_SIZE, len * SLICE_SIZE);
        d &= ~hk_slice_run_mask(first, len);
    }
}

static void seg_purge(segment_t *seg) { seg_purge_slices(seg, seg->dirty_mask); }

/* Drop cached segments older than the purge delay (all of them when forced). */
int seg_cache_trim(int force) {
    uint64_t now = os_now_ns(), delay = (uint64_t)hk_opt.purge_delay_ms * 1000000u;
    segment_t *expired = NULL, *next;
    pthread_mutex_lock(&cache_lock);
    for (segment_t *seg = cache_list; seg; seg = next) {
        next = seg->next;
        if (force || now - seg->cached_at_ns >= delay) {
            seg_list_remove(&cache_list, seg);
            cache_count--;
            seg_list_push(&expired, seg);
        }
    }
    pthread_mutex_unlock(&cache_lock);
    int released = expired != NULL;
    for (segment_t *seg = expired; seg; seg = next) {
        next = seg->next;
        seg_unmap(seg);
    }
    return released;
}

/* The time the oldest segment of a list (linked by next, stamped cached_at_ns) has waited
 * the purge delay, or 0 for an empty list. The caller holds the list's lock. */
uint64_t seg_list_due(const segment_t *list) {
    uint64_t delay = (uint64_t)hk_opt.purge_delay_ms * 1000000u, due = 0;
    for (const segment_t *seg = list; seg; seg = seg->next)
        if (due == 0 || seg->cached_at_ns + delay < due) due = seg->cached_at_ns + delay;
    return due;
}

/* For the purger: drop expired cached segments; the time the next one expires, or 0. */
uint64_t seg_cache_due(void) {
    seg_cache_trim(0);
    pthread_mutex_lock(&cache_lock);
    uint64_t due = seg_list_due(cache_list);
    pthread_mutex_unlock(&cache_lock);
    return due;
}

/* An empty segment goes to the cache with its resident slices, which wait out the purge
 * delay there (the segment is unmapped then). A heap that has no resident run for a page
 * takes a cached segment that has one before it writes clean slices
 * (seg_cache_take_resident), and one with resident slices first when it needs a segment
 * (seg_obtain), so the cached pages are reused without faults rather than stay resident
 * beside fresh ones. */
static void seg_release(segment_t *seg) {
    hk_segment_set_owner(seg, HK_OWNER_NONE);
    atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
    if (hk_opt.purge_delay_ms == 0) seg_purge(seg);
    seg->cached_at_ns = os_now_ns();
    pthread_mutex_lock(&cache_lock);
    if (cache_count < hk_opt.segment_cache) {
        seg_list_push(&cache_list, seg);
        cache_count++;
        seg = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (seg) seg_unmap(seg);
    seg_cache_trim(0);
}

static segment_t *seg_obtain(void) {
    pthread_mutex_lock(&cache_lock);
    segment_t *seg = cache_list; /* the last cached, unless another has resident slices */
    for (segment_t *c = cache_list; c && seg && !seg->dirty_mask; c = c->next)
        if (c->dirty_mask) seg = c;
    if (seg) {
        seg_list_remove(&cache_list, seg);
        cache_count--;
    }
    pthread_mutex_unlock(&cache_lock);
    if (seg) return seg;
    if (!seg_map_init()) return NULL;
    seg = seg_os_map(SEG_SIZE, SEG_SIZE, 0);
    if (!seg) return NULL;
    /* Fresh mappings read as zero: every slice descriptor starts free and empty. */
    seg->slices = seg->slice_store + seg_colour(seg);
    for (size_t i = 0; i < SLICES_PER_SEG; i++) seg->page_map[i] = &seg->slices[i];
    seg->kind = SEG_NORMAL;
    seg->free_mask = USABLE_SLICES;
    hk_harden_new_segment(seg);
    stats_add(&hk_counters.seg_count, &hk_counters.seg_peak, 1);
    stats_add(&hk_counters.mapped, &hk_counters.mapped_peak, (int64_t)SEG_SIZE);
    hk_segment_set_owner(seg, HK_OWNER_NONE);
    return seg;
}

/* Bits i where `mask` holds a run of `k` set bits from i (k >= 1): runs of `len` doubled
 * until len reaches k, in log2(k) shift-and steps. */
static uint64_t run_starts(uint64_t mask, size_t k) {
    uint64_t x = mask;
    size_t len = 1;
    for (; x && 2 * len <= k; len *= 2) x &= x >> len;
    if (len < k) x &= x >> (k - len);
    return x;
}

/* Bits 0, align, 2 * align, ... (align a power of two up to 32). */
static uint64_t align_starts(size_t align) { return ~0ull / ((1ull << align) - 1); }

/* Index of the first run of `k` set bits in `mask` starting at a multiple of `align` (a
 * power of two up to 32), or -1. */
static int find_run(uint64_t mask, size_t k, size_t align) {
    if (align > 1 && align == k) { /* a page of a power of two of slices: test each place */
        uint64_t run = hk_slice_run_mask(0, k);
        for (size_t i = 0; i < SLICES_PER_SEG; i += k)
            if (((mask >> i) & run) == run) return (int)i;
        return -1;
    }
    uint64_t x = run_starts(mask, k) & align_starts(align);
    return x ? __builtin_ctzll(x) : -1;
}

/* Index of the first run of `k` set bits in `mask` that starts at a multiple of `align` and
 * holds a bit of `touch`, or -1. */
static int find_run_touching(uint64_t mask, uint64_t touch, size_t k, size_t align) {
    uint64_t near = touch; /* bits i with a bit of touch in [i, i+k) */
    for (size_t len = 1; len < k; len *= 2) near |= near >> (len < k - len ? len : k - len);
    uint64_t x = run_starts(mask, k) & near & align_starts(align);
    return x ? __builtin_ctzll(x) : -1;
}

/* Take slices first..first+k-1 for a page of class cls (LARGE_CLASS: a run). Resident slices
 * that a page of smaller blocks wrote are purged first when a page of bigger blocks of more
 * than two 4 KiB pages takes them: a block written in part the same way (its ends, a header,
 * the first bytes) touches a smaller share of its memory the bigger it is, and one of more
 * than two pages can leave pages between its ends untouched, so the bigger blocks would keep
 * pages the smaller ones wrote resident and unused under a live page, where no purge reaches
 * them (patterns_medium, 16 KiB then 32 KiB blocks: 4 MiB of them). A page of the same or
 * smaller blocks, or of blocks of two pages or less, writes at least as much of each slice
 * and takes them as they are (figures in architecture.md, "Medium blocks"). */
/* How many of the k slices from `first` a class page can carve without a page fault: free
 * slices still resident (not purged since) whose last page carved blocks across them
 * (warm_mask), of the same class (the same block grid, so the links fall in the 4 KiB pages
 * it wrote) or of blocks of 4 KiB or less (whose links wrote every 4 KiB page). Counted from
 * `first`, up to the first that is not. */
static size_t warm_slices(const segment_t *seg, size_t first, size_t k, size_t cls) {
    if (cls == LARGE_CLASS) return 0;
    size_t j = 0;
    for (; j < k; j++) {
        size_t s = first + j, w = seg->written_by[s];
        if (!((seg->dirty_mask & seg->warm_mask) >> s & 1) ||
            (w != cls && (w >= CLASS_COUNT || hk_class_size[w] > 4096)))
            break;
    }
    return j;
}

static page_t *seg_take_run(segment_t *seg, size_t first, size_t k, size_t cls) {
    uint64_t run = hk_slice_run_mask(first, k);
    if (cls != LARGE_CLASS && hk_class_size[cls] > 2 * 4096 && (seg->dirty_mask & run)) {
        uint64_t smaller = 0;
        for (size_t j = first; j < first + k; j++)
            if (seg->written_by[j] < cls) smaller |= 1ull << j;
        if (smaller & seg->dirty_mask) seg_purge_slices(seg, smaller);
    }
    int64_t clean = (int64_t)(k - (size_t)__builtin_popcountll(seg->dirty_mask & run));
    stats_add(&hk_counters.committed, &hk_counters.committed_peak, clean * (int64_t)SLICE_SIZE);
    page_t *pg = &seg->slices[first];
    memset(pg, 0, sizeof *pg);
    pg->free = HK_FREE_END;
    pg->is_zero = (seg->dirty_mask & run) == 0;
    pg->warm_slices = (uint8_t)warm_slices(seg, first, k, cls);
    pg->slice_count = (uint8_t)k;
    for (size_t j = 0; j < k; j++) seg->page_map[first + j] = pg;
    seg->free_mask &= ~run;
    seg->dirty_mask &= ~run;
    seg->warm_mask &= ~run;
    return pg;
}

/* The resident slices a page reuses best: a size-class page those resident in full (it will
 * write them all), a run (one block, which writes only what it holds) those not resident in
 * full. A run that `fills` its slices (its block holds at least half of them, see
 * seg_run_alloc) and a class page take any resident slices after those. */
static uint64_t resident_kind(const segment_t *seg, size_t cls, int best, int fills) {
    uint64_t resident = seg->free_mask & seg->dirty_mask;
    if (cls != LARGE_CLASS) return best ? resident & seg->full_mask : resident;
    return best ? resident & ~seg->full_mask : fills ? resident : 0;
}

/* Resident free slices where a page of k slices fits, the first choice since reusing them
 * costs no page faults (resident_kind). -1 when none fits. */
static int find_resident(const segment_t *seg, size_t k, size_t cls, size_t align, int fills) {
    int i = find_run(resident_kind(seg, cls, 1, fills), k, align);
    return i >= 0 ? i : find_run(resident_kind(seg, cls, 0, fills), k, align);
}

/* Resident slices first (find_resident), then clean ones, then (a run) any; at each step a
 * run at the asked alignment (see seg_page_alloc) before any other. */
static page_t *seg_try_alloc(segment_t *seg, size_t k, size_t cls, size_t align, int fills) {
    int i = find_resident(seg, k, cls, align, fills);
    if (i < 0 && align > 1) i = find_resident(seg, k, cls, 1, fills);
    for (size_t a = align; i < 0; a = 1) {
        i = find_run(seg->free_mask & ~seg->dirty_mask, k, a);
        if (i < 0) i = find_run(seg->free_mask, k, a);
        if (a == 1) break;
    }
    return i < 0 ? NULL : seg_take_run(seg, (size_t)i, k, cls);
}

static segment_t *abandoned_pop(void) {
    if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return NULL;
    pthread_mutex_lock(&abandoned_lock);
    segment_t *seg = abandoned_list;
    if (seg) {
        seg_list_remove(&abandoned_list, seg);
        atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&abandoned_lock);
    return seg;
}

/* Return a page's slices to its segment; the caller decides about the segment. */
static void seg_slices_free(segment_t *seg, page_t *pg) {
    page_await_notifier(pg); /* a remote freer may still be setting our hint */
    hk_harden_slices_freed(pg);
    size_t first = (size_t)(pg - seg->slices), k = pg->slice_count;
    int class_page = pg->reserved != 0 && pg->class_idx != LARGE_CLASS;
    /* the page's extent from its start up to the end of its last carved block (a run: of
     * what its block was asked to hold) */
    size_t carved_end = hk_page_lead(pg) +
                        (pg->class_idx == LARGE_CLASS ? pg->run_written
                                                      : (size_t)pg->capacity * pg->block_size);
    seg->warm_mask &= ~hk_slice_run_mask(first, k);
    if (pg->reserved != 0) {
        /* what was written, in whole 4 KiB pages: a class page's carved blocks (their links;
         * all of them: the whole page, whose tail after the last block, less than a block
         * and the first block's offset, no page of its class writes), a large block as far
         * as it was asked to hold */
        size_t end = class_page && pg->capacity == pg->reserved ? k * SLICE_SIZE : carved_end;
        size_t full = ((end + 4095) & ~(size_t)4095) / SLICE_SIZE;
        if (full > k) full = k;
        if (full) seg->full_mask |= hk_slice_run_mask(first, full);
    }
    if (class_page) {
        /* slices whose every block start was carved: all of them once every block was (the
         * tail after the last block, under a block and the first block's offset, has none) */
        size_t carved = pg->capacity == pg->reserved ? k : carved_end / SLICE_SIZE;
        if (carved > k) carved = k;
        if (carved) seg->warm_mask |= hk_slice_run_mask(first, carved);
    }
    memset(&seg->written_by[first], pg->class_idx, k);
    memset(pg, 0, sizeof *pg);
    for (size_t j = 0; j < k; j++) seg->page_map[first + j] = &pg[j];
    uint64_t run = hk_slice_run_mask(first, k);
    seg->free_mask |= run;
    seg->dirty_mask |= run;
}

static uint64_t deadline_of(heap_t *h) {
    return atomic_load_explicit(&h->purge_deadline_ns, memory_order_relaxed);
}

/* Free slices became resident at `since`: the heap's purge falls due a purge delay later,
 * unless an earlier deadline is already set. */
static void deadline_arm(heap_t *h, uint64_t since) {
    if (deadline_of(h) == 0)
        atomic_store_explicit(&h->purge_deadline_ns,
                              since + (uint64_t)hk_opt.purge_delay_ms * 1000000u,
                              memory_order_relaxed);
}

/* Adopt an exited thread's segment. Returns 0 if it turned out empty and was released. */
static int seg_reclaim(heap_t *h, segment_t *seg) {
    atomic_store(&seg->heap, h);
    hk_segment_set_owner(seg, h->thread_id);
    atomic_fetch_add_explicit(&hk_counters.reclaimed, 1, memory_order_relaxed);
    for (size_t i = 1; i < SLICES_PER_SEG;) {
        page_t *pg = &seg->slices[i];
        if (pg->reserved == 0) {
            i++;
            continue;
        }
        i += pg->slice_count;
        if (!page_adopt(h, pg)) {
            atomic_fetch_sub_explicit(&hk_counters.pages[pg->class_idx], 1, memory_order_relaxed);
            seg_slices_free(seg, pg);
        }
    }
    if (seg->free_mask == USABLE_SLICES) {
        if (seg->dirty_mask) seg_purge(seg);
        seg_release(seg);
        return 0;
    }
    /* Slices freed before the abandon keep the deadline they had then. */
    if (seg->dirty_mask) deadline_arm(h, seg->cached_at_ns);
    seg_list_push(&h->segments, seg);
    return 1;
}

/* The slices of pg in its segment's masks. */
static uint64_t page_run_mask(const page_t *pg) {
    return hk_slice_run_mask((size_t)(pg - hk_page_segment(pg)->slices), pg->slice_count);
}

/* pg, one of h's spares and out of its class's list, leaves the heap's count, its segment's
 * spare_mask and, with the class's last spare, spare_classes. */
static void spare_unmark(heap_t *h, page_t *pg) {
    h->spare_slices -= pg->slice_count;
    hk_page_segment(pg)->spare_mask &= ~page_run_mask(pg);
    uint64_t bit = 1ull << pg->class_idx;
    if (!h->spares[pg->class_idx] && (atomic_load_explicit(&h->spare_classes, memory_order_relaxed) & bit))
        atomic_fetch_and_explicit(&h->spare_classes, ~bit, memory_order_relaxed);
}

/* The spares that lie in seg go back to it, which holds nothing else: a segment kept for
 * spares alone would stay out of the cache and mapped until the purge deadline, and only
 * then wait out the cache's delay (redis after FLUSHALL: 54 MiB resident 100 ms on, where
 * 15 MiB were before spares). Under h's seg_lock. */
static void seg_spares_drop(heap_t *h, segment_t *seg) {
    uint64_t bits = atomic_load_explicit(&h->spare_classes, memory_order_relaxed);
    while (bits) {
        size_t cls = (size_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        for (page_t **pp = &h->spares[cls]; *pp;) {
            page_t *pg = *pp;
            if (hk_page_segment(pg) != seg) {
                pp = &pg->next;
                continue;
            }
            *pp = pg->next;
            spare_unmark(h, pg);
            seg_slices_free(seg, pg);
        }
    }
}

/* A page's slices go back to its segment (with the segment's spares, if only they are left
 * in it), and the segment to the cache if that emptied it (then 1). The caller holds h's
 * seg_lock. */
static int page_slices_return(heap_t *h, page_t *pg) {
    segment_t *seg = hk_page_segment(pg);
    seg_slices_free(seg, pg);
    if (seg->spare_mask && (seg->free_mask | seg->spare_mask) == USABLE_SLICES) seg_spares_drop(h, seg);
    if (seg->free_mask != USABLE_SLICES) return 0;
    seg_list_remove(&h->segments, seg);
    seg_release(seg);
    return 1;
}

/* Every spare page of h goes back to its segment (seg_page_spare); under h's seg_lock. The
 * lists are emptied first, so seg_spares_drop finds none of them. */
static void spares_release(heap_t *h) {
    page_t *lists[CLASS_COUNT];
    uint64_t bits = atomic_exchange_explicit(&h->spare_classes, 0, memory_order_relaxed);
    for (uint64_t b = bits; b; b &= b - 1) {
        size_t cls = (size_t)__builtin_ctzll(b);
        lists[cls] = h->spares[cls];
        h->spares[cls] = NULL;
    }
    while (bits) {
        size_t cls = (size_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        for (page_t *pg = lists[cls], *next; pg; pg = next) {
            next = pg->next;
            spare_unmark(h, pg);
            page_slices_return(h, pg);
        }
    }
}

/* Purge free slices of all the heap's segments once the purge delay has passed, spare pages
 * first returned to theirs. */
static void purge_heap_locked(heap_t *h, int force, uint64_t now) {
    uint64_t due = deadline_of(h);
    if (!force && (due == 0 || now < due)) return;
    spares_release(h);
    for (segment_t *seg = h->segments; seg; seg = seg->next)
        if (seg->dirty_mask) seg_purge(seg);
    atomic_store_explicit(&h->purge_deadline_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&h->freed_classes, 0, memory_order_relaxed);
}

/* A cached segment whose resident free slices hold k in a row of the kind a page of class
 * cls reuses best (resident_kind: a run, slices written in part, or any for a run that
 * fills its slices; a class page, slices written in full), out of the cache; NULL if none
 * has them. A class page does not take another kind here: the slices runs wrote in part are
 * the next runs' (realloc_growth: 6.9 MiB peak and 3.8 k faults when class pages took them
 * too, 6.4 MiB and 4.3 k when not). */
static segment_t *seg_cache_take_resident(size_t k, size_t cls, int fills) {
    pthread_mutex_lock(&cache_lock);
    segment_t *seg = cache_list;
    /* the best kind, or for a filling run any resident slices (a superset of the best) */
    while (seg && find_run(resident_kind(seg, cls, !fills, fills), k, 1) < 0) seg = seg->next;
    if (seg) {
        seg_list_remove(&cache_list, seg);
        cache_count--;
    }
    pthread_mutex_unlock(&cache_lock);
    return seg;
}

/* A segment (fresh, cached or reclaimed) joins heap h; the caller holds h's seg_lock. */
static void seg_adopt(heap_t *h, segment_t *seg) {
    seg->heap = h;
    hk_segment_set_owner(seg, h->thread_id);
    seg_list_push(&h->segments, seg);
}

/* A run of k free slices of h's segments (at `align` where there is one) that holds resident
 * slices of the kind a page of class cls reuses (resident_kind) next to clean ones: its index,
 * its segment in *where; -1 if none. */
static int find_reusing_run(heap_t *h, size_t k, size_t cls, size_t align, int fills,
                            segment_t **where) {
    for (size_t a = align;; a = 1) {
        for (segment_t *seg = h->segments; seg; seg = seg->next) {
            uint64_t reuse = resident_kind(seg, cls, 0, fills);
            uint64_t usable = seg->free_mask & (reuse | ~seg->dirty_mask);
            int i = reuse ? find_run_touching(usable, reuse, k, a) : -1;
            if (i >= 0) {
                *where = seg;
                return i;
            }
        }
        if (a == 1) return -1;
    }
}

static page_t *seg_page_alloc_locked(heap_t *h, size_t k, size_t cls, size_t align, int fills) {
    int dirty = 0;
    for (int spares = 1;; spares = 0) {
        for (size_t a = align;; a = 1) { /* a resident run at the alignment, else any */
            for (segment_t *seg = h->segments; seg; seg = seg->next) {
                int i = find_resident(seg, k, cls, a, fills);
                if (i >= 0) return seg_take_run(seg, (size_t)i, k, cls);
                dirty |= seg->dirty_mask != 0;
            }
            if (a == 1) break;
        }
        /* Spare pages are resident free memory too: theirs before any other memory. */
        if (!spares || !atomic_load_explicit(&h->spare_classes, memory_order_relaxed)) break;
        spares_release(h);
    }
    /* A cached segment with a resident run that fits is taken before the heap's clean
     * slices, so that its resident pages serve this page rather than wait beside it. */
    segment_t *seg = seg_cache_take_resident(k, cls, fills);
    if (seg) {
        seg_adopt(h, seg);
        return seg_try_alloc(seg, k, cls, align, fills); /* resident first: it has a fit */
    }
    /* No resident run fits, so RSS is about to grow: first give back the resident free
     * slices that could not serve it (they would otherwise wait out the purge delay), and,
     * when the growth would pass the process's peak, the free blocks of nearly empty pages.
     * Below the peak they would only be refaulted: a workload whose classes rise and fall
     * in turn (8-64 KiB at random) takes fresh pages all the time without growing. A run
     * that holds resident slices it may reuse next to clean ones is taken first, so that
     * those are not among the purged (a buffer a little bigger than the one freed before it,
     * where it lay, had all of that one's pages purged and faulted in again). */
    int i = dirty ? find_reusing_run(h, k, cls, align, fills, &seg) : -1;
    int64_t grow = (int64_t)(k * SLICE_SIZE);
    if (i >= 0) /* its resident slices are not growth */
        grow -= (int64_t)SLICE_SIZE *
                __builtin_popcountll(hk_slice_run_mask((size_t)i, k) & seg->dirty_mask);
    int over = atomic_load_explicit(&hk_counters.committed, memory_order_relaxed) + grow >
               atomic_load_explicit(&hk_counters.committed_peak, memory_order_relaxed);
    page_t *pg = i >= 0 ? seg_take_run(seg, (size_t)i, k, cls) : NULL;
    if (dirty) purge_heap_locked(h, 1, 0);
    if (over) page_purge_sparse(h);
    if (pg) return pg;
    for (seg = h->segments; seg; seg = seg->next) {
        pg = seg_try_alloc(seg, k, cls, align, fills);
        if (pg) return pg;
    }
    while ((seg = abandoned_pop()) != NULL) {
        if (!seg_reclaim(h, seg)) continue;
        pg = seg_try_alloc(seg, k, cls, align, fills);
        if (pg) return pg;
    }
    seg = seg_obtain();
    if (!seg) return NULL;
    seg_adopt(h, seg);
    return seg_try_alloc(seg, k, cls, align, fills);
}

/* A size-class page of k slices. `align` (a power of two up to 16 slices) is where it
 * should start: a medium page of the direct table placed at a multiple of its own slice
 * count lets the malloc fast path follow links across its slices (page_t.link_mask). A run
 * there is preferred at each step (resident, then any slices of the heap's segments), but
 * never at the price of a page fault or a fresh segment. */
page_t *seg_page_alloc(heap_t *h, size_t k, size_t align, size_t cls) {
    pthread_mutex_lock(&h->seg_lock);
    page_t *pg = seg_page_alloc_locked(h, k, cls, align, 0);
    pthread_mutex_unlock(&h->seg_lock);
    return pg;
}

/* A run of k slices for one large block of `size` bytes. A block that holds at least half
 * of its slices is likely written over most of them (a buffer filled, then freed, then taken
 * again: mimalloc-bench's malloc-large, 2 MiB at a time, had each free's slices purged and
 * refaulted, 512 faults per block), so it may take slices resident in full; a smaller one
 * (a block that grows by realloc, which starts in a run of room) leaves them to pages that
 * write them all. */
page_t *seg_run_alloc(heap_t *h, size_t k, size_t size) {
    pthread_mutex_lock(&h->seg_lock);
    page_t *pg = seg_page_alloc_locked(h, k, LARGE_CLASS, 1, 2 * size >= k * SLICE_SIZE);
    pthread_mutex_unlock(&h->seg_lock);
    return pg;
}

/* Free memory of h stays resident: its purge falls due a delay from now, or is done if it
 * was due already. The caller holds h's seg_lock, and calls purger_notify after it. */
static void retained_locked(heap_t *h) {
    if (deadline_of(h) == 0) deadline_arm(h, os_now_ns());
    else purge_heap_locked(h, 0, os_now_ns());
}

/* pg's slices go back (page_slices_return); what stays resident falls due. */
static void page_free_locked(heap_t *h, page_t *pg) {
    if (pg->class_idx != LARGE_CLASS)
        atomic_fetch_or_explicit(&h->freed_classes, 1ull << pg->class_idx, memory_order_relaxed);
    if (!page_slices_return(h, pg)) retained_locked(h);
}

void seg_page_free(heap_t *h, page_t *pg) {
    pthread_mutex_lock(&h->seg_lock);
    page_free_locked(h, pg);
    pthread_mutex_unlock(&h->seg_lock);
    purger_notify(); /* free memory is now retained: make sure someone returns it in time */
}

/* An emptied class page of h, every block on its free list, becomes a spare: the class's
 * next page takes it as it is (seg_spare_take) instead of slices whose blocks it would carve
 * again. A batch of blocks allocated and freed in turn (1000 blocks of 1 KiB: 15 pages)
 * otherwise gives its pages back and carves them again every round. A spare is resident
 * like the free slices it would have become, and goes back to its segment when they would
 * be purged (the heap's purge deadline, a trim) or used (a page that no resident free
 * slices fit, seg_page_alloc_locked), and when the heap is dissolved. At most SPARE_SLICES
 * slices are spares, the rest go back at once: segments that a thread's frees empty reach
 * the cache, where other threads take them, as soon as before. */
void seg_page_spare(heap_t *h, page_t *pg) {
    size_t cls = pg->class_idx;
    segment_t *seg = hk_page_segment(pg);
    uint64_t run = page_run_mask(pg);
    pthread_mutex_lock(&h->seg_lock);
    /* Not the last page in use of its segment (seg_spares_drop), nor past the bound. */
    if ((seg->free_mask | seg->spare_mask | run) == USABLE_SLICES ||
        h->spare_slices + pg->slice_count > SPARE_SLICES) {
        page_free_locked(h, pg);
    } else {
        pg->next = h->spares[cls];
        h->spares[cls] = pg;
        h->spare_slices += pg->slice_count;
        seg->spare_mask |= run;
        atomic_fetch_or_explicit(&h->spare_classes, 1ull << cls, memory_order_relaxed);
        retained_locked(h);
    }
    pthread_mutex_unlock(&h->seg_lock);
    purger_notify();
}

/* A spare page of class cls whose first block lies `offset` bytes into it, out of the
 * spares; NULL if none. */
page_t *seg_spare_take(heap_t *h, size_t cls, size_t offset) {
    if (!(atomic_load_explicit(&h->spare_classes, memory_order_relaxed) >> cls & 1)) return NULL;
    pthread_mutex_lock(&h->seg_lock);
    page_t **pp = &h->spares[cls], *pg;
    while ((pg = *pp) != NULL && hk_page_lead(pg) != offset) pp = &pg->next;
    if (pg) {
        *pp = pg->next;
        pg->next = NULL;
        spare_unmark(h, pg);
    }
    pthread_mutex_unlock(&h->seg_lock);
    return pg;
}

/* Resize a one-block page (a large block's slice run) in place to `k` slices: it grows into
 * the free slices right after it, or gives its tail back. Returns 0, changing nothing, when
 * the slices after it are not free. Only the owner calls it, for its own page. */
int seg_run_resize(heap_t *h, page_t *pg, size_t k) {
    segment_t *seg = hk_page_segment(pg);
    size_t first = (size_t)(pg - seg->slices), k0 = pg->slice_count;
    if (k == k0) return 1;
    if (k == 0 || first + k > SLICES_PER_SEG) return 0;
    int freed = 0;
    pthread_mutex_lock(&h->seg_lock);
    if (k > k0) {
        uint64_t run = hk_slice_run_mask(first + k0, k - k0);
        if ((seg->free_mask & run) != run) {
            pthread_mutex_unlock(&h->seg_lock);
            return 0;
        }
        int64_t clean = (int64_t)(k - k0 - (size_t)__builtin_popcountll(seg->dirty_mask & run));
        stats_add(&hk_counters.committed, &hk_counters.committed_peak, clean * (int64_t)SLICE_SIZE);
        for (size_t j = k0; j < k; j++) seg->page_map[first + j] = pg;
        seg->free_mask &= ~run;
        seg->dirty_mask &= ~run;
    } else {
        for (size_t j = k; j < k0; j++) { /* free slices: zero, mapped to themselves */
            memset(&pg[j], 0, sizeof pg[j]);
            seg->page_map[first + j] = &pg[j];
        }
        uint64_t run = hk_slice_run_mask(first + k, k0 - k);
        seg->free_mask |= run;
        seg->dirty_mask |= run;
        deadline_arm(h, os_now_ns());
        freed = 1;
    }
    pg->slice_count = (uint8_t)k;
    pthread_mutex_unlock(&h->seg_lock);
    if (freed) purger_notify();
    return 1;
}

void seg_purge_heap(heap_t *h, int force) {
    if (!force && (deadline_of(h) == 0 || os_now_ns() < deadline_of(h))) return;
    pthread_mutex_lock(&h->seg_lock);
    purge_heap_locked(h, force, os_now_ns());
    pthread_mutex_unlock(&h->seg_lock);
}

/* RSS is about to grow by a huge block's fresh pages (src/large.c): give back now the free
 * slices that wait out the purge delay, the heap's own and those of cached segments, rather
 * than beside the new pages. The segments stay mapped and cached. */
void seg_purge_resident(heap_t *h) {
    if (deadline_of(h) != 0) seg_purge_heap(h, 1);
    pthread_mutex_lock(&cache_lock);
    for (segment_t *seg = cache_list; seg; seg = seg->next)
        if (seg->dirty_mask) seg_purge(seg);
    pthread_mutex_unlock(&cache_lock);
}

/* For the purger, on any heap: purge it if its deadline has passed (the owner has not come
 * by to do it); the deadline still ahead, or 0. */
uint64_t seg_purge_due(heap_t *h, uint64_t now) {
    uint64_t due = deadline_of(h);
    if (due == 0 || now < due) return due;
    pthread_mutex_lock(&h->seg_lock);
    purge_heap_locked(h, 0, now);
    due = deadline_of(h); /* 0, or a deadline the owner set meanwhile */
    pthread_mutex_unlock(&h->seg_lock);
    return due;
}

/* A heap changes hands whole (src/heap.c): its segments' owner in the segment map becomes
 * `owner` (HK_OWNER_NONE while the heap is an orphan). */
void seg_set_owner_all(heap_t *h, uintptr_t owner) {
    pthread_mutex_lock(&h->seg_lock);
    for (segment_t *seg = h->segments; seg; seg = seg->next) hk_segment_set_owner(seg, owner);
    pthread_mutex_unlock(&h->seg_lock);
}

/* An orphaned heap is dissolved: hand every segment to the abandoned list for other threads
 * to reclaim. */
void seg_abandon_all(heap_t *h) {
    segment_t *seg, *next;
    uint64_t now = os_now_ns();
    int dirty = 0;
    pthread_mutex_lock(&h->seg_lock);
    spares_release(h);
    for (seg = h->segments; seg; seg = next) {
        next = seg->next;
        /* Free slices stay resident for the purge delay, as in a live heap: the thread that
         * reclaims the segment (in a program whose threads come and go, soon) reuses them
         * without a fault, and the purger returns them if nobody does. */
        if (seg->dirty_mask) {
            if (hk_opt.purge_delay_ms == 0) seg_purge(seg);
            else dirty = 1;
        }
        seg->cached_at_ns = now;
        hk_segment_set_owner(seg, HK_OWNER_NONE);
        atomic_store(&seg->heap, NULL);
        atomic_fetch_add_explicit(&hk_counters.abandoned, 1, memory_order_relaxed);
        pthread_mutex_lock(&abandoned_lock);
        seg_list_push(&abandoned_list, seg);
        atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
        pthread_mutex_unlock(&abandoned_lock);
    }
    h->segments = NULL;
    atomic_store_explicit(&h->purge_deadline_ns, 0, memory_order_relaxed);
    pthread_mutex_unlock(&h->seg_lock);
    if (dirty) purger_notify();
}

/* Purge the free slices of abandoned segments that have waited the purge delay (all when
 * forced); the time the next one falls due, or 0. Nobody owns an abandoned segment, and a
 * reclaimer takes one off the list under the same lock before it touches its slices. */
uint64_t seg_abandoned_due(int force) {
    uint64_t now = os_now_ns(), delay = (uint64_t)hk_opt.purge_delay_ms * 1000000u, due = 0;
    if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return 0;
    pthread_mutex_lock(&abandoned_lock);
    for (segment_t *seg = abandoned_list; seg; seg = seg->next) {
        if (!seg->dirty_mask) continue;
        if (force || now >= seg->cached_at_ns + delay) seg_purge(seg);
        else if (due == 0 || seg->cached_at_ns + delay < due) due = seg->cached_at_ns + delay;
    }
    pthread_mutex_unlock(&abandoned_lock);
    return due;
}

/* Fork child: a thread that did not survive may have died holding RF_NOTIFYING on a page
 * of ours. Clear it (that thread's hint may be lost, so the caller rescans everything). */
void seg_after_fork_child(heap_t *self) {
    segment_t *lists[2] = {self ? self->segments : NULL, abandoned_list};
    for (int l = 0; l < 2; l++)
        for (segment_t *seg = lists[l]; seg; seg = seg->next)
            for (size_t i = 1; i < SLICES_PER_SEG; i++)
                atomic_fetch_and_explicit(&seg->slices[i].remote_free, ~RF_NOTIFYING,
                                          memory_order_relaxed);
}

void seg_lock_all(void) {
    pthread_mutex_lock(&abandoned_lock);
    pthread_mutex_lock(&cache_lock);
}

void seg_unlock_all(void) {
    pthread_mutex_unlock(&cache_lock);
    pthread_mutex_unlock(&abandoned_lock);
}

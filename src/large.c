/* Large and huge blocks. Large (up to LARGE_MAX) is one block on a run of slices in a
 * heap segment. Huge is a mapping of its own with a segment header at its start, kept in
 * a small time-limited cache after free so alloc/free loops of big blocks skip mmap. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "harden.h"
#include "internal.h"

#define HUGE_CLASS (CLASS_COUNT + 1)
#define HUGE_CACHE_MAX_ENTRIES 16
#define OS_PAGE 4096

static pthread_mutex_t huge_lock_m = PTHREAD_MUTEX_INITIALIZER;
static segment_t *huge_cache;
static size_t huge_cache_bytes;
static long huge_cache_entries;

static size_t huge_header(void) { return (sizeof(segment_t) + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1); }

/* Huge mappings count as committed in full: they are touched by their user. */
static void huge_account(int64_t bytes) {
    stats_add(&hk_counters.mapped, &hk_counters.mapped_peak, bytes);
    stats_add(&hk_counters.committed, &hk_counters.committed_peak, bytes);
}

static void huge_unmap(segment_t *seg) {
    huge_account(-(int64_t)seg->map_size);
    atomic_fetch_sub_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
    hk_segment_set_owner(seg, 0);
    hk_harden_huge_unmap(seg);
    os_unmap(seg, seg->map_size);
}

static void cache_unlink(segment_t *seg) {
    if (seg->prev) seg->prev->next = seg->next;
    else huge_cache = seg->next;
    if (seg->next) seg->next->prev = seg->prev;
    huge_cache_bytes -= seg->map_size;
    huge_cache_entries--;
}

/* Unlink expired entries (all when forced); the caller unmaps the returned list. */
static segment_t *cache_expire_locked(int force) {
    uint64_t now = os_now_ns(), delay = (uint64_t)hk_opt.purge_delay_ms * 1000000u;
    segment_t *out = NULL, *next;
    for (segment_t *seg = huge_cache; seg; seg = next) {
        next = seg->next;
        if (force || now - seg->cached_at_ns >= delay) {
            cache_unlink(seg);
            seg->next = out;
            out = seg;
        }
    }
    return out;
}

static int unmap_list(segment_t *list) {
    int any = list != NULL;
    while (list) {
        segment_t *next = list->next;
        huge_unmap(list);
        list = next;
    }
    return any;
}

int huge_cache_trim(int force) {
    pthread_mutex_lock(&huge_lock_m);
    segment_t *list = cache_expire_locked(force);
    pthread_mutex_unlock(&huge_lock_m);
    return unmap_list(list);
}

/* For the purger: unmap expired cached blocks; the time the next one expires, or 0. */
uint64_t huge_cache_due(void) {
    huge_cache_trim(0);
    pthread_mutex_lock(&huge_lock_m);
    uint64_t due = seg_list_due(huge_cache);
    pthread_mutex_unlock(&huge_lock_m);
    return due;
}

/* Cached mapping to reuse for a block of `need` bytes (header included): the smallest that
 * holds it or, failing that, the largest. Reusing resident pages saves a fault per page touched,
 * which is most of what a big block costs, so any cached mapping beats a fresh one. */
static segment_t *cache_take(size_t need) {
    pthread_mutex_lock(&huge_lock_m);
    segment_t *fit = NULL, *largest = NULL;
    for (segment_t *seg = huge_cache; seg; seg = seg->next) {
        if (seg->map_size >= need && (!fit || seg->map_size < fit->map_size)) fit = seg;
        if (!largest || seg->map_size > largest->map_size) largest = seg;
    }
    segment_t *best = fit ? fit : largest;
    if (best) cache_unlink(best);
    pthread_mutex_unlock(&huge_lock_m);
    return best;
}

/* Write the header of a huge block at offset `off` of a mapping of `size` bytes. The header
 * area may hold old data (a piece cut from a bigger mapping), so what a huge segment's
 * readers look at is cleared first: the page map and the first descriptor, and the fields
 * after the descriptors (a stale kind there would send a free down the wrong path). The
 * other 64 descriptors, 8 KiB, are never read in a huge segment and are left as they are:
 * clearing them was most of what a sparsely used huge buffer cost. */
static void huge_header_init(segment_t *seg, size_t size, size_t off) {
    memset(seg, 0, offsetof(segment_t, slice_store) + sizeof(page_t));
    memset(&seg->heap, 0, sizeof *seg - offsetof(segment_t, heap));
    seg->slices = seg->slice_store;
    seg->map_size = size;
    seg->huge_off = off;
    page_t *pg = &seg->slices[0];
    pg->class_idx = HUGE_CLASS;
    pg->reserved = 1;
    pg->used = 1;
    pg->slice_count = 1; /* the slices' `head` stay NULL: a huge block has no page */
}

static void cache_push_locked(segment_t *seg) {
    seg->kind = SEG_HUGE_CACHED;
    seg->prev = NULL;
    seg->next = huge_cache;
    if (huge_cache) huge_cache->prev = seg;
    huge_cache = seg;
    huge_cache_bytes += seg->map_size;
    huge_cache_entries++;
}

/* The growth [filled, need) of a mapping at `base` would be fresh pages: fill it instead
 * with the pages of other cached mappings that fit in it, the largest first, moved there with
 * mremap (page tables, not data), so that they are reused rather than kept resident beside
 * it until the purge delay. Returns how far from `base` the pages may hold old data. */
static size_t cache_gather(uint8_t *base, size_t filled, size_t need) {
    for (;;) {
        pthread_mutex_lock(&huge_lock_m);
        segment_t *best = NULL;
        for (segment_t *c = huge_cache; c; c = c->next)
            if (c->map_size <= need - filled && (!best || c->map_size > best->map_size)) best = c;
        if (best) cache_unlink(best);
        pthread_mutex_unlock(&huge_lock_m);
        if (!best) return filled;
        size_t size = best->map_size;
        hk_segment_set_owner(best, 0);
        if (!os_move(best, size, base + filled)) { /* its range is still ours: drop it */
            huge_unmap(best);
            return filled;
        }
        huge_account(-(int64_t)size); /* counted in the growth already */
        atomic_fetch_sub_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
        filled += size;
    }
}

/* Fit a cached mapping to `need` bytes. Too big, it is cut at the first SEG_SIZE boundary
 * past `need`, and the rest stays cached as a mapping of its own (its resident pages serve
 * the next request instead of being unmapped and faulted in again); a rest too small to
 * hold a huge block stays with the block, as does the slack before the cut (unmapping the
 * one made a buffer of the same size as the last a growth every time, purging the other
 * cost more faults than it saved RSS). Too small, it is moved into a fresh aligned mapping
 * of `need` bytes (mremap moves its page tables, not its data, and 2 MiB pages whole, as
 * both ends are SEG_SIZE-aligned), so its resident pages are reused and only the growth is
 * faulted in, on huge pages with HAKMEM_THP=1 unless the block is calloc's: a zeroed table
 * may be touched here and there, and each touch would make 2 MiB resident. Returns the
 * mapping, which may have moved, or NULL (the cached one is then released). `*dirty` is
 * set to the bytes that may hold old data. */
static segment_t *cache_fit(heap_t *h, segment_t *seg, size_t need, int zero, size_t *dirty) {
    size_t have = seg->map_size;
    *dirty = have < need ? have : need;
    if (have >= need) {
        size_t cut = (need + SEG_SIZE - 1) & ~SEG_MASK;
        if (cut < have && have - cut > LARGE_MAX) {
            segment_t *tail = (segment_t *)((uint8_t *)seg + cut);
            huge_header_init(tail, have - cut, huge_header());
            tail->cached_at_ns = seg->cached_at_ns; /* it expires when the whole would have */
            seg->map_size = cut;
            atomic_fetch_add_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
            hk_segment_set_owner(tail, HK_OWNER_NONE);
            pthread_mutex_lock(&huge_lock_m);
            int keep = huge_cache_entries < HUGE_CACHE_MAX_ENTRIES;
            if (keep) cache_push_locked(tail);
            pthread_mutex_unlock(&huge_lock_m);
            if (!keep) huge_unmap(tail);
        }
        return seg;
    }
    seg_purge_resident(h); /* the growth is fresh pages */
    segment_t *moved = seg_os_map(need, SEG_SIZE, 0);
    if (moved) {
        if (!zero) os_advise_thp(moved, need);
        hk_segment_set_owner(seg, 0);
        if (os_move(seg, have, moved)) {
            hk_segment_set_owner(moved, HK_OWNER_NONE);
            huge_account((int64_t)(need - have));
            moved->map_size = need;
            *dirty = cache_gather((uint8_t *)moved, have, need);
            return moved;
        }
        os_unmap(moved, need);
    }
    huge_unmap(seg); /* the range is still ours: nothing can have been mapped there meanwhile */
    return NULL;
}

/* Where a huge block sits in its mapping: right after the header (and the hardened build's
 * guard), rounded up to the alignment (0: none asked); at SEG_SIZE for alignments above it. */
static size_t huge_block_off(size_t align) {
    size_t a = align ? align : 1;
    return a <= SEG_SIZE ? (huge_header() + hk_harden_huge_guard() + a - 1) & ~(a - 1) : SEG_SIZE;
}

/* The mapping a huge block of `size` bytes at offset `off` needs, in whole pages. */
static size_t huge_need(size_t off, size_t size) {
    return (off + size + hk_harden_huge_guard() + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
}

/* The slices of the run that holds one large block of `size` bytes. */
static size_t run_slices(size_t size, size_t align) {
    size_t k = (size + hk_harden_large_extra(align) + SLICE_SIZE - 1) >> SLICE_SHIFT;
    return k ? k : 1;
}

static void *huge_alloc(heap_t *h, size_t size, size_t align, int zero) {
    size_t off = huge_block_off(align);
    /* Tested in two steps: an alignment of 2^63 would wrap the bound, and then the mapping's
     * length, and place the block outside the mapping. */
    if (align > PTRDIFF_MAX - off - SEG_SIZE || size > PTRDIFF_MAX - off - SEG_SIZE - align)
        return NULL;
    size_t need = huge_need(off, size);
    if (!seg_map_init()) return NULL;
    segment_t *seg = off == huge_header() ? cache_take(need) : NULL;
    size_t dirty;
    if (seg && (seg = cache_fit(h, seg, need, zero, &dirty)) != NULL) {
        if (zero) memset((uint8_t *)seg + off, 0, (dirty < off + size ? dirty : off + size) - off);
    } else if (align <= SEG_SIZE) {
        /* A fresh mapping: RSS grows by all of it. Not in the hardened build, which caches no
         * huge block: every one is fresh, and this would purge each freed slice at once. */
        if (hk_harden_huge_cache_ok()) seg_purge_resident(h);
        seg = seg_os_map(need, SEG_SIZE, 0);
    } else {
        /* The block sits at seg + SEG_SIZE, aligned, with seg SEG-aligned. */
        seg = seg_os_map(need, align, SEG_SIZE);
    }
    if (!seg) return NULL;
    if (seg->kind != SEG_HUGE_CACHED) {
        huge_account((int64_t)need);
        atomic_fetch_add_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
        huge_header_init(seg, need, off);
        if (!zero) os_advise_thp(seg, need); /* calloc: see cache_fit */
        hk_harden_huge_mapped(seg, need);
        hk_segment_set_owner(seg, HK_OWNER_NONE);
    }
    seg->kind = SEG_HUGE;
    return (uint8_t *)seg + off;
}

void *large_alloc(heap_t *h, size_t size, size_t align, int zero) {
    if (size > PTRDIFF_MAX) return NULL;
    if (size > LARGE_MAX || align > SLICE_SIZE) {
        void *p = huge_alloc(h, size, align, zero);
#ifdef HAKMEM_BUILD_STATS
        if (p) h->st_alloc[LARGE_CLASS + 1]++;
#endif
        return p;
    }
    size_t k = run_slices(size, align);
    page_t *pg = seg_run_alloc(h, k, size);
    if (!pg) return NULL;
    pg->class_idx = LARGE_CLASS;
    hk_page_set_block_size(pg, k * SLICE_SIZE);
    hk_harden_large_placed(pg, align);
    pg->reserved = pg->capacity = pg->used = 1;
    hk_page_set_limit(pg);
    hk_page_publish(pg);
    pg->run_written = (uint32_t)size;
    pg->in_full = 1; /* a large page is always on the full list: its freer must tell us */
    atomic_store_explicit(&pg->remote_free, RF_FULL, memory_order_relaxed);
    page_queue_t *q = &h->full[LARGE_CLASS];
    pg->prev = q->last;
    if (q->last) q->last->next = pg;
    else q->first = pg;
    q->last = pg;
    atomic_fetch_add_explicit(&hk_counters.pages[LARGE_CLASS], 1, memory_order_relaxed);
    uint8_t *p = (uint8_t *)pg->start;
    ((block_t *)p)->freed = 0;
#ifdef HAKMEM_BUILD_STATS
    h->st_alloc[LARGE_CLASS]++;
#endif
    if (zero && !pg->is_zero) memset(p, 0, size);
    return p;
}

/* A cached mapping that starts where `seg` ends or ends where it starts (a piece cut from
 * the same mapping, or a neighbour the kernel happened to place there): merged with it, the
 * pair serves a bigger request without a fault. The absorbed header stops being a segment. */
static segment_t *cache_merge_locked(segment_t *seg) {
    for (segment_t *c = huge_cache, *next; c; c = next) {
        next = c->next;
        if ((uint8_t *)c == (uint8_t *)seg + seg->map_size) {
            cache_unlink(c);
            hk_segment_set_owner(c, 0);
            atomic_fetch_sub_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
            seg->map_size += c->map_size;
            next = huge_cache; /* the list changed: look again */
        } else if ((uint8_t *)c + c->map_size == (uint8_t *)seg) {
            cache_unlink(c);
            hk_segment_set_owner(seg, 0);
            atomic_fetch_sub_explicit(&hk_counters.huge_count, 1, memory_order_relaxed);
            c->map_size += seg->map_size;
            seg = c;
            next = huge_cache;
        }
    }
    return seg;
}

void huge_free(segment_t *seg, void *p) {
    if (seg->kind != SEG_HUGE || (uint8_t *)p != (uint8_t *)seg + seg->huge_off) {
        hk_bad_pointer("free", p);
        return;
    }
#ifdef HAKMEM_BUILD_STATS
    hk_heap_tls->st_free[LARGE_CLASS + 1]++; /* the freeing thread's: huge blocks have no owner */
#endif
    size_t limit = (size_t)hk_opt.large_cache_mb << 20;
    segment_t *expired;
    pthread_mutex_lock(&huge_lock_m);
    expired = cache_expire_locked(0);
    if (hk_harden_huge_cache_ok() && seg->huge_off == huge_header() && seg->map_size <= limit) {
        seg = cache_merge_locked(seg);
        seg->cached_at_ns = os_now_ns();
        if (seg->map_size <= limit && huge_cache_bytes + seg->map_size <= limit &&
            huge_cache_entries < HUGE_CACHE_MAX_ENTRIES) {
            cache_push_locked(seg);
            seg = NULL;
        }
    }
    pthread_mutex_unlock(&huge_lock_m);
    unmap_list(expired);
    if (seg) huge_unmap(seg);
    else purger_notify(); /* cached: make sure it is unmapped in time */
    purger_poll();
}

/* realloc of a live huge block to `size` bytes (still huge) without copying: the mapping
 * gives back its tail, grows where it lies when the addresses after it are free, or has its
 * pages moved (mremap: page tables, not data) into a fresh aligned mapping of the new size.
 * Returns the block, which may have moved, or NULL when none of this worked (the block is
 * then unchanged and the caller copies). Only the block's user calls it. */
void *huge_resize(segment_t *seg, size_t size) {
    size_t off = seg->huge_off, have = seg->map_size;
    if (size > PTRDIFF_MAX - off - SEG_SIZE) return NULL;
    size_t need = huge_need(off, size);
    if (need <= have) {
        if (need < have) {
            os_unmap((uint8_t *)seg + need, have - need);
            huge_account(-(int64_t)(have - need));
            seg->map_size = need;
        }
        return (uint8_t *)seg + off;
    }
    /* An eighth more than asked, in address space only (untouched pages cost no memory), so
     * a block grown by small appends is not remapped every 4 KiB. */
    size_t room = (need + need / 8 + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
    if (room > need && room - need <= PTRDIFF_MAX - need) need = room;
    if (!os_grow_in_place(seg, have, need)) {
        segment_t *moved = seg_os_map(need, SEG_SIZE, 0);
        if (!moved) return NULL;
        os_advise_thp(moved, need);
        if (!os_move(seg, have, moved)) {
            os_unmap(moved, need);
            return NULL;
        }
        hk_segment_set_owner(seg, 0);
        hk_segment_set_owner(moved, HK_OWNER_NONE);
        seg = moved;
    }
    huge_account((int64_t)(need - have));
    seg->map_size = need;
    return (uint8_t *)seg + off;
}

size_t huge_usable(segment_t *seg) { return seg->map_size - seg->huge_off - hk_harden_huge_guard(); }

/* What large_alloc gives a request of `size` bytes at alignment `align` (0 or up to SEG_SIZE
 * and beyond): the usable size of a fresh slice run or huge mapping, 0 if it cannot be served.
 * The default build's sizes (nallocx answers the request itself in the hardened build). */
size_t large_usable(size_t size, size_t align) {
    if (size > PTRDIFF_MAX) return 0;
    if (size <= LARGE_MAX && align <= SLICE_SIZE) return run_slices(size, align) * SLICE_SIZE;
    size_t off = huge_block_off(align);
    if (size > PTRDIFF_MAX - off - SEG_SIZE - align) return 0;
    return huge_need(off, size) - off;
}

void huge_lock(void) { pthread_mutex_lock(&huge_lock_m); }
void huge_unlock(void) { pthread_mutex_unlock(&huge_lock_m); }

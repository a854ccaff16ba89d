/* The malloc and free fast paths, inlined into both the hk_ API and the libc override.
 * Budget: a TLS load, a table index, a list pop or push, a counter; no locks, no atomics
 * read-modify-write, no calls. Anything else belongs in the noinline slow paths. */
#ifndef HAKMEM_FASTPATH_H
#define HAKMEM_FASTPATH_H

#include "harden.h"
#include "internal.h"

/* b leaves pg's free list for the program: its double-free mark is cleared and it counts as
 * in use (and as allocated, in the statistics build). */
static inline __attribute__((always_inline)) void *hk_handed_out(heap_t *h, page_t *pg, block_t *b) {
    b->freed = 0;
    pg->used++;
#ifdef HAKMEM_BUILD_STATS
    h->st_alloc[pg->class_idx]++;
#else
    (void)h;
#endif
    return b;
}

/* Pop b, the head of pg's free list, for malloc's inline paths. The link is followed only if
 * it passes the page's quick test (hk_link_near; `ranged` for the classes above DIRECT_MAX):
 * a write after free that changed it is caught here, anything else goes to the checked
 * hk_pop_far.
 * The head is stored before the link test (hk_pop_far pops b again from the start), so the
 * test may use next's register, and the empty asm keeps b in the return register (gcc
 * otherwise copies it; the hardened wrapper does not return b). `prefetch`: the new head is
 * prefetched for the next malloc of the class. b may be the end marker of an empty list:
 * hk_pop_far, given the size, then takes malloc's slow path. `far_tls`: hk_pop_far gets the heap from TLS
 * again (the same heap), so that h's register is free for the page after the first load. */
static inline __attribute__((always_inline)) void *hk_pop_quick(heap_t *h, page_t *pg, block_t *b,
                                                                 size_t size, int prefetch,
                                                                 int far_tls, int ranged) {
    b = hk_harden_popped(pg, b);
    if (!HAKMEM_HARDENED) __asm__("" : "+a"(b));
    block_t *next = b->next;
    HK_HEAD_STORE(pg->free, next);
    if (prefetch) __builtin_prefetch(next);
    if (unlikely(!hk_link_near(pg, b, next, ranged)))
        return hk_pop_far(far_tls ? hk_heap_tls : h, pg, b, size);
    return hk_handed_out(h, pg, b);
}

static inline void *hk_malloc_fast(size_t size) {
    heap_t *h = hk_heap_tls;
    if (likely(size <= DIRECT_MAX)) {
        page_t *pg = h->direct[(size + 15) >> 4];
        /* The head is never NULL: an empty list's is the end marker (HK_FREE_END), whose link
         * fails the quick test, so hk_pop_far finds it empty. The prefetch: a page's free
         * blocks may have been freed long ago, and the next malloc's load of the link is
         * otherwise a cache miss then (redis: most of its malloc time). It costs no
         * instruction. */
        return hk_pop_quick(h, pg, HK_HEAD_LOAD(pg->free), size, 1, 0, 0);
    }
    return hk_malloc_medium(size, h);
}

/* Owner-thread free: mark the block free and push it on the page's free list (its link
 * encoded in the hardened build, a plain store otherwise). */
static inline void hk_free_local(page_t *pg, block_t *b) {
    b->freed = (uintptr_t)pg;
    hk_harden_set_next(b, pg->free);
    pg->free = b;
#ifdef HAKMEM_BUILD_STATS
    hk_heap_tls->st_free[pg->class_idx]++;
#endif
    if (unlikely(--pg->used == 0)) page_free_slow(hk_heap_tls, pg); /* emptied, or full */
}

static inline void hk_free_fast(void *p) {
    /* p's own segment index, not hk_segment_index's (p-1): a huge block at offset SEG_SIZE,
     * the one block it misses, is found by hk_free_other. */
    uintptr_t si = (uintptr_t)p >> SEG_SHIFT;
    /* One compare finds a block of a segment this thread owns; other threads' and huge
     * blocks take hk_free_unowned, NULL and foreign pointers beyond the map hk_free_other. */
    if (unlikely(si >= HK_PEEK(hk_seg_count, uintptr_t))) {
        hk_free_other(p);
        return;
    }
    if (likely(HK_PEEK(hk_seg_owner[si], uintptr_t) == hk_thread_self())) {
        page_t *pg = hk_page_of_index(si, p);
        block_t *b = (block_t *)p;
        /* Marked free already, or not the start of a carved block: check it off the fast
         * path. */
        if (unlikely(b->freed == (uintptr_t)pg ||
                     !hk_carved_offset(pg, (uintptr_t)p - pg->start))) {
            hk_free_marked(pg, b);
            return;
        }
        hk_free_local(pg, b);
        return;
    }
    hk_free_unowned(p);
}

/* The entry points every malloc and free goes through; the hardened build takes over here. */
static inline void *hk_malloc_inline(size_t size) {
    if (hk_hardened()) return hk_hard_malloc(size);
    return hk_malloc_fast(size);
}

static inline void hk_free_inline(void *p) {
    if (hk_hardened()) hk_hard_free(p);
    else hk_free_fast(p);
}

#endif

/* Allocation entry points of the hk_ API: malloc's slow path, calloc and the aligned
 * allocations (realloc is in realloc.c). Pointers are always 16-byte aligned; failures return NULL with
 * errno = ENOMEM (EINVAL for a bad alignment), never abort. */
#include <errno.h>
#include <string.h>

#include "fastpath.h"

static heap_t *heap_get(void) {
    heap_t *h = hk_heap_tls;
    return h != &hk_heap_empty ? h : heap_init_thread();
}

/* Pop b, the head of pg's free list, following its link only if the link is sound: it
 * ends the list or names a carved block of the page. A link damaged by a write after free
 * is reported, and the rest of the list is dropped (its blocks leak) rather than followed. */
static inline __attribute__((always_inline)) void *pop_checked(heap_t *h, page_t *pg, block_t *b,
                                                                int quick) {
    b = hk_harden_popped(pg, b);
    block_t *next = b->next;
    /* quick: a link that passes the page's quick test (that of the malloc fast path, which
     * covers the whole page for a medium page) is taken as sound without the full test. */
    int near = quick && likely(hk_link_near(pg, b, next, hk_class_ranged(pg->class_idx)));
    if (!near && unlikely(!hk_list_end(next) && !hk_link_sound(pg, next))) {
        hk_heap_error("malloc", HK_ERR_LINK, b, pg->block_size, (uintptr_t)b->next);
        next = NULL;
    }
    pg->free = hk_list_end(next) ? HK_FREE_END : next;
    return hk_handed_out(h, pg, b);
}

/* The malloc fast path's pop when the link leaves b's slice or is misaligned, or when the
 * list was empty (b is the end marker): malloc's slow path then, for `size`. */
HK_NOINLINE void *hk_pop_far(heap_t *h, page_t *pg, block_t *b, size_t size) {
    if (unlikely(hk_free_none(b))) {
        /* the pop stored the other end marker; the threads without a heap share that page */
        if (pg != &hk_page_empty) pg->free = HK_FREE_END;
        return hk_malloc_generic(size, h);
    }
    return pop_checked(h, pg, b, 0);
}

static inline __attribute__((always_inline)) void *alloc_from_class(heap_t *h, size_t cls) {
    page_t *pg = h->queues[cls].first;
    if (unlikely(pg == NULL || hk_free_none(pg->free))) {
        pg = page_find(h, cls);
        if (pg == NULL) return NULL;
    }
    return pop_checked(h, pg, pg->free, 1);
}

/* The same for a block at `align`: pages of the classes with KIB_CLASS_OFFSET may not
 * serve it (page_find_aligned). */
static inline void *alloc_aligned_from_class(heap_t *h, size_t cls, size_t align) {
    page_t *pg = h->queues[cls].first;
    if (unlikely(pg == NULL || hk_free_none(pg->free) || (pg->start & (align - 1)) != 0)) {
        pg = page_find_aligned(h, cls, align);
        if (pg == NULL) return NULL;
    }
    return pop_checked(h, pg, pg->free, 1);
}

/* malloc above DIRECT_MAX, from the inline path: one table load finds the class's queue, and
 * its current page is popped as the inline path pops (the same link test, the head stored before
 * it). Every other case is a tail call, so this needs no stack frame: a size above MEDIUM_MAX
 * or no current page (hk_malloc_generic; the static empty heap's queues hold no page, so a
 * thread's first malloc here creates its heap there), an empty page or a link that fails the
 * quick test (hk_pop_far). Those calls read h again from TLS (it is the same heap): its
 * register then serves the page. */
HK_NOINLINE void *hk_malloc_medium(size_t size, heap_t *h) {
    if (unlikely(size > MEDIUM_MAX)) return hk_malloc_generic(size, hk_heap_tls);
    page_t *pg = ((page_queue_t *)((char *)h->queues + hk_medium_queue[(size - 1) >> 11]))->first;
    if (unlikely(pg == NULL)) return hk_malloc_generic(size, hk_heap_tls);
    return hk_pop_quick(h, pg, pg->free, size, 0, 1, 1);
}

HK_NOINLINE void *hk_malloc_generic(size_t size, heap_t *h) {
    if (unlikely(h == &hk_heap_empty)) {
        h = heap_init_thread();
        if (h == NULL) goto oom;
    }
    void *p;
    if (size <= MEDIUM_MAX) p = alloc_from_class(h, hk_size_class(size));
    else p = large_alloc(h, size, 0, 0);
    purger_poll();
    if (p) return p;
oom:
    errno = ENOMEM;
    return NULL;
}

HK_API void *hk_malloc(size_t size) { return hk_malloc_inline(size); }

HK_API void *hk_calloc(size_t count, size_t size) {
    if (hk_hardened()) return hk_hard_calloc(count, size);
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total <= MEDIUM_MAX) {
        void *p = hk_malloc_inline(total);
        if (p) memset(p, 0, total);
        return p;
    }
    heap_t *h = heap_get();
    void *p = h ? large_alloc(h, total, 0, 1) : NULL;
    purger_poll();
    if (!p) errno = ENOMEM;
    return p;
}

/* Aligned allocation: for alignments up to a slice, a size class whose block size is a
 * multiple of the alignment gives aligned blocks (pages start slice-aligned); beyond
 * that, large runs and huge mappings are placed at the alignment. */
void *hk_alloc_aligned(size_t align, size_t size) {
    if (hk_hardened()) return hk_hard_aligned(align, size);
    return hk_alloc_aligned_raw(align, size);
}

void *hk_alloc_aligned_raw(size_t align, size_t size) {
    if (align <= 16) return hk_malloc_fast(size);
    if (size == 0) size = 1;
    heap_t *h = heap_get();
    void *p = NULL;
    if (h == NULL) goto oom;
    size_t cls = size_class_aligned(size, align);
    p = cls < CLASS_COUNT ? alloc_aligned_from_class(h, cls, align)
                          : large_alloc(h, size, align, 0);
    purger_poll();
    if (p) return p;
oom:
    errno = ENOMEM;
    return NULL;
}

HK_API void *hk_aligned_alloc(size_t align, size_t size) {
    if (align == 0 || (align & (align - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return hk_alloc_aligned(align, size);
}

HK_API int hk_posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
    int saved = errno;
    void *p = hk_alloc_aligned(align, size);
    errno = saved;
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

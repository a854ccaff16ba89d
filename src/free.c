/* Free entry points of the hk_ API and the free slow path: cross-thread frees (a lock-free
 * push onto the owning page), huge blocks, and the checks that find a bad free, which
 * heap_error.c reports; a bad pointer is never written through. */

#include "fastpath.h"

HK_API void hk_free(void *p) { hk_free_inline(p); }

/* C23 free_sized: the size is only a hint here; the page knows the block size. */
HK_API void hk_free_sized(void *p, size_t size) {
    (void)size;
    hk_free_inline(p);
}

/* The freer that found a page on its owner's full list sets the owner's hint bit for the
 * class (so the owner collects before it takes a fresh page), then releases the page. */
HK_COLD static void page_notify_owner(segment_t *seg, page_t *pg) {
    heap_t *owner = atomic_load_explicit(&seg->heap, memory_order_acquire);
    if (owner) /* NULL: abandoned; whoever reclaims the segment collects every page */
        atomic_fetch_or_explicit(&owner->remote_hint, 1ull << pg->class_idx, memory_order_release);
    atomic_fetch_and_explicit(&pg->remote_free, ~RF_NOTIFYING, memory_order_release);
}

/* Walks a list only as far as its links are sound: a link damaged by a write after free
 * ends the walk instead of being followed. */
static int list_holds(page_t *pg, const block_t *list, const block_t *b) {
    for (; list && hk_link_sound(pg, list); list = list->next)
        if (list == b) return 1;
    return 0;
}

/* Owner-side free of a block that is marked free or is not at a block boundary. At a carved
 * block's start with the mark set, look for it on the page's lists (the remote list only
 * grows at its head, so walking it here is safe): found, it is a double free. Otherwise the
 * mark was stale, and the block is freed as usual. */
HK_COLD void hk_free_marked(page_t *pg, block_t *b) {
    if (!hk_block_carved(pg, b)) {
        hk_bad_pointer("free", b);
        return;
    }
    uintptr_t rf = atomic_load_explicit(&pg->remote_free, memory_order_acquire);
    if (b->freed == (uintptr_t)pg &&
        (list_holds(pg, pg->free, b) || list_holds(pg, pg->local_free, b) ||
         list_holds(pg, (block_t *)(rf & ~RF_FLAGS), b))) {
        hk_heap_error("free", HK_ERR_DOUBLE, b, pg->block_size, 0);
        return;
    }
    hk_free_local(pg, b);
}

HK_NOINLINE void hk_free_slow(segment_t *seg, page_t *pg, void *p) {
    if (seg->kind != SEG_NORMAL) {
        huge_free(seg, p);
        return;
    }
    if (unlikely(!hk_block_in_page(pg, p))) {
        hk_bad_pointer("free", p);
        return;
    }
#ifdef HAKMEM_BUILD_STATS
    hk_heap_tls->st_remote[pg->class_idx]++; /* the freeing thread's heap: no sharing */
#endif
    /* One CAS pushes the block and, if the page was on the owner's full list, claims the
     * duty to tell the owner (RF_FULL becomes RF_NOTIFYING). Before the push our live
     * block pins the page; after it, only RF_NOTIFYING does. */
    block_t *b = (block_t *)p;
    /* Already marked free: another thread's lists cannot be searched from here, and user
     * data never holds a descriptor address, so the mark alone decides. */
    if (unlikely(b->freed == (uintptr_t)pg)) {
        hk_heap_error("free", HK_ERR_DOUBLE, p, pg->block_size, 0);
        return;
    }
    b->freed = (uintptr_t)pg;
    uintptr_t old = atomic_load_explicit(&pg->remote_free, memory_order_relaxed), next;
    do {
        b->next = (block_t *)(old & ~RF_FLAGS);
        next = (uintptr_t)b | (old & RF_NOTIFYING) | ((old & RF_FULL) << 1);
    } while (!atomic_compare_exchange_weak_explicit(&pg->remote_free, &old, next,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (unlikely(old & RF_FULL)) page_notify_owner(seg, pg);
}

HK_API size_t hk_usable_size(const void *p) {
    segment_t *seg = hk_segment_of(p);
    if (seg == NULL) return 0;
    if (seg->kind == SEG_HUGE)
        return (const uint8_t *)p == (uint8_t *)seg + seg->huge_off ? huge_usable(seg) : 0;
    if (seg->kind != SEG_NORMAL) return 0;
    page_t *pg = hk_page_of(seg, p);
    if (!hk_block_in_page(pg, p) || ((const block_t *)p)->freed == (uintptr_t)pg) return 0;
    return pg->block_size;
}

HK_API int hk_owns(const void *p) { return hk_usable_size(p) != 0; }

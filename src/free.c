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

/* Owner-side free of a block that is marked free or is not at a block boundary. Not the
 * start of a carved block: an invalid pointer. Marked: a double free. Every hand-out clears
 * the mark and user data never holds a descriptor address, so the mark decides; the block
 * may be on one of the page's lists or still in another thread's batch of remote frees
 * (src/remote.c), where no walk of the page's lists could find it. */
HK_COLD void hk_free_marked(page_t *pg, block_t *b) {
    if (!hk_block_carved(pg, b)) {
        hk_bad_pointer("free", b);
        return;
    }
    if (b->freed == (uintptr_t)pg) {
        hk_heap_error("free", HK_ERR_DOUBLE, b, pg->block_size, 0);
        return;
    }
    hk_free_local(pg, b);
}

static void free_foreign(page_t *pg, void *p);

/* A free the fast path did not take: NULL, a foreign pointer, a block of another thread's
 * (or no thread's) segment, or a huge block, which may sit at offset SEG_SIZE of its
 * mapping (an alignment above SEG_SIZE) with its header in the segment before. */
HK_NOINLINE void hk_free_other(void *p) {
    segment_t *seg = hk_segment_of(p);
    if (p == NULL || seg == NULL) hk_bad_pointer("free", p);
    else hk_free_slow(seg, hk_page_of(seg, p), p);
}

/* The same for a p whose segment index is inside the map but whose segment this thread
 * does not own. Most often a block of another live thread's segment (producer/consumer):
 * its map word is that thread's id, which only normal segments carry, so p's own segment
 * index finds it and the header's kind need not be read. HK_OWNER_NONE marks a segment
 * header at that index too (a map word is only ever set for a header's own index), normal
 * or huge: an exited thread's orphaned segments, cached and huge ones. */
HK_NOINLINE void hk_free_unowned(void *p) {
    uintptr_t si = (uintptr_t)p >> SEG_SHIFT, owner = HK_PEEK(hk_seg_owner[si], uintptr_t);
    if (likely(owner > HK_OWNER_NONE)) free_foreign(hk_page_of_index(si, p), p);
    else if (owner == HK_OWNER_NONE) hk_free_slow((segment_t *)(si << SEG_SHIFT), hk_page_of_index(si, p), p);
    else hk_free_other(p);
}

HK_NOINLINE void hk_free_slow(segment_t *seg, page_t *pg, void *p) {
    if (seg->kind != SEG_NORMAL) {
        huge_free(seg, p);
        return;
    }
    free_foreign(pg, p);
}

/* A free into a normal segment's page that this thread does not own. */
static void free_foreign(page_t *pg, void *p) {
    if (unlikely(!hk_block_in_page(pg, p))) {
        hk_bad_pointer("free", p);
        return;
    }
    /* Already marked free: another thread's lists cannot be searched from here, and user
     * data never holds a descriptor address, so the mark alone decides; remote_free sets
     * it and tests what was there in one atomic exchange. */
    remote_free(pg, (block_t *)p);
}

/* The block size of a live block's start; 0 for anything else (a freed block included). */
size_t hk_block_size(const void *p) {
    segment_t *seg = hk_segment_of(p);
    if (seg == NULL) return 0;
    if (seg->kind == SEG_HUGE)
        return (const uint8_t *)p == (uint8_t *)seg + seg->huge_off ? huge_usable(seg) : 0;
    if (seg->kind != SEG_NORMAL) return 0;
    page_t *pg = hk_page_of(seg, p);
    return hk_block_live(pg, p) ? hk_page_usable(pg) : 0;
}

/* malloc_usable_size is called about once per malloc and free by programs that keep their
 * own memory counts (redis's zmalloc_size). A block of a segment this thread owns (the map
 * word is the owner's id, so the segment is a normal one and its descriptors are ours to
 * read) is answered as free's fast path finds it: the segment header's kind and the huge
 * tests are skipped. Everything else takes hk_block_size. */
HK_API size_t hk_usable_size(const void *p) {
    if (hk_hardened()) return hk_hard_usable(p);
    uintptr_t si = (uintptr_t)p >> SEG_SHIFT;
    if (likely(si < HK_PEEK(hk_seg_count, uintptr_t)) &&
        likely(HK_PEEK(hk_seg_owner[si], uintptr_t) == hk_thread_self())) {
        page_t *pg = hk_page_of_index(si, p);
        return hk_block_live(pg, p) ? hk_page_usable(pg) : 0;
    }
    return hk_block_size(p);
}

HK_API int hk_owns(const void *p) { return hk_usable_size(p) != 0; }

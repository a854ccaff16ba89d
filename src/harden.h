/* The hardened build's hooks: every place where the allocator's paths let the hardened build
 * (make hardened, -DHAKMEM_HARDENED=1) add a check. Each hook is an inline function that is
 * empty, or a constant, in the default build, so the default build compiles them to nothing.
 * What the checks do lives in src/hardened.c; this header must never hold a check itself. */
#ifndef HAKMEM_HARDEN_H
#define HAKMEM_HARDEN_H

#include "internal.h"

#ifndef HAKMEM_HARDENED
#define HAKMEM_HARDENED 0
#endif

/* ---- hardened.c (only in the hardened build) ---- */
void *hk_hard_malloc(size_t size);
void *hk_hard_calloc(size_t n, size_t size);
void *hk_hard_realloc(void *p, size_t size);
void *hk_hard_aligned(size_t align, size_t size);
void hk_hard_free(void *p);
size_t hk_hard_usable(const void *p);
block_t *hk_hard_popped(page_t *pg, block_t *b);
void hk_hard_carve(page_t *pg, uint8_t *first, size_t n);
void hk_hard_fresh_page(page_t *pg);
void hk_hard_thread_exit(void);
void hk_hard_guard_segment(segment_t *seg);
void hk_hard_guard_huge(segment_t *seg, size_t map_size);
void hk_hard_unguard_huge(segment_t *seg);
void hk_hard_guard_large(page_t *pg, size_t align);
void hk_hard_unguard_large(page_t *pg);
block_t *hk_hard_next(const block_t *b);
void hk_hard_set_next(block_t *b, block_t *next);

/* 1 in the hardened build: the public entry points hand over to hardened.c. */
static inline int hk_hardened(void) { return HAKMEM_HARDENED; }

/* A block leaves a free list (malloc): check the fill written when it was freed, and that
 * the head b is a block of the page at all (or the list's end). Returns the block to pop. */
static inline block_t *hk_harden_popped(page_t *pg, block_t *b) {
    return HAKMEM_HARDENED ? hk_hard_popped(pg, b) : b;
}

/* A free block's link where a list is walked or joined (remote lists, batches); malloc's
 * pop decodes it in hk_harden_popped. The hardened build stores links encoded with a
 * per-process secret and the block's address, so a forged link decodes to no block. */
static inline block_t *hk_harden_next(const block_t *b) {
    return HAKMEM_HARDENED ? hk_hard_next(b) : b->next;
}

static inline void hk_harden_set_next(block_t *b, block_t *next) {
    if (HAKMEM_HARDENED) hk_hard_set_next(b, next);
    else b->next = next;
}

/* A fresh page's first blocks are being carved: 1 if the hardened build linked them itself
 * (in random order). */
static inline int hk_harden_carve(page_t *pg, uint8_t *first, size_t n) {
    if (HAKMEM_HARDENED) hk_hard_carve(pg, first, n);
    return HAKMEM_HARDENED;
}

/* A page is given a size class: clear what earlier pages left there. */
static inline void hk_harden_fresh_page(page_t *pg) {
    if (HAKMEM_HARDENED) hk_hard_fresh_page(pg);
}

/* A thread exits: release the blocks it holds back from reuse. */
static inline void hk_harden_thread_exit(void) {
    if (HAKMEM_HARDENED) hk_hard_thread_exit();
}

/* Slices of a segment that pages may use; the hardened build keeps the last one as a guard. */
static inline uint64_t hk_harden_usable_slices(uint64_t usable) {
    return HAKMEM_HARDENED ? usable & ~(1ull << (SLICES_PER_SEG - 1)) : usable;
}

/* A segment was freshly mapped: the hardened build makes its guard slice inaccessible. */
static inline void hk_harden_new_segment(segment_t *seg) {
    if (HAKMEM_HARDENED) hk_hard_guard_segment(seg);
}

/* Bytes kept inaccessible before a huge block (after its header) and at the end of its
 * mapping: a guard page each in the hardened build. */
static inline size_t hk_harden_huge_guard(void) { return HAKMEM_HARDENED ? 4096 : 0; }

/* A huge block was freshly mapped: the hardened build makes its guard pages inaccessible. */
static inline void hk_harden_huge_mapped(segment_t *seg, size_t map_size) {
    if (HAKMEM_HARDENED) hk_hard_guard_huge(seg, map_size);
}

/* A huge mapping is about to be unmapped (its statistics: the guards were never committed). */
static inline void hk_harden_huge_unmap(segment_t *seg) {
    if (HAKMEM_HARDENED) hk_hard_unguard_huge(seg);
}

/* Bytes a large block's slice run needs beyond the block: in the hardened build a guard page
 * after it and, before it, a guard page (or, for an alignment above a page, `align` bytes
 * ending in one). */
static inline size_t hk_harden_large_front(size_t align) { return align > 4096 ? align : 4096; }
static inline size_t hk_harden_large_extra(size_t align) {
    return HAKMEM_HARDENED ? hk_harden_large_front(align) + 4096 : 0;
}

/* A large page's block size was set to its whole run: the hardened build moves the block's
 * start (pg->start) past the front guard, shrinks it by both guards and protects them. */
static inline void hk_harden_large_placed(page_t *pg, size_t align) {
    if (HAKMEM_HARDENED) hk_hard_guard_large(pg, align);
}

/* A page's slices go back to their segment: a large block's guards become accessible again. */
static inline void hk_harden_slices_freed(page_t *pg) {
    if (HAKMEM_HARDENED && pg->class_idx == LARGE_CLASS) hk_hard_unguard_large(pg);
}

/* The huge-block cache: off in the hardened build, so every huge block has its own guard. */
static inline int hk_harden_huge_cache_ok(void) { return !HAKMEM_HARDENED; }

#endif

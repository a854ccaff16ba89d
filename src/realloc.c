/* realloc: where a block that changes size goes. A growing block above RUN_MIN moves to a
 * slice run of its own, where it then grows and shrinks in place; a huge block that stays
 * huge is remapped, not copied. Never copies more than the old block holds, never frees the
 * old block before the copy. */
#include <errno.h>
#include <string.h>

#include "fastpath.h"

/* Growing past this, a block leaves its size class for a slice run of its own (64 KiB at
 * least), so that its next growth is in place. Below it, a run's untouched slack would cost
 * more than the copies it saves (figures in docs/architecture.md). */
#define RUN_MIN ((size_t)2 << 10)

static size_t slices_for(size_t size) { return (size + SLICE_SIZE - 1) >> SLICE_SHIFT; }

/* Resize the owner's large block at p (page pg) in place to hold `size` bytes. */
static int run_resize(heap_t *h, page_t *pg, size_t size) {
    size_t k = slices_for(size);
    if (!seg_run_resize(h, pg, k)) return 0;
    hk_page_set_block_size(pg, k * SLICE_SIZE);
    hk_page_publish(pg);
    if (size > pg->run_written) pg->run_written = (uint32_t)size;
    purger_poll(); /* the slices it gave back may want the purger */
    return 1;
}

/* A fresh block for the new size, or NULL. A block growing past RUN_MIN gets a run with
 * room for half as much again as the old one held, so a block that keeps growing is copied
 * a logarithmic number of times even when its neighbours stop it from growing in place. */
static void *realloc_target(heap_t *h, size_t old, size_t size) {
    if (size > old && size > RUN_MIN && size <= LARGE_MAX && h != NULL) {
        size_t want = old + old / 2 > size ? old + old / 2 : size;
        if (want > LARGE_MAX) want = LARGE_MAX;
        void *q = large_alloc(h, want, 0, 0);
        purger_poll();
        if (q) { /* it holds `size` bytes for now: what its slices' reuse may count on */
            hk_page_of((segment_t *)((uintptr_t)q & ~SEG_MASK), q)->run_written = (uint32_t)size;
            return q;
        }
    }
    return hk_malloc_inline(size);
}

/* Move the block to a fresh one of `size` bytes: copy what both hold, free the old one. */
static HK_NOINLINE void *realloc_move(void *p, size_t old, size_t size) {
    void *q = realloc_target(hk_heap_tls != &hk_heap_empty ? hk_heap_tls : NULL, old, size);
    if (q == NULL) return NULL;
    memcpy(q, p, size < old ? size : old);
    hk_free_inline(p);
    return q;
}

/* A block of a slice run (LARGE_CLASS) of the calling thread: resized in place when the
 * slices after it are free (growth) or when it would keep more than twice what it holds. */
static HK_NOINLINE void *realloc_run(page_t *pg, void *p, size_t size) {
    size_t old = pg->block_size;
    segment_t *seg = hk_page_segment(pg);
    heap_t *h = hk_heap_tls;
    if (size <= LARGE_MAX && h != &hk_heap_empty &&
        hk_segment_owner((uintptr_t)seg >> SEG_SHIFT) == hk_thread_self()) {
        if (run_resize(h, pg, size)) return p;
    }
    if (size <= old) return p; /* another thread's run: keep it rather than copy */
    return realloc_move(p, old, size);
}

static HK_NOINLINE void *realloc_slow(void *p, size_t size);

/* A block of a segment this thread owns (so a normal one: its header's kind is not read)
 * whose new size it still holds without wasting more than half of it (or, a slice run,
 * without freeing a slice): found and checked as
 * free's fast path finds and checks a block (the owner's copy of the carved-block test, the
 * free mark), and kept. Programs that grow strings a few bytes at a time call little else.
 * NULL (no segment at index 0) and every other case take realloc_slow, which looks again. */
HK_API void *hk_realloc(void *p, size_t size) {
    if (hk_hardened()) return hk_hard_realloc(p, size);
    uintptr_t si = (uintptr_t)p >> SEG_SHIFT;
    if (likely(si < HK_PEEK(hk_seg_count, uintptr_t)) &&
        likely(HK_PEEK(hk_seg_owner[si], uintptr_t) == hk_thread_self())) {
        page_t *pg = hk_page_of_index(si, p);
        if (likely(((block_t *)p)->freed != (uintptr_t)pg &&
                   hk_carved_offset(pg, (uintptr_t)p - pg->start))) {
            size_t old = hk_page_usable(pg);
            if (likely(size <= old)) { /* size 0 fails both: old >= 16, and it needs no slice */
                if (likely(size >= old / 2)) return p;
                if (pg->class_idx == LARGE_CLASS && size > RUN_MIN && slices_for(size) == pg->slice_count)
                    return p; /* a run keeps its slices while the new size needs all of them */
            }
        }
    }
    return realloc_slow(p, size);
}

static HK_NOINLINE void *realloc_slow(void *p, size_t size) {
    if (p == NULL) return hk_malloc_inline(size);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        hk_free_inline(p);
        return NULL;
    }
    segment_t *seg = hk_segment_of(p);
    if (likely(seg != NULL && seg->kind == SEG_NORMAL)) {
        page_t *pg = hk_page_of(seg, p);
        if (likely(hk_block_live(pg, p))) {
            size_t old = hk_page_usable(pg);
            /* Keep the block when the new size fits and would not waste more than half of it. */
            if (size <= old && size >= old / 2) return p;
            if (pg->class_idx == LARGE_CLASS && size > RUN_MIN) {
                /* a run keeps its slices while the new size needs all of them */
                if (size <= old && slices_for(size) == pg->slice_count) return p;
                return realloc_run(pg, p, size);
            }
            return realloc_move(p, old, size);
        }
    } else if (seg != NULL && seg->kind == SEG_HUGE && (uint8_t *)p == (uint8_t *)seg + seg->huge_off) {
        size_t old = huge_usable(seg);
        if (size <= old && size >= old / 2) return p;
        if (size > LARGE_MAX) { /* stays huge: remapped, not copied */
            void *q = huge_resize(seg, size);
            if (q) return q;
        }
        return realloc_move(p, old, size);
    }
    size_t old = hk_block_size(p);
    if (old == 0) {
        hk_bad_pointer("realloc", p);
        errno = EINVAL;
        return NULL;
    }
    if (size <= old && size >= old / 2) return p;
    return realloc_move(p, old, size);
}

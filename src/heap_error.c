/* Heap errors: the one place that words a bad free, a corrupted free list or a damaged block,
 * and decides once, by HAKMEM_BAD_FREE, whether the program stops (abort, the default), is
 * warned, or goes on. Never allocates (the line is built on the stack and written with
 * write(2)); never writes through the pointer it reports. */
#include <stdlib.h>
#include <unistd.h>

#include "harden.h"
#include "internal.h"

/* ---- a tiny formatter: no stdio, no allocation ---- */
typedef struct {
    char buf[256];
    size_t n;
} line_t;

static void put_str(line_t *l, const char *s) {
    while (*s && l->n < sizeof l->buf - 1) l->buf[l->n++] = *s++;
}

static void put_num(line_t *l, uintptr_t v, unsigned base) {
    char tmp[24];
    size_t k = 0;
    do {
        tmp[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16) put_str(l, "0x");
    while (k && l->n < sizeof l->buf - 1) l->buf[l->n++] = tmp[--k];
}

static const char *const what[] = {
    [HK_ERR_FOREIGN] = "invalid free of ",
    [HK_ERR_DOUBLE] = "double free of ",
    [HK_ERR_INTERIOR] = "invalid free of ",
    [HK_ERR_NO_BLOCK] = "invalid free of ",
    [HK_ERR_RACE] = "double free of ",
    [HK_ERR_LINK] = "corrupted free list: the free block at ",
    [HK_ERR_OVERFLOW] = "heap overflow past the end of the block at ",
    [HK_ERR_UNDERFLOW] = "heap underflow before the start of the block at ",
    [HK_ERR_FREED_WRITE] = "write after free into ",
    [HK_ERR_META] = "heap metadata overwritten at ",
};

HK_COLD void hk_heap_error(const char *call, int kind, const void *p, size_t block, size_t off) {
    atomic_fetch_add_explicit(&hk_counters.bad_frees, 1, memory_order_relaxed);
    /* A damaged descriptor stops the program in every mode: what the allocator would do next
     * with that page (hand out, carve, give back its memory) rests on what was overwritten. */
    int fatal = kind == HK_ERR_META;
    if (hk_opt.bad_free == HK_BAD_FREE_IGNORE && !fatal) return;
    line_t l = {.n = 0};
    put_str(&l, "hakmem: ");
    put_str(&l, call);
    put_str(&l, "(): ");
    put_str(&l, what[kind]);
    put_num(&l, (uintptr_t)p, 16);
    switch (kind) {
    case HK_ERR_FOREIGN: put_str(&l, " (not a hakmem block)"); break;
    case HK_ERR_INTERIOR:
        put_str(&l, " (interior pointer, ");
        put_num(&l, off, 10);
        put_str(&l, off == 1 ? " byte into a block of " : " bytes into a block of ");
        put_num(&l, block, 10);
        put_str(&l, " bytes)");
        break;
    case HK_ERR_NO_BLOCK:
        put_str(&l, " (inside hakmem's heap, but no live block starts there: never handed out, or"
                    " freed before?)");
        break;
    case HK_ERR_RACE:
        put_str(&l, " (block of ");
        put_num(&l, block, 10);
        put_str(&l, " bytes, freed by two threads)");
        break;
    case HK_ERR_META:
        put_str(&l, " (in a segment header, which holds the page descriptors: a wild write, such as an"
                    " underflow far before a block?)");
        break;
    case HK_ERR_LINK:
        /* The hardened build stores links encoded with its secret: the word found there could
         * give away part of the secret (a link partly overwritten), so it is not shown. */
        if (hk_hardened()) {
            put_str(&l, " holds no valid link to the next one (");
        } else {
            put_str(&l, " holds ");
            put_num(&l, off, 16);
            put_str(&l, " where its link to the next one belongs (");
        }
        put_num(&l, block, 10);
        put_str(&l, "-byte blocks: a write after free?)");
        break;
    case HK_ERR_OVERFLOW:
        put_str(&l, " (the bytes after the requested size were overwritten, in a block of ");
        put_num(&l, block, 10);
        put_str(&l, " bytes)");
        break;
    case HK_ERR_DOUBLE:
        if (block == 0) {
            put_str(&l, " (a block whose page was freed with it)");
            break;
        }
        /* fall through */
    default:
        put_str(&l, " (block of ");
        put_num(&l, block, 10);
        put_str(&l, " bytes)");
        break;
    }
    put_str(&l, hk_opt.bad_free == HK_BAD_FREE_WARN && !fatal ? "; ignored\n" : "\n");
    ssize_t w = write(2, l.buf, l.n);
    (void)w;
    if (hk_opt.bad_free == HK_BAD_FREE_ABORT || fatal) abort();
}

/* Say what is wrong with a pointer that is not a live block's start. Reads only hakmem's own
 * descriptors and, at a block boundary, the block's free mark (memory inside our segment). */
HK_COLD void hk_bad_pointer(const char *call, const void *p) {
    if (p == NULL) return;
    segment_t *seg = hk_segment_of(p);
    if (seg == NULL) {
        hk_heap_error(call, HK_ERR_FOREIGN, p, 0, 0);
        return;
    }
    if (seg->kind != SEG_NORMAL) {
        const uint8_t *blk = (const uint8_t *)seg + seg->huge_off;
        size_t size = seg->map_size - seg->huge_off;
        if ((const uint8_t *)p == blk && seg->kind == SEG_HUGE_CACHED)
            hk_heap_error(call, HK_ERR_DOUBLE, p, size, 0);
        else if (seg->kind == SEG_HUGE && (const uint8_t *)p > blk &&
                 (const uint8_t *)p < blk + size)
            hk_heap_error(call, HK_ERR_INTERIOR, p, size, (size_t)((const uint8_t *)p - blk));
        else hk_heap_error(call, HK_ERR_NO_BLOCK, p, 0, 0);
        return;
    }
    page_t *pg = hk_page_of(seg, p);
    if ((const uint8_t *)p < (uint8_t *)seg + SLICE_SIZE || pg->reserved == 0) {
        /* A page freed with its last block (a large one, say) keeps that block's mark until
         * the slices are used again: a second free of the block finds it there. */
        size_t slice = (size_t)((uintptr_t)p - (uintptr_t)seg) >> SLICE_SHIFT;
        int readable = (hk_harden_usable_slices(~1ull) >> slice) & 1; /* not header or guard */
        int marked = readable && pg->reserved == 0 && ((uintptr_t)p & 15) == 0 &&
                     ((const block_t *)p)->freed == (uintptr_t)pg;
        hk_heap_error(call, marked ? HK_ERR_DOUBLE : HK_ERR_NO_BLOCK, p, 0, 0);
        return;
    }
    size_t off = (size_t)((uintptr_t)p - pg->start); /* a large block may start past a guard */
    size_t idx = off / pg->block_size, in = off % pg->block_size;
    if (idx >= pg->reserved) hk_heap_error(call, HK_ERR_NO_BLOCK, p, 0, 0);
    else if (in != 0) hk_heap_error(call, HK_ERR_INTERIOR, p, pg->block_size, in);
    else if (((const block_t *)p)->freed == (uintptr_t)pg)
        hk_heap_error(call, HK_ERR_DOUBLE, p, pg->block_size, 0);
    else hk_heap_error(call, HK_ERR_NO_BLOCK, p, 0, 0);
}

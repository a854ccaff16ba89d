/* Size-class tables: block size per class, the small-size and medium-size lookups, and how
 * many slices a page of each class spans, and the usable size a request gets (nallocx). Filled
 * once at process init, read-only afterwards. */
#include "internal.h"

uint32_t hk_class_size[CLASS_COUNT];
uint8_t hk_small_class[SMALL_LOOKUP_COUNT];
uint8_t hk_medium_class[MEDIUM_MAX >> 11];
uint16_t hk_medium_queue[MEDIUM_MAX >> 11];
uint8_t hk_class_slices[CLASS_COUNT];

/* A page should hold at least this many blocks so that page turnover stays rare. Medium
 * pages hold 128 (at most MEDIUM_MAX_SLICES): with 8, a class whose live count hovers around
 * a few pages' worth filled and emptied a page every few operations, moving it to and from
 * the full list (random 1-8 KiB: one page_find per 4 mallocs). Pages are extended lazily and
 * touched blocks are reused first, so a bigger page does not raise RSS by itself. Figures
 * for 8, 32, 64 and 128 blocks are in docs/architecture.md. */
#define MIN_BLOCKS_PER_PAGE 8
#define MEDIUM_BLOCKS_PER_PAGE 128
/* 31 slices: two such pages and the header (slice 0) fill a segment, so the pages of the big
 * classes lie side by side in memory instead of one to a segment after an empty half. */
#define MEDIUM_MAX_SLICES 31

void size_class_init(void) {
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        size_t size;
        if (c < 16) size = (c + 1) * 16;
        else if (c < 24) size = 256 + (c - 15) * 32;
        else if (c < SMALL_CLASSES) size = 512 + (c - 23) * 64;
        else {
            size_t k = c - SMALL_CLASSES, b = 10 + k / 4;
            size = ((size_t)1 << b) + (k % 4 + 1) * ((size_t)1 << (b - 2));
        }
        hk_class_size[c] = (uint32_t)size;
        size_t blocks = c < SMALL_CLASSES ? MIN_BLOCKS_PER_PAGE : MEDIUM_BLOCKS_PER_PAGE;
        size_t slices = (size * blocks + SLICE_SIZE - 1) / SLICE_SIZE;
        /* The direct table's medium classes take a power of two of slices (at most 16),
         * placed at its natural alignment (page_fresh), so malloc's quick link test covers
         * the whole page (page_t.link_mask). The classes above test links against the page's
         * span (link_span) and may lie anywhere. */
        if (c >= SMALL_CLASSES && size <= DIRECT_MAX && (slices & (slices - 1)))
            slices = (size_t)1 << (64 - __builtin_clzll(slices));
        if (slices > MEDIUM_MAX_SLICES) slices = MEDIUM_MAX_SLICES;
        hk_class_slices[c] = (uint8_t)(slices ? slices : 1);
    }
    for (size_t i = 0; i < (MEDIUM_MAX >> 11); i++) { /* n in (i*2K, (i+1)*2K] */
        size_t n = (i + 1) << 11, b = 63 - (size_t)__builtin_clzl(n - 1);
        hk_medium_class[i] = (uint8_t)(SMALL_CLASSES + (b - 10) * 4 + (((n - 1) >> (b - 2)) & 3));
        hk_medium_queue[i] = (uint16_t)(hk_medium_class[i] * sizeof(page_queue_t));
    }
    for (size_t i = 0; i < SMALL_LOOKUP_COUNT; i++) {
        size_t s = i * 16;
        if (s <= 256) hk_small_class[i] = (uint8_t)(i ? i - 1 : 0);
        else if (s <= 512) hk_small_class[i] = (uint8_t)(16 + (s - 257) / 32);
        else hk_small_class[i] = (uint8_t)(24 + (s - 513) / 64);
    }
}

/* The usable size malloc (align <= 16) or an aligned allocation of `size` bytes would give, the
 * way alloc.c and large.c place them: a class's block size, a slice run's whole slices, a huge
 * mapping's pages (a fresh one: a cached mapping may give more). 0 when it cannot be served. */
size_t size_usable(size_t size, size_t align) {
    if (align <= 16) align = 0;
    else if (size == 0) size = 1;
    size_t cls = size_class_aligned(size, align);
    return cls < CLASS_COUNT ? hk_class_size[cls] : large_usable(size, align);
}

/* The class an aligned allocation takes: the first from size's up whose block size is a
 * multiple of the alignment (pages start slice-aligned, so its blocks are aligned, once the
 * first is: page_find_aligned), or CLASS_COUNT when a large run or huge mapping must serve
 * it. */
size_t size_class_aligned(size_t size, size_t align) {
    if (align > SLICE_SIZE || size > MEDIUM_MAX) return CLASS_COUNT;
    size_t cls = hk_size_class(size < align ? align : size);
    while (align && cls < CLASS_COUNT && hk_class_size[cls] % align != 0) cls++;
    return cls;
}

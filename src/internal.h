/* hakmem internals: the types every module shares (segment, page, heap), the size-class
 * geometry, and the few inline helpers the fast paths need. Nothing here allocates or
 * takes a lock; slow-path functions are declared here and defined in their own module. */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hakmem.h"

/* Everything declared below is internal to the library: hidden visibility lets the compiler
 * address globals directly (rip-relative) instead of through the GOT. */
#pragma GCC visibility push(hidden)

#define HK_API __attribute__((visibility("default")))
#define HK_NOINLINE __attribute__((noinline))
#define HK_COLD __attribute__((cold, noinline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Geometry. Segments are SEG_SIZE-aligned, so any block finds its segment by masking.
 * A segment is cut into 64 slices of 64 KiB; slice 0 holds the segment header. */
#define SEG_SHIFT 22
#define SEG_SIZE ((size_t)1 << SEG_SHIFT)
#define SEG_MASK (SEG_SIZE - 1)
#define SLICE_SHIFT 16
#define SLICE_SIZE ((size_t)1 << SLICE_SHIFT)
#define SLICES_PER_SEG (SEG_SIZE / SLICE_SIZE)
/* Addresses below 2^47 (user space with 4-level paging) are the only ones we map. */
#define SEG_MAP_COUNT ((size_t)1 << (47 - SEG_SHIFT))

/* Size classes: 16-byte steps to 256 B, then 8 per doubling to 1 KiB (waste <= 12.5 %),
 * then 4 per doubling to MEDIUM_MAX. Above that: large (slice runs) and huge (own mapping). */
#define SMALL_MAX 1024
#define SMALL_CLASSES 32
#define MEDIUM_MAX ((size_t)128 << 10)
#define CLASS_COUNT 60
#define LARGE_CLASS CLASS_COUNT /* pseudo-class of one-block slice runs */
#define LARGE_MAX (SEG_SIZE / 2)
/* malloc's inline path serves sizes up to DIRECT_MAX from the heap's direct table, indexed
 * by (size+15)/16: the small classes and the medium ones up to 8 KiB (a class edge). A
 * larger table costs more in updates than it saves (16 KiB, 32 KiB: see architecture.md). */
#define DIRECT_MAX ((size_t)8 << 10)
#define DIRECT_COUNT (DIRECT_MAX / 16 + 1)
/* Pages of the classes whose size is a multiple of 1 KiB (1, 2, 3, ... 8 KiB and every
 * class above) start their first block this many bytes past the page start, and their blocks
 * lie this much further apart than the class size (the stride, block_size, is the class size
 * + 64; the usable size stays the class size, hk_page_usable). At the class size as stride
 * the starts of a page's blocks, where programs write first, fell in one to four sets of the
 * L1 cache (FIFO and random rounds of 2, 4, 8, 16 and 32 KiB blocks ran at half the rate,
 * of 1 KiB blocks 13 % slower); the other classes spread them over 8 sets or more already.
 * The offset also makes a block's last bytes share a 4 KiB page with the next
 * block's first instead of each block of a 4 KiB multiple filling whole pages of its own (a
 * program that writes a block's ends and a few words between touches 2 pages of a 16 KiB
 * block, not 3). Their blocks are so aligned to 64 bytes only: once a heap is asked for a
 * block of such a class at a bigger alignment, its new pages of that class start at the page
 * start with the class size as stride (heap_t.aligned_classes, page_find_aligned). Figures in
 * architecture.md, "Medium blocks". */
#define KIB_CLASS_OFFSET ((size_t)64)
static inline size_t hk_class_offset(size_t class_size) {
    return class_size % 1024 == 0 ? KIB_CLASS_OFFSET : 0;
}
#define SMALL_LOOKUP_COUNT (SMALL_MAX / 16 + 1)

/* A free block. `freed` holds the address of its page descriptor while the block is free
 * and 0 once it is handed out, so a second free of the same block is caught cheaply: user
 * data never holds that address (descriptors live in the segment header, which is never
 * handed out). Blocks are at least 16 bytes, so both words fit. */
typedef struct block_s {
    struct block_s *next;
    uintptr_t freed;
} block_t;

/* The end of a page's free list and the head of an empty one, in place of NULL: a location
 * that can be read, so malloc's inline pop loads the head's link without testing the head
 * first. The link at hk_free_end[0] is the address of hk_free_end[1] and that one's the
 * address of hk_free_end[0]: a pop of either stores the other, and both fail every page's
 * quick link test (they differ in bit 3 and lie in no page), so the pop's cold path sees
 * the end there (hk_free_none). A list spliced from remote frees ends in NULL, which ends a
 * list as well (hk_list_end); only a page's head is never NULL. */
extern const uintptr_t hk_free_end[2];
#define HK_FREE_END ((block_t *)&hk_free_end[0])

/* 1 when b, a page's free-list head, is the end marker: the list is empty. */
static inline int hk_free_none(const block_t *b) {
    return (uintptr_t)b - (uintptr_t)hk_free_end < sizeof hk_free_end;
}

/* 1 when b, a link of a page's free list, ends the list. */
static inline int hk_list_end(const block_t *b) { return b == NULL || hk_free_none(b); }

struct heap_s;

/* One page: a run of slices holding blocks of one class. The owner thread's malloc pops
 * `free` and its free pushes there (the block freed last is handed out next, while its
 * line is still in cache); other threads push on `remote_free`,
 * whose low bits carry the RF_ flags below (blocks are 16-byte aligned).
 * Two cache lines: the first is written by the owner's malloc and free; the second holds
 * what remote freers read and write, so a thread that only frees into a page another
 * thread allocates from does not pull the owner's line away on every free. */
typedef struct page_s {
    /* owner's line */
    block_t *free;
    struct page_s *next, *prev; /* heap queue or full list */
    /* Blocks handed out and not yet returned to `free`. On the full list (in_full,
     * not a large page) it is parked at the number of owner frees the page waits for
     * before it returns to its queue (page.c, full_wait): every block was out when it was
     * parked, so the true count follows, and the free that brings it to 0 takes the slow
     * path with the one test `--used == 0` that also finds an emptied page. */
    uint32_t used;
    uint16_t capacity;          /* blocks carved into lists so far (lazy extension) */
    uint8_t in_full;            /* on the heap's full list; the owner's own bookkeeping */
    uint8_t sparse_looks;       /* page_purge_sparse's looks that found it nearly empty */
    /* The carved-block test (hk_carved_offset): an offset from `start` times div_magic is
     * below `limit` exactly for the starts of the first `capacity` blocks. div_magic is
     * ceil(2^64 / block_size), one more for a power of two; limit is capacity times
     * block_size * div_magic mod 2^64 (hk_page_set_limit). Both 0 for a free slice. */
    uint64_t div_magic;
    uintptr_t start;            /* address of the first block, for that test */
    uint64_t limit;
    /* The malloc paths follow a link without the full check (hk_link_sound) only if it
     * passes the page's quick test (hk_link_near), at 16-byte alignment either way. */
    union {
        /* The classes of the direct table: (next ^ block) & link_mask is 0, the next block
         * lies in the same naturally aligned power-of-two run of slices of this page (one
         * slice for small pages, the whole page for medium pages placed at their natural
         * alignment). */
        uintptr_t link_mask;
        /* The classes above DIRECT_MAX, whose pages lie anywhere: next - start, rotated
         * right by 4, is below link_span, the bytes of the page's blocks over 16. */
        uintptr_t link_span;
    };
    /* shared line: fixed while the page lives, except remote_free, r_limit (once per
     * extension) and a large page's run_written */
    _Alignas(64) _Atomic uintptr_t remote_free; /* block count << RF_COUNT_SHIFT | list | RF_ flags */
    uint32_t block_size;
    uint16_t reserved; /* blocks that fit; 0 for a free slice */
    uint8_t slice_count;
    uint8_t class_idx;
    /* Leading slices known resident in every 4 KiB page the page's carving writes (see
     * seg_take_run): carving there costs no page fault, so it is done in one go. */
    uint8_t warm_slices;
    uint8_t is_zero;      /* large pages: memory known to be zero */
    uint32_t run_written; /* large pages: most bytes the block was asked to hold */
    /* Copies of the page's carved-block test (start, div_magic, limit) for other threads'
     * frees (hk_block_in_page), written by hk_page_publish once the page is set up and
     * r_limit again at every extension: the owner's line holds the originals, and a remote
     * freer that read them there would pull that line from the owner's core at every free.
     * The limit is at most the page's size, so 32 bits hold it; atomic, since the owner
     * stores it while other threads test their blocks against it (relaxed: a block that
     * reached a freer came through the program's own synchronization after the store). */
    _Atomic uint32_t r_limit;
    uintptr_t r_start;
    uint64_t r_div_magic;
} page_t;
/* RF_FULL: the page is on its owner's full list, so the next remote freer must tell the
 * owner. That freer swaps it for RF_NOTIFYING in the same CAS that pushes its block and
 * holds it while it sets the owner's hint; the page is not freed or marked full again
 * until it clears, so the freer never touches a page that has been reused. */
#define RF_FULL ((uintptr_t)1)
#define RF_NOTIFYING ((uintptr_t)2)
#define RF_FLAGS (RF_FULL | RF_NOTIFYING)
/* The number of blocks on the remote list rides in the word's top bits (block addresses
 * are below 2^47), so the owner takes list and count with one atomic and splices the list
 * without walking it. A page holds at most 65535 blocks; the count saturates at
 * RF_COUNT_MAX (the page then never looks empty: a leak, never a premature reuse). */
#define RF_COUNT_SHIFT 47
#define RF_COUNT_MAX (UINTPTR_MAX >> RF_COUNT_SHIFT)
#define RF_LIST(w) ((block_t *)((w) & ((((uintptr_t)1 << RF_COUNT_SHIFT) - 1) & ~RF_FLAGS)))
#define RF_COUNT(w) ((uint32_t)((w) >> RF_COUNT_SHIFT))
/* A power of two, so the slice table is indexed with a shift. */
_Static_assert(sizeof(page_t) == 128, "page_t must stay two cache lines");
_Static_assert(CLASS_COUNT <= 64, "class bit masks (remote_hint, empty_current) are 64 bits");

enum { SEG_NORMAL = 1, SEG_HUGE = 2, SEG_HUGE_CACHED = 3 };

/* Segments are SEG_SIZE-aligned, so a table at a fixed offset in every header would put the
 * same slice's descriptor of every segment in one set of every cache level (of a last-level
 * cache indexed by the address's low bits, as AMD's are): a segment's descriptor table
 * starts seg_colour descriptors (128 bytes each) into slice_store. */
#define SEG_COLOURS 16

typedef struct segment_s {
    /* The slice descriptors: slice_store from the segment's colour on (seg_colour). */
    page_t *slices;
    /* The descriptor of the page each slice belongs to: the slice's own entry for a free
     * slice and for a page's first slice; NULL in huge mappings. One load finds a block's
     * page, from 8 lines per segment that every free reads, rather than from one line in
     * each slice's descriptor. One cache line before it, 8 lines of it: the slice table
     * stays at an odd line, so that the descriptors' owner lines (read and written by every
     * malloc and free of their pages) fall in odd L1 sets: medium pages start at multiples
     * of their power-of-two slice count, which put their descriptors at multiples of 1 KiB
     * into the table, in the same L1 sets as the starts of blocks of 1 KiB multiples. */
    _Alignas(64) page_t *page_map[SLICES_PER_SEG];
    page_t slice_store[SLICES_PER_SEG + SEG_COLOURS - 1];
    _Atomic(struct heap_s *) heap;     /* owner heap, NULL when abandoned */
    uint64_t free_mask;                /* slices not in a page */
    uint64_t dirty_mask;               /* free slices that may still be resident */
    /* Slices that may be resident in full: a page that wrote them to their end held them (a
     * class page's carved blocks, a large block's run_written), and their pages stay resident
     * under whatever takes them next until purged. A run placed there would keep pages it
     * never writes, so runs take other resident slices first. */
    uint64_t full_mask;
    /* The class of the page that last held each free slice (LARGE_CLASS: a run), for the
     * rule of seg_take_run; meaningful where dirty_mask is set. */
    uint8_t written_by[SLICES_PER_SEG];
    /* Free slices across which the class page that last held them had carved blocks (each
     * of their block starts written): with written_by, what a new page can carve at once. */
    uint64_t warm_mask;
    uint64_t spare_mask; /* slices of its heap's spare pages (seg_page_spare) */
    uint32_t kind;
    size_t map_size; /* huge: bytes mapped from the segment start */
    size_t huge_off; /* huge: offset of the block */
    uint64_t cached_at_ns;
    struct segment_s *next, *prev;
} segment_t;

/* Blocks this thread freed into one page of another thread, not yet handed over
 * (src/remote.c). A free slot has page NULL; a slot whose batch was sent keeps its page
 * with head NULL for a while. */
typedef struct remote_batch_s {
    page_t *page;
    block_t *head, *tail;
    uint16_t room; /* blocks it can still take before it is sent */
    uint16_t cap;  /* blocks it takes in all: cap - room are in it */
    uint32_t born; /* the heap's batch_ticks when its first block came (empty: when sent) */
} remote_batch_t;
#define REMOTE_SLOTS (2 * CLASS_COUNT) /* two per size class */

typedef struct page_queue_s {
    page_t *first, *last;
} page_queue_t;

typedef struct heap_s {
    page_t *direct[DIRECT_COUNT]; /* (size+15)/16 -> page to pop from, for sizes <= DIRECT_MAX */
    uintptr_t thread_id;
    page_queue_t queues[CLASS_COUNT];   /* pages with free blocks; first is current */
    page_queue_t full[CLASS_COUNT + 1]; /* pages without; plus all large pages */
    _Atomic uint64_t remote_hint;       /* class bits: a full page got a remote free */
    uint64_t empty_current;             /* class bits: the current page emptied (may be stale) */
    /* The thrash guard of retire_empty_current (src/page.c): classes whose empty current page
     * it retired in this and the last generation of fresh pages, and those that needed a
     * fresh page again that soon, whose empty page it leaves alone while the page is small;
     * fresh_pages counts the fresh pages taken, the generations' clock. */
    uint64_t retired_recent[2], keep_empty;
    /* Classes whose empty medium page, carved past its first extension, the last look of
     * retire_empty_current kept; per class, the looks in a row that kept it while the class
     * did not empty it again. */
    uint64_t kept_idle;
    uint8_t kept_looks[CLASS_COUNT];
    uint32_t fresh_pages;
    uint64_t aligned_classes; /* class bits: pages start at the page start (KIB_CLASS_OFFSET) */
    size_t carved; /* bytes of blocks its class pages have carved: what it has written */
    segment_t *segments;
    /* Guards `segments` and the slice masks of those segments: the owner takes it on its
     * segment slow paths (never on malloc/free fast paths), the purger to purge them. */
    pthread_mutex_t seg_lock;
    _Atomic uint64_t purge_deadline_ns; /* 0: no dirty slice waiting to be purged */
    /* Spare pages (src/segment.c): class pages emptied by their owner's frees, kept whole
     * with their free lists for the class's next page; under seg_lock, and a page's queue
     * link (next) chains them. spare_classes: the classes that have one. */
    page_t *spares[CLASS_COUNT];
    _Atomic uint64_t spare_classes;
    size_t spare_slices; /* the slices they hold */
    /* Classes whose emptied pages went back to their slices since the heap's last purge:
     * their blocks' 4 KiB pages may still be resident for the class's next page (page.c,
     * resident_before_extend). Set under seg_lock, cleared by the purge and by page_find. */
    _Atomic uint64_t freed_classes;
    /* This thread's frees into other threads' pages (src/remote.c). batch_busy and
     * batch_steal are the hand-shake with a thread that sends an idle heap's batches. */
    _Atomic uint32_t batch_count; /* pending batches (slots holding blocks) */
    _Atomic uint32_t batch_sends; /* batches sent so far: an idle heap's count stands still */
    _Atomic uint32_t batch_busy, batch_steal;
    uint32_t steal_seen; /* batch_sends at the last look; under the heaps lock */
    uint32_t batch_ticks; /* blocks this thread has batched: the batches' clock */
    uint64_t batch_live[(REMOTE_SLOTS + 63) / 64]; /* slots with a page, for the age sweep */
    /* Plus LARGE_CLASS's pair, never used (a large block goes at once), so that the batched
     * free indexes by class without testing it. */
    remote_batch_t batches[REMOTE_SLOTS + 2];
    struct heap_s *next_all; /* registry of live heaps, or the free pool */
    /* An exited thread's heap kept whole for the next thread (src/heap.c): the orphans'
     * stack, and when it joined it. */
    struct heap_s *next_orphan;
    uint64_t orphaned_ns;
#ifdef HAKMEM_BUILD_STATS
    uint64_t st_alloc[CLASS_COUNT + 2], st_free[CLASS_COUNT + 2], st_remote[CLASS_COUNT + 2];
#endif
} heap_t;

/* ---- globals ---- */
/* The segment map (src/segment.c): one word per possible segment of the 47-bit address
 * space, mapped at process init with MAP_NORESERVE (only the pages where segments lie are
 * ever touched). 0: not a segment of ours. HK_OWNER_NONE: a segment no thread owns (huge,
 * cached, abandoned, an orphaned heap's, or a dead thread's in a fork child). Otherwise the owner thread's
 * hk_thread_self(), so free tests "ours and local" with one compare. */
#define HK_OWNER_NONE ((uintptr_t)1)
extern _Atomic uintptr_t *hk_seg_owner;
extern _Atomic uintptr_t hk_seg_count; /* entries of hk_seg_owner; 0 until it is mapped */
extern heap_t hk_heap_empty;
extern page_t hk_page_empty;
extern __thread heap_t *hk_heap_tls __attribute__((tls_model("initial-exec")));
extern __thread uint8_t hk_heap_exited __attribute__((tls_model("initial-exec")));
extern uint32_t hk_class_size[CLASS_COUNT];
extern uint8_t hk_small_class[SMALL_LOOKUP_COUNT];
extern uint8_t hk_medium_class[MEDIUM_MAX >> 11];
/* Byte offset of the class's queue in heap_t.queues. Relative to queues, not to the heap: a
 * malloc above DIRECT_MAX that comes before process init (a C++ runtime's first allocation,
 * from its constructor) reads the still zero table as queues[0], which the static empty
 * heap leaves empty, and so takes the slow path that runs init. */
extern uint16_t hk_medium_queue[MEDIUM_MAX >> 11];
extern uint8_t hk_class_slices[CLASS_COUNT];

/* ---- inline helpers ---- */

/* A relaxed load of a word other threads may store at the same time, for the fast paths'
 * tests whose every outcome is safe (a stale owner id or map byte sends the call to the
 * slow path, which re-reads). A plain load, so the compiler folds it into the compare (one
 * instruction per test, measured in architecture.md); under ThreadSanitizer the atomic
 * load it understands. */
#if defined(__SANITIZE_THREAD__)
#define HK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HK_TSAN 1
#endif
#endif
#ifdef HK_TSAN
#define HK_PEEK(obj, type) atomic_load_explicit(&(obj), memory_order_relaxed)
#else
#define HK_PEEK(obj, type) (*(const type *)&(obj))
#endif
/* The head of a page's free list, read and stored by malloc's inline pop: only the owner's
 * pops and pushes touch a real page's, but the threads without a heap yet all pop the
 * shared hk_page_empty's (each storing an end marker there). Relaxed atomics under
 * ThreadSanitizer, which then sees no race; plain accesses otherwise. */
#ifdef HK_TSAN
#define HK_HEAD_LOAD(obj) __atomic_load_n(&(obj), __ATOMIC_RELAXED)
#define HK_HEAD_STORE(obj, v) __atomic_store_n(&(obj), (v), __ATOMIC_RELAXED)
#else
#define HK_HEAD_LOAD(obj) (obj)
#define HK_HEAD_STORE(obj, v) ((obj) = (v))
#endif
static inline uintptr_t hk_thread_self(void) {
    uintptr_t tid;
    __asm__("mov %%fs:0, %0" : "=r"(tid)); /* TCB self pointer: unique per live thread */
    return tid;
}

/* Class of a size up to MEDIUM_MAX. Above DIRECT_MAX the class edges are multiples of
 * 2 KiB, so a table indexed by (n-1)/2 KiB replaces the clz formula there. */
static inline size_t hk_size_class(size_t n) {
    if (n <= SMALL_MAX) return hk_small_class[(n + 15) >> 4];
    if (likely(n > DIRECT_MAX)) return hk_medium_class[(n - 1) >> 11];
    size_t b = 63 - (size_t)__builtin_clzl(n - 1); /* n in (2^b, 2^(b+1)] */
    return SMALL_CLASSES + (b - 10) * 4 + (((n - 1) >> (b - 2)) & 3);
}

/* Index of the segment a block pointer belongs to: (p-1) so that a huge block placed at
 * offset SEG_SIZE still maps to its header. */
static inline uintptr_t hk_segment_index(const void *p) {
    return ((uintptr_t)p - 1) >> SEG_SHIFT;
}

/* The segment map's word for index si: 0 for NULL, foreign pointers, or before init. The
 * count is published (release) after the map's address, so it is loaded first: here with
 * acquire; free's fast path keeps plain loads, which fold into its compares, in the same
 * order (x86 does not reorder loads with loads). */
static inline uintptr_t hk_segment_owner(uintptr_t si) {
    return likely(si < atomic_load_explicit(&hk_seg_count, memory_order_acquire))
               ? HK_PEEK(hk_seg_owner[si], uintptr_t)
               : 0;
}

/* 1 when the index is one of our segments; NULL and foreign pointers give 0. */
static inline int hk_segment_known(uintptr_t si) { return hk_segment_owner(si) != 0; }

static inline void hk_segment_set_owner(const void *seg, uintptr_t owner) {
    atomic_store_explicit(&hk_seg_owner[(uintptr_t)seg >> SEG_SHIFT], owner, memory_order_relaxed);
}

static inline segment_t *hk_segment_of(const void *p) {
    uintptr_t si = hk_segment_index(p);
    return hk_segment_known(si) ? (segment_t *)(si << SEG_SHIFT) : NULL;
}

/* The page of a block in a normal segment. The slice index comes from p's own bits (a shift
 * and a mask, no subtraction). */
static inline page_t *hk_page_of(segment_t *seg, const void *p) {
    return seg->page_map[((uintptr_t)p >> SLICE_SHIFT) & (SLICES_PER_SEG - 1)];
}

/* hk_page_of for the free paths, which have si = p >> SEG_SHIFT already: p >> SLICE_SHIFT is
 * si * SLICES_PER_SEG + the slice, so the map entry's address is si * (SEG_SIZE - the map's
 * size) + (p >> SLICE_SHIFT) * 8 + the map's offset: a multiply and a shift, no masks (two
 * instructions fewer than masking out the segment and the slice). The multiply is written
 * out for x86-64: gcc otherwise turns it into shifts and a subtract, or folds the sum back
 * into the masked form. */
static inline page_t *hk_page_of_index(uintptr_t si, const void *p) {
    enum { stride = SEG_SIZE - sizeof(((segment_t *)0)->page_map) };
    uintptr_t base;
#if defined(__x86_64__)
    __asm__("imul %2, %1, %0" : "=r"(base) : "r"(si), "i"(stride) : "cc");
#else
    base = si * stride;
#endif
    return *(page_t *const *)(base + ((uintptr_t)p >> SLICE_SHIFT) * sizeof(page_t *) +
                              offsetof(segment_t, page_map));
}

/* Where seg's descriptor table starts in its slice_store (SEG_COLOURS). */
static inline size_t seg_colour(const void *seg) {
    return ((uintptr_t)seg >> SEG_SHIFT) % SEG_COLOURS;
}

/* The segment whose slice table holds page descriptor pg. */
static inline segment_t *hk_page_segment(const page_t *pg) {
    return (segment_t *)((uintptr_t)pg & ~SEG_MASK);
}

static inline uint8_t *hk_page_start(const page_t *pg) {
    segment_t *seg = hk_page_segment(pg);
    return (uint8_t *)seg + (size_t)(pg - seg->slices) * SLICE_SIZE;
}

/* Bytes from pg's first slice to its first block (KIB_CLASS_OFFSET, a hardened lead). */
static inline size_t hk_page_lead(const page_t *pg) {
    return (size_t)(pg->start - (uintptr_t)hk_page_start(pg));
}

/* The classes above the direct table: their pages lie anywhere in a segment, and malloc tests
 * their links against the page's span (page_t.link_span) instead of a mask. */
static inline int hk_class_ranged(size_t cls) { return hk_class_size[cls] > DIRECT_MAX; }

/* The usable size of pg's blocks: the stride less the 64 bytes between blocks of a page
 * whose first block starts KIB_CLASS_OFFSET in (no other page's start has bit 6 set:
 * pages start on slices, and a hardened large block a page or more into its run). */
static inline size_t hk_page_usable(const page_t *pg) {
    return pg->block_size - (pg->start & KIB_CLASS_OFFSET);
}

/* The carved-block test's bound for pg's capacity, in the owner's line and its copy. For an
 * offset n = k * block_size, n * div_magic mod 2^64 is k * e, e = block_size * div_magic mod
 * 2^64 (1 <= e <= block_size); any other offset below 2^32 gives at least div_magic (Lemire,
 * Kaser and Kurz; for a power of two 2^j, div_magic 2^(64-j) + 1 gives n itself for a
 * multiple and at least 2^(64-j) otherwise), far above capacity * e, which is at most the
 * page's size. An offset below the start wraps above 2^32 and lands there too. */
static inline void hk_page_set_limit(page_t *pg) {
    pg->limit = (uint64_t)pg->capacity * (pg->block_size * pg->div_magic);
    atomic_store_explicit(&pg->r_limit, (uint32_t)pg->limit, memory_order_relaxed);
}

/* Set a fresh page's block size and the constants of its carved-block test. */
static inline void hk_page_set_block_size(page_t *pg, size_t size) {
    pg->block_size = (uint32_t)size;
    pg->div_magic = UINT64_MAX / size + 1 + ((size & (size - 1)) == 0);
    hk_page_set_limit(pg);
    pg->start = (uintptr_t)hk_page_start(pg);
}

/* Set a fresh class page's quick link test (page_t.link_mask, link_span) once its start and
 * reserved count are final. */
static inline void hk_page_set_link(page_t *pg) {
    if (hk_class_ranged(pg->class_idx)) {
        pg->link_span = (uintptr_t)pg->reserved * pg->block_size >> 4;
        return;
    }
    /* The biggest power of two 2^j of slices dividing both the first slice's index and the
     * slice count: the page is then tiled by aligned runs of 2^j slices, so two addresses
     * that agree above bit SLICE_SHIFT + j lie in one run inside the page. */
    segment_t *seg = hk_page_segment(pg);
    size_t j = (size_t)__builtin_ctzll((uint64_t)(pg - seg->slices) | pg->slice_count | 64);
    pg->link_mask = ~((SLICE_SIZE << j) - 1) | 15;
}

/* The quick test of a link from b (hk_page_set_link): one of the page's own blocks at 16-byte
 * alignment, or in b's aligned run of its slices. `ranged`: pg is of a class above
 * DIRECT_MAX. NULL and every other link fail it. */
static inline int hk_link_near(const page_t *pg, const block_t *b, const block_t *next, int ranged) {
    if (ranged) {
        uintptr_t d = (uintptr_t)next - pg->start;
        return ((d >> 4) | (d << 60)) < pg->link_span;
    }
    return (((uintptr_t)next ^ (uintptr_t)b) & pg->link_mask) == 0;
}

/* 1 when `off` (bytes from the page's first block) is the start of one of its first
 * `capacity` blocks, the carved ones: one multiply and one compare (hk_page_set_limit). A
 * block not yet carved was never handed out, so it is no block to free. */
static inline int hk_carved_offset(const page_t *pg, uintptr_t off) {
    return off * pg->div_magic < pg->limit;
}

/* 1 when q is the start of a block carved in pg. */
static inline int hk_block_carved(const page_t *pg, const void *q) {
    return hk_carved_offset(pg, (uintptr_t)q - pg->start);
}

/* The same test for another thread than the owner, on the shared line's copies
 * (hk_page_publish), never the owner's line. A block the freer got was carved before it was
 * handed out, and the owner stored the new limit before that, so the copy it reads covers it. */
static inline int hk_block_in_page(const page_t *pg, const void *q) {
    return ((uintptr_t)q - pg->r_start) * pg->r_div_magic <
           atomic_load_explicit(&pg->r_limit, memory_order_relaxed);
}

/* 1 when q is a live block of pg: carved and not marked free (any thread may ask). */
static inline int hk_block_live(const page_t *pg, const void *q) {
    return hk_block_in_page(pg, q) && ((const block_t *)q)->freed != (uintptr_t)pg;
}

/* Copy a page's carved-block test into its shared line, once its start and block size are
 * final (and again whenever they change: a large block resized); hk_page_set_limit keeps
 * r_limit. */
static inline void hk_page_publish(page_t *pg) {
    pg->r_start = pg->start;
    pg->r_div_magic = pg->div_magic;
    atomic_store_explicit(&pg->r_limit, (uint32_t)pg->limit, memory_order_relaxed);
}

/* A free-list link is sound when it ends the list or names a carved block of the page. */
static inline int hk_link_sound(const page_t *pg, const block_t *q) {
    return q == NULL || hk_block_carved(pg, q);
}

static inline uint64_t hk_slice_run_mask(size_t first, size_t count) {
    return (count >= 64 ? ~0ull : ((1ull << count) - 1)) << first;
}

/* ---- size_class.c ---- */
void size_class_init(void);
size_t size_usable(size_t size, size_t align);
size_t size_class_aligned(size_t size, size_t align);

/* ---- os.c ---- */
void *os_map(size_t size);
void *os_reserve(size_t size);
void *os_map_aligned(size_t size, size_t align, size_t bias);
int os_map_at(void *at, size_t size, int flags);
uint64_t os_random(void);
void os_unmap(void *p, size_t size);
int os_move(void *from, size_t size, void *to);
int os_grow_in_place(void *p, size_t size, size_t new_size);
void os_purge(void *p, size_t size);
void os_advise_thp(void *p, size_t size);
int os_barrier_all(void);
uint64_t os_now_ns(void);

/* ---- seg_window.c ---- */
void *seg_window_open(size_t *count);
void *seg_os_map(size_t size, size_t align, size_t bias);

/* ---- segment.c ---- */
int seg_map_init(void);
page_t *seg_page_alloc(heap_t *h, size_t slices, size_t align, size_t cls);
page_t *seg_run_alloc(heap_t *h, size_t slices, size_t size);
void seg_page_free(heap_t *h, page_t *pg);
void seg_page_spare(heap_t *h, page_t *pg);
page_t *seg_spare_take(heap_t *h, size_t cls, size_t offset);
int seg_run_resize(heap_t *h, page_t *pg, size_t k);
void seg_purge_heap(heap_t *h, int force);
void seg_purge_resident(heap_t *h);
uint64_t seg_purge_due(heap_t *h, uint64_t now);
void seg_abandon_all(heap_t *h);
void seg_set_owner_all(heap_t *h, uintptr_t owner);
uint64_t seg_abandoned_due(int force);
uint64_t seg_list_due(const segment_t *list);
int seg_cache_trim(int force);
uint64_t seg_cache_due(void);
void seg_lock_all(void);
void seg_unlock_all(void);
void seg_after_fork_child(heap_t *self);

/* ---- page.c ---- */
page_t *page_find(heap_t *h, size_t cls);
page_t *page_find_aligned(heap_t *h, size_t cls, size_t align);
void page_free_slow(heap_t *h, page_t *pg);
int page_adopt(heap_t *h, page_t *pg);
void page_await_notifier(page_t *pg);
void page_purge_sparse(heap_t *h);

/* ---- heap.c ---- */
void heap_process_init(void);
heap_t *heap_init_thread(void);
void heap_lock_all(void);
void heap_unlock_all(void);
heap_t *heap_live_list(void);
int heap_threads_live(void);
void heap_after_fork_child(void);
uint64_t heap_purge_due(uint64_t now);
uint64_t heap_orphans_due(int force);
void heap_stats_merge(uint64_t *allocs, uint64_t *frees, uint64_t *remote);

/* ---- remote.c ---- */
void remote_free(page_t *pg, block_t *b);
void remote_flush(heap_t *h);
void remote_reclaim_idle(int force);

/* ---- large.c ---- */
void *large_alloc(heap_t *h, size_t size, size_t align, int zero);
void huge_free(segment_t *seg, void *p);
void *huge_resize(segment_t *seg, size_t size);
size_t huge_usable(segment_t *seg);
size_t large_usable(size_t size, size_t align);
int huge_cache_trim(int force);
uint64_t huge_cache_due(void);
void huge_lock(void);
void huge_unlock(void);

/* ---- purger.c ---- */
void purger_notify(void);
void purger_start_pending(void);
extern _Atomic int hk_purger_pending;
/* Called where an allocator call has finished with the heap (no hakmem lock held, no list
 * half walked): start the purger if purger_notify asked for it. pthread_create allocates
 * (the thread's DTV, an attribute extension), and an allocation made from inside a heap
 * operation would change the lists that operation is walking. */
static inline void purger_poll(void) {
    if (unlikely(atomic_load_explicit(&hk_purger_pending, memory_order_relaxed))) purger_start_pending();
}
void purger_thread_exit(void);
void purger_fork_prepare(void);
void purger_fork_parent(void);
void purger_fork_child(void);

/* ---- alloc.c / free.c ---- */
void *hk_malloc_generic(size_t size, heap_t *h); /* size first: it arrives in the same register */
void *hk_malloc_medium(size_t size, heap_t *h);  /* size > DIRECT_MAX */
void *hk_alloc_aligned(size_t align, size_t size);
void hk_free_slow(segment_t *seg, page_t *pg, void *p);
void hk_free_marked(page_t *pg, block_t *b);
void hk_free_other(void *p);
void hk_free_unowned(void *p);
void *hk_pop_far(heap_t *h, page_t *pg, block_t *b, size_t size);
void *hk_alloc_aligned_raw(size_t align, size_t size);
size_t hk_block_size(const void *p);

/* ---- heap_error.c ---- */
enum {
    HK_ERR_FOREIGN,     /* not in any hakmem segment */
    HK_ERR_DOUBLE,      /* a block freed already */
    HK_ERR_INTERIOR,    /* inside a block, not at its start */
    HK_ERR_NO_BLOCK,    /* in a segment, but no live block there */
    HK_ERR_RACE,        /* one block freed by two threads at once */
    HK_ERR_LINK,        /* a free-list link that names no block of its page */
    HK_ERR_OVERFLOW,    /* the canary after a block was overwritten (hardened) */
    HK_ERR_UNDERFLOW,   /* the sealed word before a page's first block was overwritten (hardened) */
    HK_ERR_FREED_WRITE, /* a freed block's fill pattern was overwritten (hardened) */
    HK_ERR_META,        /* a segment header's map or page descriptor overwritten (hardened) */
};
enum { HK_BAD_FREE_ABORT, HK_BAD_FREE_WARN, HK_BAD_FREE_IGNORE };
void hk_heap_error(const char *call, int kind, const void *p, size_t block, size_t off);
void hk_bad_pointer(const char *call, const void *p);

/* ---- options.c ---- */
#define HK_STATS_JSON 2 /* hk_opt.stats: 0 none, 1 the readable report, 2 JSON */
typedef struct hk_options_s {
    long stats, verbose, purge_delay_ms, segment_cache, large_cache_mb, bad_free;
    char stats_file[4096]; /* "" : stderr */
    long background, thp;
} hk_options_t;
extern hk_options_t hk_opt;
void options_load(void);
/* One option as text, for reports and listings: its current value, or its default. */
typedef struct hk_option_view_s {
    const char *name, *meaning, *value;
    int is_number;
    char number[24];
} hk_option_view_t;
int options_view(size_t i, int want_default, hk_option_view_t *v); /* 0 past the last */

/* ---- stats.c ---- */
typedef struct hk_counters_s {
    _Atomic int64_t seg_count, seg_peak, mapped, mapped_peak, committed, committed_peak;
    _Atomic int64_t huge_count, purges, bad_frees, abandoned, reclaimed;
    _Atomic int64_t pages[CLASS_COUNT + 1];
} hk_counters_t;
extern hk_counters_t hk_counters;
void stats_add(_Atomic int64_t *v, _Atomic int64_t *peak, int64_t delta);
void hk_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- init.c ---- */
void hk_process_init(void);

#pragma GCC visibility pop

#endif

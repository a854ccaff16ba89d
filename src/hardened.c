/* The hardened build's checks (make hardened; the default build compiles this file empty).
 * Around the ordinary paths: a trailer after every block (the requested size, sealed with a
 * per-process key of its own, and up to 64 pattern bytes) checked on free, and a sealed word
 * before the first block of a page that starts its blocks 64 bytes in; freed blocks zeroed and
 * the first 256 bytes of zeroes (of any free block) checked when malloc hands it out; a
 * per-thread quarantine that delays reuse; free-list links encoded with the secret and
 * checked fully when decoded; fresh blocks linked in random order; guard regions between
 * segments and around large and huge blocks (the hooks in harden.h place them). Never called
 * with a lock held; never writes through a pointer it has not found to be a live block. */
#include "harden.h"

#if HAKMEM_HARDENED

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fastpath.h"

#define TRAILER 8          /* the sealed requested size, in the block's last 8 bytes */
#define PAD_MAX 64         /* pattern bytes written and checked after the requested size */
#define PAD_BYTE 0xCA
#define FILL_MAX 4096      /* bytes of a freed block (after its two link words) zeroed */
#define CHECK_MAX 256      /* of which checked when the block is handed out again */
#define QUARANTINE 64      /* blocks each thread holds back from reuse */
#define QUARANTINE_MAX (MEDIUM_MAX + KIB_CLASS_OFFSET) /* extents up to the largest class block's */

static const uint8_t zeros[CHECK_MAX], pad_bytes[PAD_MAX] = {[0 ... PAD_MAX - 1] = PAD_BYTE};
/* Two per-process keys: `secret` encodes the free-list links, `seal_key` seals the trailers
 * and lead words. A trailer sits right after the program's bytes, so a read a few bytes past
 * a block, which gives the trailer, its address and the request away, gives the seal key
 * only: not what forging a link needs. */
static uint64_t secret, seal_key;
static __thread void *quarantine[QUARANTINE] __attribute__((tls_model("initial-exec")));
static __thread unsigned quarantine_next __attribute__((tls_model("initial-exec")));
static __thread uint64_t rng_state __attribute__((tls_model("initial-exec")));

/* Set *key once, to `value` (odd, so never 0) unless another thread got there first. */
static uint64_t key_once(uint64_t *key, uint64_t value) {
    uint64_t expected = 0;
    value |= 1;
    if (__atomic_compare_exchange_n(key, &expected, value, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return value;
    return expected;
}

static uint64_t get_secret(void) {
    uint64_t k = __atomic_load_n(&secret, __ATOMIC_RELAXED);
    return likely(k != 0) ? k : key_once(&secret, os_random());
}

static uint64_t get_seal_key(void) {
    uint64_t k = __atomic_load_n(&seal_key, __ATOMIC_RELAXED);
    return likely(k != 0) ? k : key_once(&seal_key, os_random());
}

static uint64_t rng_next(void) {
    if (unlikely(rng_state == 0)) rng_state = get_secret() ^ (uintptr_t)&rng_state;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t seal(const void *p, size_t n) { return (uint64_t)n ^ get_seal_key() ^ (uintptr_t)p; }

/* Free-list links are stored as next ^ secret ^ (the block's address). The secret is odd and
 * blocks are 16-byte aligned, so a link written by anyone who does not know the secret (a
 * pointer to any block, NULL, zeroes) decodes to an odd address: no block, caught. */
static block_t *link_code(const block_t *b, const block_t *next) {
    return (block_t *)((uintptr_t)next ^ get_secret() ^ (uintptr_t)b);
}

block_t *hk_hard_next(const block_t *b) { return link_code(b, b->next); }
void hk_hard_set_next(block_t *b, block_t *next) { b->next = link_code(b, next); }

/* A write over a segment's header (a wild pointer, an underflow of a megabyte) replaces what
 * every call trusts: the program stops with a message rather than run on that (a fault
 * inside malloc, or blocks handed out twice). `at`: the damaged word or descriptor. */
static void __attribute__((noreturn)) header_damaged(const char *call, const void *at) {
    hk_heap_error(call, HK_ERR_META, at, 0, 0);
    abort(); /* hk_heap_error stops the program for HK_ERR_META; this says so to the compiler */
}

/* p's page descriptor, from the page map of its segment seg (a normal one): an entry that is
 * no descriptor of the segment was overwritten. The map is only ever set to descriptors of
 * its own segment, so another thread's update cannot fail this. */
static page_t *page_of(const char *call, segment_t *seg, const void *p) {
    _Static_assert((sizeof(page_t) & (sizeof(page_t) - 1)) == 0, "descriptor size: a power of two");
    enum { shift = __builtin_ctz(sizeof(page_t)), count = sizeof seg->slice_store / sizeof(page_t) };
    page_t *pg = hk_page_of(seg, p);
    /* In the store and at a descriptor's start in one compare: the rotate puts the offset's
     * low bits on top, so a misaligned one is too large. */
    uintptr_t off = (uintptr_t)pg - (uintptr_t)seg->slice_store;
    if (unlikely(((off >> shift) | (off << (64 - shift))) >= count))
        header_damaged(call, &seg->page_map[((uintptr_t)p >> SLICE_SHIFT) & (SLICES_PER_SEG - 1)]);
    return pg;
}

/* The bytes from a live block's start to the next block's, 0 for anything else: its usable
 * size, and in a page with KIB_CLASS_OFFSET the 64 bytes between blocks too (the stride),
 * so that the pad and the trailer end where the next block starts and an underflow of that
 * block reaches them. *page: the block's page descriptor in a normal segment, else NULL. */
static inline __attribute__((always_inline)) size_t block_extent(const char *call, const void *p,
                                                                 page_t **page) {
    segment_t *seg = hk_segment_of(p);
    *page = NULL;
    if (seg == NULL) return hk_block_size(p); /* not ours: 0 */
    if (likely(seg->kind == SEG_NORMAL)) {
        page_t *pg = *page = page_of(call, seg, p);
        return hk_block_live(pg, p) ? pg->block_size : 0;
    }
    if (unlikely(seg->kind != SEG_HUGE && seg->kind != SEG_HUGE_CACHED))
        header_damaged(call, &seg->kind);
    return hk_block_size(p);
}

/* A block of a size class that malloc just took off a free list: its first word still
 * holds the decoded link to the next free block, a heap address that would also tell the
 * program where its next blocks go (the random order of fresh blocks). Large and huge blocks
 * hold no link (and a fresh one's first page stays untouched). */
static uint8_t *handed_out(uint8_t *p, size_t extent) {
    if (extent <= MEDIUM_MAX) ((block_t *)p)->next = NULL;
    return p;
}

/* The block was just handed out for a request of n bytes (block size bs > n + TRAILER - 1). */
static inline __attribute__((always_inline)) void *decorate(uint8_t *p, size_t n) {
    page_t *pg;
    size_t bs = block_extent("malloc", p, &pg);
    /* A block malloc just handed out is live in its page, unless the page's descriptor (its
     * copy of the carved-block test) was overwritten since the pop. */
    if (unlikely(bs == 0)) header_damaged("malloc", pg);
    size_t pad = bs - TRAILER - n;
    memset(p + n, PAD_BYTE, pad < PAD_MAX ? pad : PAD_MAX);
    uint64_t t = seal(p, n);
    memcpy(p + bs - TRAILER, &t, sizeof t);
    return p;
}

/* The requested size of a live block, or SIZE_MAX if its trailer or pad was overwritten. */
static size_t trailer_size(const uint8_t *p, size_t bs) {
    uint64_t t;
    memcpy(&t, p + bs - TRAILER, sizeof t);
    size_t n = (size_t)(t ^ get_seal_key() ^ (uintptr_t)p);
    if (n > bs - TRAILER) return SIZE_MAX;
    size_t pad = bs - TRAILER - n;
    if (pad > PAD_MAX) pad = PAD_MAX;
    return memcmp(p + n, pad_bytes, pad) == 0 ? n : SIZE_MAX;
}

static size_t fill_len(size_t bs) { return (bs < FILL_MAX ? bs : FILL_MAX) - sizeof(block_t); }

/* The first CHECK_MAX bytes of the fill are compared (libc's memcmp is vectorised): a write
 * after free lands near a block's start far more often than deep inside a big one. */
static int fill_intact(const uint8_t *p, size_t bs) {
    size_t len = fill_len(bs);
    return memcmp(p + sizeof(block_t), zeros, len < CHECK_MAX ? len : CHECK_MAX) == 0;
}

/* Pages of the classes that are multiples of 1 KiB start their first block
 * KIB_CLASS_OFFSET bytes in; the last 8 of those bytes hold a sealed word, checked when the
 * first block is freed, so an underflow of that block is caught as one of any other block is
 * (by its neighbour's trailer). */
static uint64_t lead_word(const page_t *pg) { return ~get_seal_key() ^ pg->start; }

/* The pages with that word: known by the bit hk_page_usable reads (a run's block starts a
 * page or more into it, after its guard page, and never has the bit). */
static int has_lead_word(const page_t *pg) { return (pg->start & KIB_CLASS_OFFSET) != 0; }

static int lead_intact(const page_t *pg, const uint8_t *p) {
    uint64_t w;
    if (!has_lead_word(pg) || (uintptr_t)p != pg->start) return 1;
    memcpy(&w, p - 8, sizeof w);
    return w == lead_word(pg);
}

void *hk_hard_malloc(size_t size) {
    if (size > PTRDIFF_MAX - TRAILER) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = hk_malloc_fast(size + TRAILER);
    return p ? decorate(handed_out(p, size + TRAILER), size) : NULL;
}

void *hk_hard_aligned(size_t align, size_t size) {
    if (size > PTRDIFF_MAX - TRAILER) {
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = hk_alloc_aligned_raw(align, size + TRAILER);
    return p ? decorate(handed_out(p, size + TRAILER), size) : NULL;
}

void *hk_hard_calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = hk_hard_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

size_t hk_hard_usable(const void *p) {
    page_t *pg;
    size_t bs = block_extent("malloc_usable_size", p, &pg);
    if (bs == 0) return 0;
    size_t n = trailer_size(p, bs);
    return n == SIZE_MAX ? 0 : n;
}

void *hk_hard_realloc(void *p, size_t size) {
    if (p == NULL) return hk_hard_malloc(size);
    if (size == 0) {
        hk_hard_free(p);
        return NULL;
    }
    page_t *pg;
    size_t bs = block_extent("realloc", p, &pg), old = bs ? trailer_size(p, bs) : 0;
    if (bs == 0) {
        hk_bad_pointer("realloc", p);
        errno = EINVAL;
        return NULL;
    }
    if (old == SIZE_MAX) {
        hk_heap_error("realloc", HK_ERR_OVERFLOW, p, bs - TRAILER, 0);
        errno = EINVAL;
        return NULL;
    }
    /* A size the block holds, and that would not leave more than half of it unused: resized in
     * place (new pad and trailer), so a block grown a few bytes at a time is copied once per
     * size class, not on every call. */
    if (size <= bs - TRAILER && size >= (bs - TRAILER) / 2) return decorate(p, size);
    void *q = hk_hard_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, size < old ? size : old);
    hk_hard_free(p);
    return q;
}

/* A quarantined block's two link words still hold what its free left: NULL and the free
 * mark (so a write of zeroes is caught too). */
static int links_intact(const block_t *b, const page_t *pg) {
    return b->next == NULL && b->freed == (uintptr_t)pg;
}

/* A quarantined block goes to its free list at last, its link words intact; a write into
 * the rest meanwhile is caught when malloc hands it out (hk_hard_popped). */
static void release(uint8_t *p) {
    block_t *b = (block_t *)p;
    segment_t *seg = hk_segment_of(p);
    page_t *pg = page_of("free", seg, p);
    if (unlikely(!links_intact(b, pg))) {
        hk_heap_error("free", HK_ERR_FREED_WRITE, p, pg->block_size - TRAILER, 0);
        return; /* leaked: what else was written there is unknown */
    }
    if (hk_segment_owner((uintptr_t)p >> SEG_SHIFT) != hk_thread_self()) {
        b->freed = 0; /* the remote free marks it again and links it with hk_harden_set_next */
        hk_free_slow(seg, pg, p);
        return;
    }
    hk_free_local(pg, b); /* the block is known live and at a block start */
}

void hk_hard_free(void *ptr) {
    uint8_t *p = ptr;
    if (p == NULL) return;
    page_t *pg;
    size_t bs = block_extent("free", p, &pg);
    if (bs == 0) { /* not a live block: a double free (its mark is set) or a bad pointer */
        hk_bad_pointer("free", p);
        return;
    }
    if (trailer_size(p, bs) == SIZE_MAX) {
        hk_heap_error("free", HK_ERR_OVERFLOW, p, bs - TRAILER, 0);
        return; /* leaked: its neighbours may be damaged too */
    }
    if (bs > QUARANTINE_MAX || pg == NULL) { /* large, or huge */
        hk_free_fast(p);
        return;
    }
    if (!lead_intact(pg, p)) {
        hk_heap_error("free", HK_ERR_UNDERFLOW, p, bs - TRAILER, 0);
        return; /* leaked, as for a damaged trailer */
    }
    memset(p + sizeof(block_t), 0, fill_len(bs));
    ((block_t *)p)->next = NULL;
    ((block_t *)p)->freed = (uintptr_t)pg; /* a second free now finds the block freed */
    unsigned i = quarantine_next++ % QUARANTINE;
    uint8_t *old = quarantine[i];
    quarantine[i] = p;
    if (old) release(old);
}

void hk_hard_thread_exit(void) {
    for (unsigned i = 0; i < QUARANTINE; i++) {
        uint8_t *p = quarantine[i];
        quarantine[i] = NULL;
        if (p) release(p);
    }
}

/* At exit the exiting thread's quarantine is checked as its blocks would be checked later:
 * their link words as release does, their fill as malloc does. A write after one of the
 * program's last frees is so reported before the program ends, not never. Nothing is
 * released: other destructors and the C library still allocate and free after this. */
__attribute__((destructor)) static void quarantine_check_at_exit(void) {
    for (unsigned i = 0; i < QUARANTINE; i++) {
        uint8_t *p = quarantine[i];
        if (p == NULL) continue;
        page_t *pg = page_of("exit", hk_segment_of(p), p);
        if (!links_intact((const block_t *)p, pg) || !fill_intact(p, pg->block_size))
            hk_heap_error("exit", HK_ERR_FREED_WRITE, p, pg->block_size - TRAILER, 0);
    }
}

/* A block leaves a free list. The head itself must be a carved block of the page: only the
 * page's own pops and frees store it, each with a block checked, so anything else (NULL, a
 * wild address) means a write over the page's descriptor in the segment header, and the
 * program stops before the head is read (the owner alone writes both, so no race fails it).
 * Its link is decoded in place for the pop that follows and must name a carved block of the
 * page (or end the list); its second word must be its free mark (the page's descriptor);
 * past its two link words it must hold zeroes: those its free wrote, or those of a fresh page
 * (hk_hard_fresh_page), so a write into any free block is caught here. The fast path calls
 * this again for a link that leaves the block's slice (hk_pop_far): the mark, replaced by a
 * sealed one at the first call, says it is done. */
block_t *hk_hard_popped(page_t *pg, block_t *b) {
    uintptr_t done = (uintptr_t)pg ^ get_secret();
    if (hk_free_none(b)) return b; /* an empty list */
    if (unlikely(!hk_block_carved(pg, b))) header_damaged("malloc", pg);
    if (b->freed == done) return b; /* checked already */
    block_t *next = hk_hard_next(b);
    if (!hk_list_end(next) && !hk_link_sound(pg, next)) {
        hk_heap_error("malloc", HK_ERR_LINK, b, pg->block_size, (uintptr_t)b->next);
        next = NULL;
    }
    if (b->freed != (uintptr_t)pg || !fill_intact((const uint8_t *)b, pg->block_size))
        hk_heap_error("malloc", HK_ERR_FREED_WRITE, b, pg->block_size - TRAILER, 0);
    b->next = next;
    b->freed = done;
    return b;
}

/* Link n fresh blocks from `first` in random order (Fisher-Yates over their indices). */
void hk_hard_carve(page_t *pg, uint8_t *first, size_t n) {
    uint16_t idx[4096 / 16];
    size_t bsize = pg->block_size;
    /* In groups of up to 256 blocks (a carve of resident slices can be a whole page), each
     * linked in its own random order in front of the list. */
    for (size_t done = 0; done < n;) {
        size_t m = n - done < sizeof idx / sizeof idx[0] ? n - done : sizeof idx / sizeof idx[0];
        uint8_t *base = first + done * bsize;
        for (size_t i = 0; i < m; i++) idx[i] = (uint16_t)i;
        for (size_t i = m - 1; i > 0; i--) {
            size_t j = (size_t)(rng_next() % (i + 1));
            uint16_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (size_t i = 0; i < m; i++) { /* marked free and linked, as a free would leave them */
            block_t *b = (block_t *)(base + idx[i] * bsize);
            b->freed = (uintptr_t)pg;
            hk_hard_set_next(b, i + 1 < m ? (block_t *)(base + idx[i + 1] * bsize) : pg->free);
        }
        pg->free = (block_t *)(base + idx[0] * bsize);
        done += m;
    }
}

/* Memory of an earlier page may hold what looks like a freed block's mark: clear it. */
void hk_hard_fresh_page(page_t *pg) {
    uint8_t *base = hk_page_start(pg);
    if (!pg->is_zero) memset(base, 0, (size_t)pg->slice_count * SLICE_SIZE);
    if (has_lead_word(pg)) {
        uint64_t w = lead_word(pg);
        memcpy((uint8_t *)pg->start - 8, &w, sizeof w);
    }
}

#define GUARD ((size_t)4096)

/* Make [p, p+n) inaccessible and give back what it held (a reused slice may be resident). A
 * failure (the kernel's limit on mappings) leaves the memory usable, unguarded. */
static void guard(uint8_t *p, size_t n, int prot) {
    if (prot == PROT_NONE) madvise(p, n, MADV_DONTNEED);
    if (mprotect(p, n, prot) != 0 && hk_opt.verbose)
        hk_message("mprotect of a guard region failed (errno %d)", errno);
}

/* Guard pages are mapped but never committed. */
static void uncommitted(int64_t bytes) {
    stats_add(&hk_counters.committed, &hk_counters.committed_peak, -bytes);
}

/* The segment's last slice, and the rest of slice 0 after the header: an overflow past a
 * segment's last page or an underflow before its first faults. Fresh mappings are not yet
 * resident, and neither region is counted as committed. */
void hk_hard_guard_segment(segment_t *seg) {
    size_t hdr = (sizeof(segment_t) + GUARD - 1) & ~(GUARD - 1);
    if (mprotect((uint8_t *)seg + (SLICES_PER_SEG - 1) * SLICE_SIZE, SLICE_SIZE, PROT_NONE) != 0 ||
        mprotect((uint8_t *)seg + hdr, SLICE_SIZE - hdr, PROT_NONE) != 0) {
        if (hk_opt.verbose) hk_message("mprotect of a guard slice failed (errno %d)", errno);
    }
}

/* A guard page after the header (before the block) and at the end of the mapping. */
void hk_hard_guard_huge(segment_t *seg, size_t map_size) {
    guard((uint8_t *)seg + seg->huge_off - GUARD, GUARD, PROT_NONE);
    guard((uint8_t *)seg + map_size - GUARD, GUARD, PROT_NONE);
    uncommitted(2 * GUARD);
}

void hk_hard_unguard_huge(segment_t *seg) {
    (void)seg; /* the mapping goes as a whole */
    uncommitted(-2 * (int64_t)GUARD);
}

/* A large block of a run of slices: the run's last page and the page before the block (its
 * first, or for an alignment above a page, the last of the `align` bytes skipped) are guards. */
void hk_hard_guard_large(page_t *pg, size_t align) {
    size_t run = pg->block_size, front = hk_harden_large_front(align);
    uint8_t *base = hk_page_start(pg);
    hk_page_set_block_size(pg, run - front - GUARD);
    pg->start += front;
    guard(base + front - GUARD, GUARD, PROT_NONE);
    guard(base + run - GUARD, GUARD, PROT_NONE);
    uncommitted(2 * GUARD);
}

void hk_hard_unguard_large(page_t *pg) {
    uint8_t *blk = (uint8_t *)pg->start;
    guard(blk - GUARD, GUARD, PROT_READ | PROT_WRITE);
    guard(blk + pg->block_size, GUARD, PROT_READ | PROT_WRITE);
    uncommitted(-2 * (int64_t)GUARD);
}

#endif

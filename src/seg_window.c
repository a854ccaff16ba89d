/* Where segments are mapped: the segment window.
 *
 * The segment map (internal.h) has a word for each possible segment below its end. A map of
 * the whole 47-bit address space is 256 MiB of address space, and address space is what
 * RLIMIT_AS (`ulimit -v`, `prlimit --as`, a fuzzer's memory limit, a program's own setrlimit)
 * counts, reserved or not, and what strict overcommit (vm.overcommit_memory=2, where
 * MAP_NORESERVE does not apply) charges. So segments live in a window of low addresses,
 * [start, WINDOW_END), and the map covers only the addresses below WINDOW_END: 1 MiB of map.
 * hakmem picks each segment's address (mmap with MAP_FIXED_NOREPLACE at a cursor that moves
 * up through the window, steps past a range that is taken and wraps once to the bottom, where
 * freed segments left holes); the fast paths are those of any map size, their bound test on
 * the segment index sends anything above the window to the slow path.
 *
 * The window is [64 GiB + a random multiple of SEG_SIZE below 256 GiB, 512 GiB) (16 bits of
 * randomness, against the about 18 that the kernel's own placement leaves a 4 MiB-aligned
 * mapping): above the first 32 GiB that a non-PIE program's brk heap and the JVM's zero-based
 * compressed heaps use, far below the 2^46 where the kernel puts PIE programs, libraries and
 * its own mmaps, and inside what every x86-64 and 39-bit arm64 process can map and what
 * ThreadSanitizer counts as application memory. The map itself sits at 48 GiB. When the
 * window has no room for a segment (some 200 GiB or more of them), the map grows where it lies
 * to the whole address space, and segments from then on go where the kernel puts them. */
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

#define WINDOW_BASE ((uintptr_t)64 << 30)
#define WINDOW_SPREAD ((uintptr_t)256 << 30)
#define WINDOW_END ((uintptr_t)512 << 30)
#define WINDOW_ENTRIES (WINDOW_END >> SEG_SHIFT) /* 1 MiB of map */
#define MAP_AT ((uintptr_t)48 << 30)
/* Mapping attempts per request before the window counts as full: a hole is found in a few
 * unless the window is crowded with live segments. */
#define WINDOW_TRIES 4096

static uintptr_t window_start;
static _Atomic uintptr_t window_cursor;
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

/* The map covers the whole address space: the window was given up, the kernel places. */
static int window_given_up(void) {
    return atomic_load_explicit(&hk_seg_count, memory_order_acquire) == SEG_MAP_COUNT;
}

/* The segment map of the window, at MAP_AT if that range is free (the map can then grow in
 * place), else wherever the kernel puts it. Sets *count to its entries; NULL on failure. */
void *seg_window_open(size_t *count) {
    window_start = WINDOW_BASE + ((uintptr_t)os_random() % (WINDOW_SPREAD / SEG_SIZE)) * SEG_SIZE;
    atomic_store_explicit(&window_cursor, window_start, memory_order_relaxed);
    size_t bytes = WINDOW_ENTRIES * sizeof(uintptr_t);
    void *map = os_map_at((void *)MAP_AT, bytes, MAP_NORESERVE) > 0 ? (void *)MAP_AT
                                                                        : os_reserve(bytes);
    *count = WINDOW_ENTRIES;
    return map;
}

/* The window is full: grow the map in place to the whole address space and let the kernel
 * place segments from now on. Returns 0 if the map cannot grow (its neighbourhood is taken,
 * or the address-space limit forbids it): the request fails with ENOMEM. */
static int window_give_up(void) {
    pthread_mutex_lock(&grow_lock);
    int ok = window_given_up();
    if (!ok && os_grow_in_place((void *)hk_seg_owner, WINDOW_ENTRIES * sizeof(uintptr_t),
                                SEG_MAP_COUNT * sizeof(uintptr_t))) {
        atomic_store_explicit(&hk_seg_count, SEG_MAP_COUNT, memory_order_release);
        ok = 1;
    }
    pthread_mutex_unlock(&grow_lock);
    if (!ok && hk_opt.verbose) hk_message("the segment window is full and its map cannot grow");
    return ok;
}

/* `size` bytes at an address p inside the window with p + bias a multiple of align (a power of
 * two, SEG_SIZE or more); NULL with errno ENOMEM when the OS refuses, or when the window has
 * no room (the caller then gives it up). *full is set in that last case. */
static void *window_map(size_t size, size_t align, size_t bias, int *full) {
    uintptr_t at = atomic_load_explicit(&window_cursor, memory_order_relaxed);
    int wrapped = 0;
    *full = 0;
    for (int tries = 0; tries < WINDOW_TRIES; tries++) {
        uintptr_t p = ((at + bias + align - 1) & ~(uintptr_t)(align - 1)) - bias;
        if (p < at || p >= WINDOW_END || size > WINDOW_END - p) {
            if (wrapped++) break;
            at = window_start;
            continue;
        }
        int r = os_map_at((void *)p, size, 0);
        if (r > 0) {
            atomic_store_explicit(&window_cursor, p + size, memory_order_relaxed);
            return (void *)p;
        }
        if (r < 0) return NULL;
        at = p + (size > SEG_SIZE ? size : SEG_SIZE); /* taken: look past it */
    }
    *full = 1;
    errno = ENOMEM;
    return NULL;
}

/* A block aligned to more than a segment that finds no place in the window fails there: such
 * a request gives the window up for no other. */
static void *map_once(size_t size, size_t align, size_t bias) {
    if (!window_given_up()) {
        int full;
        void *p = window_map(size, align, bias, &full);
        if (p || !full || align > SEG_SIZE || !window_give_up()) return p;
    }
    return os_map_aligned(size, align, bias);
}

/* Every segment's mapping, normal or huge. When the OS refuses (the address-space limit, or
 * the commit limit under strict overcommit), the empty segments and huge mappings kept for
 * reuse are given back and the mapping is tried once more: they hold address space and
 * commit charge however little of them is resident. */
void *seg_os_map(size_t size, size_t align, size_t bias) {
    void *p = map_once(size, align, bias);
    if (p == NULL && (seg_cache_trim(1) | huge_cache_trim(1))) p = map_once(size, align, bias);
    return p;
}

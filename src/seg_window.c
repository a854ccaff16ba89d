/* Where segments are mapped under an address-space limit.
 *
 * The segment map (internal.h) normally holds a word for every possible segment of the 47-bit
 * address space: 256 MiB of address space, reserved once and touched only where segments lie.
 * RLIMIT_AS (`ulimit -v`, `prlimit --as`, a fuzzer's memory limit) counts reserved address
 * space as it counts memory, so under a limit of a few hundred MiB that reservation alone
 * would fail (and then every allocation with it) or take most of the limit. Under a limit the
 * map covers only the addresses below WINDOW_END (2 MiB of map), and every segment is mapped
 * inside the window [start, WINDOW_END) at an address hakmem picks. The fast paths do not
 * change: their bound test on the segment index sends anything above the window to the slow
 * path, as it sends anything beyond the full map.
 *
 * The window starts at 64 GiB plus a random multiple of SEG_SIZE below 16 GiB: above the
 * first 32 GiB that a non-PIE program's brk heap and the JVM's zero-based compressed heaps
 * use, below the 2^46 where the kernel puts PIE programs, libraries and its own mmaps. A
 * cursor moves up through it; past the end it starts again from the bottom, where freed
 * segments left holes. */
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>

#include "internal.h"

#define WINDOW_BASE ((uintptr_t)64 << 30)
#define WINDOW_SPREAD ((uintptr_t)16 << 30)
#define WINDOW_END ((uintptr_t)1 << 40)
/* Limits above this leave the full map: its 256 MiB are then under 1/2000 of the limit. */
#define WINDOW_LIMIT_MAX ((rlim_t)512 << 30)
/* Mapping attempts per request before it fails with ENOMEM: a hole is found in a few unless
 * the window is crowded with live segments. */
#define WINDOW_TRIES 4096

static uintptr_t window_start;
static _Atomic uintptr_t window_cursor;

int seg_window_wanted(void) {
    struct rlimit rl;
    return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
           rl.rlim_cur < WINDOW_LIMIT_MAX;
}

size_t seg_window_open(void) {
    uintptr_t r = 0;
    const uint8_t *rnd = (const uint8_t *)getauxval(AT_RANDOM); /* 16 bytes from the kernel */
    if (rnd) memcpy(&r, rnd + 8, sizeof r);
    window_start = WINDOW_BASE + (r % (WINDOW_SPREAD / SEG_SIZE)) * SEG_SIZE;
    atomic_store_explicit(&window_cursor, window_start, memory_order_relaxed);
    return WINDOW_END >> SEG_SHIFT;
}

int seg_window_active(void) { return window_start != 0; }

/* `size` bytes at an address p inside the window with p + bias a multiple of align (a power of
 * two, SEG_SIZE or more), or NULL with errno ENOMEM. */
static void *window_map(size_t size, size_t align, size_t bias) {
    uintptr_t at = atomic_load_explicit(&window_cursor, memory_order_relaxed);
    int wrapped = 0;
    for (int tries = 0; tries < WINDOW_TRIES; tries++) {
        uintptr_t p = ((at + bias + align - 1) & ~(uintptr_t)(align - 1)) - bias;
        if (p < at || p >= WINDOW_END || size > WINDOW_END - p) {
            if (wrapped++) break;
            at = window_start;
            continue;
        }
        int r = os_map_at((void *)p, size);
        if (r > 0) {
            atomic_store_explicit(&window_cursor, p + size, memory_order_relaxed);
            return (void *)p;
        }
        if (r < 0) return NULL;
        at = p + (size > SEG_SIZE ? size : SEG_SIZE); /* taken: look past it */
    }
    if (hk_opt.verbose) hk_message("no room for %zu bytes in the segment window", size);
    errno = ENOMEM;
    return NULL;
}

static void *map_once(size_t size, size_t align, size_t bias) {
    if (seg_window_active()) return window_map(size, align, bias);
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

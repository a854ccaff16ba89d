/* The OS boundary: every mmap, munmap and madvise hakmem makes goes through here, so that
 * failures are reported in one place. Never allocates; never takes a lock. */
#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#ifndef MAP_FIXED_NOREPLACE /* C libraries older than glibc 2.28; kernels before 4.17 ignore it */
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Read-write private memory: at `at` as a hint (NULL: anywhere), or exactly there with
 * MAP_FIXED_NOREPLACE in flags. NULL on failure, errno kept; reported unless the range was
 * merely taken. */
static void *map(void *at, size_t size, int flags) {
    void *p = mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) {
        if (hk_opt.verbose && errno != EEXIST)
            hk_message("mmap of %zu bytes at %p failed (errno %d)", size, at, errno);
        return NULL;
    }
    return p;
}

/* Memory for blocks: the kernel's overcommit policy judges it as it judges glibc's mappings,
 * so a request no RAM and swap could ever hold (malloc(64 TiB) under the default heuristic,
 * anything past the commit limit under strict accounting) fails with ENOMEM instead of
 * returning a block that the first writes would kill the program on. */
void *os_map(size_t size) { return map(NULL, size, 0); }

/* Address space that is touched only sparsely (the segment map): not counted against the
 * commit limit. Never used for blocks. */
void *os_reserve(size_t size) { return map(NULL, size, MAP_NORESERVE); }

/* Map `size` bytes at an address p with p + bias a multiple of `align` (a power of two above
 * bias); trims the slack so only [p, p+size) stays mapped. */
void *os_map_aligned(size_t size, size_t align, size_t bias) {
    if (size > SIZE_MAX - align) return NULL;
    uint8_t *raw = os_map(size + align);
    if (!raw) return NULL;
    uint8_t *p = (uint8_t *)((((uintptr_t)raw + bias + align - 1) & ~(uintptr_t)(align - 1)) - bias);
    if (p > raw) os_unmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)((raw + size + align) - (p + size));
    if (tail) os_unmap(p + size, tail);
    return p;
}

/* Map `size` bytes at exactly `at` if nothing is mapped in [at, at+size) (flags: 0, or
 * MAP_NORESERVE as os_reserve). Returns 1 when mapped there, 0 when the range is taken, -1
 * when there is no memory (errno ENOMEM). */
int os_map_at(void *at, size_t size, int flags) {
    void *p = map(at, size, MAP_FIXED_NOREPLACE | flags);
    if (p == at) return 1;
    if (p != NULL) { /* a kernel before 4.17 takes the flag for a hint */
        munmap(p, size);
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

/* A random word from the kernel's generator; where that fails (a sandbox that forbids the
 * call), one mixed from the clock and the process's randomized addresses. Not AT_RANDOM:
 * its bytes seed the C library's stack and pointer guards. */
uint64_t os_random(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) == sizeof x) return x;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = (uintptr_t)&x ^ (uintptr_t)&os_random ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Move the pages of [from, from+size) to `to`, replacing what was mapped there; `from` is
 * unmapped. Page tables move, data is not copied. Returns 1 on success. */
int os_move(void *from, size_t size, void *to) {
    if (mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) != MAP_FAILED) return 1;
    if (hk_opt.verbose) hk_message("mremap of %zu bytes failed (errno %d)", size, errno);
    return 0;
}

/* Grow the mapping [p, p+size) to new_size where it lies, if the addresses after it are
 * free. Returns 1 on success; never moves it. */
int os_grow_in_place(void *p, size_t size, size_t new_size) {
    return mremap(p, size, new_size, 0) != MAP_FAILED;
}

void os_unmap(void *p, size_t size) {
    if (munmap(p, size) != 0 && hk_opt.verbose)
        hk_message("munmap(%p, %zu) failed (errno %d)", p, size, errno);
}

/* Ask for transparent huge pages on [p, p+size) (MADV_HUGEPAGE), only with HAKMEM_THP=1 (off
 * by default: docs/architecture.md, "Transparent huge pages"). The kernel backs each 2 MiB-
 * aligned 2 MiB of it with one page at the first touch where the system's setting allows it
 * and a free huge page is at hand (or, with `defrag` at its Debian default, can be made by
 * compaction): one fault instead of 512, and one TLB entry. A kernel built without them
 * fails the call, which changes nothing. */
void os_advise_thp(void *p, size_t size) {
    if (hk_opt.thp) (void)madvise(p, size, MADV_HUGEPAGE);
}

/* Give the pages back; the range stays mapped and reads as zero afterwards. */
void os_purge(void *p, size_t size) {
    if (madvise(p, size, MADV_DONTNEED) != 0 && hk_opt.verbose)
        hk_message("madvise(%p, %zu) failed (errno %d)", p, size, errno);
    atomic_fetch_add_explicit(&hk_counters.purges, 1, memory_order_relaxed);
}

/* The kernel's coarse monotonic clock: it ticks every 1-4 ms, which the purge delays and
 * periods it times (100 ms by default, never below 1 ms) do not notice, and it is read from
 * a variable instead of the CPU's counter: 7 ns a call against 28 in a virtual machine, where
 * a page taken and given back at every 64 frees of 1 KiB blocks read the clock three times
 * (patterns' 1 KiB rounds spent 5 % of their time in clock_gettime). */
uint64_t os_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A full memory barrier on every running thread of the process (membarrier), so that a
 * rare caller can order itself against other threads' plain stores and loads. Registers on
 * first use (again after a fork, whose child the registration may not cover). Returns 0
 * where the kernel does not offer it. */
int os_barrier_all(void) {
    static _Atomic int registered;
    for (int tries = 0; tries < 2; tries++) {
        if (atomic_load_explicit(&registered, memory_order_acquire) &&
            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
            return 1;
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
            return 0;
        atomic_store_explicit(&registered, 1, memory_order_release);
    }
    return 0;
}

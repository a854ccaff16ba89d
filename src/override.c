/* The libc allocation interface, defined on top of hakmem so that LD_PRELOAD or static
 * linking replaces the system allocator completely: every entry point glibc exports is
 * here, so no pointer crosses between the two allocators. The only file defining them. */
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "fastpath.h"

HK_API void *malloc(size_t size) { return hk_malloc_inline(size); }
HK_API void free(void *p) { hk_free_inline(p); }
HK_API void *calloc(size_t n, size_t size) { return hk_calloc(n, size); }
HK_API void *realloc(void *p, size_t size) { return hk_realloc(p, size); }
HK_API void cfree(void *p) { hk_free_inline(p); }

HK_API void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hk_realloc(p, total);
}

HK_API int posix_memalign(void **out, size_t align, size_t size) {
    return hk_posix_memalign(out, align, size);
}

HK_API void *aligned_alloc(size_t align, size_t size) { return hk_aligned_alloc(align, size); }

/* glibc's memalign accepts any alignment up to 2^63 and rounds it up to a power of two. */
HK_API void *memalign(size_t align, size_t size) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 16;
    while (a < align) a <<= 1;
    return hk_alloc_aligned(a, size);
}

HK_API void *valloc(size_t size) { return hk_alloc_aligned((size_t)sysconf(_SC_PAGESIZE), size); }

HK_API void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return hk_alloc_aligned(page, size ? (size + page - 1) & ~(page - 1) : page);
}

HK_API size_t malloc_usable_size(void *p) { return hk_usable_size(p); }

/* jemalloc's nallocx (tcmalloc exports it too): the usable size a request would get. Programs
 * built against jemalloc ask it before a realloc (redis's sdsResize skips the call when it
 * equals malloc_usable_size of the block); preloaded, they must get hakmem's answer, not the
 * linked libjemalloc's. The low 6 bits of flags are log2 of the alignment (MALLOCX_LG_ALIGN);
 * the other flags (zeroing, tcache, arena) do not change the size. */
HK_API size_t nallocx(size_t size, int flags) {
    unsigned lg = (unsigned)flags & 63;
    if (lg >= 63 || size > PTRDIFF_MAX) return 0;
    if (hk_hardened()) return size; /* the hardened build's usable size is the request */
    return size_usable(size, (size_t)1 << lg);
}
HK_API int malloc_trim(size_t pad) {
    (void)pad;
    return hk_trim();
}
HK_API void free_sized(void *p, size_t size) { hk_free_sized(p, size); }
HK_API void free_aligned_sized(void *p, size_t align, size_t size) {
    (void)align;
    hk_free_sized(p, size);
}

/* mallinfo2: what hakmem can say cheaply. */
HK_API struct mallinfo2 mallinfo2(void) {
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (size_t)atomic_load(&hk_counters.mapped);
    mi.hblkhd = (size_t)atomic_load(&hk_counters.committed);
    return mi;
}

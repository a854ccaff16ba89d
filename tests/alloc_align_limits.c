/* Aligned requests at the edges of the address space (alloc_align_limits): aligned_alloc and
 * posix_memalign (and memalign where the libc symbols are tested) at every power-of-two
 * alignment up to 2^63, with sizes from 0 to SIZE_MAX,
 * either succeed with an aligned, writable block or fail with NULL and ENOMEM (EINVAL where
 * posix_memalign's alignment is below a pointer), as on glibc; none may crash. An alignment of
 * 2^63 with a size near PTRDIFF_MAX once wrapped the size check and the mapping's length. */
#include "alloc_test.h"

#define NAME "alloc_align_limits"

static size_t volatile sink;
static size_t opaque(size_t n) { /* keeps the compiler from reasoning about the sizes */
    sink = n;
    return sink;
}

int main(void) {
    hkt_init(NAME);
    static const size_t sizes[] = {0,
                                   1,
                                   4096,
                                   (size_t)1 << 40,
                                   PTRDIFF_MAX - (1 << 24),
                                   PTRDIFF_MAX - 4096,
                                   PTRDIFF_MAX - 1,
                                   PTRDIFF_MAX,
                                   (size_t)PTRDIFF_MAX + 1,
                                   SIZE_MAX - 4096,
                                   SIZE_MAX};
    size_t n_sizes = sizeof sizes / sizeof sizes[0], ok = 0;
    void *first = malloc(1);
    REQUIRE(first, "malloc(1)");
    free(first);
    for (int lg = 0; lg < 64; lg++) {
        size_t a = (size_t)1 << lg;
        for (size_t i = 0; i < n_sizes; i++) {
            size_t n = opaque(sizes[i]);
            errno = 0;
            unsigned char *p = aligned_alloc(opaque(a), n);
            int err = errno;
            if (p) {
                CHECK(((uintptr_t)p & (a - 1)) == 0, "aligned_alloc(2^%d, %#zx) = %p", lg, n, p);
                if (n && n <= 4096) p[n - 1] = 1;
                free(p);
                ok++;
            } else {
                CHECK(err == ENOMEM, "aligned_alloc(2^%d, %#zx) = NULL errno %d", lg, n, err);
            }
#ifndef HK_TEST_PREFIXED
            errno = 0;
            p = memalign(opaque(a), n);
            err = errno;
            if (p) {
                CHECK(((uintptr_t)p & (a - 1)) == 0, "memalign(2^%d, %#zx) = %p", lg, n, p);
                free(p);
            } else {
                CHECK(err == ENOMEM, "memalign(2^%d, %#zx) = NULL errno %d", lg, n, err);
            }
#endif
            void *q = NULL;
            int rc = posix_memalign(&q, opaque(a), n);
            if (a < sizeof(void *)) {
                CHECK(rc == EINVAL && q == NULL, "posix_memalign(2^%d, %#zx) = %d", lg, n, rc);
            } else if (rc == 0) {
                CHECK(((uintptr_t)q & (a - 1)) == 0, "posix_memalign(2^%d, %#zx) = %p", lg, n, q);
                if (n && n <= 4096) ((unsigned char *)q)[n - 1] = 1;
                free(q);
                ok++;
            } else {
                CHECK(rc == ENOMEM && q == NULL, "posix_memalign(2^%d, %#zx) = %d, %p", lg, n, rc,
                      q);
            }
        }
    }
    printf("  aligned_alloc and posix_memalign at alignments 2^0..2^63, sizes 0..SIZE_MAX: %zu "
           "blocks, the rest NULL + ENOMEM (EINVAL below a pointer's alignment)\n",
           ok);
    return hkt_finish(NAME);
}

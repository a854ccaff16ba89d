/* Requests that no RAM and swap could hold (alloc_oversize): where the kernel's overcommit
 * policy refuses such a mapping (vm.overcommit_memory 0, the default heuristic, or 2, strict),
 * malloc, calloc, realloc, aligned and huge-alignment requests fail with NULL and ENOMEM, as
 * on glibc, rather than returning a block that the program's first writes would die on; a
 * failed realloc leaves the block as it was. Skipped where the policy overcommits always (1). */
#include "alloc_test.h"

#define NAME "alloc_oversize"

static size_t volatile sink;
static size_t opaque(size_t n) { /* keeps the compiler from reasoning about the sizes */
    sink = n;
    return sink;
}

int main(void) {
    hkt_init(NAME);
    int mode = hkt_overcommit_mode();
    size_t have = hkt_ram_and_swap();
    if (mode == 1 || mode < 0 || have == 0) {
        printf("%s: vm.overcommit_memory=%d (RAM+swap %zu bytes): the kernel grants any mapping, "
               "skipped\n", NAME, mode, have);
        return 0;
    }
    /* Four times RAM and swap, rounded to a power of two and at least 1 TiB: no policy but
     * "always" grants it, and it is far below the sizes hakmem refuses itself. */
    size_t big = (size_t)1 << 40;
    while (big < 4 * have) big <<= 1;
    const char *unit = "TiB";
    size_t shown = big >> 40;

    errno = 0;
    void *p = malloc(opaque(big));
    CHECK(p == NULL && errno == ENOMEM, "malloc(%zu %s) = %p errno %d", shown, unit, p, errno);
    free(p);
    errno = 0;
    p = calloc(opaque(big / 16), 16);
    CHECK(p == NULL && errno == ENOMEM, "calloc(%zu %s) = %p errno %d", shown, unit, p, errno);
    free(p);
    errno = 0;
    p = aligned_alloc(4096, opaque(big));
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(4096, %zu %s) = %p errno %d", shown, unit,
          p, errno);
    free(p);
    /* An alignment that big needs a mapping of about twice it (the block is placed inside). */
    p = NULL;
    int rc = posix_memalign(&p, opaque(big), 64);
    CHECK(rc == ENOMEM && p == NULL, "posix_memalign(%zu %s, 64) = %d, %p", shown, unit, rc, p);
    if (rc == 0) free(p);

    /* realloc of a small, a large and a huge block: NULL + ENOMEM, the block kept whole. */
    static const size_t from[] = {100, 300 << 10, 8 << 20};
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        unsigned char *q = malloc(from[i]);
        REQUIRE(q, "malloc(%zu)", from[i]);
        hkt_fill_range(q, 0, from[i], 40 + i);
        errno = 0;
        void *r = realloc(q, opaque(big));
        CHECK(r == NULL && errno == ENOMEM, "realloc(%zu B block, %zu %s) = %p errno %d", from[i],
              shown, unit, r, errno);
        if (r) {
            q = r;
        } else {
            CHECK(hkt_check_range(q, 0, from[i], 40 + i) == (size_t)-1,
                  "failed realloc damaged the %zu B block", from[i]);
            memset(q, 1, from[i]); /* still the caller's */
        }
        free(q);
    }
    printf("  vm.overcommit_memory=%d, RAM+swap %zu MiB: malloc, calloc, aligned_alloc, "
           "posix_memalign(align %zu %s) and realloc of 100 B, 300 KiB and 8 MiB blocks to %zu %s "
           "-> NULL + ENOMEM, blocks kept\n",
           mode, have >> 20, shown, unit, shown, unit);
    return hkt_finish(NAME);
}

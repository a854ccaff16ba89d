/* alloc_spread: the starts of consecutive blocks of a class whose size is a multiple of 1 KiB
 * spread over the L1 cache's sets. At the class size as stride every block start of a page
 * falls in one to four of the 64 sets of a 4 KiB-indexed L1 (1 KiB: 4 sets), where programs
 * write first, and rounds of such blocks ran 13 % (1 KiB) to 50 % (2-32 KiB) slower
 * (architecture.md, "Block strides and the L1 cache"). Each block is also filled (hkt_fill:
 * whole up to 64 KiB, sparsely above) and checked before it is freed. */
#include "alloc_test.h"

#define NAME "alloc_spread"
#define BLOCKS 48 /* of one class, live together: several of its pages for the largest */
#define MIN_SETS 12

static const size_t sizes[] = {1024, 2048, 3072, 4096, 6144, 8192, 16384, 32768, 65536, 131072};

int main(void) {
    hkt_init(NAME);
    static unsigned char *blk[BLOCKS];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint64_t sets = 0;
        for (int i = 0; i < BLOCKS; i++) {
            blk[i] = malloc(n);
            REQUIRE(blk[i], "malloc(%zu)", n);
            REQUIRE(((uintptr_t)blk[i] & 15) == 0, "malloc(%zu) = %p: not 16-byte aligned", n,
                    (void *)blk[i]);
            hkt_fill(blk[i], n, n + (uint64_t)i);
            sets |= 1ull << (((uintptr_t)blk[i] >> 6) & 63);
        }
        int count = __builtin_popcountll(sets);
        printf("  %6zu bytes: block starts in %d of 64 L1 sets\n", n, count);
        if (!hkt_system)
            CHECK(count >= MIN_SETS, "%d blocks of %zu bytes start in %d L1 sets only", BLOCKS, n,
                  count);
        for (int i = 0; i < BLOCKS; i++) {
            CHECK(hkt_verify(blk[i], n, n + (uint64_t)i) == (size_t)-1,
                  "block %p of %zu bytes changed", (void *)blk[i], n);
            free(blk[i]);
        }
    }
    return hkt_finish(NAME);
}

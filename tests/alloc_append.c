/* alloc_append: a block grown one byte per realloc, as a naive string builder does, is copied
 * only once per size step it crosses, not on every call: from 1 B to 256 KiB (262143 reallocs)
 * it may move at most 256 times, in every build (the hardened one resizes in place what its
 * block holds). Every byte is checked at the end, and again after it is shrunk by halves. */
#include "alloc_test.h"

#define NAME "alloc_append"
#define TO ((size_t)256 << 10)
#define MAX_MOVES 256

int main(void) {
    hkt_init(NAME);
    unsigned char *p = malloc(1);
    REQUIRE(p, "malloc(1)");
    p[0] = 0;
    int moves = 0;
    for (size_t n = 2; n <= TO; n++) {
        unsigned char *q = realloc(p, n);
        REQUIRE(q, "realloc(%zu)", n);
        moves += q != p;
        q[n - 1] = (unsigned char)((n - 1) * 13);
        p = q;
    }
    size_t i = 0;
    while (i < TO && p[i] == (unsigned char)(i * 13)) i++;
    CHECK(i == TO, "byte %zu of the grown block is wrong", i);
    CHECK(moves <= MAX_MOVES, "grown by 1 B from 1 B to %zu KiB, the block moved %d times", TO >> 10,
          moves);
    for (size_t n = TO / 2; n >= 16; n /= 2) {
        p = realloc(p, n);
        REQUIRE(p, "realloc(%zu) shrinking", n);
        i = 0;
        while (i < n && p[i] == (unsigned char)(i * 13)) i++;
        CHECK(i == n, "shrunk to %zu B: byte %zu wrong", n, i);
    }
    free(p);
    printf("  1 B -> %zu KiB by 1-byte reallocs: moved %d times (at most %d), contents kept, and "
           "through shrinks by halves\n", TO >> 10, moves, MAX_MOVES);
    return hkt_finish(NAME);
}

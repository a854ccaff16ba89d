/* alloc_hover: a working set of 1024 blocks whose sizes (4 B to 32 KiB) fall off as 1/size², as
 * in glibc's malloc benchmark, each replaced at random and written in full. Most size classes
 * then hover between none and one live block and take turns needing a page: once warm, the
 * run must fault in next to nothing. Before the classes kept their pages, each of them took a
 * fresh page at almost every malloc, which retired the others' empty pages, whose slices were
 * purged: over 6000 minor faults in this test's 2 M operations. Every block's bytes are checked
 * before it is freed. */
#include "alloc_test.h"

#define NAME "alloc_hover"

#define SLOTS 1024
#define MIN_SIZE 4.0
#define MAX_SIZE 32768.0

static unsigned char *slot[SLOTS];
static size_t slot_size[SLOTS];

/* Inverse-square density on [MIN_SIZE, MAX_SIZE]: the inverse of its distribution function. */
static size_t hover_size(hkt_rng *r) {
    double u = (double)hkt_below(r, 1u << 30) / (double)(1u << 30);
    double inv = 1.0 / MIN_SIZE - u * (1.0 / MIN_SIZE - 1.0 / MAX_SIZE);
    return (size_t)(1.0 / inv);
}

static void replace(size_t i, size_t n) {
    if (slot[i]) {
        unsigned char want = (unsigned char)(slot_size[i] * 31 + i);
        for (size_t k = 0; k < slot_size[i]; k++)
            REQUIRE(slot[i][k] == (unsigned char)(want + k), "block %zu (%zu bytes) changed at %zu",
                    i, slot_size[i], k);
        free(slot[i]);
    }
    slot[i] = malloc(n);
    REQUIRE(slot[i], "malloc(%zu)", n);
    slot_size[i] = n;
    unsigned char v = (unsigned char)(n * 31 + i);
    for (size_t k = 0; k < n; k++) slot[i][k] = (unsigned char)(v + k);
}

int main(void) {
    hkt_init(NAME);
    double t0 = hkt_now();
    hkt_rng r = {0x5eed};
    enum { WARM = 500000, OPS = 2000000 };
    for (long op = 0; op < WARM; op++) replace(hkt_below(&r, SLOTS), hover_size(&r));
    long f0 = hkt_minor_faults();
    for (long op = 0; op < OPS; op++) replace(hkt_below(&r, SLOTS), hover_size(&r));
    long faults = hkt_minor_faults() - f0;
    for (size_t i = 0; i < SLOTS; i++) replace(i, 16);
    for (size_t i = 0; i < SLOTS; i++) free(slot[i]);
    printf("  %d replacements after warm-up: %ld minor faults\n", OPS, faults);
    /* Not where no free memory is kept (HAKMEM_PURGE_DELAY_MS=0): each emptied page is
     * returned at once by design. The purger may return a few pages that stay free for the
     * purge delay: 256 faults is a twentieth of what the thrash made. */
    const char *delay = getenv("HAKMEM_PURGE_DELAY_MS");
    if (!hkt_system && !(delay && strcmp(delay, "0") == 0))
        CHECK(faults < 256, "%ld minor faults in %d replacements of a warm working set: "
              "size classes take fresh pages over and over", faults, OPS);
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

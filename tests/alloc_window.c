/* alloc_window: more address space than the segment window holds (src/seg_window.c). Blocks of
 * several GiB, never touched but at both ends, are allocated until 640 GiB are live: past the
 * window's end (512 GiB) the segment map grows to the whole address space and the kernel
 * places the rest. Every block keeps its bytes and is freed through the fast path's map
 * lookup, wherever it lies; small blocks work after all that. Skipped where the kernel's
 * overcommit policy is strict (vm.overcommit_memory=2), which does not grant 640 GiB. */
#include "alloc_test.h"

#define NAME "alloc_window"
#define GIB ((size_t)1 << 30)
#define TOTAL (640 * GIB)
#define WINDOW_END (512 * GIB)

/* Half of RAM plus swap, at most 8 GiB: a size the default heuristic grants. */
static size_t block_size(void) {
    size_t n = hkt_ram_and_swap() / 2;
    return n > 8 * GIB ? 8 * GIB : n < GIB ? GIB : n & ~(GIB - 1);
}

static uint8_t *blocks[1024];

int main(void) {
    hkt_init(NAME);
    if (hkt_overcommit_mode() == 2) {
        printf("%s: vm.overcommit_memory=2 grants no 640 GiB, skipped\n", NAME);
        return hkt_finish(NAME);
    }
    size_t n = block_size(), count = TOTAL / n, above = 0;
    REQUIRE(count <= sizeof blocks / sizeof blocks[0], "%zu blocks", count);
    for (size_t i = 0; i < count; i++) {
        blocks[i] = malloc(n);
        REQUIRE(blocks[i], "malloc(%zu GiB) number %zu, %zu GiB live", n / GIB, i, i * n / GIB);
        blocks[i][0] = (uint8_t)i;
        blocks[i][n - 1] = (uint8_t)~i;
        above += (uintptr_t)blocks[i] >= WINDOW_END;
    }
    printf("%s: %zu blocks of %zu GiB, %zu of them above 512 GiB\n", NAME, count, n / GIB, above);
    if (!hkt_system) CHECK(above > 0, "all %zu blocks below 512 GiB: the window never filled", count);
    for (size_t i = 0; i < count; i++) {
        CHECK(blocks[i][0] == (uint8_t)i && blocks[i][n - 1] == (uint8_t)~i, "block %zu changed", i);
        if (!hkt_system) CHECK(hkt_owns(blocks[i]) == 1, "hk_owns(block %zu at %p)", i, (void *)blocks[i]);
        free(blocks[i]);
    }
    hkt_rng r = {7};
    void *live[512] = {0};
    for (int i = 0; i < 100000; i++) {
        size_t k = hkt_below(&r, 512), sz = hkt_size(&r, 1 << 20);
        free(live[k]);
        live[k] = malloc(sz);
        REQUIRE(live[k] || sz == 0, "malloc(%zu) after the window filled", sz);
        if (sz) memset(live[k], (int)k, sz < 64 ? sz : 64);
    }
    for (int k = 0; k < 512; k++) free(live[k]);
    return hkt_finish(NAME);
}

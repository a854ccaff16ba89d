/* alloc_links: free-list links of medium blocks (1-8 KiB, pages of several slices that the
 * malloc fast path follows links across with its mask test; 10-110 KiB, pages anywhere in
 * their segment whose links the medium path tests against the page's span). A list whose
 * links cross slices is handed out whole and intact; a freed block's link forged to point
 * outside its page (into the segment header, into another page; for the span-tested pages
 * also just past the page's last block, which the mask test admits while it stays in the
 * page's slices) or inside it at no 16-byte alignment is reported once and never handed
 * out. Needs
 * HAKMEM_BAD_FREE=warn (re-executes itself with it when unset). */
#include <unistd.h>

#include "alloc_test.h"
#include "../src/internal.h" /* where a page's blocks end */

#define NAME "alloc_links"

static const size_t sizes[] = {1100, 1400, 1700,  2000,  2400,  3000,  3500,  4000,  5000,
                               6000, 7000, 8000,  10000, 16000, 24000, 40000, 60000, 110000};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define K 200 /* blocks per size: more than 64 KiB of them, so the page spans several slices */

enum { FORGE_HEADER, FORGE_OTHER_PAGE, FORGE_MISALIGNED, FORGE_PAST_PAGE, FORGE_KINDS };
static const char *forge_name[] = {"the segment header", "a block of another page",
                                   "inside a live block, misaligned", "just past the page's blocks"};

/* The first address after the blocks of p's page (16-byte aligned, like every block). */
static char *past_page(char *p) {
    page_t *pg = hk_page_of((segment_t *)((uintptr_t)p & ~SEG_MASK), p);
    return (char *)(pg->start + (uintptr_t)pg->reserved * pg->block_size);
}

static int report_fd;

/* Reports the allocator wrote to stderr (the temp file) since the last call. */
static int reports_since(off_t *pos) {
    char buf[1 << 14];
    int n = 0;
    ssize_t got;
    while ((got = pread(report_fd, buf, sizeof buf - 1, *pos)) > 0) {
        buf[got] = 0;
        for (char *c = buf; (c = strstr(c, "hakmem: malloc(")) != NULL; c++) n++;
        fputs(buf, stdout); /* the allocator's lines, for the log */
        *pos += got;
    }
    return n;
}

static int by_address(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(char *const *)a, y = (uintptr_t)*(char *const *)b;
    return x < y ? -1 : x > y;
}

/* K fresh blocks of size n, filled, in address order. */
static void take(char **blk, size_t n) {
    for (int i = 0; i < K; i++) {
        blk[i] = malloc(n);
        REQUIRE(blk[i] != NULL, "malloc(%zu)", n);
    }
    qsort(blk, K, sizeof *blk, by_address);
    for (int i = 0; i < K; i++) hkt_fill(blk[i], n, hkt_mix(n + (uint64_t)i));
}

static void one_size(size_t n, off_t *pos) {
    static char *blk[K], *got[4 * K];
    /* An intact list: freed in address order, so its links cross slices; all of it must be
     * handed out again, each block once. */
    take(blk, n);
    uintptr_t span = (uintptr_t)blk[K - 1] + n - (uintptr_t)blk[0];
    for (int i = 0; i < K; i++) free(blk[i]);
    for (int i = 0; i < K; i++) {
        got[i] = malloc(n);
        REQUIRE(got[i] != NULL, "malloc(%zu)", n);
        hkt_fill(got[i], n, hkt_mix(n + (uint64_t)i));
    }
    for (int i = 0; i < K; i++) {
        size_t at = hkt_verify(got[i], n, hkt_mix(n + (uint64_t)i));
        CHECK(at == (size_t)-1, "size %zu: block %d damaged at byte %zu", n, i, at);
    }
    CHECK(reports_since(pos) == 0, "size %zu: an intact list was reported", n);
    for (int i = 0; i < K; i++) free(got[i]);
    printf("  size %zu: %d blocks over %zu KiB freed and handed out again intact\n", n, K,
           (size_t)span >> 10);

    char *other = malloc(100); /* a small block: another page */
    REQUIRE(other != NULL, "malloc(100)");
    for (int kind = 0; kind < FORGE_KINDS; kind++) {
        if (kind == FORGE_PAST_PAGE && n <= DIRECT_MAX) continue;
        take(blk, n);
        /* v is freed last (its page's list head); live, in v's page, stays, so the page
         * cannot empty and go back to its segment. */
        int iv = K / 2;
        while (iv < K - 1 && past_page(blk[iv]) != past_page(blk[iv + 1])) iv++;
        REQUIRE(iv < K - 1, "size %zu: no two blocks in one page", n);
        char *v = blk[iv], *live = blk[iv + 1];
        for (int i = 0; i < K; i++)
            if (i != iv && i != iv + 1) free(blk[i]);
        free(v);
        char *target = kind == FORGE_HEADER ? (char *)((uintptr_t)v & ~(uintptr_t)(4 * MiB - 1)) + 4096
                       : kind == FORGE_OTHER_PAGE ? other
                       : kind == FORGE_MISALIGNED ? live + 8
                                                  : past_page(v);
        memcpy(v, &target, sizeof target); /* a write after free */
        int handed = 0, m = 0, seen_v = 0;
        while (m < 4 * K && !seen_v) { /* until malloc pops v and meets its link */
            got[m] = malloc(n);
            REQUIRE(got[m] != NULL, "malloc(%zu)", n);
            handed |= got[m] == target;
            seen_v = got[m++] == v;
        }
        for (int i = 0; i < 8 && m < 4 * K; i++) { /* and a few more after it */
            got[m] = malloc(n);
            REQUIRE(got[m] != NULL, "malloc(%zu)", n);
            handed |= got[m++] == target;
        }
        CHECK(seen_v, "size %zu: the freed block never came back", n);
        CHECK(!handed, "size %zu: a link forged to %s was followed", n, forge_name[kind]);
        int r = reports_since(pos);
        CHECK(r == 1, "size %zu: a link forged to %s: %d reports, want 1", n, forge_name[kind], r);
        size_t at = hkt_verify(live, n, hkt_mix(n + (uint64_t)iv + 1));
        CHECK(at == (size_t)-1, "size %zu: a live block damaged at byte %zu", n, at);
        printf("  size %zu: link forged to %s reported, not followed\n", n, forge_name[kind]);
        /* The rest of the dropped list leaks, as the contract says. */
        for (int i = 0; i < m; i++) free(got[i]);
        free(live);
    }
    free(other);
}

int main(int argc, char **argv) {
    (void)argc;
    hkt_init(NAME);
    if (hkt_system) {
        printf("  links: skipped on the system allocator (hakmem's link checks)\n");
        return hkt_finish(NAME);
    }
    const char *mode = getenv("HAKMEM_BAD_FREE");
    if (!mode || strcmp(mode, "warn") != 0) {
        setenv("HAKMEM_BAD_FREE", "warn", 1);
        execv("/proc/self/exe", argv);
        REQUIRE(0, "re-executing with HAKMEM_BAD_FREE=warn");
    }
    char path[] = "/tmp/hk_links_XXXXXX";
    report_fd = mkstemp(path);
    REQUIRE(report_fd >= 0, "mkstemp");
    unlink(path);
    int saved = dup(2);
    dup2(report_fd, 2);
    off_t pos = 0;
    for (size_t s = 0; s < NSIZES; s++) one_size(sizes[s], &pos);
    dup2(saved, 2);
    return hkt_finish(NAME);
}

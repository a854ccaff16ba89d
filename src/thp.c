/* When huge blocks ask for transparent huge pages. A 2 MiB page under a block that the
 * program writes in full saves it 511 page faults and 511 TLB entries; under a block it
 * touches only here and there (a header, a prefix, a few scattered entries), each touch makes
 * 2 MiB resident instead of 4 KiB and costs the clearing of 2 MiB. Which kind of program
 * this is shows in the blocks it frees: thp_observe samples how much of a freed huge block
 * is resident (mincore), and fresh huge mappings are advised (os_advise_thp) only while the
 * last sample found most of the pages it looked at there. A program starts without huge
 * pages, so one that touches its huge blocks sparsely never gets them. All of this only with
 * HAKMEM_THP=1: by default no block asks (docs/architecture.md, "Transparent huge pages"). */
#include <sys/mman.h>

#include "internal.h"

#define THP_PROBE_PAGES 64 /* pages looked at per sample, in the middle of the block */
#define THP_EVERY 32       /* huge frees per sample (the first is sampled) */
#define OS_PAGE 4096

static _Atomic int dense;           /* the last sample: most of the pages looked at resident */
static _Atomic unsigned long frees; /* huge frees seen */

void thp_advise(void *p, size_t size) {
    if (atomic_load_explicit(&dense, memory_order_relaxed)) os_advise_thp(p, size);
}

/* One mincore call on the 64 pages at the middle of the block (all of it if smaller): a
 * block written in full has them all, one used at its start or here and there few of them. */
void thp_observe(const void *block, size_t size) {
    if (!hk_opt.thp || size < OS_PAGE ||
        atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed) % THP_EVERY != 0)
        return;
    uintptr_t first = ((uintptr_t)block + OS_PAGE - 1) & ~(uintptr_t)(OS_PAGE - 1);
    size_t pages = ((uintptr_t)block + size - first) / OS_PAGE;
    if (pages == 0) return;
    size_t n = pages < THP_PROBE_PAGES ? pages : THP_PROBE_PAGES;
    unsigned char v[THP_PROBE_PAGES];
    if (mincore((void *)(first + (pages - n) / 2 * OS_PAGE), n * OS_PAGE, v) != 0) return;
    size_t resident = 0;
    for (size_t i = 0; i < n; i++) resident += v[i] & 1;
    atomic_store_explicit(&dense, 2 * resident > n, memory_order_relaxed);
}

/* alloc_churn: hundreds of short-lived threads. Each allocates a mix, then leaves some blocks in
 * a global table where later threads verify and free them (blocks outlive their threads, and
 * their frees land in heaps of dead threads). RSS is compared across two equal rounds: memory
 * stranded by dead threads makes round 2 grow past round 1. */
#include "alloc_test.h"

#define NAME "alloc_churn"

#if HKT_TSAN
#define THREADS_PER_ROUND 96
#define OPS_PER_THREAD 1500
#else
#define THREADS_PER_ROUND 200
#define OPS_PER_THREAD 3000
#endif
#define WAVE 8
#define GLOBAL 2048
#define KEEP 16 /* blocks each thread leaves behind */

/* A block records its own size and key in its first 16 bytes, so the global table is just
 * atomic pointers and any thread can verify what it takes out. */
typedef struct {
    size_t n;
    uint64_t key;
} head_t;

static _Atomic(head_t *) global_blocks[GLOBAL];
static atomic_ulong handed_over, taken_over;

static head_t *make_block(hkt_rng *r, uint64_t key) {
    size_t n = sizeof(head_t) + hkt_size(r, 256 * KiB);
    head_t *h = hkt_below(r, 5) == 0 ? calloc(1, n) : malloc(n);
    REQUIRE(h, "malloc(%zu)", n);
    h->n = n;
    h->key = key;
    hkt_fill(h + 1, n - sizeof *h, key);
    return h;
}

static void check_and_free(head_t *h, const char *what) {
    size_t bad = hkt_verify(h + 1, h->n - sizeof *h, h->key);
    if (bad != (size_t)-1)
        hkt_die(__FILE__, __LINE__, what, "block %p of %zu bytes damaged at offset %zu", (void *)h,
                h->n, bad);
    free(h);
}

static void *worker(void *arg) {
    uint64_t id = (uint64_t)(uintptr_t)arg;
    hkt_rng r = {hkt_mix(id)};
    enum { LOCAL = 64 };
    head_t *local[LOCAL] = {0};
    for (int op = 0; op < OPS_PER_THREAD; op++) {
        int i = (int)hkt_below(&r, LOCAL);
        if (local[i]) {
            if (hkt_below(&r, 4) == 0) {
                /* grow or shrink in place of a free */
                size_t old = local[i]->n, m = sizeof(head_t) + hkt_size(&r, 256 * KiB);
                head_t *q = realloc(local[i], m);
                REQUIRE(q, "realloc");
                size_t bad = hkt_verify_prefix(q + 1, old - sizeof *q, m - sizeof *q, q->key);
                REQUIRE(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", old, m, bad);
                q->n = m;
                q->key = hkt_mix(q->key);
                hkt_fill(q + 1, m - sizeof *q, q->key);
                local[i] = q;
            } else {
                check_and_free(local[i], "local block");
                local[i] = NULL;
            }
        } else {
            local[i] = make_block(&r, hkt_mix(id << 32 ^ (uint64_t)op));
        }
    }
    /* Leave KEEP blocks behind; free whatever they displace (left by an earlier thread). */
    int kept = 0;
    for (int i = 0; i < LOCAL; i++) {
        if (!local[i]) continue;
        if (kept < KEEP) {
            head_t *old = atomic_exchange(&global_blocks[hkt_below(&r, GLOBAL)], local[i]);
            atomic_fetch_add(&handed_over, 1);
            kept++;
            if (old) {
                check_and_free(old, "block of a dead thread");
                atomic_fetch_add(&taken_over, 1);
            }
        } else {
            check_and_free(local[i], "local block");
        }
    }
    return NULL;
}

static void round_of_threads(int round) {
    for (int base = 0; base < THREADS_PER_ROUND; base += WAVE) {
        pthread_t t[WAVE];
        for (int i = 0; i < WAVE; i++) {
            uintptr_t id = (uintptr_t)(round * THREADS_PER_ROUND + base + i + 1);
            REQUIRE(pthread_create(&t[i], NULL, worker, (void *)id) == 0, "pthread_create");
        }
        for (int i = 0; i < WAVE; i++)
            pthread_join(t[i], NULL);
    }
}

int main(void) {
    hkt_init(NAME);
    double t0 = hkt_now();
    /* Fill the table first so that live memory is the same in both rounds: only memory
     * stranded by dead threads can then make round 2 grow. */
    hkt_rng r = {99};
    for (int i = 0; i < GLOBAL; i++)
        atomic_store(&global_blocks[i], make_block(&r, hkt_mix((uint64_t)i)));
    size_t rss0 = hkt_rss();
    round_of_threads(0);
    size_t rss1 = hkt_rss();
    round_of_threads(1);
    size_t rss2 = hkt_rss();
    printf("  2 rounds x %d threads (waves of %d), %d ops each, up to 256 KiB blocks\n",
           THREADS_PER_ROUND, WAVE, OPS_PER_THREAD);
    printf("  %lu blocks outlived their thread; %lu of them verified and freed by later "
           "threads\n",
           atomic_load(&handed_over), atomic_load(&taken_over));
    printf("  RSS: start %zu MiB, after round 1 %zu MiB, after round 2 %zu MiB\n", rss0 / MiB,
           rss1 / MiB, rss2 / MiB);
    CHECK(atomic_load(&taken_over) > 0, "no block was freed by a thread other than its owner");
    /* TSan's shadow memory and per-thread state make RSS meaningless there. */
    if (!HKT_TSAN)
        CHECK(rss2 <= rss1 + rss1 / 2 + 8 * MiB,
              "RSS grew from %zu MiB to %zu MiB over an identical round: memory of dead threads "
              "is not reused",
              rss1 / MiB, rss2 / MiB);

    /* The main thread frees what is left, all of it from dead threads. */
    size_t left = 0;
    for (int i = 0; i < GLOBAL; i++) {
        head_t *h = atomic_exchange(&global_blocks[i], NULL);
        if (h) {
            check_and_free(h, "leftover block");
            left++;
        }
    }
    printf("  main thread verified and freed the %zu blocks left in the table\n", left);
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

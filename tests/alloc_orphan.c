/* alloc_orphan: an exited thread's heap is handed whole to the next thread, and one nobody
 * adopts gives its segments back for reuse within a few purge delays.
 * 1. adoption: thread A frees some blocks, leaves others to main and exits; the next thread's
 *    first malloc of that size returns the block A freed last (hakmem only), and main frees
 *    A's blocks, content-checked, while they sit in the adopted heap.
 * 2. dissolving: thread C leaves blocks to main and exits, and no thread starts after it;
 *    main frees them and keeps calling malloc: within ten purge delays C's segment appears
 *    in the statistics as abandoned (hakmem only), and every block checks out. */
#include "alloc_test.h"

#define NAME "alloc_orphan"
#define KEPT 200
#define FREED 100
#define SIZE 48

typedef struct {
    void *kept[KEPT];
    void *last_freed;
} parcel_t;

static void *thread_a(void *arg) {
    parcel_t *pc = arg;
    void *own[FREED];
    for (int i = 0; i < KEPT; i++) {
        pc->kept[i] = malloc(SIZE);
        REQUIRE(pc->kept[i], "malloc(%d)", SIZE);
        hkt_fill(pc->kept[i], SIZE, 1000 + (uint64_t)i);
    }
    for (int i = 0; i < FREED; i++) {
        own[i] = malloc(SIZE);
        REQUIRE(own[i], "malloc(%d)", SIZE);
        hkt_fill(own[i], SIZE, (uint64_t)i);
    }
    for (int i = 0; i < FREED; i++) {
        CHECK(hkt_verify(own[i], SIZE, (uint64_t)i) == (size_t)-1, "own block %d damaged", i);
        free(own[i]);
    }
    pc->last_freed = own[FREED - 1];
    return NULL;
}

static void *thread_b(void *arg) {
    void **first = arg;
    *first = malloc(SIZE);
    REQUIRE(*first, "malloc(%d)", SIZE);
    hkt_fill(*first, SIZE, 7);
    CHECK(hkt_verify(*first, SIZE, 7) == (size_t)-1, "first block damaged");
    free(*first);
    return NULL;
}

/* "segments abandoned N" from the readable statistics; -1 when there are none. */
static long abandoned_count(void) {
    FILE *f = tmpfile();
    if (!f) return -1;
    hkt_stats_print(f);
    rewind(f);
    char line[512];
    long n = -1;
    while (fgets(line, sizeof line, f)) {
        char *s = strstr(line, "segments abandoned ");
        if (s) n = atol(s + strlen("segments abandoned "));
    }
    fclose(f);
    return n;
}

static void adoption(void) {
    parcel_t pc;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_a, &pc) == 0, "pthread_create");
    pthread_join(t, NULL);
    void *first = NULL;
    REQUIRE(pthread_create(&t, NULL, thread_b, &first) == 0, "pthread_create");
    pthread_join(t, NULL);
    if (!hkt_system)
        CHECK(first == pc.last_freed,
              "the next thread's first malloc(%d) is %p, not %p, the block the exited thread "
              "freed last: its heap was not adopted",
              SIZE, first, pc.last_freed);
    for (int i = 0; i < KEPT; i++) {
        CHECK(hkt_verify(pc.kept[i], SIZE, 1000 + (uint64_t)i) == (size_t)-1,
              "kept block %d damaged", i);
        free(pc.kept[i]);
    }
    printf("%s/%s: adoption: next thread's first block %s the exited thread's last freed; "
           "%d of its blocks checked and freed by main\n",
           NAME, HKT_BUILD, first == pc.last_freed ? "is" : "is not", KEPT);
}

static void *thread_c(void *arg) {
    parcel_t *pc = arg;
    for (int i = 0; i < KEPT; i++) {
        pc->kept[i] = malloc(SIZE * 4);
        REQUIRE(pc->kept[i], "malloc(%d)", SIZE * 4);
        hkt_fill(pc->kept[i], SIZE * 4, 5000 + (uint64_t)i);
    }
    return NULL;
}

static void dissolving(void) {
    long before = abandoned_count();
    parcel_t pc;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, thread_c, &pc) == 0, "pthread_create");
    pthread_join(t, NULL);
    for (int i = 0; i < KEPT; i++) {
        CHECK(hkt_verify(pc.kept[i], SIZE * 4, 5000 + (uint64_t)i) == (size_t)-1,
              "block %d of the exited thread damaged", i);
        free(pc.kept[i]);
    }
    const char *env = getenv("HAKMEM_PURGE_DELAY_MS");
    double delay = (env ? atof(env) : 100.0) / 1000.0, t0 = hkt_now(), waited = -1;
    /* Main keeps calling malloc, each time a size class it has not used, so its slow path
     * (where due orphans are dissolved) runs even without the background purger. */
    size_t sizes[] = {1500, 2500, 3500, 5000, 6000, 7000, 12000, 20000, 28000, 40000, 56000, 80000};
    void *held[sizeof sizes / sizeof sizes[0]] = {0};
    size_t k = 0;
    while (!hkt_system && hkt_now() - t0 < 10 * delay + 0.2) {
        long now = abandoned_count();
        if (now > before) {
            waited = hkt_now() - t0;
            break;
        }
        if (k < sizeof sizes / sizeof sizes[0]) {
            held[k] = malloc(sizes[k]);
            REQUIRE(held[k], "malloc(%zu)", sizes[k]);
            memset(held[k], 1, sizes[k]);
            k++;
        }
        usleep((useconds_t)(delay * 1e6 / 4 + 1000));
    }
    for (size_t i = 0; i < k; i++)
        free(held[i]);
    if (!hkt_system)
        CHECK(waited >= 0, "the exited thread's segment was not abandoned within %.0f ms",
              (10 * delay + 0.2) * 1000);
    if (hkt_system)
        printf("%s/%s: dissolving: %d blocks of an exited thread checked and freed\n", NAME,
               HKT_BUILD, KEPT);
    else
        printf("%s/%s: dissolving: %d blocks of an exited thread nobody followed checked and "
               "freed; its segment abandoned after %.0f ms (purge delay %.0f ms)\n",
               NAME, HKT_BUILD, KEPT, waited * 1000, delay * 1000);
}

int main(void) {
    hkt_init(NAME);
    adoption();
    dissolving();
    return hkt_finish(NAME);
}

/* alloc_purger_start: the background purger's first start lands while threads hand blocks of
 * mixed sizes to each other.
 *
 * The purger thread starts once per process, at the first time memory is retained after
 * 8 MiB were mapped, and that moment falls wherever the program happens to be. Each round is
 * a fresh child process (forked while the parent has mapped little, so every child starts
 * its own purger) in which two producers allocate batches of blocks of 8 B to 2 KiB, fill
 * them and queue the batches, and two consumers check and free every block. A child must end
 * on its own, within the alarm, with every block intact and no heap error reported.
 *
 * The start used to run inside the allocator call that retained the memory, in the middle
 * of a walk of the heap's page lists; pthread_create allocates, and that nested allocation
 * changed the list being walked: a page on two lists, blocks handed out twice. About one round
 * in 50 then ended in a hang or a double-free report, so 200 rounds find it 98 times in 100. */
#include "alloc_test.h"

#define NAME "alloc_purger_start"
#define PRODUCERS 2
#define CONSUMERS 2
#define BATCH 1024
#define QUEUE_MAX 64
#define FILLED 64 /* bytes of each block filled and checked */

static const uint16_t sizes[] = {8,   12,  16,  24,  32,  48,   64,   96,  128,
                                 192, 256, 384, 512, 768, 1024, 1536, 2048};

typedef struct batch {
    struct batch *next;
    uint64_t key;
    void *p[BATCH];
    uint16_t size[BATCH];
} batch_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nonempty = PTHREAD_COND_INITIALIZER, nonfull = PTHREAD_COND_INITIALIZER;
static batch_t *queue;
static int queued;
static atomic_int stop;
static atomic_long blocks_checked;

static void enqueue(batch_t *b) {
    pthread_mutex_lock(&lock);
    while (queued >= QUEUE_MAX && !atomic_load(&stop)) pthread_cond_wait(&nonfull, &lock);
    b->next = queue;
    queue = b;
    queued++;
    pthread_cond_signal(&nonempty);
    pthread_mutex_unlock(&lock);
}

/* The next batch, or NULL once stopped. */
static batch_t *dequeue(void) {
    pthread_mutex_lock(&lock);
    while (!queue && !atomic_load(&stop)) pthread_cond_wait(&nonempty, &lock);
    batch_t *b = queue;
    if (b) {
        queue = b->next;
        queued--;
        pthread_cond_signal(&nonfull);
    }
    pthread_mutex_unlock(&lock);
    return b;
}

static size_t filled(size_t n) { return n < FILLED ? n : FILLED; }

static void check_and_free(batch_t *b) {
    for (int i = 0; i < BATCH; i++) {
        size_t bad = hkt_check_range(b->p[i], 0, filled(b->size[i]), b->key + (uint64_t)i);
        if (bad != (size_t)-1)
            hkt_die(__FILE__, __LINE__, NAME, "block %p of %u bytes damaged at offset %zu",
                    b->p[i], b->size[i], bad);
        free(b->p[i]);
    }
    atomic_fetch_add(&blocks_checked, BATCH);
    free(b);
}

static void *producer(void *arg) {
    hkt_rng r = {(uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1};
    while (!atomic_load(&stop)) {
        batch_t *b = malloc(sizeof *b);
        if (!b) hkt_die(__FILE__, __LINE__, NAME, "malloc(%zu) failed", sizeof *b);
        b->key = hkt_next(&r);
        for (int i = 0; i < BATCH; i++) {
            size_t n = sizes[hkt_below(&r, sizeof sizes / sizeof sizes[0])];
            b->p[i] = malloc(n);
            if (!b->p[i]) hkt_die(__FILE__, __LINE__, NAME, "malloc(%zu) failed", n);
            b->size[i] = (uint16_t)n;
            hkt_fill_range(b->p[i], 0, filled(n), b->key + (uint64_t)i);
        }
        enqueue(b);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    batch_t *b;
    while ((b = dequeue()) != NULL) check_and_free(b);
    return NULL;
}

/* One child process: the hand-off for `ms` milliseconds, then every queued batch checked. */
static int child_round(long ms) {
    alarm(30); /* a hang ends the child with SIGALRM */
    pthread_t t[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        if (pthread_create(&t[i], NULL, consumer, NULL) != 0) return 3;
    for (int i = 0; i < PRODUCERS; i++)
        if (pthread_create(&t[CONSUMERS + i], NULL, producer, (void *)(uintptr_t)(i + 1)) != 0) return 3;
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    atomic_store(&stop, 1);
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&nonempty);
    pthread_cond_broadcast(&nonfull);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) pthread_join(t[i], NULL);
    while (queue) {
        batch_t *b = queue;
        queue = b->next;
        check_and_free(b);
    }
    return atomic_load(&blocks_checked) > 0 ? 0 : 4;
}

int main(int argc, char **argv) {
    hkt_init(NAME);
    long rounds = 200, ms = 30; /* the start comes early in a round; rounds are what count */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) rounds = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--ms") == 0) ms = atol(argv[i + 1]);
    }
    for (long r = 0; r < rounds; r++) {
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) _exit(child_round(ms));
        int status;
        REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "round %ld of %ld: the child %s %d", r + 1, rounds,
              WIFSIGNALED(status) ? "died of signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
    printf("%s/%s: %ld rounds of %ld ms\n", NAME, HKT_BUILD, rounds, ms);
    return hkt_finish(NAME);
}

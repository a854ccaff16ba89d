/* alloc_fork: fork() while other threads allocate and free without pause. Each child must find
 * a usable allocator (no lock left held by a thread that does not exist in the child): it
 * allocates, frees blocks inherited from the parent, starts a thread that allocates, verifies
 * everything and exits 0. A child that hangs is killed by its alarm and reported. */
#include "alloc_test.h"

#define NAME "alloc_fork"
#define BUSY 3
#define FORKS 24
#define INHERITED 256

static atomic_int stop;
static atomic_ulong busy_ops;

/* Keeps allocator locks and lists in motion at the moment of fork: local churn of all tiers. */
static void *busy(void *arg) {
    hkt_rng r = {0xF0F0ull + (uintptr_t)arg};
    enum { LOCAL = 128 };
    void *p[LOCAL] = {0};
    size_t n[LOCAL] = {0};
    unsigned long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int i = (int)hkt_below(&r, LOCAL);
        if (p[i]) {
            REQUIRE(hkt_verify(p[i], n[i], (uint64_t)i ^ (uintptr_t)arg) == (size_t)-1,
                    "busy thread's block damaged");
            free(p[i]);
            p[i] = NULL;
        } else {
            n[i] = hkt_below(&r, 64) == 0 ? hkt_below(&r, 4 * MiB) : hkt_size(&r, 64 * KiB);
            p[i] = malloc(n[i]);
            REQUIRE(p[i], "busy malloc(%zu)", n[i]);
            hkt_fill(p[i], n[i], (uint64_t)i ^ (uintptr_t)arg);
        }
        ops++;
    }
    for (int i = 0; i < LOCAL; i++)
        free(p[i]);
    atomic_fetch_add(&busy_ops, ops);
    return NULL;
}

static int child_churn(uint64_t seed) {
    enum { K = 1000 };
    static void *p[K];
    static size_t n[K];
    hkt_rng r = {seed};
    for (int i = 0; i < K; i++) {
        n[i] = hkt_size(&r, 2 * MiB);
        p[i] = i & 1 ? calloc(1, n[i]) : malloc(n[i]);
        if (!p[i]) return 1;
        hkt_fill(p[i], n[i], seed + (uint64_t)i);
    }
    for (int i = 0; i < K; i++) {
        if (hkt_verify(p[i], n[i], seed + (uint64_t)i) != (size_t)-1) return 2;
        free(p[i]);
    }
    return 0;
}

static void *child_thread(void *arg) {
    return (void *)(intptr_t)child_churn((uint64_t)(uintptr_t)arg);
}

static void *inherited[INHERITED];
static size_t inherited_n[INHERITED];

int main(void) {
    hkt_init(NAME);
    double t0 = hkt_now();
    hkt_rng r = {7};
    for (int i = 0; i < INHERITED; i++) {
        inherited_n[i] = hkt_size(&r, 256 * KiB);
        inherited[i] = malloc(inherited_n[i]);
        REQUIRE(inherited[i], "malloc");
        hkt_fill(inherited[i], inherited_n[i], 0xCAFE + (uint64_t)i);
    }
    pthread_t t[BUSY];
    for (int i = 0; i < BUSY; i++)
        REQUIRE(pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)(i + 1)) == 0, "thread");

    int ok = 0;
    for (int f = 0; f < FORKS; f++) {
        usleep(2000 + 1000 * (useconds_t)(f % 5)); /* fork at varying points of the churn */
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            alarm(20); /* a deadlocked child dies of SIGALRM */
            for (int i = 0; i < INHERITED; i++) {
                if (hkt_verify(inherited[i], inherited_n[i], 0xCAFE + (uint64_t)i) != (size_t)-1)
                    _exit(10);
                if (i & 1) free(inherited[i]); /* blocks allocated before the fork */
            }
            int rc = child_churn(1000 + (uint64_t)f);
            if (rc) _exit(20 + rc);
            pthread_t ct;
            if (pthread_create(&ct, NULL, child_thread, (void *)(uintptr_t)(5000 + f)) != 0)
                _exit(30);
            void *res = NULL;
            pthread_join(ct, &res);
            if (res) _exit(40 + (int)(intptr_t)res);
            for (int i = 0; i < INHERITED; i += 2)
                free(inherited[i]);
            _exit(0);
        }
        int st = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else if (WIFSIGNALED(st)) {
            CHECK(0, "fork %d: child died of signal %d%s", f, WTERMSIG(st),
                  WTERMSIG(st) == SIGALRM ? " (deadlocked: allocator lock held across fork?)" : "");
        } else {
            CHECK(0,
                  "fork %d: child exited %d (10 inherited block damaged, 2x churn, 30 "
                  "pthread_create, 4x thread churn)",
                  f, WEXITSTATUS(st));
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < BUSY; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < INHERITED; i++) {
        CHECK(hkt_verify(inherited[i], inherited_n[i], 0xCAFE + (uint64_t)i) == (size_t)-1,
              "parent's block %d damaged by a child's frees", i);
        free(inherited[i]);
    }
    printf("  %d forks while %d threads churned (%lu ops): %d children allocated, freed "
           "inherited blocks, ran a thread, verified all, exited 0\n",
           FORKS, BUSY, atomic_load(&busy_ops), ok);
    fprintf(stderr, "%s: %.2f s\n", NAME, hkt_now() - t0);
    return hkt_finish(NAME);
}

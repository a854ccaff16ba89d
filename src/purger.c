/* The background purger: one detached thread, started lazily, that returns free memory to the
 * OS once the purge delay has passed even when the program makes no allocator call (idle or
 * blocked threads' heaps, cached segments and huge blocks), and sleeps on a futex when nothing
 * free is resident. Never allocates; never started while a hakmem lock is held. */
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* A process that never mapped more than this never gets the thread: at most this much free
 * memory can then stay resident, and it goes back on the next allocator call as before. */
#define START_MAPPED ((int64_t)8 << 20)
#define MIN_SLEEP_NS 1000000u /* never wake more often than once a millisecond */
#define STACK_SIZE ((size_t)64 << 10)

enum { OFF, STARTING, RUNNING, FAILED };
static _Atomic int state;
static _Atomic uint32_t wake_seq; /* the futex word: bumped to wake an idle purger */
static _Atomic int idle;          /* the purger sleeps until woken (nothing free is resident) */
/* Held for a whole pass, so fork never catches the purger inside one (holding heap locks). */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;

static void futex_wait(_Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout_ns ? &ts : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static uint64_t earliest(uint64_t a, uint64_t b) { return a == 0 || (b != 0 && b < a) ? b : a; }

/* One pass: return what is due, and say when the next thing falls due (0: nothing waits). */
static uint64_t purge_pass(void) {
    pthread_mutex_lock(&pass_lock);
    remote_reclaim_idle(0); /* idle threads' batches of remote frees pin their pages */
    uint64_t due = heap_purge_due(os_now_ns());
    due = earliest(due, heap_orphans_due(0)); /* exited threads' heaps nobody adopted */
    due = earliest(due, seg_cache_due());
    due = earliest(due, seg_abandoned_due(0));
    due = earliest(due, huge_cache_due());
    pthread_mutex_unlock(&pass_lock);
    return due;
}

static void *purger_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "hakmem-purge");
    for (;;) {
        uint32_t seq = atomic_load(&wake_seq);
        /* Announce the sleep before looking: a notifier that retains memory after our look
         * sees `idle` and wakes us (both sides order their store and load with seq_cst). */
        atomic_store(&idle, 1);
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t due = purge_pass();
        if (due == 0) {
            futex_wait(&wake_seq, seq, 0);
            continue;
        }
        atomic_store(&idle, 0);
        uint64_t now = os_now_ns(), wait = due > now ? due - now : 0;
        futex_wait(&wake_seq, seq, wait < MIN_SLEEP_NS ? MIN_SLEEP_NS : wait);
    }
    return NULL;
}

static void purger_start(void) {
    int expected = OFF;
    if (!atomic_compare_exchange_strong(&state, &expected, STARTING)) return;
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all;
    sigfillset(&all);
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED); /* never joined: exit won't wait */
        pthread_attr_setstacksize(&attr, STACK_SIZE);
        pthread_attr_setsigmask_np(&attr, &all); /* the program's signals never land on it */
        ok = pthread_create(&tid, &attr, purger_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!ok && hk_opt.verbose) hk_message("could not start the background purger thread");
    atomic_store(&state, ok ? RUNNING : FAILED); /* failed: purging stays on allocator calls */
}

/* Called after free memory became retained (a dirty slice, a cached segment or huge block),
 * with no hakmem lock held: wake the purger if it sleeps, start it the first time. */
void purger_notify(void) {
    int s = atomic_load_explicit(&state, memory_order_relaxed);
    if (likely(s == RUNNING)) {
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&idle, memory_order_relaxed) && atomic_exchange(&idle, 0)) {
            atomic_fetch_add(&wake_seq, 1);
            futex_wake(&wake_seq);
        }
        return;
    }
    if (s != OFF || !hk_opt.background) return;
    if (atomic_load_explicit(&hk_counters.mapped_peak, memory_order_relaxed) < START_MAPPED) return;
    purger_start();
}

void purger_fork_prepare(void) { pthread_mutex_lock(&pass_lock); }
void purger_fork_parent(void) { pthread_mutex_unlock(&pass_lock); }

/* The thread does not exist in the child: start it again only if the child needs one. */
void purger_fork_child(void) {
    pthread_mutex_init(&pass_lock, NULL);
    atomic_store(&idle, 0);
    if (atomic_load(&state) != FAILED) atomic_store(&state, OFF);
}

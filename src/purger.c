/* The background purger: one detached thread, started lazily, that returns free memory to the
 * OS once the purge delay has passed even when the program makes no allocator call (idle or
 * blocked threads' heaps, cached segments and huge blocks), and sleeps on a futex when nothing
 * free is resident. It never keeps a process alive that the program's threads have all left.
 * Never allocates. Started at a purger_poll, where the starting thread's allocator call is
 * done with its heap: pthread_create allocates on the thread that calls it. */
#include <fcntl.h>
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
/* Address space; only the pages it touches are resident. Room for the program's exit handlers,
 * which run on this thread when it is the last one to end (see alone()). */
#define STACK_SIZE ((size_t)1 << 20)
/* After a thread exits, the thread count is looked at after 1 ms, then at doubling intervals up
 * to this, then no more until the next exit. */
#define WATCH_MAX_NS ((uint64_t)1 << 30)

enum { OFF, STARTING, RUNNING, FAILED };
static _Atomic int state;
static _Atomic uint32_t wake_seq; /* the futex word: bumped to wake an idle purger */
static _Atomic int idle;          /* the purger sleeps until woken (nothing free is resident) */
static _Atomic int exits;         /* a thread exited since the purger last looked */
_Atomic int hk_purger_pending;    /* the thread is wanted: the next purger_poll starts it */
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

/* 1 when no thread of the process but the calling one is left. A thread-group leader that
 * has exited (a main() that called pthread_exit) stays counted, as a zombie, until the
 * process ends. 0 when /proc cannot say. */
static int alone(void) {
    char buf[512];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = buf + n;
    while (p > buf && *p != ')') p--; /* the name may hold spaces and parentheses */
    if (*p != ')' || p[1] != ' ') return 0;
    char state = p[2];
    /* num_threads is field 20; the state, field 3, follows the name */
    int field = 3;
    for (p += 2; *p && field < 20; p++)
        if (*p == ' ') field++;
    if (field != 20) return 0;
    long threads = 0;
    while (*p >= '0' && *p <= '9') threads = threads * 10 + (*p++ - '0');
    return threads == 1 || (threads == 2 && state == 'Z');
}

/* A program whose main() called pthread_exit ends when its last thread does, as glibc counts
 * threads: this one counts too, so once every other thread has exited it returns, and glibc
 * ends the process from here (exit(0), with the program's exit handlers). */
static void *purger_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "hakmem-purge");
    uint64_t watch_ns = 0; /* 0: no thread exit to look after */
    for (;;) {
        uint32_t seq = atomic_load(&wake_seq);
        /* Announce the sleep before looking: a notifier that retains memory after our look
         * sees `idle` and wakes us (both sides order their store and load with seq_cst). */
        atomic_store(&idle, 1);
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t due = purge_pass();
        if (atomic_exchange(&exits, 0) && watch_ns == 0) watch_ns = MIN_SLEEP_NS;
        uint64_t wait = 0; /* 0: until woken */
        if (due) {
            uint64_t now = os_now_ns();
            wait = due > now ? due - now : 0;
            if (wait < MIN_SLEEP_NS) wait = MIN_SLEEP_NS;
        }
        if (watch_ns) {
            /* while a thread with a heap lives, the process is not down to this one, and /proc
             * need not be read (nor opened at all, in a program whose sandbox forbids it) */
            if (!heap_threads_live() && alone()) return NULL;
            if (wait == 0 || watch_ns < wait) wait = watch_ns;
            watch_ns = watch_ns < WATCH_MAX_NS ? watch_ns * 2 : 0;
        }
        if (wait) atomic_store(&idle, 0);
        futex_wait(&wake_seq, seq, wait);
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

/* Called after free memory became retained (a dirty slice, a cached segment or huge block):
 * wake the purger if it sleeps; the first time, ask the next purger_poll to start it. Its
 * callers may be inside a walk of a heap's lists, or hold heaps_lock (seg_abandon_all). */
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
    atomic_store_explicit(&hk_purger_pending, 1, memory_order_relaxed);
}

/* purger_poll found the thread wanted. Of threads that poll at once, purger_start's state
 * change lets one start it; the allocations pthread_create makes poll again and find it
 * taken. */
void purger_start_pending(void) {
    atomic_store_explicit(&hk_purger_pending, 0, memory_order_relaxed);
    purger_start();
}

void purger_fork_prepare(void) { pthread_mutex_lock(&pass_lock); }
void purger_fork_parent(void) { pthread_mutex_unlock(&pass_lock); }

/* A thread is exiting (its heap was handed off): if it was the last with a heap, wake the
 * purger, which looks whether any other thread is left once this one is gone. While others
 * with a heap live, the last of them to exit wakes it: a program whose threads come and go
 * does not wake it at every exit (a futex wake and a purge pass each). */
void purger_thread_exit(void) {
    purger_notify(); /* the orphan falls due after the purge delay */
    purger_poll();   /* the heap is handed off: the purger may start here */
    if (atomic_load(&state) != RUNNING || heap_threads_live()) return;
    atomic_store(&exits, 1);
    atomic_fetch_add(&wake_seq, 1);
    futex_wake(&wake_seq);
}

/* The thread does not exist in the child: start it again only if the child needs one. */
void purger_fork_child(void) {
    pthread_mutex_init(&pass_lock, NULL);
    atomic_store(&idle, 0);
    atomic_store(&exits, 0);
    if (atomic_load(&state) != FAILED) atomic_store(&state, OFF);
}

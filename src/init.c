/* Process initialisation and fork handling. Init is lazy (the first malloc may come before
 * any constructor, from the dynamic linker or libc) and safe against the recursion that
 * happens when a libc call made during init allocates. */
#include <pthread.h>

#include "internal.h"

static _Atomic int init_state; /* 0: not started, 1: running, 2: done */
static __thread int init_running_here __attribute__((tls_model("initial-exec")));
extern char **environ;
static int env_seen;

/* The purger first: once it is between passes it holds no other hakmem lock. */
static void fork_prepare(void) {
    purger_fork_prepare();
    heap_lock_all();
    seg_lock_all();
    huge_lock();
}

static void fork_parent(void) {
    huge_unlock();
    seg_unlock_all();
    heap_unlock_all();
    purger_fork_parent();
}

static void fork_child(void) {
    huge_unlock();
    seg_unlock_all();
    heap_unlock_all();
    heap_after_fork_child();
    purger_fork_child();
}

void hk_process_init(void) {
    if (likely(atomic_load_explicit(&init_state, memory_order_acquire) == 2)) return;
    if (init_running_here) return; /* re-entered from a libc call below */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&init_state, &expected, 1)) {
        while (atomic_load_explicit(&init_state, memory_order_acquire) != 2) sched_yield();
        return;
    }
    init_running_here = 1;
    seg_map_init(); /* first: a libc call below may allocate */
    size_class_init();
    env_seen = environ != NULL;
    options_load();
    heap_process_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    init_running_here = 0;
    atomic_store_explicit(&init_state, 2, memory_order_release);
}

/* If the first allocation came before libc set up the environment, read options again. */
__attribute__((constructor)) static void init_at_load(void) {
    hk_process_init();
    if (!env_seen) options_load();
}

HK_API int hk_trim(void) {
    heap_t *h = hk_heap_tls;
    int released = 0;
    if (h != &hk_heap_empty) {
        remote_flush(h);
        released = atomic_load(&h->purge_deadline_ns) != 0;
        seg_purge_heap(h, 1);
    }
    remote_reclaim_idle(1);
    heap_orphans_due(1);
    seg_abandoned_due(1);
    released |= seg_cache_trim(1);
    released |= huge_cache_trim(1);
    return released;
}

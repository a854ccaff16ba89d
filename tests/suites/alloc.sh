# Allocator tests (tests/alloc_*.c, built by mk/tests.mk): each program in its preload build
# (libc binary + LD_PRELOAD=$HK_LIB), its linked hk_ build (.hk) and, for the multi-threaded
# ones, under TSan. Sourced by tests/run_all.sh, which provides t / t_slow and HK_LIB.
# The preload builds refuse to run unless hakmem is the active allocator; to compare behaviour
# with another allocator, run one with HK_TEST_ALLOW_SYSTEM=1 (hakmem-only checks are skipped):
#   HK_TEST_ALLOW_SYSTEM=1 LD_PRELOAD=libjemalloc.so.2 build/tests/alloc_conformance

for prog in conformance stress crossthread churn fork large hover medium_turns handoff tiers realloc orphan oversize append align_limits aslimit window spread; do
    t "alloc_$prog/preload" env LD_PRELOAD="$HK_LIB" "build/tests/alloc_$prog"
    t "alloc_$prog/hk" "build/tests/alloc_$prog.hk"
done

# Freed medium, large and huge memory goes back to the OS after HAKMEM_PURGE_DELAY_MS, and not
# before it: default delay and no delay must return it, a 60 s delay must keep it for now.
for d in 100 0; do
    t "alloc_purge/preload-delay$d" env HAKMEM_PURGE_DELAY_MS=$d LD_PRELOAD="$HK_LIB" \
        build/tests/alloc_purge --expect return
done
t alloc_purge/hk build/tests/alloc_purge.hk --expect return
t alloc_purge/preload-delay60000 env HAKMEM_PURGE_DELAY_MS=60000 LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_purge --expect keep

# A huge block that needs fresh pages first takes or gives back the freed memory that waits
# out the delay (purged slices, cached mappings' pages moved into its growth): long delay only.
t alloc_huge_rss/preload env HAKMEM_PURGE_DELAY_MS=60000 LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_huge_rss
t alloc_huge_rss/hk env HAKMEM_PURGE_DELAY_MS=60000 build/tests/alloc_huge_rss.hk

# No huge block asks for transparent huge pages by default; with HAKMEM_THP=1 malloc's and
# realloc's do, calloc's never (skipped where the kernel offers none).
t alloc_thp/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_thp
t alloc_thp/preload-on env HAKMEM_THP=1 LD_PRELOAD="$HK_LIB" build/tests/alloc_thp
t alloc_thp/hk-on env HAKMEM_THP=1 build/tests/alloc_thp.hk

# Foreign frees and double frees: fatal by default (the runs above); with HAKMEM_BAD_FREE=warn
# each is reported (double frees exactly once) and with =ignore silently ignored, and either way
# nothing is written through the pointer and the heap stays sound.
t alloc_conformance/preload-warn env HAKMEM_BAD_FREE=warn LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_conformance
t alloc_conformance/hk-ignore env HAKMEM_BAD_FREE=ignore build/tests/alloc_conformance.hk
t alloc_double_free/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_double_free
t alloc_double_free/hk build/tests/alloc_double_free.hk
t alloc_double_free/preload-warn env HAKMEM_BAD_FREE=warn LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_double_free
t alloc_double_free/hk-ignore env HAKMEM_BAD_FREE=ignore build/tests/alloc_double_free.hk
# The same blocks freed by two threads at once: each second free reported, no cycle followed.
t alloc_free_race/preload-warn env HAKMEM_BAD_FREE=warn LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_free_race
t alloc_free_race/hk-warn env HAKMEM_BAD_FREE=warn build/tests/alloc_free_race.hk

# Medium free lists (1-8 KiB pages of several slices, 10-110 KiB pages tested by their span):
# intact links across slices followed, forged ones (segment header, another page, misaligned,
# past the page's blocks) reported once and never followed.
t alloc_links/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_links
t alloc_links/hk build/tests/alloc_links.hk

# The first allocation call, of every kind and tier, made by a library's constructor before
# hakmem's process init (tests/alloc_first_call.c); the hardened build's entry points too.
t alloc_first_call/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_first_call
t alloc_first_call/preload-hardened env LD_PRELOAD="$PWD/build/hardened/libhakmem.so" \
    build/tests/alloc_first_call

# The C library and the loader free only what hakmem allocated (a foreign pointer would abort).
t alloc_libc/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_libc

# A program that limits its own address space after the allocator started (setrlimit).
t alloc_aslimit/preload-runtime env LD_PRELOAD="$HK_LIB" build/tests/alloc_aslimit --runtime
t alloc_aslimit/hk-runtime build/tests/alloc_aslimit.hk --runtime

# Under an address-space limit (ulimit -v, 2 GB) segments live in the low window that a small
# segment map covers (src/seg_window.c): threads, fork, every tier and the largest alignments.
for prog in crossthread fork tiers large align_limits; do
    t "alloc_$prog/preload-aslimit" bash -c 'ulimit -v 2000000 && exec "$@"' _ \
        env LD_PRELOAD="$HK_LIB" "build/tests/alloc_$prog"
done

# No caches and immediate purging: every free that empties a page or segment goes back to the
# OS at once, so reuse of purged memory (calloc zeroing, stale list heads) is exercised hard.
hk_nocache=(HAKMEM_PURGE_DELAY_MS=0 HAKMEM_SEGMENT_CACHE=0 HAKMEM_LARGE_CACHE_MB=0)
for prog in stress crossthread churn large handoff tiers realloc; do
    t "alloc_$prog/preload-nocache" env "${hk_nocache[@]}" LD_PRELOAD="$HK_LIB" \
        "build/tests/alloc_$prog"
done

# A process ends when its last thread does (main() calling pthread_exit; a fork from a worker
# whose copy is the child's only thread), though hakmem's background thread runs.
t alloc_last_thread/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_last_thread
t alloc_last_thread/hk build/tests/alloc_last_thread.hk

# Public allocator benchmarks' patterns (xmalloc, cache-scratch, sh6bench, rptest, realloc
# growth) with 16 threads on 2 cores, every block checked; longer and with 32 threads when slow.
t alloc_workloads/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_workloads --threads 16
t alloc_workloads/hk build/tests/alloc_workloads.hk --threads 8
t alloc_workloads/preload-nocache env "${hk_nocache[@]}" LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_workloads --threads 8
t_slow alloc_workloads/preload-long env LD_PRELOAD="$HK_LIB" build/tests/alloc_workloads \
    --threads 32 --scale 4

# The background purger's first start, in fresh processes whose threads hand batches of
# mixed sizes to each other: a start from inside a heap operation corrupted the heap.
t alloc_purger_start/preload env LD_PRELOAD="$HK_LIB" build/tests/alloc_purger_start
t alloc_purger_start/hk build/tests/alloc_purger_start.hk

# A different seed each run widens coverage over time; the seed is in the log for replay.
t alloc_stress/preload-seed env LD_PRELOAD="$HK_LIB" build/tests/alloc_stress \
    --seed "$(( (RANDOM << 15) | RANDOM ))" --iters 1000000
t_slow alloc_stress/preload-long env LD_PRELOAD="$HK_LIB" build/tests/alloc_stress \
    --iters 40000000 --slots 20000
t_slow alloc_stress/hk-long build/tests/alloc_stress.hk --iters 40000000 --seed 99
t_slow alloc_crossthread/preload-long env LD_PRELOAD="$HK_LIB" build/tests/alloc_crossthread \
    --scale 20

# TSan: a report exits 66. Some kernels' mmap layout makes TSan abort at start ("unexpected
# memory mapping"); then the run is repeated without address randomisation.
# (timeout runs the command, so this is a bash -c script rather than a shell function.)
tsan_run='export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
    out=$("$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -q "unexpected memory mapping" <<<"$out"; then
        echo "(TSan could not map its shadow; rerunning under setarch -R)"
        exec setarch "$(uname -m)" -R "$@"
    fi
    printf "%s\n" "$out"; exit $rc'
for prog in crossthread churn handoff orphan; do
    t "alloc_$prog/tsan" bash -c "$tsan_run" tsan_run "build/tsan/alloc_$prog"
done
for prog in crossthread churn; do
    t "alloc_$prog/tsan-nocache" env "${hk_nocache[@]}" bash -c "$tsan_run" tsan_run \
        "build/tsan/alloc_$prog"
done

# Idle memory return (tests/alloc_idle.c): freed bursts go back to the OS while the threads
# that freed them stay blocked and nobody calls the allocator; no background thread where
# little is mapped or with HAKMEM_BACKGROUND=0 (which must then leave the memory resident,
# showing the check can fail); the purger survives fork in a threaded program.
for n in 1 4; do
    t "alloc_idle/preload-burst-$n" env LD_PRELOAD="$HK_LIB" build/tests/alloc_idle burst --threads $n
done
t alloc_idle/hk-burst-2 build/tests/alloc_idle.hk burst --threads 2
t alloc_idle/preload-background-off env HAKMEM_BACKGROUND=0 LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_idle burst --threads 2 --expect-retained
t alloc_idle/preload-small env LD_PRELOAD="$HK_LIB" build/tests/alloc_idle small
t alloc_idle/preload-spares env LD_PRELOAD="$HK_LIB" build/tests/alloc_idle spares
t alloc_idle/preload-spares-off env HAKMEM_BACKGROUND=0 LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_idle spares --expect-retained
t alloc_idle/preload-unmap env HAKMEM_PURGE_DELAY_MS=60000 LD_PRELOAD="$HK_LIB" \
    build/tests/alloc_idle unmap
t alloc_idle/preload-fork env LD_PRELOAD="$HK_LIB" build/tests/alloc_idle fork
t alloc_idle/hk-fork build/tests/alloc_idle.hk fork
t alloc_idle/dlclose env -u LD_PRELOAD build/tests/alloc_idle dlclose

# Every program mk/tests.mk builds must be run by this file: one that is built and never run
# could not fail.
t alloc/every_program_runs bash -c '
    for p in $(sed -n "s/^ALLOC_TESTS *:= *//p" mk/tests.mk); do
        grep -qE "(^for prog in .*\b$p\b)|tests/alloc_$p(\.hk)?\b" tests/suites/alloc.sh ||
            { echo "build/tests/alloc_$p is built but tests/suites/alloc.sh never runs it"; exit 1; }
    done'

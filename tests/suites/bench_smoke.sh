# bench_smoke: every workload in build/bench/ runs with tiny parameters under the system
# allocator and under hakmem ($HK_LIB) and must end with checks=ok; the runner must produce a
# CSV in a tiny mode. Never asserts on timing. Sourced by tests/run_all.sh.

# run_all.sh runs each test through timeout(1), so the checks are bash -c scripts, not
# functions. $1 = library to preload ("" = system allocator), the rest = the command.
bench_smoke_check='
lib=$1; shift
if [ -n "$lib" ]; then
    [ -f "$lib" ] || { echo "missing $lib (run make)"; exit 1; }
    out=$(LD_PRELOAD=$lib "$@" 2>&1)
else
    out=$(env -u LD_PRELOAD "$@" 2>&1)
fi
rc=$?
printf "%s\n" "$out"
[ $rc -eq 0 ] && grep -q "^result .*checks=ok" <<<"$out"'

bench_smoke_runner='
dir=$(mktemp -d)
trap "rm -rf $dir" EXIT
python3 scripts/bench.py --quick --only random_mixed --reps 1 --allocators system --out "$dir" &&
    grep -q "^random_mixed,system,1,1," "$dir/bench.csv"'

bench_smoke_cases=(
    "random_mixed|random_mixed --iters 20000"
    "random_mixed_medium|random_mixed --min 1024 --max 8192 --iters 5000 --full-check"
    "patterns|patterns --rounds 2 --batch 200"
    "larson|larson --threads 3 --gens 3 --blocks 200 --steps 5000"
    "prodcons|prodcons --pairs 2 --items 20000 --cap 64 --batch 8"
    "prodcons_4k|prodcons --pairs 2 --max 4096 --items 20000"
    "thread_churn|thread_churn --threads 3 --gens 30 --blocks 200"
    "thread_scaling|thread_scaling --threads 4 --iters 20000"
    "random_mixed_medium_large|random_mixed --min 8192 --max 65536 --iters 3000 --full-check"
    "patterns_medium|patterns --rounds 2 --batch 100 --sizes 2048,4096,8192,16384,32768"
    "large|large --iters 8 --max 4m"
    "large_fill|large --iters 8 --min 1m --max 4m --ws 4 --fill 1"
    "big_buffers|big_buffers --iters 6 --max 8m"
    "big_buffers_sparse|big_buffers --iters 6 --max 8m --stride 1m"
    "realloc_growth|realloc_growth --objects 8 --max-len 2000 --rounds 1"
    "soak|soak --quick --phases 4 --phase-ops 5000 --lo 100 --hi 3000"
    "idle_rss|idle_rss --threads 2 --total 16m --idle-ms 300"
)
for bench_case in "${bench_smoke_cases[@]}"; do
    read -r -a bench_cmd <<<"${bench_case#*|}"
    bench_cmd[0]=build/bench/${bench_cmd[0]}
    t "bench/${bench_case%%|*}/system" bash -c "$bench_smoke_check" _ "" "${bench_cmd[@]}"
    t "bench/${bench_case%%|*}/hakmem" bash -c "$bench_smoke_check" _ "$HK_LIB" "${bench_cmd[@]}"
done
t bench/runner_csv bash -c "$bench_smoke_runner"
# Peak RSS against the system allocator's in the same run: at most the larger of TENTHS/10
# times its peak and its peak + SLACK KiB. Only a limit on memory, never on time (a loaded
# machine purges more often, not less). Threaded runs move by a few hundred KiB with how the
# threads interleave, so they get up to three attempts (each measures both allocators); one
# within the limit passes. Arguments: TENTHS SLACK_KIB ATTEMPTS PROGRAM ARGS...
bench_smoke_rss='
peak() { grep -o "maxrss_kb=[0-9]*" <<<"$1" | cut -d= -f2; }
tenths=$1 slack=$2 attempts=$3
shift 3
for ((attempt = 1; attempt <= attempts; attempt++)); do
    sys=$(env -u LD_PRELOAD "$@") || exit 1
    hk=$(LD_PRELOAD=$HK_LIB "$@") || exit 1
    s=$(peak "$sys"); h=$(peak "$hk")
    [ -n "$s" ] && [ -n "$h" ] || exit 1
    lim=$((s * tenths / 10)); [ $lim -lt $((s + slack)) ] && lim=$((s + slack))
    echo "${*#build/bench/} peak RSS: system $s KiB, hakmem $h KiB (limit $lim KiB)"
    [ "$h" -le "$lim" ] && exit 0
done
exit 1'
# realloc_growth (issue 14): 1.2x.
t bench/realloc_growth_rss bash -c "$bench_smoke_rss" _ 12 0 1 build/bench/realloc_growth --rounds 20
# prodcons_2_4k: 1.2x or +2.5 MiB, so blocks freed by the consumers (their batches, the
# owners' remote lists, pages that cycle between full and empty) cannot pile up. The
# cross-thread issue's bound is +2 MiB, which hakmem only reaches on a quiet machine: its
# excess over glibc (1.9-2.1 MiB) is the sum of eight 1-4 KiB classes' high-water marks (see
# docs/architecture.md, "Batched blocks and the owner's RSS"), not blocks left waiting, and
# a loaded run is at or above the bound. Pages left cycling between full and empty (fixed
# since) had put hakmem 4-5 MiB over.
t bench/prodcons_2_4k_rss bash -c "$bench_smoke_rss" _ 12 2560 3 \
    build/bench/prodcons --pairs 2 --max 4096 --items 1000000
# patterns_medium (issue 11): 1.1x or +2 MiB. Blocks of 2-32 KiB, one size after another:
# fails if one size's freed pages are not reused by the next, or if sparsely written blocks
# touch more pages than the system allocator's.
t bench/patterns_medium_rss bash -c "$bench_smoke_rss" _ 11 2048 1 \
    build/bench/patterns --rounds 4 --sizes 2048,4096,8192,16384,32768
# thread_churn: 1.2x or +2 MiB. Threads that free the blocks of exited threads, four at a
# time: fails if the heaps of exited threads each grow to the size of the busiest one (or
# pile up) instead of their free blocks being reused.
t bench/thread_churn_rss bash -c "$bench_smoke_rss" _ 12 2048 3 build/bench/thread_churn --threads 4 --gens 600
# --alloc NAME=PATH adds an allocator (here hakmem again under another name) to the table,
# and a malformed spec is refused.
bench_smoke_extra='
dir=$(mktemp -d)
trap "rm -rf $dir" EXIT
python3 scripts/bench.py --quick --only random_mixed --reps 1 --allocators hakmem \
    --alloc "again=$HK_LIB" --out "$dir" &&
    grep -q "^random_mixed,again,1,1," "$dir/bench.csv" &&
    grep -q "fastest peer" "$dir/bench.md" &&
    ! python3 scripts/bench.py --alloc nopath --out "$dir" 2>/dev/null'
t bench/runner_extra_alloc bash -c "$bench_smoke_extra"
unset bench_case bench_cmd bench_smoke_cases bench_smoke_check bench_smoke_runner bench_smoke_extra \
    bench_smoke_realloc_rss bench_smoke_prodcons_rss bench_smoke_medium_rss bench_smoke_churn_rss

# Heap errors (tests/security/): every case under the default build, the hardened build
# (make hardened) and glibc; what hakmem promises is checked, and docs/security.md's table must
# match these runs (regenerate it with the command the runner prints). Then the hardened build
# runs the allocator tests and real programs that use memory correctly: it must never stop them.
# Sourced by tests/run_all.sh.
hk_hard="$PWD/build/hardened/libhakmem.so"
t security/cases python3 tests/security/run.py --build default=build/libhakmem.so \
    --build hardened=build/hardened/libhakmem.so --build glibc= --doc docs/security.md --check
# A damaged segment header stops the program whatever HAKMEM_BAD_FREE says (ignore, too).
t hardened/meta_zero-ignore bash -c 'out=$(HAKMEM_BAD_FREE=ignore LD_PRELOAD="$1" \
    build/tests/security_cases meta_zero 2>&1); rc=$?; echo "$out"; [ "$rc" -eq 134 ] &&
    grep -q "^hakmem: malloc(): heap metadata overwritten at 0x" <<<"$out"' _ "$hk_hard"
for prog in conformance crossthread churn fork large libc tiers oversize last_thread append align_limits; do
    t "hardened/alloc_$prog" env HK_TEST_HARDENED=1 LD_PRELOAD="$hk_hard" "build/tests/alloc_$prog"
done
# Freed large and huge memory (guards and all) goes back to the OS as in the default build.
t hardened/alloc_purge env HAKMEM_PURGE_DELAY_MS=0 LD_PRELOAD="$hk_hard" build/tests/alloc_purge \
    --expect return
t hardened/alloc_purge-keep env HAKMEM_PURGE_DELAY_MS=60000 LD_PRELOAD="$hk_hard" \
    build/tests/alloc_purge --expect keep
# Guard pages are mapped, never committed, and placed and removed in step (none by default).
t default/harden_guards env LD_PRELOAD="$HK_LIB" build/tests/harden_guards default
t hardened/harden_guards env LD_PRELOAD="$hk_hard" build/tests/harden_guards hardened
t hardened/alloc_workloads env LD_PRELOAD="$hk_hard" build/tests/alloc_workloads --threads 8
t hardened/alloc_stress env LD_PRELOAD="$hk_hard" build/tests/alloc_stress --iters 500000
t hardened/alloc_double_free env HAKMEM_BAD_FREE=warn LD_PRELOAD="$hk_hard" \
    build/tests/alloc_double_free
hk_python=python3
[ -x /usr/bin/python3 ] && hk_python=/usr/bin/python3
t hardened/python3 env HK_LIB="$hk_hard" tests/programs/compare.sh python3-hardened \
    "$hk_python" tests/programs/workload.py
t hardened/sqlite3 env HK_LIB="$hk_hard" tests/programs/compare.sh sqlite3-hardened sqlite3 \
    :memory: ".read tests/programs/workload.sql"
t hardened/perl env HK_LIB="$hk_hard" tests/programs/compare.sh perl-hardened perl \
    tests/programs/workload.pl

# Real programs under LD_PRELOAD=$HK_LIB must print exactly what they print on the system
# allocator (tests/programs/). Sourced by tests/run_all.sh.
# CI installs python3, sqlite3 and perl; a missing one fails its test rather than passing unseen.
hk_python=python3
[ -x /usr/bin/python3 ] && hk_python=/usr/bin/python3 # not a version-manager shim
t programs/python3 tests/programs/compare.sh python3 "$hk_python" tests/programs/workload.py
t programs/sqlite3 tests/programs/compare.sh sqlite3 sqlite3 :memory: \
    ".read tests/programs/workload.sql"
t programs/perl tests/programs/compare.sh perl perl tests/programs/workload.pl
t programs/cc tests/programs/cc.sh
# A C++ program (tests/programs/workload.cpp): libstdc++'s first allocation, 72 KiB from its
# constructor, reaches hakmem before hakmem's own init.
t programs/cxx tests/programs/compare.sh cxx build/tests/workload_cxx
# redis-server (Debian's, on its own jemalloc with its background thread) against hakmem under
# LD_PRELOAD: 100 k keys, FLUSHALL, and hakmem's RSS 2 s later must be at most 1.2x jemalloc's.
# scripts/redis_bench.py prints "skipped" and passes where redis is not installed.
t programs/redis-idle python3 scripts/redis_bench.py --allocators redis-jemalloc,hakmem \
    --keys 100000 --reps 1 --requests 20000 --check

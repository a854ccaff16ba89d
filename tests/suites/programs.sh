# Real programs under LD_PRELOAD=$HK_LIB must print exactly what they print on the system
# allocator (tests/programs/). Sourced by tests/run_all.sh.
# CI installs python3 and sqlite3; a missing one fails its test rather than passing unseen.
hk_python=python3
[ -x /usr/bin/python3 ] && hk_python=/usr/bin/python3 # not a version-manager shim
t programs/python3 tests/programs/compare.sh python3 "$hk_python" tests/programs/workload.py
t programs/sqlite3 tests/programs/compare.sh sqlite3 sqlite3 :memory: \
    ".read tests/programs/workload.sql"
t programs/cc tests/programs/cc.sh

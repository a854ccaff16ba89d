#!/usr/bin/env bash
# Runs a real program twice, on the system allocator and under LD_PRELOAD=$HK_LIB with
# HAKMEM_STATS=1, and fails unless both exit 0 with identical, non-empty stdout and the
# preloaded run's stderr carries hakmem's exit report (proof it really ran on hakmem).
# Usage: compare.sh NAME COMMAND [ARGS...]   (outputs kept under build/programs/NAME/)
set -u
name=$1; shift
: "${HK_LIB:?HK_LIB must name build/libhakmem.so}"
command -v "$1" >/dev/null || { echo "FAIL $name: '$1' is not installed"; exit 1; }
dir=build/programs/$name
rm -rf "$dir" && mkdir -p "$dir"

"$@" >"$dir/system.out" 2>"$dir/system.err"
rc_sys=$?
env LD_PRELOAD="$HK_LIB" HAKMEM_STATS=1 "$@" >"$dir/hakmem.out" 2>"$dir/hakmem.err"
rc_hk=$?

fail=0
echo "$name: $* (system rc $rc_sys, hakmem rc $rc_hk)"
if [ $rc_sys -ne 0 ]; then echo "FAIL: exits $rc_sys on the system allocator"; fail=1; fi
if [ $rc_hk -ne 0 ]; then
    echo "FAIL: exits $rc_hk under hakmem"; tail -n 20 "$dir/hakmem.err"; fail=1
fi
if [ ! -s "$dir/system.out" ]; then echo "FAIL: no output on the system allocator"; fail=1; fi
if cmp -s "$dir/system.out" "$dir/hakmem.out"; then
    echo "  stdout identical ($(wc -l <"$dir/system.out") lines)"
else
    echo "FAIL: stdout differs under hakmem:"; diff "$dir/system.out" "$dir/hakmem.out" | head -n 20
    fail=1
fi
if grep -qi hakmem "$dir/hakmem.err"; then
    echo "  ran on hakmem: HAKMEM_STATS=1 report found on stderr"
else
    echo "FAIL: no hakmem report on stderr with HAKMEM_STATS=1: did the preload take effect?"
    fail=1
fi
# A bad free aborts by default, so a foreign pointer from the program, libc or the loader
# would already have failed the run; the report's count says so explicitly.
if grep -q "bad frees [1-9]" "$dir/hakmem.err"; then
    echo "FAIL: hakmem counted bad frees: $(grep -o 'bad frees [0-9]*' "$dir/hakmem.err" | sort -u)"
    fail=1
else
    echo "  no bad frees counted"
fi
exit $fail

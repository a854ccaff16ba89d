#!/usr/bin/env bash
# The C compiler under hakmem: compiles three of the repository's test programs and links one
# with and without LD_PRELOAD=$HK_LIB (gcc's cc1, as and ld inherit the preload). The object
# files and executables must be byte-identical, and the executable built under hakmem must
# print what the other one prints. HAKMEM_STATS=1 on the preloaded build proves hakmem ran.
set -u
: "${HK_LIB:?HK_LIB must name build/libhakmem.so}"
CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "FAIL: no C compiler '$CC'"; exit 1; }
dir=build/programs/cc
rm -rf "$dir" && mkdir -p "$dir"
srcs=(tests/alloc_stress.c tests/alloc_conformance.c tests/alloc_crossthread.c)
flags=(-std=c11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -Iinclude -fno-builtin)
fail=0

build() { # build OUT_DIR [env...]: an object file per source, an executable of the first
    local out=$1; shift
    mkdir -p "$out"
    for s in "${srcs[@]}"; do
        env "$@" "$CC" "${flags[@]}" -c "$s" -o "$out/$(basename "$s" .c).o" || return 1
    done
    env "$@" "$CC" "$out/alloc_stress.o" -o "$out/alloc_stress" -lpthread -ldl
}
build "$dir/system" 2>"$dir/system.err" || { echo "FAIL: build on the system allocator"; fail=1; }
build "$dir/hakmem" LD_PRELOAD="$HK_LIB" HAKMEM_STATS=1 2>"$dir/hakmem.err" ||
    { echo "FAIL: build under hakmem:"; tail -n 20 "$dir/hakmem.err"; fail=1; }
[ $fail -eq 0 ] || exit 1
echo "cc: $CC ${flags[*]} ${srcs[*]}, with and without LD_PRELOAD"

for f in alloc_stress.o alloc_conformance.o alloc_crossthread.o alloc_stress; do
    if cmp "$dir/system/$f" "$dir/hakmem/$f"; then
        echo "  $f identical ($(stat -c %s "$dir/system/$f") bytes)"
    else
        echo "FAIL: $f differs when built under hakmem"; fail=1
    fi
done
# Both binaries run on the system allocator here: the point is what the compiler produced.
HK_TEST_ALLOW_SYSTEM=1 "$dir/system/alloc_stress" --iters 200000 >"$dir/system.run" 2>/dev/null
rc1=$?
HK_TEST_ALLOW_SYSTEM=1 "$dir/hakmem/alloc_stress" --iters 200000 >"$dir/hakmem.run" 2>/dev/null
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s "$dir/system.run" "$dir/hakmem.run"; then
    echo "  the executable built under hakmem runs and prints the same ($(wc -l <"$dir/hakmem.run") lines)"
else
    echo "FAIL: executables behave differently (rc $rc1 / $rc2)"
    diff "$dir/system.run" "$dir/hakmem.run" | head; fail=1
fi
if grep -qi hakmem "$dir/hakmem.err"; then
    echo "  compiler ran on hakmem: $(grep -ci hakmem "$dir/hakmem.err") report lines on stderr"
else
    echo "FAIL: no hakmem report from the compiler with HAKMEM_STATS=1"; fail=1
fi
exit $fail

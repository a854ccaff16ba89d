#!/usr/bin/env bash
# Runs every registered test and prints "N passed, N failed" last.
# Suites live in tests/suites/*.sh and call `t NAME COMMAND...` (quick) or
# `t_slow NAME COMMAND...` (run only with HK_TEST_SLOW=1). A test passes when it exits 0.
# HK_TEST_FILTER=regex runs only tests whose name matches.
set -u
cd "$(dirname "$0")/.."
export HK_LIB="$PWD/build/libhakmem.so"
LOG_DIR=build/test-logs
mkdir -p "$LOG_DIR"
passed=0 failed=0 skipped=0 failures=()

run_one() {
    local name=$1; shift
    if [ -n "${HK_TEST_FILTER:-}" ] && ! [[ $name =~ $HK_TEST_FILTER ]]; then return; fi
    local log="$LOG_DIR/${name//\//_}.log" start=$SECONDS
    if timeout "${HK_TEST_TIMEOUT:-300}" "$@" >"$log" 2>&1; then
        passed=$((passed + 1)); printf 'PASS  %-48s %3ss\n' "$name" $((SECONDS - start))
    else
        failed=$((failed + 1)); failures+=("$name")
        printf 'FAIL  %-48s %3ss (log: %s)\n' "$name" $((SECONDS - start)) "$log"
        tail -n 15 "$log" | sed 's/^/      /'
    fi
}
t() { run_one "$@"; }
t_slow() {
    if [ "${HK_TEST_SLOW:-0}" = 1 ]; then run_one "$@"; else skipped=$((skipped + 1)); fi
}

for suite in tests/suites/*.sh; do
    # shellcheck source=/dev/null
    source "$suite"
done

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The README's options table is the table of src/options.c: every row that
# build/tools/options_list prints (name, default, meaning) is in README.md as it is, and the
# README has no HAKMEM_ row besides them.
set -u
cd "$(dirname "$0")/../.."
rows=$(build/tools/options_list markdown) || { echo "FAIL: build/tools/options_list"; exit 1; }
fail=0
while IFS= read -r row; do
    if grep -qxF -- "$row" README.md; then echo "ok    $row"
    else echo "FAIL  not in README.md: $row"; fail=1; fi
done <<<"$rows"
extra=$(grep -E '^\| `HAKMEM_' README.md | grep -vxF -- "$rows")
[ -z "$extra" ] || { echo "FAIL  README.md rows that src/options.c does not have:"; echo "$extra"; fail=1; }
echo "$(wc -l <<<"$rows") options compared"
exit $fail

#!/usr/bin/env bash
# The launcher as installed (make install into a temporary DESTDIR): runs a program on hakmem
# with a user's LD_PRELOAD kept, maps its options to the library's variables (--stats as text
# and as JSON, which must parse), passes arguments, exit status and signals through (it execs),
# works from a moved tree and through a symlink, and rejects bad command lines with status 2,
# a missing program with 127 and a non-executable one with 126.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; fail=1; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3 # not a version-manager shim

make -s install DESTDIR="$tmp/stage" PREFIX=/usr/local >"$tmp/install.log" 2>&1 ||
    { bad "make install"; cat "$tmp/install.log"; exit 1; }
H=$tmp/stage/usr/local/bin/hakmem
cc -O1 tests/install/probe.c -o "$tmp/probe" -ldl || { bad "build probe"; exit 1; }
printf '#include <stdio.h>\n__attribute__((constructor)) static void f(void) { fputs("keep: loaded\\n", stderr); }\n' \
    >"$tmp/keep.c"
cc -shared -fPIC "$tmp/keep.c" -o "$tmp/keep.so" || { bad "build keep.so"; exit 1; }

expect() { # DESCRIPTION STATUS PATTERN COMMAND...: exit status and a pattern in stdout+stderr
    local what=$1 want=$2 pat=$3; shift 3
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out"; then ok "$what (exit $rc)"
    else bad "$what: exit $rc (want $want), output:"; sed 's/^/      /' <<<"$out" | tail -n 12; fi
}

# Running on hakmem; a user's LD_PRELOAD is kept, and hakmem comes after it.
expect "hakmem probe: malloc is hakmem's" 0 "is hakmem's" "$H" "$tmp/probe"
expect "LD_PRELOAD=keep.so hakmem probe: both loaded" 0 "keep: loaded" \
    env LD_PRELOAD="$tmp/keep.so" "$H" "$tmp/probe"
out=$(LD_PRELOAD="$tmp/keep.so" "$H" sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)
lib=$(cd "$tmp/stage/usr/local/lib" && pwd -P)/libhakmem.so.0
[ "$out" = "$tmp/keep.so $lib" ] && ok "LD_PRELOAD becomes '$tmp/keep.so $lib'" ||
    bad "LD_PRELOAD in the program: '$out'"

# --stats, readable and JSON (a HAKMEM_STATS=json already set is kept by --stats).
expect "hakmem --stats python3 -c pass: the report" 0 \
    "^hakmem statistics" "$H" --stats "$py" -c pass
grep -qE "^  segments +[1-9]" <<<"$out" && ok "--stats: the report counts segments" ||
    bad "--stats: no segment count"
for how in "env HAKMEM_STATS=json $H --stats" "$H --stats=json"; do
    err=$($how "$py" -c pass 2>&1 >/dev/null)
    if "$py" -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["segments"] >= 1
assert d["options"]["HAKMEM_STATS"] == "json"' "$err"; then
        ok "${how/$H/hakmem} python3 -c pass: stderr is one JSON object"
    else
        bad "${how/$H/hakmem}: stderr does not parse as the JSON report: $err"
    fi
done

# Options become the library's variables, and the library takes them (its JSON report).
err=$("$H" --verbose --purge-delay 7 --option segment_cache=2 --option=HAKMEM_LARGE_CACHE_MB=3 \
    --stats=json "$tmp/probe" 2>&1 >/dev/null)
if "$py" -c 'import json, sys; o = json.loads(sys.argv[1])["options"]
assert (o["HAKMEM_VERBOSE"], o["HAKMEM_PURGE_DELAY_MS"], o["HAKMEM_SEGMENT_CACHE"],
        o["HAKMEM_LARGE_CACHE_MB"]) == (1, 7, 2, 3), o' "$err"; then
    ok "--verbose --purge-delay 7 --option segment_cache=2 --option=HAKMEM_LARGE_CACHE_MB=3: the library has them"
else
    bad "options not seen by the library: $err"
fi
"$H" --stats=json --option "STATS_FILE=$tmp/report.%p.json" "$tmp/probe" >/dev/null 2>&1
f=$(ls "$tmp"/report.*.json 2>/dev/null)
[ -n "$f" ] && "$py" -c 'import json, sys; json.load(open(sys.argv[1]))' "$f" &&
    ok "--option STATS_FILE=.../report.%p.json: $(basename "$f") parses" || bad "no JSON report file"

# Arguments, exit status and signals pass through; the program is the launcher's process.
out=$("$H" -- printf '%s|' a 'b c' --stats '')
[ "$out" = "a|b c|--stats||" ] && ok "arguments after -- pass unchanged" || bad "arguments: '$out'"
"$H" sh -c 'exit 7'; rc=$?
[ $rc = 7 ] && ok "exit status 7 passes through" || bad "exit status $rc, not 7"
"$H" sh -c 'kill -TERM $$'; rc=$?
[ $rc = 143 ] && ok "death by SIGTERM passes through (status 143)" || bad "SIGTERM gave status $rc"
"$H" sh -c 'echo $$ >"$0"' "$tmp/pid" & launched=$!
wait $launched
[ "$(cat "$tmp/pid")" = "$launched" ] && ok "the program runs in the launcher's process (exec)" ||
    bad "program pid $(cat "$tmp/pid") is not the launcher's $launched"

# A moved tree and a symlink to the launcher still find the library.
cp -a "$tmp/stage/usr/local" "$tmp/moved"
expect "moved install: probe runs on hakmem" 0 "is hakmem's" "$tmp/moved/bin/hakmem" "$tmp/probe"
out=$("$tmp/moved/bin/hakmem" sh -c 'echo "$LD_PRELOAD"')
case $out in "$(cd "$tmp/moved" && pwd -P)"/lib/*) ok "moved install preloads its own library" ;;
*) bad "moved install preloads '$out'" ;; esac
mkdir "$tmp/bin" && ln -s "$H" "$tmp/bin/hakmem"
expect "through a symlink: probe runs on hakmem" 0 "is hakmem's" "$tmp/bin/hakmem" "$tmp/probe"

# --help lists every option with its default, --version the version.
names=$(build/tools/options_list names)
help=$("$H" --help); rc=$?
missing=
for n in $names; do grep -qE "^  $n +[^ ]" <<<"$help" || missing="$missing $n"; done
[ $rc = 0 ] && [ -z "$missing" ] && ok "--help lists all $(wc -w <<<"$names") options with defaults" ||
    bad "--help (exit $rc) lacks:$missing"
expect "--help shows HAKMEM_PURGE_DELAY_MS's default" 0 "HAKMEM_PURGE_DELAY_MS +100 " "$H" --help
expect "--version" 0 "^hakmem [0-9]+\.[0-9]+\.[0-9]+$" "$H" --version

# --hardened: runs where the hardened build is installed, a clear error where it is not.
if [ -f "$tmp/stage/usr/local/lib/hakmem/hardened/libhakmem.so" ]; then
    expect "--hardened probe runs on hakmem" 0 "is hakmem's" "$H" --hardened "$tmp/probe"
    out=$("$H" --hardened sh -c 'echo "$LD_PRELOAD"')
    case $out in */lib/hakmem/hardened/libhakmem.so) ok "--hardened preloads $out" ;;
    *) bad "--hardened preloads '$out'" ;; esac
else
    expect "--hardened without the hardened build: error" 2 "hardened library is not installed" \
        "$H" --hardened "$tmp/probe"
fi

# Errors: a bad command line exits 2; a program not found 127, not executable 126.
expect "unknown option" 2 "unknown option '--bogus'" "$H" --bogus "$tmp/probe"
expect "unknown library option" 2 "unknown library option 'NO_SUCH'" "$H" --option NO_SUCH=1 true
expect "--option without =VALUE" 2 "NAME=VALUE" "$H" --option STATS true
expect "--purge-delay without a value" 2 "needs a value" "$H" --purge-delay
expect "--purge-delay not a number" 2 "number of milliseconds" "$H" --purge-delay soon true
expect "--stats=yaml" 2 "json or text" "$H" --stats=yaml true
expect "no program" 2 "no program given" "$H"
expect "no program after options" 2 "no program given" "$H" --stats --
expect "program not found in PATH" 127 "no-such-program-hk: command not found" \
    "$H" no-such-program-hk
expect "program path that does not exist" 127 "no such file" "$H" "$tmp/nothing-here"
touch "$tmp/plain"
expect "program not executable" 126 "not executable" "$H" "$tmp/plain"
expect "program is a directory" 126 "is a directory" "$H" "$tmp"
exit $fail

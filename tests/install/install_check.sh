#!/usr/bin/env bash
# make install into a temporary DESTDIR, then use the staged tree as a project would: the
# files and links installed, one version everywhere, a C program built with pkg-config (shared
# and --static) and a CMake project with find_package(hakmem CONFIG) through
# CMAKE_PREFIX_PATH, each run and checked to be on hakmem (hk_owns on a malloc pointer); the
# man pages render without warnings; make uninstall leaves no file behind.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage prefix=/usr/local
root=$stage$prefix
fail=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; fail=1; }
check() { # DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

version() { awk -v p="HAKMEM_VERSION_$1" '$1 ~ /^.define$/ && $2 == p {print $3}' "$2"; }
major=$(version MAJOR include/hakmem.h)
ver=$major.$(version MINOR include/hakmem.h).$(version PATCH include/hakmem.h)

make -s install DESTDIR="$stage" PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { bad "make install"; cat "$tmp/install.log"; exit 1; }
ok "make install DESTDIR=$stage PREFIX=$prefix"

# 1. Exactly these files and links.
want="bin/hakmem
include/hakmem.h
include/hakmem_spsc.h
lib/cmake/hakmem/hakmemConfig.cmake
lib/cmake/hakmem/hakmemConfigVersion.cmake
lib/libhakmem.a
lib/libhakmem.so
lib/libhakmem.so.$major
lib/libhakmem.so.$ver
lib/pkgconfig/hakmem.pc
share/man/man1/hakmem.1
share/man/man3/hakmem.3"
[ -f build/hardened/libhakmem.so ] && want="$want
lib/hakmem/hardened/libhakmem.so"
got=$(cd "$stage" && find . \( -type f -o -type l \) | sed "s|^\./${prefix#/}/||" | sort)
if [ "$got" = "$(sort <<<"$want")" ]; then
    ok "installed files: $(wc -l <<<"$got") ($(tr '\n' ' ' <<<"$got"))"
else
    bad "installed files differ from the expected list:"; diff <(sort <<<"$want") <(echo "$got")
fi
check "libhakmem.so.$ver has soname libhakmem.so.$major" \
    grep -q "SONAME.*\[libhakmem.so.$major\]" <(readelf -d "$root/lib/libhakmem.so.$ver")
check "links: libhakmem.so -> libhakmem.so.$major -> libhakmem.so.$ver" \
    test "$(readlink "$root/lib/libhakmem.so")" = "libhakmem.so.$major" -a \
    "$(readlink "$root/lib/libhakmem.so.$major")" = "libhakmem.so.$ver"
check "headers installed as in the tree" cmp -s include/hakmem.h "$root/include/hakmem.h"

# 2. One version: the header, pkg-config, the launcher, the man pages, the CMake package.
export PKG_CONFIG_PATH=$root/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage
h=$root/include/hakmem.h
check "version $ver: installed header" \
    test "$(version MAJOR "$h").$(version MINOR "$h").$(version PATCH "$h")" = "$ver"
check "version $ver: pkg-config --modversion hakmem" test "$(pkg-config --modversion hakmem)" = "$ver"
check "version $ver: hakmem --version" test "$("$root/bin/hakmem" --version)" = "hakmem $ver"
for page in man1/hakmem.1 man3/hakmem.3; do
    check "version $ver: $page" grep -q "^\.TH .*\"hakmem $ver\"" "$root/share/man/$page"
done

# 3. pkg-config: shared (run through the staged lib directory) and --static (-static).
cflags=$(pkg-config --cflags hakmem) libs=$(pkg-config --libs hakmem)
slibs=$(pkg-config --static --libs hakmem)
echo "      pkg-config: $cflags | $libs | --static: $slibs"
if cc tests/install/app.c $cflags $libs -Wl,-rpath,"$root/lib" -o "$tmp/pc_shared" 2>"$tmp/cc.log"; then
    check "pkg-config shared build needs libhakmem.so.$major" \
        grep -q "NEEDED.*\[libhakmem.so.$major\]" <(readelf -d "$tmp/pc_shared")
    out=$("$tmp/pc_shared") && ok "pkg-config shared build runs on hakmem: $out" ||
        bad "pkg-config shared build: $out"
else
    bad "cc app.c \$(pkg-config --cflags --libs hakmem)"; cat "$tmp/cc.log"
fi
if cc -static tests/install/app.c $cflags $slibs -o "$tmp/pc_static" 2>"$tmp/cc.log"; then
    check "pkg-config --static build is a static executable" \
        bash -c "! readelf -d '$tmp/pc_static' | grep -q NEEDED"
    out=$("$tmp/pc_static") && ok "pkg-config --static build runs on hakmem: $out" ||
        bad "pkg-config --static build: $out"
else
    bad "cc -static app.c \$(pkg-config --static --cflags --libs hakmem)"; cat "$tmp/cc.log"
fi

# 4. CMake: find_package(hakmem 0.1 CONFIG) from the staged tree; its three targets.
if cmake -S tests/install -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$root" >"$tmp/cmake.log" 2>&1 &&
    cmake --build "$tmp/cmake" -j2 >>"$tmp/cmake.log" 2>&1; then
    check "find_package(hakmem): version $ver, found in the staged tree" \
        grep -q -- "-- hakmem $ver from $root/lib/cmake/hakmem" "$tmp/cmake.log"
    for app in app_shared app_static spsc_app; do
        out=$("$tmp/cmake/$app") && ok "CMake $app runs: $out" || bad "CMake $app: $out"
    done
    check "CMake app_shared needs libhakmem.so.$major" \
        grep -q "NEEDED.*\[libhakmem.so.$major\]" <(readelf -d "$tmp/cmake/app_shared")
    check "CMake app_static does not" bash -c "! readelf -d '$tmp/cmake/app_static' | grep -q libhakmem"
else
    bad "cmake configure and build of tests/install"; tail -n 30 "$tmp/cmake.log"
fi
# The version file: same major and not newer than installed is compatible.
vcheck() { # REQUESTED -> prints COMPATIBLE/EXACT
    local maj=${1%%.*} rest=${1#*.}
    printf 'include("%s")\nmessage("${PACKAGE_VERSION_COMPATIBLE} ${PACKAGE_VERSION_EXACT}")\n' \
        "$root/lib/cmake/hakmem/hakmemConfigVersion.cmake" >"$tmp/v.cmake"
    cmake -DPACKAGE_FIND_VERSION="$1" -DPACKAGE_FIND_VERSION_MAJOR="$maj" \
        -DPACKAGE_FIND_VERSION_MINOR="${rest%%.*}" -DCMAKE_SIZEOF_VOID_P=8 -P "$tmp/v.cmake" 2>&1
}
next_major=$((major + 1))
check "hakmemConfigVersion: $ver exact, $major.0 compatible, $next_major.0 and $major.99 not" \
    test "$(vcheck "$ver")|$(vcheck "$major.0")|$(vcheck "$next_major.0")|$(vcheck "$major.99")" = \
    "TRUE TRUE|TRUE FALSE|FALSE FALSE|FALSE FALSE"

# 5. Man pages: groff reports no warnings (CI installs groff-base).
if command -v groff >/dev/null; then
    for page in man1/hakmem.1 man3/hakmem.3; do
        warn=$(groff -man -ww -z "$root/share/man/$page" 2>&1)
        check "$page renders without warnings${warn:+: $warn}" test -z "$warn"
    done
else
    bad "groff missing: cannot check the man pages (apt-get install groff-base)"
fi

# 6. make uninstall removes every file install wrote, and hakmem's own directories.
make -s uninstall DESTDIR="$stage" PREFIX="$prefix" >"$tmp/uninstall.log" 2>&1 || bad "make uninstall"
left=$(cd "$stage" && find . \( -type f -o -type l \))
check "make uninstall leaves no file behind${left:+ (left: $left)}" test -z "$left"
check "make uninstall removes lib/cmake/hakmem" test ! -e "$root/lib/cmake/hakmem"
exit $fail

#!/bin/sh
# cmake --install puts libdirty where a VMM's build finds it: the header,
# libdirty.so.0 (exporting dirty_* only) and libdirty.a, libdirty.pc, the
# man pages and the tools; the example of libdirty(3) builds against that
# install alone, through pkg-config, and runs.
#   test_client_install.sh CMAKE BUILD_DIR CC SOURCE_DIR [EXTRA_CFLAGS]
set -eu
CMAKE=$1
BUILD=$2
CC=$3
SRC=$4
CFLAGS_EXTRA=${5:-}

DIR=$(mktemp -d /tmp/dirtyd-install-XXXXXX)
trap 'rm -rf "$DIR"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# DESTDIR: nothing leaves the temporary directory, absolute paths included
DESTDIR="$DIR/root" "$CMAKE" --install "$BUILD" > "$DIR/install.log" ||
	fail "cmake --install: $(cat "$DIR/install.log")"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
root=$DIR/root$prefix
pc=$(find "$root" -name libdirty.pc | head -n 1)
[ -n "$pc" ] || fail "no libdirty.pc installed"
libdir=$(dirname "$(dirname "$pc")")

for f in "$root/include/dirtyd/dirty.h" "$libdir/libdirty.a" \
	 "$libdir/libdirty.so" "$libdir/libdirty.so.0" \
	 "$root/bin/dirtyctl" "$root/bin/dirtyd-migrate" \
	 "$root/share/man/man3/libdirty.3" "$root/share/man/man3/dirty_adopt.3" \
	 "$root/share/man/man1/dirtyctl.1" \
	 "$root/share/man/man1/dirtyd-migrate.1"; do
	[ -e "$f" ] || fail "not installed: $f"
done
[ -L "$libdir/libdirty.so.0" ] || fail "libdirty.so.0 is not a symlink"
readelf -d "$libdir/libdirty.so.0" | grep -q "SONAME.*\[libdirty.so.0\]" ||
	fail "SONAME is not libdirty.so.0"
# nothing but dirty_* is exported (the codec inside stays private)
extra=$(nm -D --defined-only "$libdir/libdirty.so.0" |
	awk '$3 !~ /^dirty_/ && $3 != "LIBDIRTY_0" { print $3 }')
[ -z "$extra" ] || fail "exported beyond dirty_*: $extra"
grep -q "^prefix=$prefix\$" "$pc" || fail "libdirty.pc: prefix is not $prefix"

# a VMM's build: pkg-config over the installed tree only (not the source)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$root" --cflags --libs libdirty)
case $flags in
*"$root"*) ;;
*) fail "pkg-config flags do not point into the install: $flags" ;;
esac
cp "$SRC/clients/libdirty/example.c" "$DIR/example.c"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic $CFLAGS_EXTRA \
	"$DIR/example.c" -o "$DIR/example" $flags ||
	fail "the example does not build against the install"
# it runs against the installed libdirty.so.0 (no dirtyd: it says so)
rc=0
DIRTYD_SOCKET="$DIR/none.sock" LD_LIBRARY_PATH="$libdir" \
	"$DIR/example" > "$DIR/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "example exited $rc: $(cat "$DIR/out")"
grep -q "connecting to dirtyd: No such file or directory" "$DIR/out" ||
	fail "example: $(cat "$DIR/out")"
# statically, too
# shellcheck disable=SC2086
"$CC" -std=c11 $CFLAGS_EXTRA "$DIR/example.c" -o "$DIR/example-static" \
	-I"$root/include" "$libdir/libdirty.a" ||
	fail "the example does not link with libdirty.a"
# and the header is C++-clean (c++ and man come with scripts/deps.sh)
command -v c++ > /dev/null 2>&1 || fail "c++ is missing (scripts/deps.sh)"
echo '#include <dirtyd/dirty.h>
int main() { struct dirty *d = nullptr; dirty_close(d); return 0; }' |
	c++ -x c++ -std=c++17 -Wall -Werror -fsyntax-only \
		-I"$root/include" - || fail "dirty.h is not C++-clean"
# every installed man page is well formed
command -v man > /dev/null 2>&1 || fail "man is missing (scripts/deps.sh)"
n=0
for m in "$root"/share/man/man*/*; do
	w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null) || true
	[ -z "$w" ] || fail "$m: $w"
	n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n man pages installed"
echo "install: all checks passed"

#!/bin/sh
# cmake --install puts libdirty where a VMM's build finds it: the header,
# libdirty.so.1 and libdirty.a (each exporting exactly libdirty.sym's
# functions), libdirty.pc (the header's version), libdirty(3) and a man
# page per function (and none for anything else), and the tools; the
# header is clean in C99 and C++11 (-pedantic -Wall -Wextra); the example
# of libdirty(3) builds against that install alone, through pkg-config,
# and runs.
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
	 "$libdir/libdirty.so" "$libdir/libdirty.so.1" \
	 "$root/bin/dirtyctl" "$root/bin/dirtyd-migrate" \
	 "$root/share/man/man3/libdirty.3" "$root/share/man/man3/dirty_adopt.3" \
	 "$root/share/man/man1/dirtyctl.1" \
	 "$root/share/man/man1/dirtyd-migrate.1"; do
	[ -e "$f" ] || fail "not installed: $f"
done
[ -L "$libdir/libdirty.so.1" ] || fail "libdirty.so.1 is not a symlink"
readelf -d "$libdir/libdirty.so.1" | grep -q "SONAME.*\[libdirty.so.1\]" ||
	fail "SONAME is not libdirty.so.1"
grep -q "^prefix=$prefix\$" "$pc" || fail "libdirty.pc: prefix is not $prefix"

# The ABI: libdirty.sym's functions, the functions dirty.h declares, what
# each library exports (the codec inside stays private, in libdirty.a
# too) and the man pages are one and the same list.
sed -n 's/^[[:space:]]*\(dirty_[a-z0-9_]*\);$/\1/p' \
	"$SRC/clients/libdirty/libdirty.sym" | sort > "$DIR/sym"
[ "$(wc -l < "$DIR/sym")" -ge 30 ] || fail "libdirty.sym: $(cat "$DIR/sym")"
grep -q '^LIBDIRTY_1\.0 {' "$SRC/clients/libdirty/libdirty.sym" ||
	fail "libdirty.sym: no LIBDIRTY_1.0 node"
# a declaration: a line of dirty.h opening with a type, naming dirty_*(
sed -n 's/^[a-z].*[ *]\(dirty_[a-z0-9_]*\)(.*/\1/p' \
	"$root/include/dirtyd/dirty.h" | sort > "$DIR/decl"
same() { # same WHAT FILE: FILE lists what libdirty.sym lists
	d=$(diff "$DIR/sym" "$2" | sed -n 's/^[<>] //p' | tr '\n' ' ')
	[ -z "$d" ] || fail "$1 and libdirty.sym differ in: $d"
}
same "dirty.h's declarations" "$DIR/decl"
nm -D --defined-only "$libdir/libdirty.so.1" |
	awk '$3 != "LIBDIRTY_1.0" { sub(/@.*/, "", $3); print $3 }' |
	sort > "$DIR/so"
same "libdirty.so.1's exports" "$DIR/so"
nm -D --defined-only "$libdir/libdirty.so.1" |
	grep -q ' dirty_connect@@LIBDIRTY_1\.0$' ||
	fail "dirty_connect is not versioned LIBDIRTY_1.0"
nm -g --defined-only "$libdir/libdirty.a" | awk 'NF == 3 { print $3 }' |
	sort > "$DIR/a"
same "libdirty.a's globals" "$DIR/a"
# a page per function, installed where man finds it, and no page without
# a function (the overview, libdirty.3, apart)
ls "$SRC/clients/libdirty/man" | sed -n 's/\.3$//p' | sort > "$DIR/pages"
same "clients/libdirty/man/" "$DIR/pages"
while read -r f; do
	[ -f "$root/share/man/man3/$f.3" ] || fail "$f.3 is not installed"
done < "$DIR/sym"
command -v man > /dev/null 2>&1 || fail "man is missing (scripts/deps.sh)"
MANPATH="$root/share/man" man -w dirty_connect > /dev/null 2>&1 ||
	fail "man dirty_connect finds no page"

# The version: dirty.h's, the soname's, the file's and libdirty.pc's.
v=$(printf '#include <dirtyd/dirty.h>\nDIRTY_VERSION_MAJOR.DIRTY_VERSION_MINOR.DIRTY_VERSION_PATCH\n' |
	"$CC" -E -P -I"$root/include" - | tail -n 1 | tr -d ' ')
case $v in
1.*.*) ;;
*) fail "dirty.h: version $v" ;;
esac
[ -e "$libdir/libdirty.so.$v" ] || fail "no libdirty.so.$v"
grep -q "^Version: $v\$" "$pc" || fail "libdirty.pc: Version is not $v"

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
# it runs against the installed libdirty.so.1 (no dirtyd: it says so)
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
# the header is clean in C99 and C++11, every struct and function used
# (c++ and man come with scripts/deps.sh), and so is the example, in C99
command -v c++ > /dev/null 2>&1 || fail "c++ is missing (scripts/deps.sh)"
cat > "$DIR/use.c" <<'EOF'
#include <dirtyd/dirty.h>
#include <stdlib.h>

int main(void)
{
	struct dirty_session s;
	struct dirty_subscription_info info;
	struct dirty_event ev;
	struct dirty_device **devs = NULL;
	struct dirty_domain **doms = NULL;
	struct dirty_stats **st = NULL;
	struct dirty_fds *fds = NULL;
	unsigned long map[4] = { 0, 0, 0, 0 };
	struct dirty *d = NULL;
	size_t n = 0;

	s.size = sizeof(s);
	info.size = sizeof(info);
	ev.size = sizeof(ev);
	if (dirty_version() < DIRTY_VERSION_NUMBER ||
	    dirty_version() < DIRTY_VERSION(1, 0, 0))
		return 1;
	if (dirty_connect(NULL, DIRTY_CONNECT_NO_RESUME, &d) < 0)
		return 0;
	dirty_session(d, &s);
	dirty_subscribe(d, 1, 0, DIRTY_SUBSCRIBE_CLEAN, &info);
	dirty_next_event(d, &ev);
	dirty_list_devices(d, &devs, &n);
	dirty_list_domains(d, &doms, &n);
	dirty_stats(d, 0, &st, &n);
	dirty_ranges_lebitmap(d, 1, 0, 0, 4096 * 64, 4096, map, NULL);
	if (dirty_get_fds(d, 1, &fds) == 0 && fds->n_devices &&
	    fds->devices[0]->size)
		dirty_fds_free(fds);
	free(devs);
	free(doms);
	free(st);
	dirty_close(d);
	return !dirty_version_string();
}
EOF
"$CC" -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only \
	-I"$root/include" "$DIR/use.c" || fail "dirty.h is not C99-clean"
cp "$DIR/use.c" "$DIR/use.cc"
c++ -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only \
	-I"$root/include" "$DIR/use.cc" || fail "dirty.h is not C++11-clean"
"$CC" -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only \
	-I"$root/include" "$DIR/example.c" || fail "the example is not C99"
# every installed man page is well formed: the function pages in one
# groff run (one man each would cost seconds), the others through man
n=0
for m in "$root"/share/man/man*/*; do
	case $m in
	*/man3/dirty_*.3) n=$((n + 1)); continue ;;
	esac
	w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null) || true
	[ -z "$w" ] || fail "$m: $w"
	n=$((n + 1))
done
w=$(groff -t -ww -z -Tutf8 -man -rLL=80n "$root"/share/man/man3/dirty_*.3 2>&1) ||
	fail "groff failed on the function pages: $w"
[ -z "$w" ] || fail "the function pages: $w"
# the function pages, libdirty(3), dirtyctl(1), dirtyd-migrate(1),
# dirtyd(8), dirtyd.conf(5)
[ "$n" -ge $(($(wc -l < "$DIR/sym") + 5)) ] ||
	fail "only $n man pages installed"
echo "install: all checks passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mkinitramfs.sh MANIFEST OUT - the VM tests' initramfs (cpio newc).
#
# MANIFEST (written by tests/vm/CMakeLists.txt), one entry a line:
#   init PATH                 the static /init (tests/vm/init.c)
#   bin PATH                  copied to /bin/<name> with the shared
#                             libraries ldd lists and the dynamic loader,
#                             at their own paths
#   file PATH GUEST_PATH      copied as is
#   test NAME TIMEOUT_S ARGV...   a test /init runs, in manifest order
#   scenario NAME PATH        a scenario: copied to /scenario/NAME.scn and
#                             run by /bin/scenario_runner on the kernel as
#                             the test "scenario:NAME" (run.sh compares its
#                             transcript with the sim's)
# Static binaries need nothing more; dynamic ones (the daemon needs
# libsystemd, which Debian ships only as a shared library) bring their
# libraries along.
set -euo pipefail

die() {
	echo "mkinitramfs.sh: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: mkinitramfs.sh MANIFEST OUT"
manifest=$1
out=$2
[ -r "$manifest" ] || die "$manifest is missing"
command -v cpio >/dev/null || die "cpio is missing (apt-get install cpio)"

root=$(mktemp -d "${TMPDIR:-/tmp}/dirtyd-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc/dirtyd-vm,scenario}
tests=$root/etc/dirtyd-vm/tests
: >"$tests"

# Copy a file to the same absolute path under the root, symlinks resolved.
copy_abs() {
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}

# The shared libraries and loader of $1, from ldd; nothing for a static
# binary.
copy_libs() {
	local out line path
	out=$(LC_ALL=C ldd "$1" 2>&1) || {
		case $out in
		*"not a dynamic executable"*|*"statically linked"*) return 0 ;;
		esac
		die "ldd $1: $out"
	}
	while IFS= read -r line; do
		case $line in
		*"not found"*) die "$1: $line" ;;
		*"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
		[[:space:]]/*) path=${line#"${line%%[![:space:]]*}"}
			       path=${path%% (*} ;;
		*) continue ;;
		esac
		[ -e "$root$path" ] || copy_abs "$path"
	done <<<"$out"
}

have_init=
have_runner=
while read -r kind a b rest; do
	case $kind in
	''|'#'*) ;;
	init)
		[ -x "$a" ] || die "init $a is missing"
		cp "$a" "$root/init"
		copy_libs "$a"
		have_init=1 ;;
	bin)
		[ -x "$a" ] || die "bin $a is missing"
		cp "$a" "$root/bin/"
		copy_libs "$a"
		[ "$(basename "$a")" = scenario_runner ] && have_runner=1 ;;
	file)
		[ -r "$a" ] && [ -n "$b" ] || die "file $a $b: bad entry"
		mkdir -p "$root$(dirname "$b")"
		cp "$a" "$root$b" ;;
	test)
		[ -n "$a" ] && [ -n "$b" ] && [ -n "$rest" ] ||
			die "test $a: bad entry"
		echo "$a $b $rest" >>"$tests" ;;
	scenario)
		[ -r "$b" ] || die "scenario $a: $b is missing"
		cp "$b" "$root/scenario/$a.scn"
		echo "scenario:$a 120 /bin/scenario_runner --backend iommufd" \
		     "/scenario/$a.scn" >>"$tests" ;;
	*) die "unknown manifest entry: $kind" ;;
	esac
done <"$manifest"
[ -n "$have_init" ] || die "the manifest has no init"
if grep -q '^scenario:' "$tests" && [ -z "$have_runner" ]; then
	die "scenarios need bin .../scenario_runner in the manifest"
fi

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --quiet) >"$out.tmp"
mv "$out.tmp" "$out"

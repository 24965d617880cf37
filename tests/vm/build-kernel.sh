#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build-kernel.sh - a guest kernel of the VM tests, built once and cached.
#
#   tests/vm/build-kernel.sh [VERSION] [stock|uring]
#
# VERSION is a linux-source-6.12 package version of the pinned matrix,
# kernel/vm/kernels (default: its newest); scripts/linux-source.sh fetches
# that exact source into the cache (apt-get download, never installed).
# Builds arch/x86/boot/bzImage: `make tinyconfig`,
# kernel/vm/iommufd-test.config merged in, `make olddefconfig`.  The
# variant (default stock) says which source:
#
#   stock   the pristine source, no patches
#   uring   with kernel/patches/*.patch applied first (patch -p1 -F0, name
#           order: no fuzz, a patch that does not apply exactly fails with
#           the patch, the hunk and the version): iommufd's io_uring
#           commands.  Also builds the series' kselftest
#           (tools/testing/selftests/iommu/iommufd_uring.c), static,
#           against the patched tree's uAPI headers, and keeps it beside
#           the bzImage as iommufd_uring_selftest.
#
# The result is cached outside the work tree:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kernel/<key>/bzImage
#
# where <key> hashes the package version, the fragment, the compiler and
# this recipe, and for uring the variant, the kselftest recipe and the
# diff of every patch (not its commit message).  A run that finds the key
# does nothing else.  Every stock build keeps its object tree (<stock
# key>/tree, ~1.6 GB, one per version: the newest replaces the others):
# the uring kernel is then a copy of it with the patches applied and only
# what they touch rebuilt (about a minute instead of four), and a stock
# kernel whose fragment changed is a copy of the version's tree configured
# anew, where make rebuilds only the objects whose options changed (fixdep
# records the CONFIG_ symbols each object uses) and the new ones.  An
# empty cache builds everything from the tarball.  Concurrent runs
# serialise on a lock; every tree is built at one path,
# ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kernel/.work, removed afterwards.
#
# Prints the bzImage path on stdout; progress and the reason of a failure
# go to stderr.  Environment: JOBS (nproc).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
fragment=$top/kernel/vm/iommufd-test.config
jobs=${JOBS:-$(nproc)}
# Bump when the recipe below changes in a way that changes the image.
recipe=2
# Bump when the kselftest's build below changes (uring only).
selftest_recipe=1
selftest_src=tools/testing/selftests/iommu/iommufd_uring.c

# What of a patch the image depends on: its diff, from the first "diff
# --git" line, without format-patch's trailing "-- " signature.  Editing a
# commit message (the "Measured:" line, say) does not rebuild the kernel.
patch_body() {
	awk '/^diff --git /{p = 1} p {buf[n++] = $0}
	     END {
		e = n
		while (e > 0 && buf[e - 1] == "") e--
		if (e >= 2 && buf[e - 2] == "-- ") e -= 2
		for (i = 0; i < e; i++) print buf[i]
	     }' "$1"
}

version=
variant=stock
for arg in "$@"; do
	case $arg in
	stock|uring) variant=$arg ;;
	-h|--help) sed -n '3,40p' "$0"; exit 0 ;;
	-*) echo "build-kernel.sh: unknown option $arg" >&2; exit 1 ;;
	*) version=$arg ;;
	esac
done
[ $# -le 2 ] || { echo "usage: build-kernel.sh [VERSION] [stock|uring]" >&2; exit 1; }

# shellcheck disable=SC2034 # read by linux-source.sh
me=build-kernel.sh
# shellcheck disable=SC2034
need="the VM tests boot a kernel built from it"
# shellcheck source=scripts/linux-source.sh
. "$top/scripts/linux-source.sh"
matrix_versions | grep -qxF "$version" ||
	die "$version is not in the kernel matrix $matrix"

patches=()
if [ "$variant" = uring ]; then
	matrix_versions uring | grep -qxF "$version" ||
		die "the matrix ($matrix) does not test the uring variant" \
		    "on $version"
	shopt -s nullglob
	patches=("$top"/kernel/patches/*.patch)
	shopt -u nullglob
	[ ${#patches[@]} -gt 0 ] ||
		die "variant uring: no kernel/patches/*.patch"
fi

for tool in make gcc flex bison bc xz tar flock sha256sum patch; do
	command -v "$tool" >/dev/null ||
		die "$tool is missing (scripts/deps.sh installs the VM test packages)"
done
[ -r "$fragment" ] || die "$fragment is missing"

# key VARIANT: the cache key of this version's kernel of that variant
key_of() {
	{
		echo "recipe $recipe"
		echo "package $pkg $version"
		echo "compiler $(gcc -dumpfullversion) $(gcc -dumpmachine)"
		echo "fragment"
		cat "$fragment"
		if [ "$1" != stock ]; then
			echo "variant $1"
			echo "selftest $selftest_recipe $selftest_src"
			for p in "${patches[@]}"; do
				echo "patch $(basename "$p")"
				patch_body "$p"
			done
		fi
	} | sha256sum | cut -c1-16
}
key=$(key_of "$variant")
stock_key=$(key_of stock)

cache=$cache/vm-kernel
dest=$cache/$key
if [ -s "$dest/bzImage" ]; then
	echo "$dest/bzImage"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -s "$dest/bzImage" ]; then		# built while we waited
	echo "$dest/bzImage"
	exit 0
fi

tmp=$(mktemp -d "$cache/.build-$key.XXXXXX")
# Every kernel is built at this one path (we hold the lock): objtool and
# other host tools record absolute paths, so a tree built elsewhere and
# copied here would rebuild them, and with them every object.
work=$cache/.work
trap 'rm -rf "$tmp" "$work"' EXIT
rm -rf "$work"
mkdir -p "$work"
log=$tmp/build.log
start=$(date +%s)
src=$work/$pkg
keep_tree=
[ "$variant" = stock ] && keep_tree=1
from_tree=
reconfig=
if [ "$variant" = uring ] &&
   [ -f "$cache/$stock_key/tree/.dirtyd-complete" ]; then
	from_tree=$cache/$stock_key/tree
elif [ "$variant" = stock ]; then
	# The same version built with another fragment: configure that tree
	# anew; make rebuilds only the objects whose options changed (fixdep
	# records which CONFIG_ symbols each object uses) and the new ones.
	for old in "$cache"/*/tree; do
		if [ -f "$old/.dirtyd-complete" ] &&
		   [ "$(cat "$old/.dirtyd-version" 2>/dev/null)" = "$version" ]; then
			from_tree=$old
			reconfig=1
		fi
	done
fi
echo "build-kernel.sh: building the $variant guest kernel $key ($pkg" \
     "$version, -j$jobs${from_tree:+, from the tree of $(dirname "$from_tree")});" \
     "log in $log" >&2

if [ -n "$from_tree" ]; then
	cp -a "$from_tree" "$src" || die "cannot copy $from_tree"
	rm -f "$src/.dirtyd-complete" "$src/.dirtyd-version"
else
	tar -xJf "$tarball" -C "$work" || die "cannot extract $tarball"
	[ -d "$src" ] || die "$tarball has no $pkg/ directory"
fi
for p in ${patches[@]+"${patches[@]}"}; do
	if ! patch -d "$src" -p1 -F0 --forward --batch <"$p" >"$tmp/patch.out" 2>&1; then
		sed 's/^/  /' "$tmp/patch.out" >&2
		die "kernel/patches/$(basename "$p") does not apply to" \
		    "$pkg $version without fuzz (the hunks above); rebase it" \
		    "(kernel/patches/README)"
	fi
	if grep -q 'offset\|fuzz' "$tmp/patch.out"; then
		sed 's/^/  /' "$tmp/patch.out" >&2
		echo "build-kernel.sh: note: $(basename "$p") applies to" \
		     "$version at an offset" >&2
	fi
done

# No ccache here: measured, 6.12.118 after 6.12.107 hit 9 of 98 objects
# (the stable updates change headers most objects include), and a miss
# costs an extra preprocessor run.
kmake() {
	make -C "$src" ARCH=x86_64 "$@" >>"$log" 2>&1 || {
		tail -40 "$log" >&2
		die "make $* failed"
	}
}
if [ -z "$from_tree" ] || [ -n "$reconfig" ]; then
	kmake tinyconfig
	# Later assignments win: the fragment overrides tinyconfig's choices.
	cat "$fragment" >>"$src/.config"
	kmake olddefconfig
fi

# Every option the fragment sets must have survived olddefconfig (an
# unmet dependency drops it silently), and every option it turns off must
# be off (a select turns it back on just as silently).
missing=
while IFS= read -r line; do
	case $line in
	CONFIG_*=*) grep -qxF "$line" "$src/.config" ||
			missing="$missing $line" ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		! grep -q "^$opt=" "$src/.config" ||
			missing="$missing $(grep "^$opt=" "$src/.config")" ;;
	esac
done <"$fragment"
[ -z "$missing" ] || die "olddefconfig did not keep:$missing"

kmake -j"$jobs" bzImage

mkdir "$tmp/out"
if [ "$variant" = uring ]; then
	# The series' kselftest, static so that the initramfs needs nothing
	# else, against the patched tree's own uAPI headers (the flags of
	# tools/testing/selftests/iommu/Makefile, whose other programs do not
	# build against 6.12.y's headers).
	[ -r "$src/$selftest_src" ] ||
		die "the patches did not add $selftest_src"
	kmake headers
	gcc -static -Wall -O2 -Wno-unused-function -isystem "$src/usr/include" \
	    -o "$tmp/out/iommufd_uring_selftest" "$src/$selftest_src" \
	    >>"$log" 2>&1 || {
		tail -40 "$log" >&2
		die "the kselftest $selftest_src did not build"
	}
fi
cp "$src/arch/x86/boot/bzImage" "$tmp/out/bzImage"
cp "$src/.config" "$tmp/out/config"
elapsed=$(($(date +%s) - start))
{
	printf '%s %s, variant %s\nbuilt in %ss with -j%s%s\n' "$pkg" \
	       "$version" "$variant" "$elapsed" "$jobs" \
	       "${from_tree:+ from the tree of $(dirname "$from_tree")}"
	for p in ${patches[@]+"${patches[@]}"}; do
		echo "patch $(basename "$p")"
	done
} >"$tmp/out/info"
rm -rf "$dest"
mv -T "$tmp/out" "$dest"
if [ -n "$keep_tree" ]; then
	# The object tree the uring variant starts from; one per version.
	for old in "$cache"/*/tree; do
		[ -f "$old/.dirtyd-version" ] &&
			[ "$(cat "$old/.dirtyd-version")" = "$version" ] &&
			rm -rf "$old"
	done
	echo "$version" >"$src/.dirtyd-version"
	: >"$src/.dirtyd-complete"
	mv -T "$src" "$dest/tree"
fi
echo "build-kernel.sh: built $dest/bzImage in ${elapsed}s" >&2
echo "$dest/bzImage"

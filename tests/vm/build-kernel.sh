#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build-kernel.sh - the guest kernel of the VM tests, built once and cached.
#
#   tests/vm/build-kernel.sh [stock|uring]
#
# Builds arch/x86/boot/bzImage from Debian's linux-source-6.12 tarball:
# `make tinyconfig`, kernel/vm/iommufd-test.config merged in, `make
# olddefconfig`.  The variant (default stock) says which source:
#
#   stock   the pristine linux-source-6.12, no patches
#   uring   with kernel/patches/*.patch applied first (patch -p1, name
#           order): iommufd's io_uring commands.  Also builds the series'
#           kselftest (tools/testing/selftests/iommu/iommufd_uring.c),
#           static, against the patched tree's uAPI headers, and keeps it
#           beside the bzImage as iommufd_uring_selftest.
#
# The result is cached outside the work tree:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kernel/<key>/bzImage
#
# where <key> hashes the package version, the fragment, the compiler and
# this recipe, and for uring the variant, the kselftest recipe and the
# diff of every patch (not its commit message); the stock key has no
# variant line, so it is the key stock had before variants existed.  A run
# that finds the key does nothing else.
# Concurrent runs serialise on a lock; the source tree (~1.5 GB) is built
# in a temporary directory and removed afterwards.
#
# Prints the bzImage path on stdout; progress and the reason of a failure
# go to stderr.  Environment: LINUX_SOURCE_PKG (linux-source-6.12),
# LINUX_SOURCE_TARBALL (/usr/src/$LINUX_SOURCE_PKG.tar.xz), JOBS (nproc).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pkg=${LINUX_SOURCE_PKG:-linux-source-6.12}
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/$pkg.tar.xz}
fragment=$top/kernel/vm/iommufd-test.config
jobs=${JOBS:-$(nproc)}
# Bump when the recipe below changes in a way that changes the image.
recipe=1
# Bump when the kselftest's build below changes (uring only).
selftest_recipe=1
selftest_src=tools/testing/selftests/iommu/iommufd_uring.c

die() {
	echo "build-kernel.sh: $*" >&2
	exit 1
}

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

[ $# -le 1 ] || die "usage: build-kernel.sh [stock|uring]"
variant=${1:-stock}
case $variant in
stock) patches=() ;;
uring)
	shopt -s nullglob
	patches=("$top"/kernel/patches/*.patch)
	shopt -u nullglob
	[ ${#patches[@]} -gt 0 ] ||
		die "variant uring: no kernel/patches/*.patch" ;;
-h|--help) sed -n '3,33p' "$0"; exit 0 ;;
*) die "unknown variant '$variant' (stock or uring)" ;;
esac

for tool in make gcc flex bison bc xz tar flock sha256sum patch; do
	command -v "$tool" >/dev/null ||
		die "$tool is missing (scripts/deps.sh installs the VM test packages)"
done
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || version=
[ -n "$version" ] || die "package $pkg is not installed (apt-get install $pkg)"
[ -r "$tarball" ] || die "$tarball is missing (reinstall $pkg)"
[ -r "$fragment" ] || die "$fragment is missing"

key=$(
	{
		echo "recipe $recipe"
		echo "package $pkg $version"
		echo "compiler $(gcc -dumpfullversion) $(gcc -dumpmachine)"
		echo "fragment"
		cat "$fragment"
		if [ "$variant" != stock ]; then
			echo "variant $variant"
			echo "selftest $selftest_recipe $selftest_src"
		fi
		for p in ${patches[@]+"${patches[@]}"}; do
			echo "patch $(basename "$p")"
			patch_body "$p"
		done
	} | sha256sum | cut -c1-16
)

cache=${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kernel
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
trap 'rm -rf "$tmp"' EXIT
log=$tmp/build.log
start=$(date +%s)
echo "build-kernel.sh: building the $variant guest kernel $key ($pkg" \
     "$version, -j$jobs); log in $log" >&2

tar -xJf "$tarball" -C "$tmp" || die "cannot extract $tarball"
src=$tmp/$pkg
[ -d "$src" ] || die "$tarball has no $pkg/ directory"
for p in ${patches[@]+"${patches[@]}"}; do
	patch -d "$src" -p1 --quiet --forward <"$p" ||
		die "patch $p does not apply"
done

kmake() {
	make -C "$src" ARCH=x86_64 "$@" >>"$log" 2>&1 || {
		tail -40 "$log" >&2
		die "make $* failed"
	}
}
kmake tinyconfig
# Later assignments win: the fragment overrides tinyconfig's choices.
cat "$fragment" >>"$src/.config"
kmake olddefconfig

# Every option the fragment sets must have survived olddefconfig (an
# unmet dependency drops it silently).
missing=
while IFS= read -r line; do
	case $line in
	CONFIG_*=*) grep -qxF "$line" "$src/.config" ||
			missing="$missing $line" ;;
	esac
done <"$fragment"
[ -z "$missing" ] || die "olddefconfig dropped:$missing"

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
	printf '%s %s, variant %s\nbuilt in %ss with -j%s\n' "$pkg" \
	       "$version" "$variant" "$elapsed" "$jobs"
	for p in ${patches[@]+"${patches[@]}"}; do
		echo "patch $(basename "$p")"
	done
} >"$tmp/out/info"
rm -rf "$dest"
mv -T "$tmp/out" "$dest"
echo "build-kernel.sh: built $dest/bzImage in ${elapsed}s" >&2
echo "$dest/bzImage"

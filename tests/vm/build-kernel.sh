#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build-kernel.sh - the guest kernel of the VM tests, built once and cached.
#
# Builds arch/x86/boot/bzImage from Debian's linux-source-6.12 tarball:
# `make tinyconfig`, kernel/vm/iommufd-test.config merged in, `make
# olddefconfig`, every kernel/vm/patches/*.patch applied first (patch -p1,
# name order).  The result is cached outside the work tree:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/vm-kernel/<key>/bzImage
#
# where <key> hashes the package version, the fragment, the patches, the
# compiler and this recipe.  A run that finds the key does nothing else.
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
patches=$top/kernel/vm/patches
jobs=${JOBS:-$(nproc)}
# Bump when the recipe below changes in a way that changes the image.
recipe=1

die() {
	echo "build-kernel.sh: $*" >&2
	exit 1
}

for tool in make gcc flex bison bc xz tar flock sha256sum; do
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
		for p in "$patches"/*.patch; do
			[ -e "$p" ] || continue
			echo "patch $(basename "$p")"
			cat "$p"
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
echo "build-kernel.sh: building the guest kernel $key ($pkg $version," \
     "-j$jobs); log in $log" >&2

tar -xJf "$tarball" -C "$tmp" || die "cannot extract $tarball"
src=$tmp/$pkg
[ -d "$src" ] || die "$tarball has no $pkg/ directory"
for p in "$patches"/*.patch; do
	[ -e "$p" ] || continue
	patch -d "$src" -p1 --quiet <"$p" || die "patch $p does not apply"
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
cp "$src/arch/x86/boot/bzImage" "$tmp/out/bzImage"
cp "$src/.config" "$tmp/out/config"
elapsed=$(($(date +%s) - start))
printf '%s %s\nbuilt in %ss with -j%s\n' "$pkg" "$version" "$elapsed" \
	"$jobs" >"$tmp/out/info"
rm -rf "$dest"
mv -T "$tmp/out" "$dest"
echo "build-kernel.sh: built $dest/bzImage in ${elapsed}s" >&2
echo "$dest/bzImage"

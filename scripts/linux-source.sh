# SPDX-License-Identifier: MIT
# shellcheck shell=sh disable=SC2034,SC2154 # shares variables with its caller
#
# linux-source.sh - one pinned linux-source-6.12 tarball, fetched by exact
# version into the cache.  What scripts/linux-uapi.sh,
# kernel/vm/iommufd-test-header.sh and tests/vm/build-kernel.sh share.
# Sourced, not run: the caller sets `me` (its name, for messages), `need`
# (what it needs the source for), `top` (the checkout) and, optionally,
# `version` (a package version of kernel/vm/kernels; empty: the newest
# there) first, under set -eu.
#
# The source is never installed: `apt-get download linux-source-6.12=VERSION`
# into a temporary directory, the tarball taken out of the .deb into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/linux-source/VERSION/linux-source-6.12.tar.xz
# A version the archive no longer serves is said in one line.
#
# Sets pkg, version (the package version), release (the kernel's, 6.12.N),
# tarball, cache (where callers cache what they make from it) and
# matrix (the path of kernel/vm/kernels, or $DIRTYD_KERNEL_MATRIX: what
# scripts/kernel-latest.sh tries); defines die, matrix_versions
# and headers_install_sed.

pkg=linux-source-6.12
matrix=${DIRTYD_KERNEL_MATRIX:-$top/kernel/vm/kernels}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd

die() {
	echo "$me: $*" >&2
	exit 1
}

# The package versions of the matrix, oldest first, one a line; with an
# argument, only those whose variants include it.
matrix_versions() {
	[ -r "$matrix" ] || die "the kernel matrix $matrix is missing"
	awk -v want="${1:-}" '
		/^[[:space:]]*(#|$)/ { next }
		{ ok = (want == "")
		  for (i = 2; i <= NF; i++) if ($i == want) ok = 1
		  if (ok) print $1 }' "$matrix"
}

[ -n "${version:-}" ] || version=$(matrix_versions | tail -n 1)
[ -n "$version" ] || die "$matrix lists no kernel"
release=${version%%-*}
_ls_dir=$cache/linux-source/$version
tarball=$_ls_dir/$pkg.tar.xz

_ls_fetch() {
	_ls_tmp=$(mktemp -d "$cache/linux-source/.fetch.XXXXXX")
	# apt's sandbox user must be able to write the download directory
	chmod 0777 "$_ls_tmp"
	if ! (cd "$_ls_tmp" && apt-get download -q "$pkg=$version") \
		>"$_ls_tmp/apt.log" 2>&1; then
		# An old package list may not know the version yet: once more
		# after an update (as root; else the list is what it is).
		if [ "$(id -u)" -eq 0 ]; then
			apt-get update -qq >/dev/null 2>&1 || true
		fi
		if ! (cd "$_ls_tmp" && apt-get download -q "$pkg=$version") \
			>"$_ls_tmp/apt.log" 2>&1; then
			rm -rf "$_ls_tmp"
			die "$pkg $version (pinned in kernel/vm/kernels) is not" \
			    "served by the archive any more: replace it there" \
			    "with a version 'apt-cache policy $pkg' lists" \
			    "(scripts/kernel-latest.sh tests the newest)"
		fi
	fi
	dpkg-deb --fsys-tarfile "$_ls_tmp"/*.deb |
		tar -xO "./usr/src/$pkg.tar.xz" >"$_ls_tmp/$pkg.tar.xz" ||
		{ rm -rf "$_ls_tmp"; die "the $pkg $version package holds no" \
					 "/usr/src/$pkg.tar.xz"; }
	mkdir -p "$_ls_dir"
	mv -f "$_ls_tmp/$pkg.tar.xz" "$tarball"
	rm -rf "$_ls_tmp"
}

if [ ! -s "$tarball" ]; then
	command -v apt-get >/dev/null || die "apt-get is missing; $need"
	mkdir -p "$cache/linux-source"
	(
		flock 8
		[ -s "$tarball" ] || _ls_fetch
	) 8>"$cache/linux-source/.lock"
	[ -s "$tarball" ] || exit 1
fi

# The sed of the kernel's scripts/headers_install.sh; more sed options
# (-e SCRIPT) and the input file follow as arguments.
headers_install_sed() {
	sed -E -e '
		s/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g
		s/__attribute_const__([[:space:]]|$)/\1/g
		s@^#include <linux/compiler(|_types).h>@@
		s/(^|[^a-zA-Z0-9])__packed([^a-zA-Z0-9_]|$)/\1__attribute__((packed))\2/g
		s/(^|[[:space:](])(inline|asm|volatile)([[:space:](]|$)/\1__\2__\3/g
		s@#(ifndef|define|endif[[:space:]]*/[*])[[:space:]]*_UAPI@#\1 @
	' "$@"
}

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# linux-uapi.sh - the Linux 6.12 iommufd and VFIO uAPI headers, installed.
#
# Extracts include/uapi/linux/{iommufd,vfio}.h from Debian's
# linux-source-6.12 tarball of the newest kernel of kernel/vm/kernels
# (scripts/linux-source.sh fetches it), prepares them for user space as the kernel's
# scripts/headers_install.sh does, and prints the include directory that
# holds them as linux/iommufd.h and linux/vfio.h.  tests/abi/ compiles the
# kernel's side of the ABI check against it.
#
# The result is cached outside the work tree, keyed by the package version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/linux-uapi-<version>/
# A second run finds it there and does no work.  Concurrent runs are safe:
# each extracts into its own temporary directory and renames it into place.
#
# Exit status 0 with the directory on stdout, or 1 with the reason on stderr.

set -eu

# shellcheck disable=SC2034 # me and need are read by linux-source.sh
me=linux-uapi.sh
need="the ABI test needs the Linux 6.12 uAPI headers from it"
headers="iommufd.h vfio.h"
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/linux-source.sh
. "$(dirname "$0")/linux-source.sh"

dest=$cache/linux-uapi-$version

is_complete() {
	[ -f "$1/.complete" ] || return 1
	for h in $headers; do
		[ -s "$1/linux/$h" ] || return 1
	done
}

if is_complete "$dest"; then
	echo "$dest"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.linux-uapi-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

srcroot=$pkg
members=
for h in $headers; do
	members="$members $srcroot/include/uapi/linux/$h"
done
# shellcheck disable=SC2086 # word splitting of $members is intended
tar -xJf "$tarball" -C "$tmp" $members ||
	die "cannot extract$members from $tarball"

mkdir "$tmp/out" "$tmp/out/linux"
for h in $headers; do
	in=$tmp/$srcroot/include/uapi/linux/$h
	# headers_install.sh also runs unifdef -U__KERNEL__, which Debian
	# does not ship; these two headers have no such block, so refuse
	# rather than guess if a later version grows one.
	if grep -q '__KERNEL__' "$in"; then
		die "$h has a __KERNEL__ block; this script cannot unifdef it"
	fi
	headers_install_sed "$in" >"$tmp/out/linux/$h"
done
echo "$pkg $version $tarball" >"$tmp/out/.complete"

# Publish atomically; if a concurrent run won, keep its copy.
if ! mv -T "$tmp/out" "$dest" 2>/dev/null; then
	is_complete "$dest" || die "cannot create $dest"
fi
echo "$dest"

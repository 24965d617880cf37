# SPDX-License-Identifier: MIT
# shellcheck shell=sh disable=SC2034,SC2154 # shares variables with its caller
#
# linux-source.sh - what scripts/linux-uapi.sh and
# kernel/vm/iommufd-test-header.sh share to take headers out of Debian's
# linux-source-6.12 tarball.  Sourced, not run: the caller sets `me` (its
# name, for messages) and `need` (what it needs from the package, said if
# the package is missing) first, under set -eu.
#
# Environment: LINUX_SOURCE_PKG (default linux-source-6.12),
# LINUX_SOURCE_TARBALL (default /usr/src/$LINUX_SOURCE_PKG.tar.xz).
# Sets pkg, tarball, version (of the installed package) and cache (the
# directory the callers cache their results in); defines die and
# headers_install_sed.

pkg=${LINUX_SOURCE_PKG:-linux-source-6.12}
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/$pkg.tar.xz}

die() {
	echo "$me: $*" >&2
	exit 1
}

version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || version=
status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) ||
	status=
if [ -z "$version" ] || [ "$status" != installed ]; then
	die "package $pkg is not installed; $need (apt-get install $pkg)"
fi
[ -r "$tarball" ] || die "$tarball is missing although $pkg $version is" \
			 "installed (reinstall $pkg)"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd

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

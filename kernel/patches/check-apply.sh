#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-apply.sh - kernel/patches/ applies, in name order, with `patch -p1
# -F0` (no fuzz), to every kernel of the pinned matrix (kernel/vm/kernels),
# whether or not the matrix builds the uring variant of it.  Only the
# directories the patches touch are taken out of each source; a version
# that passed with the same patches is remembered in
# ${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/patch-check/.  A patch that does
# not apply is named with its hunks and the version.  CTest:
# kernel_patches_apply.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
shopt -s nullglob
patches=("$top"/kernel/patches/*.patch)
shopt -u nullglob
[ ${#patches[@]} -gt 0 ] || { echo "check-apply.sh: no patches"; exit 1; }

# the directories the series touches, relative to the source
mapfile -t dirs < <(sed -n 's@^diff --git a/\([^ ]*\) b/.*@\1@p' \
	"${patches[@]}" | xargs -n1 dirname | sort -u)
sum=$(cat "${patches[@]}" | sha256sum | cut -c1-16)

me=check-apply.sh
need="the patch series is checked against it"
version=
# shellcheck source=scripts/linux-source.sh
. "$top/scripts/linux-source.sh"	# for matrix_versions
failed=0
for v in $(matrix_versions); do
	stamp=$cache/patch-check/$sum-$v
	if [ -f "$stamp" ]; then
		echo "ok: kernel/patches/ applies to $pkg $v (checked before)"
		continue
	fi
	tarball=$(version=$v; . "$top/scripts/linux-source.sh"; echo "$tarball")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-apply.XXXXXX")
	members=()
	for d in "${dirs[@]}"; do
		[ "$d" = . ] && continue
		members+=("$pkg/$d")
	done
	# MAINTAINERS and other top-level files
	while read -r f; do members+=("$pkg/$f"); done < <(
		sed -n 's@^diff --git a/\([^/ ]*\) b/.*@\1@p' "${patches[@]}" |
			sort -u)
	# a directory a patch creates is not in the tarball: ignore misses
	tar -xJf "$tarball" -C "$tmp" "${members[@]}" 2>/dev/null || true
	ok=1
	for p in "${patches[@]}"; do
		if ! patch -d "$tmp/$pkg" -p1 -F0 --forward --batch <"$p" \
			>"$tmp/out" 2>&1; then
			echo "FAIL: kernel/patches/$(basename "$p") does not apply" \
			     "to $pkg $v without fuzz:"
			grep -v '^patching file' "$tmp/out" | sed 's/^/  /'
			ok=
			break
		fi
	done
	rm -rf "$tmp"
	if [ -n "$ok" ]; then
		mkdir -p "$cache/patch-check"
		: >"$stamp"
		echo "ok: kernel/patches/ applies to $pkg $v without fuzz"
	else
		failed=$((failed + 1))
	fi
done
[ $failed -eq 0 ] || { echo "check-apply.sh: rebase the series (kernel/patches/README)"; exit 1; }

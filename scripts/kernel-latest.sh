#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# kernel-latest.sh - try the newest linux-source-6.12 Debian serves against
# the pinned matrix (kernel/vm/kernels), by hand, never in CI.
#
#   scripts/kernel-latest.sh [--version V] [--build DIR]
#
# Updates apt's lists, picks the newest version apt offers (or V), and if
# the matrix does not pin it: builds dirtyd (DIRTYD_BUILD or build/), the
# stock and the uring kernel of that version (tests/vm/build-kernel.sh,
# cached like the pinned ones), checks that kernel/patches/ applies, boots
# the same VM tests as CI (tests/vm/run.sh, with a matrix that adds V),
# records the scenario transcripts of V into tests/scenario/recorded/<V>/
# and prints how they differ from the newest pinned kernel's.  Nothing in
# kernel/vm/kernels changes: adding V is a commit of its own, with the
# recordings, a behaviour switch in kernel/sim/kernel.c for every
# difference, and the guest tests passing.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${DIRTYD_BUILD:-$top/build}
pkg=linux-source-6.12
want=

while [ $# -gt 0 ]; do
	case $1 in
	--version) want=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) sed -n '3,19p' "$0"; exit 0 ;;
	*) echo "kernel-latest.sh: unknown argument $1" >&2; exit 1 ;;
	esac
done

scripts/deps.sh
[ "$(id -u)" -ne 0 ] || apt-get update -qq
served=$(apt-cache madison "$pkg" | awk -F'|' '{gsub(/ /, "", $2); print $2}')
[ -n "$served" ] || { echo "kernel-latest.sh: apt offers no $pkg" >&2; exit 1; }
newest=
for v in $served; do
	if [ -z "$newest" ] || dpkg --compare-versions "$v" gt "$newest"; then
		newest=$v
	fi
done
version=${want:-$newest}
pinned=$(grep -E '^[0-9]' kernel/vm/kernels | awk '{print $1}')
echo "kernel-latest.sh: apt serves:" $served
echo "kernel-latest.sh: pinned:" $pinned
for v in $pinned; do
	echo "$served" | grep -qxF "$v" ||
		echo "kernel-latest.sh: WARNING: pinned $v is no longer served"
done
if echo "$pinned" | grep -qxF "$version"; then
	echo "kernel-latest.sh: $version is pinned already; CI tests it"
	exit 0
fi
release=${version%%-*}
last=$(echo "$pinned" | tail -n1)
last_release=${last%%-*}

matrix=$(mktemp "${TMPDIR:-/tmp}/kernels.XXXXXX")
trap 'rm -f "$matrix"' EXIT
grep -v '^[0-9]' kernel/vm/kernels >"$matrix" || true
{ grep -E '^[0-9]' kernel/vm/kernels; printf '%s\tstock uring\n' "$version"; } |
	sort -V >>"$matrix"	# oldest first, as the matrix is
export DIRTYD_KERNEL_MATRIX=$matrix

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$top" -B "$build" -G "Unix Makefiles" -DDIRTYD_TESTS=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null

status=0
echo "== kernel/patches/ on $version"
kernel/patches/check-apply.sh || status=1
for variant in stock uring; do
	echo "== VM tests on $version ($variant)"
	rec=()
	[ "$variant" = stock ] && rec=(--record)
	tests/vm/run.sh --manifest "$build/tests/vm/guest.manifest" \
		--version "$version" --kernel "$variant" \
		--out "$build/tests/vm/latest-$release-$variant" \
		${rec[@]+"${rec[@]}"} || status=1
done
echo "== what Linux $release answers differently from Linux $last_release"
changes=$(diff -ru -I '^# Linux ' "tests/scenario/recorded/$last_release" \
	"tests/scenario/recorded/$release" | grep -v '^diff -ru') || true
if [ -n "$changes" ]; then
	echo "$changes"
	echo "(review: each difference is a behaviour of kernel/sim/kernel.c;"
	echo "the VM tests above say whether the sim already knows it)"
else
	echo "nothing: the recorded transcripts are the same but for the release"
fi
echo "kernel-latest.sh: to pin it, add \"$version<TAB>stock uring\" (or move"
echo "the uring variant) to kernel/vm/kernels and commit it with"
echo "tests/scenario/recorded/$release/"
exit $status

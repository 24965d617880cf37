#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/vm.sh - io_uring commands for iommufd, measured in the VM: one
# harvest round of many small batches over several domains as uring
# commands, on the engine's worker pool and as plain sequential ioctls
# (tests/vm/guest_bench.c), on the kernel with kernel/patches/ applied.
#
#   bench/vm.sh [--kernel uring|stock] [--rounds N] [--out DIR]
#   DIRTYD_VM_CPUS=1 bench/vm.sh       # a one-vCPU guest (tests/vm/run.sh)
#
# Builds vm_init and vm_guest_bench in build-bench-vm/ (-O2, as bench/run.sh),
# boots the guest with only the benchmark (tests/vm/run.sh: the guest kernel
# is built and cached as for the VM tests), and prints one table per batch
# shape: medians per round, and ratios to the plain ioctls.  The raw lines
# (every round) go to bench/results/vm-VARIANT-Ncpu.txt (N: the guest's
# vCPUs, DIRTYD_VM_CPUS, 2 by default).  TCG inflates absolute
# times (and KVM is not available here): read the ratios.  Takes a few
# minutes with the kernel cached.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build-bench-vm
variant=uring
rounds=11
out=

while [ $# -gt 0 ]; do
	case $1 in
	--kernel) variant=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) sed -n '3,19p' "$0"; exit 0 ;;
	*) echo "bench/vm.sh: unknown argument $1 (--help)" >&2; exit 1 ;;
	esac
done
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/dirtyd-benchvm.XXXXXX")
mkdir -p "$out" "$src/bench/results"

cmake -S "$src" -B "$build" -G "Unix Makefiles" \
	-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
	-DDIRTYD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target vm_init vm_guest_bench \
	>/dev/null

# The shapes: NAME "ARGS" (4 domains each; see guest_bench.c).
#   small  64 mappings of 64 KiB a domain: 256 batches, 16 pages each
#   tiny   256 mappings of 16 KiB a domain: 1024 batches, 4 pages each
#   large  8 mappings of 16 MiB a domain: 32 batches, 4096 pages each
manifest=$out/bench.manifest
{
	echo "init $build/tests/vm/vm_init"
	echo "bin $build/tests/vm/vm_guest_bench"
	echo "test small 1200 /bin/vm_guest_bench -d 4 -r 64 -k 64 -n $rounds"
	echo "test tiny 1200 /bin/vm_guest_bench -d 4 -r 256 -k 16 -n $rounds"
	echo "test large 1200 /bin/vm_guest_bench -d 4 -r 8 -k 16384" \
	     "-n $rounds"
} >"$manifest"

"$src/tests/vm/run.sh" --kernel "$variant" --manifest "$manifest" \
	--out "$out" --timeout 3600 >&2
raw=$src/bench/results/vm-$variant-${DIRTYD_VM_CPUS:-2}cpu.txt
{
	grep -m1 '^DIRTYD-VM BEGIN ' "$out/results.log.txt"
	grep -E '^DIRTYD-VM OUT (small|tiny|large) (bench|info|ok|not ok)' \
		"$out/results.log.txt"
} >"$raw"

# One table per shape: way, syscalls, wall, context switches, CPU; ratios
# to the plain ioctls.
awk '
function val(line, key,    i, n, f) {
	n = split(line, f, " ")
	for (i = 1; i <= n; i++)
		if (index(f[i], key "=") == 1)
			return substr(f[i], length(key) + 2)
	return ""
}
$1 == "DIRTYD-VM" && $2 == "BEGIN" { print "# " $0; next }
$4 == "info:" && $5 ~ /^[0-9]+$/ && $6 == "domains" {
	sub(/^.*info: /, ""); desc[$0] = 1; shape_desc = $0; next
}
$4 == "bench:" {
	shape = $3; way = val($0, "way")
	if (!(shape in seen)) { seen[shape] = 1; order[++nshapes] = shape }
	if (val($0, "round") != "") next
	if ((v = val($0, "pass_wall_us")) != "") {
		k = shape SUBSEP way
		if (!(k in lo) || v + 0 < lo[k]) lo[k] = v + 0
		if (!(k in hi) || v + 0 > hi[k]) hi[k] = v + 0
		next
	}
	if (val($0, "mode") != "") {
		wall[shape, way] = val($0, "wall_us")
		ctx[shape, way] = val($0, "ctxsw")
		cpu[shape, way] = val($0, "cpu_us")
		batches[shape] = val($0, "batches")
		workers[shape, way] = val($0, "workers")
		has[shape, way] = 1
	}
	if (val($0, "syscalls_per_round") != "") {
		sys[shape, way] = val($0, "syscalls_per_round")
		thr[shape, way] = val($0, "threads")
	}
}
END {
	split("uring_cmd workers ioctl", ways, " ")
	for (s = 1; s <= nshapes; s++) {
		sh = order[s]
		printf "\n## %s: 4 domains, %s batches a round (medians of " \
		       "every round; passes: the range of the per-pass " \
		       "medians)\n", sh, batches[sh]
		printf "%-10s %10s %8s %10s %8s %17s %7s %9s %8s\n", "way",
		       "syscalls", "/ioctl", "wall_us", "/ioctl",
		       "passes (wall_us)", "ctxsw", "cpu_us", "/ioctl"
		for (w = 1; w <= 3; w++) {
			k = sh SUBSEP ways[w]
			if (!(k in has)) {
				printf "%-10s %10s\n", ways[w], "(n/a)"
				continue
			}
			b = sh SUBSEP "ioctl"
			printf "%-10s %10.1f %8.2f %10d %8.2f %17s %7d %9d %8.2f\n",
			       ways[w], sys[k], sys[b] ? sys[k] / sys[b] : 0,
			       wall[k], wall[b] ? wall[k] / wall[b] : 0,
			       lo[k] "-" hi[k], ctx[k], cpu[k],
			       cpu[b] ? cpu[k] / cpu[b] : 0
		}
		if ((sh, "uring_cmd") in has && (sh, "workers") in has) {
			u = sh SUBSEP "uring_cmd"; p = sh SUBSEP "workers"
			printf "uring_cmd / workers: syscalls %.2f, wall %.2f, " \
			       "context switches %.2f\n", sys[u] / sys[p],
			       wall[u] / wall[p],
			       ctx[p] ? ctx[u] / ctx[p] : 0
		}
	}
}' "$raw"
echo
echo "bench/vm.sh: raw lines in $raw; guest logs in $out"
if grep -q 'not ok' "$raw"; then
	echo "bench/vm.sh: some checks failed:" >&2
	grep 'not ok' "$raw" >&2
	exit 1
fi

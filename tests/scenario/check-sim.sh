#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-sim.sh RUNNER FILE.scn RELEASE - the sim emulating Linux RELEASE
# (6.12.N, a kernel of kernel/vm/kernels) answers a scenario as that kernel
# did: runs FILE.scn on the sim with --kernel RELEASE and compares the
# transcript byte for byte with recorded/RELEASE/NAME.kernel, the real
# kernel's, recorded in the VM by tests/vm/run.sh --record.
set -eu
runner=$1
scn=$2
release=$3
name=$(basename "$scn" .scn)
golden=$(dirname "$scn")/recorded/$release/$name.kernel
out=$(mktemp "${TMPDIR:-/tmp}/scenario-sim.XXXXXX")
trap 'rm -f "$out"' EXIT

rc=0
"$runner" --backend sim --kernel "$release" "$scn" >"$out" || rc=$?
if [ $rc -gt 1 ]; then
	echo "check-sim.sh: the runner failed ($rc)"
	cat "$out"
	exit 1
fi
if [ ! -f "$golden" ]; then
	cat "$out"
	echo "check-sim.sh: no $golden: every kernel of the matrix needs its"
	echo "recording (tests/vm/run.sh --manifest BUILD/tests/vm/guest.manifest"
	echo "--version <its package version> --record)"
	exit 1
fi
if ! diff -u --label "Linux $release (recorded)" --label "sim as $release" \
	"$golden" "$out"; then
	echo "check-sim.sh: the sim emulating $release differs from the kernel"
	echo "on $scn (the kernel is right: fix kernel/sim/)"
	exit 1
fi
[ $rc -eq 0 ] || echo "check-sim.sh: (expectations after '->' not met on" \
		      "the kernel either: fix the scenario)"
echo "check-sim.sh: the sim answers $(wc -l <"$out") operations as Linux $release"

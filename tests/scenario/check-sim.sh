#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-sim.sh RUNNER FILE.scn - the sim answers a scenario as the kernel
# did: runs FILE.scn on the sim and compares the transcript with
# FILE.kernel, the real kernel's, recorded in the VM by
# tests/vm/run.sh --record.  Without a recording it only runs the
# scenario (its expectations must hold).
set -eu
runner=$1
scn=$2
golden=${scn%.scn}.kernel
out=$(mktemp "${TMPDIR:-/tmp}/scenario-sim.XXXXXX")
trap 'rm -f "$out"' EXIT

rc=0
"$runner" --backend sim "$scn" >"$out" || rc=$?
if [ $rc -gt 1 ]; then
	echo "check-sim.sh: the runner failed ($rc)"
	cat "$out"
	exit 1
fi
if [ ! -f "$golden" ]; then
	cat "$out"
	[ $rc -eq 0 ] || echo "check-sim.sh: expectations not met"
	echo "check-sim.sh: no $golden recorded; ran the sim only"
	exit $rc
fi
if ! diff -u --label "kernel (recorded)" --label sim "$golden" "$out"; then
	echo "check-sim.sh: the sim differs from the kernel on $scn"
	exit 1
fi
echo "check-sim.sh: the sim answers $(wc -l <"$out") operations as the kernel"

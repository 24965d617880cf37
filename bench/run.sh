#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/run.sh - build dirtyd in Release (-O2) in build-bench/ and run the
# benchmarks: the tables go to stdout, the results to bench/results/.
#
#   bench/run.sh                  both: e2e_bench, then harvest_bench
#   bench/run.sh -q               both, quick: a 64 GiB guest for e2e_bench,
#                                 16 GiB for harvest_bench
#   bench/run.sh e2e [options]    e2e_bench only, e.g. e2e -g 64 -n 1,16
#   bench/run.sh harvest [options]  harvest_bench only, e.g. harvest -g 16,256
#
# e2e_bench (the path users run, through the daemon): bench/results/e2e.json.
# harvest_bench (the harvest engine alone): bench/results/harvest.json and
# harvest.svg.
#
# Needs cmake, a C compiler and the project's libraries (liburing, libevent,
# libsystemd); the tests (and criterion) are not built.  On 2 shared CPUs:
# e2e_bench 10 to 25 minutes (the 1 TiB guest with 1 and 16 subscribers took
# 7 minutes at load 7-14; 256 subscribers of the 64 GiB guest at 10 %
# uniform take minutes more) and up to 6 GiB of memory, harvest_bench about
# 5 minutes and 3 GiB; -q a few minutes.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build="$src/build-bench"
out="$src/bench/results"

what=all
quick=
case "${1:-}" in
e2e|harvest)
	what=$1
	shift
	;;
-q)
	quick=1
	shift
	;;
esac
if [ "$what" = all ] && [ $# -gt 0 ]; then
	echo "usage: bench/run.sh [-q] | e2e [options] | harvest [options]" >&2
	exit 2
fi

# CMake's Release is -O3; the project ships -O2 (RelWithDebInfo) and the
# results in bench/README.md were measured at -O2: pin it.
cmake -S "$src" -B "$build" -G "Unix Makefiles" \
	-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
	-DDIRTYD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target harvest_bench e2e_bench \
	>/dev/null
mkdir -p "$out"

run_e2e() {
	"$build/bench/e2e_bench" -j "$out/e2e.json" "$@"
}
run_harvest() {
	"$build/bench/harvest_bench" -j "$out/harvest.json" \
		-s "$out/harvest.svg" "$@"
}

case $what in
e2e)
	run_e2e "$@"
	;;
harvest)
	run_harvest "$@"
	;;
all)
	if [ -n "$quick" ]; then
		run_e2e -q
		run_harvest -g 16
	else
		run_e2e
		run_harvest
	fi
	;;
esac

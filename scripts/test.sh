#!/usr/bin/env bash
# The test command: set up, build (normal and ASan+UBSan) and run every test.
#   scripts/test.sh            everything the CI runs
# Build trees go to build/ and build-asan/ under the checkout; slow artefacts
# (the Linux uAPI headers, later the VM kernel) are cached under
# ${XDG_CACHE_HOME:-~/.cache}/dirtyd, keyed by their inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh

jobs=$(nproc)
status=0
# ccache, outside the work tree (as the kernels): a fresh clone compiles
# only what changed since the last run, whatever folder it is in.
export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dirtyd/ccache}
export CCACHE_BASEDIR=$top CCACHE_NOHASHDIR=true
for variant in normal asan; do
	dir=$top/build
	flags=()
	if [ $variant = asan ]; then
		dir=$top/build-asan
		# the fault test 2 x 10 s: ASan's worth is the code paths
		flags=(-DDIRTYD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
		       -DDIRTYD_FAULT_SECONDS=10)
	fi
	echo "== $variant build ($dir)"
	cmake -S "$top" -B "$dir" -G "Unix Makefiles" -DDIRTYD_TESTS=ON \
	      -DCMAKE_C_COMPILER_LAUNCHER=ccache "${flags[@]}" >/dev/null
	cmake --build "$dir" -j"$jobs"
	echo "== $variant tests"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	# Two at a time (no test asserts a duration: they hold under load);
	# the VM tests alone afterwards: from an empty cache they build the
	# guest kernels with every CPU.  The outsider's suite once, in the
	# normal build (its malformed input reaches ASan through
	# fuzz_session).
	skip='^vm$'
	[ $variant = asan ] && skip='^(vm|conformance)$'
	if ! (cd "$dir" && ctest --output-on-failure --timeout 900 \
	      -j"$jobs" -LE "$skip"); then
		status=1
	fi
	if [ $variant = normal ] &&
	   ! (cd "$dir" && ctest --output-on-failure --timeout 900 -L '^vm$'); then
		status=1
	fi
	# dirtyd must behave the same on every kernel of the matrix: the
	# tests that run it on the sim (label sim) once more with the sim
	# emulating each older kernel (the first pass: the newest).
	if [ $variant = normal ]; then
		for release in $(grep -E '^[0-9]' kernel/vm/kernels | sed '$d' |
				 sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+).*/\1/'); do
			echo "== $variant tests on the sim as Linux $release"
			if ! (cd "$dir" && DIRTYD_SIM_KERNEL=$release \
			      FAULT_SECONDS=8 \
			      ctest -L '^sim$' -j"$jobs" --output-on-failure \
			      --timeout 900); then
				status=1
			fi
		done
	fi
done
# libFuzzer on the decoder and on whole sessions, 25 s each (tests/fuzz/)
scripts/fuzz.sh --time 25 || status=1
exit $status

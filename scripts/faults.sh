#!/bin/sh
# The randomised fault test (tests/fault/) for as long as asked: the real
# dirtyd on the simulated host, faults injected, every written page checked.
#
#   scripts/faults.sh [--seconds N] [--seed N] [--rounds N] [--kinds LIST]
#                     [--restart store|plain] [--asan] [--log-level L]
#                     [--trace] [--build DIR]
#
#   --seconds N   run each seed this long (default 600)
#   --seed N      one seed (a failure prints the seed and round that
#                 reproduce it); without it, seed 1 and one from the clock
#   --rounds N    stop a seed after N rounds
#   --kinds LIST  fault kinds: all (default), none, a kind, -kind; kinds are
#                 midstream resume noread noack ackorder domains mappings kill
#   --restart     store (default: the test plays systemd's fd store) or plain
#   --asan        the ASan+UBSan build (build-asan/)
#   --trace       print every step (to follow a failure)
#
# It builds what it needs (build/ or build-asan/ under the source tree,
# or --build DIR) and prints the report: rounds, faults per kind, pages
# checked, pages lost (must be 0), STATE_LOST events.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=600 asan=0 build="" seed="" rounds="" kinds="" restart="" level=""
trace=""
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--kinds) kinds=$2; shift 2 ;;
	--restart) restart=$2; shift 2 ;;
	--log-level) level=$2; shift 2 ;;
	--trace) trace=1; shift ;;
	--asan) asan=1; shift ;;
	--build) build=$2; shift 2 ;;
	-h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "faults.sh: unknown option $1 (--help)" >&2; exit 2 ;;
	esac
done
if [ -z "$build" ]; then
	if [ "$asan" = 1 ]; then build=$src/build-asan; else build=$src/build; fi
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
	if [ "$asan" = 1 ]; then
		cmake -S "$src" -B "$build" -DDIRTYD_SANITIZE=ON \
			-DCMAKE_BUILD_TYPE=Debug
	else
		cmake -S "$src" -B "$build"
	fi
fi
cmake --build "$build" -j"$(nproc)" --target dirtyd fault_inject
export DIRTYD_BIN="$build/daemon/dirtyd" FAULT_SECONDS="$seconds"
[ -n "$seed" ] && export FAULT_SEED="$seed"
[ -n "$rounds" ] && export FAULT_ROUNDS="$rounds"
[ -n "$kinds" ] && export FAULT_KINDS="$kinds"
[ -n "$restart" ] && export FAULT_RESTART="$restart"
[ -n "$level" ] && export FAULT_LOG_LEVEL="$level"
[ -n "$trace" ] && export FAULT_TRACE=1
exec "$build/tests/fault/fault_inject" --short-filename

#!/usr/bin/env bash
# Fuzz the protocol decoder and a whole daemon session (tests/fuzz/).
#   scripts/fuzz.sh [--time SECONDS] [--jobs N] [--target NAME]...
#     --time    seconds per target (default 60); a long run: --time 3600
#     --jobs    parallel fuzzing processes per target (default 1)
#     --target  fuzz_proto or fuzz_session (default both)
# Builds build-fuzz/ with clang, libFuzzer, ASan and UBSan; fuzzes a
# scratch copy of the seed corpus (tests/fuzz/corpus/ is never written);
# prints executions, exec/s, coverage and what was found for each target;
# exits non-zero on any crash, leak or timeout, keeping the reproducers in
# build-fuzz/findings/TARGET/ (copy one into tests/fuzz/corpus/TARGET's
# directory as a regression seed once the bug is fixed).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

time_s=60
jobs=1
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--time) time_s=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--target) targets+=("$2"); shift 2 ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_proto fuzz_session)

dir=$top/build-fuzz
echo "== fuzz build ($dir)"
launcher=$(command -v ccache || true)	# scripts/test.sh sets CCACHE_*
CC=clang cmake -S "$top" -B "$dir" -G "Unix Makefiles" -DDIRTYD_FUZZ=ON \
	-DDIRTYD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug \
	-DCMAKE_C_COMPILER_LAUNCHER="$launcher" >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
	case $t in
	fuzz_proto) seeds=proto max_len=70000 ;;
	fuzz_session) seeds=session max_len=16384 ;;
	*) echo "fuzz.sh: no target $t" >&2; exit 2 ;;
	esac
	work=$dir/work/$t
	found=$dir/findings/$t
	rm -rf "$work"
	mkdir -p "$work/corpus" "$found"
	cp "$top/tests/fuzz/corpus/$seeds"/* "$work/corpus/"
	log=$work/log
	echo "== $t: ${time_s}s x $jobs job(s), $(ls "$work/corpus" | wc -l) seeds"
	rc=0
	(cd "$work" &&
	 "$dir/tests/fuzz/$t" -max_total_time="$time_s" -timeout=30 \
		-rss_limit_mb=4096 -max_len=$max_len -print_final_stats=1 \
		-artifact_prefix="$found/" -jobs="$jobs" -workers="$jobs" \
		corpus >"$log" 2>&1) || rc=$?
	# with -jobs libFuzzer writes fuzz-N.log files
	cat "$work"/fuzz-*.log >>"$log" 2>/dev/null || true
	runs=$(grep -h '^stat::number_of_executed_units' "$log" |
	       awk '{ s += $2 } END { print s + 0 }')
	rate=$(grep -h '^stat::average_exec_per_sec' "$log" |
	       awk '{ s += $2 } END { print s + 0 }')
	cov=$(grep -h -o 'cov: [0-9]*' "$log" | awk '{ print $2 }' |
	      sort -n | tail -1)
	ft=$(grep -h -o 'ft: [0-9]*' "$log" | awk '{ print $2 }' |
	     sort -n | tail -1)
	crashes=$(find "$found" -newer "$work/corpus" -type f | wc -l)
	echo "   $runs executions, $rate exec/s, coverage ${cov:-0} edges" \
	     "(${ft:-0} features), corpus $(ls "$work/corpus" | wc -l)" \
	     "inputs, $crashes finding(s)"
	if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ] ||
	   grep -q -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
		status=1
		echo "   FAILED (exit $rc); the log: $log" >&2
		grep -h -E 'check failed|ERROR:|SUMMARY|runtime error' "$log" |
			head -20 >&2 || true
		find "$found" -newer "$work/corpus" -type f |
			sed 's/^/   reproducer: /' >&2
		echo "   replay: $dir/tests/fuzz/$t REPRODUCER" >&2
	fi
done
exit $status

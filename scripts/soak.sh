#!/usr/bin/env bash
# The load soak on demand (tests/soak/README.md): builds the normal tree
# (build/, or $DIRTYD_BUILD) if needed and runs dirtyd_soak against the
# dirtyd built there; every option goes to dirtyd_soak (--help lists them).
#   scripts/soak.sh --duration 3600
#   scripts/soak.sh --duration 600 --subscriptions 16 --domain-size 256M \
#                   --min-round-hz 30
# Results in --out DIR (default build/soak-YYYYmmdd-HHMMSS): soak.csv (one
# row a second), summary.txt (figures and checks), dirtyd.log.  Exit 0 when
# every check passed.  The test command runs the bounded 60 s version
# (CTest soak_bounded).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${DIRTYD_BUILD:-$top/build}

if [ ! -f "$build/CMakeCache.txt" ]; then
	scripts/deps.sh
	cmake -S "$top" -B "$build" -G "Unix Makefiles" -DDIRTYD_TESTS=ON \
		>/dev/null
fi
if grep -q '^DIRTYD_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
	echo "soak.sh: $build is a sanitizer build: its memory and CPU" \
		"figures say nothing about dirtyd; use a normal build" >&2
	exit 2
fi
cmake --build "$build" -j"$(nproc)" --target dirtyd dirtyd_soak
out=$build/soak-$(date +%Y%m%d-%H%M%S)
exec "$build/tests/soak/dirtyd_soak" --dirtyd "$build/daemon/dirtyd" \
	--out "$out" "$@"

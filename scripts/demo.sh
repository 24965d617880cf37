#!/usr/bin/env bash
# The main job: build, start dirtyd on its simulated IOMMU host with a demo
# guest under DMA load, show the host (devices and domains), live dirty
# ranges, and a pre-copy migration converging; then stop dirtyd.
#   scripts/demo.sh [--size 16G] [--rate 20000] [--pattern clustered]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

size=16G rate=20000 pattern=clustered
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--pattern) pattern=$2; shift 2 ;;
	-h|--help) sed -n 2,6p "$0"; exit 0 ;;
	*) echo "demo: unknown option $1" >&2; exit 2 ;;
	esac
done

scripts/deps.sh
cmake -S . -B build -G "Unix Makefiles" >/dev/null
cmake --build build -j"$(nproc)" --target dirtyd dirtyctl dirtyd-migrate

run=$(mktemp -d /tmp/dirtyd-demo.XXXXXX)
sock=$run/dirtyd.sock
cat > "$run/dirtyd.conf" <<CONF
[daemon]
backend = sim
socket = $sock
socket_mode = 0600
log_level = notice
[sim]
backing_page_size = 4k
devices = sim-nic0:dirty, sim-gpu0:dirty, sim-legacy0:nodirty, sim-vf0:nodirty iommu=1 dma_logging=yes
[guest demo]
device = sim-nic0
size = $size
iova = 0x100000000
tracking = yes
dma = $pattern
dma_rate = $rate
dma_threads = 1
cluster_pages = 32
hot_pages = 65536
seed = 1
CONF

build/daemon/dirtyd --config "$run/dirtyd.conf" 2> "$run/dirtyd.log" &
pid=$!
cleanup() {
	kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT
for _ in $(seq 100); do
	[ -S "$sock" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$run/dirtyd.log" >&2; exit 1; }
	sleep 0.1
done

ctl() { build/clients/dirtyctl --socket "$sock" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "devices: the dirty-tracking capability of each"
ctl devices
say "a device that cannot track is refused, and says why"
ctl create sim-legacy0 || true
say "domains: status of each"
ctl domains
dom=$(ctl --json domains | sed -n 's/^{"domains":\[{"domain":\([0-9]*\).*/\1/p')
say "live dirty ranges of domain $dom, written in the last 500 ms (3 times)"
for i in 1 2 3; do
	out=$(ctl ranges "$dom" --since 500)
	n=$(printf '%s\n' "$out" | grep -c '^0x' || true)
	echo "-- sample $i: $n ranges, the first 8:"
	printf '%s\n' "$out" | sed -n 1,8p
done
say "pre-copy migration of domain $dom at 10 Gbit/s"
rc=0
build/clients/dirtyd-migrate --socket "$sock" --domain "$dom" || rc=$?
say "per-domain statistics"
ctl stats
say "what runs: dirtyctl status"
ctl status
exit $rc

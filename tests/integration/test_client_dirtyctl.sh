#!/bin/sh
# Every dirtyctl command against the real dirtyd, with and without --json;
# refusals and usage errors; and the libdirty example program.  Every JSON
# document printed is checked against dirtyctl(1)'s JSON VOCABULARY at the
# end (json_keys.py); stats --format openmetrics by real Prometheus
# parsers (test_metrics.py --check-file).
#   test_client_dirtyctl.sh DIRTYD DIRTYCTL JSONCHECK EXAMPLE PYTHON
#                           METRICSCHECK PROMTOOL JSONKEYS MANPAGE
set -u
DIRTYD=$1
DIRTYCTL=$2
JSONCHECK=$3
EXAMPLE=$4
PYTHON=$5
METRICSCHECK=$6
PROMTOOL=$7
JSONKEYS=$8
MANPAGE=$9
. "$(dirname "$0")/test_client_lib.sh"

OUT=$TD_DIR/out
ERR=$TD_DIR/err

# keep_json ARGS...: a --json run's documents go to the vocabulary check
keep_json() {
	case " $* " in
	*" --json "*) cat "$OUT" >> "$TD_DIR/json.all" ;;
	esac
}

# ctl ARGS...: must succeed; stdout in $OUT
ctl() {
	"$DIRTYCTL" "$@" > "$OUT" 2> "$ERR" ||
		fail "dirtyctl $*: exit $?: $(cat "$ERR")"
	keep_json "$@"
}

# ctl_fails STATUS ARGS...: must exit STATUS
ctl_fails() {
	want=$1
	shift
	rc=0
	"$DIRTYCTL" "$@" > "$OUT" 2> "$ERR" || rc=$?
	[ $rc -eq "$want" ] ||
		fail "dirtyctl $*: exit $rc, expected $want: $(cat "$ERR")"
	keep_json "$@"
}

# has FILE PATTERN: grep -E
has() {
	grep -Eq -- "$2" "$1" || fail "no '$2' in: $(cat "$1")"
}

td_start ""

# --help, --version, usage errors (exit 2), no daemon (exit 1)
ctl --help
has "$OUT" "^Usage: dirtyctl"
has "$OUT" "watch \[--interval MS\]"
ctl --version
has "$OUT" "^dirtyctl [0-9]+\.[0-9]+.* \(libdirty 1\.[0-9]+\.[0-9]+\)$"
ctl_fails 2 bogus
has "$ERR" "unknown command 'bogus'"
ctl_fails 2 map 1
ctl_fails 2 devices --ack
ctl_fails 2 destroy notanumber
ctl_fails 2
ctl_fails 1 --socket "$TD_DIR/nonexistent.sock" devices
has "$ERR" "ENOENT"
has "$ERR" "^hint: no socket at $TD_DIR/nonexistent.sock: is dirtyd running"
# --since: the same words in --help and the man page
ctl --help
has "$OUT" "only the pages written during the MS ms"
grep -q "only the pages written during the" "$MANPAGE" ||
	fail "dirtyctl(1) does not describe --since as --help does"
# EACCES: the hint names the socket's group (another uid, mode 0660)
if [ "$(id -u)" -eq 0 ]; then
	chmod 755 "$TD_DIR"	# the socket's own mode decides
	rc=0
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$DIRTYCTL" devices > "$OUT" 2> "$ERR" || rc=$?
	[ $rc -eq 1 ] || fail "uid 65534 connected to a 0660 socket: $rc"
	has "$ERR" "EACCES"
	has "$ERR" "^hint: .* has mode 0660 and group $(id -gn 0)"
	has "$ERR" "SocketGroup="
fi
ctl_fails 1 --json --socket "$TD_DIR/nonexistent.sock" devices
check_json "$OUT" .error.name ENOENT

# devices: the capability view
ctl devices
has "$OUT" "^DEVICE"
has "$OUT" "^legacy0 +no +free"
has "$OUT" "^sim0 +yes +free"
ctl --json devices
valid_json "$OUT"
check_json "$OUT" .devices# 4
# null, never 0, for "none"
check_json "$OUT" .devices[0].domain null
check_json "$OUT" .devices[0].dev_id null
i=0
while [ $i -lt 4 ]; do
	name=$("$JSONCHECK" "$OUT" ".devices[$i].name")
	dirty=$("$JSONCHECK" "$OUT" ".devices[$i].dirty_tracking")
	case $name in
	legacy0) [ "$dirty" = false ] || fail "legacy0 tracks?" ;;
	*) [ "$dirty" = true ] || fail "$name does not track?" ;;
	esac
	i=$((i + 1))
done

# create: refusals name the device, say why, and give the errno's name
ctl_fails 1 create legacy0
has "$ERR" "legacy0"
has "$ERR" "EOPNOTSUPP"
ctl_fails 1 --json create legacy0
check_json "$OUT" .error.name EOPNOTSUPP
check_json "$OUT" .error.errno 95
"$JSONCHECK" "$OUT" .error.message | grep -q legacy0 ||
	fail "the JSON error does not name legacy0"
ctl create sim0 --no-huge-pages
has "$OUT" "^domain 1 created with sim0"
ctl --json create sim1
check_json "$OUT" .domain 2
check_json "$OUT" .device sim1
check_json "$OUT" .support supported
ctl create legacy0 --no-track
has "$OUT" "^domain 3 created with legacy0 .*no tracking"
ctl_fails 1 create sim0
has "$ERR" "EBUSY"

# attach, detach
ctl attach 1 sim2
has "$OUT" "^sim2 attached to domain 1"
ctl --json detach 1 sim2
check_json "$OUT" .ok true
check_json "$OUT" .domain 1
ctl --json attach 2 sim2
check_json "$OUT" .device sim2
ctl detach 2 sim2
has "$OUT" "detached"

# map, track
ctl map 1 1G 256M
has "$OUT" "^map: domain 1 \[0x40000000, 0x50000000\) \(256 MiB\)"
ctl --json map 2 0 64M
check_json "$OUT" .length 67108864
ctl_fails 1 map 1 100 4k
has "$ERR" "EINVAL"
ctl track start 1
has "$OUT" "tracking started on domain 1"
ctl --json track start 2
check_json "$OUT" .operation "track start"
ctl_fails 1 track start 3
has "$ERR" "EOPNOTSUPP"
ctl_fails 2 track sideways 1

# domains: status (seed option b)
ctl domains
has "$OUT" "^DOMAIN +TRACKING"
has "$OUT" "^1 +enabled +supported .* 256 MiB +4 KiB"
has "$OUT" "^3 +disabled +unsupported"
ctl --json domains
valid_json "$OUT"
check_json "$OUT" .domains# 3
check_json "$OUT" .domains[0].tracking enabled
check_json "$OUT" .domains[0].domain 1
check_json "$OUT" .domains[0].mapped_bytes 268435456
check_json "$OUT" .domains[0].page_size 4096
check_json "$OUT" .domains[2].support unsupported
check_json "$OUT" .domains[2].tracking disabled

# sources: the one HWPT of domain 1's device
ctl sources 1
has "$OUT" "^KIND +ID +DEVICE"
has "$OUT" "^hwpt +[0-9]+ +sim0 +1 +4 KiB +- "
ctl --json sources 1
valid_json "$OUT"
check_json "$OUT" .sources# 1
check_json "$OUT" .sources[0].kind hwpt
check_json "$OUT" .sources[0].device sim0
check_json "$OUT" .sources[0].device_count 1
ctl_fails 1 sources 99
has "$ERR" "ENOENT"

# ranges: a new subscription has every mapped page
ctl ranges 1
has "$OUT" "^0x0000000040000000-0x000000004fffffff +65536 pages"
has "$OUT" "65536 pages in 1 ranges"
ctl --json ranges 1 --ack
check_json "$OUT" .pages 65536
check_json "$OUT" .ranges# 1
check_json "$OUT" .ranges[0].iova 1073741824
check_json "$OUT" .ranges[0].length 268435456
check_json "$OUT" .acked true
ctl --json ranges 2 --resend
check_json "$OUT" .pages 16384

# dma, and ranges --since: only what is written within the window
ctl dma 1 0x40000000 16k
has "$OUT" "^dma: domain 1"
ctl --json dma 1 0x40100000 4k
check_json "$OUT" .ok true
# sync (it also harvests the writes above: a subscription made after
# them, even with DIRTY_SUBSCRIBE_CLEAN, may otherwise see them at its
# first round)
ctl sync 1
has "$OUT" "^domain 1: generation [0-9]+"
ctl --json sync 1
valid_json "$OUT"
"$JSONCHECK" "$OUT" .generation | grep -Eq '^[1-9][0-9]*$' ||
	fail "sync: no generation"
ctl_fails 1 sync 3
has "$ERR" "E[A-Z]+\)$"

"$DIRTYCTL" --json ranges 1 --since 1500 > "$TD_DIR/since" 2>"$ERR" &
since=$!
sleep 0.5
ctl dma 1 0x40200000 8k
wait $since || fail "ranges --since failed: $(cat "$ERR")"
check_json "$TD_DIR/since" .pages 2
check_json "$TD_DIR/since" .ranges[0].iova 1075838976
ctl ranges 1 --since 100
has "$OUT" "generation [0-9]+: 0 pages in 0 ranges"

# stats
ctl stats
has "$OUT" "^DOMAIN +TRACKING +GENERATION"
has "$OUT" "^1 +enabled"
ctl --json stats
check_json "$OUT" .stats# 3
ctl --json stats 1
check_json "$OUT" .stats# 1
check_json "$OUT" .stats[0].domain 1
check_json "$OUT" .stats[0].page_size 4096
ctl --json stats 3
check_json "$OUT" .stats[0].last_round_ns null
ctl_fails 1 stats 99
has "$ERR" "ENOENT"
ctl_fails 2 stats --format xml

# stats --format openmetrics: what dirtyd returned, for the textfile
# collector; parsed by the real parsers
ctl stats --format openmetrics
tail -n 1 "$OUT" | grep -qx "# EOF" || fail "openmetrics: no # EOF at the end"
has "$OUT" '^dirtyd_domain_rounds_total\{domain="1"\} [1-9]'
has "$OUT" '^dirtyd_build_info\{version="[0-9.]+",backend="sim",kernel="[0-9.]+"\} 1$'
"$PYTHON" "$METRICSCHECK" --check-file "$OUT" --promtool="$PROMTOOL" ||
	fail "stats --format openmetrics does not parse: $(cat "$OUT")"
ctl stats 2 --format openmetrics
has "$OUT" 'domain="2"'
grep -q 'domain="1"' "$OUT" && fail "stats 2 --format openmetrics shows domain 1"

# status: version, backend, the kernel the sim emulates, uptime, counters
ctl status
has "$OUT" "^dirtyd [0-9.]+, backend sim \(emulating Linux [0-9.]+\)"
has "$OUT" "^uptime: "
has "$OUT" "^domains: 3$"
has "$OUT" "^clients: 1$"
has "$OUT" "^rounds: [1-9]"
ctl --json status
check_json "$OUT" .backend sim
check_json "$OUT" .domain_count 3
check_json "$OUT" .clients 1
check_json "$OUT" .scope daemon
check_json "$OUT" .harvest_errors 0

# watch: into a pipe, no escape at all; on a terminal, it clears
"$DIRTYCTL" watch --count 2 --interval 100 < /dev/null 2> "$ERR" | cat > "$OUT" ||
	fail "watch into a pipe: $(cat "$ERR")"
[ "$(grep -c '^DOMAIN' "$OUT")" -eq 2 ] || fail "watch: not 2 refreshes"
if grep -q "$(printf '\033')" "$OUT"; then
	fail "watch wrote an escape into a pipe"
fi
# nothing harvests domain 1 between the refreshes: no stale rate, a "-"
has "$OUT" "^1 +enabled +[0-9]+ +0\.0 +- +- "
has "$OUT" "^-: no round since the last refresh .*--harvest"
script -qec "$DIRTYCTL watch --count 1" /dev/null < /dev/null > "$OUT" 2>&1 ||
	fail "watch on a terminal: $(cat "$OUT")"
grep -q "$(printf '\033\\[2J')" "$OUT" || fail "watch: no clear on a terminal"
ctl --json watch --count 2 --interval 100 < /dev/null
check_json "$OUT" .domains[0].dirty_pages_per_s null --lines
check_json "$OUT" .domains[0].harvest_rounds_per_s 0.000 --lines
check_json "$OUT" .interval_s null "--line 1"
ctl --json watch --count 3 --interval 100 --harvest < /dev/null
valid_json "$OUT" --lines
[ "$(wc -l < "$OUT")" -eq 3 ] || fail "watch --json: not 3 lines"
check_json "$OUT" .domains# 3 --lines
check_json "$OUT" .refresh 3 --lines
# harvested every refresh: current rates, numbers
"$JSONCHECK" --lines "$OUT" .domains[0].dirty_pages_per_s | grep -Eq '^[0-9]+$' ||
	fail "watch --harvest: no current rate: $(cat "$OUT")"

# unmap, destroy (dirtyd unmaps whole mappings only)
ctl_fails 1 unmap 1 1G 128M
has "$ERR" "EINVAL"
ctl map 1 2G 64M
ctl unmap 1 2G 64M
has "$OUT" "^unmap: domain 1 \[0x80000000, 0x84000000\)"
ctl --json unmap 1 0x40000000 256M
check_json "$OUT" .operation unmap
ctl --json domains
check_json "$OUT" .domains[0].mapped_bytes 0
ctl destroy 3
has "$OUT" "^domain 3 destroyed"
ctl --json destroy 2
check_json "$OUT" .operation destroy
ctl_fails 1 destroy 2
has "$ERR" "ENOENT"
ctl_fails 1 --json destroy 2
check_json "$OUT" .error.errno 2
ctl destroy 1
ctl --json domains
check_json "$OUT" .domains# 0

# the example of libdirty(3)
"$EXAMPLE" sim0 3 > "$OUT" 2> "$ERR" || fail "example: $(cat "$ERR")"
has "$OUT" "^domain 4 on sim0"
has "$OUT" "^round 1: generation [0-9]+, 19 pages dirty"
has "$OUT" "^  pages 16\+3  iova 0x10000-0x12fff"
has "$OUT" "^  pages 768\+16  iova 0x300000-0x30ffff"
has "$OUT" "^round 3:"

td_stop
"$PYTHON" "$JSONKEYS" "$MANPAGE" "$TD_DIR/json.all" ||
	fail "dirtyctl printed JSON keys outside its vocabulary"
echo "dirtyctl: all checks passed"

#!/usr/bin/env bash
# systemd's offline tools on dirtyd's units and snippets, without a running
# systemd:
#   verify_units.sh verify SYSTEMD_ANALYZE UNIT...
#     `systemd-analyze verify` loads them (the service's ExecStart must
#     exist: the tests point it at the built dirtyd) and must print nothing:
#     it exits 0 even for unknown keys and bad values, which it only warns
#     about.
#   verify_units.sh security SYSTEMD_ANALYZE MAX SERVICE
#     `systemd-analyze security --offline=true`: prints the table and the
#     exposure, fails above MAX (0.0 .. 10.0).
#   verify_units.sh sysusers SYSTEMD_SYSUSERS FILE
#     the sysusers.d snippet parses: a dry run into an empty root.
#   verify_units.sh lifecycle - SERVICE
#     what keeps running VMs whole across dirtyd's life (dirtyd(8)
#     RESTARTS, SIGNALS): ExecReload= sends SIGHUP, an OOMScoreAdjust=
#     below 0 and above -1000, a FileDescriptorStoreMax= of at least 4098
#     (2 memfds and dirtyd's 4096 kernel descriptors), Restart=on-failure
#     (SIGUSR2's exit 75); no FileDescriptorStorePreserve= (252 does not
#     know it).
set -u

mode=$1 tool=$2	# systemd-analyze, or systemd-sysusers
shift 2
if [ "$mode" != lifecycle ] && ! command -v "$tool" >/dev/null; then
	echo "verify_units: $tool not found (Debian: apt-get install systemd)" >&2
	exit 1
fi

case $mode in
verify)
	out=$("$tool" verify --man=no "$@" 2>&1)
	rc=$?
	[ -n "$out" ] && printf '%s\n' "$out"
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		n=$(printf '%s' "$out" | grep -c '')
		echo "FAIL: systemd-analyze verify: exit $rc, $n complaint(s)"
		exit 1
	fi
	echo "ok: systemd-analyze verify $*: clean"
	;;
security)
	max=$1 unit=$2
	# --threshold= counts in tenths of the exposure level.
	threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')
	out=$("$tool" security --offline=true --threshold="$threshold" \
		--no-pager "$unit" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	level=$(printf '%s\n' "$out" |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	echo "systemd-analyze security: exposure ${level:-?} (at most $max wanted)"
	if [ $rc -ne 0 ] || [ -z "$level" ]; then
		echo "FAIL: exposure ${level:-unknown}, at most $max wanted (exit $rc)"
		exit 1
	fi
	echo "ok: exposure $level <= $max"
	;;
sysusers)
	root=$(mktemp -d) || exit 1
	"$tool" --dry-run --root="$root" "$1"
	rc=$?
	rm -rf "$root"
	[ $rc -eq 0 ] || { echo "FAIL: systemd-sysusers: exit $rc"; exit 1; }
	echo "ok: $1 parses"
	;;
lifecycle)
	unit=$1 bad=0
	key() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
	want() {
		if [ "$1" = 0 ]; then echo "ok: $2"; else echo "FAIL: $2"; bad=1; fi
	}
	reload=$(key ExecReload) oom=$(key OOMScoreAdjust)
	store=$(key FileDescriptorStoreMax) restart=$(key Restart)
	case $reload in *kill\ -HUP\ \$MAINPID*) r=0 ;; *) r=1 ;; esac
	want $r "ExecReload=$reload sends SIGHUP to the main process"
	[ -n "$oom" ] && [ "$oom" -lt 0 ] && [ "$oom" -gt -1000 ]
	want $? "OOMScoreAdjust=$oom: spared, still killable"
	[ -n "$store" ] && [ "$store" -ge 4098 ]
	want $? "FileDescriptorStoreMax=$store >= 4098"
	[ "$restart" = on-failure ]
	want $? "Restart=$restart"
	! grep -q '^FileDescriptorStorePreserve=' "$unit"
	want $? "no FileDescriptorStorePreserve= (systemd 252 would warn)"
	exit $bad
	;;
*)
	echo "usage: verify_units.sh verify|security|sysusers|lifecycle ..." >&2
	exit 2
	;;
esac

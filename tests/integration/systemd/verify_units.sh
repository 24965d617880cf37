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
set -u

mode=$1 tool=$2	# systemd-analyze, or systemd-sysusers
shift 2
if ! command -v "$tool" >/dev/null; then
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
*)
	echo "usage: verify_units.sh verify|security|sysusers ..." >&2
	exit 2
	;;
esac

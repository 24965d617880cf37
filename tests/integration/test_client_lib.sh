# Shared by the client test scripts (sourced; POSIX sh): the real dirtyd
# on the simulated host, in a temporary directory, and small checks.
#
#   td_start "EXTRA CONFIG"   start $DIRTYD, wait until it answers
#   td_stop                   SIGTERM; it must exit 0
#   check_json FILE PATH WANT assert a value of a JSON document
#   fail MESSAGE              print, show dirtyd's log, exit 1

TD_DIR=$(mktemp -d /tmp/dirtyd-client-sh-XXXXXX)
TD_SOCK=$TD_DIR/dirtyd.sock
TD_PID=
export DIRTYD_SOCKET="$TD_SOCK"

td_cleanup() {
	if [ -n "$TD_PID" ]; then
		kill -KILL "$TD_PID" 2>/dev/null
		wait "$TD_PID" 2>/dev/null
	fi
	rm -rf "$TD_DIR"
}
trap td_cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$TD_DIR/dirtyd.log" ]; then
		echo "---- dirtyd log (last 40 lines) ----" >&2
		tail -n 40 "$TD_DIR/dirtyd.log" >&2
	fi
	exit 1
}

td_start() {
	cat > "$TD_DIR/dirtyd.conf" <<CONF
[daemon]
backend = sim
socket = $TD_SOCK
log_level = debug
workers = 2

[sim]
backing_page_size = 4k
devices = sim0:dirty,sim1:dirty,sim2:dirty,legacy0:nodirty

$1
CONF
	env -u NOTIFY_SOCKET -u LISTEN_FDS \
		"$DIRTYD" --config "$TD_DIR/dirtyd.conf" \
		> "$TD_DIR/dirtyd.log" 2>&1 &
	TD_PID=$!
	i=0
	while ! "$DIRTYCTL" --socket "$TD_SOCK" devices >/dev/null 2>&1; do
		kill -0 "$TD_PID" 2>/dev/null || fail "dirtyd exited at start"
		i=$((i + 1))
		[ $i -lt 500 ] || fail "dirtyd did not answer within 10 s"
		sleep 0.02
	done
}

td_stop() {
	kill -TERM "$TD_PID"
	rc=0
	wait "$TD_PID" || rc=$?
	TD_PID=
	[ $rc -eq 0 ] || fail "dirtyd exited with status $rc on SIGTERM"
}

# check_json FILE PATH WANT [--lines]
check_json() {
	got=$("$JSONCHECK" ${4:-} "$1" "$2") ||
		fail "$1: no $2 in: $(cat "$1")"
	[ "$got" = "$3" ] || fail "$1: $2 is '$got', expected '$3'"
}

# valid_json FILE [--lines]
valid_json() {
	"$JSONCHECK" ${2:-} "$1" || fail "$1 is not valid JSON: $(cat "$1")"
}

# Shared by the client test scripts (sourced; POSIX sh): the real dirtyd
# on the simulated host, in a temporary directory, started by
# tests/harness through dirtyd-harness ($DIRTYD_HARNESS, which CTest sets),
# and small checks.
#
#   td_start "EXTRA CONFIG"   start $DIRTYD (no $NOTIFY_SOCKET, as by
#                             hand), wait until it answers
#   td_restart                SIGTERM (it must exit 0), start again (by
#                             hand: no store, so sessions' state is lost)
#   td_stop                   SIGTERM; it must exit 0
#   check_json FILE PATH WANT assert a value of a JSON document
#   fail MESSAGE              print, show dirtyd's log, exit 1

TD_DIR=$(mktemp -d /tmp/dirtyd-client-sh-XXXXXX)
TD_SOCK=$TD_DIR/dirtyd.sock
TD_PID=
TD_HPID=
TD_NANS=0	# answers the harness gave so far
export DIRTYD_SOCKET="$TD_SOCK"

td_cleanup() {
	if [ -n "$TD_HPID" ]; then
		# dirtyd goes with its harness (PR_SET_PDEATHSIG)
		kill -KILL "$TD_HPID" 2>/dev/null
		wait "$TD_HPID" 2>/dev/null
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

# td_answer N: dirtyd-harness's Nth line of answers (waits up to 60 s).
td_answer() {
	i=0
	while [ "$(wc -l < "$TD_DIR/answers")" -lt "$1" ]; do
		kill -0 "$TD_HPID" 2>/dev/null || break
		i=$((i + 1))
		[ $i -lt 3000 ] || break
		sleep 0.02
	done
	sed -n "$1p" "$TD_DIR/answers"
}

td_start() {
	[ -n "${DIRTYD_HARNESS:-}" ] ||
		fail "DIRTYD_HARNESS is not set (CTest sets it)"
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
	rm -f "$TD_DIR/cmd" "$TD_DIR/answers"
	mkfifo "$TD_DIR/cmd"
	# made here: the harness's own redirection may come after the first
	# td_answer looks (it opens the FIFO first, which waits for fd 9)
	: > "$TD_DIR/answers"
	"$DIRTYD_HARNESS" --dirtyd "$DIRTYD" --config "$TD_DIR/dirtyd.conf" \
		--socket "$TD_SOCK" --log "$TD_DIR/dirtyd.log" --no-notify \
		< "$TD_DIR/cmd" > "$TD_DIR/answers" &
	TD_HPID=$!
	exec 9> "$TD_DIR/cmd"
	TD_NANS=1
	a=$(td_answer 1)
	case $a in
	"ready "*) TD_PID=${a#ready } ;;
	*) fail "dirtyd did not start: ${a:-no answer}" ;;
	esac
	i=0
	while ! "$DIRTYCTL" --socket "$TD_SOCK" devices >/dev/null 2>&1; do
		kill -0 "$TD_PID" 2>/dev/null || fail "dirtyd exited at start"
		i=$((i + 1))
		[ $i -lt 500 ] || fail "dirtyd did not answer within 10 s"
		sleep 0.02
	done
}

# td_send COMMAND: one command to the harness (not in a subshell: it
# counts the answers); then a=$(td_answer $TD_NANS) is its answer.
td_send() {
	echo "$1" >&9
	TD_NANS=$((TD_NANS + 1))
}

td_restart() {
	td_send "kill 15"
	a=$(td_answer $TD_NANS)
	[ "$a" = "exit 0" ] ||
		fail "dirtyd did not exit 0 on SIGTERM (${a:-no answer})"
	td_send start
	a=$(td_answer $TD_NANS)
	case $a in
	"ready "*) TD_PID=${a#ready } ;;
	*) fail "dirtyd did not start again: ${a:-no answer}" ;;
	esac
}

td_stop() {
	td_send stop
	a=$(td_answer $TD_NANS)
	exec 9>&-
	wait "$TD_HPID" 2>/dev/null
	TD_HPID=
	TD_PID=
	[ "$a" = "exit 0" ] ||
		fail "dirtyd did not exit 0 on SIGTERM (${a:-no answer})"
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

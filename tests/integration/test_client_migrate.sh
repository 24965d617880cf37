#!/bin/sh
# dirtyd-migrate against guests dirtyd runs under DMA load: a link faster
# than the device's writes converges in a few rounds; a slower one does not
# and says so; a round longer than --progress-ms reports progress within
# it; a restart of dirtyd under it (by hand: no store) is survived, the
# whole guest copied again.  Its JSON keys are checked against dirtyctl(1)'s vocabulary.
#   test_client_migrate.sh DIRTYD MIGRATE DIRTYCTL JSONCHECK PYTHON
#                          JSONKEYS MANPAGE
set -u
DIRTYD=$1
MIGRATE=$2
DIRTYCTL=$3
JSONCHECK=$4
PYTHON=$5
JSONKEYS=$6
MANPAGE=$7
. "$(dirname "$0")/test_client_lib.sh"

OUT=$TD_DIR/out
ERR=$TD_DIR/err

# a 1 GiB guest written at 20000 pages/s (78 MiB/s); a small one written
# all over, fast
td_start "
[guest big]
device = sim0
size = 1G
iova = 0
dma = uniform
dma_rate = 20000
dma_threads = 1
seed = 7

[guest small]
device = sim1
size = 64M
iova = 0
dma = uniform
dma_rate = 50000
dma_threads = 1
seed = 8
"

"$MIGRATE" --help > "$OUT" || fail "--help"
grep -q "^Usage: dirtyd-migrate" "$OUT" || fail "--help text"
"$MIGRATE" --version | grep -Eq "^dirtyd-migrate [0-9]" || fail "--version"
rc=0
"$MIGRATE" --bandwidth -3 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "a bad bandwidth exits $rc, not 2"

# the guests' domains, by size
"$DIRTYCTL" --json domains > "$OUT" || fail "domains"
big= small=
for i in 0 1; do
	id=$("$JSONCHECK" "$OUT" ".domains[$i].domain")
	case $("$JSONCHECK" "$OUT" ".domains[$i].mapped_bytes") in
	1073741824) big=$id ;;
	67108864) small=$id ;;
	esac
done
[ -n "$big" ] && [ -n "$small" ] || fail "the guests are not there: $(cat "$OUT")"

# 400 MiB/s: round 1 takes 2.5 s, then the rounds shrink by ~5x each
rc=0
"$MIGRATE" --domain "$big" --bandwidth 400 --max-downtime-ms 300 --json \
	> "$OUT" 2> "$ERR" || rc=$?
cat "$OUT"
[ $rc -eq 0 ] || fail "migrate exited $rc: $(cat "$ERR")"
valid_json "$OUT" --lines
cp "$OUT" "$TD_DIR/json.all"
check_json "$OUT" .type start "--line 1"
check_json "$OUT" .domain "$big" "--line 1"
# round 1 copies 1 GiB in 2.5 s: progress at 1 s and 2 s, then the round
check_json "$OUT" .type progress "--line 2"
check_json "$OUT" .round 1 "--line 2"
check_json "$OUT" .round_pages 262144 "--line 2"
n=$(grep -n '"type":"round"' "$OUT" | head -n 1 | cut -d: -f1)
[ -n "$n" ] || fail "no round"
[ "$(grep -c '"type":"progress","round":1,' "$OUT")" -eq $((n - 2)) ] ||
	fail "round 1: not $((n - 2)) progress lines before it"
[ "$n" -ge 3 ] || fail "round 1 (2.5 s): no progress line"
check_json "$OUT" .copied_pages 262144 "--line $n"
check_json "$OUT" .round 1 "--line $n"
check_json "$OUT" .type summary --lines
check_json "$OUT" .converged true --lines
rounds=$("$JSONCHECK" --lines "$OUT" .rounds)
[ "$rounds" -ge 2 ] || fail "converged in $rounds rounds: the load did not dirty?"
[ "$rounds" -lt 30 ] || fail "$rounds rounds"
downtime=$("$JSONCHECK" --lines "$OUT" .downtime_ms)
awk -v d="$downtime" 'BEGIN { exit !(d < 1000) }' ||
	fail "downtime $downtime ms"

# 20 MiB/s against 50000 pages/s over 16384 pages: every page is dirty
# again after every round (3.2 s, 160,000 writes)
rc=0
"$MIGRATE" --domain "$small" --bandwidth 20 --max-rounds 2 \
	--max-downtime-ms 50 > "$OUT" 2> "$ERR" || rc=$?
cat "$OUT"
[ $rc -eq 3 ] || fail "non-convergence exited $rc: $(cat "$ERR")"
grep -Eq "^ +1 +16384 +64\.0 " "$OUT" || fail "round 1 is not the whole guest"
# 3.2 s a round: progress within each, for people too
grep -Eq "^  round 1: [0-9]+ of 16384 pages copied \([0-9]+ %\), 1\.[0-9] s$" "$OUT" ||
	fail "no progress within round 1"
grep -q "^summary: did not converge after 2 rounds" "$OUT" ||
	fail "no summary"
grep -q "converged: no" "$OUT" || fail "no 'converged: no'"

# without --domain: the first domain with tracking on (big, created first)
rc=0
"$MIGRATE" --max-downtime-ms 1000 > "$OUT" 2> "$ERR" || rc=$?
cat "$OUT"
[ $rc -eq 0 ] || fail "migrate (default domain) exited $rc: $(cat "$ERR")"
grep -q "^migrating domain $big:" "$OUT" || fail "not domain $big"
grep -q "converged: yes" "$OUT" || fail "no 'converged: yes'"

# dirtyd restarts in round 1 (no store: the session's state is lost): the
# migration reconnects, says so, copies the whole guest again, converges
rc=0
"$MIGRATE" --domain "$big" --bandwidth 400 --max-downtime-ms 300 --json \
	> "$OUT" 2> "$ERR" &
mpid=$!
sleep 1
td_restart
wait $mpid || rc=$?
cat "$OUT"
[ $rc -eq 0 ] || fail "migrate across a restart exited $rc: $(cat "$ERR")"
valid_json "$OUT" --lines
cat "$OUT" >> "$TD_DIR/json.all"
[ "$(grep -c '"type":"reconnect"' "$OUT")" -eq 1 ] ||
	fail "not one reconnect record"
n=$(grep -n '"type":"reconnect"' "$OUT" | cut -d: -f1)
check_json "$OUT" .state_lost true "--line $n"
check_json "$OUT" .resumed false "--line $n"
# the round after the reconnection (whenever the restart fell: the
# machine may be slow) copies all 262144 pages again
tail -n +"$n" "$OUT" | grep '"type":"round"' | head -n 1 |
	grep -q '"copied_pages":262144,' ||
	fail "the round after the reconnection did not copy the whole guest again"
check_json "$OUT" .reconnects 1 --lines
check_json "$OUT" .converged true --lines
"$DIRTYCTL" --json domains > "$TD_DIR/doms" || fail "domains after restart"
[ "$("$JSONCHECK" "$TD_DIR/doms" ".domains[0].domain")" = "$big" ] ||
	fail "after the restart the big guest is not domain $big"

# no daemon: a hint
rc=0
"$MIGRATE" --socket "$TD_DIR/none.sock" > "$OUT" 2> "$ERR" || rc=$?
[ $rc -eq 1 ] || fail "no daemon: exit $rc"
grep -q "^hint: no socket at $TD_DIR/none.sock: is dirtyd running" "$ERR" ||
	fail "no hint: $(cat "$ERR")"

td_stop
"$PYTHON" "$JSONKEYS" "$MANPAGE" "$TD_DIR/json.all" ||
	fail "dirtyd-migrate printed JSON keys outside the vocabulary"
echo "dirtyd-migrate: all checks passed"

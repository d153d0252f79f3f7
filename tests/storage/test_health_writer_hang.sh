#!/usr/bin/env bash
# test_health_writer_hang.sh STO SHIM -- data-storage's /health answers while the SQLite
# writer's commit hangs in the disk, and recovers when the disk does. /health reads the
# store's figures under the connection's lock, which the writer thread holds for a whole
# transaction: a build that waits for that lock does not answer /health at all while a
# commit hangs (seen: curl got no answer, 000). Here the first write to the WAL after
# arming hangs (fault_shim, HOMEIQ_FAULT_STALL_UNTIL: until a file appears); /health must
# answer, turn 503 sqlite_writer_stalled once the transaction has run
# SQLITE_WRITER_STALL_MS, keep the last retention figures (marked stale); a read is answered
# 503 instead of holding the loop; all is healthy with current figures again after the
# disk resumes and the batch is answered 200. PURGE_INTERVAL_MS=50: retention ticks come during
# the hang and must not wait for the connection either (seen: with the tick's skip removed,
# /health and the read got no answer).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/sensor_batch.sh"
STO=${1:?}; SHIM=${2:?}
PORT=$(free_port)
U="http://127.0.0.1:$PORT"
ARM=$TEST_TMP/arm RELEASE=$TEST_TMP/release
N=20

post() { # post NAME -> the HTTP status
  sensor_batch "hang_$1" $N >"$TEST_TMP/$1.json"
  curl -s -o "$TEST_TMP/$1.out" -w '%{http_code}' --max-time 120 -XPOST -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/$1.json" "$U/api/v1/events"
}
health() { # health -> the status code; the body in $TEST_TMP/health.json ("000": no answer in 20 s)
  rm -f "$TEST_TMP/health.json"
  curl -s -o "$TEST_TMP/health.json" -w '%{http_code}' --max-time 20 "$U/health"
}
hjq() { jq -e "$1" "$TEST_TMP/health.json" >/dev/null; }

start_bg storage env LD_PRELOAD="$SHIM" HOMEIQ_FAULT="write:events.db-wal:1:stall" HOMEIQ_FAULT_ARM="$ARM" \
  HOMEIQ_FAULT_STALL_UNTIL="$RELEASE" SQLITE_WRITER_STALL_MS=1000 PURGE_INTERVAL_MS=50 DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT "$STO"
STO_PID=$LAST_PID
wait_healthy "$U/health" 30 || exit 1
check_eq "a batch before the hang is answered 200" "200" "$(post before)"
check_eq "/health before the hang: 200" "200" "$(health)"
check "... with current retention figures (not stale)" hjq '.backend.retention and (.backend.stale | not)'

touch "$ARM" # from now on, the first write to events.db-wal hangs until $RELEASE exists
post during >"$TEST_TMP/during.code" &
POST_PID=$!
fired() { grep -q "fault_shim: write(.*events.db-wal) stalls" "$TEST_TMP/storage.log"; }
check "the WAL's write hangs in a commit" wait_for 30 fired
code=$(health)
echo "# /health during the hang: HTTP $code: $(cat "$TEST_TMP/health.json" 2>/dev/null)"
check "/health answers while the commit hangs (got $code)" test "$code" = 200 -o "$code" = 503
stalled() { # 0 once 503 sqlite_writer_stalled, or once /health gave no answer (no use waiting then)
  local c; c=$(health)
  [ "$c" = 000 ] || { [ "$c" = 503 ] && hjq '.reason == "sqlite_writer_stalled"'; }
}
wait_for 30 stalled
check "/health turns 503 sqlite_writer_stalled once the transaction ran SQLITE_WRITER_STALL_MS" \
  hjq '.reason == "sqlite_writer_stalled"'
check "... with the last retention figures, marked stale, and how long the writer is busy" \
  hjq '.backend.retention and .backend.stale == true and .backend.writer.busy_ms >= 1000'
rcode=$(curl -s -o "$TEST_TMP/read.json" -w '%{http_code}' --max-time 20 "$U/api/v1/events?limit=1")
check_eq "a read while the commit hangs is answered 503, not held (the loop stays free)" 503 "$rcode"
check "... saying why" grep -q "sqlite writer busy" "$TEST_TMP/read.json"
check_eq "... and /health still answers after it" 503 "$(health)"
check "the batch in the hung commit is not answered yet" test ! -s "$TEST_TMP/during.code"

touch "$RELEASE" # the disk resumes
wait "$POST_PID"
check_eq "the batch in the hung commit is answered 200 once the disk resumes" "200" "$(cat "$TEST_TMP/during.code")"
healthy() { [ "$(health)" = 200 ] && hjq '.status == "healthy" and (.backend.stale | not) and .backend.writer.busy_ms == 0'; }
check "/health is 200 again, with current figures" wait_for 30 healthy
n=0; for i in $(seq 1 $N); do n=$((n + $(curl -s "$U/api/v1/events?entity_id=sensor.hang_during_$i&limit=10" | jq .count))); done
check_eq "all $N of its events are stored" "$N" "$n"
check "storage exits cleanly" stop_pid "$STO_PID"
finish

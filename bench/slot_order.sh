#!/usr/bin/env bash
# bench/slot_order.sh -- two large POSTs at once on InfluxDB (one piece slot):
# does the first finish first, and what does storage spend per event?
#
# Why: a POST is committed in pieces of STORAGE_PIECE_BYTES and InfluxDB gets one
# piece at a time (storage_post.c). If a finished piece lets the next waiting POST
# in before the request under way takes its next step, two large requests
# alternate pieces and the first is answered only when both are nearly done.
# Measured as counts, not times (the machine is shared): of the second POST's
# events, how many were committed before the first POST's answer; and storage's
# CPU per event (utime+stime from /proc/PID/stat) for the whole run.
#
# For each binary given (old and new, alternating ROUNDS times): a fresh influxd
# database, POST A (A_EVENTS events), then POST B (B_EVENTS events, each padded to
# more than a piece, so one event per piece) once A is under way (/health
# pending_requests), both answered; the storage log (LOG_LEVEL=debug) gives the
# order pieces were committed in ("batch: N stored", B's are "1 stored").
#
# Use: bench/slot_order.sh OLD_BIN NEW_BIN   (A_EVENTS=2000 B_EVENTS=200 ROUNDS=2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A_EVENTS=${A_EVENTS:-2000}
B_EVENTS=${B_EVENTS:-200}
ROUNDS=${ROUNDS:-2}
. "$ROOT/tests/lib/common.sh"
. "$ROOT/tests/lib/influxd.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS
[ $# -gt 0 ] || { echo "usage: bench/slot_order.sh BIN [BIN ...]" >&2; exit 2; }
TCK=$(getconf CLK_TCK)
influxd_start || exit 1

gen=$ROOT/tests/storage/gen_events.jq
jq -nc --argjson n "$A_EVENTS" --argjson from 0 -f "$gen" | jq -c '{events: .}' >"$TEST_TMP/a.json"
jq -nc --argjson n "$B_EVENTS" --argjson from 500000 -f "$gen" |
  jq -c --arg pad "$(printf '%05000d' 0)" '{events: map(.attributes.pad = $pad)}' >"$TEST_TMP/b.json"

run_one() { # BIN NAME
  local bin=$1 name=$2 port u pid t0 t1 log pending
  port=$(free_port); u=http://127.0.0.1:$port
  log=$TEST_TMP/$name.log
  STORAGE_BACKEND=influxdb INFLUXDB_DATABASE="slot_$name" STORAGE_PIECE_BYTES=4096 LOG_LEVEL=debug \
    DATA_STORAGE_PORT=$port DATA_DIR="$TEST_TMP/$name" "$bin" >"$log" 2>&1 &
  pid=$!
  wait_healthy "$u/health" 30 "$pid" || { echo "$name: storage did not start" >&2; return 1; }
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  curl -s -o /dev/null -XPOST "$u/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/a.json" &
  local ca=$!
  pending() { [ "$(curl -s "$u/health" | jq .pending_requests)" = "$1" ]; }
  wait_for 30 pending 1
  curl -s -o /dev/null -XPOST "$u/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/b.json" &
  local cb=$!
  wait_for 30 pending 2 || echo "$name: B arrived after A was answered" >&2
  wait "$ca" "$cb"
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" || true
  # B's events committed before A's last piece: the "1 stored" lines before the last line with more
  sed -n 's/.*batch: \([0-9]*\) stored.*/\1/p' "$log" |
    awk -v name="$name" -v cpu=$((t1 - t0)) -v tck="$TCK" -v n=$((A_EVENTS + B_EVENTS)) '
      { c[NR] = $1; if ($1 > 1) lastA = NR }
      END { b = 0; for (i = 1; i <= lastA; i++) if (c[i] == 1) b++
            printf "%-4s B events committed before A answered: %d   pieces: %d   storage CPU: %.1f us/event\n",
                   name, b, NR, cpu / tck * 1e6 / n }'
}

echo "# slot_order: A=$A_EVENTS events, B=$B_EVENTS (one per piece), STORAGE_PIECE_BYTES=4096, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  k=0
  for bin in "$@"; do
    k=$((k + 1))
    run_one "$bin" "b${k}r$r"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

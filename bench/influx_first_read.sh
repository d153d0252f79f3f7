#!/usr/bin/env bash
# bench/influx_first_read.sh -- the first entity list and stats after a
# data-storage restart on InfluxDB, with the entity summary (homeiq_summary,
# docs/INFLUX_READS.md: one point per entity) and without it (the one scan of
# every event a store written by an earlier version gets), back to back on
# the same store, so load distorts both alike. Measured, not asserted.
#   BENCH_FIRST_EVENTS (200,000) events over BENCH_FIRST_ENTITIES (500)
#   entities, posted through data-storage's API in batches of 5,000; then
#   BENCH_FIRST_RUNS (3) restarts each way; curl's total time of the first
#   GET /api/v1/entities and GET /api/v1/stats after each restart, plus
#   data-storage's CPU time (utime+stime from /proc) for the restart and the
#   two reads, which load changes much less than wall time.
# Use: bench/influx_first_read.sh (BUILD=build). Results printed and written
#      to bench/results/influx-first-read-<time>.json.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
. "$ROOT/tests/lib/common.sh"
. "$ROOT/tests/lib/influxd.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS
STO=$BUILD/services/data-storage/homeiq-data-storage
N=${BENCH_FIRST_EVENTS:-200000} NENT=${BENCH_FIRST_ENTITIES:-500} RUNS=${BENCH_FIRST_RUNS:-3}
export STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=first LOG_LEVEL=warn DATA_DIR=$TEST_TMP/data
mkdir -p "$DATA_DIR"
say() { printf '[bench-first %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
influxd_start || exit 1
PORT=$(free_port) U=http://127.0.0.1:$PORT
start() { DATA_STORAGE_PORT=$PORT start_bg storage "$STO"; wait_healthy "$U/health" 60; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
start || exit 1
say "posting $N events over $NENT entities"
/usr/bin/python3 - "$N" "$NENT" "$(date +%s)" "$U" <<'PY' || exit 1
import json, sys, datetime, urllib.request
n, nent, now, url = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ts = lambda us: datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
t0 = (now - 86400) * 1000000
for k in range(0, n, 5000):
    evs = [{"event_type": "state_changed", "entity_id": f"sensor.first_{i % nent}", "time_fired": ts(t0 + i * 20000),
            "context_id": f"first-{i}", "state": str(i % 50), "value": float(i % 50)} for i in range(k, min(n, k + 5000))]
    req = urllib.request.Request(url + "/api/v1/events", json.dumps(evs).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        assert json.load(r)["stored"] == len(evs)
PY
sleep 2   # the summary write held back by its one-second throttle
TRUTH=$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=first --data-urlencode 'q=SELECT count(event_id) FROM home_assistant_events' | jq '.results[0].series[0].values[0][1]')
say "stored: $TRUTH events (InfluxDB's count)"
iql() { curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=first --data-urlencode "q=$1" >/dev/null; }
measure() { # measure LABEL: RUNS restarts, the first two reads after each; JSON to $TEST_TMP/LABEL.json
  local i out=()
  for ((i = 0; i < RUNS; i++)); do
    stop_pid "$PID_storage"
    [ "$1" = scan ] && { iql 'DROP MEASUREMENT homeiq_summary'; iql 'DROP MEASUREMENT homeiq_totals'; }
    start || exit 1
    local c0 e s total c1
    c0=$(cpu "$PID_storage")
    e=$(curl -s -o "$TEST_TMP/e.json" -w '%{time_total}' "$U/api/v1/entities?limit=10000")
    s=$(curl -s -o "$TEST_TMP/s.json" -w '%{time_total}' "$U/api/v1/stats")
    total=$(jq .events_total "$TEST_TMP/s.json")
    c1=$(cpu "$PID_storage")
    [ "$total" = "$TRUTH" ] || say "$1: events_total $total != $TRUTH"
    out+=("$(awk -v e="$e" -v s="$s" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v n="$(jq .count "$TEST_TMP/e.json")" \
      'BEGIN {printf "{\"entities_ms\":%.1f,\"stats_ms\":%.1f,\"cpu_ms\":%.0f,\"entities\":%d}", e * 1000, s * 1000, c * 1000 / hz, n}')")
    sleep 2   # after the scan: the summary is written again for the next run
  done
  local IFS=,
  echo "[${out[*]}]" >"$TEST_TMP/$1.json"
}
measure summary   # in this shell, not $(...): it restarts data-storage and must keep its pid
measure scan
SUMMARY=$(cat "$TEST_TMP/summary.json") SCAN=$(cat "$TEST_TMP/scan.json")
say "with the summary: $SUMMARY"
say "scan (no summary): $SCAN"
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/influx-first-read-$(date -u +%Y%m%dT%H%M%SZ).json
jq -n --argjson n "$TRUTH" --argjson sum "$SUMMARY" --argjson scan "$SCAN" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{events: $n, entities: ($sum[0].entities), load_average: $load, with_summary: $sum, scan_without_summary: $scan}' | tee "$OUT"
stop_pid "$PID_storage"

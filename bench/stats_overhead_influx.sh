#!/usr/bin/env bash
# bench/stats_overhead_influx.sh -- what long-term statistics cost per event on
# the InfluxDB backend (stats_influx.c: two queries and two writes per batch,
# before the batch is acknowledged).
#
# The same house as bench/stats_overhead.sh (tests/storage/stats_series.py
# house, DAYS days ending now, posted in time order in batches of BATCH), to a
# throw-away influxd, with STATISTICS=1 and STATISTICS=0 (one database each):
# wall time per event, the difference, and the time inside the statistics
# step per event (/health -> backend.statistics.update_us).
#
# Use: bench/stats_overhead_influx.sh [path/to/homeiq-data-storage]   DAYS=1 BATCH=100
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
. "$root/tests/lib/influxd.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
DAYS=${DAYS:-1}
BATCH=${BATCH:-100}
influxd_start || exit 1
mkdir -p "$TEST_TMP/h"
N=$(python3 "$root/tests/storage/stats_series.py" house "$(date +%s)" "$DAYS" "$BATCH" "$TEST_TMP/h")
echo "# $N events, $DAYS days of a 60-entity house, batches of $BATCH, InfluxDB $(influxd version 2>/dev/null | cut -d' ' -f2)"
for on in 1 0; do
  port=$(free_port)
  STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=bench$on DATA_STORAGE_PORT=$port LOG_LEVEL=warn STATISTICS=$on INFLUXDB_STATISTICS=$on \
    INFLUXDB_PING_INTERVAL_MS=200 start_bg "storage-$on" "$BIN"
  pid=$LAST_PID
  wait_healthy "http://127.0.0.1:$port/health" 30 || exit 1
  args=()
  for f in "$TEST_TMP"/h/h_*.json; do
    args+=(-o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json' --data-binary @"$f"
           "http://127.0.0.1:$port/api/v1/events" --next)
  done
  unset 'args[${#args[@]}-1]'
  t0=$(date +%s.%N)
  codes=$(curl -s "${args[@]}" | sort | uniq -c | tr '\n' ' ')
  t1=$(date +%s.%N)
  wall[$on]=$(echo "($t1 - $t0) * 1000000 / $N" | bc -l)
  curl -s "http://127.0.0.1:$port/health" >"$TEST_TMP/health$on.json"
  upd[$on]=$(jq '.backend.statistics.update_us // 0' "$TEST_TMP/health$on.json")
  stop_pid "$pid"
  printf 'STATISTICS=%s: %7.1f us/event wall (HTTP %s)\n' "$on" "${wall[$on]}" "$codes"
done
printf 'statistics: %.1f us/event wall difference, %.1f us/event inside the statistics step\n' \
  "$(echo "${wall[1]} - ${wall[0]}" | bc -l)" "$(echo "${upd[1]} / $N" | bc -l)"
jq -c '.backend.statistics' "$TEST_TMP/health1.json"
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

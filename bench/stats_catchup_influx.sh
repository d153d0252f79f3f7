#!/usr/bin/env bash
# bench/stats_catchup_influx.sh -- what the InfluxDB statistics catch-up
# (stats_influx_catchup.h) costs: history stored with STATISTICS=0, then
# data-storage restarted with statistics on, timed from its start until
# /health says the pass is done.
#
# Generates DAYS days of the 60-entity house (tests/storage/stats_series.py
# house, ~52,000 events a day), posts them in time order in batches of BATCH
# with STATISTICS=0 into a throw-away influxd, restarts data-storage with
# statistics on and prints: CPU time per event of data-storage and of influxd
# over the pass (/proc/PID/stat utime+stime), events per second of wall time
# (meaningless on a busy machine: the load average is printed beside it), the
# steps (chunks) and rows written, and the load average.
#
# Use: bench/stats_catchup_influx.sh [path/to/homeiq-data-storage]
#      DAYS=4 (~207,000 events) BATCH=1000 PURGE_STEP_MS=20 (the default pace)
#      STATISTICS_CATCHUP_CHUNK=500
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
DAYS=${DAYS:-4}
BATCH=${BATCH:-1000}
. "$root/tests/lib/influxd.sh"
influxd_start || exit 1
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, clock ticks
HZ=$(getconf CLK_TCK)
mkdir -p "$TEST_TMP/h"
N=$(python3 "$root/tests/storage/stats_series.py" house "$(date +%s)" "$DAYS" "$BATCH" "$TEST_TMP/h")
echo "# $N events, $DAYS days of a 60-entity house, batches of $BATCH, stored with STATISTICS=0"
export STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=bench_cu INFLUXDB_PING_INTERVAL_MS=200 LOG_LEVEL=warn
port=$(free_port); U=http://127.0.0.1:$port
start_bg storage-off env DATA_STORAGE_PORT=$port STATISTICS=0 "$BIN"
wait_healthy "$U/health" 30 || exit 1
codes=$(for f in "$TEST_TMP"/h/h_*.json; do   # one curl per batch: the storing is not what is measured
  curl -s -o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json' --data-binary @"$f" "$U/api/v1/events"
done | sort | uniq -c | tr '\n' ' ')
echo "# stored: HTTP $codes"
stop_pid "$LAST_PID"

port=$(free_port); U=http://127.0.0.1:$port
i0=$(cpu_ticks "$INFLUXD_PID"); t0=$(date +%s.%N)
start_bg storage-on env DATA_STORAGE_PORT=$port PURGE_STEP_MS=${PURGE_STEP_MS:-20} "$BIN"
pid=$LAST_PID
wait_healthy "$U/health" 30 || exit 1
load0=$(cut -d' ' -f1-3 /proc/loadavg)
done_() { curl -s "$U/health" | jq -e '.backend.retention.statistics_catchup.done' >/dev/null; }
until done_; do sleep 0.5; done
t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); i1=$(cpu_ticks "$INFLUXD_PID")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cu=$(curl -s "$U/health" | jq -c '.backend.retention.statistics_catchup | del(.current, .last_error)')
stop_pid "$pid"
printf 'catch-up of %d events: %.1f us/event CPU of data-storage, %.1f us/event of influxd; %.0f events/s wall (%.1f s)\n' \
  "$N" "$(echo "$c1 * 1000000 / $HZ / $N" | bc -l)" "$(echo "($i1 - $i0) * 1000000 / $HZ / $N" | bc -l)" \
  "$(echo "$N / ($t1 - $t0)" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
echo "# /health: $cu"
echo "# machine: $(nproc) cores, load $load0 at the start, $load1 at the end, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

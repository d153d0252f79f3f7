#!/usr/bin/env bash
# bench/storage_insert.sh -- batch-insert throughput of homeiq-data-storage.
#
# Starts the real binary (and, for influxdb, a throw-away influxd), posts
# EVENTS generated records (tests/storage/gen_events.jq: realistic, with
# awkward strings and attributes) in batches of BATCH over one keep-alive
# connection, and prints events/s for each backend. Each POST is answered
# only after the durable commit, so this is committed throughput.
#
# Use: bench/storage_insert.sh [path/to/homeiq-data-storage]
#      BACKENDS="sqlite influxdb" EVENTS=20000 BATCH=1000 (defaults)
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$root/tests/lib/influxd.sh"
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
EVENTS=${EVENTS:-20000}
BATCH=${BATCH:-1000}
BACKENDS=${BACKENDS:-sqlite influxdb}

nb=$((EVENTS / BATCH))
echo "# generating $EVENTS events in $nb batches of $BATCH"
jq -nc --argjson n "$EVENTS" --argjson from 0 -f "$root/tests/storage/gen_events.jq" > "$TEST_TMP/all.json"
for ((k = 0; k < nb; k++)); do
  jq -c --argjson k $k --argjson b "$BATCH" '{events: .[$k*$b:($k+1)*$b]}' "$TEST_TMP/all.json" > "$TEST_TMP/b$k.json"
done
bytes=$(cat "$TEST_TMP"/b*.json | wc -c)

for backend in $BACKENDS; do
  [ "$backend" = influxdb ] && { influxd_start || exit 1; }
  port=$(free_port)
  STORAGE_BACKEND=$backend DATA_DIR=$TEST_TMP/data-$backend DATA_STORAGE_PORT=$port LOG_LEVEL=warn \
    start_bg "storage-$backend" "$BIN"
  pid=$LAST_PID
  wait_healthy "http://127.0.0.1:$port/health" 30 || exit 1
  args=()
  for ((k = 0; k < nb; k++)); do
    args+=(-o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json'
           --data-binary @"$TEST_TMP/b$k.json" "http://127.0.0.1:$port/api/v1/events")
    (( k < nb - 1 )) && args+=(--next)
  done
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")   # storage's user+system CPU, in clock ticks
  t0=$(date +%s.%N)
  codes=$(curl -s "${args[@]}" | sort | uniq -c | tr '\n' ' ')
  t1=$(date +%s.%N)
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  secs=$(echo "$t1 - $t0" | bc -l)
  cpu_us=$(echo "($cpu1 - $cpu0) * 1000000 / $(getconf CLK_TCK) / $EVENTS" | bc -l)
  printf '%-9s %6d events, batch %5d: %6.2f s, %8.0f events/s, storage CPU %5.1f us/event  (%s; %d request bytes)\n' \
    "$backend" "$EVENTS" "$BATCH" "$secs" "$(echo "$EVENTS / $secs" | bc -l)" "$cpu_us" "HTTP: $codes" "$bytes"
  stop_pid "$pid"
  [ "$backend" = influxdb ] && influxd_stop
done
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
exit 0   # the EXIT trap cleans up; finish would count "no check ran" as a failure

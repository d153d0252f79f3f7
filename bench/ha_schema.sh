#!/usr/bin/env bash
# bench/ha_schema.sh -- burst throughput of the InfluxDB backend on both
# schemas: INFLUXDB_SCHEMA=homeiq (HomeIQ's measurement) and homeassistant
# (the points HA's InfluxDB integration writes).
#
# Real processes on loopback, as bench/run: the HA simulator in load mode ->
# websocket-ingestion -> enrichment-pipeline -> data-storage -> a throw-away
# influxd. bench/run's latency tool reads GET /api/v1/events, which the
# homeassistant schema answers 501 for state_changed events, so this script
# times the burst from /metrics instead: from resuming the simulator until
# data-storage has acknowledged every event (stored + skipped as HA skips
# them + rejected), polled every 0.1 s. Runs alternate between the schemas.
#
# Use: bench/ha_schema.sh [COUNT] [RUNS]   (defaults 100000, 1; BUILD=build dir)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
COUNT=${1:-100000}
RUNS=${2:-1}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$ROOT/tests/lib/influxd.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=warn
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator
ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
STO=$BUILD/services/data-storage/homeiq-data-storage

metrics_sum() { # metrics_sum URL REGEX -> sum of the matching series
  curl -s "$1/metrics" | awk -v re="$2" '$1 ~ re { s += $2 } END { printf "%d\n", s + 0 }'
}

run() { # run SCHEMA -> prints "SCHEMA events/s seconds acked"
  local schema=$1 dir
  dir=$(mktemp -d "$TEST_TMP/run.XXXXXX")
  local ps pi pe po
  ps=$(free_port); pi=$(free_port); pe=$(free_port); po=$(free_port)
  start_bg "sim-$schema" env SIMULATOR_PORT=$ps "$SIM" --rate 1000000 --count "$COUNT" --seed 42
  local sim=$LAST_PID
  wait_http "http://127.0.0.1:$ps/health" 10
  curl -s -X POST "http://127.0.0.1:$ps/api/sim/pause" >/dev/null
  start_bg "sto-$schema" env STORAGE_BACKEND=influxdb INFLUXDB_SCHEMA="$schema" INFLUXDB_URL="$INFLUXDB_URL" \
    INFLUXDB_DATABASE="bench_${schema}_$RANDOM" DATA_STORAGE_PORT=$po "$STO"
  local sto=$LAST_PID
  start_bg "enr-$schema" env ENRICHMENT_PIPELINE_PORT=$pe DATA_STORAGE_URL="http://127.0.0.1:$po" "$ENR"
  local enr=$LAST_PID
  start_bg "ing-$schema" env WEBSOCKET_INGESTION_PORT=$pi DATA_DIR="$dir/ingestion" \
    ENRICHMENT_PIPELINE_URL="http://127.0.0.1:$pe" HOME_ASSISTANT_URL="http://127.0.0.1:$ps" \
    HOME_ASSISTANT_TOKEN=homeiq-simulator-token "$ING"
  local ing=$LAST_PID
  for p in $po $pe $pi; do wait_healthy "http://127.0.0.1:$p/health" 30; done
  sleep 1
  local t0 t1 acked=0
  t0=$(date +%s.%N)
  curl -s -X POST "http://127.0.0.1:$ps/api/sim/resume" >/dev/null
  while (( acked < COUNT )); do
    sleep 0.1
    acked=$(metrics_sum "http://127.0.0.1:$po" \
      '^homeiq_storage_(events_stored_total|rejected_total|ha_points_total[{]result="(removed|unknown|unavailable|empty_state|excluded)")')
    if awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { exit !(a - b > 600) }'; then echo "timeout: $acked of $COUNT" >&2; break; fi
  done
  t1=$(date +%s.%N)
  local written
  written=$(metrics_sum "http://127.0.0.1:$po" '^homeiq_storage_ha_points_total[{]result="written"')
  for pid in $ing $enr $sto $sim; do stop_pid "$pid" || true; done
  awk -v s="$schema" -v n="$acked" -v a="$t0" -v b="$t1" -v w="$written" 'BEGIN { printf "%s %d %.2f %d %d\n", s, n / (b - a), b - a, n, w }'
}

influxd_start 60
echo "# schema events/s seconds acknowledged ha_points_written   ($COUNT events per run, $(nproc) cores)"
for ((r = 0; r < RUNS; r++)); do
  run homeiq
  run homeassistant
done
influxd_stop

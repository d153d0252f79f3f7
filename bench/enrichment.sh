#!/usr/bin/env bash
# bench/enrichment.sh -- throughput and CPU cost of enrichment-pipeline.
#
# Starts a real data-storage (SQLite in a temp dir) and enrichment-pipeline on
# free loopback ports, posts BATCHES batches of BATCH_SIZE real-shaped HA events
# (the ten examples of ha-websocket-protocol.md §2 in their WebSocket envelopes,
# ~1 KB each, every event with its own entity id so storage stores them all)
# over one kept-alive curl connection, one batch after the other, and reports:
#   events/s end to end (client -> enrichment -> storage commit -> answer),
#   enrichment's CPU per event (user+system from /proc/<pid>/stat),
#   storage's CPU per event, for comparison.
# Usage: bench/enrichment.sh [BUILD_DIR]   (default build/; env BATCHES, BATCH_SIZE)
# REGISTRY=1: every event carries websocket-ingestion's registry context (issue 11, the
# simulated house's shape), to compare enrichment's CPU per event with and without it.
# SPACED=1: the same events with a space after every ':' and ',' (json.dumps' default
# spacing, bench/json_spaced.py); bench/whitespace.sh runs both and prints the ratio.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
ENRICH=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
STORAGE=$BUILD/services/data-storage/homeiq-data-storage
BATCHES=${BATCHES:-50} BATCH_SIZE=${BATCH_SIZE:-1000} REGISTRY=${REGISTRY:-0} SPACED=${SPACED:-0}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
set +u

SPORT=$(free_port); EPORT=$(free_port)
while [ "$EPORT" = "$SPORT" ]; do EPORT=$(free_port); done
start_bg storage env DATA_STORAGE_PORT=$SPORT DATA_DIR="$TEST_TMP/data" MAX_BATCH=$BATCH_SIZE "$STORAGE"
SPID=$LAST_PID
start_bg enrichment env TZ=Europe/Amsterdam ENRICHMENT_PIPELINE_PORT=$EPORT \
  DATA_STORAGE_URL=http://127.0.0.1:$SPORT MAX_BATCH=$BATCH_SIZE LOG_LEVEL=warn "$ENRICH"
EPID=$LAST_PID
wait_healthy "http://127.0.0.1:$SPORT/health" 20
wait_healthy "http://127.0.0.1:$EPORT/health" 20

echo "generating $BATCHES batches of $BATCH_SIZE events..."
jq -c --argjson nb "$BATCHES" --argjson n "$BATCH_SIZE" --argjson reg "$REGISTRY" \
  '{area_id:"kitchen",area:"Kitchen",floor_id:"ground_floor",floor:"Ground floor",
    device_id:"44fe6f4f338d2d654a276b046d0c8276",device:"Kitchen climate",manufacturer:"Aqara",
    model:"Temperature and Humidity Sensor (WSDCGQ11LM)",labels:["battery"],platform:"zha",entity_category:null} as $ctx
   | . as $ex | range(1; $nb + 1) as $b | [range(0; $n) as $j | $ex[$j % 10] | .event.data.entity_id += "_\($b)_\($j)"
     | if $reg == 1 then .event.homeiq_registry = $ctx else . end]' \
  "$ROOT/tests/enrichment/data/ha_examples.json" | split -l 1 -a 5 - "$TEST_TMP/b."
if [ "$SPACED" = 1 ]; then
  for f in "$TEST_TMP"/b.*; do python3 "$HERE/json_spaced.py" <"$f" >"$f.s" && mv "$f.s" "$f"; done
fi
args=()
for f in "$TEST_TMP"/b.*; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json'
         --data-binary @"$f" "http://127.0.0.1:$EPORT/api/v1/events")
done
bytes=$(cat "$TEST_TMP"/b.* | wc -c)

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
e0=$(cpu_ticks "$EPID"); s0=$(cpu_ticks "$SPID"); t0=$(date +%s.%N)
curl "${args[@]}" >"$TEST_TMP/codes"
t1=$(date +%s.%N); e1=$(cpu_ticks "$EPID"); s1=$(cpu_ticks "$SPID")

ok=$(grep -c '^200$' "$TEST_TMP/codes" || true)
events=$((BATCHES * BATCH_SIZE))
stored=$(curl -s "http://127.0.0.1:$EPORT/metrics" | awk '/^homeiq_enrichment_events_stored_total/ { print $2 }')
awk -v n="$events" -v t0="$t0" -v t1="$t1" -v e="$((e1 - e0))" -v s="$((s1 - s0))" -v tck="$tck" \
    -v ok="$ok" -v nb="$BATCHES" -v bs="$BATCH_SIZE" -v bytes="$bytes" -v stored="$stored" \
    -v spc="$([ "$SPACED" = 1 ] && echo spaced || echo compact)" 'BEGIN {
  wall = t1 - t0
  printf "batches: %d x %d events (%.0f bytes/event, %s), %d answered 200, storage stored %d\n", nb, bs, bytes / n, spc, ok, stored
  printf "wall: %.2f s -> %.0f events/s end to end (enrichment + storage commit)\n", wall, n / wall
  printf "enrichment CPU: %.2f s -> %.1f us/event (%.0f events/s per core)\n", e / tck, e / tck * 1e6 / n, n / (e / tck)
  printf "storage CPU:    %.2f s -> %.1f us/event\n", s / tck, s / tck * 1e6 / n
}' >"$TEST_TMP/summary"
curl -s "http://127.0.0.1:$EPORT/metrics" | grep -E '^homeiq_enrichment_stage_seconds_(sum|count)' >>"$TEST_TMP/summary"
# stop both before printing, so a reader that closes the pipe early leaves nothing running
stop_pid "$EPID" || echo "enrichment exited with $?" >>"$TEST_TMP/summary"
stop_pid "$SPID" || true
cat "$TEST_TMP/summary"
exit 0   # the EXIT trap cleans up; finish would count "no check ran" as a failure

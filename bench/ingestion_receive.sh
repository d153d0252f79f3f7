#!/usr/bin/env bash
# bench/ingestion_receive.sh -- websocket-ingestion's CPU per event for what it
# receives: the HA simulator (load mode, as fast as it goes) -> ingestion ->
# its spool, downstream unreachable (nothing forwarded), until EVENTS events
# were received; ingestion's user+system CPU from /proc/<pid>/stat.
# SPACED=1: the simulator writes its event messages as Python's json.dumps does
# (a space after every ':' and ','; SIMULATOR_JSON_SPACED): bench/whitespace.sh
# runs both and prints the ratio (issue 15: at most 20 % apart).
# Usage: bench/ingestion_receive.sh [BUILD_DIR]   (env EVENTS, default 100000; SPACED)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
EVENTS=${EVENTS:-100000} SPACED=${SPACED:-0}
SIM=${SIM:-$BUILD/tools/ha-simulator/homeiq-ha-simulator}   # SIM=...: one load generator for two builds
ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
set +u

SP=$(free_port); IP=$(free_port)
start_bg simulator env SIMULATOR_PORT=$SP SIMULATOR_JSON_SPACED=$SPACED "$SIM" --rate 10000000 --count "$EVENTS" --seed 1
SIMPID=$LAST_PID
wait_http "http://127.0.0.1:$SP/health" 20
start_bg ingestion env HOME_ASSISTANT_URL=http://127.0.0.1:$SP HOME_ASSISTANT_TOKEN=homeiq-simulator-token \
  DATA_DIR="$TEST_TMP/ing" WEBSOCKET_INGESTION_PORT=$IP ENRICHMENT_PIPELINE_URL=http://127.0.0.1:1 \
  FORWARD_RETRY_MIN_MS=60000 FORWARD_RETRY_MAX_MS=60000 LOG_LEVEL=warn "$ING"
INGPID=$LAST_PID
wait_http "http://127.0.0.1:$IP/health" 20
received() { [ "$(curl -s "http://127.0.0.1:$IP/health" | jq -r .events.received)" = "$EVENTS" ]; }
wait_for 600 received
ticks=$(awk '{ print $14 + $15 }' "/proc/$INGPID/stat")
bytes=$(curl -s "http://127.0.0.1:$IP/health" | jq -r '.spool.bytes // empty')
stop_pid "$INGPID" || true
stop_pid "$SIMPID" || true
awk -v t="$ticks" -v tck="$(getconf CLK_TCK)" -v n="$EVENTS" -v b="$bytes" \
    -v spc="$([ "$SPACED" = 1 ] && echo spaced || echo compact)" 'BEGIN {
  printf "received: %d events (%s)%s\n", n, spc, b != "" ? sprintf(", spool %.0f bytes/event", b / n) : ""
  printf "ingestion CPU: %.2f s -> %.1f us/event\n", t / tck, t / tck * 1e6 / n
}'
exit 0   # the EXIT trap cleans up; finish would count "no check ran" as a failure

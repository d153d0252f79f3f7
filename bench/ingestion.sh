#!/usr/bin/env bash
# bench/ingestion.sh [BUILD_DIR] [N] -- websocket-ingestion throughput and spool
# write cost, on loopback, release build:
#   1. spool write cost: bench_ingestion_spool (µs/event, bytes/event, fsyncs/s);
#   2. receive: HA simulator (load mode, as fast as it goes) -> ingestion, spool
#      only (downstream unreachable): events/s from HA into the durable spool;
#   3. forward: the spool from 2 (N unacknowledged events) replayed by a fresh
#      ingestion in forward-only mode into ingest_sink (a downstream that answers
#      200 at once): events/s out of ingestion alone;
#   4. through: simulator -> ingestion -> ingest_sink at the same time.
# Prints a summary; numbers vary with the machine (see docs/SPOOL.md for ours).
set -u
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/build}
N=${2:-200000}
SIM=$B/tools/ha-simulator/homeiq-ha-simulator
ING=$B/services/websocket-ingestion/homeiq-websocket-ingestion
SINK=$B/tests/ingestion/ingest_sink
SPOOLB=$B/tests/ingestion/bench_ingestion_spool
for f in "$SIM" "$ING" "$SINK" "$SPOOLB"; do [ -x "$f" ] || { echo "missing $f (build first: cmake --build $B)" >&2; exit 1; }; done
T=$(mktemp -d /tmp/homeiq-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { while :; do local p=$((20000 + RANDOM % 30000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
now() { date +%s.%N; }
hget() { curl -s "http://127.0.0.1:$1/health" | jq -r "$2"; }
waitfor() { # PORT JQ VALUE
  while [ "$(hget "$1" "$2")" != "$3" ]; do sleep 0.05; done
}
# CPU seconds (user+system) used so far by PID.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
us_per() { awk "BEGIN{printf \"%.1f\", $1 * 1e6 / $2}"; }

echo "== 1. spool write cost ($N events of 1157 bytes, SPOOL_FSYNC_MS=100)"
"$SPOOLB" "$T/spoolbench" "$N" 1157 100 2>/dev/null | tee "$T/spool.json"
rm -rf "$T/spoolbench"

echo "== 2. receive: simulator -> ingestion -> spool ($N events)"
SP=$(port); IP=$(port)
SIMULATOR_PORT=$SP "$SIM" --rate 10000000 --count "$N" --seed 1 >"$T/sim.log" 2>&1 & PIDS+=($!); SIMPID=$!
while ! curl -s -o /dev/null "http://127.0.0.1:$SP/health"; do sleep 0.05; done
HOME_ASSISTANT_URL=http://127.0.0.1:$SP HOME_ASSISTANT_TOKEN=homeiq-simulator-token DATA_DIR="$T/ing" \
  WEBSOCKET_INGESTION_PORT=$IP ENRICHMENT_PIPELINE_URL=http://127.0.0.1:1 FORWARD_RETRY_MIN_MS=60000 \
  FORWARD_RETRY_MAX_MS=60000 "$ING" >"$T/ing.log" 2>&1 & PIDS+=($!); INGPID=$!
while ! curl -s -o /dev/null "http://127.0.0.1:$IP/health"; do sleep 0.05; done
waitfor "$IP" .home_assistant.state subscribed
t0=$(now); waitfor "$IP" .events.received "$N"; t1=$(now)
RECV_RATE=$(awk "BEGIN{printf \"%.0f\", $N / ($t1 - $t0)}")
RECV_CPU=$(cpu_of $INGPID)
RECV_US=$(us_per "$RECV_CPU" "$N")
echo "received $N in $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s = $RECV_RATE events/s; ingestion CPU ${RECV_CPU} s = $RECV_US µs/event, simulator CPU $(cpu_of $SIMPID) s"
hget "$IP" .spool
kill -TERM $INGPID; wait $INGPID 2>/dev/null
kill -TERM $SIMPID; wait $SIMPID 2>/dev/null

echo "== 3. forward: spool replay ($N events) -> ingest_sink"
KP=$(port)
SINK_PORT=$KP "$SINK" >"$T/sink.log" 2>&1 & PIDS+=($!); SINKPID=$!
while ! curl -s -o /dev/null "http://127.0.0.1:$KP/stats"; do sleep 0.05; done
t0=$(now)
HOME_ASSISTANT_URL=none DATA_DIR="$T/ing" WEBSOCKET_INGESTION_PORT=$IP ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$KP \
  "$ING" >"$T/ing2.log" 2>&1 & PIDS+=($!); INGPID=$!
while [ "$(curl -s "http://127.0.0.1:$KP/stats" | jq .events)" != "$N" ]; do sleep 0.05; done
t1=$(now)
FWD_RATE=$(awk "BEGIN{printf \"%.0f\", $N / ($t1 - $t0)}")
FWD_CPU=$(cpu_of $INGPID)
FWD_US=$(us_per "$FWD_CPU" "$N")
echo "forwarded $N in $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s (incl. start-up scan) = $FWD_RATE events/s; ingestion CPU ${FWD_CPU} s = $FWD_US µs/event, sink CPU $(cpu_of $SINKPID) s"
curl -s "http://127.0.0.1:$KP/stats"; echo
kill -TERM $INGPID; wait $INGPID 2>/dev/null
kill -TERM $SINKPID; wait $SINKPID 2>/dev/null

echo "== 4. through: simulator -> ingestion -> ingest_sink ($N events)"
SP=$(port); KP=$(port)
SINK_PORT=$KP "$SINK" >"$T/sink2.log" 2>&1 & PIDS+=($!); SINKPID=$!
SIMULATOR_PORT=$SP "$SIM" --rate 10000000 --count "$N" --seed 2 >"$T/sim2.log" 2>&1 & PIDS+=($!); SIMPID=$!
while ! curl -s -o /dev/null "http://127.0.0.1:$SP/health"; do sleep 0.05; done
while ! curl -s -o /dev/null "http://127.0.0.1:$KP/stats"; do sleep 0.05; done
HOME_ASSISTANT_URL=http://127.0.0.1:$SP HOME_ASSISTANT_TOKEN=homeiq-simulator-token DATA_DIR="$T/ing3" \
  WEBSOCKET_INGESTION_PORT=$IP ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$KP "$ING" >"$T/ing3.log" 2>&1 & PIDS+=($!); INGPID=$!
while ! curl -s -o /dev/null "http://127.0.0.1:$IP/health"; do sleep 0.05; done
waitfor "$IP" .home_assistant.state subscribed
t0=$(now)
while [ "$(curl -s "http://127.0.0.1:$KP/stats" | jq .events)" != "$N" ]; do sleep 0.05; done
t1=$(now)
THRU_RATE=$(awk "BEGIN{printf \"%.0f\", $N / ($t1 - $t0)}")
THRU_CPU=$(cpu_of $INGPID)
THRU_US=$(us_per "$THRU_CPU" "$N")
echo "simulator -> sink $N in $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s = $THRU_RATE events/s; ingestion CPU ${THRU_CPU} s = $THRU_US µs/event, simulator CPU $(cpu_of $SIMPID) s"
hget "$IP" '.spool | {fsyncs, bytes, depth}' | tr -d '\n '; echo

echo
echo "== summary"
jq -r '"spool: \(.us_per_event_cpu) µs CPU/event, \(.us_per_event_wall) µs wall/event, \(.bytes_per_event) bytes/event, \(.fsyncs_per_s) fsyncs/s (avg fsync \(.fsync_ms_avg) ms)"' "$T/spool.json"
echo "receive (HA -> spool):         $RECV_RATE events/s, ingestion $RECV_US µs CPU/event"
echo "forward (spool -> sink):       $FWD_RATE events/s, ingestion $FWD_US µs CPU/event"
echo "through (HA -> spool -> sink): $THRU_RATE events/s, ingestion $THRU_US µs CPU/event (capacity ~$(awk "BEGIN{printf \"%.0f\", 1e6 / $THRU_US}") events/s per core)"

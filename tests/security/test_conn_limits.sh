#!/usr/bin/env bash
# tests/security/test_conn_limits.sh -- idle and slow clients cannot starve the pipeline.
#
# Why: every HomeIQ server is one event loop; a client that opens thousands of
# connections and sends nothing (or half a request) must neither crash it nor
# take the file descriptors it needs for its own work. With 2,000 idle
# connections held open against each service, events still flow end to end;
# at HTTP_MAX_CONNECTIONS a server stops accepting (clients wait in the
# kernel's backlog), closes idle ones after its read timeout, and resumes.
# Latency under this load is measured by bench/idle_conns.sh, not asserted here.
# Usage: test_conn_limits.sh INGESTION ENRICHMENT STORAGE IDLE_CONNS
. "$(dirname "$0")/../lib/common.sh"
ING_BIN=$1 ENR_BIN=$2 STO_BIN=$3 IDLE=${4:-2000}
PY=$(dirname "$0")/idle_conns.py
ING_PORT=$(free_port) ENR_PORT=$(free_port) STO_PORT=$(free_port)
ING=http://127.0.0.1:$ING_PORT ENR=http://127.0.0.1:$ENR_PORT STO=http://127.0.0.1:$STO_PORT
unset HOMEIQ_API_TOKEN HOMEIQ_API_TOKEN_FILE

start_bg sto env DATA_STORAGE_PORT=$STO_PORT DATA_DIR="$TEST_TMP/sto" "$STO_BIN"
wait_http "$STO/health" || { check "data-storage starts" false; finish; }
start_bg enr env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=$STO "$ENR_BIN"
wait_http "$ENR/health" || { check "enrichment-pipeline starts" false; finish; }
start_bg ing env HOME_ASSISTANT_URL=none WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/ing" \
  ENRICHMENT_PIPELINE_URL=$ENR "$ING_BIN"
wait_http "$ING/health" || { check "websocket-ingestion starts" false; finish; }

# ---- $IDLE idle connections against each service, events still flow ---------
for port in $ING_PORT $ENR_PORT $STO_PORT; do
  start_bg "idle$port" python3 "$PY" "$port" "$IDLE" 20
done
for port in $ING_PORT $ENR_PORT $STO_PORT; do
  for _ in $(seq 300); do grep -q '^opened' "$TEST_TMP/idle$port.log" && break; sleep 0.1; done
  check "$IDLE idle connections opened against port $port" grep -qx "opened $IDLE" "$TEST_TMP/idle$port.log"
done
sent=0
for b in $(seq 0 9); do
  body=$(jq -cn --argjson b "$b" '[range(100) | {event_type:"state_changed", time_fired:"2026-01-01T00:00:00Z",
    context:{id:"idle-\($b)-\(.)"}, data:{entity_id:"sensor.idle_\($b)_\(.)", new_state:{state:"\(.)"}}}]')
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' --data-binary "$body" \
      "$ING/api/v1/events/forward")
  [ "$c" = 200 ] && sent=$((sent + 100))
done
check_eq "1,000 events accepted by ingestion while $IDLE idle connections are open against each service" 1000 "$sent"
N=0
for _ in $(seq 150); do
  N=$(curl -s --max-time 5 "$STO/api/v1/events?limit=5000&domain=sensor" |
      jq '[.events[] | select(.entity_id | startswith("sensor.idle_"))] | length')
  [ "${N:-0}" = 1000 ] && break; sleep 0.1
done
check_eq "... and all 1,000 stored" 1000 "$N"
for u in "$ING" "$ENR" "$STO"; do
  check_eq "$u/health answers 200 under the idle load" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$u/health")"
done
for port in $ING_PORT $ENR_PORT $STO_PORT; do kill "$(eval echo "\$PID_idle$port")" 2>/dev/null; done

# ---- at HTTP_MAX_CONNECTIONS: pause, close idle ones, resume -----------------
P=$(free_port)
start_bg capped env ENRICHMENT_PIPELINE_PORT=$P DATA_STORAGE_URL=$STO HTTP_MAX_CONNECTIONS=50 HTTP_READ_TIMEOUT_S=2 "$ENR_BIN"
CAPPED=$LAST_PID
wait_http "http://127.0.0.1:$P/health"
start_bg slow python3 "$PY" "$P" 200 16 1     # 200 clients sending half a request line, held 16 s
for _ in $(seq 300); do grep -q 'connection cap reached' "$TEST_TMP/capped.log" && break; sleep 0.1; done
check "the capped server stops accepting at HTTP_MAX_CONNECTIONS" grep -q 'connection cap reached' "$TEST_TMP/capped.log"
T0=$(date +%s.%N)
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "http://127.0.0.1:$P/health")
T1=$(date +%s.%N)
check_eq "a new client is served once the idle ones time out (after $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}') s)" 200 "$c"
check "it resumed accepting" grep -q 'accepting connections again' "$TEST_TMP/capped.log"
check "the paused counter counts it" bash -c "curl -s http://127.0.0.1:$P/metrics | awk '\$1 == \"homeiq_http_accept_paused_total\" && \$2 >= 1 {f=1} END {exit !f}'"
wait "$PID_slow" 2>/dev/null
C=$(sed -n 's/^closed_by_server //p' "$TEST_TMP/slow.log")
check "the server closed the half-requests after its read timeout ($C of 200)" test "${C:-0}" -ge 150
stop_pid "$CAPPED"; check_eq "capped enrichment exits cleanly" 0 $?

for name in ing enr sto; do
  eval "pid=\$PID_$name"
  kill -0 "$pid" 2>/dev/null; check "$name survived the load" test $? = 0
  stop_pid "$pid"; check_eq "$name exits cleanly" 0 $?
done
finish

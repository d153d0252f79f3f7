#!/usr/bin/env bash
# tests/security/test_auth.sh -- the API token, end to end on real processes.
#
# Why: once HOMEIQ_API_TOKEN(_FILE) is set, nobody without it may read or write
# a household's history through any endpoint but GET /health; the services must
# still talk to each other (each sends the token downstream), the token must
# never reach a log, a non-loopback bind must not start without a token, and a
# hostile entity id must not forge a log line.
# Usage: test_auth.sh INGESTION ENRICHMENT STORAGE HOMEIQCTL SIMULATOR
. "$(dirname "$0")/../lib/common.sh"
ING_BIN=$1 ENR_BIN=$2 STO_BIN=$3 CTL=$4 SIM_BIN=$5
ING_PORT=$(free_port) ENR_PORT=$(free_port) STO_PORT=$(free_port)
ING=http://127.0.0.1:$ING_PORT ENR=http://127.0.0.1:$ENR_PORT STO=http://127.0.0.1:$STO_PORT

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN_FILE=$TEST_TMP/api-token
(umask 077; printf '%s\n' "$TOKEN" >"$TOKEN_FILE")
export HOMEIQ_API_TOKEN_FILE=$TOKEN_FILE LOG_LEVEL=debug
unset HOMEIQ_API_TOKEN

# code METHOD URL [TOKEN] : the HTTP status (token via a curl config on stdin, not argv).
code() {
  local m=$1 u=$2 t=${3:-} body=()
  [ "$m" = POST ] && body=(-H 'Content-Type: application/json' --data-binary '[]')
  if [ -n "$t" ]; then
    curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/hdrs" -w '%{http_code}' -X "$m" "${body[@]}" -K- "$u" \
      <<<"header = \"Authorization: Bearer $t\""
  else
    curl -s -o "$TEST_TMP/body" -D "$TEST_TMP/hdrs" -w '%{http_code}' -X "$m" "${body[@]}" "$u"
  fi
}

start_bg sto env DATA_STORAGE_PORT=$STO_PORT DATA_DIR="$TEST_TMP/sto" "$STO_BIN"
wait_http "$STO/health" || { check "data-storage starts with a token file" false; finish; }
start_bg enr env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=$STO "$ENR_BIN"
wait_http "$ENR/health" || { check "enrichment-pipeline starts with a token file" false; finish; }
start_bg ing env HOME_ASSISTANT_URL=none WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/ing" \
  ENRICHMENT_PIPELINE_URL=$ENR "$ING_BIN"
wait_http "$ING/health" || { check "websocket-ingestion starts with a token file" false; finish; }

# ---- every endpoint: no token, a wrong one, the right one ------------------
# METHOD URL : protected endpoints (401 without/with a wrong token, anything else with it)
PROTECTED=(
  "GET $ING/metrics" "POST $ING/api/v1/events/forward" "GET $ING/no/such/endpoint"
  "GET $ENR/metrics" "POST $ENR/api/v1/events" "GET $ENR/no/such/endpoint"
  "GET $STO/metrics" "GET $STO/api/v1/events" "POST $STO/api/v1/events" "GET $STO/api/v1/dead-letters"
  "GET $STO/no/such/endpoint"
)
for e in "${PROTECTED[@]}"; do
  read -r m u <<<"$e"
  check_eq "$m $u without a token: 401" 401 "$(code "$m" "$u")"
  check "... with WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$TEST_TMP/hdrs"
  check "... and nothing but the error in the body" \
    bash -c "jq -e '(keys == [\"error\"]) and (.error | test(\"token\"))' '$TEST_TMP/body' >/dev/null"
  check_eq "$m $u with a wrong token: 401" 401 "$(code "$m" "$u" "${TOKEN%?}x")"
  check_eq "$m $u with the token as Basic: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X "$m" -u "x:$TOKEN" "$u")"
  got=$(code "$m" "$u" "$TOKEN")
  check "$m $u with the token: answered ($got)" test "$got" != 401 -a "$got" != 000
done
for u in "$ING/health" "$ENR/health" "$STO/health"; do
  check_eq "GET $u without a token: 200 (health stays open)" 200 "$(code GET "$u")"
done

# ---- the pipeline flows with tokens set ------------------------------------
EVENTS=$(jq -cn '[range(50) | {event_type:"state_changed", time_fired:"2026-01-01T00:00:\(. % 60 | tostring | if length < 2 then "0" + . else . end)Z",
  context:{id:"auth\(.)"}, data:{entity_id:"sensor.auth_\(.)", new_state:{state:"\(.)"}}}]')
check_eq "forward 50 events with the token: 200" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$EVENTS" -K- \
     "$ING/api/v1/events/forward" <<<"header = \"Authorization: Bearer $TOKEN\"")"
N=0
for _ in $(seq 100); do
  N=$(curl -s -K- "$STO/api/v1/events?limit=1000&domain=sensor" <<<"header = \"Authorization: Bearer $TOKEN\"" |
      jq '[.events[] | select(.entity_id | startswith("sensor.auth_"))] | length')
  [ "${N:-0}" = 50 ] && break; sleep 0.1
done
check_eq "all 50 reach storage through ingestion and enrichment (tokens sent downstream)" 50 "$N"
check_eq "homeiqctl uses the token: events" 50 \
  "$(DATA_STORAGE_URL=$STO "$CTL" events --json --limit 1000 --domain sensor | jq '[.events[] | select(.entity_id | startswith("sensor.auth_"))] | length')"
check "homeiqctl health passes with the token" env WEBSOCKET_INGESTION_URL=$ING ENRICHMENT_PIPELINE_URL=$ENR \
  DATA_STORAGE_URL=$STO "$CTL" health
check "homeiqctl without the token fails" bash -c "! env -u HOMEIQ_API_TOKEN_FILE DATA_STORAGE_URL=$STO '$CTL' events --limit 1 >/dev/null 2>&1"

# ---- a hostile entity id in a rejected event: one log line per record -------
BAD=$(jq -cn '[{event_type:"state_changed", time_fired:"2026-01-01T00:00:01Z", context:{id:"evil"},
  data:{entity_id:"sensor.x\n2026-01-01T00:00:00.000Z error data-storage: FORGED\r\u001b[31mred", new_state:{state:"1"}}}]')
check_eq "a rejected event with newlines and ANSI escapes in its entity id is accepted for the spool" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$BAD" -K- \
     "$ING/api/v1/events/forward" <<<"header = \"Authorization: Bearer $TOKEN\"")"
for _ in $(seq 300); do grep -q 'dead-lettered' "$TEST_TMP/enr.log" && break; sleep 0.1; done
check "enrichment logged the rejection" grep -q 'dead-lettered.*FORGED' "$TEST_TMP/enr.log"
check "... on one line, escaped" grep -q 'sensor.x\\n2026-01-01T00:00:00.000Z error data-storage: FORGED\\r\\x1b\[31mred' "$TEST_TMP/enr.log"
check "no log line starts with the forged text" bash -c "! grep -q '^2026-01-01T00:00:00.000Z error data-storage: FORGED' '$TEST_TMP'/*.log"
check "no raw ESC or CR in any log" bash -c "! grep -q $'[\x1b\r]' '$TEST_TMP'/*.log"

# ---- the simulator's control endpoints ------------------------------------
P=$(free_port)
start_bg sim env SIMULATOR_PORT=$P "$SIM_BIN"
wait_http "http://127.0.0.1:$P/health" || bail "the simulator starts with a token file"
for e in pause resume drop history/off inject; do
  check_eq "simulator POST /api/sim/$e without the token: 401" 401 "$(code POST "http://127.0.0.1:$P/api/sim/$e")"
  check_eq "simulator POST /api/sim/$e with a wrong token: 401" 401 "$(code POST "http://127.0.0.1:$P/api/sim/$e" wrong-token-x)"
done
check_eq "simulator POST /api/sim/pause with the token: 200" 200 "$(code POST "http://127.0.0.1:$P/api/sim/pause" "$TOKEN")"
check_eq "... and it paused" true "$(jq .paused "$TEST_TMP/body")"
check_eq "simulator GET /api/sim/stats (read-only) stays open" 200 "$(code GET "http://127.0.0.1:$P/api/sim/stats")"
stop_pid "$LAST_PID"; check_eq "the simulator exits cleanly" 0 $?

# ---- /metrics open with METRICS_AUTH=0 ------------------------------------
P=$(free_port)
start_bg sto_open env DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/sto2" METRICS_AUTH=0 "$STO_BIN"
wait_http "http://127.0.0.1:$P/health"
check_eq "METRICS_AUTH=0: /metrics open" 200 "$(code GET "http://127.0.0.1:$P/metrics")"
check_eq "METRICS_AUTH=0: events still need the token" 401 "$(code GET "http://127.0.0.1:$P/api/v1/events")"
stop_pid "$LAST_PID"; check_eq "storage with METRICS_AUTH=0 exits cleanly" 0 $?

# ---- bind rules --------------------------------------------------------------
P=$(free_port)
env -u HOMEIQ_API_TOKEN_FILE DATA_STORAGE_BIND=0.0.0.0 DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/sto3" \
  timeout 10 "$STO_BIN" >"$TEST_TMP/nobind.log" 2>&1
RC=$?
check "non-loopback bind without a token refuses to start (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
check "... naming the variable" grep -q 'HOMEIQ_API_TOKEN_FILE' "$TEST_TMP/nobind.log"
check "... and never listened" bash -c "! grep -q 'listening on' '$TEST_TMP/nobind.log'"
for pair in "$ENR_BIN ENRICHMENT_PIPELINE_BIND ENRICHMENT_PIPELINE_PORT" \
            "$ING_BIN WEBSOCKET_INGESTION_BIND WEBSOCKET_INGESTION_PORT"; do
  read -r bin bvar pvar <<<"$pair"
  env -u HOMEIQ_API_TOKEN_FILE HOME_ASSISTANT_URL=none DATA_DIR="$TEST_TMP/ing3" "$bvar=0.0.0.0" "$pvar=$(free_port)" \
    timeout 10 "$bin" >"$TEST_TMP/nobind2.log" 2>&1
  RC=$?
  check "$(basename "$bin"): non-loopback bind without a token refuses (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
done
P=$(free_port)
start_bg allow env -u HOMEIQ_API_TOKEN_FILE DATA_STORAGE_BIND=0.0.0.0 DATA_STORAGE_PORT=$P \
  DATA_DIR="$TEST_TMP/sto4" HOMEIQ_ALLOW_UNAUTHENTICATED=1 "$STO_BIN"
check "HOMEIQ_ALLOW_UNAUTHENTICATED=1: starts" wait_http "http://127.0.0.1:$P/health"
check "... and warns" grep -q 'WITHOUT an API token' "$TEST_TMP/allow.log"
check_eq "... and the events are open" 200 "$(code GET "http://127.0.0.1:$P/api/v1/events")"
stop_pid "$LAST_PID"; check_eq "it exits cleanly" 0 $?

# ---- the token file: mode, emptiness ------------------------------------------
cp "$TOKEN_FILE" "$TEST_TMP/loose-token"; chmod 644 "$TEST_TMP/loose-token"
P=$(free_port)
start_bg loose env HOMEIQ_API_TOKEN_FILE="$TEST_TMP/loose-token" DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/sto5" "$STO_BIN"
wait_http "http://127.0.0.1:$P/health"
check "a group/world-readable token file is warned about" grep -q 'readable by group or others' "$TEST_TMP/loose.log"
stop_pid "$LAST_PID"
: >"$TEST_TMP/empty-token"; chmod 600 "$TEST_TMP/empty-token"
HOMEIQ_API_TOKEN_FILE="$TEST_TMP/empty-token" DATA_STORAGE_PORT=$(free_port) DATA_DIR="$TEST_TMP/sto6" \
  timeout 10 "$STO_BIN" >"$TEST_TMP/empty.log" 2>&1
RC=$?
check "an empty token file is an error, not 'no token' (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
HOMEIQ_API_TOKEN_FILE="$TEST_TMP/missing-token" DATA_STORAGE_PORT=$(free_port) DATA_DIR="$TEST_TMP/sto7" \
  timeout 10 "$STO_BIN" >"$TEST_TMP/missing.log" 2>&1
RC=$?
check "a missing token file is an error (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124

# ---- stop, then: the token never reached any log ----------------------------
for name in ing enr sto; do
  eval "pid=\$PID_$name"
  stop_pid "$pid"; check_eq "$name exits cleanly" 0 $?
done
check "the token appears in no log of this test" bash -c "! grep -rqF '$TOKEN' '$TEST_TMP'/*.log"
check "... nor any 12-character piece of it" bash -c "! grep -rqF '${TOKEN:10:12}' '$TEST_TMP'/*.log"
finish

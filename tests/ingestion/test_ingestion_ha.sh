#!/usr/bin/env bash
# test_ingestion_ha.sh -- the HA side of websocket-ingestion against the real
# simulator: auth_invalid is fatal in health and logs and is not retried in a
# loop; the token never reaches the logs (also at debug level); token file;
# ws:// URLs; several event types = one subscription each; a dead connection
# (no pong) is detected and re-established; reconnects after HA restarts.
. "$(dirname "$0")/../lib/common.sh"
ING_BIN=$1 SIM_BIN=$2
TOKEN="s3cr3t-token-$RANDOM$RANDOM"
SIM_PORT=$(free_port)

sim_stat() { curl -s "http://127.0.0.1:$SIM_PORT/api/sim/stats" | jq -r ".$1"; }
health() { curl -s "http://127.0.0.1:$1/health"; }
reason_is() { [ "$(health "$1" | jq -r .reason)" = "$2" ]; }
wait_reason() { # PORT REASON SECONDS
  local i=0
  while (( i < $3 * 10 )); do reason_is "$1" "$2" && return 0; sleep 0.1; i=$((i + 1)); done
  health "$1" >&2; return 1
}
start_sim() { start_bg "$1" env SIMULATOR_PORT=$SIM_PORT SIMULATOR_TOKEN=$TOKEN "$SIM_BIN"; SIM_PID=$LAST_PID
  wait_http "http://127.0.0.1:$SIM_PORT/health" || bail "simulator ($1) started"; }
# start_ing NAME VAR=value... : ingestion in its own data dir, downstream unused (nothing listens).
start_ing() {
  local name=$1; shift
  ING_PORT=$(free_port)
  start_bg "$name" env WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/$name" \
    ENRICHMENT_PIPELINE_URL=http://127.0.0.1:1 RECONNECT_MIN_DELAY_MS=200 RECONNECT_MAX_DELAY=1 "$@" "$ING_BIN"
  ING_PID=$LAST_PID
  wait_http "http://127.0.0.1:$ING_PORT/health" || bail "websocket-ingestion ($name) started"
}

start_sim sim

# --- a wrong token: auth_invalid, no hammering, not logged -----------------------
start_ing bad HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN="wrong-$TOKEN" LOG_LEVEL=debug
check "wrong token: health 503 auth_invalid" wait_reason "$ING_PORT" auth_invalid 10
check_eq "wrong token: status code 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ING_PORT/health")"
sleep 2
check_eq "wrong token: one connection only (no hammering)" 1 "$(sim_stat connections_total)"
check "wrong token: auth_invalid is logged as an error" grep -q "error.*auth_invalid" "$TEST_TMP/bad.log"
check "wrong token: the token is not in the log" bash -c "! grep -q -- '$TOKEN' '$TEST_TMP/bad.log'"
check "wrong token: exits cleanly" stop_pid "$ING_PID"

# --- the right token from a file (debug logging on) --------------------------------
printf '%s\n' "$TOKEN" >"$TEST_TMP/token"
start_ing good HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN_FILE="$TEST_TMP/token" LOG_LEVEL=debug
check "token file: healthy (authenticated + subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 10
check "events are received" bash -c "sleep 2; [ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq .events.received) -gt 0 ]"
check "events are spooled (depth > 0, downstream down)" bash -c "[ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq .spool.depth) -gt 0 ]"
check_eq "one subscription" 1 "$(sim_stat subscriptions)"
check "the token is not in the debug log" bash -c "! grep -q -- '$TOKEN' '$TEST_TMP/good.log'"
check "/metrics serves ingestion counters" bash -c \
  "curl -s http://127.0.0.1:$ING_PORT/metrics | grep -q '^homeiq_ingestion_events_received_total [1-9]'"
check "token file: exits cleanly" stop_pid "$ING_PID"

# --- ws:// URL, two event types = two subscriptions; pong timeout; HA restart --------
start_ing multi HOME_ASSISTANT_URL=ws://127.0.0.1:$SIM_PORT/api/websocket HOME_ASSISTANT_TOKEN="$TOKEN" \
  HOME_ASSISTANT_EVENT_TYPES="state_changed, call_service" HA_PING_INTERVAL_S=1 HA_PONG_TIMEOUT_S=1
check "ws:// URL: healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 10
check_eq "two event types: two subscriptions" 2 "$(sim_stat subscriptions)"

kill -STOP "$SIM_PID"
check "HA frozen: no pong -> 503 connecting" wait_reason "$ING_PORT" connecting 8
check "pong timeout is logged" grep -q "no pong within" "$TEST_TMP/multi.log"
kill -CONT "$SIM_PID"
check "HA answers again: healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 15
check_eq "resubscribed exactly once per event type" 2 "$(sim_stat subscriptions)"

kill -TERM "$SIM_PID"; wait "$SIM_PID" 2>/dev/null
check "HA gone: 503 connecting" wait_reason "$ING_PORT" connecting 5
sleep 3   # several failed reconnects
start_sim sim2
check "HA back: reconnected and healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 15
check_eq "one connection's worth of subscriptions" 2 "$(sim_stat subscriptions)"
check "ingestion exits cleanly" stop_pid "$ING_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

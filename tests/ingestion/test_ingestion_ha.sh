#!/usr/bin/env bash
# test_ingestion_ha.sh -- the HA side of websocket-ingestion against the real
# simulator: auth_invalid is fatal in health and logs and is retried only every
# HA_AUTH_RETRY_S (counted and timed; 0 = never), and a retry succeeds once HA
# takes the token; reconnect delays double from RECONNECT_MIN_DELAY_MS up to the
# RECONNECT_MAX_DELAY cap; the token never reaches the logs (also at debug level); token file;
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
start_sim() { start_bg "$1" env SIMULATOR_PORT=$SIM_PORT SIMULATOR_TOKEN=${2:-$TOKEN} "$SIM_BIN"; SIM_PID=$LAST_PID
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

# log_times FILE PATTERN : the timestamps (seconds, ms resolution) of the log
# lines matching PATTERN, one per line.
log_times() {
  grep -E -- "$2" "$1" | sed -n 's/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z .*/\1 \2 \3/p' |
    awk '{ printf "%.3f\n", $1 * 3600 + $2 * 60 + $3 }'
}
# gaps : differences between consecutive numbers on stdin, one per line.
gaps() { awk 'NR > 1 { printf "%.3f\n", $1 - prev } { prev = $1 }'; }

# --- a wrong token: auth_invalid, retried every HA_AUTH_RETRY_S, never hammered, not logged ---
# HA_AUTH_RETRY_S=1 instead of 300: the retries can be counted and timed.
C0=$(sim_stat connections_total)
start_ing bad HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN="wrong-$TOKEN" LOG_LEVEL=debug \
  HA_AUTH_RETRY_S=1
check "wrong token: health 503 auth_invalid" wait_reason "$ING_PORT" auth_invalid 10
check_eq "wrong token: status code 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ING_PORT/health")"
conns_since_c0_ge() { [ "$(( $(sim_stat connections_total) - C0 ))" -ge "$1" ]; }
lines_ge() { [ "$(grep -c -- "$2" "$1")" -ge "$3" ]; }   # lines_ge FILE PATTERN N
check "wrong token: retried (5 attempts within 10 s)" wait_for 10 conns_since_c0_ge 5
check "wrong token: still auth_invalid after the retries" reason_is "$ING_PORT" auth_invalid
check "wrong token: auth_invalid is logged as an error" grep -q "error.*auth_invalid" "$TEST_TMP/bad.log"
log_times "$TEST_TMP/bad.log" 'not retrying for 1 s' | head -6 >"$TEST_TMP/bad.times"
gaps <"$TEST_TMP/bad.times" >"$TEST_TMP/bad.gaps"
echo "# auth_invalid retry gaps (s): $(tr '\n' ' ' <"$TEST_TMP/bad.gaps")"
check "wrong token: at least 4 gaps between auth_invalid answers logged" test "$(wc -l <"$TEST_TMP/bad.gaps")" -ge 4
check "wrong token: every retry waited HA_AUTH_RETRY_S (gaps 0.9 .. 1.6 s, no hammering)" \
  awk '$1 < 0.9 || $1 > 1.6 { bad = 1 } END { exit bad }' "$TEST_TMP/bad.gaps"
check "wrong token: the token is not in the log" bash -c "! grep -q -- '$TOKEN' '$TEST_TMP/bad.log'"
check "wrong token: exits cleanly" stop_pid "$ING_PID"

# --- HA_AUTH_RETRY_S=0: never retried ----------------------------------------------------
C0=$(sim_stat connections_total)
start_ing noretry HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN="wrong-$TOKEN" HA_AUTH_RETRY_S=0
check "HA_AUTH_RETRY_S=0: health 503 auth_invalid" wait_reason "$ING_PORT" auth_invalid 10
check "HA_AUTH_RETRY_S=0: says it will not retry" grep -q "not retrying (HA_AUTH_RETRY_S=0)" "$TEST_TMP/noretry.log"
sleep 2.5   # nothing may happen: there is no condition to wait for
check_eq "HA_AUTH_RETRY_S=0: one connection, none after it" 1 "$(( $(sim_stat connections_total) - C0 ))"
check "HA_AUTH_RETRY_S=0: exits cleanly" stop_pid "$ING_PID"

# --- the auth_invalid retry succeeds once HA accepts the token ----------------------------
start_ing fixed HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN="new-$TOKEN" HA_AUTH_RETRY_S=1
check "token not (yet) accepted: auth_invalid" wait_reason "$ING_PORT" auth_invalid 10
FIXED_PID=$ING_PID FIXED_PORT=$ING_PORT
check "HA restarted with the old token: exits cleanly" stop_pid "$SIM_PID"
start_sim sim_newtoken "new-$TOKEN"
check "HA now accepts the token: healthy after the next retry" wait_healthy "http://127.0.0.1:$FIXED_PORT/health" 10
check "... and it said it tried the token again" grep -q "trying the token again" "$TEST_TMP/fixed.log"
check "auth retry: exits cleanly" stop_pid "$FIXED_PID"
check "HA (new token) exits cleanly" stop_pid "$SIM_PID"
start_sim sim

# --- reconnect backoff: doubles from RECONNECT_MIN_DELAY_MS, capped at RECONNECT_MAX_DELAY ---
DEAD_PORT=$(free_port)   # nothing listens there: every attempt fails at once
ING_PORT=$(free_port)
start_bg backoff env WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/backoff" \
  ENRICHMENT_PIPELINE_URL=http://127.0.0.1:1 HOME_ASSISTANT_URL=http://127.0.0.1:$DEAD_PORT HOME_ASSISTANT_TOKEN=x \
  RECONNECT_MIN_DELAY_MS=200 RECONNECT_MAX_DELAY=1 "$ING_BIN"
ING_PID=$LAST_PID
wait_http "http://127.0.0.1:$ING_PORT/health" || bail "websocket-ingestion (backoff) started"
check "backoff: 8 failed attempts logged" wait_for 15 lines_ge "$TEST_TMP/backoff.log" 'reconnecting in' 8
sed -n 's/.*reconnecting in \([0-9.]*\) s.*/\1/p' "$TEST_TMP/backoff.log" | head -8 >"$TEST_TMP/backoff.delays"
echo "# reconnect delays (s): $(tr '\n' ' ' <"$TEST_TMP/backoff.delays")"
# nominal 0.2 0.4 0.8 1 1 1 1 1 (+-25 % jitter, printed to 0.1 s)
check "backoff: delays double from 0.2 s and stop at the 1 s cap (+-25 %)" awk '
  { n = 0.2 * 2 ^ (NR - 1); if (n > 1) n = 1; if ($1 < 0.75 * n - 0.05 || $1 > 1.25 * n + 0.05) bad = 1 }
  END { exit bad || NR != 8 }' "$TEST_TMP/backoff.delays"
log_times "$TEST_TMP/backoff.log" 'reconnecting in' | head -8 | gaps >"$TEST_TMP/backoff.gaps"
echo "# gaps between attempts (s): $(tr '\n' ' ' <"$TEST_TMP/backoff.gaps")"
check "backoff: the attempts really were that far apart" bash -c \
  "paste <(sed -n '1,7p' '$TEST_TMP/backoff.delays') '$TEST_TMP/backoff.gaps' | awk '\$2 < \$1 - 0.1 || \$2 > \$1 + 0.3 { bad = 1 } END { exit bad || NR != 7 }'"
check "backoff: health 503 connecting meanwhile" reason_is "$ING_PORT" connecting
check "backoff: exits cleanly" stop_pid "$ING_PID"

# --- the right token from a file (debug logging on) --------------------------------
printf '%s\n' "$TOKEN" >"$TEST_TMP/token"
start_ing good HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN_FILE="$TEST_TMP/token" LOG_LEVEL=debug
check "token file: healthy (authenticated + subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 10
check "events are received" bash -c "sleep 2; [ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq .events.received) -gt 0 ]"
check "events are spooled (depth > 0, downstream down)" bash -c "[ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq .spool.depth) -gt 0 ]"
# REGISTRY=1 (default) adds one subscription per *_registry_updated event type (five)
check_eq "one subscription (+5 registry updates)" 6 "$(sim_stat subscriptions)"
check "the token is not in the debug log" bash -c "! grep -q -- '$TOKEN' '$TEST_TMP/good.log'"
check "/metrics serves ingestion counters" bash -c \
  "curl -s http://127.0.0.1:$ING_PORT/metrics | grep -q '^homeiq_ingestion_events_received_total [1-9]'"
check "token file: exits cleanly" stop_pid "$ING_PID"

# --- ws:// URL, two event types = two subscriptions; pong timeout; HA restart --------
start_ing multi HOME_ASSISTANT_URL=ws://127.0.0.1:$SIM_PORT/api/websocket HOME_ASSISTANT_TOKEN="$TOKEN" \
  HOME_ASSISTANT_EVENT_TYPES="state_changed, call_service" HA_PING_INTERVAL_S=1 HA_PONG_TIMEOUT_S=1
check "ws:// URL: healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 10
check_eq "two event types: two subscriptions (+5 registry updates)" 7 "$(sim_stat subscriptions)"

kill -STOP "$SIM_PID"
check "HA frozen: no pong -> 503 connecting" wait_reason "$ING_PORT" connecting 8
check "pong timeout is logged" grep -q "no pong within" "$TEST_TMP/multi.log"
kill -CONT "$SIM_PID"
check "HA answers again: healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 15
check_eq "resubscribed exactly once per event type" 7 "$(sim_stat subscriptions)"

kill -TERM "$SIM_PID"; wait "$SIM_PID" 2>/dev/null
check "HA gone: 503 connecting" wait_reason "$ING_PORT" connecting 5
sleep 3   # several failed reconnects
start_sim sim2
check "HA back: reconnected and healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 15
check_eq "one connection's worth of subscriptions" 7 "$(sim_stat subscriptions)"
check "ingestion exits cleanly" stop_pid "$ING_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

#!/usr/bin/env bash
# test_simulator.sh -- drives homeiq-ha-simulator with a real WebSocket client
# (ws_probe, built on lib/ws.h) and checks the HA protocol rules it must follow.
# usage: test_simulator.sh SIMULATOR_BIN WS_PROBE_BIN
. "$(dirname "$0")/../lib/common.sh"
SIM=${1:?simulator binary}
PROBE=${2:?ws_probe binary}
HERE=$(cd "$(dirname "$0")" && pwd)

probe() { # probe NAME PORT ACTION... : transcript in $TEST_TMP/NAME.out, returns ws_probe's rc
  local name=$1 port=$2; shift 2
  "$PROBE" "ws://127.0.0.1:$port/api/websocket" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log"
}
out() { cat "$TEST_TMP/$1.out"; }
has() { grep -qF -- "$2" "$TEST_TMP/$1.out"; }
line_of() { grep -nF -- "$2" "$TEST_TMP/$1.out" | head -1 | cut -d: -f1; }
stat_of() { curl -s "http://127.0.0.1:$1/api/sim/stats" | jq -r ".$2"; }

# ---------- house mode ----------
PORT=$(free_port)
SIMULATOR_PORT=$PORT start_bg sim_house "$SIM" --seed 7
SIM_HOUSE=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 10 || bail "house simulator started"
check "health answers 200 JSON" test "$(curl -s http://127.0.0.1:$PORT/health | jq -r .status)" = healthy

# A client that never authenticates is closed after 10 s (checked at the end):
# the time from its connect to the close is taken when the probe exits, not at
# the end of the script.
now_ms() { date +%s%3N; }
NOAUTH_T0=$(now_ms)
( PROBE_TIMEOUT_MS=15000 "$PROBE" "ws://127.0.0.1:$PORT/api/websocket" closed \
    >"$TEST_TMP/noauth.out" 2>"$TEST_TMP/noauth.log"
  now_ms >"$TEST_TMP/noauth.closed_at" ) &
NOAUTH_PID=$!

probe auth "$PORT" auth wait:auth_ok
check "auth: probe exits 0" test $? = 0
check "auth: auth_required with ha_version 2025.6.1" has auth '{"type":"auth_required","ha_version":"2025.6.1"}'
check "auth: auth_ok" has auth '"type":"auth_ok"'
# ws_probe sends its auth on open, before it has read auth_required (like the JS client).
check "auth: early auth accepted, auth_required comes first" \
  test "$(line_of auth auth_required)" -lt "$(line_of auth auth_ok)"

PROBE_TOKEN=wrong-token probe badauth "$PORT" auth wait:auth_invalid closed
check "bad token: auth_invalid message" has badauth '{"type":"auth_invalid","message":"Invalid access token or password"}'
check "bad token: then close 1000" has badauth 'CLOSE 1000'

probe badauthfmt "$PORT" 'send:{"type":"auth","access_token":"x","extra":1}' wait:auth_invalid closed
check "auth with extra keys: incorrectly formatted" has badauthfmt 'Auth message incorrectly formatted: extra keys not allowed'

probe cmds "$PORT" auth wait:auth_ok \
  'send:{"id":5,"type":"ping"}' 'wait:"id":5' \
  'send:{"id":5,"type":"ping"}' 'wait:id_reuse' \
  'send:{"id":4,"type":"ping"}' 'wait:"id":4' \
  'send:{"id":7,"type":"no_such_command"}' 'wait:"id":7' \
  'send:{"id":0,"type":"ping"}' 'wait:"id":0' \
  'send:{"type":"ping"}' 'wait:"id":null' \
  'send:{"id":"9","type":"ping"}' 'wait:"id":"9"' \
  'send:{"id":10,"type":""}' 'wait:"id":10' \
  'send:{"id":11,"type":"ping","extra":true}' 'wait:"id":11' \
  'send:{"id":12,"type":"ping"}' 'wait:"id":12' \
  'send:[{"id":20,"type":"ping"},{"id":21,"type":"ping"},{"id":21,"type":"ping"}]' 'wait:id_reuse","message":"Identifier values have to increase.' \
  'send:{"id":22,"type":"unsubscribe_events","subscription":999}' 'wait:"id":22' \
  'send:{"id":23,"type":"get_states"}' 'wait:"id":23' \
  'send:{"id":24,"type":"get_config"}' 'wait:"id":24' \
  'send:{"id":25,"type":"get_services"}' 'wait:"id":25' \
  'send:{"id":26,"type":"supported_features","features":{"coalesce_messages":1}}' 'wait:"id":26'
check "commands: probe exits 0" test $? = 0
check "ping -> pong" has cmds '{"id":5,"type":"pong"}'
check "repeated id -> id_reuse" has cmds '{"id":5,"type":"result","success":false,"error":{"code":"id_reuse","message":"Identifier values have to increase."}}'
check "lower id -> id_reuse" has cmds '{"id":4,"type":"result","success":false,"error":{"code":"id_reuse"'
check "unknown type -> unknown_command" has cmds '{"id":7,"type":"result","success":false,"error":{"code":"unknown_command","message":"Unknown command."}}'
check "id 0 -> invalid_format" has cmds '{"id":0,"type":"result","success":false,"error":{"code":"invalid_format","message":"Message incorrectly formatted."}}'
check "missing id -> invalid_format with id null" has cmds '{"id":null,"type":"result","success":false,"error":{"code":"invalid_format"'
check "string id -> invalid_format" has cmds '{"id":"9","type":"result","success":false,"error":{"code":"invalid_format"'
check "empty type -> invalid_format" has cmds '{"id":10,"type":"result","success":false,"error":{"code":"invalid_format"'
check "extra key on ping -> invalid_format extra keys" has cmds '{"id":11,"type":"result","success":false,"error":{"code":"invalid_format","message":"extra keys not allowed'
check "invalid ids do not advance last_id (id 12 accepted)" has cmds '{"id":12,"type":"pong"}'
check "array of commands: both answered" bash -c "grep -qF '{\"id\":20,\"type\":\"pong\"}' $TEST_TMP/cmds.out && grep -qF '{\"id\":21,\"type\":\"pong\"}' $TEST_TMP/cmds.out"
check "array of commands: duplicate id inside -> id_reuse" has cmds '{"id":21,"type":"result","success":false,"error":{"code":"id_reuse"'
check "unsubscribe unknown -> not_found" has cmds '{"id":22,"type":"result","success":false,"error":{"code":"not_found","message":"Subscription not found."}}'
check "supported_features -> result null" has cmds '{"id":26,"type":"result","success":true,"result":null}'

STATES=$(grep -F '"id":23' "$TEST_TMP/cmds.out")
check "get_states: at least 40 State objects" test "$(jq '.result | length' <<<"$STATES")" -ge 40
check "get_states: every State has the HA keys" test "$(jq '[.result[] | select((keys_unsorted | sort) == ["attributes","context","entity_id","last_changed","last_reported","last_updated","state"])] | length' <<<"$STATES")" = "$(jq '.result | length' <<<"$STATES")"
check "get_states: context ids are 26-char ULIDs, states are strings" test "$(jq '[.result[] | select((.context.id | test("^[0-9A-HJKMNP-TV-Z]{26}$")) and (.state | type == "string") and (.context | has("parent_id") and has("user_id")))] | length' <<<"$STATES")" = "$(jq '.result | length' <<<"$STATES")"
check "get_states: last_reported == last_updated, times isoformat +00:00" test "$(jq '[.result[] | select(.last_reported == .last_updated and (.last_updated | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?\\+00:00$")))] | length' <<<"$STATES")" = "$(jq '.result | length' <<<"$STATES")"
CONFIG=$(grep -F '"id":24' "$TEST_TMP/cmds.out")
check "get_config: shape (version, unit_system, location, state)" test "$(jq -r '[.result.version, .result.unit_system.temperature, (.result.location_name|type), .result.state, (.result.components|type), .result.time_zone] | join(",")' <<<"$CONFIG")" = "2025.6.1,°C,string,RUNNING,array,Europe/Amsterdam"
check "get_services: has light.turn_on" test "$(grep -F '"id":25' "$TEST_TMP/cmds.out" | jq -r '.result.light.turn_on.name')" = "Turn on"

probe badjson "$PORT" auth wait:auth_ok 'send:{"id":1,"type":' closed
check "invalid JSON: connection closed without a result" bash -c "grep -q '^CLOSE 1000' $TEST_TMP/badjson.out && ! grep -q '\"type\":\"result\"' $TEST_TMP/badjson.out"

# House events: full state_changed shapes, subscription ids, entities diffs.
PROBE_TIMEOUT_MS=20000 probe house "$PORT" auth wait:auth_ok \
  'send:{"id":3,"type":"subscribe_events","event_type":"state_changed"}' 'wait:"id":3,"type":"result"' \
  'send:{"id":4,"type":"subscribe_entities"}' 'wait:{"a":{' \
  events:12
check "house: 12 events within 20 s" test $? = 0
grep '"event_type":"state_changed"' "$TEST_TMP/house.out" >"$TEST_TMP/house.sc"
check "house: state_changed events carry the subscription id 3" test "$(jq -s '[.[] | select(.id == 3)] | length' "$TEST_TMP/house.sc")" = "$(wc -l <"$TEST_TMP/house.sc")"
check "house: time_fired == new_state.last_updated, context == new_state.context, origin LOCAL" \
  test "$(jq -s '[.[] | .event | select(.time_fired == .data.new_state.last_updated and .context == .data.new_state.context and .origin == "LOCAL" and .data.entity_id == .data.new_state.entity_id and (.data.old_state | type) == "object")] | length' "$TEST_TMP/house.sc")" = "$(wc -l <"$TEST_TMP/house.sc")"
check "house: old_state.last_updated < time_fired" \
  test "$(jq -s '[.[] | .event | select(.data.old_state.last_updated < .time_fired)] | length' "$TEST_TMP/house.sc")" = "$(wc -l <"$TEST_TMP/house.sc")"
check "subscribe_entities: snapshot {\"a\":{...}} for every entity" test "$(grep -F '{"a":{' "$TEST_TMP/house.out" | head -1 | jq '.event.a | length')" -ge 40
check "subscribe_entities: diffs {\"c\":{eid:{\"+\":...}}} with id 4" test "$(grep -F '"c":{' "$TEST_TMP/house.out" | grep -F '"+":' | jq -s '[.[] | select(.id == 4)] | length')" -ge 1

# ---------- load mode: filters, unsubscribe, coalescing, --count, sent log ----------
LPORT=$(free_port)
SIMULATOR_PORT=$LPORT start_bg sim_load "$SIM" --rate 3000 --seed 3
SIM_LOAD=$LAST_PID
wait_healthy "http://127.0.0.1:$LPORT/health" 10 || bail "load simulator started"
check "load: nothing generated before anyone subscribes" test "$(stat_of "$LPORT" generated)" = 0
probe filter "$LPORT" auth wait:auth_ok \
  'send:{"id":3,"type":"subscribe_events","event_type":"call_service"}' 'wait:"id":3' \
  'send:{"id":4,"type":"subscribe_events","event_type":"state_changed"}' 'wait:"id":4' \
  events:200 \
  'send:{"id":5,"type":"unsubscribe_events","subscription":4}' 'wait:"id":5' idle:500
check "filter: probe exits 0" test $? = 0
check "filter: no event for the call_service subscription" test "$(grep -c '"id":3}$' "$TEST_TMP/filter.out")" = 0
check "filter: state_changed events carry id 4" test "$(grep -c '"event_type":"state_changed".*"id":4}$' "$TEST_TMP/filter.out")" -ge 200
check "unsubscribe: result null" has filter '{"id":5,"type":"result","success":true,"result":null}'
UNSUB_LINE=$(line_of filter '{"id":5,"type":"result"')
check "unsubscribe: no event after its result" test -n "$UNSUB_LINE" -a "$(sed -n "${UNSUB_LINE:-1},\$p" "$TEST_TMP/filter.out" | grep -c '"type":"event"')" = 0
check "load: no arrays without coalesce_messages" test "$(grep -c '^ARRAY' "$TEST_TMP/filter.out")" = 0

probe coalesce "$LPORT" auth wait:auth_ok \
  'send:{"id":1,"type":"supported_features","features":{"coalesce_messages":1}}' \
  'send:{"id":2,"type":"subscribe_events"}' events:300
check "coalesce: events arrive in JSON array frames" test "$(grep -c '^ARRAY' "$TEST_TMP/coalesce.out")" -ge 1
check "coalesce: arrays hold at most 256 messages" test "$(grep '^ARRAY' "$TEST_TMP/coalesce.out" | awk '$2 > 256' | wc -l)" = 0

curl -s -X POST "http://127.0.0.1:$LPORT/api/sim/pause" >/dev/null
check "pause: stats say paused" test "$(stat_of "$LPORT" paused)" = true
curl -s -X POST "http://127.0.0.1:$LPORT/api/sim/resume" >/dev/null
check "resume: stats say not paused" test "$(stat_of "$LPORT" paused)" = false

# /api/sim/drop: abrupt TCP close (the client sees 1006, no close frame)
PROBE_TIMEOUT_MS=10000 "$PROBE" "ws://127.0.0.1:$LPORT/api/websocket" auth wait:auth_ok \
  'send:{"id":1,"type":"subscribe_events"}' closed >"$TEST_TMP/drop.out" 2>"$TEST_TMP/drop.log" &
DROP_PID=$!
for _ in $(seq 300); do [ "$(stat_of "$LPORT" subscribed)" = 1 ] && break; sleep 0.1; done
check "drop: endpoint reports one dropped connection" test "$(curl -s -X POST "http://127.0.0.1:$LPORT/api/sim/drop" | jq .dropped)" = 1
wait $DROP_PID
check "drop: client saw an abnormal close (1006)" has drop 'CLOSE 1006'
check "drop: stats count it" test "$(stat_of "$LPORT" drops)" = 1
check "drop: no client left" test "$(stat_of "$LPORT" clients)" = 0

stop_pid "$SIM_LOAD"
check "load simulator: clean exit (no leaks)" test $? = 0

# back-pressure: a client that stops reading must pause generation, not grow memory
BPORT=$(free_port)
SIMULATOR_PORT=$BPORT start_bg sim_bp "$SIM" --rate 50000 --seed 4
SIM_BP=$LAST_PID
wait_healthy "http://127.0.0.1:$BPORT/health" 10 || bail "back-pressure simulator started"
python3 "$HERE/slow_reader.py" "$BPORT" homeiq-simulator-token 3 >"$TEST_TMP/slow.out" 2>&1 &
SLOW_PID=$!
for _ in $(seq 300); do [ "$(stat_of "$BPORT" paused_backpressure)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
check "back-pressure: generation paused for a client that does not read" test "$(stat_of "$BPORT" paused_backpressure)" -ge 1
check "back-pressure: outbound queue bounded (< 8 MiB)" test "$(stat_of "$BPORT" pending_bytes)" -lt 8388608
wait $SLOW_PID
stop_pid "$SIM_BP"
check "back-pressure simulator: clean exit (no leaks)" test $? = 0

CPORT=$(free_port)
SIMULATOR_PORT=$CPORT SIMULATOR_SENT_LOG="$TEST_TMP/sent.jsonl" start_bg sim_count "$SIM" --rate 5000 --count 1000 --seed 11
SIM_COUNT=$LAST_PID
wait_healthy "http://127.0.0.1:$CPORT/health" 10 || bail "count simulator started"
PROBE_QUIET=0 probe count "$CPORT" auth wait:auth_ok 'send:{"id":1,"type":"subscribe_events"}' events:1000 idle:800
check "count: probe exits 0" test $? = 0
check "count: exactly 1000 events received" test "$(grep -c '"type":"event"' "$TEST_TMP/count.out")" = 1000
check "count: stats sent == 1000, generation stopped" test "$(curl -s "http://127.0.0.1:$CPORT/api/sim/stats" | jq -r '[.sent, .generating, .count_reached] | join(",")')" = "1000,false,true"
check "sent log: 1000 lines" test "$(wc -l <"$TEST_TMP/sent.jsonl")" = 1000
grep '"type":"event"' "$TEST_TMP/count.out" | jq -c '.event | {entity_id: .data.entity_id, time_fired, context_id: .context.id, state: .data.new_state.state, event_type}' >"$TEST_TMP/received.jsonl"
check "sent log matches the received events exactly" cmp -s <(jq -c . "$TEST_TMP/sent.jsonl") "$TEST_TMP/received.jsonl"
check "count: all time_fired unique and strictly increasing" test "$(jq -r .time_fired "$TEST_TMP/sent.jsonl" | sort -u | wc -l)" = 1000
check "count: time_fired strictly increasing in send order" bash -c "jq -r .time_fired $TEST_TMP/sent.jsonl | sed 's/+00:00//; s/\$/.000000/; s/^\(.\{26\}\).*/\1/' | sort -c -u"
check "count: context ids unique ULIDs" test "$(jq -r .context_id "$TEST_TMP/sent.jsonl" | grep -E '^[0-9A-HJKMNP-TV-Z]{26}$' | sort -u | wc -l)" = 1000
check "count: load mode cycles over >= 40 entities" test "$(jq -r .entity_id "$TEST_TMP/sent.jsonl" | sort -u | wc -l)" -ge 40
stop_pid "$SIM_COUNT"
check "count simulator: clean exit (no leaks)" test $? = 0

# the no-auth client from the start
wait $NOAUTH_PID
check "no auth within 10 s: closed by the server" has noauth 'CLOSE 1000'
NOAUTH_MS=$(( $(cat "$TEST_TMP/noauth.closed_at") - NOAUTH_T0 ))
check "no auth: closed 10 s after connecting (took ${NOAUTH_MS} ms)" test "$NOAUTH_MS" -ge 9500 -a "$NOAUTH_MS" -le 12500
stop_pid "$SIM_HOUSE"
check "house simulator: clean exit (no leaks)" test $? = 0
finish

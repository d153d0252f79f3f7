#!/usr/bin/env bash
# test_ingestion_api.sh -- websocket-ingestion's HTTP side and spool in
# forward-only mode (HOME_ASSISTANT_URL=none), with the real enrichment-pipeline
# and data-storage downstream: POST /api/v1/events/forward answers only once the
# events are durable; nothing is lost while downstream is down (health turns 503
# downstream_unreachable); a restart re-sends the spool; a torn tail is skipped;
# at SPOOL_MAX_BYTES health is 503 spool_full and new events are refused, the
# spooled ones are kept and delivered.
. "$(dirname "$0")/../lib/common.sh"
ING_BIN=$1 ENR_BIN=$2 STO_BIN=$3
ING_PORT=$(free_port) ENR_PORT=$(free_port) STO_PORT=$(free_port)
ING="http://127.0.0.1:$ING_PORT"

# event ID STATE : one HA state_changed event as JSON.
event() {
  local t; t=$(date -u +%Y-%m-%dT%H:%M:%S.%6N+00:00)
  printf '{"event_type":"state_changed","data":{"entity_id":"sensor.t%s","old_state":null,"new_state":{"entity_id":"sensor.t%s","state":"%s","attributes":{"unit_of_measurement":"W","pad":"%s"},"last_changed":"%s","last_reported":"%s","last_updated":"%s","context":{"id":"01JXPS4SATTNZJ8RR616P%05d","parent_id":null,"user_id":null}}},"origin":"LOCAL","time_fired":"%s","context":{"id":"01JXPS4SATTNZJ8RR616P%05d","parent_id":null,"user_id":null}}' \
    "$1" "$1" "$2" "${PAD:-x}" "$t" "$t" "$t" "$1" "$t" "$1"
}
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @- "$ING/api/v1/events/forward"; }
hstat() { curl -s "$ING/health" | jq -r "$1"; }
start_ing() {
  start_bg "$1" env HOME_ASSISTANT_URL=none WEBSOCKET_INGESTION_PORT=$ING_PORT DATA_DIR="$TEST_TMP/ing" \
    ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$ENR_PORT DOWNSTREAM_UNHEALTHY_S=1 SPOOL_MAX_BYTES=1048576 SPOOL_FSYNC_MS=300 \
    FORWARD_RETRY_MIN_MS=50 FORWARD_RETRY_MAX_MS=300 "$ING_BIN"
  ING_PID=$LAST_PID
  wait_http "$ING/health" || bail "websocket-ingestion ($1) started"
}
start_downstream() {
  start_bg "sto$1" env DATA_STORAGE_PORT=$STO_PORT DATA_DIR="$TEST_TMP/sto" "$STO_BIN"; STO_PID=$LAST_PID
  start_bg "enr$1" env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO_PORT "$ENR_BIN"; ENR_PID=$LAST_PID
  wait_http "http://127.0.0.1:$STO_PORT/health" "" "$STO_PID" || bail "data-storage (sto$1) started"
  wait_http "http://127.0.0.1:$ENR_PORT/health" "" "$ENR_PID" || bail "enrichment-pipeline (enr$1) started"
}
depth_is() { [ "$(hstat .spool.depth)" = "$1" ]; }
wait_depth() { local i=0; while (( i < $2 * 10 )); do depth_is "$1" && return 0; sleep 0.1; i=$((i+1)); done; hstat . >&2; return 1; }
stored() { curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10000" | jq -r '.events[].entity_id' | sort; }

check "--help documents the configuration" bash -c "'$ING_BIN' --help | grep -q SPOOL_MAX_BYTES && '$ING_BIN' --help | grep -q HOME_ASSISTANT_TOKEN_FILE"
check "an unknown argument is refused" bash -c "! '$ING_BIN' --bogus 2>/dev/null"
check "no token and HA enabled: refuses to start" bash -c "! env -u HOME_ASSISTANT_TOKEN HOME_ASSISTANT_URL=http://127.0.0.1:1 WEBSOCKET_INGESTION_PORT=0 DATA_DIR='$TEST_TMP/x' '$ING_BIN' 2>/dev/null"

start_ing ing1
check_eq "forward-only mode: healthy without HA" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$ING/health")"
check_eq "forward-only mode: HA shown disabled" disabled "$(hstat .home_assistant.state)"
check_eq "GET on the forward endpoint: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$ING/api/v1/events/forward")"
check_eq "malformed JSON: 400" 400 "$(printf '{"a":' | post)"
check "malformed JSON: error gives the byte position" grep -q '"position"' "$TEST_TMP/resp"
check_eq "a non-object event: 400" 400 "$(printf '[1]' | post)"

# Downstream is down: events are accepted (durable) and kept.
# Answered only after the fsync covering the events: with SPOOL_FSYNC_MS=300 the
# group fsync comes up to 300 ms after the append, so an answer given before it
# would find the fsync counter unchanged.
F0=$(hstat .spool.fsyncs)
check_eq "one event: 200" 200 "$(event 1 on | post)"
F1=$(hstat .spool.fsyncs)
check "the answer came after an fsync ($F0 -> $F1 fsyncs)" test "$F1" -gt "$F0"
check_eq "one event: accepted 1" 1 "$(jq .accepted "$TEST_TMP/resp")"
check_eq "array + WS envelope form: 200" 200 "$( { printf '['; event 2 on; printf ',{"type":"event","id":5,"event":'; event 3 off; printf '}]'; } | post)"
check_eq "array: accepted 2" 2 "$(jq .accepted "$TEST_TMP/resp")"
check_eq "{\"events\":[...]} form: 200" 200 "$( { printf '{"events":['; event 4 12.5; printf ']}'; } | post)"
check_eq "4 events spooled" 4 "$(hstat .spool.depth)"
ing_503() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$ING/health")" = 503 ]; }
wait_for 30 ing_503 # the probe notices after DOWNSTREAM_UNHEALTHY_S; a loaded machine takes longer than a fixed sleep
check_eq "downstream down > DOWNSTREAM_UNHEALTHY_S: 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$ING/health")"
check_eq "reason downstream_unreachable" downstream_unreachable "$(hstat .reason)"
check "ingestion exits cleanly with a backlog" stop_pid "$ING_PID"

# A crash in the middle of a write leaves a torn record: skipped, never misread.
SEG=$(ls "$TEST_TMP"/ing/spool/*.seg | tail -1)
printf '\x40\x00\x00\x00\x01\x02\x03\x04{"torn":' >>"$SEG"
start_ing ing2
check "torn tail detected on restart" grep -q "torn tail" "$TEST_TMP/ing2.log"
check_eq "the 4 events survived the restart" 4 "$(hstat .spool.depth)"

start_downstream 1
check "downstream back: spool drains" wait_depth 0 20
check_eq "healthy again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$ING/health")"
check_eq "all 4 events stored" "sensor.t1 sensor.t2 sensor.t3 sensor.t4" "$(stored | xargs)"
check_eq "forwarded counter" 4 "$(hstat .events.forwarded)"

# Spool full: downstream stopped, 1 MiB limit.
check "enrichment stops cleanly (downstream down for the spool-full case)" stop_pid "$ENR_PID"
PAD=$(head -c 1500 /dev/zero | tr '\0' p)
export PAD
# batch_of FIRST : 50 events with ids FIRST..FIRST+49 (ids are counted here, in
# this shell: an id++ inside $( ) would be lost with its subshell).
batch_of() { local i; printf '['; for ((i = $1; i < $1 + 49; i++)); do event "$i" on; printf ','; done; event "$i" on; printf ']'; }
code=200 n=0 id=100
while [ "$code" = 200 ] && (( n < 200 )); do
  code=$(batch_of "$id" | post)
  id=$((id + 50)) n=$((n + 1))
done
check_eq "spool at SPOOL_MAX_BYTES: new events refused with 503" 503 "$code"
check "the refusal says why" grep -q "spool full" "$TEST_TMP/resp"
check_eq "health: 503 spool_full" spool_full "$(hstat .reason)"
ACCEPTED=$(hstat .events.accepted)
DEPTH=$(hstat .spool.depth)
check "the spooled events are kept (depth $DEPTH)" test "$DEPTH" -ge 400
start_bg enr2 env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO_PORT "$ENR_BIN"; ENR_PID=$LAST_PID
check "downstream back: the full spool drains" wait_depth 0 60
check_eq "healthy again after draining" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$ING/health")"
check_eq "every accepted event stored" "$((ACCEPTED + 4))" "$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10000" | jq '.events | length')"
check_eq "... each under its own entity id (ids unique across batches)" "$((ACCEPTED + 4))" \
  "$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10000" | jq '[.events[].entity_id] | unique | length')"
check_eq "accepting again" 200 "$(event 9999 on | post)"
check "ingestion exits cleanly" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
finish

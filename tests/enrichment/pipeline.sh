#!/usr/bin/env bash
# pipeline.sh BACKEND ENRICHMENT_BIN STORAGE_BIN
#
# Integration test of the enrichment-pipeline against a real data-storage
# (BACKEND = sqlite, or influxdb with a real influxd from tests/lib/influxd.sh):
#  1. every example event of ha-websocket-protocol.md §2 (data/ha_examples.json)
#     goes through enrichment into storage; every stored field is checked
#     against data/ha_examples_expected.json via storage's GET;
#  2. the edge cases (data/edge_cases.json): accepted ones checked field by
#     field, rejected ones must come back as rejected with our input index and
#     sit in storage's dead-letter store with the raw event and the reason;
#  3. the request contract: one object / array / {"events":[]} bodies, 400 with
#     byte position, 413 (body and MAX_BATCH), 422 when storage refuses a batch,
#     re-posts are duplicates, metrics;
#  4. storage SIGKILLed mid-stream: enrichment answers 503 (never 200) and its
#     /health says storage_unreachable; after a restart, re-posting every batch
#     stores every event exactly once (counted by event_id).
set -u
BACKEND=$1 ENRICH=$2 STORAGE=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/common.sh"
DATA=$HERE/data

SPORT=$(free_port)
EPORT=$(free_port); while [ "$EPORT" = "$SPORT" ]; do EPORT=$(free_port); done
S=http://127.0.0.1:$SPORT E=http://127.0.0.1:$EPORT

storage_env=(DATA_STORAGE_PORT=$SPORT MAX_BATCH=500 DATA_DIR="$TEST_TMP/storage")
if [ "$BACKEND" = influxdb ]; then
  . "$HERE/../lib/influxd.sh"
  influxd_start || bail "influxd did not start"
  storage_env+=(STORAGE_BACKEND=influxdb INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_PING_INTERVAL_MS=200)
fi
start_storage() { start_bg "storage$1" env "${storage_env[@]}" "$STORAGE"; STORAGE_PID=$LAST_PID; }

start_storage 1
start_bg enrichment env TZ=Europe/Amsterdam ENRICHMENT_PIPELINE_PORT=$EPORT DATA_STORAGE_URL=$S \
  MAX_BATCH=1000 MAX_BODY_BYTES=1048576 STORAGE_PROBE_INTERVAL_MS=200 STORAGE_TIMEOUT_MS=2000 "$ENRICH"
ENRICH_PID=$LAST_PID
wait_healthy "$S/health" 30 "$STORAGE_PID" || bail "storage not healthy"
wait_healthy "$E/health" 10 "$ENRICH_PID" || bail "enrichment not healthy"
echo "# backend $BACKEND: storage $S, enrichment $E"

# post BODY_FILE -> sets CODE and BODY
post() {
  BODY=$(curl -s -o - -w '\n%{http_code}' -H 'Content-Type: application/json' --data-binary @"$1" "$E/api/v1/events")
  CODE=${BODY##*$'\n'}; BODY=${BODY%$'\n'*}
}
jqe() { jq -e "$@" >/dev/null; }
all_events() { curl -s "$S/api/v1/events?limit=10000"; }

# ---- 1. every §2 example ---------------------------------------------------
post "$DATA/ha_examples.json"
check_eq "examples: 200" 200 "$CODE"
check_eq "examples: answer" '{"success":true,"processed":10,"stored":10,"duplicates":0,"dead_lettered":0,"rejected":[]}' \
  "$(jq -c . <<<"$BODY")"
all_events >"$TEST_TMP/stored1.json"
check_eq "examples: 10 stored" 10 "$(jq '.events | length' "$TEST_TMP/stored1.json")"

# compare_record NAME STORED_JSON EXPECT_JSON [INPUT_ATTRIBUTES_JSON]
# Every expected field must match (numbers numerically), attributes must equal
# the input's new_state.attributes, event_id is 32 hex, stored_at is RFC 3339.
compare_record() {
  local name=$1 rec=$2 want=$3 attrs=${4-}
  local bad
  bad=$(jq -n -c --argjson r "$rec" --argjson w "$want" '
    [$w | to_entries[] | .key as $k | (if ($r | has($k)) then $r[$k] else null end) as $got | select(
       if (.value | type) == "number" then ($got | type) != "number" or
            ((($got - .value) | fabs) > (1e-9 * ([1, (.value | fabs)] | max)))
       else $got != .value end) | .key]')
  check_eq "$name: expected fields" "[]" "$bad"
  if [ -n "$attrs" ]; then
    check_eq "$name: attributes kept whole" "$(jq -c -S . <<<"$attrs")" "$(jq -c -S '.attributes' <<<"$rec")"
  fi
  check "$name: event_id is 32 hex" jqe '.event_id | test("^[0-9a-f]{32}$")' <<<"$rec"
  check "$name: stored_at" jqe '.stored_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' <<<"$rec"
}

STATE_KEYS='["attributes","context_id","context_parent_id","context_user_id","device_class","domain","duration_in_state","entity_id","event_id","event_type","friendly_name","object_id","old_state","old_value","origin","state","state_changed","state_class","stored_at","time_fired","time_of_day","unit_of_measurement","value","weekday"]'
for i in $(seq 0 9); do
  want=$(jq -c ".[$i]" "$DATA/ha_examples_expected.json")
  eid=$(jq -r .entity_id <<<"$want"); tf=$(jq -r .time_fired <<<"$want")
  rec=$(jq -c --arg e "$eid" --arg t "$tf" '[.events[] | select(.entity_id == $e and .time_fired == $t)] | if length == 1 then .[0] else null end' "$TEST_TMP/stored1.json")
  if [ "$rec" = null ]; then check_eq "example #$((i + 1)) $eid stored once" 1 0; continue; fi
  attrs=$(jq -c ".[$i].event.data.new_state.attributes // null" "$DATA/ha_examples.json")
  compare_record "example #$((i + 1)) $eid" "$rec" "$want" "$attrs"
  check_eq "example #$((i + 1)): exactly the record's fields" "$STATE_KEYS" "$(jq -c 'keys' <<<"$rec")"
  check_eq "example #$((i + 1)): state verbatim" \
    "$(jq -c ".[$i].event.data.new_state.state // null" "$DATA/ha_examples.json")" "$(jq -c .state <<<"$rec")"
done

# ---- 2. edge cases ---------------------------------------------------------
jq -c '[.[].input]' "$DATA/edge_cases.json" >"$TEST_TMP/edge.json"
post "$TEST_TMP/edge.json"
check_eq "edge cases: 200" 200 "$CODE"
want_rej=$(jq -c '[to_entries[] | select(.value.reject) | .key]' "$DATA/edge_cases.json")
check_eq "edge cases: rejected indexes are ours" "$want_rej" "$(jq -c '[.rejected[].index]' <<<"$BODY")"
n_acc=$(jq '[.[] | select(.reject | not)] | length' "$DATA/edge_cases.json")
n_rej=$(jq '[.[] | select(.reject)] | length' "$DATA/edge_cases.json")
check_eq "edge cases: stored" "$n_acc" "$(jq .stored <<<"$BODY")"
check_eq "edge cases: dead-lettered" "$n_rej" "$(jq .dead_lettered <<<"$BODY")"
check_eq "edge cases: processed" "$(jq length "$TEST_TMP/edge.json")" "$(jq .processed <<<"$BODY")"
all_events >"$TEST_TMP/stored2.json"
n=$(jq length "$DATA/edge_cases.json")
for i in $(seq 0 $((n - 1))); do
  c=$(jq -c ".[$i]" "$DATA/edge_cases.json")
  name=$(jq -r .name <<<"$c")
  if jq -e .reject <<<"$c" >/dev/null; then continue; fi
  want=$(jq -c .expect <<<"$c")
  # find by event_type + time_fired (+ entity_id when there is one)
  rec=$(jq -c --argjson w "$want" --argjson c "$c" '
    [.events[] | select(.event_type == ($w.event_type // $c.input.event_type // $c.input.event.event_type)
                        and (.entity_id // null) == $w.entity_id
                        and (($w.time_fired == null) or (.time_fired == $w.time_fired)))]
    | if length == 1 then .[0] else null end' "$TEST_TMP/stored2.json")
  if [ "$rec" = null ]; then check_eq "edge '$name' stored once" 1 0; continue; fi
  compare_record "edge '$name'" "$rec" "$want"
done
curl -s "$S/api/v1/dead-letters?limit=1000" >"$TEST_TMP/dead.json"
check_eq "dead letters: all ours are there" "$n_rej" \
  "$(jq '[.dead_letters[] | select(.source == "enrichment-pipeline")] | length' "$TEST_TMP/dead.json")"
for i in $(seq 0 $((n - 1))); do
  c=$(jq -c ".[$i]" "$DATA/edge_cases.json")
  jq -e .reject <<<"$c" >/dev/null || continue
  name=$(jq -r .name <<<"$c")
  err=$(jq -r --argjson idx "$i" '.rejected[] | select(.index == $idx) | .error' <<<"$BODY")
  check "dead letter '$name': raw event kept with its reason" \
    jqe --argjson c "$c" --arg err "$err" 'any(.dead_letters[]; .event == $c.input and .error == $err and .source == "enrichment-pipeline")' \
    "$TEST_TMP/dead.json"
done

# ---- 3. the request contract -------------------------------------------------
printf '%s' '{"event_type":"state_changed","entity_id":"sensor.single_object","state":"on","timestamp":"2025-06-16T12:00:00Z"}' >"$TEST_TMP/one.json"
post "$TEST_TMP/one.json"
check_eq "one event object: 200 stored 1" "200 1" "$CODE $(jq .stored <<<"$BODY")"
jq -c '{events: [.[0].event, .[1]]}' "$DATA/ha_examples.json" >"$TEST_TMP/wrapped.json"
post "$TEST_TMP/wrapped.json"
check_eq "{\"events\":[...]} of known events: duplicates 2" "200 0 2" "$CODE $(jq .stored <<<"$BODY") $(jq .duplicates <<<"$BODY")"
post "$DATA/ha_examples.json"
check_eq "re-post of the examples: all duplicates" '200 {"stored":0,"duplicates":10}' "$CODE $(jq -c '{stored,duplicates}' <<<"$BODY")"
printf '[{"event_type":"state_changed",' >"$TEST_TMP/bad.json"
post "$TEST_TMP/bad.json"
check_eq "malformed JSON: 400" 400 "$CODE"
check "malformed JSON: byte position" jqe '.position == 31 and (.error | test("byte 31"))' <<<"$BODY"
printf '{"events":{}}' >"$TEST_TMP/bad2.json"
post "$TEST_TMP/bad2.json"
check_eq "events not an array: 400" 400 "$CODE"
printf '[]' >"$TEST_TMP/empty.json"
post "$TEST_TMP/empty.json"
check_eq "empty batch: 200 processed 0" "200 0" "$CODE $(jq .processed <<<"$BODY")"
jq -n -c '[range(0; 1001) | {event_type: "state_changed", entity_id: "sensor.too_many", state: "1", timestamp: "2025-06-16T12:00:00Z"}]' >"$TEST_TMP/big.json"
post "$TEST_TMP/big.json"
check_eq "over MAX_BATCH: 413" 413 "$CODE"
head -c 1100000 /dev/zero | tr '\0' ' ' >"$TEST_TMP/huge.json"; echo '[]' >>"$TEST_TMP/huge.json"
post "$TEST_TMP/huge.json"
check_eq "over MAX_BODY_BYTES: 413" 413 "$CODE"
# storage accepts at most 500 per batch: 600 valid events -> storage 400 -> 422 (lib/delivery: refused, the
# caller splits the batch), never 200
jq -n -c '[range(0; 600) | {event_type: "state_changed", entity_id: "sensor.refused", state: (. | tostring), time_fired: ((1750000000 + .) | todate)}]' >"$TEST_TMP/refused.json"
post "$TEST_TMP/refused.json"
check_eq "storage refuses the batch (4xx): 422" 422 "$CODE"
check "422 carries storage's message" jqe '.error | test("data-storage answered 400")' <<<"$BODY"
check_eq "refused batch: nothing stored" 0 "$(curl -s "$S/api/v1/events?entity_id=sensor.refused&limit=10" | jq .count)"
check_eq "GET on POST route: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$E/api/v1/events")"

metrics=$(curl -s "$E/metrics")
check "metrics: events in" grep -q '^homeiq_enrichment_events_in_total [1-9]' <<<"$metrics"
check "metrics: events out" grep -q '^homeiq_enrichment_events_out_total [1-9]' <<<"$metrics"
check_eq "metrics: rejects by reason (bad_entity_id)" 'homeiq_enrichment_rejected_total{reason="bad_entity_id"} 5' \
  "$(grep 'reason="bad_entity_id"' <<<"$metrics")"
for st in parse enrich forward; do
  check "metrics: $st latency histogram" grep -q "^homeiq_enrichment_stage_seconds_count{stage=\"$st\"} [1-9]" <<<"$metrics"
done

# a dead letter is logged once storage stored it, never for a body refused whole afterwards (400, 413): the
# fast path meets an invalid event before the scan reaches the bad byte or the batch limit
dl_lines() { grep -c 'dead-lettered.*log_probe' "$TEST_TMP/enrichment.log"; }
printf '[{"event_type":"state_changed","time_fired":"2025-06-16T12:00:00Z","data":{"entity_id":"sensor.log_probe__bad","new_state":{"state":"1"}}},x]' >"$TEST_TMP/dl400.json"
post "$TEST_TMP/dl400.json"
check_eq "an invalid event before a malformed byte: 400" 400 "$CODE"
jq -n -c '[range(0; 1001) | {event_type: "state_changed", time_fired: "2025-06-16T12:00:00Z", data: {entity_id: "sensor.log_probe__bad", new_state: {state: "1"}}}]' >"$TEST_TMP/dl413.json"
post "$TEST_TMP/dl413.json"
check_eq "1,001 invalid events: 413" 413 "$CODE"
check_eq "... and no dead letter logged for either body" 0 "$(dl_lines)"
printf '[{"event_type":"state_changed","time_fired":"2025-06-16T12:00:00Z","data":{"entity_id":"sensor.log_probe__bad","new_state":{"state":"1"}}}]' >"$TEST_TMP/dl200.json"
post "$TEST_TMP/dl200.json"
check_eq "the same invalid event alone: 200, dead-lettered" "200 1" "$CODE $(jq .dead_lettered <<<"$BODY")"
check_eq "... logged once, with its reason" 1 "$(dl_lines)"
check "... the reason in the line" grep -q 'dead-lettered (bad_entity_id).*log_probe' "$TEST_TMP/enrichment.log"

# ---- 4. storage killed mid-stream ------------------------------------------
NB=40 BS=50
mkdir -p "$TEST_TMP/stream"
for k in $(seq 1 $NB); do
  jq -n -c --argjson k "$k" --argjson bs "$BS" '[range(0; $bs) as $i | {event_type: "state_changed",
     entity_id: ("sensor.stream_" + ($k | tostring)), state: (($k * $bs + $i) | tostring),
     time_fired: ((1760000000 + $k * $bs + $i) | todate)}]' >"$TEST_TMP/stream/$k.json"
done
poster() { # posts every batch in order, one status code per line
  local k
  for k in $(seq 1 $NB); do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      --data-binary @"$TEST_TMP/stream/$k.json" "$E/api/v1/events" >>"$TEST_TMP/stream/codes"
    sleep 0.02
  done
}
: >"$TEST_TMP/stream/codes"
poster &
POSTER=$!
i=0; while [ "$(wc -l <"$TEST_TMP/stream/codes")" -lt 12 ] && (( i < 300 )); do sleep 0.02; i=$((i + 1)); done
kill -KILL "$STORAGE_PID"; wait "$STORAGE_PID" 2>/dev/null
wait "$POSTER"
codes=$(tr '\n' ' ' <"$TEST_TMP/stream/codes")
echo "# stream codes: $codes"
check_eq "stream: one answer per batch" $NB "$(wc -l <"$TEST_TMP/stream/codes")"
check "stream: only 200 then 503 (never 200 after the kill)" grep -qE '^(200 )+(503 )+$' <<<"$codes"
n200=$(grep -c '^200$' "$TEST_TMP/stream/codes")
i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "$E/health")" = 503 ] || (( i > 50 )); do sleep 0.1; i=$((i + 1)); done
check_eq "health while storage is down: 503 storage_unreachable" "storage_unreachable" "$(curl -s "$E/health" | jq -r .reason)"
printf '%s' '{"event_type":"state_changed","entity_id":"sensor.while_down","state":"1","timestamp":"2025-06-16T12:00:00Z"}' >"$TEST_TMP/down.json"
post "$TEST_TMP/down.json"
check_eq "post while storage is down: 503" 503 "$CODE"

start_storage 2
wait_healthy "$S/health" 30 "$STORAGE_PID" || bail "storage did not come back after its restart"
wait_healthy "$E/health" 10 || bail "enrichment did not see storage come back"
check_eq "after restart: every batch answered 200 before the kill is stored" $((n200 * BS)) \
  "$(all_events | jq '[.events[] | select((.entity_id // "") | startswith("sensor.stream_"))] | length' | \
     awk -v want=$((n200 * BS)) '{ print ($1 >= want) ? want : $1 }')"
stored=0 dups=0 bad=0
for k in $(seq 1 $NB); do
  post "$TEST_TMP/stream/$k.json"
  [ "$CODE" = 200 ] || bad=$((bad + 1))
  stored=$((stored + $(jq .stored <<<"$BODY"))) dups=$((dups + $(jq .duplicates <<<"$BODY")))
done
check_eq "re-post after restart: every batch 200" 0 "$bad"
check_eq "re-post: stored + duplicates = all events" $((NB * BS)) $((stored + dups))
check "re-post: batches acknowledged before the kill are duplicates" test "$dups" -ge $((n200 * BS))
all_events >"$TEST_TMP/stored3.json"
check_eq "exactly once: stream events by event_id" "$((NB * BS)) $((NB * BS))" \
  "$(jq -r '[.events[] | select((.entity_id // "") | startswith("sensor.stream_"))] | "\(length) \(map(.event_id) | unique | length)"' "$TEST_TMP/stored3.json")"
check_eq "exactly once: every stream value present" "$((NB * BS))" \
  "$(jq '[.events[] | select((.entity_id // "") | startswith("sensor.stream_")) | .state] | unique | length' "$TEST_TMP/stored3.json")"

# ---- 5. hung storage (SIGSTOP): timeouts, a caller that gives up, shutdown --
kill -STOP "$STORAGE_PID"
printf '%s' '{"event_type":"state_changed","entity_id":"sensor.while_hung","state":"1","timestamp":"2025-06-16T12:00:00Z"}' >"$TEST_TMP/hung.json"
check_eq "caller gives up while storage hangs (curl timeout)" 28 \
  "$(curl -s -o /dev/null --max-time 0.5 --data-binary @"$TEST_TMP/hung.json" "$E/api/v1/events"; echo $?)"
post "$TEST_TMP/hung.json"
check_eq "storage hangs past STORAGE_TIMEOUT_MS: 503" 503 "$CODE"
curl -s -o "$TEST_TMP/inflight.out" -w '%{http_code}' --data-binary @"$TEST_TMP/hung.json" "$E/api/v1/events" \
  >"$TEST_TMP/inflight.code" &
CURL_PID=$!
sleep 0.5
stop_pid "$ENRICH_PID"; rc=$?
check_eq "enrichment exits cleanly on SIGTERM with a batch in flight" 0 "$rc"
wait "$CURL_PID"
check "the in-flight batch was not acknowledged" grep -qv '^200$' "$TEST_TMP/inflight.code"
kill -CONT "$STORAGE_PID"
finish

#!/usr/bin/env bash
# storage_suite.sh -- the data-storage integration suite, run against the real
# binary and a real backend: BACKEND=sqlite (a temp DATA_DIR) or
# BACKEND=influxdb (a throw-away influxd from tests/lib/influxd.sh).
#
# (or BACKEND=clickhouse: a throw-away clickhouse-server from tests/lib/clickhouse.sh)
# Use: BACKEND=sqlite|influxdb|clickhouse storage_suite.sh /path/to/homeiq-data-storage
# Covers: 10,000 awkward events in batches and exact read-back (byte-equal
# strings, attributes with key order), idempotent re-posts, rejects and dead
# letters, filters and ordering, 400s naming the parameter, 400 with byte
# position, 413, 503 while the backend is down and recovery, /health,
# /metrics, SIGTERM exit 0 (and no leaks under ASan).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"
. "$here/../lib/clickhouse.sh"

BIN=${1:?usage: storage_suite.sh /path/to/homeiq-data-storage}
BACKEND=${BACKEND:-sqlite}
N=10000
BATCH=1000
echo "# data-storage suite, backend=$BACKEND"

export STORAGE_BACKEND=$BACKEND DATA_DIR=$TEST_TMP/data MAX_BODY_BYTES=4194304 LOG_LEVEL=${LOG_LEVEL:-info}
export SQLITE_BUSY_TIMEOUT_MS=300 INFLUXDB_PING_INTERVAL_MS=200 INFLUXDB_DATABASE="homeiq test"
if [ "$BACKEND" = influxdb ]; then influxd_start || bail "influxd starts"; fi
if [ "$BACKEND" = clickhouse ]; then
  clickhouse_start ch || bail "clickhouse-server starts"
  export CLICKHOUSE_DATABASE=homeiq_test CLICKHOUSE_PING_INTERVAL_MS=200
fi
PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
STORAGE_PID=$LAST_PID
wait_healthy "$U/health" 30 "$STORAGE_PID" || bail "data-storage healthy"

# post FILE -> prints "HTTP_CODE BODY"
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; echo " $(cat "$TEST_TMP/resp")"; }
get() { curl -s -w '\n%{http_code}' "$U$1"; }
code_of() { echo "${1%% *}"; }
body_of() { echo "${1#* }"; }
jqe() { jq -e "$@" >/dev/null; }
status_of_get() { tail -n1 <<<"$1"; }
json_of_get() { sed '$d' <<<"$1"; }

# ---- 10,000 events in batches of 1,000 --------------------------------------
jq -nc --argjson n $N --argjson from 0 -f "$here/gen_events.jq" > "$TEST_TMP/all.json"
stored=0; ok=1
for ((k = 0; k < N / BATCH; k++)); do
  jq -c --argjson k $k --argjson b $BATCH '{events: .[$k*$b:($k+1)*$b]}' "$TEST_TMP/all.json" > "$TEST_TMP/batch_$k.json"
  r=$(post "$TEST_TMP/batch_$k.json")
  [ "$(code_of "$r")" = 200 ] || { ok=0; echo "batch $k: $r" | head -c 400; echo; }
  stored=$((stored + $(body_of "$r" | jq '.stored // 0')))
done
check "10 batches of 1000 answered 200" [ $ok = 1 ]
check_eq "all $N events stored" $N $stored

# ---- read back, exactly -----------------------------------------------------
r=$(get "/api/v1/events?limit=10000")
check_eq "GET limit=10000 answers 200" 200 "$(status_of_get "$r")"
json_of_get "$r" > "$TEST_TMP/got.json"
check_eq "GET returns count $N" $N "$(jq .count "$TEST_TMP/got.json")"
# Every record exactly as posted (key order included: tojson keeps it), plus
# event_id (32 hex) and stored_at.
jq -S -c 'map({key: .context_id, value: tojson}) | from_entries' "$TEST_TMP/all.json" > "$TEST_TMP/want.map"
jq -S -c '.events | map({key: .context_id, value: (del(.event_id, .stored_at) | tojson)}) | from_entries' \
  "$TEST_TMP/got.json" > "$TEST_TMP/got.map"
check "every record read back equals the posted one (states, attributes, key order)" \
  cmp -s "$TEST_TMP/want.map" "$TEST_TMP/got.map"
diffs=$(jq -n --slurpfile w "$TEST_TMP/want.map" --slurpfile g "$TEST_TMP/got.map" \
  '[$w[0] | to_entries[] | select($g[0][.key] != .value) | .key] | length')
check_eq "no record differs" 0 "$diffs"
# The same on the bytes storage answers with, not re-printed by jq (which would
# turn 7.0 into 7 and \u00e9 into é on both sides): every record of the GET
# answer, minus the event_id/stored_at storage appends, is byte for byte one of
# the posted records (jq -c wrote those, so they are already in storage's
# canonical text).
python3 "$here/raw_records.py" "$TEST_TMP"/batch_*.json | LC_ALL=C sort >"$TEST_TMP/posted.raw"
python3 "$here/raw_records.py" --strip-storage-keys "$TEST_TMP/got.json" | LC_ALL=C sort >"$TEST_TMP/got.raw"
check_eq "raw bytes: $N records read back" $N "$(wc -l <"$TEST_TMP/got.raw")"
check "raw bytes: every record read back is byte-identical to the posted one" cmp "$TEST_TMP/posted.raw" "$TEST_TMP/got.raw"
check "every event has a 32-hex event_id and a stored_at" \
  jqe '[.events[] | select((.event_id | test("^[0-9a-f]{32}$")) and (.stored_at | test("^[0-9-]+T[0-9:]+\\.[0-9]{6}Z$")))] | length == 10000' "$TEST_TMP/got.json"
check "newest first" jqe '[.events[].time_fired] as $t | $t == ($t | sort | reverse)' "$TEST_TMP/got.json"
check "event_ids unique" jqe '[.events[].event_id] | unique | length == 10000' "$TEST_TMP/got.json"

# ---- idempotent re-post -----------------------------------------------------
ok=1
for ((k = 0; k < N / BATCH; k++)); do
  r=$(post "$TEST_TMP/batch_$k.json")
  [ "$(code_of "$r")" = 200 ] && [ "$(body_of "$r" | jq -c '[.stored, .duplicates]')" = "[0,$BATCH]" ] || { ok=0; echo "re-post $k: $(echo "$r" | head -c 300)"; }
done
check "re-posting every batch: stored=0 duplicates=1000 each" [ $ok = 1 ]
check_eq "still $N events" $N "$(curl -s "$U/api/v1/events?limit=10000" | jq .count)"
# a batch holding the same event twice, and a record read back and posted again
jq -c '[.[0], .[0]]' "$TEST_TMP/all.json" > "$TEST_TMP/twice.json"
check_eq "the same event twice in one batch is a duplicate" '[0,2]' "$(body_of "$(post "$TEST_TMP/twice.json")" | jq -c '[.stored,.duplicates]')"
jq -c '.events[0:3]' "$TEST_TMP/got.json" > "$TEST_TMP/readback.json"
check_eq "records read back (with event_id/stored_at) post as duplicates" '[0,3]' \
  "$(body_of "$(post "$TEST_TMP/readback.json")" | jq -c '[.stored,.duplicates]')"

# ---- rejects and dead letters -----------------------------------------------
cat > "$TEST_TMP/mixed.json" <<'EOF'
{"events":[
 {"event_type":"state_changed","entity_id":"sensor.ok_reject_test","time_fired":"2024-01-02T03:04:05.000001Z","state":"1"},
 {"event_type":"state_changed","entity_id":"sensor.no_time","state":"1"},
 {"event_type":"state_changed","time_fired":"2024-01-02T03:04:05.000002Z","state":"no entity"},
 {"event_type":"state_changed","entity_id":"sensor.bad_value","time_fired":"2024-01-02T03:04:05.000003Z","value":"NaN?"},
 "not an object"
],
"dead_letters":[{"error":"entity_id malformed","event":{"event_type":"state_changed","data":{"entity_id":"BAD ID"}},"source":"enrichment-pipeline"}]}
EOF
r=$(post "$TEST_TMP/mixed.json")
check_eq "mixed batch answers 200" 200 "$(code_of "$r")"
check_eq "mixed batch: 1 stored, rejects at 1,2,3,4, 5 dead letters" '[1,0,[1,2,3,4],5]' \
  "$(body_of "$r" | jq -c '[.stored,.duplicates,[.rejected[].index],.dead_lettered]')"
check "every reject has a reason" jqe '[.rejected[] | select(.error | length > 0)] | length == 4' <<<"$(body_of "$r")"
dl=$(curl -s "$U/api/v1/dead-letters?limit=5")
check_eq "dead-letters lists the 5, newest first" 5 "$(jq .count <<<"$dl")"
check "enrichment's dead letter kept with source, reason and raw event" \
  jqe '[.dead_letters[] | select(.source=="enrichment-pipeline" and .error=="entity_id malformed" and .event.data.entity_id=="BAD ID")] | length == 1' <<<"$dl"
check "storage's own rejects kept with reason and raw event" \
  jqe '[.dead_letters[] | select(.source=="data-storage" and (.error|length>0) and .event != null)] | length == 4' <<<"$dl"
check "raw of a non-object event kept" jqe '[.dead_letters[] | select(.event == "not an object")] | length == 1' <<<"$dl"
check "dead letters have received_at and id" jqe 'all(.dead_letters[]; (.received_at|test("Z$")) and (.id|type=="number"))' <<<"$dl"
out=$(curl -s -w ' %{http_code}' "$U/api/v1/dead-letters?limit=abc")
check_eq "dead-letters?limit=abc is 400 naming limit" "400 limit" "${out##* } $(jq -r '.error|split(":")[0]' <<<"${out% *}")"

# ---- filters ----------------------------------------------------------------
eid=$(jq -r '.[1].entity_id' "$TEST_TMP/all.json")   # light.kitchen, "main"_1
want=$(jq --arg e "$eid" '[.[] | select(.entity_id == $e)] | length' "$TEST_TMP/all.json")
r=$(curl -s -G "$U/api/v1/events" --data-urlencode "entity_id=$eid" --data-urlencode limit=10000)
check_eq "entity_id filter (quotes, comma, space) count" "$want" "$(jq .count <<<"$r")"
check "entity_id filter returns only that entity" jqe --arg e "$eid" 'all(.events[]; .entity_id == $e)' <<<"$r"
for i in 2 3 4 5 7; do
  e=$(jq -r ".[$i].entity_id" "$TEST_TMP/all.json")
  w=$(jq --arg e "$e" '[.[] | select(.entity_id == $e)] | length' "$TEST_TMP/all.json")
  g=$(curl -s -G "$U/api/v1/events" --data-urlencode "entity_id=$e" --data-urlencode limit=10000 | jq .count)
  check_eq "entity_id filter for awkward entity #$i" "$w" "$g"
done
r=$(curl -s -G "$U/api/v1/events" --data-urlencode "entity_id=x' OR 1=1 --" -w ' %{http_code}')
check_eq "entity_id with a quote cannot inject (200, nothing)" "0 200" "$(jq .count <<<"${r% *}") ${r##* }"
r=$(curl -s -G "$U/api/v1/events" --data-urlencode 'entity_id=x\' -w ' %{http_code}')
check_eq "entity_id ending in a backslash is just a value" "0 200" "$(jq .count <<<"${r% *}") ${r##* }"
want=$(jq '[.[] | select(.domain == "light")] | length' "$TEST_TMP/all.json")
check_eq "domain filter" "$want" "$(curl -s "$U/api/v1/events?domain=light&limit=10000" | jq .count)"
want=$(jq '[.[] | select(.event_type == "call_service")] | length' "$TEST_TMP/all.json")
r=$(curl -s "$U/api/v1/events?event_type=call_service&limit=10000")
check_eq "event_type filter" "$want" "$(jq .count <<<"$r")"
check "event_type filter returns only that type" jqe 'all(.events[]; .event_type == "call_service")' <<<"$r"
start=$(jq -r '.[100].time_fired' "$TEST_TMP/all.json"); end=$(jq -r '.[200].time_fired' "$TEST_TMP/all.json")
r=$(curl -s -G "$U/api/v1/events" --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode limit=10000)
check_eq "start (inclusive) / end (exclusive)" 100 "$(jq .count <<<"$r")"
check "time window holds the right events" jqe --arg s "$start" --arg e "$end" 'all(.events[]; .time_fired >= $s and .time_fired < $e)' <<<"$r"
a=$(curl -s -G "$U/api/v1/events" --data-urlencode "start=2025-06-14T09:00:00Z" --data-urlencode "end=2025-06-14T10:00:00Z" | jq -c '[.events[].event_id]')
b=$(curl -s -G "$U/api/v1/events" --data-urlencode "start=2025-06-14T11:00:00+02:00" --data-urlencode "end=2025-06-14T12:00:00.000000+02:00" | jq -c '[.events[].event_id]')
check "start/end with +02:00 offsets select the same instants" [ "$a" = "$b" -a "$a" != "[]" ]
full=$(curl -s "$U/api/v1/events?limit=20")
page=$(curl -s "$U/api/v1/events?limit=3&offset=5")
check_eq "limit/offset page = slice of the full list" "$(jq -c '[.events[5:8][].event_id]' <<<"$full")" "$(jq -c '[.events[].event_id]' <<<"$page")"
check_eq "default limit is 100" 100 "$(curl -s "$U/api/v1/events" | jq .count)"

# ---- bad requests -----------------------------------------------------------
bad() { # bad QUERY PARAM : 400 whose error starts with PARAM
  local out; out=$(curl -s -w ' %{http_code}' "$U/api/v1/events?$1")
  check_eq "GET ?$1 -> 400 naming $2" "400 $2" "${out##* } $(jq -r '.error | split(":")[0]' <<<"${out% *}")"
}
bad "limit=0" limit; bad "limit=10001" limit; bad "limit=abc" limit; bad "offset=-1" offset
bad "start=yesterday" start; bad "end=2025-13-01T00:00:00Z" end
bad "start=2025-06-15T00:00:00Z&end=2025-06-14T00:00:00Z" start; bad "entity=x" entity
printf '{"events":[{"event_type":"x",}]}' > "$TEST_TMP/malformed.json"
r=$(post "$TEST_TMP/malformed.json")
check_eq "malformed JSON -> 400 with the byte position" "400 true" "$(code_of "$r") $(body_of "$r" | jq '.position | type == "number"')"
check "the error names the byte" grep -q 'byte' <<<"$(body_of "$r")"
head -c 5000000 /dev/zero | tr '\0' ' ' > "$TEST_TMP/big.json"
check_eq "body over MAX_BODY_BYTES -> 413" 413 "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v1/events" --data-binary @"$TEST_TMP/big.json")"
jq -nc '[range(10001) | {event_type:"x", time_fired:"2025-01-01T00:00:00Z"}]' > "$TEST_TMP/toomany.json"
r=$(post "$TEST_TMP/toomany.json")
check_eq "10,001 events -> 400" 400 "$(code_of "$r")"
check_eq "PUT -> 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -XPUT "$U/api/v1/events" -d '{}')"
echo '"just a string"' > "$TEST_TMP/str.json"
check_eq "a JSON string is not a batch -> 400" 400 "$(code_of "$(post "$TEST_TMP/str.json")")"

# ---- InfluxDB refuses single lines: the rest of the batch is kept -----------
if [ "$BACKEND" = influxdb ]; then
  # A string "value" in this shard makes every float "value" conflict.
  curl -s -XPOST "$INFLUXDB_URL/write?db=homeiq%20test&precision=s" \
    --data-binary 'home_assistant_events,entity_id=sensor.conflict value="text",event_id="x" 1577836800' >/dev/null
  cat > "$TEST_TMP/conflict.json" <<'EOF'
[{"event_type":"state_changed","entity_id":"sensor.c1","time_fired":"2020-01-01T00:00:01Z","state":"1","value":1},
 {"event_type":"state_changed","entity_id":"sensor.c2","time_fired":"2020-01-01T00:00:02Z","state":"x","value":null},
 {"event_type":"state_changed","entity_id":"sensor.c3","time_fired":"2020-01-01T00:00:03Z","state":"2","value":2.5},
 {"event_type":"state_changed","entity_id":"sensor.c4","time_fired":"2020-01-01T00:00:04Z","state":"y"}]
EOF
  r=$(post "$TEST_TMP/conflict.json")
  check_eq "field type conflict: 2 stored, 0 and 2 rejected, 2 dead letters" '[2,[0,2],2]' \
    "$(body_of "$r" | jq -c '[.stored,[.rejected[].index],.dead_lettered]')"
  check "reject reason is InfluxDB's" grep -q 'field type conflict' <<<"$(body_of "$r")"
  check_eq "the good ones are readable" 2 \
    "$(curl -s "$U/api/v1/events?start=2020-01-01T00:00:00Z&end=2020-01-02T00:00:00Z" | jq '[.events[] | select(.entity_id|test("sensor.c[24]"))] | length')"
  check "refused events are dead letters with their record" \
    jqe '[.dead_letters[] | select((.error|test("field type conflict")) and .event.entity_id == "sensor.c1")] | length == 1' \
    <<<"$(curl -s "$U/api/v1/dead-letters?limit=10")"

  # A deep split: 400 lines in one write, 7 of them refused, spread so that the
  # halving must go down to single lines in several places (first, neighbours,
  # the middle, the last).
  BADS='[3,50,51,199,200,333,399]'
  jq -cn --argjson bad "$BADS" '[range(400) as $i | {event_type:"state_changed", entity_id:"sensor.deep_\($i)",
      time_fired:("2020-01-01T01:\(($i / 60 | floor) | tostring | if length < 2 then "0" + . else . end):\(($i % 60) | tostring | if length < 2 then "0" + . else . end)Z"),
      context_id:"deep-\($i)"} + (if ($bad | index($i)) != null then {state:"\($i)", value:$i} else {state:"s\($i)"} end)]' \
    >"$TEST_TMP/deep.json"
  r=$(post "$TEST_TMP/deep.json")
  check_eq "deep split: 400 lines, 7 refused -> 393 stored, exactly those 7 rejected and dead-lettered" \
    "[393,$BADS,7]" "$(body_of "$r" | jq -c '[.stored,[.rejected[].index],.dead_lettered]')"
  check_eq "... every good one readable" 393 \
    "$(curl -s "$U/api/v1/events?start=2020-01-01T01:00:00Z&end=2020-01-01T02:00:00Z&limit=1000" | jq '[.events[] | select(.entity_id|startswith("sensor.deep_"))] | length')"
  check_eq "... and each refused one a dead letter with its record" 7 \
    "$(curl -s "$U/api/v1/dead-letters?limit=100" | jq '[.dead_letters[] | select((.error|test("field type conflict")) and (.event.entity_id|startswith("sensor.deep_")))] | length')"
fi

# ---- health and metrics -----------------------------------------------------
h=$(curl -s "$U/health")
check "health: healthy, names the backend" jqe --arg b "$BACKEND" '.status == "healthy" and .backend.backend == $b' <<<"$h"
m=$(curl -s "$U/metrics")
extra=1; [ "$BACKEND" = influxdb ] && extra=$((3 + 393))   # + the conflict and deep-split cases
check "metrics: events stored" grep -qE "^homeiq_storage_events_stored_total $((N + extra))$" <<<"$m"
check "metrics: duplicates" grep -qE "^homeiq_storage_duplicates_total $((N + 5))$" <<<"$m"
check "metrics: rejects" grep -qE '^homeiq_storage_rejected_total [1-9]' <<<"$m"
check "metrics: batch latency histogram" grep -qE '^homeiq_storage_batch_seconds_count [1-9]' <<<"$m"
check "metrics: backend up" grep -qE '^homeiq_storage_backend_up 1$' <<<"$m"

# ---- backend down: 503, and recovery -----------------------------------------
jq -c '[.[0] | .context_id = "down-1" | .time_fired = "2025-07-01T00:00:00.000001Z"]' "$TEST_TMP/all.json" > "$TEST_TMP/down.json"
if [ "$BACKEND" = influxdb ]; then
  influxd_stop
  check_eq "influxdb down: POST -> 503" 503 "$(code_of "$(post "$TEST_TMP/down.json")")"
  check_eq "influxdb down: GET -> 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/v1/events?limit=1")"
  health_reason_is() { [ "$(curl -s -w ' %{http_code}' "$U/health" | sed 's/.*"reason":"\([a-z_]*\)".* \([0-9]*\)$/\2 \1/')" = "$1" ]; }
  check "influxdb down: /health 503 influxdb_unreachable (within 10 s of 200 ms pings)" \
    wait_for 10 health_reason_is "503 influxdb_unreachable"
  check "influxdb down: backend_up 0" wait_for 10 bash -c "curl -s '$U/metrics' | grep -qE '^homeiq_storage_backend_up 0$'"
  influxd_restart || bail "influxd restarts"
elif [ "$BACKEND" = clickhouse ]; then
  clickhouse_kill ch
  check_eq "clickhouse down: POST -> 503" 503 "$(code_of "$(post "$TEST_TMP/down.json")")"
  check_eq "clickhouse down: GET -> 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/v1/events?limit=1")"
  health_reason_is() { [ "$(curl -s -w ' %{http_code}' "$U/health" | sed 's/.*"reason":"\([a-z_]*\)".* \([0-9]*\)$/\2 \1/')" = "$1" ]; }
  check "clickhouse down: /health 503 clickhouse_unreachable" wait_for 10 health_reason_is "503 clickhouse_unreachable"
  check "clickhouse down: backend_up 0" wait_for 10 bash -c "curl -s '$U/metrics' | grep -qE '^homeiq_storage_backend_up 0$'"
  clickhouse_restart ch || bail "clickhouse-server restarts"
else
  # Another process holds the write lock (longer than SQLITE_BUSY_TIMEOUT_MS):
  # it says when it has the lock, and keeps it until the checks are done.
  (echo "BEGIN EXCLUSIVE;"; echo "INSERT INTO dead_letters(received_at_us,source,error,raw) VALUES(0,'t','t','null');"
   echo "SELECT 'locked';"
   while [ ! -e "$TEST_TMP/release_lock" ]; do sleep 0.05; done; echo "ROLLBACK;") \
    | sqlite3 "$DATA_DIR/events.db" >"$TEST_TMP/lock.out" 2>&1 &
  LOCK_PID=$!
  check "sqlite: another process holds the write lock" wait_for 20 grep -q locked "$TEST_TMP/lock.out"
  check_eq "sqlite locked: POST -> 503" 503 "$(code_of "$(post "$TEST_TMP/down.json")")"
  h=$(curl -s -w ' %{http_code}' "$U/health")
  check_eq "sqlite locked: /health 503 sqlite_write_failed" "503 sqlite_write_failed" "${h##* } $(jq -r .reason <<<"${h% *}")"
  touch "$TEST_TMP/release_lock"
  wait $LOCK_PID
fi
check "backend back: /health 200 again" wait_healthy "$U/health" 30
r=$(post "$TEST_TMP/down.json")
check_eq "backend back: the retried batch is stored" '200 1' "$(code_of "$r") $(body_of "$r" | jq .stored)"
check_eq "backend back: healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")"

# ---- exact text of a non-canonical record ----------------------------------
# Non-canonical input comes back in storage's one canonical text (README: numbers
# re-printed shortest, strings exact): the expected bytes are written out here.
E=$'\xc3\xa9' HOUSE=$'\xf0\x9f\x8f\xa0'   # é and 🏠 as UTF-8 bytes
printf '%s' '[{"event_type":"raw_text","time_fired":"2025-05-05T05:05:05Z","context_id":"raw-1","a":7.0,"b":"\u00e9\/x","c":1e300,"d":-0,"e":[1.50,2E2,-0.0,0.1],"f":"\u001f\n\t\"\\","g":{"z":1,"a":{"y":null,"b":true}},"h":"caf'"$E $HOUSE"'"}]' >"$TEST_TMP/raw.json"
printf '%s\n' '{"event_type":"raw_text","time_fired":"2025-05-05T05:05:05Z","context_id":"raw-1","a":7.0,"b":"'"$E"'/x","c":1e+300,"d":0,"e":[1.5,200.0,-0.0,0.1],"f":"\u001f\n\t\"\\","g":{"z":1,"a":{"y":null,"b":true}},"h":"caf'"$E $HOUSE"'"}' >"$TEST_TMP/raw.want"
check_eq "raw bytes: the non-canonical record is stored" 200 "$(code_of "$(post "$TEST_TMP/raw.json")")"
curl -s "$U/api/v1/events?event_type=raw_text" >"$TEST_TMP/raw.got.json"
python3 "$here/raw_records.py" --strip-storage-keys "$TEST_TMP/raw.got.json" >"$TEST_TMP/raw.got"
check "raw bytes: 7.0 stays 7.0, \u00e9 becomes UTF-8, 1e300 -> 1e+300, -0 -> 0, key order kept" \
  cmp "$TEST_TMP/raw.want" "$TEST_TMP/raw.got"
# docs/EVENTS.md: an integer beyond 64 bits is read as a real (not a 400), and
# with it every integer of that request.
printf '%s' '[{"event_type":"big_int","time_fired":"2025-05-05T05:05:06Z","a":123456789012345678901234,"m":9223372036854775807},{"event_type":"big_int","time_fired":"2025-05-05T05:05:07Z","n":255}]' >"$TEST_TMP/bigint.json"
check_eq "an integer beyond 64 bits: stored (not a 400)" "200 2" "$(r=$(post "$TEST_TMP/bigint.json"); echo "$(code_of "$r") $(body_of "$r" | jq .stored)")"
curl -s "$U/api/v1/events?event_type=big_int" >"$TEST_TMP/bigint.got.json"
python3 "$here/raw_records.py" --strip-storage-keys "$TEST_TMP/bigint.got.json" >"$TEST_TMP/bigint.got"
printf '%s\n' '{"event_type":"big_int","time_fired":"2025-05-05T05:05:07Z","n":255.0}' \
  '{"event_type":"big_int","time_fired":"2025-05-05T05:05:06Z","a":1.2345678901234569e+23,"m":9.223372036854776e+18}' >"$TEST_TMP/bigint.want"
check "... read as reals, the whole request's integers with it (docs/EVENTS.md)" cmp "$TEST_TMP/bigint.want" "$TEST_TMP/bigint.got"

# ---- shutdown ---------------------------------------------------------------
stop_pid "$STORAGE_PID"; rc=$?
check_eq "SIGTERM: exit status 0" 0 $rc
if [ "$BACKEND" = influxdb ]; then influxd_stop; fi
if [ "$BACKEND" = clickhouse ]; then clickhouse_stop ch; fi
finish

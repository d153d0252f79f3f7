#!/usr/bin/env bash
# test_influx_poison.sh -- issue 14, findings 7 and 8, against a real influxd.
#
# 7: time_us * 1000 overflowed for years after 2262: an event from 2600 was
#    written at 2015-06-13 (seen on main: stored 2, no reject), and
#    GET ?start=2300-01-01T00:00:00Z aborted the sanitizer build (UBSan:
#    signed integer overflow). Now the event is dead-lettered with the reason
#    and the query answers 200 with nothing.
# 8: the duplicate check reads only ranges around the batch's own times; a
#    batch spanning decades is still checked right (re-post = duplicates).
# Use: test_influx_poison.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

BIN=${1:?usage: test_influx_poison.sh /path/to/homeiq-data-storage}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data LOG_LEVEL=${LOG_LEVEL:-info}
export INFLUXDB_PING_INTERVAL_MS=200 INFLUXDB_DATABASE=poison
influxd_start || exit 1
PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
STORAGE_PID=$LAST_PID
wait_healthy "$U/health" 30 || { cat "$TEST_TMP/storage.log"; exit 1; }

rec() { # rec ENTITY TIME
  printf '{"event_type":"state_changed","entity_id":"%s","domain":"sensor","object_id":"x","time_fired":"%s","origin":"LOCAL","context_id":"c-%s","state":"1","value":1.0}' "$1" "$2" "$1"
}
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "$1"; }

# ---- 7: a time InfluxDB cannot hold ------------------------------------------
code=$(post "{\"events\":[$(rec sensor.good 2024-01-01T00:00:00.000000Z),$(rec sensor.future 2600-01-01T00:00:00.000000Z)]}")
check_eq "batch with an event from 2600: 200" 200 "$code"
check_eq "the good event stored, the other not" 1 "$(jq .stored "$TEST_TMP/resp")"
check "the event from 2600 is rejected with the reason" \
  jq -e '.rejected | length == 1 and .[0].index == 1 and (.[0].error | test("InfluxDB can store"))' "$TEST_TMP/resp"
check "it is dead-lettered with the reason and the record" \
  bash -c "curl -s '$U/api/v1/dead-letters' | jq -e '[.dead_letters[] | select((.error | test(\"InfluxDB can store\")) and ((.event // .raw | tostring) | test(\"sensor.future\")))] | length == 1'"
check "nothing was written at a wrapped-around time" \
  bash -c "curl -s '$U/api/v1/events?limit=100' | jq -e '[.events[] | select(.entity_id == \"sensor.future\")] | length == 0'"
for q in "start=2300-01-01T00:00:00Z" "end=2300-01-01T00:00:00Z" "start=2300-01-01T00:00:00Z&end=9999-01-01T00:00:00Z"; do
  code=$(curl -s -o "$TEST_TMP/q" -w '%{http_code}' "$U/api/v1/events?$q")
  check_eq "GET ?$q answers 200" 200 "$code"
done
check_eq "start=2300 finds nothing" 0 "$(curl -s "$U/api/v1/events?start=2300-01-01T00:00:00Z" | jq .count)"
check_eq "end=2300 finds the good event" 1 "$(curl -s "$U/api/v1/events?end=2300-01-01T00:00:00Z" | jq .count)"
check "storage still runs" kill -0 "$STORAGE_PID"

# ---- 8: a batch spanning decades, checked per range ---------------------------
batch="{\"events\":[$(rec sensor.y1970 1970-01-01T00:00:01.000000Z),$(rec sensor.y2001 2001-05-05T00:00:00.000000Z),$(rec sensor.y2001b 2001-05-05T00:00:00.500000Z),$(rec sensor.y2262 2262-04-11T23:47:16.854774Z)]}"
code=$(post "$batch")
check_eq "decade-spanning batch: 200" 200 "$code"
check_eq "all four stored" 4 "$(jq .stored "$TEST_TMP/resp")"
code=$(post "$batch")
check_eq "re-posted: 200" 200 "$code"
check_eq "re-posted: all four found by the ranged duplicate check" 4 "$(jq .duplicates "$TEST_TMP/resp")"
check_eq "re-posted: nothing stored twice" 0 "$(jq .stored "$TEST_TMP/resp")"
# more ranges than one request asks (64 statements per request)
ev=""; for i in $(seq 0 149); do ev="$ev${ev:+,}$(rec sensor.r$i "$((2000 + i / 12))-$(printf %02d $((i % 12 + 1)))-01T00:00:00.000000Z")"; done
code=$(post "{\"events\":[$ev]}")
check_eq "150 events in 150 ranges: stored" 150 "$(jq .stored "$TEST_TMP/resp")"
code=$(post "{\"events\":[$ev]}")
check_eq "150 ranges re-posted: all duplicates" 150 "$(jq .duplicates "$TEST_TMP/resp")"

stop_pid "$STORAGE_PID"
check "storage exits cleanly (no sanitizer report)" bash -c "! grep -q 'runtime error\|ERROR: AddressSanitizer\|LeakSanitizer' '$TEST_TMP/storage.log'"
finish

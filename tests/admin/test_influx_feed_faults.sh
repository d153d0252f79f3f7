#!/usr/bin/env bash
# tests/admin/test_influx_feed_faults.sh -- the review of the batch feed and the two event writes in flight
# (review-feed, session 8), each finding reproduced on a real influxd through influx_cut_proxy.py:
#  - a failed write fails only the batches whose duplicate check counted on it: batch A's answer lost while
#    B (unrelated) is in flight and C queued: A fails, B and C are answered 200, each event stored once;
#  - dead letters built after the next batch opened (a 400 bisected in a batch's last request) are counted
#    once: dead_letters_total = InfluxDB's count(error) after a failure and the restore that follows it;
#  - a feed request's answer is bounded: after a few one-entry batch points and then full ones, no scan
#    request asks more than 64 points (each up to INFLUX_FEED_POINT_BYTES) nor gets more than 64 x 60,000 bytes;
#  - a store written before the summary whose events name no entity restores (the legacy scan) without crashing;
#  - a feed row with no entry (neither event_id nor e) does not end a scan early (a gap);
#  - a feed page never answers a cursor below `after`, even when this process's first batch point is
#    in InfluxDB while its batch is not finished.
# Usage: test_influx_feed_faults.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_influx_feed_faults.sh homeiq-data-storage}
export INFLUXDB_STATISTICS=0
# the refused lines below are field type conflicts on duration_in_state, which only full points write
export INFLUXDB_EVENT_FIELDS=full
. "$here/influx_storage.sh"   # influxd, the proxy; get, post, iql, start_storage
T=$(date -u +%Y-%m-%dT%H:%M:%S)

stats() { get /api/v1/stats | jq -r "$1"; }
iql_n() { iql "$1" | jq -r '.results[0].series[0].values[0][1] // 0'; }
ev() { # ev ENTITY MICROS CONTEXT [EXTRA_JSON_FIELDS]
  echo "{\"event_type\":\"state_changed\",\"entity_id\":\"$1\",\"time_fired\":\"$T.$2Z\",\"state\":\"1\",\"value\":1,\"context_id\":\"$3\"${4:-}}"
}
codes_in() { [ -s "$TEST_TMP/a.code" ] && [ -s "$TEST_TMP/b.code" ] && [ -s "$TEST_TMP/c.code" ]; }

# ---- 1. one failed write fails only the batches that counted on it (review-feed 2) ------------------
DB=faults_doom
start_storage
check_eq "a first batch" 200 "$(post "{\"events\":[$(ev sensor.first 000001 c0)]}")"
for round in 1 2 3; do
  rm -f "$TEST_TMP"/?.code
  echo "ctx-d$round-" > "$CUT.hold"; echo "ctx-d$round-a" > "$CUT"; : > "$CUT.log"
  (post "{\"events\":[$(ev sensor.a 0001${round}0 ctx-d$round-a)]}" > "$TEST_TMP/a.code") &
  wait_for 20 grep -q '^held' "$CUT.log" || bail "A's write is held"
  (post "{\"events\":[$(ev sensor.b 0001${round}1 ctx-d$round-b)]}" > "$TEST_TMP/b.code") &
  wait_for 20 bash -c "[ \$(grep -c '^held' '$CUT.log') -ge 2 ]" || bail "B's write is held beside A's"
  (post "{\"events\":[$(ev sensor.c 0001${round}2 ctx-d$round-c)]}" > "$TEST_TMP/c.code") &
  rm -f "$CUT.hold"
  wait_for 30 codes_in || bail "A, B and C are answered"
  check_eq "round $round: A's answer lost: A fails" 503 "$(cat "$TEST_TMP/a.code")"
  check_eq "round $round: B, written beside A and sharing nothing with it, is acknowledged" 200 "$(cat "$TEST_TMP/b.code")"
  check_eq "round $round: C, queued behind them, is acknowledged" 200 "$(cat "$TEST_TMP/c.code")"
  rm -f "$CUT"
  check_eq "round $round: A's retry is answered (a duplicate of what InfluxDB applied)" 200 \
    "$(post "{\"events\":[$(ev sensor.a 0001${round}0 ctx-d$round-a)]}")"
done
check_eq "each event stored once" "3 3 3 1" \
  "$(for e in a b c first; do iql_n "SELECT count(event_id) FROM home_assistant_events WHERE entity_id = 'sensor.$e'"; done | xargs)"
stop_pid "$STORAGE_PID"

# ---- 2. dead letters built after the next batch opened are counted once (review-feed 1) -------------
DB=faults_dead
curl -s -XPOST "$REAL/query" --data-urlencode "q=CREATE DATABASE $DB" > /dev/null
# a point whose duration_in_state is a string: a later float one in this shard is refused (400, bisected)
curl -s -XPOST "$REAL/write?db=$DB&precision=s" \
  --data-binary "home_assistant_events,entity_id=sensor.pre duration_in_state=\"x\" $(( $(date -u +%s) - 60 ))"
start_storage
check_eq "a first batch" 200 "$(post "{\"events\":[$(ev sensor.first 000201 d0)]}")"
wait_for 20 bash -c "[ \"\$(curl -s -G '$REAL/query' --data-urlencode 'db=$DB' --data-urlencode 'q=SELECT count(dead) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1] // 0')\" -ge 1 ]" ||
  bail "the first batch's summary is written"
sleep 1.2 # setup, not an assertion: the summary's throttle (1 s) lets A's own summary go out when A finishes
rm -f "$TEST_TMP"/?.code
echo "ctx-late-a" > "$CUT.hold"; : > "$CUT.log"
(post "{\"events\":[$(ev sensor.a 000210 ctx-late-a-1),$(ev sensor.bad 000211 ctx-late-a-2 ',"duration_in_state":5')]}" > "$TEST_TMP/a.code") &
wait_for 20 grep -q '^held' "$CUT.log" || bail "A's write is held"
rm -f "$CUT.hits"; echo "ctx-late-b" > "$CUT"
(post "{\"events\":[$(ev sensor.b 000220 ctx-late-b-1)]}" > "$TEST_TMP/b.code") &
wait_for 20 test -s "$CUT.hits" || bail "B's answer is lost while A is held"
echo x > "$TEST_TMP/c.code"
rm -f "$CUT.hold"
wait_for 30 codes_in || bail "A and B are answered"
check_eq "A: its refused event dead-lettered by the bisect (after B opened), the rest acknowledged" 200 "$(cat "$TEST_TMP/a.code")"
check_eq "B: its answer lost" 503 "$(cat "$TEST_TMP/b.code")"
rm -f "$CUT"
check_eq "C: acknowledged (memory restores after B's failure)" 200 "$(post "{\"events\":[$(ev sensor.c 000230 ctx-late-c-1)]}")"
wait_for 30 bash -c "[ \"\$(curl -s '$U/api/v1/stats' | jq -r .events_total)\" = 4 ]" || bail "the restore counts first, a, b and c"
DB_DEAD=$(iql_n 'SELECT count(error) FROM homeiq_dead_letters')
check_eq "InfluxDB holds one dead letter" 1 "$DB_DEAD"
check_eq "dead_letters_total after the restore = InfluxDB's count" "$DB_DEAD" "$(stats .dead_letters_total)"
wait_for 20 bash -c "[ \"\$(curl -s -G '$REAL/query' --data-urlencode 'db=$DB' --data-urlencode 'q=SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1] // 0')\" = 4 ]" ||
  bail "the restored summary is written"
kill -9 "$STORAGE_PID"; stop_pid "$STORAGE_PID" > /dev/null 2>&1
start_storage
wait_for 30 bash -c "[ \"\$(curl -s '$U/api/v1/stats' | jq -r .events_total)\" = 4 ]" || bail "restored after SIGKILL"
check_eq "dead_letters_total after SIGKILL and a restore = InfluxDB's count" "$DB_DEAD" "$(stats .dead_letters_total)"
stop_pid "$STORAGE_PID"

# ---- 3. a feed request asks a bounded number of points (review-feed 3) ------------------------------
DB=faults_bytes
start_storage
burst() { # burst N FROM PREFIX: N events of PREFIX_0..9 in one batch
  jq -nc --argjson n "$1" --argjson from "$2" --arg p "$3" --arg t "$T" \
    '{events: [range($from; $from + $n) as $i | {event_type: "state_changed", entity_id: "\($p)_\($i % 10)",
      time_fired: "\($t).\($i | tostring | ("000000" + .)[-6:])Z", state: "\($i)", value: $i,
      context_id: "ctx-burst-\($i)"}]}'
}
for i in 1 2 3 4; do check_eq "trickle batch $i (one entry in its batch point)" 200 "$(post "{\"events\":[$(ev sensor.trickle 00030$i ctx-tr-$i)]}")"; done
for k in 0 1 2; do check_eq "burst $k (1,000 events, full batch points)" 200 "$(burst 1000 $((1000 + k * 1000)) sensor.burst | post "$(cat)")"; done
: > "$CUT.qlog"
PAGE=$(get '/api/v1/events/feed?after=0&limit=1000')
BACK=$(get '/api/v1/events/feed?limit=1000')
rm -f "$CUT.qlog.off"; mv "$CUT.qlog" "$CUT.qlog.off"
check_eq "the page after=0 holds 1,000 events, more to come" "1000 true" "$(jq -r '"\(.events | length) \(.more)"' <<<"$PAGE")"
check_eq "the backlog holds the newest 1,000" "1000 sensor.burst_9" "$(jq -r '"\(.events | length) \(.events[-1].entity_id)"' <<<"$BACK")"
ASKED=$(grep -o 'FROM "homeiq_feed" [^;]*ORDER BY time [A-Z]* LIMIT [0-9]*' "$CUT.qlog.off" | awk '{ print $NF }' | sort -n | tail -1)
check "the feed scans were logged" test -n "$ASKED"
check "no feed scan request asks more than 64 points (asked at most $ASKED)" test "${ASKED:-999999}" -le 64
BIG=$(grep 'homeiq_feed' "$CUT.qlog.off" | awk '{ print $1 }' | sort -n | tail -1)
check "no feed scan answer passes 64 x 60,000 bytes (largest $BIG)" test "${BIG:-999999999}" -le 3840000
stop_pid "$STORAGE_PID"

# ---- 4. a store written before the summary whose events name no entity (review-feed 5) -------------
DB=faults_noent
curl -s -XPOST "$REAL/query" --data-urlencode "q=CREATE DATABASE $DB" > /dev/null
# an events point with neither an entity_id tag nor an event_id: the legacy scan counts no entity
curl -s -XPOST "$REAL/write?db=$DB&precision=s" \
  --data-binary "home_assistant_events,domain=sensor duration_in_state=\"x\" $(( $(date -u +%s) - 60 ))"
start_storage
check_eq "the first read (the restore's legacy scan finds no entity) is answered" 0 "$(stats .events_total)"
check_eq "... /health counts the scan as a restore read to the head" '1 1' \
  "$(curl -s "$U/health" | jq -r '.backend.entity_restore | "\(.restores) \(.read_to_head)"')"
check "data-storage is still running" kill -0 "$STORAGE_PID"
check_eq "a batch after it" 200 "$(post "{\"events\":[$(ev sensor.after 000401 ctx-noent-1)]}")"
wait_for 20 bash -c "[ \"\$(curl -s '$U/api/v1/stats' | jq -r .events_total)\" = 1 ]"
check_eq "... is counted" 1 "$(stats .events_total)"
stop_pid "$STORAGE_PID"

# ---- 5. after a restart, a tail is never handed a cursor below `after` (review-feed 4) --------------
DB=faults_cursor
start_storage
check_eq "a batch" 200 "$(post "{\"events\":[$(ev sensor.old 000501 ctx-old-1),$(ev sensor.old 000502 ctx-old-2)]}")"
X=$(get '/api/v1/events/feed?limit=1' | jq -r .cursor)
check "the head after it" test "$X" -gt 0
stop_pid "$STORAGE_PID"
start_storage
rm -f "$CUT.hits"; echo "ctx-restart-cut" > "$CUT"
check_eq "the first batch after a restart: applied by InfluxDB, its answer lost" 503 \
  "$(post "{\"events\":[$(ev sensor.new 000503 ctx-restart-cut-1)]}")"
TAIL=$(get "/api/v1/events/feed?after=$X&limit=10")
check_eq "a tail at after=X (X the earlier run's head) is answered cursor X, head X (its own point is no head)" \
  "$X $X 0" "$(jq -r '"\(.cursor) \(.head) \(.events | length)"' <<<"$TAIL")"
rm -f "$CUT"
check_eq "the next batch" 200 "$(post "{\"events\":[$(ev sensor.new 000504 ctx-restart-2)]}")"
NEXT=$(get "/api/v1/events/feed?after=$(jq -r .cursor <<<"$TAIL")&limit=10")
check_eq "the tail from the cursor it was given: only this run's events" "sensor.new sensor.new" \
  "$(jq -r '[.events[].entity_id] | join(" ")' <<<"$NEXT")"
FAR=$((X * 2))
check_eq "a cursor beyond the head is answered as it was asked (never below after)" "$FAR" \
  "$(get "/api/v1/events/feed?after=$FAR&limit=10" | jq -r .cursor)"
stop_pid "$STORAGE_PID"

# ---- 6. a feed row with no entry does not end a scan (review-feed 8) --------------------------------
DB=faults_junk
start_storage
for i in 1 2; do check_eq "single-event batch $i" 200 "$(post "{\"events\":[$(ev sensor.j 00060$i ctx-junk-$i)]}")"; done
# a homeiq_feed point with neither event_id nor e (a t only: InfluxDB returns it), between the batch points (not written by data-storage)
curl -s -XPOST "$REAL/write?db=$DB&precision=u" --data-binary "homeiq_feed t=5i $(date -u +%s%6N)"
for i in 3 4 5 6; do check_eq "single-event batch $i" 200 "$(post "{\"events\":[$(ev sensor.j 00060$i ctx-junk-$i)]}")"; done
PAGE=$(get '/api/v1/events/feed?after=0&limit=10')
check_eq "a page after=0 past the row without entries holds all 6 events" 6 "$(jq '.events | length' <<<"$PAGE")"
check_eq "... and its cursor is the head" "$(jq -r .head <<<"$PAGE")" "$(jq -r .cursor <<<"$PAGE")"
stop_pid "$STORAGE_PID"

finish

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
#    in InfluxDB while its batch is not finished;
#  - four writes in flight (INFLUXDB_WRITES_INFLIGHT=4): a failed middle write fails exactly the batches whose
#    duplicate check counted on it, answers keep their order, re-posts store nothing twice; more than the feed
#    tracks open (8) is refused at start;
#  - a duplicate check left to memory asks again when memory forgets (an earlier write fails) before its answer.
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

# ---- 7. four writes in flight: a failed middle write fails exactly the batches that counted on it -----
# (INFLUXDB_WRITES_INFLIGHT, session 10.) A, B, C, D written at once, held by the proxy; C repeats an event
# of B and D one of A, so each one's duplicate check counts on that batch. B's answer is lost: B and C fail,
# A and D are acknowledged; B and C re-posted (as ingestion does) store nothing twice. Answers keep order.
DB=faults_four
INFLUXDB_WRITES_INFLIGHT=4 INFLUXDB_TIMEOUT_MS=60000 start_storage # no held write times out
check_eq "a first batch" 200 "$(post "{\"events\":[$(ev sensor.first 000701 n0)]}")"
A="{\"events\":[$(ev sensor.na 000710 ctx-n-a1)]}"
B="{\"events\":[$(ev sensor.nb 000720 ctx-n-b1),$(ev sensor.nb 000721 ctx-n-b2)]}"
C="{\"events\":[$(ev sensor.nc 000730 ctx-n-c1),$(ev sensor.nb 000720 ctx-n-b1)]}"
D="{\"events\":[$(ev sensor.nd 000740 ctx-n-d1),$(ev sensor.na 000710 ctx-n-a1)]}"
post_to() { curl -s -o "$TEST_TMP/$1.body" -w '%{http_code}\n' -H 'Content-Type: application/json' --data-binary @- \
  "$U/api/v1/events" <<<"$2" > "$TEST_TMP/$1.part"; mv "$TEST_TMP/$1.part" "$TEST_TMP/$1.code"; }
hold() { echo "$1" > "$CUT.hold.new"; mv "$CUT.hold.new" "$CUT.hold"; } # whole: a held write never reads it empty
held() { [ "$(grep -c '^held' "$CUT.log")" -ge "$1" ]; }
rm -f "$TEST_TMP"/?.code "$CUT.hits"; : > "$CUT.log"
hold "ctx-n-"; echo "ctx-n-b2" > "$CUT"; echo "ctx-n-" > "$CUT.watch"
n=0
for x in A B C D; do
  n=$((n + 1))
  (post_to "$x" "${!x}") &
  wait_for 20 held $n || bail "$x's write is held beside the $((n - 1)) before it (4 writes in flight)"
done
hold "ctx-n-a1" # B, C and D go on to InfluxDB (B's answer lost), A still waits
wait_for 20 bash -c "[ \$(grep -c '^answered 204 watched' '$CUT.log') -ge 2 ] && [ -s '$CUT.hits' ]" ||
  bail "C and D written, B's answer lost"
sleep 0.3 # a chance for a wrong early answer to arrive
check_eq "B, C and D, written, are not answered before A" "" "$(ls "$TEST_TMP"/[BCD].code 2>/dev/null)"
rm -f "$CUT.hold"
wait_for 30 bash -c "ls '$TEST_TMP'/[ABCD].code >/dev/null 2>&1 && [ \$(ls '$TEST_TMP'/[ABCD].code | wc -l) = 4 ]" ||
  bail "A, B, C and D are answered"
check_eq "A 200, B 503 (its answer lost), C 503 (counted on B), D 200 (counted on A only)" "200 503 503 200" \
  "$(cat "$TEST_TMP"/A.code "$TEST_TMP"/B.code "$TEST_TMP"/C.code "$TEST_TMP"/D.code | xargs)"
check_eq "D: one stored, A's event a duplicate" "1 1" "$(jq -r '"\(.stored) \(.duplicates)"' "$TEST_TMP/D.body")"
rm -f "$CUT" "$CUT.watch"
post_to B "$B"; post_to C "$C"
check_eq "B and C re-posted: acknowledged" "200 200" "$(cat "$TEST_TMP"/B.code "$TEST_TMP"/C.code | xargs)"
check_eq "... each finding its events already stored (InfluxDB applied them)" "0 2 0 2" \
  "$(jq -r '"\(.stored) \(.duplicates)"' "$TEST_TMP/B.body" "$TEST_TMP/C.body" | xargs)"
check_eq "each event stored once" "1 2 1 1" \
  "$(for e in na nb nc nd; do iql_n "SELECT count(event_id) FROM home_assistant_events WHERE entity_id = 'sensor.$e'"; done | xargs)"
check_eq "/health: four writes in flight at most" 4 "$(curl -s "$U/health" | jq -r .backend.writes.in_flight_max)"
stop_pid "$STORAGE_PID"
# the feed keeps INFLUX_WRITES_MAX (8) batches open: one more in flight would not hold its head back, and a reader
# at the head would skip the rest of that batch (review inflight-1 F1: the range went to 16)
INFLUXDB_WRITES_INFLIGHT=9 DATA_STORAGE_PORT=$PORT DATA_DIR=$TEST_TMP/data-nine timeout 10 "$BIN" > "$TEST_TMP/nine.log" 2>&1
check_eq "INFLUXDB_WRITES_INFLIGHT=9 (more than the feed tracks open): data-storage does not start" 1 "$?"
check "... and says why" grep -q 'INFLUXDB_WRITES_INFLIGHT=9 is not an integer in \[1, 8\]' "$TEST_TMP/nine.log"
check_eq "--help: INFLUXDB_WRITES_INFLIGHT's range is 1..8" 1 "$("$BIN" --help 2>&1 | grep -c 'INFLUXDB_WRITES_INFLIGHT .*; 1\.\.8)$')"

# ---- 8. a duplicate check left to memory, memory forgetting before its answer: asked again ---------------
# (review inflight-1 F5.) X is stored and remembered; C re-posts it beside an event below memory's horizon, so
# C's check asks InfluxDB about that one only (X is left to memory). The query is held while A, written before
# C, fails: memory forgets everything. Before: C found X neither asked nor remembered, wrote it again and
# answered it stored (a second feed entry). Now C asks again about what it had left to memory.
DB=faults_replan
start_storage
check_eq "a first batch" 200 "$(post "{\"events\":[$(ev sensor.first 000801 r0)]}")"
echo "ctx-r-f" > "$CUT.block"
check_eq "F refused by the proxy: memory's horizon rises above it" 503 "$(post "{\"events\":[$(ev sensor.f 000850 ctx-r-f)]}")"
rm -f "$CUT.block"
X=$(ev sensor.x 000860 ctx-r-x)
check_eq "X stored (above the horizon: remembered)" 200 "$(post "{\"events\":[$X]}")"
rm -f "$TEST_TMP"/r?.code "$CUT.hits"; : > "$CUT.log"
hold "ctx-r-a"
(post_to ra "{\"events\":[$(ev sensor.ra 000870 ctx-r-a)]}") &
wait_for 20 held 1 || bail "A's write is held"
echo "$(date -u -d "$T" +%s)000810000" > "$CUT.qhold" # C's query: the event at .000810, below the horizon
(post_to rc "{\"events\":[$X,$(ev sensor.old 000810 ctx-r-old)]}") &
wait_for 20 grep -q '^qheld' "$CUT.log" || bail "C's duplicate check (X left to memory) is held"
echo "ctx-r-a" > "$CUT.block"; rm -f "$CUT.hold"
wait_for 20 test -s "$TEST_TMP/ra.code" || bail "A is answered"
check_eq "A fails while C's check waits (memory forgets)" 503 "$(cat "$TEST_TMP/ra.code")"
rm -f "$CUT.qhold" "$CUT.block"
wait_for 20 test -s "$TEST_TMP/rc.code" || bail "C is answered"
check_eq "C is acknowledged" 200 "$(cat "$TEST_TMP/rc.code")"
check_eq "C: the old event stored, X a duplicate (asked again, not written twice)" "1 1" \
  "$(jq -r '"\(.stored) \(.duplicates)"' "$TEST_TMP/rc.body")"
check_eq "X has one feed entry in InfluxDB (homeiq_feed)" 1 \
  "$(iql 'SELECT e FROM homeiq_feed' | jq '[.results[0].series[0].values[] | (.[1] // "") | split("\n")[] | select(contains("\tsensor.x\t"))] | length')"
wait_for 10 bash -c "[ \"\$(curl -s '$U/api/v1/stats' | jq -r .events_total)\" = 3 ]"
check_eq "events_total counts first, X and the old event" 3 "$(stats .events_total)"
check_eq "/health: C's check planned again" 1 "$(curl -s "$U/health" | jq -r .backend.duplicate_check.planned_again)"
stop_pid "$STORAGE_PID"

finish

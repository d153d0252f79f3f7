#!/usr/bin/env bash
# tests/admin/test_influx_feed.sh -- the InfluxDB tail's feed (homeiq_feed, influx_feed.h) across its two
# forms and with two event writes in flight (store_influx.c), on a real influxd. What must hold:
#  - upgrade: a store written by data-storage before the batch points (one feed point per event:
#    fixtures/influx_feed_v0.lp, written by the build of d90b29a and SIGKILLed after its last summary
#    write, make_influx_feed_fixture.sh) is read by this build: the restore re-applies the per-event
#    points after the summary (entity counts = InfluxDB's own), the feed pages through the old points
#    and then the new batch points with no gap and no repeat, the filters find events of both forms,
#    and a restart whose summary is older than both forms re-applies both;
#  - out of order: batch A's write held by a proxy (influx_cut_proxy.py) while batch B's is written and
#    acknowledged by InfluxDB: B is not answered and the head does not pass A until A is done; then A's
#    events come before B's in the feed, each once; when the earlier one fails instead, both re-posted are
#    stored once (the failed one's retry with new sequences, after the later one's);
#  - a sparse filter: a tail (after=, following the cursor as admin-api's SSE does) for one event behind
#    25,000 others advances on every request, which looks at a bounded number of entries, and finds it.
# Usage: test_influx_feed.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_influx_feed.sh homeiq-data-storage}
DB=upgrade
. "$here/influx_storage.sh"   # influxd, the proxy; get, post, iql, start_storage
# "entity home count" lines from the API and from InfluxDB's own points
api_counts() { get '/api/v1/entities?limit=10000' | jq -r '.entities[] | "\(.entity_id) \(.home_id // "-") \(.event_count)"' | sort | xargs; }
db_counts() {
  iql 'SELECT count(event_id) FROM home_assistant_events GROUP BY entity_id, home_id' |
    jq -r '.results[0].series[]? | "\(.tags.entity_id) \(if .tags.home_id == "" then "-" else .tags.home_id end) \(.values[0][1])"' |
    sort | xargs
}
# walk QUERY LIMIT : follows the cursor from after=0 until more is false (as admin-api's SSE tail does);
# "seq event_id" per event into walk.txt; sets WALK_REQUESTS, WALK_CURSOR (the last) and WALK_MONOTONE
# (1 when every answer with more=true moved the cursor on).
walk() {
  local q=$1 lim=$2 after=0 ans more=true n=0
  WALK_MONOTONE=1
  : > "$TEST_TMP/walk.txt"
  while [ "$more" = true ] && (( n < 100 )); do
    ans=$(get "/api/v1/events/feed?after=$after&limit=$lim$q")
    n=$((n + 1))
    jq -r '.events[] | "\(.seq) \(.event_id)"' <<<"$ans" >> "$TEST_TMP/walk.txt"
    more=$(jq -r .more <<<"$ans")
    local c; c=$(jq -r .cursor <<<"$ans")
    [ "$more" = true ] && (( c <= after )) && WALK_MONOTONE=0
    after=$c
  done
  WALK_REQUESTS=$n WALK_CURSOR=$after
}
seqs_strict() { awk 'NR > 1 && $1 <= p { bad = 1 } { p = $1 } END { exit bad }' "$1"; }
batch() { # batch N FROM PREFIX [CTX] : N events now-ish of PREFIX_0..2 (every third with an area), context CTX-i
  jq -nc --argjson n "$1" --argjson from "$2" --arg p "$3" --arg c "${4:-ctx-$3}" --arg t "$(date -u +%Y-%m-%dT%H:%M:%S)" \
    '{events: [range($from; $from + $n) as $i | {event_type: "state_changed", entity_id: "\($p)_\($i % 3)",
      time_fired: "\($t).\($i | tostring | if length < 6 then ("000000" + .)[-6:] else . end)Z",
      state: "\($i).5", value: ($i + 0.5), context_id: "\($c)-\($i)"} + (if $i % 3 == 1 then {area_id: "living_room"} else {} end)]}'
}

# ---- 1. upgrade: a store written by the build before the batch points ----------------------------
curl -s -XPOST "$REAL/query" --data-urlencode "q=CREATE DATABASE $DB" > /dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$REAL/write?db=$DB&precision=ns" --data-binary @"$here/fixtures/influx_feed_v0.lp")
check_eq "the old build's store is loaded (per-event feed points, its summary before the last batch)" 204 "$code"
OLD_SEQS=$(curl -s -G "$REAL/query" --data-urlencode "db=$DB" --data-urlencode "epoch=u" \
  --data-urlencode "q=SELECT event_id FROM homeiq_feed" | jq -r '.results[0].series[0].values[] | "\(.[0]) \(.[1])"')
SNAP=$(iql 'SELECT * FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][0]')
check "data-storage (this build) starts on it" start_storage
check_eq "entities after the restore = InfluxDB's own counts (the last old batch re-applied from its per-event points)" \
  "$(db_counts)" "$(wait_for 20 bash -c "[ \"\$(curl -s '$U/api/v1/entities?limit=10000' | jq '[.entities[].event_count] | add')\" = 50 ]"; api_counts)"
walk "" 7
check_eq "the old feed pages through: 50 events, in its commit order" "$OLD_SEQS" "$(cat "$TEST_TMP/walk.txt")"
OLD_HEAD=$WALK_CURSOR
check_eq "... the cursor ends at the old head" "$(tail -1 <<<"$OLD_SEQS" | cut -d' ' -f1)" "$OLD_HEAD"
check_eq "a new batch (batch points)" 200 "$(post "$(batch 40 0 sensor.new)")"
check_eq "a new batch of another home (lights)" 200 "$(post "$(batch 20 40 light.new)" cabin)"
NEW=$(get "/api/v1/events/feed?after=$OLD_HEAD&limit=1000")
check_eq "the tail after the old head: exactly the 60 new events" 60 "$(jq '.events | length' <<<"$NEW")"
check "... with sequences above the old head" jq -e --argjson h "$OLD_HEAD" '[.events[].seq] | min > $h' <<<"$NEW" > /dev/null
walk "" 7
check_eq "the whole feed paged by 7 (both forms): 110 events, each once" "110 110" \
  "$(wc -l < "$TEST_TMP/walk.txt") $(cut -d' ' -f2 "$TEST_TMP/walk.txt" | sort -u | wc -l)"
check "... sequences strictly increasing" seqs_strict "$TEST_TMP/walk.txt"
check "... the cursor moved on every page" test "$WALK_MONOTONE" = 1
cp "$TEST_TMP/walk.txt" "$TEST_TMP/all.txt"
# the filters on entries of both forms = the same events picked from the unfiltered feed's records; each filter
# must pick events of the form(s) named (old: per-event points, seq <= OLD_HEAD; new: batch entries), so a
# filter matching nothing, or a batch entry's columns swapped, fails here (review-feed 9)
full=$(get "/api/v1/events/feed?after=0&limit=1000")
for spec in "entity_id=sensor.up_a old" "entity_id=sensor.new_1 new" "area=living_room both" "home=cabin both" \
            "domain=light both" "domain=sensor both" "event_type=state_changed both"; do
  f=${spec% *} forms=${spec#* }
  case $f in
    entity_id=*) sel=".entity_id == \"${f#*=}\"" ;;
    area=*) sel='.area_id == "living_room"' ;;
    home=*) sel='.home_id == "cabin"' ;;
    domain=*) sel="(.entity_id | startswith(\"${f#*=}.\"))" ;;
    event_type=*) sel='.event_type == "state_changed"' ;;
  esac
  want=$(jq -r "[.events[] | select($sel) | .seq] | join(\" \")" <<<"$full")
  n_old=$(tr ' ' '\n' <<<"$want" | awk -v h="$OLD_HEAD" 'NF && $1 <= h' | wc -l)
  n_new=$(tr ' ' '\n' <<<"$want" | awk -v h="$OLD_HEAD" 'NF && $1 > h' | wc -l)
  case $forms in
    old) check "feed?$f: the feed holds such events, old ones only" test "$n_old" -gt 0 -a "$n_new" -eq 0 ;;
    new) check "feed?$f: the feed holds such events, new ones only" test "$n_new" -gt 0 -a "$n_old" -eq 0 ;;
    both) check "feed?$f: the feed holds such events of both forms" test "$n_old" -gt 0 -a "$n_new" -gt 0 ;;
  esac
  : > "$CUT.qlog"
  walk "&$f" 3
  mv "$CUT.qlog" "$TEST_TMP/qlog.txt"
  check_eq "feed?$f (paged by 3) = those events" "$want" "$(cut -d' ' -f1 "$TEST_TMP/walk.txt" | xargs)"
  if [ "$f" = entity_id=sensor.up_a ]; then # per-event points are selected by InfluxDB (their tags in the WHERE)
    scans=$(grep -c 'FROM "homeiq_feed" WHERE' "$TEST_TMP/qlog.txt")
    check "feed?$f: at most 2 feed scan requests a page ($WALK_REQUESTS pages, $scans requests; review-feed 7)" \
      test "$scans" -le $((2 * WALK_REQUESTS))
  fi
done
BACK=$(get "/api/v1/events/feed?limit=3")
check_eq "without after (the backlog): the newest 3, oldest first, cursor = head" \
  "$(tail -3 "$TEST_TMP/all.txt" | cut -d' ' -f1 | xargs) $(tail -1 "$TEST_TMP/all.txt" | cut -d' ' -f1)" \
  "$(jq -r '[.events[].seq] | join(" ")' <<<"$BACK") $(jq -r .cursor <<<"$BACK")"
# a restart whose summary is the old build's: both forms after it are re-applied from the feed
kill -9 "$STORAGE_PID"
stop_pid "$STORAGE_PID" > /dev/null 2>&1
for m in homeiq_summary homeiq_totals homeiq_homes; do iql "DELETE FROM $m WHERE time > $SNAP" > /dev/null; done
check "data-storage restarts (SIGKILLed; only the old build's summary left)" start_storage
check_eq "entities after that restore = InfluxDB's own counts (old per-event and new batch points re-applied)" \
  "$(db_counts)" "$(wait_for 20 bash -c "[ \"\$(curl -s '$U/api/v1/entities?limit=10000' | jq '[.entities[].event_count] | add')\" = 110 ]"; api_counts)"
walk "" 11
check_eq "after the restart: the same feed" "$(cat "$TEST_TMP/all.txt")" "$(cat "$TEST_TMP/walk.txt")"
stop_pid "$STORAGE_PID" > /dev/null

# ---- 2. two writes in flight, the later one finishing first -------------------------------------
DB=inflight
# without statistics a batch is answered as soon as its write is (and the registry's, none here): nothing
# else stands between B's 204 and its answer, so the checks below see at once what B's 204 did
INFLUXDB_STATISTICS=0 check "data-storage on a new database starts (statistics off)" start_storage
check_eq "a first batch" 200 "$(post "$(batch 9 0 sensor.first)")"
H0=$(get '/api/v1/events/feed?limit=1' | jq -r .cursor)
echo "ctx-held-a" > "$CUT.hold"
echo "ctx-free-b" > "$CUT.watch"
: > "$CUT.log"
(post "$(batch 30 0 sensor.held ctx-held-a)" > "$TEST_TMP/a.code") &
check "batch A's write is held by the proxy" wait_for 20 grep -q '^held' "$CUT.log"
(post "$(batch 30 100 sensor.free ctx-free-b)" > "$TEST_TMP/b.code") &
check "batch B's write is answered by InfluxDB meanwhile" wait_for 20 grep -q '^answered 204 watched' "$CUT.log"
MID=$(get "/api/v1/events/feed?after=$H0&limit=100")
check_eq "while A is held: the feed shows none of B's events (the head stays below A)" "0 $H0" \
  "$(jq -r '"\(.events | length) \(.head)"' <<<"$MID")"
check "... and B is not answered before A" test ! -s "$TEST_TMP/b.code"
check_eq "... /health counts B as started behind another batch" 1 "$(get /health | jq .backend.writes.started_behind_another)"
rm -f "$CUT.hold"
check "both are answered once A's write goes on" wait_for 30 bash -c "[ -s '$TEST_TMP/a.code' ] && [ -s '$TEST_TMP/b.code' ]"
check_eq "... both 200" "200 200" "$(cat "$TEST_TMP/a.code") $(cat "$TEST_TMP/b.code")"
AFTER=$(get "/api/v1/events/feed?after=$H0&limit=100")
check_eq "the feed after: A's 30 events, then B's 30" "sensor.held sensor.free 60 60" \
  "$(jq -r '"\(.events[0].entity_id | sub("_[0-9]$"; "")) \(.events[59].entity_id | sub("_[0-9]$"; "")) \(.events | length) \([.events[].event_id] | unique | length)"' <<<"$AFTER")"
check "... A's all before B's" jq -e '[.events[] | .entity_id | startswith("sensor.held")] | . == ([range(30)] | map(true)) + ([range(30)] | map(false))' <<<"$AFTER" > /dev/null
check "... sequences strictly increasing" jq -e '[.events[].seq] | . == (sort | unique)' <<<"$AFTER" > /dev/null
# the earlier batch fails after the later one's write was acknowledged (a batch whose duplicate check counted on the
# earlier one's events fails with it); both re-posted: stored once, the failed one's sequences a hole and its retry
# new ones (after the later one's)
H1=$(get '/api/v1/events/feed?limit=1' | jq -r .cursor)
rm -f "$TEST_TMP/a.code" "$TEST_TMP/b.code"
echo "ctx-held-c" > "$CUT.hold"
echo "ctx-free-d" > "$CUT.watch"
: > "$CUT.log"
C=$(batch 30 200 sensor.cfail ctx-held-c) D=$(batch 30 300 sensor.dlate ctx-free-d)
(post "$C" > "$TEST_TMP/a.code") &
check "batch C's write is held" wait_for 20 grep -q '^held' "$CUT.log"
(post "$D" > "$TEST_TMP/b.code") &
check "batch D's write is answered by InfluxDB meanwhile" wait_for 20 grep -q '^answered 204 watched' "$CUT.log"
echo "ctx-held-c" > "$CUT.block"
rm -f "$CUT.hold"
check "both are answered once C's write fails" wait_for 30 bash -c "[ -s '$TEST_TMP/a.code' ] && [ -s '$TEST_TMP/b.code' ]"
check_eq "... C 503" 503 "$(cat "$TEST_TMP/a.code")"
check_eq "... D 200: it shares no event with C, so C's failure does not fail it (review-feed 2)" 200 "$(cat "$TEST_TMP/b.code")"
rm -f "$CUT.block"
check_eq "both re-posted: 200" "200 200" "$(post "$C") $(post "$D")"
FD=$(get "/api/v1/events/feed?after=$H1&limit=1000")
check_eq "the feed after: D's 30 (its first write), then C's 30 (the retry's new sequences), each once" \
  "sensor.dlate sensor.cfail 60 60" \
  "$(jq -r '"\(.events[0].entity_id | sub("_[0-9]$"; "")) \(.events[59].entity_id | sub("_[0-9]$"; "")) \(.events | length) \([.events[].event_id] | unique | length)"' <<<"$FD")"
check_eq "entities = InfluxDB's own counts (the failure made memory restore)" "$(db_counts)" \
  "$(wait_for 20 bash -c "[ \"\$(curl -s '$U/api/v1/entities?limit=10000' | jq '[.entities[].event_count] | add')\" = 129 ]"; api_counts)"
stop_pid "$STORAGE_PID" > /dev/null

# ---- 3. a sparse filter's tail moves on ---------------------------------------------------------
DB=sparse
check "data-storage on a new database starts" start_storage
ok=1
for ((k = 0; k < 25; k++)); do [ "$(post "$(batch 1000 $((k * 1000)) sensor.noise)")" = 200 ] || ok=0; done
check "25,000 events of other entities stored" test "$ok" = 1
check_eq "then one of sensor.rare" 200 "$(post '{"events":[{"event_type":"state_changed","entity_id":"sensor.rare","time_fired":"'"$(date -u +%Y-%m-%dT%H:%M:%S.000001Z)"'","state":"1","context_id":"rare"}]}')"
check_eq "and more of the others" 200 "$(post "$(batch 1000 30000 sensor.noise)")"
walk "&entity_id=sensor.rare" 100
check_eq "the tail of sensor.rare (following the cursor) finds its one event" 1 "$(wc -l < "$TEST_TMP/walk.txt")"
check "... in more than one request (each looks at a bounded number of entries)" test "$WALK_REQUESTS" -gt 1
check "... each request's cursor moved on" test "$WALK_MONOTONE" = 1
check_eq "... and ends at the head" "$(get '/api/v1/events/feed?limit=1' | jq -r .head)" "$WALK_CURSOR"
stop_pid "$STORAGE_PID" > /dev/null
finish

#!/usr/bin/env bash
# tests/admin/test_influx_summary.sh -- the entity list and totals on InfluxDB
# are kept by the write path and written back as a summary (homeiq_summary,
# homeiq_totals: influx_summary.h, docs/INFLUX_READS.md), so a restart reads
# one point per entity instead of scanning every event. What must hold, on a
# real influxd, compared each time with InfluxDB's own count of the stored
# points (the ground truth a full scan would give):
#  - a re-posted batch (all duplicates) does not double a count;
#  - a batch InfluxDB stored whose answer was lost (influx_cut_proxy.py closes
#    the connection after InfluxDB's 204: data-storage answers 503), then
#    posted again (all duplicates now), is counted exactly once;
#  - a restart reads the summary: a value planted in it comes back (no scan);
#  - events stored after the last summary write (summary writes refused by
#    the proxy, then SIGKILL) are re-applied from homeiq_feed;
#  - the overview's window is answered from memory (influxd frozen);
#  - a store without a summary (written by an earlier version) is scanned once.
# Usage: test_influx_summary.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_influx_summary.sh homeiq-data-storage}
DB=summary
. "$here/influx_storage.sh"   # influxd, the proxy; get, post, iql, start_storage
rec() { # rec ENTITY TIME STATE VALUE
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s-%s"}' \
    "$1" "$2" "$3" "$4" "$1" "$2"
}
# "entity count" lines, sorted, from the API and from InfluxDB's own points
api_counts() { get '/api/v1/entities?limit=10000' | jq -r '.entities[] | "\(.entity_id) \(.event_count)"' | sort | xargs; }
db_counts() {
  iql 'SELECT count(event_id) FROM home_assistant_events GROUP BY entity_id' |
    jq -r '.results[0].series[]? | "\(.tags.entity_id) \(.values[0][1])"' | grep -v '^ ' | sort | xargs
}
db_total() { iql 'SELECT count(event_id) FROM home_assistant_events' | jq -r '.results[0].series[0].values[0][1] // 0'; }
api_total() { get '/api/v1/stats' | jq -r .events_total; }
batch() { # batch PREFIX N DAY: N events for PREFIX_0 and PREFIX_1
  local out="" i
  for ((i = 0; i < $2; i++)); do
    out="$out${out:+,}$(rec "$1_$((i % 2))" "2025-04-$3T10:00:$(printf %02d "$i")Z" "$i.5" "$i.5")"
  done
  echo "[$out]"
}

check "data-storage (through the proxy) starts healthy" start_storage

# ---- a fresh store: every event has a feed point, no scan -------------------
A=$(batch sensor.sum_a 6 01)
check_eq "batch A stored" '200 6' "$(post "$A") $(jq .stored "$TEST_TMP/post.json")"
check_eq "entities = InfluxDB's own count of the stored points" "$(db_counts)" "$(api_counts)"
check_eq "a re-post of A: 200, all 6 duplicates" '200 6 0' \
  "$(post "$A") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json")"
check_eq "... counts unchanged (sensor.sum_a_0 3, sensor.sum_a_1 3)" 'sensor.sum_a_0 3 sensor.sum_a_1 3' "$(api_counts)"
check_eq "... total unchanged (6)" 6 "$(api_total)"
dupq() { curl -s "$U/health" | jq -c '.backend.duplicate_check | [.queries, .batches_from_memory]'; }
check_eq "A and its re-post checked from memory (influx_recent.h): no duplicate-check query, 2 batches" '[0,2]' "$(dupq)"

# ---- stored, answer lost, posted again ---------------------------------------
B=$(batch sensor.sum_cut 4 02)
printf 'sensor.sum_cut' >"$CUT"
check_eq "batch B: InfluxDB stores it, the answer is lost -> 503" 503 "$(post "$B")"
rm -f "$CUT"
check "... the proxy cut the write (httpc may send it again on a new connection: cut too)" test "$(wc -l <"$CUT.hits")" -ge 1
check_eq "... yet InfluxDB holds B's 4 points" 'sensor.sum_cut_0 2 sensor.sum_cut_1 2' \
  "$(db_counts | tr ' ' '\n' | paste - - | grep sum_cut | xargs)"
wait_healthy "$U/health" 30
check_eq "B posted again (ingestion's retry): 200, all 4 duplicates" '200 4 0' \
  "$(post "$B") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json")"
check "... found by asking InfluxDB (the failed write raised memory's horizon)" test "$(dupq | jq '.[0]')" -ge 1
wait_for 10 bash -c "[ \"\$(curl -s '$U/api/v1/entities?search=sum_cut' | jq -r '[.entities[].event_count] | add')\" = 4 ]"
check_eq "B counted once (2 + 2, not 0 and not 8) = InfluxDB's count" "$(db_counts)" "$(api_counts)"
check_eq "total = InfluxDB's (10)" "10 10" "$(db_total) $(api_total)"
C=$(batch sensor.sum_a 4 03)
check_eq "a batch after the recovery is counted by the write path again" '200 4' "$(post "$C") $(jq .stored "$TEST_TMP/post.json")"
check_eq "... entities = InfluxDB's count" "$(db_counts)" "$(api_counts)"
E_BEFORE=$(get '/api/v1/entities')

# ---- restart: read from the summary ------------------------------------------
wait_for 10 bash -c "[ \"\$(curl -s -G '$REAL/query' --data-urlencode db=$DB --data-urlencode 'q=SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1]')\" = 14 ]"
T=$(iql 'SELECT * FROM homeiq_totals ORDER BY time DESC LIMIT 1' | jq -r '.results[0].series[0].values[0][0]')
check_eq "the summary holds one point per entity (4) at its latest snapshot time, and the totals (14)" '4 14' \
  "$(iql "SELECT count(count) FROM homeiq_summary WHERE time = $T" | jq -r '.results[0].series[0].values[0][1]') $(iql 'SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1]')"
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
check "data-storage starts again" start_storage
check_eq "after a restart: the same entity list (last state, last change, count)" "$E_BEFORE" "$(get '/api/v1/entities')"
check_eq "after a restart: totals" 14 "$(api_total)"
check_eq "after a restart, C (the newest batch) posted again: all 4 duplicates, asked of InfluxDB (below the start horizon)" \
  '200 4 0 1' "$(post "$C") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json") $(dupq | jq '.[0]')"

# plant a value in the summary: a restart that reads it shows it (a scan would not)
stop_pid "$PID_storage"
T=$(iql 'SELECT * FROM homeiq_totals ORDER BY time DESC LIMIT 1' | jq -r '.results[0].series[0].values[0][0]')
SEQ=$(iql "SELECT seq FROM homeiq_summary WHERE entity_id = 'sensor.sum_cut_0' AND time = $T" | jq -r '.results[0].series[0].values[0][1]')
check "the entity's summary point is found (time $T, seq $SEQ)" test -n "$SEQ" -a "$SEQ" != null
curl -s -o /dev/null -w '%{http_code}' -XPOST "$REAL/write?db=$DB" --data-binary \
  "homeiq_summary,entity_id=sensor.sum_cut_0 domain=\"sensor\",count=999i,last_ns=1i,state=\"planted\",state_ns=1i,changed_ns=1i,numeric=false,seq=${SEQ}i $T" >"$TEST_TMP/w.code"
check_eq "planted a count of 999 in the summary" 204 "$(cat "$TEST_TMP/w.code")"
check "data-storage starts (planted summary)" start_storage
check_eq "the restart read the summary, not the events: 999 planted" '999 planted' \
  "$(get '/api/v1/entities?search=sum_cut_0' | jq -r '.entities[0] | "\(.event_count) \(.state)"')"

# ---- a store without a summary (an earlier version's): scanned once ------------
stop_pid "$PID_storage"
iql 'DROP MEASUREMENT homeiq_summary' >/dev/null
iql 'DROP MEASUREMENT homeiq_totals' >/dev/null
check_eq "summary dropped" '' "$(iql 'SHOW MEASUREMENTS' | jq -r '.results[0].series[0].values[][0]' | grep homeiq_totals)"
check "data-storage starts (no summary)" start_storage
check_eq "no summary: one scan gives InfluxDB's count again (999 gone)" "$(db_counts)" "$(api_counts)"
check_eq "... and the same list as before the planting" "$E_BEFORE" "$(get '/api/v1/entities')"
check_eq "... totals" 14 "$(api_total)"

# ---- killed before the summary caught up: the feed after it ----------------------------
printf 'homeiq_totals' >"$CUT.block"   # the proxy refuses summary writes (503), nothing else
check_eq "batch D" 200 "$(post "$(batch sensor.sum_d 2 04)")"
check_eq "batch E" 200 "$(post "$(batch sensor.sum_e 6 05)")"
sleep 1.5   # the throttled summary write is tried (and refused)
kill -KILL "$PID_storage"; wait "$PID_storage" 2>/dev/null; _forget_pid "$PID_storage"
rm -f "$CUT.block"
check_eq "the summary on disk misses D and E (14 events, not 22)" 14 \
  "$(iql 'SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1]')"
check "data-storage starts after SIGKILL" start_storage
check_eq "D and E re-applied from the feed: entities = InfluxDB's count" "$(db_counts)" "$(api_counts)"
check_eq "... totals = InfluxDB's (22)" "22 22" "$(db_total) $(api_total)"
check_eq "... sensor.sum_e_1: 3 events, last state 5.5" '3 5.5' \
  "$(get '/api/v1/entities?search=sum_e_1' | jq -r '.entities[0] | "\(.event_count) \(.state)"')"

# ---- the overview's window from memory (no InfluxDB query) ------------------------
sleep 11   # the window below (10 s) begins after memory took over (at the restore above)
NOWS=$(date -u +%s)
W=""
for i in 0 1 2; do W="$W${W:+,}$(rec sensor.sum_live_$i "$(date -u -d "@$NOWS" +%Y-%m-%dT%H:%M:%S).$((i + 1))00000Z" "$i.0" "$i.0")"; done
W="$W,$(rec light.sum_live "$(date -u -d "@$NOWS" +%Y-%m-%dT%H:%M:%S).900000Z" on 1.0)"
check_eq "4 events fired now" 200 "$(post "[$W]")"
ST=$(get '/api/v1/stats?window=10')
check_eq "window from memory: the 4 events, per domain light 1 sensor 3" '4 4 1 3' \
  "$(jq -r '"\(.window_events) \(.per_second | add) \(.per_domain.light) \(.per_domain.sensor)"' <<<"$ST")"
check_eq "... = InfluxDB's own count for that second" 4 \
  "$(iql "SELECT count(event_id) FROM home_assistant_events WHERE time >= ${NOWS}s AND time < $((NOWS + 1))s" | jq -r '.results[0].series[0].values[0][1]')"
kill -STOP "$INFLUXD_PID"
curl -s -m 3 -o "$TEST_TMP/st2.json" -w '%{http_code}' "$U/api/v1/stats?window=10" >"$TEST_TMP/st2.code"
kill -CONT "$INFLUXD_PID"
check_eq "influxd frozen: the overview's stats still answer at once, from memory, the same counts" "200 4 $(jq -c .per_domain <<<"$ST") 26" \
  "$(cat "$TEST_TMP/st2.code") $(jq -r '"\(.window_events) \(.per_domain | tojson) \(.events_total)"' "$TEST_TMP/st2.json")"
check_eq "... and the entity list" 200 "$(curl -s -m 3 -o /dev/null -w '%{http_code}' "$U/api/v1/entities")"

# ---- a numeric series leaves out the state regex only when no value ever came under a digitless state ----
M="[$(rec sensor.sum_mixed 2025-04-06T10:00:00Z 5.0 5.0),$(rec sensor.sum_mixed 2025-04-06T10:05:00Z on 1.0)]"
M="${M%]},$(rec sensor.sum_plain 2025-04-06T10:00:00Z 5.0 5.0),$(rec sensor.sum_plain 2025-04-06T10:05:00Z 7.0 7.0)]"
check_eq "a sensor with a value under state 'on' (mixed), and a plain one" 200 "$(post "$M")"
check_eq "mixed: the 'on' point is not a number (SQLite's rule): count 1, mean 5" 'numeric 1 5' \
  "$(get '/api/v1/series?entity_id=sensor.sum_mixed&start=2025-04-06T10:00:00Z&end=2025-04-06T11:00:00Z&points=1' | jq -r '"\(.kind) \(.buckets[0].count) \(.buckets[0].mean)"')"
check_eq "plain (no regex in the query): count 2, mean 6" 'numeric 2 6' \
  "$(get '/api/v1/series?entity_id=sensor.sum_plain&start=2025-04-06T10:00:00Z&end=2025-04-06T11:00:00Z&points=1' | jq -r '"\(.kind) \(.buckets[0].count) \(.buckets[0].mean)"')"
stop_pid "$PID_storage"; check "data-storage exits cleanly" test $? = 0
check "data-storage starts again (mixed read back from the summary)" start_storage
check_eq "after a restart (list restored from the summary first), mixed is still honoured: count 1" '1 1' \
  "$(get '/api/v1/entities?search=sum_mixed' | jq -r .count) $(get '/api/v1/series?entity_id=sensor.sum_mixed&start=2025-04-06T10:00:00Z&end=2025-04-06T11:00:00Z&points=1' | jq -r '.buckets[0].count')"
stop_pid "$PID_storage"
finish

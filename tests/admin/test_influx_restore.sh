#!/usr/bin/env bash
# tests/admin/test_influx_restore.sh -- batches that finish while the entity list is being restored are applied
# after the restore from what the write path kept (influx_pending.h), not read back from InfluxDB.
#
# Why: the restore (after a process's first batch, or after a failed one) used to read the feed, and every
# record, up to wherever the batches had got by then; under a burst it chased the head for the whole burst
# (session 9: ~0.6 queries and ~1.1 MB of answers per 1,000 events, 37 us of data-storage's CPU per event
# instead of ~12). Here the restore's first query is held by influx_cut_proxy.py (.qhold) while batches finish,
# so the scenario is exact, not a race. What must hold, on a real influxd:
#  - the restore reads the feed and the records of the first batch only (one record range, 6 entries), and the
#    8 batches that finished while it waited are kept and applied after it;
#  - the entity list, last states and totals then equal InfluxDB's own count and last() of the stored points;
#  - no duplicate-check query: every batch checked from memory (influx_recent.h);
#  - a batch that fails while a restore waits (stored, its answer lost) makes that restore read the feed up to the
#    head instead (exact), and its re-post is all duplicates, counted once;
#  - a restart reads the snapshot written from that memory: the same counts;
#  - a read before a restarted process's first batch starts the restore, and a batch finishes while it waits
#    (its head query went out unbounded, so the answer is that batch's own point): the earlier run's feed after
#    its snapshot is still read, and the waiting read already lists every entity -- on the homeiq schema (feed
#    entries after the snapshot: the earlier run was killed before its summary write landed) and on the
#    homeassistant schema with no snapshot at all (before the fix: the earlier run's entities gone for good).
#  - two batches with late dead letters (built after the next batch opened) finishing while a restore waits are
#    both kept (the first's are counted with the batch after it), not read to the head; dead letters exact.
# Usage: test_influx_restore.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_influx_restore.sh homeiq-data-storage}
DB=restore
export INFLUXDB_STATISTICS=0 INFLUXDB_TIMEOUT_MS=60000  # a held query must not time out
# the refused line below is a field type conflict on duration_in_state, which only full points write
export INFLUXDB_EVENT_FIELDS=full
. "$here/influx_storage.sh"   # influxd, the proxy; get, post, iql, start_storage
batch() { # batch PREFIX SECOND N: N events over PREFIX_0..PREFIX_2, all in second SECOND of 2025-04-01T10:00
  local out="" i
  for ((i = 0; i < $3; i++)); do
    out="$out${out:+,}$(printf '{"event_type":"state_changed","entity_id":"%s_%d","time_fired":"2025-04-01T10:00:%02d.%06dZ","state":"%d","value":%d,"context_id":"%s-%d-%d"}' \
      "$1" $((i % 3)) "$2" "$i" "$i" "$i" "$1" "$2" "$i")"
  done
  echo "[$out]"
}
# "entity count state" lines from the API and from InfluxDB's own points (the ground truth of a scan)
api_list() { get '/api/v1/entities?limit=10000' | jq -r '.entities[] | "\(.entity_id) \(.event_count) \(.state)"' | sort | xargs; }
db_list() {
  iql 'SELECT count(event_id), last(state) FROM home_assistant_events GROUP BY entity_id' |
    jq -r '.results[0].series[]? | "\(.tags.entity_id) \(.values[0][1]) \(.values[0][2])"' | sort | xargs
}
db_total() { iql 'SELECT count(event_id) FROM home_assistant_events' | jq -r '.results[0].series[0].values[0][1] // 0'; }
api_total() { get '/api/v1/stats' | jq -r .events_total; }
health() { curl -s "$U/health" | jq -c "$1"; }
held() { local n; n=$(grep -c qheld "$CUT.log" 2>/dev/null); echo "${n:-0}"; } # grep -c prints 0 itself (and fails) on no match
total_is() { [ "$(api_total)" = "$1" ]; }
held_ge() { [ "$(held)" -ge "$1" ]; }

check "data-storage (through the proxy) starts healthy" start_storage

# ---- the first restore waits while 8 batches finish (2 s apart: one record range each) ---------------------------------------------
printf 'homeiq_totals' >"$CUT.qhold"   # the restore's first query (the snapshot's totals) waits
: >"$CUT.qlog"
check_eq "batch A (6 events): 200, 6 stored" '200 6' "$(post "$(batch sensor.r 1 6)") $(jq .stored "$TEST_TMP/post.json")"
check "... the restore it starts waits at the proxy" wait_for 10 held_ge 1
codes=""
for s in 3 5 7 9 11 13 15 17; do codes="$codes $(post "$(batch sensor.r "$s" 50)")"; done
check_eq "8 more batches of 50 finish while the restore waits" ' 200 200 200 200 200 200 200 200' "$codes"
check_eq "... kept for the restore (influx_pending.h), none read back yet" '{"restores":1,"feed_entries_read":0,"batches_kept":8,"read_to_head":0}' \
  "$(health .backend.entity_restore)"
rm -f "$CUT.qhold"
check "the restore finishes: totals = InfluxDB's (406)" wait_for 20 total_is 406
check_eq "entities (count, last state) = InfluxDB's own count and last()" "$(db_list)" "$(api_list)"
check_eq "the restore read the first batch's 6 feed entries only, and applied the 8 kept batches" \
  '{"restores":1,"feed_entries_read":6,"batches_kept":8,"read_to_head":0}' "$(health .backend.entity_restore)"
check_eq "... its records: one range (the first batch's second), not nine (the batches are 2 s apart)" 1 \
  "$(grep -o 'SELECT record, event_id, stored_at FROM "home_assistant_events" WHERE time' "$CUT.qlog" | wc -l)"
check "... answered in < 4,000 bytes (6 records), not ~107,000 (406)" test \
  "$(grep 'SELECT record, event_id, stored_at FROM "home_assistant_events" WHERE time' "$CUT.qlog" | awk '{ n += $1 } END { print n + 0 }')" -lt 4000
check_eq "no duplicate-check query: 9 batches from memory" '[0,9]' \
  "$(health '.backend.duplicate_check | [.queries, .batches_from_memory]')"
check_eq "a batch after the restore is counted by the write path" '200 50' \
  "$(post "$(batch sensor.r 20 50)") $(jq .stored "$TEST_TMP/post.json")"
check_eq "... entities = InfluxDB's" "$(db_list)" "$(api_list)"
check_eq "... totals = InfluxDB's (456)" '456 456' "$(db_total) $(api_total)"

# ---- a batch fails while the next restore waits: that restore reads the feed up to the head ----------
printf 'sensor.f_' >"$CUT.block"
check_eq "batch F refused by the proxy (503): memory is stale" 503 "$(post "$(batch sensor.f 22 30)")"
rm -f "$CUT.block"
printf 'homeiq_totals' >"$CUT.qhold"
wait_healthy "$U/health" 30
check_eq "batch G: 200 (its success starts the restore, which waits)" 200 "$(post "$(batch sensor.g 24 30)")"
check "... the restore waits at the proxy" wait_for 10 held_ge 2
check_eq "batch H finishes while it waits" 200 "$(post "$(batch sensor.g 26 30)")"
G2=$(batch sensor.cut 28 30)
printf 'sensor.cut_' >"$CUT"
check_eq "batch C: InfluxDB stores it, its answer is lost -> 503 while the restore waits" 503 "$(post "$G2")"
rm -f "$CUT"
wait_healthy "$U/health" 30
check_eq "batch I finishes while it waits" 200 "$(post "$(batch sensor.g 30 30)")"
check_eq "... the failure made it read the feed up to the head (H kept, then dropped)" '2 1' \
  "$(health '.backend.entity_restore | "\(.restores) \(.read_to_head)"' | tr -d '"')"
rm -f "$CUT.qhold"
check "the restore finishes: totals = InfluxDB's (456 + G, H, C, I = 576)" wait_for 20 total_is 576
check_eq "entities = InfluxDB's (C counted although its answer was lost)" "$(db_list)" "$(api_list)"
check_eq "C posted again (the retry): 200, all 30 duplicates" '200 30 0' \
  "$(post "$G2") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json")"
check_eq "... counted once: totals = InfluxDB's (576)" '576 576' "$(db_total) $(api_total)"
check_eq "... entities = InfluxDB's" "$(db_list)" "$(api_list)"

# ---- a restart reads the snapshot written from that memory ---------------------------------------
wait_for 10 bash -c "[ \"\$(curl -s -G '$REAL/query' --data-urlencode db=$DB --data-urlencode 'q=SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1]')\" = 576 ]"
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
check "data-storage starts again" start_storage
check_eq "after a restart: entities = InfluxDB's" "$(db_list)" "$(api_list)"
check_eq "after a restart: totals = InfluxDB's" '576 576' "$(db_total) $(api_total)"

# ---- a read before the first batch of a restarted process, with feed entries after the snapshot ----------
summary_events() { iql 'SELECT last(events) FROM homeiq_totals' | jq -r '.results[0].series[0].values[0][1] // "none"'; }
summary_is() { [ "$(summary_events)" = "$1" ]; }
kill9() { kill -KILL "$PID_storage"; wait "$PID_storage" 2>/dev/null; _forget_pid "$PID_storage"; }
first_list() { jq -r '[.entities[] | "\(.entity_id) \(.event_count) \(.state)"] | sort | join(" ")' "$TEST_TMP/first.json"; }
read_held() { # starts the entity read in the background (its restore's first query is held); sets RP
  local n=$(($(held) + 1))
  printf 'homeiq_totals' >"$CUT.qhold"
  (curl -s "$U/api/v1/entities?limit=10000" >"$TEST_TMP/first.json") &
  RP=$!
  check "... the read's restore waits at the proxy" wait_for 10 held_ge "$n"
}
printf 'homeiq_totals' >"$CUT.block" # summary writes refused: the snapshot stays at 576
check_eq "batch D (9 events) after the snapshot" 200 "$(post "$(batch sensor.d 40 9)")"
sleep 1.5 # the snapshot the batch starts is written (refused) or dropped with the process
kill9
rm -f "$CUT.block"
check_eq "the snapshot holds 576: D is in the feed only" 576 "$(summary_events)"
check "data-storage starts again (killed)" start_storage
read_held
check_eq "batch X (12 events) finishes while the read-started restore waits" 200 "$(post "$(batch sensor.x 42 12)")"
rm -f "$CUT.qhold"
wait "$RP"
check_eq "the waiting read lists every entity (D's from the feed, X's kept)" "$(db_list)" "$(first_list)"
check_eq "... one restore: read D's 9 feed entries, applied X kept (memory not stale)" \
  '{"restores":1,"feed_entries_read":9,"batches_kept":1,"read_to_head":0}' "$(health .backend.entity_restore)"
check_eq "... totals = InfluxDB's (597)" '597 597' "$(db_total) $(api_total)"

# ---- two batches' late dead letters while a restore waits: both kept, not read to the head ----------
# (late: a batch's dead letters built after the next batch opened, held until the settle mark passes them)
stop_pid "$PID_storage"
DB=restore_late
logn() { grep -c "$1" "$CUT.log" 2>/dev/null; } # prints 0 itself on no match
logn_ge() { [ "$(logn "$1")" -ge "$2" ]; }
ev() { # ev ENTITY SECOND CONTEXT [EXTRA_JSON_FIELDS]
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"2025-04-01T10:01:%02d.000000Z","state":"1","value":1,"context_id":"%s"%s}' \
    "$1" "$2" "$3" "${4:-}"
}
post_bg() { (curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$U/api/v1/events" >"$TEST_TMP/$1.code") & }
late_pair() { # late_pair X Y SECOND: X (a refused line) held at the proxy, Y written beside it, then X goes on
  local h w
  h=$(logn '^held') w=$(logn 'watched')
  rm -f "$TEST_TMP/$1.code" "$TEST_TMP/$2.code"
  printf 'late%s-' "$1" >"$CUT.hold"
  printf 'late%s-' "$2" >"$CUT.watch"
  post_bg "$1" "[$(ev "sensor.l$1" "$3" "late$1-1"),$(ev sensor.bad "$3" "late$1-2" ',"duration_in_state":5')]"
  check "$1's write is held" wait_for 10 logn_ge '^held' $((h + 1))
  post_bg "$2" "[$(ev "sensor.l$2" $(($3 + 1)) "late$2-1")]"
  check "$2 (opened while $1 is open) is written beside it" wait_for 10 logn_ge 'answered 204 watched' $((w + 1))
  rm -f "$CUT.hold"
  check "$1 and $2 are answered" wait_for 20 test -s "$TEST_TMP/$2.code"
  check_eq "... $1: 200 (its refused line bisected into a dead letter after $2 opened: late), $2: 200" '200 200' \
    "$(cat "$TEST_TMP/$1.code") $(cat "$TEST_TMP/$2.code")"
}
check "data-storage starts (another database)" start_storage
check_eq "batch L" 200 "$(post "$(batch sensor.l 1 3)")"
check "... its restore is done (the summary is written)" wait_for 10 summary_is 3
R0=$(health .backend.entity_restore) # the first restore may scan (the probe can see L's own series)
# a point whose duration_in_state is a string: a float one later in this shard is refused (400, bisected)
curl -s -XPOST "$REAL/write?db=$DB&precision=s" \
  --data-binary "home_assistant_events,entity_id=sensor.pre duration_in_state=\"x\" $(date -u -d 2025-04-01T09:59:00Z +%s)"
printf 'sensor.f_' >"$CUT.block"
check_eq "batch F refused (503): memory is stale" 503 "$(post "$(batch sensor.f 3 3)")"
rm -f "$CUT.block"
n=$(($(held) + 1))
printf 'homeiq_totals' >"$CUT.qhold"
check_eq "batch G: 200, its success starts the restore (held)" 200 "$(post "$(batch sensor.g 5 3)")"
check "... the restore waits at the proxy" wait_for 10 held_ge "$n"
late_pair A B 10
late_pair C D 20
rm -f "$CUT.watch"
check_eq "A, B, C, D kept, the restore not read to the head (before: C's late ones could not be held)" \
  'restores +1, kept +4, read_to_head +0' "$(health ".backend.entity_restore | \"restores +\(.restores - $(jq .restores <<<"$R0")), \
kept +\(.batches_kept - $(jq .batches_kept <<<"$R0")), read_to_head +\(.read_to_head - $(jq .read_to_head <<<"$R0"))\"" | jq -r .)"
rm -f "$CUT.qhold"
check "the restore finishes: totals = InfluxDB's" wait_for 20 total_is "$(db_total)"
check_eq "dead letters = InfluxDB's count(error) (2: A's and C's, each counted once)" "2 2" \
  "$(iql 'SELECT count(error) FROM homeiq_dead_letters' | jq -r '.results[0].series[0].values[0][1] // 0') $(get /api/v1/stats | jq -r .dead_letters_total)"
check_eq "... entities = InfluxDB's" "$(db_list)" "$(api_list)"

# ---- the same on the homeassistant schema, the earlier run killed before any summary write landed --------
stop_pid "$PID_storage"
DB=restore_ha
export INFLUXDB_SCHEMA=homeassistant
ids_list() { # "entity count" from the identity points (every stored event's record) and from the API
  iql 'SELECT count(event_id) FROM homeiq_ids GROUP BY entity_id' | jq -r '.results[0].series[]? | "\(.tags.entity_id) \(.values[0][1])"' | sort | xargs
}
api_counts() { get '/api/v1/entities?limit=10000' | jq -r '.entities[] | "\(.entity_id) \(.event_count)"' | sort | xargs; }
first_counts() { jq -r '[.entities[] | "\(.entity_id) \(.event_count)"] | sort | join(" ")' "$TEST_TMP/first.json"; }
printf 'homeiq_totals' >"$CUT.block" # no summary is written in the first run
check "homeassistant schema: data-storage starts" start_storage
check_eq "batch D (9 events)" 200 "$(post "$(batch sensor.d 3 9)")"
sleep 1.5
kill9
rm -f "$CUT.block"
check_eq "no summary in the store" none "$(summary_events)"
check "data-storage starts again (killed)" start_storage
read_held
check_eq "batch X (12 events) finishes while the read-started restore waits" 200 "$(post "$(batch sensor.x 5 12)")"
rm -f "$CUT.qhold"
wait "$RP"
check_eq "the waiting read lists the earlier run's entities too" 'sensor.d_0 3 sensor.d_1 3 sensor.d_2 3 sensor.x_0 4 sensor.x_1 4 sensor.x_2 4' "$(first_counts)"
check_eq "... = InfluxDB's identity points" "$(ids_list)" "$(api_counts)"
check_eq "... one restore, D's 9 feed entries read, X kept" \
  '{"restores":1,"feed_entries_read":9,"batches_kept":1,"read_to_head":0}' "$(health .backend.entity_restore)"
check_eq "batch Y after it" 200 "$(post "$(batch sensor.y 7 3)")"
check_eq "... entities = InfluxDB's" "$(ids_list)" "$(api_counts)"
check "the summary is written (24 events)" wait_for 10 summary_is 24
stop_pid "$PID_storage"
check "data-storage starts again (cleanly stopped)" start_storage
check_eq "after a restart: entities = InfluxDB's" "$(ids_list)" "$(api_counts)"
finish

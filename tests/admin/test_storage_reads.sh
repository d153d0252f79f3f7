#!/usr/bin/env bash
# tests/admin/test_storage_reads.sh -- data-storage's read endpoints for the
# dashboard (GET /api/v1/events/feed, /api/v1/entities, /api/v1/series,
# /api/v1/stats) on a real SQLite file, the v2 -> v3 schema migration, and the
# 503 an unreachable InfluxDB answers (InfluxDB itself: test_storage_reads_influx.sh).
#
# Why: the dashboard trusts these for "no gap, no repeat" (the feed cursor),
# the entity list (kept by a trigger in the writer's transaction) and the
# downsampled history; each is checked against values computed by hand.
# Usage: test_storage_reads.sh /path/to/homeiq-data-storage
. "$(dirname "$0")/../lib/common.sh"
BIN=${1:?usage: test_storage_reads.sh homeiq-data-storage}
export DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn
mkdir -p "$DATA_DIR"
PORT=$(free_port) U=http://127.0.0.1:$PORT

get() { curl -s "$U$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$U$1"; }
jqe() { jq -e "$@" >/dev/null; }
post() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" "$U/api/v1/events"; }
rec() { # rec ENTITY TIME STATE [VALUE|null] [TYPE] [CONTEXT]
  printf '{"event_type":"%s","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s"}' \
    "${5:-state_changed}" "$1" "$2" "$3" "${4:-null}" "${6:-$1-$2}"
}

# ---- a version-2 file (as the previous release wrote it) is migrated --------
sqlite3 "$DATA_DIR/events.db" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, time_us INTEGER NOT NULL,
  entity_id TEXT, domain TEXT, event_type TEXT NOT NULL, stored_at_us INTEGER NOT NULL, record TEXT NOT NULL);
CREATE INDEX events_time ON events(time_us);
CREATE INDEX events_entity_time ON events(entity_id, time_us);
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, received_at_us INTEGER NOT NULL, source TEXT NOT NULL,
  error TEXT NOT NULL, raw TEXT NOT NULL);
CREATE INDEX events_domain_time ON events(domain, time_us);
CREATE INDEX events_type_time ON events(event_type, time_us);
INSERT INTO events VALUES (1,'a1',1740823200000000,'switch.old_pump','switch','state_changed',1,
  '{"event_type":"state_changed","entity_id":"switch.old_pump","time_fired":"2025-03-01T10:00:00Z","state":"on","value":1.0}');
INSERT INTO events VALUES (2,'a2',1740823800000000,'switch.old_pump','switch','state_changed',1,
  '{"event_type":"state_changed","entity_id":"switch.old_pump","time_fired":"2025-03-01T10:10:00Z","state":"off","value":0.0}');
INSERT INTO events VALUES (3,'a3',1740824400000000,'switch.old_pump','switch','state_changed',1,
  '{"event_type":"state_changed","entity_id":"switch.old_pump","time_fired":"2025-03-01T10:20:00Z","state":"off","value":0.0}');
INSERT INTO events VALUES (4,'a4',1740823200000000,'sensor.old_temp','sensor','state_changed',1,
  '{"event_type":"state_changed","entity_id":"sensor.old_temp","time_fired":"2025-03-01T10:00:00Z","state":"20.5","value":20.5}');
PRAGMA user_version=2;
SQL
DATA_DIR=$DATA_DIR DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage starts on a v2 file" wait_healthy "$U/health" 20
check "schema migrated to version 3 or later" test "$(sqlite3 "$DATA_DIR/events.db" 'PRAGMA user_version')" -ge 3
check_eq "backfilled entity: count, state, last change, numeric" '3 off 2025-03-01T10:10:00.000000Z false' \
  "$(get '/api/v1/entities?search=old_pump' | jq -r '.entities[0] | "\(.event_count) \(.state) \(.last_changed) \(.numeric)"')"
check_eq "backfilled numeric entity" 'true 20.5' \
  "$(get '/api/v1/entities?search=old_temp' | jq -r '.entities[0] | "\(.numeric) \(.state)"')"
check_eq "backfilled timeline (equal neighbours merged)" 'on,off' \
  "$(get '/api/v1/series?entity_id=switch.old_pump&start=2025-03-01T09:00:00Z&end=2025-03-01T11:00:00Z' | jq -r '[.segments[].state] | join(",")')"

# ---- fixtures ------------------------------------------------------------------
T=sensor.reads_temp L=light.reads_lamp
B="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0),$(rec $T 2025-03-01T10:20:00Z 30.0 30.0)"
B="$B,$(rec $T 2025-03-01T11:05:00Z unavailable null),$(rec $T 2025-03-01T11:10:00Z 40.0 40.0)"
B="$B,$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0),$(rec $L 2025-03-01T10:40:00Z off 0.0)"
B="$B,$(rec $L 2025-03-01T11:00:00Z on 1.0),$(rec $L 2025-03-01T10:50:00Z off 0.0 state_changed late)"
B="$B,$(rec $L 2025-03-01T12:00:00Z x null call_service svc1),{\"event_type\":\"homeassistant_start\",\"time_fired\":\"2025-03-01T12:00:00Z\",\"context_id\":\"boot\"}]"
check_eq "fixtures stored" 200 "$(post "$B")"
check_eq "a re-post stores nothing (entity counts unchanged)" 200 "$(post "$B")"

# ---- entities -----------------------------------------------------------------------
E=$(get '/api/v1/entities?search=reads_')
check_eq "entities: two, sorted by id" "$L $T" "$(jq -r '[.entities[].entity_id] | join(" ")' <<<"$E")"
check_eq "lamp: 6 events (5 state_changed + 1 call_service), last state on (the late event is older), numeric false" \
  '6 on 2025-03-01T11:00:00.000000Z 2025-03-01T12:00:00.000000Z false' \
  "$(jq -r ".entities[] | select(.entity_id == \"$L\") | \"\(.event_count) \(.state) \(.last_changed) \(.last_event) \(.numeric)\"" <<<"$E")"
check_eq "temp: 5 events, last 40.0, numeric" '5 40.0 true' \
  "$(jq -r ".entities[] | select(.entity_id == \"$T\") | \"\(.event_count) \(.state) \(.numeric)\"" <<<"$E")"
check_eq "entities ?domain=light" "$L" "$(get '/api/v1/entities?domain=light' | jq -r '[.entities[].entity_id] | join(" ")')"
check_eq "entities ?limit=1 keeps total" '1 4' "$(get '/api/v1/entities?limit=1' | jq -r '"\(.count) \(.total)"')"
check "events without entity_id make no entity" test "$(get '/api/v1/entities' | jq '[.entities[] | select(.entity_id == null)] | length')" = 0

# ---- series ----------------------------------------------------------------------------
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4")
check_eq "numeric kind and bucket width" 'numeric 1800' "$(jq -r '"\(.kind) \(.bucket_s)"' <<<"$S")"
check_eq "buckets min/mean/max/count (unavailable skipped)" \
  '2025-03-01T10:00:00.000000Z 10 20 30 3|2025-03-01T11:00:00.000000Z 40 40 40 1' \
  "$(jq -r '[.buckets[] | "\(.t) \(.min) \(.mean) \(.max) \(.count)"] | join("|")' <<<"$S")"
check_eq "points=1: one bucket over everything" '1 25' \
  "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=1" | jq -r '"\(.count) \(.buckets[0].mean)"')"
TL=$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:15:00Z&end=2025-03-01T11:30:00Z")
check_eq "timeline: starts in the state at range start, merges equal neighbours" \
  '2025-03-01T10:15:00.000000Z-2025-03-01T10:30:00.000000Z on|2025-03-01T10:30:00.000000Z-2025-03-01T11:00:00.000000Z off|2025-03-01T11:00:00.000000Z-2025-03-01T11:30:00.000000Z on' \
  "$(jq -r '[.segments[] | "\(.start)-\(.end) \(.state)"] | join("|")' <<<"$TL")"
check_eq "timeline kind" timeline "$(jq -r .kind <<<"$TL")"
bad() { # bad DESCRIPTION PATH PARAM-NAME
  local body c
  c=$(code "$2"); body=$(get "$2")
  check "$1 -> 400 naming '$3' ($c $body)" bash -c "[ '$c' = 400 ] && jq -e --arg p '$3' '.error | startswith(\$p + \":\")' <<<'$body' >/dev/null"
}
bad "series without entity_id" "/api/v1/series" entity_id
bad "series points=0" "/api/v1/series?entity_id=$T&points=0" points
bad "series points=abc" "/api/v1/series?entity_id=$T&points=abc" points
bad "series start=yesterday" "/api/v1/series?entity_id=$T&start=yesterday" start
bad "series end after start" "/api/v1/series?entity_id=$T&start=2025-03-01T12:00:00Z&end=2025-03-01T10:00:00Z" start
bad "series unknown parameter" "/api/v1/series?entity_id=$T&bucket=5" bucket
check_eq "series of an unknown entity -> 404" 404 "$(code '/api/v1/series?entity_id=sensor.nope')"
bad "entities limit=0" "/api/v1/entities?limit=0" limit
bad "entities unknown parameter" "/api/v1/entities?sort=x" sort

# ---- feed ------------------------------------------------------------------------------------
HEAD=$(get '/api/v1/stats' | jq .cursor)
check_eq "head cursor counts every stored event (4 old + 12 new)" 16 "$HEAD"
F=$(get '/api/v1/events/feed?limit=3')
check_eq "feed without after: the latest 3, oldest first, cursor = head" "14,15,16 $HEAD false" \
  "$(jq -r '"\([.events[].seq] | map(tostring) | join(",")) \(.cursor) \(.more)"' <<<"$F")"
check "feed rows are full records with event_id" jqe '.events[0].event_id and .events[0].time_fired' <<<"$F"
all=() c=0
while :; do
  F=$(get "/api/v1/events/feed?after=$c&limit=5")
  all+=($(jq -r '.events[].seq' <<<"$F"))
  c=$(jq .cursor <<<"$F")
  [ "$(jq .more <<<"$F")" = true ] || break
done
check_eq "paging after= with limit=5 reads every event once, in order" "$(seq -s ' ' 1 16)" "${all[*]}"
F=$(get "/api/v1/events/feed?after=4&domain=light&limit=2")
check_eq "filtered page: matching rows only, cursor at the last row, more" '10,11 11 true' \
  "$(jq -r '"\([.events[].seq] | map(tostring) | join(",")) \(.cursor) \(.more)"' <<<"$F")"
check_eq "filtered page: every row matches" $L "$(jq -r '[.events[].entity_id] | unique | join(",")' <<<"$F")"
F=$(get "/api/v1/events/feed?after=12&entity_id=$T")
check_eq "no match after the cursor: empty, cursor jumps to the head (no rescan)" "0 $HEAD false" \
  "$(jq -r '"\(.count) \(.cursor) \(.more)"' <<<"$F")"
bad "feed after=-1" "/api/v1/events/feed?after=-1" after
bad "feed limit=0" "/api/v1/events/feed?limit=0" limit
bad "feed offset (not a feed parameter)" "/api/v1/events/feed?offset=3" offset
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
check_eq "an event fired now" 200 "$(post "[$(rec sensor.reads_now "${NOW}Z" 1.0 1.0)]")"
F=$(get "/api/v1/events/feed?after=$HEAD")
check_eq "... is the next seq after the head" "$((HEAD + 1))" "$(jq -r '[.events[].seq] | join(",")' <<<"$F")"

# ---- stats -----------------------------------------------------------------------------------
ST=$(get '/api/v1/stats?window=120')
check_eq "stats totals" "$((HEAD + 1)) 0 5 sqlite" "$(jq -r '"\(.events_total) \(.dead_letters_total) \(.entities) \(.backend)"' <<<"$ST")"
check_eq "stats: the event fired now is in the window and its domain" '120 1 1' \
  "$(jq -r '"\(.per_second | length) \(.window_events) \(.per_domain.sensor)"' <<<"$ST")"
check "stats: store size is the file size" test "$(jq .store_bytes <<<"$ST")" -ge "$(stat -c %s "$DATA_DIR/events.db")"
bad "stats window=0" "/api/v1/stats?window=0" window
check_eq "a wrong method gets 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$U/api/v1/entities")"
. "$(dirname "$0")/feed_area.sh"
feed_area_checks "$U"

stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?

# ---- InfluxDB has these reads too (test_storage_reads_influx.sh); unreachable: 503 naming it ----------
P2=$(free_port)
STORAGE_BACKEND=influxdb INFLUXDB_URL=http://127.0.0.1:$(free_port) DATA_STORAGE_PORT=$P2 start_bg influx "$BIN"
wait_http "http://127.0.0.1:$P2/health" 20
for ep in /api/v1/events/feed /api/v1/entities "/api/v1/series?entity_id=$T" /api/v1/stats; do
  r=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$P2$ep")
  check "influxdb unreachable: GET $ep -> 503 naming it ($r)" bash -c "[[ '$r' == *' 503' && '$r' == *'influxdb unreachable'* ]]"
done
stop_pid "$PID_influx"
finish

#!/usr/bin/env bash
# tests/admin/test_storage_reads_clickhouse.sh -- data-storage's dashboard reads
# (GET /api/v1/events/feed, /api/v1/entities, /api/v1/series, /api/v1/stats),
# the homes list and home= on every read, on a real clickhouse-server
# (STORAGE_BACKEND=clickhouse, issue 18).
#
# Why: the same values as test_storage_reads.sh computes by hand for SQLite,
# and what ClickHouse makes hard: the feed has no row id (its cursor is the
# batch stamp), so paging must read every event once across batches, a copy
# written by a racing replica must not repeat, and a batch still in flight
# must not be skipped (CLICKHOUSE_FEED_SETTLE_MS). Two homes with identical
# entity ids and times: every read with home= returns only its home's rows.
# Usage: test_storage_reads_clickhouse.sh /path/to/homeiq-data-storage
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/clickhouse.sh"
BIN=${1:?usage: test_storage_reads_clickhouse.sh homeiq-data-storage}
export LOG_LEVEL=warn

clickhouse_start ch || bail "clickhouse-server starts"
PORT=$(free_port) U=http://127.0.0.1:$PORT
STORAGE_BACKEND=clickhouse CLICKHOUSE_DATABASE=reads CLICKHOUSE_FEED_SETTLE_MS=0 CLICKHOUSE_PING_INTERVAL_MS=200 \
  CLICKHOUSE_STATISTICS=1 DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage on clickhouse is healthy" wait_healthy "$U/health" 60

get() { curl -s "$U$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$U$1"; }
jqe() { jq -e "$@" >/dev/null; }
post() { # post BODY [HOME]
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' ${2:+-H "X-HomeIQ-Home: $2"} \
    --data-binary "$1" "$U/api/v1/events"
}
rec() { # rec ENTITY TIME STATE [VALUE|null] [TYPE] [CONTEXT]
  printf '{"event_type":"%s","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s"}' \
    "${5:-state_changed}" "$1" "$2" "$3" "${4:-null}" "${6:-$1-$2}"
}

# ---- fixtures: the SQLite test's, posted in 4 batches (the feed pages across batches) ----
T=sensor.reads_temp L=light.reads_lamp
B1="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0),$(rec $T 2025-03-01T10:20:00Z 30.0 30.0)]"
B2="[$(rec $T 2025-03-01T11:05:00Z unavailable null),$(rec $T 2025-03-01T11:10:00Z 40.0 40.0)]"
B3="[$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0),$(rec $L 2025-03-01T10:40:00Z off 0.0),$(rec $L 2025-03-01T11:00:00Z on 1.0)]"
B4="[$(rec $L 2025-03-01T10:50:00Z off 0.0 state_changed late),$(rec $L 2025-03-01T12:00:00Z x null call_service svc1),{\"event_type\":\"homeassistant_start\",\"time_fired\":\"2025-03-01T12:00:00Z\",\"context_id\":\"boot\"}]"
for b in "$B1" "$B2" "$B3" "$B4"; do
  check_eq "fixture batch stored" 200 "$(post "$b")"
done
check_eq "a re-post stores nothing" 200 "$(post "$B3")"

# ---- entities --------------------------------------------------------------------------------
E=$(get '/api/v1/entities?search=reads_')
check_eq "entities: two, sorted by id" "$L $T" "$(jq -r '[.entities[].entity_id] | join(" ")' <<<"$E")"
check_eq "lamp: 6 events, last state on (the late event is older), changed 11:00, last event 12:00, not numeric" \
  '6 on 2025-03-01T11:00:00.000000Z 2025-03-01T12:00:00.000000Z false' \
  "$(jq -r ".entities[] | select(.entity_id == \"$L\") | \"\(.event_count) \(.state) \(.last_changed) \(.last_event) \(.numeric)\"" <<<"$E")"
check_eq "temp: 5 events, last 40.0, numeric" '5 40.0 true' \
  "$(jq -r ".entities[] | select(.entity_id == \"$T\") | \"\(.event_count) \(.state) \(.numeric)\"" <<<"$E")"
check_eq "entities ?domain=light" "$L" "$(get '/api/v1/entities?domain=light' | jq -r '[.entities[].entity_id] | join(" ")')"
check_eq "entities ?limit=1 keeps total" '1 2' "$(get '/api/v1/entities?limit=1' | jq -r '"\(.count) \(.total)"')"

# ---- series ----------------------------------------------------------------------------------
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4")
check_eq "numeric kind and bucket width" 'numeric 1800' "$(jq -r '"\(.kind) \(.bucket_s)"' <<<"$S")"
check_eq "buckets min/mean/max/count (unavailable skipped)" \
  '2025-03-01T10:00:00.000000Z 10 20 30 3|2025-03-01T11:00:00.000000Z 40 40 40 1' \
  "$(jq -r '[.buckets[] | "\(.t) \(.min) \(.mean) \(.max) \(.count)"] | join("|")' <<<"$S")"
TL=$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:15:00Z&end=2025-03-01T11:30:00Z")
check_eq "timeline: starts in the state at range start, merges equal neighbours" \
  '2025-03-01T10:15:00.000000Z-2025-03-01T10:30:00.000000Z on|2025-03-01T10:30:00.000000Z-2025-03-01T11:00:00.000000Z off|2025-03-01T11:00:00.000000Z-2025-03-01T11:30:00.000000Z on' \
  "$(jq -r '[.segments[] | "\(.start)-\(.end) \(.state)"] | join("|")' <<<"$TL")"
check_eq "series of an unknown entity -> 404" 404 "$(code '/api/v1/series?entity_id=sensor.nope')"

# ---- feed: paging across batches, every event once, in stamp order -----------------------------
ALL=$(get '/api/v1/events?limit=100' | jq -r '[.events[].event_id] | sort | join(" ")')
check_eq "12 events stored" 12 "$(wc -w <<<"$ALL")"
HEAD=$(get '/api/v1/stats' | jq .cursor)
F=$(get '/api/v1/events/feed?limit=3')
check_eq "feed without after: the latest batch (3 events, never cut), no more" "3 false" \
  "$(jq -r '"\(.count) \(.more)"' <<<"$F")"
check "... its cursor is the head (the horizon: now, with no settle time and nothing in flight)" \
  jqe --argjson h "$HEAD" '.cursor >= $h and .cursor == .head' <<<"$F"
pages() { # pages LIMIT [FILTER] : event ids read by paging from 0, one per line
  local c=0 F
  while :; do
    F=$(get "/api/v1/events/feed?after=$c&limit=$1${2:-}")
    jq -r '.events[].event_id' <<<"$F"
    c=$(jq .cursor <<<"$F")
    [ "$(jq .more <<<"$F")" = true ] || break
  done
}
P=$(pages 2)
check_eq "paging after= with limit=2 reads every event exactly once" "$ALL" "$(sort <<<"$P" | tr '\n' ' ' | sed 's/ $//')"
check_eq "... with no repeat" 12 "$(sort -u <<<"$P" | wc -l)"
S1=$(get '/api/v1/events/feed?after=0&limit=2')
check_eq "a page ends between batches: limit=2 returns the whole first batch of 3, more" '3 true' \
  "$(jq -r '"\(.count) \(.more)"' <<<"$S1")"
check "stamps are in order within a page" jqe '[.events[].seq] | . == sort' <<<"$(get '/api/v1/events/feed?after=0&limit=100')"
# a racing replica wrote a copy of one event later (same id, later stamp): shown once, at its first stamp
ROW=$(clickhouse_query ch "SELECT * FROM reads.events WHERE entity_id = '$T' ORDER BY time_us LIMIT 1 FORMAT JSONEachRow")
COPY=$(jq -c '.time_us |= tonumber | .stored_at_us = ((.stored_at_us | tonumber) + 1000)' <<<"$ROW")
check "a later copy of one event inserted behind data-storage's back" \
  clickhouse_query ch "INSERT INTO reads.events FORMAT JSONEachRow $COPY"
P=$(pages 100)
check_eq "the copy does not repeat in the feed" 12 "$(wc -l <<<"$P")"
check_eq "... nor in the entity count" 5 "$(get "/api/v1/entities?search=reads_temp" | jq '.entities[0].event_count')"
check_eq "... nor in a bucket" 3 "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4" | jq '.buckets[0].count')"
F=$(get "/api/v1/events/feed?after=0&domain=light&limit=100")
check_eq "filtered feed: the lamp's 6 events only" "6 $L" "$(jq -r '"\(.count) \([.events[].entity_id] | unique | join(","))"' <<<"$F")"
F=$(get "/api/v1/events/feed?after=$HEAD")
check_eq "nothing after the head" "0 false" "$(jq -r '"\(.count) \(.more)"' <<<"$F")"
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
check_eq "an event fired now" 200 "$(post "[$(rec sensor.reads_now "${NOW}Z" 1.0 1.0)]")"
F=$(get "/api/v1/events/feed?after=$HEAD")
check_eq "... is the next event after the head" sensor.reads_now "$(jq -r '[.events[].entity_id] | join(",")' <<<"$F")"

# ---- the settle horizon: a second storage whose batches need 60 s to settle shows nothing newer yet
P2=$(free_port)
STORAGE_BACKEND=clickhouse CLICKHOUSE_DATABASE=reads CLICKHOUSE_FEED_SETTLE_MS=60000 DATA_STORAGE_PORT=$P2 \
  start_bg storage2 "$BIN"
check "second storage healthy" wait_healthy "http://127.0.0.1:$P2/health" 60
H2=$(curl -s "http://127.0.0.1:$P2/api/v1/stats" | jq .cursor)
check "its horizon is at least 60 s behind the newest stamp" test "$H2" -lt "$(( $(date +%s) * 1000000 - 59000000 ))"
check_eq "its feed does not show the event stamped now (it could still be joined by older ones)" "" \
  "$(curl -s "http://127.0.0.1:$P2/api/v1/events/feed?after=$HEAD" | jq -r '[.events[].entity_id] | join(",")')"
stop_pid "$PID_storage2"; check_eq "second storage exits cleanly" 0 $?

# ---- stats -----------------------------------------------------------------------------------------
ST=$(get '/api/v1/stats?window=120')
check "stats totals: 13 events (14 rows until ClickHouse merges the racing copy), 0 dead letters, 3 entities" \
  jqe '(.events_total == 13 or .events_total == 14) and .dead_letters_total == 0 and .entities == 3 and .backend == "clickhouse"' <<<"$ST"
check_eq "stats: the event fired now is in the window and its domain" '120 1 1' \
  "$(jq -r '"\(.per_second | length) \(.window_events) \(.per_domain.sensor)"' <<<"$ST")"
check "stats: store size from system.parts" test "$(jq .store_bytes <<<"$ST")" -gt 0

# ---- homes: home b gets the very same events (same entity ids and times) ---------------------------
for b in "$B1" "$B2" "$B3" "$B4"; do
  check_eq "home b: fixture batch stored" 200 "$(post "$b" b)"
done
check_eq "home b: a bad event is dead-lettered in home b" 200 "$(post '[{"entity_id":"sensor.x"}]' b)"
check "homes list: default (13 events, 14 rows until a merge) and b (12)" \
  jqe '[.homes[] | "\(.home_id):\(.events)"] | sort | (. == ["b:12", "default:13"] or . == ["b:12", "default:14"])' <<<"$(get /api/v1/homes)"
for h in default b; do
  n=$([ $h = b ] && echo 12 || echo 13)
  check_eq "home=$h: feed has only its events" "$n $h" \
    "$(get "/api/v1/events/feed?after=0&limit=1000&home=$h" | jq -r '"\(.count) \([.events[] | .home_id // "default"] | unique | join(","))"')"
  check_eq "home=$h: lamp has 6 events" 6 \
    "$(get "/api/v1/entities?search=reads_lamp&home=$h" | jq '.entities[0].event_count')"
  check_eq "home=$h: the first temp bucket counts 3" 3 \
    "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4&home=$h" | jq '.buckets[0].count')"
  check_eq "home=$h: timeline as one home's" 3 \
    "$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:15:00Z&end=2025-03-01T11:30:00Z&home=$h" | jq '.segments | length')"
done
check_eq "every home together: the lamp has 12 events" 12 "$(get '/api/v1/entities?search=reads_lamp' | jq '.entities[0].event_count')"
check_eq "home=b stats: 12 events, 1 dead letter" '12 1' \
  "$(get '/api/v1/stats?home=b' | jq -r '"\(.events_total) \(.dead_letters_total)"')"
check_eq "home=default stats: no dead letter" 0 "$(get '/api/v1/stats?home=default' | jq .dead_letters_total)"
check_eq "home=b dead letters: 1" 1 "$(get '/api/v1/dead-letters?home=b' | jq .count)"
check_eq "home=default dead letters: 0" 0 "$(get '/api/v1/dead-letters?home=default' | jq .count)"
check_eq "home=nobody: empty feed and entity list" '0 0' \
  "$(echo "$(get '/api/v1/events/feed?home=nobody' | jq .count) $(get '/api/v1/entities?home=nobody' | jq .count)")"
bad() { # bad PATH : 400 naming home
  local body c
  c=$(code "$1"); body=$(get "$1")
  check "$1 -> 400 naming 'home' ($c $body)" bash -c "[ '$c' = 400 ] && jq -e '.error | startswith(\"home:\")' <<<'$body' >/dev/null"
}
for ep in "/api/v1/events/feed?home=Bad!" "/api/v1/entities?home=" "/api/v1/series?entity_id=$T&home=a%20b" \
          "/api/v1/stats?home=-x" "/api/v1/dead-letters?home=UPPER" "/api/v1/events?home=$(printf 'a%.0s' {1..65})" \
          "/api/v1/statistics?entity_id=$T&start=2025-03-01T00:00:00Z&home=Bad"; do
  bad "$ep"
done

# statistics by home: home b alone gets a 90.0 at 10:27 (30.0 held from 10:20)
check_eq "home b: one more temperature" 200 "$(post "[$(rec $T 2025-03-01T10:27:00Z 90.0 90.0)]" b)"
SQ="/api/v1/statistics?entity_id=$T&period=5minute&start=2025-03-01T10:00:00Z&end=2025-03-01T10:30:00Z"
check_eq "statistics?home=b: the 10:25 period holds b's 90" '30 90' "$(get "$SQ&home=b" | jq -r ".[\"$T\"][-1] | \"\(.min) \(.max)\"")"
check_eq "statistics?home=default: the 10:25 period still holds 30" '30 30' \
  "$(get "$SQ&home=default" | jq -r ".[\"$T\"][-1] | \"\(.min) \(.max)\"")"
check_eq "statistics without home= are the default home's" "$(get "$SQ&home=default")" "$(get "$SQ")"

# the tail's area filter (schema v3's area_id column), the SQLite and InfluxDB tests' checks
. "$(dirname "$0")/feed_area.sh"
FEED_CURSOR_IS_CLOCK=1 feed_area_checks "$U"

stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
finish

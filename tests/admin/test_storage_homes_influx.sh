#!/usr/bin/env bash
# tests/admin/test_storage_homes_influx.sh -- home= on data-storage's reads on
# a real influxd (issue 18): two homes with identical entity ids, times and
# contexts.
#
# Why: on INFLUXDB_SCHEMA=homeiq a point of a home other than the default one
# carries the home_id tag (docs/CLICKHOUSE.md "Homes"); the default home's
# points have none, so its series -- and every point written before the tag
# existed -- are unchanged. The reads InfluxDB selects by home (events, feed,
# series, dead letters, registry, statistics: homeiq_statistics rows carry
# the tag too, and each home's are computed from its own points only, the
# catch-up of older history too; entities and the totals of stats and homes:
# the memory list, the homes' totals and their snapshot points are per entity
# and home, also after a restart, and a snapshot written before the totals
# were per home is split again) must return only that home's rows. On
# INFLUXDB_SCHEMA=homeassistant another home's HA points and identity points
# carry the home_id tag too (as HA's own `tags:` option would put it), so
# every read selects a home there as well; a static home_id tag is refused.
# Usage: test_storage_homes_influx.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"
BIN=${1:?usage: test_storage_homes_influx.sh homeiq-data-storage}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn INFLUXDB_DATABASE=homes INFLUXDB_PING_INTERVAL_MS=200
mkdir -p "$DATA_DIR"
influxd_start || bail "influxd starts"
PORT=$(free_port) U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage on influxd starts" wait_healthy "$U/health" 30

# statistics follow the ack by up to INFLUXDB_STATISTICS_FLUSH_MS: read them once written
get() { case $1 in /api/v1/statistics*) influx_stats_settled "$U" >&2 ;; esac; curl -s "$U$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$U$1"; }
post() { # post BODY [HOME]
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' ${2:+-H "X-HomeIQ-Home: $2"} \
    --data-binary "$1" "$U/api/v1/events"
}
rec() { # rec ENTITY TIME STATE VALUE [AREA]
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"c-%s"%s}' \
    "$1" "$2" "$3" "$4" "$2" "${5:+,\"area_id\":\"$5\",\"area\":\"$5\"}"
}
homes_of() { jq -r '[.events[] | .home_id // "default"] | unique | join(",")'; }
T=sensor.h_temp L=light.h_lamp
B="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0 kitchen),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0 kitchen),$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0)]"
check_eq "home default: 4 events" 200 "$(post "$B")"
check_eq "home b: the same 4 events" 200 "$(post "$B" b)"
check_eq "home b: one more temperature (moved to the attic)" 200 "$(post "[$(rec $T 2025-03-01T10:20:00Z 90.0 90.0 attic)]" b)"
check_eq "9 events stored" 9 "$(get '/api/v1/events?limit=100' | jq .count)"
check_eq "the points: b's carry home_id=b, the default home's no home_id tag" 'b:5 :4' \
  "$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes \
       --data-urlencode 'q=SELECT count(event_id) FROM home_assistant_events GROUP BY home_id' |
     jq -r '[.results[0].series[] | "\(.tags.home_id):\(.values[0][1])"] | sort | reverse | join(" ")')"

for h in default b; do
  n=$([ $h = b ] && echo 5 || echo 4)
  check_eq "home=$h: events has only its $n" "$n $h" \
    "$(get "/api/v1/events?limit=100&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
  check_eq "home=$h: events of the temperature at 10:00 (same id and time in both homes): its own" "1 $h" \
    "$(get "/api/v1/events?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T10:00:01Z&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
  check_eq "home=$h: feed has only its $n" "$n $h" \
    "$(get "/api/v1/events/feed?after=0&limit=100&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
  check_eq "home=$h: the latest 2 of its events" "2 $h" \
    "$(get "/api/v1/events/feed?limit=2&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
done
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=b")
check_eq "home=b: the temperature bucket is b's (10, 20, 90)" '3 10 40 90' "$(jq -r '.buckets[0] | "\(.count) \(.min) \(.mean) \(.max)"' <<<"$S")"
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=default")
check_eq "home=default: the temperature bucket is default's (10, 20)" '2 15' "$(jq -r '.buckets[0] | "\(.count) \(.mean)"' <<<"$S")"
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1")
check_eq "every home: 5 samples" 5 "$(jq -r '.buckets[0].count' <<<"$S")"
TL=$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=b")
check_eq "home=b: the lamp's timeline" 'on off' "$(jq -r '[.segments[].state] | join(" ")' <<<"$TL")"
check_eq "home=nobody: the temperature is unknown there (404)" 404 \
  "$(code "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=nobody")"
check_eq "home=nobody: an empty feed" 0 "$(get '/api/v1/events/feed?home=nobody' | jq .count)"

# registry: the context each home last saw
check_eq "home=default: registry of the temperature" 'kitchen null' \
  "$(get "/api/v1/registry?home=default&entity_id=$T" | jq -r '.entities[] | "\(.area_id) \(.home_id)"')"
check_eq "home=b: registry of the temperature (since its move, last seen 10:20)" 'attic b 2025-03-01T10:20:00.000000Z 2025-03-01T10:20:00.000000Z' \
  "$(get "/api/v1/registry?home=b&entity_id=$T" | jq -r '.entities[] | "\(.area_id) \(.home_id) \(.since) \(.last_seen)"')"
check_eq "no home=: both homes' registry rows (default, then b)" 'kitchen,attic' \
  "$(get "/api/v1/registry?entity_id=$T" | jq -r '[.entities[].area_id] | join(",")')"
check_eq "home=nobody: no registry rows" 0 "$(get '/api/v1/registry?home=nobody' | jq .count)"

# dead letters: each home's own
dl() { printf '{"events":[],"dead_letters":[{"error":"bad %s","event":{"x":1},"source":"test"}]}' "$1"; }
check_eq "home default: a dead letter" 200 "$(post "$(dl default)")"
check_eq "home b: two dead letters" 200 "$(post "$(dl b1)" b)"
check_eq "home b: its second" 200 "$(post "$(dl b2)" b)"
check_eq "home=b: its 2 dead letters" 'bad b1,bad b2' \
  "$(get '/api/v1/dead-letters?home=b' | jq -r '[.dead_letters[].error] | sort | join(",")')"
check_eq "home=default: its 1 dead letter" 'bad default' \
  "$(get '/api/v1/dead-letters?home=default' | jq -r '[.dead_letters[].error] | join(",")')"
check_eq "no home=: 3 dead letters" 3 "$(get '/api/v1/dead-letters' | jq .count)"

# stats (the overview's totals) and the homes list, from memory
stats_homes_check() { # stats_homes_check WHEN B DEFAULT ALL HOMES: "events dead entities" each, then the homes list
  check_eq "$1: stats home=b (events, dead letters, entities)" "$2" \
    "$(get '/api/v1/stats?home=b' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
  check_eq "$1: stats home=default" "$3" \
    "$(get '/api/v1/stats?home=default' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
  check_eq "$1: stats of every home" "$4" \
    "$(get '/api/v1/stats' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
  check_eq "$1: GET /api/v1/homes: both, with their event counts" "$5" \
    "$(get /api/v1/homes | jq -r '[.homes[] | "\(.home_id):\(.events)"] | join(" ")')"
}
stats_homes_check "live" '5 2 2' '4 1 2' '9 3 4' 'b:5 default:4'
check_eq "stats home=nobody: nothing" '0 0 0' \
  "$(get '/api/v1/stats?home=nobody' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"

# entities: one row per entity and home, never summed across homes (memory, then after a restart the snapshot)
entities_check() { # entities_check TOTAL_PER_HOME WHEN
  for h in default b; do
    want=$([ $h = b ] && echo "$1 3 90.0 2 off" || echo "$1 2 20.0 2 off")
    E=$(get "/api/v1/entities?home=$h")
    check_eq "$2: home=$h: its entities (total, temp count, temp state, lamp count, lamp state)" "$want" \
      "$(jq -r "\"\(.total) \" + (.entities[] | select(.entity_id == \"$T\") | \"\(.event_count) \(.state)\") + \" \" + (.entities[] | select(.entity_id == \"$L\") | \"\(.event_count) \(.state)\")" <<<"$E")"
    check_eq "$2: home=$h: its entity rows carry its home only" "$([ $h = b ] && echo b || echo '')" \
      "$(jq -r '[.entities[] | .home_id // ""] | unique | join(",")' <<<"$E")"
  done
  check_eq "$2: no home=: temp rows of both homes, counts 2 and 3" '2,3' \
    "$(get '/api/v1/entities' | jq -r "[.entities[] | select(.entity_id == \"$T\") | .event_count] | sort | map(tostring) | join(\",\")")"
  check_eq "$2: series home=b of the lamp: a timeline (its kind from memory)" 'on off' \
    "$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=b" | jq -r '[.segments[].state] | join(" ")')"
}
entities_check 2 "live"
check_eq "home=nobody: no entities" 0 "$(get '/api/v1/entities?home=nobody' | jq .total)"

# long-term statistics per (entity, home), as on SQLite (test_storage_homes_sqlite.sh), within the
# retention policies (older states are stored but not counted): default has 10, 20 (H:00, H:10); b has
# 10, 20, 90 (+H:20) at the same times
S=sensor.h_stat H=$(date -u -d '-3 hours' +%Y-%m-%dT%H)
check_eq "statistics: home default's states" 200 "$(post "[$(rec $S $H:00:00Z 10.0 10.0),$(rec $S $H:10:00Z 20.0 20.0)]")"
check_eq "statistics: home b's, the same and one more" 200 \
  "$(post "[$(rec $S $H:00:00Z 10.0 10.0),$(rec $S $H:10:00Z 20.0 20.0),$(rec $S $H:20:00Z 90.0 90.0)]" b)"
ST="/api/v1/statistics?entity_id=$S,$L&start=$H:00:00Z&period=hour&types=mean,min,max,count"
st_of() { get "$ST$1" | jq -r --arg t "$S" '.[$t][] | "\(.count) \(.min) \(.max) \(.mean * 1000 | round)"'; }
check_eq "statistics home=b: b's 3 states (10, 20, 90), mean (600*10 + 600*20 + 300*90)/1500" '3 10 90 30000' "$(st_of '&home=b')"
check_eq "statistics home=default: its 2 states (10, 20), mean (600*10 + 300*20)/900" '2 10 20 13333' "$(st_of '&home=default')"
check_eq "statistics without home=: the default home's" '2 10 20 13333' "$(st_of '')"
check_eq "statistics home=b, 5-minute rows: 10:00..10:20, one state each in 3 of them" '5 1,0,1,0,1' \
  "$(get "${ST/period=hour/period=5minute}&home=b" | jq -r --arg t "$S" '"\(.[$t] | length) \([.[$t][].count] | map(tostring) | join(","))"')"
check_eq "statistics home=nobody: no entity has statistics there" '{}' "$(get "$ST&home=nobody" | jq -c .)"
check_eq "homeiq_statistics hourly rows: b's carry home_id=b, the default home's no tag" 'b:3 :2' \
  "$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes \
       --data-urlencode 'q=SELECT "count" FROM homeiq_stats_hour.homeiq_statistics GROUP BY home_id' |
     jq -r '[.results[0].series[] | "\(.tags.home_id):\(.values[0][1])"] | sort | reverse | join(" ")')"

# the window of stats (per second, per domain) of one home: asked from InfluxDB by home_id
NOW=$(date -u -d '-5 seconds' +%Y-%m-%dT%H:%M:%SZ) NOW2=$(date -u -d '-4 seconds' +%Y-%m-%dT%H:%M:%SZ)
check_eq "a state now for the default home" 200 "$(post "[$(rec $S $NOW 30.0 30.0)]")"
check_eq "two states now for home b" 200 "$(post "[$(rec $S $NOW 30.0 30.0),$(rec $S $NOW2 31.0 31.0)]" b)"
for hw in "b 2" "default 1" "all 3"; do set -- $hw
  q=$([ $1 = all ] && echo '' || echo "&home=$1")
  check_eq "stats window=3600, home $1: its events now (window_events, per_second sum, per_domain)" "$2 $2 $2" \
    "$(get "/api/v1/stats?window=3600$q" | jq -r '"\(.window_events) \(.per_second | add) \(.per_domain.sensor)"')"
done
stats_homes_check "with the statistics' states" '10 2 3' '7 1 3' '17 3 6' 'b:10 default:7'
# a restart restores the entity list from the snapshot (homeiq_summary points tagged home_id) and the feed after it.
# The snapshot is written at most once a second (influx_query.c), so it is awaited before the stop; what a
# stop cuts short is re-applied from the feed, which the restart checks below also cover.
summary_homes() {
  curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes \
       --data-urlencode "q=SHOW TAG VALUES FROM homeiq_summary WITH KEY = home_id" |
    jq -r '[(.results[0].series[0].values // [])[][1]] | join(",")'
}
summary_is_b() { [ "$(summary_homes)" = b ]; }
wait_for 10 summary_is_b || true
check_eq "homeiq_summary: b's entity points carry home_id=b" 'b' "$(summary_homes)"
homes_points() {
  curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes \
       --data-urlencode 'q=SELECT last(events) FROM homeiq_homes GROUP BY home_id' |
    jq -r '[(.results[0].series // [])[] | "\(.tags.home_id):\(.values[0][1])"] | sort | reverse | join(" ")'
}
homes_written() { [ "$(homes_points)" = 'b:10 :7' ]; }
wait_for 10 homes_written || true
check_eq "homeiq_homes: one point per home (b's tagged), their event counts" 'b:10 :7' "$(homes_points)"
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage restarts" wait_healthy "$U/health" 30
entities_check 3 "after a restart"
stats_homes_check "after a restart" '10 2 3' '7 1 3' '17 3 6' 'b:10 default:7'
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly after the restart" 0 $?
# a snapshot written before the totals were kept per home (no homeiq_homes points) in a store with two
# homes: the totals cannot be split, so the restart counts every event once, per home
curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode db=homes --data-urlencode 'q=DROP MEASUREMENT homeiq_homes' >/dev/null
LOG_LEVEL=info DATA_STORAGE_PORT=$PORT start_bg storage3 "$BIN"
check "data-storage restarts on a snapshot without homeiq_homes" wait_healthy "$U/health" 30
stats_homes_check "snapshot without per-home totals" '10 2 3' '7 1 3' '17 3 6' 'b:10 default:7'
entities_check 3 "snapshot without per-home totals"
stop_pid "$PID_storage3"; check_eq "data-storage exits cleanly (3rd run)" 0 $?
check "... it counted every stored event once (the log says so)" grep -q 'counting every stored event' "$TEST_TMP/storage3.log"

# one home only, and a snapshot without homeiq_homes: the default home's totals are the snapshot's, no scan
export INFLUXDB_DATABASE=homes_one
DATA_STORAGE_PORT=$PORT start_bg one "$BIN"
check "data-storage on a one-home database starts" wait_healthy "$U/health" 30
check_eq "one home: 4 events" 200 "$(post "$B")"
check_eq "one home: 1 dead letter" 200 "$(post "$(dl one)")"
check_eq "one home: stats" '4 1 2' "$(get '/api/v1/stats?home=default' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
one_written() {
  curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes_one --data-urlencode 'q=SELECT last(events) FROM homeiq_totals' |
    jq -e '.results[0].series[0].values[0][1] == 4' >/dev/null
}
wait_for 10 one_written || true
stop_pid "$PID_one"; check_eq "data-storage (one home) exits cleanly" 0 $?
curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode db=homes_one --data-urlencode 'q=DROP MEASUREMENT homeiq_homes' >/dev/null
LOG_LEVEL=info DATA_STORAGE_PORT=$PORT start_bg one2 "$BIN"
check "data-storage (one home) restarts" wait_healthy "$U/health" 30
check_eq "one home, snapshot without homeiq_homes: stats home=default" '4 1 2' \
  "$(get '/api/v1/stats?home=default' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
check_eq "one home: GET /api/v1/homes" 'default:4' "$(get /api/v1/homes | jq -r '[.homes[] | "\(.home_id):\(.events)"] | join(" ")')"
stop_pid "$PID_one2"; check_eq "data-storage (one home) exits cleanly after the restart" 0 $?
check "one home: the restart read the snapshot, scanned nothing" bash -c "! grep -q 'counting every stored event' '$TEST_TMP/one2.log'"
export INFLUXDB_DATABASE=homes

# the statistics catch-up (history stored with STATISTICS=0) computes each home's rows from its own states
C=sensor.h_cu
export INFLUXDB_DATABASE=homes_cu
DATA_STORAGE_PORT=$PORT STATISTICS=0 start_bg cu0 "$BIN"
check "data-storage with STATISTICS=0 starts" wait_healthy "$U/health" 30
check_eq "catch-up: home default's history" 200 "$(post "[$(rec $C $H:00:00Z 10.0 10.0),$(rec $C $H:10:00Z 20.0 20.0)]")"
check_eq "catch-up: home b's history" 200 \
  "$(post "[$(rec $C $H:00:00Z 10.0 10.0),$(rec $C $H:10:00Z 20.0 20.0),$(rec $C $H:20:00Z 90.0 90.0)]" b)"
stop_pid "$PID_cu0"; check_eq "data-storage (STATISTICS=0) exits cleanly" 0 $?
DATA_STORAGE_PORT=$PORT PURGE_STEP_MS=100 start_bg cu1 "$BIN"
check "data-storage with statistics starts" wait_healthy "$U/health" 30
catchup_done() { get /health | jq -e '.backend.retention.statistics_catchup.done == true' >/dev/null; }
check "the catch-up finishes" wait_for 60 catchup_done
check_eq "catch-up: both homes' entity checked, both caught up" '2 2' \
  "$(get /health | jq -r '.backend.retention.statistics_catchup | "\(.entities_checked) \(.entities_caught_up)"')"
CU="/api/v1/statistics?entity_id=$C&start=$H:00:00Z&period=hour&types=mean,min,max,count"
cu_of() { get "$CU$1" | jq -r --arg t "$C" '(.[$t] // [])[] | "\(.count) \(.min) \(.max) \(.mean * 1000 | round)"'; }
check_eq "catch-up: home=b's hourly row, from b's states (10, 20, 90)" '3 10 90 30000' "$(cu_of '&home=b')"
check_eq "catch-up: home=default's, from its own (10, 20)" '2 10 20 13333' "$(cu_of '&home=default')"
stop_pid "$PID_cu1"; check_eq "data-storage (catch-up) exits cleanly" 0 $?
export INFLUXDB_DATABASE=homes

# INFLUXDB_SCHEMA=homeassistant (its own database): another home's HA points and identity points carry its home_id
# tag, as HA's `tags: {home_id: b}` would; the default home's none (HA's points unchanged)
P2=$(free_port) U2=http://127.0.0.1:$P2
INFLUXDB_SCHEMA=homeassistant INFLUXDB_DATABASE=homes_ha DATA_STORAGE_PORT=$P2 start_bg ha "$BIN"
check "data-storage (schema homeassistant) starts" wait_healthy "$U2/health" 30
HT=sensor.ha_temp
HB="[$(rec $HT 2025-03-01T10:00:00Z 10.0 10.0),$(rec $HT 2025-03-01T10:10:00Z 20.0 20.0),$(rec $L 2025-03-01T10:00:00Z on 1.0)]"
check_eq "schema homeassistant: home default's 3 events" 200 "$(U=$U2 post "$HB")"
check_eq "schema homeassistant: home b's, the same and one more" 200 \
  "$(U=$U2 post "${HB%]},$(rec $HT 2025-03-01T10:20:00Z 90.0 90.0)]" b)"
check_eq "schema homeassistant: HA's points of the temperature, by home_id tag (b's tagged)" 'b:3 :2' \
  "$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes_ha \
       --data-urlencode "q=SELECT count(value) FROM /.+/ WHERE \"entity_id\"::tag = 'ha_temp' GROUP BY home_id" |
     jq -r '[.results[0].series[] | "\(.tags.home_id):\(.values[0][1])"] | sort | reverse | join(" ")')"
check_eq "schema homeassistant: identity points by home_id tag" 'b:4 :3' \
  "$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homes_ha \
       --data-urlencode 'q=SELECT count(event_id) FROM homeiq_ids GROUP BY home_id' |
     jq -r '[.results[0].series[] | "\(.tags.home_id):\(.values[0][1])"] | sort | reverse | join(" ")')"
for h in default b; do
  n=$([ $h = b ] && echo 4 || echo 3)
  check_eq "schema homeassistant: home=$h: events has only its $n" "$n $h" \
    "$(U=$U2 get "/api/v1/events?limit=100&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
  check_eq "schema homeassistant: home=$h: state_changed events too" "$n $h" \
    "$(U=$U2 get "/api/v1/events?limit=100&event_type=state_changed&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
  check_eq "schema homeassistant: home=$h: feed has only its $n" "$n $h" \
    "$(U=$U2 get "/api/v1/events/feed?after=0&limit=100&home=$h" | jq -r '"\(.count) " + ([.events[] | .home_id // "default"] | unique | join(","))')"
done
check_eq "schema homeassistant: every home: 7 events" 7 "$(U=$U2 get '/api/v1/events?limit=100' | jq .count)"
S=$(U=$U2 get "/api/v1/series?entity_id=$HT&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=b")
check_eq "schema homeassistant: home=b: the temperature bucket is b's (10, 20, 90)" '3 10 40 90' \
  "$(jq -r '.buckets[0] | "\(.count) \(.min) \(.mean) \(.max)"' <<<"$S")"
S=$(U=$U2 get "/api/v1/series?entity_id=$HT&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=default")
check_eq "schema homeassistant: home=default: the default home's (10, 20)" '2 15' "$(jq -r '.buckets[0] | "\(.count) \(.mean)"' <<<"$S")"
S=$(U=$U2 get "/api/v1/series?entity_id=$HT&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1")
check_eq "schema homeassistant: every home: 5 samples" 5 "$(jq -r '.buckets[0].count' <<<"$S")"
check_eq "schema homeassistant: home=nobody: the temperature is unknown there (404)" 404 \
  "$(U=$U2 code "/api/v1/series?entity_id=$HT&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=nobody")"
check_eq "schema homeassistant: home=b: its entities (total, temperature count)" '2 3' \
  "$(U=$U2 get '/api/v1/entities?home=b' | jq -r "\"\\(.total) \" + (.entities[] | select(.entity_id == \"$HT\") | \"\\(.event_count)\")")"
check_eq "schema homeassistant: stats home=b / default (events)" '4 3' \
  "$(U=$U2 get '/api/v1/stats?home=b' | jq .events_total) $(U=$U2 get '/api/v1/stats?home=default' | jq .events_total)"
check_eq "schema homeassistant: GET /api/v1/homes" 'b:4 default:3' \
  "$(U=$U2 get /api/v1/homes | jq -r '[.homes[] | "\(.home_id):\(.events)"] | join(" ")')"
# statistics on that schema (issue 13: computed from the identity points) per (entity, home), as above
HS=sensor.ha_stat
check_eq "schema homeassistant: statistics: home default's states" 200 \
  "$(U=$U2 post "[$(rec $HS $H:00:00Z 10.0 10.0),$(rec $HS $H:10:00Z 20.0 20.0)]")"
check_eq "schema homeassistant: statistics: home b's, the same and one more" 200 \
  "$(U=$U2 post "[$(rec $HS $H:00:00Z 10.0 10.0),$(rec $HS $H:10:00Z 20.0 20.0),$(rec $HS $H:20:00Z 90.0 90.0)]" b)"
hst_of() { U=$U2 get "/api/v1/statistics?entity_id=$HS&start=$H:00:00Z&period=hour&types=mean,min,max,count$1" |
  jq -r --arg t "$HS" '.[$t][] | "\(.count) \(.min) \(.max) \(.mean * 1000 | round)"'; }
check_eq "schema homeassistant: statistics home=b: b's 3 states, mean (600*10 + 600*20 + 300*90)/1500" \
  '3 10 90 30000' "$(hst_of '&home=b')"
check_eq "schema homeassistant: statistics home=default: its 2 states, mean (600*10 + 300*20)/900" \
  '2 10 20 13333' "$(hst_of '&home=default')"
stop_pid "$PID_ha"; check_eq "data-storage (schema homeassistant) exits cleanly" 0 $?
# home_id is HomeIQ's tag: a static one (HA's tags:, INFLUXDB_TAGS) or a tag attribute of that name is refused
printf 'influxdb:\n  tags:\n    home_id: x\n' >"$TEST_TMP/ha.yaml"   # HA's configuration.yaml
for v in "INFLUXDB_TAGS=site=x,home_id=x" "INFLUXDB_TAGS_ATTRIBUTES=home_id" "INFLUXDB_HA_CONFIG=$TEST_TMP/ha.yaml"; do
  P3=$(free_port)
  env INFLUXDB_SCHEMA=homeassistant INFLUXDB_DATABASE=homes_ha DATA_STORAGE_PORT=$P3 "$v" timeout 20 "$BIN" \
    >"$TEST_TMP/refuse.log" 2>&1
  rc=$?
  check "schema homeassistant, $v: refused at start (exit $rc, names home_id)" \
    bash -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'home_id is reserved' '$TEST_TMP/refuse.log'"
done
finish

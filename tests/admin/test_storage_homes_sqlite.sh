#!/usr/bin/env bash
# tests/admin/test_storage_homes_sqlite.sh -- home= on data-storage's reads on
# SQLite (issue 18): two homes with identical entity ids, times and contexts.
#
# Why: every read SQLite selects by home (the home_id columns of events,
# entities, registry and dead letters: store_sqlite_home.h) must return only
# that home's rows, and reads without home= must keep both homes' rows apart
# (one entity/registry row per home); long-term statistics are kept per
# (entity, home) (stats_sqlite.h): the two homes' identical entity ids and
# times are two series, never one; a malformed id is 400 naming home
# everywhere (HOMEIQ_HOME_ID's rules).
# (ClickHouse: test_storage_reads_clickhouse.sh; the upgrade of an older file:
# tests/storage/test_sqlite_home.c.)
# Usage: test_storage_homes_sqlite.sh /path/to/homeiq-data-storage
. "$(dirname "$0")/../lib/common.sh"
BIN=${1:?usage: test_storage_homes_sqlite.sh homeiq-data-storage}
# The events are of 2025-03: 5-minute statistics rows that old are kept (default 10 days), else
# a retention tick landing during the test (every PURGE_INTERVAL_MS, 60 s: a loaded machine
# gets there) purges some of them before they are read (seen: 5-minute rows "3" or "1" of 5;
# every run fails with PURGE_INTERVAL_MS=10 without this).
export STATISTICS_5MIN_RETENTION_DAYS=1000000
export DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn
mkdir -p "$DATA_DIR"
PORT=$(free_port) U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage starts" wait_healthy "$U/health" 20

get() { curl -s "$U$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$U$1"; }
post() { # post BODY [HOME]
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' ${2:+-H "X-HomeIQ-Home: $2"} \
    --data-binary "$1" "$U/api/v1/events"
}
rec() { # rec ENTITY TIME STATE VALUE [AREA]
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"c-%s"%s}' \
    "$1" "$2" "$3" "$4" "$2" "${5:+,\"area_id\":\"$5\",\"area\":\"$5\"}"
}
T=sensor.h_temp L=light.h_lamp
B="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0 kitchen),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0 kitchen),$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0)]"
check_eq "home default: 4 events" 200 "$(post "$B")"
check_eq "home b: the same 4 events" 200 "$(post "$B" b)"
B2="[$(rec $T 2025-03-01T10:20:00Z 90.0 90.0 attic)]"
check_eq "home b: one more temperature" 200 "$(post "$B2" b)"
check_eq "9 events stored" 9 "$(get '/api/v1/events?limit=100' | jq .count)"

for h in default b; do
  n=$([ $h = b ] && echo 5 || echo 4)
  check_eq "home=$h: feed has only its $n events" "$n $h" \
    "$(get "/api/v1/events/feed?after=0&limit=100&home=$h" | jq -r '"\(.count) \([.events[] | .home_id // "default"] | unique | join(","))"')"
  check_eq "home=$h: the latest 2 of its events" "2 $h" \
    "$(get "/api/v1/events/feed?limit=2&home=$h" | jq -r '"\(.count) \([.events[] | .home_id // "default"] | unique | join(","))"')"
done
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=b")
check_eq "home=b: the temperature bucket is b's (10, 20, 90)" '3 10 40 90' "$(jq -r '.buckets[0] | "\(.count) \(.min) \(.mean) \(.max)"' <<<"$S")"
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1&home=default")
check_eq "home=default: the temperature bucket is default's (10, 20)" '2 15' "$(jq -r '.buckets[0] | "\(.count) \(.mean)"' <<<"$S")"
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&points=1")
check_eq "every home: 5 samples" 5 "$(jq -r '.buckets[0].count' <<<"$S")"
TL=$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=b")
check_eq "home=b: the lamp's timeline" 'on off' "$(jq -r '[.segments[].state] | join(" ")' <<<"$TL")"
check_eq "home=nobody: an empty feed" 0 "$(get '/api/v1/events/feed?home=nobody' | jq .count)"

# entities: one row per entity and home, never summed across homes
for h in default b; do
  want=$([ $h = b ] && echo '2 3 90.0 2 off' || echo '2 2 20.0 2 off')
  E=$(get "/api/v1/entities?home=$h")
  check_eq "home=$h: its entities (total, temp count, temp state, lamp count, lamp state)" "$want" \
    "$(jq -r "\"\(.total) \" + (.entities[] | select(.entity_id == \"$T\") | \"\(.event_count) \(.state)\") + \" \" + (.entities[] | select(.entity_id == \"$L\") | \"\(.event_count) \(.state)\")" <<<"$E")"
  check_eq "home=$h: its entity rows carry its home only" "$([ $h = b ] && echo b || echo '')" \
    "$(jq -r '[.entities[] | .home_id // ""] | unique | join(",")' <<<"$E")"
done
check_eq "no home=: 4 entity rows (2 per home), temp counts 2 and 3" '4 2,3' \
  "$(get '/api/v1/entities' | jq -r "\"\(.total) \" + ([.entities[] | select(.entity_id == \"$T\") | .event_count] | sort | map(tostring) | join(\",\"))")"
check_eq "series without home= still numeric for the temperature" numeric \
  "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z" | jq -r .kind)"
check_eq "series of an entity a home never had: 404" 404 "$(code "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T11:00:00Z&home=nobody")"

# registry: the context each home last saw (b moved its temperature to the attic)
check_eq "home=default: registry of the temperature" 'kitchen null' \
  "$(get "/api/v1/registry?home=default&entity_id=$T" | jq -r '.entities[] | "\(.area_id) \(.home_id)"')"
check_eq "home=b: registry of the temperature" 'attic b' \
  "$(get "/api/v1/registry?home=b&entity_id=$T" | jq -r '.entities[] | "\(.area_id) \(.home_id)"')"
check_eq "no home=: both homes' registry rows (by entity, home)" 'attic,kitchen' \
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

# stats (overview totals) and the homes list
check_eq "stats home=b: 5 events, 2 dead letters, 2 entities" '5 2 2' \
  "$(get '/api/v1/stats?home=b' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
check_eq "stats home=default: 4 events, 1 dead letter, 2 entities" '4 1 2' \
  "$(get '/api/v1/stats?home=default' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
check_eq "stats: 9 events, 3 dead letters, 4 entity rows" '9 3 4' \
  "$(get '/api/v1/stats' | jq -r '"\(.events_total) \(.dead_letters_total) \(.entities)"')"
check_eq "GET /api/v1/homes: both, with their event counts" 'b:5 default:4' \
  "$(get /api/v1/homes | jq -r '[.homes[] | "\(.home_id):\(.events)"] | join(" ")')"

# long-term statistics per (entity, home): default has 10, 20 (10:00, 10:10); b has 10, 20, 90 (+10:20),
# at the same times. 5-minute rows end with the latest state's period: default 10:00-10:15, b 10:00-10:25.
ST="/api/v1/statistics?entity_id=$T,$L&start=2025-03-01T00:00:00Z&period=hour&types=mean,min,max,count"
st_of() { get "$ST$1" | jq -r --arg t "$T" '.[$t][] | "\(.count) \(.min) \(.max) \(.mean * 1000 | round)"'; }
check_eq "statistics home=b: b's 3 states (10, 20, 90), mean (600*10 + 600*20 + 300*90)/1500" '3 10 90 30000' "$(st_of '&home=b')"
check_eq "statistics home=default: its 2 states (10, 20), mean (600*10 + 300*20)/900" '2 10 20 13333' "$(st_of '&home=default')"
check_eq "statistics without home=: the default home's" '2 10 20 13333' "$(st_of '')"
check_eq "statistics home=b, 5-minute rows: 10:00..10:20, one state each in 3 of them" '5 1,0,1,0,1' \
  "$(get "${ST/period=hour/period=5minute}&home=b" | jq -r --arg t "$T" '"\(.[$t] | length) \([.[$t][].count] | map(tostring) | join(","))"')"
check_eq "statistics home=nobody: no entity has statistics there" '{}' "$(get "$ST&home=nobody" | jq -c .)"
for ep in "/api/v1/events/feed?home=Bad!" "/api/v1/entities?home=" "/api/v1/series?entity_id=$T&home=a%20b" \
          "/api/v1/stats?home=-x" "/api/v1/dead-letters?home=UPPER" "/api/v1/registry?home=B" \
          "/api/v1/statistics?entity_id=$T&start=2025-03-01T00:00:00Z&home=Bad"; do
  r=$(curl -s -w ' %{http_code}' "$U$ep")
  check "$ep -> 400 naming home ($r)" bash -c "[[ '$r' == *' 400' && '$r' == '{\"error\":\"home: '* ]]"
done
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
finish

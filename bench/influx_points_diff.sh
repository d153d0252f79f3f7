#!/usr/bin/env bash
# bench/influx_points_diff.sh -- do two builds of data-storage write the same InfluxDB points?
#
# Why: a change to how the InfluxDB write path builds its lines (issue 15: from the record's text
# instead of a jansson tree) must not change one tag, field or time. This posts the same awkward
# records (tests/storage/gen_events.jq, plus registry context, numbers jansson reads its own way and
# another home's batch) through each build into its own database of one throw-away influxd, on both
# schemas, then compares every point of every measurement (all fields, all tags, the time), leaving
# out only what differs by design between two runs: stored_at (the commit time) and the homeiq_feed
# point's time and t (the commit sequence); the feed is compared entry by entry, so a per-event feed
# (before session 8) and batch points (influx_feed.h) holding the same entries are equal.
#
# Use: bench/influx_points_diff.sh OLD_BUILD_DIR NEW_BUILD_DIR [EVENTS]   (exit 0: identical)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a tool, not a test: it ends without finish
. "$root/tests/lib/influxd.sh"
old=${1:?old build dir}; new=${2:?new build dir}; n=${3:-3000}

jq -nc --argjson n "$n" --argjson from 0 -f "$root/tests/storage/gen_events.jq" | jq -c '
  [ to_entries[] | .key as $i | .value
    | if $i % 5 == 1 then . + {area_id: "living room", area: "Living, \"room\"", floor_id: "ground",
                                device_id: "dev \($i % 7)", labels: ["a", "", "b c", 1, "d=e"], platform: "hue",
                                entity_category: null, manufacturer: "Signify", model: "LCT 015"} else . end
    | if $i % 7 == 3 then .value = ([0, -0, 22, 1e3, 2.5e-3, 9007199254740993, -12, 1.5][$i % 8]) else . end
    | if $i % 11 == 4 then .old_value = 7 | .duration_in_state = 3 else . end
    | if $i % 13 == 5 then .state = "" else . end ]' > "$TEST_TMP/all.json"

influxd_start || exit 1
post_all() { # post_all PORT : the events in batches of 500, every third batch for another home
  local port=$1 k=0 total code
  total=$(jq length "$TEST_TMP/all.json")
  for ((off = 0; off < total; off += 500)); do
    local home=()
    (( k % 3 == 2 )) && home=(-H 'X-HomeIQ-Home: cabin')
    code=$(jq -c --argjson o $off '{events: .[$o:$o+500]}' "$TEST_TMP/all.json" |
      curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'Content-Type: application/json' "${home[@]}" \
        --data-binary @- "http://127.0.0.1:$port/api/v1/events")
    [ "$code" = 200 ] || echo "POST answered $code" >&2
    k=$((k + 1))
  done
}
# A homeiq_feed point as its entries, whichever form (services/data-storage/influx_feed.h: one point per
# event, or a batch point whose field e holds one line per event), without the sequence and the point
# time t, which differ by design; "" and a missing tag are both "none".
feed_jq='def nz: if . == "" then null else . end;
  def feed_entries($t): if .e then (.e | split("\n")[] | split("\t") |
      {m: "feed", f: {event_id: .[0], entity_id: (.[2] | nz), domain: (.[3] | nz), event_type: (.[4] | nz),
                      area_id: (.[5] | nz), home_id: ($t.home_id | nz)}})
    else {m: "feed", f: {event_id: .event_id, entity_id: ($t.entity_id | nz), domain: ($t.domain | nz),
                         event_type: ($t.event_type | nz), area_id: ($t.area_id | nz), home_id: ($t.home_id | nz)}} end;'
dump() { # dump DB : every point of every measurement, sorted, without what differs by design
  local db=$1 m
  for m in $(curl -s -G "$INFLUXDB_URL/query" --data-urlencode "db=$db" --data-urlencode "q=SHOW MEASUREMENTS" |
             jq -r '.results[0].series[0].values[][0]'); do
    curl -s -G "$INFLUXDB_URL/query" --data-urlencode "db=$db" --data-urlencode "epoch=ns" \
      --data-urlencode "q=SELECT * FROM \"$m\" GROUP BY *" |
      jq -c --arg m "$m" "$feed_jq"'.results[0].series[]? | .tags as $t | .columns as $c | .values[] |
        [$c, .] | transpose | map({(.[0]): .[1]}) | add | del(.stored_at) |
        if $m == "homeiq_feed" then feed_entries($t) else {m: $m, tags: $t, f: .} end'
  done | LC_ALL=C sort
}
rc=0
for schema in homeiq homeassistant; do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    port=$(free_port)
    STORAGE_BACKEND=influxdb INFLUXDB_SCHEMA=$schema INFLUXDB_DATABASE="diff_${schema}_$side" \
      DATA_DIR="$TEST_TMP/data-$schema-$side" DATA_STORAGE_PORT=$port LOG_LEVEL=error \
      start_bg "storage-$schema-$side" "$bin/services/data-storage/homeiq-data-storage"
    pid=$LAST_PID
    wait_healthy "http://127.0.0.1:$port/health" 30 || exit 1
    post_all "$port"
    stop_pid "$pid"
    dump "diff_${schema}_$side" > "$TEST_TMP/$schema-$side.txt"
  done
  if cmp -s "$TEST_TMP/$schema-old.txt" "$TEST_TMP/$schema-new.txt"; then
    echo "$schema: identical, $(wc -l < "$TEST_TMP/$schema-new.txt") points"
  else
    echo "$schema: DIFFERENT"; diff "$TEST_TMP/$schema-old.txt" "$TEST_TMP/$schema-new.txt" | cut -c1-400 | head -8; rc=1
  fi
done
influxd_stop
exit $rc

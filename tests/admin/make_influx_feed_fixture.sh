#!/usr/bin/env bash
# tests/admin/make_influx_feed_fixture.sh -- writes tests/admin/fixtures/influx_feed_v0.lp: a store
# written by a data-storage from before the batch feed points (influx_feed.h), loaded by the upgrade
# test (test_influx_feed.sh). Made once with the build of d90b29a; kept so the test needs no old build.
#
# What it holds: 4 batches (one of another home, registry areas on some events), the entity summary
# written after the 3rd (the snapshot throttle holds the 4th's back), then SIGKILL: the 4th batch's
# events are above the summary's sequence, as after a crash, so a restore must re-apply them from the
# per-event feed points. Statistics off (INFLUXDB_STATISTICS=0): not what this fixture is about.
#
# Use: make_influx_feed_fixture.sh OLD_BUILD_DIR [OUT]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a tool, not a test: it ends without finish
. "$here/../lib/influxd.sh"
old=${1:?old build dir}; out=${2:-$here/fixtures/influx_feed_v0.lp}
influxd_start || exit 1
PORT=$(free_port) U=http://127.0.0.1:$PORT
STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=upgrade INFLUXDB_STATISTICS=0 DATA_DIR="$TEST_TMP/data" \
  DATA_STORAGE_PORT=$PORT LOG_LEVEL=warn start_bg storage "$old/services/data-storage/homeiq-data-storage"
pid=$LAST_PID
wait_healthy "$U/health" 30 || exit 1
batch() { # batch N FROM HOUR: N events of sensor.up_a/up_b/light.up_c, every third with an area
  jq -nc --argjson n "$1" --argjson from "$2" --arg h "$3" '{events: [range($from; $from + $n) as $i |
    ({event_type: "state_changed", time_fired: "2026-11-30T\($h):00:\($i % 60 | tostring | if length < 2 then "0" + . else . end).\($i)Z",
      context_id: "up-\($i)"} +
     (if $i % 3 == 2 then {entity_id: "light.up_c", state: (if $i % 2 == 0 then "on" else "off" end)}
      else {entity_id: "sensor.up_\(if $i % 3 == 0 then "a" else "b" end)", state: "\($i).5", value: ($i + 0.5)} end) +
     (if $i % 3 == 1 then {area_id: "living_room"} else {} end))]}'
}
post() { # post BODY [HOME]
  local h=(); [ -n "${2:-}" ] && h=(-H "X-HomeIQ-Home: $2")
  curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' "${h[@]}" --data-binary "$1" "$U/api/v1/events"
}
post "$(batch 20 0 10)"
post "$(batch 10 20 11)" cabin
sleep 2   # the summary of the first two is written (at most once a second)
post "$(batch 10 30 12)"
post "$(batch 10 40 13)"   # within the second: its summary write is held back by the throttle...
kill -9 "$pid"             # ...and never made
sleep 1
python3 "$here/influx_export.py" "$INFLUXDB_URL" upgrade | LC_ALL=C sort > "$out"
echo "wrote $out: $(wc -l < "$out") points" >&2

#!/usr/bin/env bash
# test_registry_since.sh BACKEND /path/to/homeiq-data-storage -- GET /api/v1/registry's
# "since" when events arrive late (BACKEND sqlite | influxdb | clickhouse, a real influxd or
# clickhouse-server started here).
#
# Why: "since" is the time of the entity's first event with its current context (a
# move's time). Events do arrive late: a batch retried after enrichment was SIGKILLed,
# events held by ingestion while a registry reload was answered. Both writers used to
# ignore a late event with the current context, so "since" stayed at the first event
# that happened to arrive (e2e_registry_* failed "since = the move's time" by ~1 s
# under load). A late event moves "since" back only when no event of another context
# lies between it and "since".
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BACKEND=${1:?usage: test_registry_since.sh sqlite|influxdb|clickhouse /path/to/homeiq-data-storage}
BIN=${2:?usage: test_registry_since.sh sqlite|influxdb|clickhouse /path/to/homeiq-data-storage}
ENV=(STORAGE_BACKEND="$BACKEND")
if [ "$BACKEND" = influxdb ]; then
  . "$here/../lib/influxd.sh"
  influxd_start || bail "influxd starts"
  ENV+=(INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE=homeiq_since)
elif [ "$BACKEND" = clickhouse ]; then
  . "$here/../lib/clickhouse.sh"
  clickhouse_start ch1 || bail "clickhouse-server starts"
  ENV+=(CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE=homeiq_since CLICKHOUSE_PING_INTERVAL_MS=200)
fi
start_sto() { # start_sto NAME
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$1" env DATA_STORAGE_PORT=$PORT DATA_DIR="$TEST_TMP/data" "${ENV[@]}" "$BIN"
  PID=$LAST_PID
  wait_healthy "$U/health" 30 "$PID" || bail "data-storage ($1) started"
}
rec() { # rec SECOND AREA : sensor.a at 10:00:SECOND in AREA
  printf '{"event_type":"state_changed","entity_id":"sensor.a","domain":"sensor","time_fired":"2026-01-01T10:00:%s.000001Z","context_id":"c-%s","state":"20","attributes":{"friendly_name":"A"},"area_id":"%s","area":"Area %s","floor_id":"ground","floor":"Ground","device_id":"dev_a","device":"Device A","manufacturer":"Aqara","model":"M1","labels":[],"platform":"zha","entity_category":null}' \
    "$1" "$1" "$2" "$2"
}
post() { # post REC... : one batch; checks every event is stored
  local body; body=$(IFS=,; echo "[$*]")
  check_eq "stored a batch of $#" "$#" "$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' \
    --data-binary "$body" | jq '.stored + .duplicates')"
}
since() { curl -s "$U/api/v1/registry?entity_id=sensor.a" | jq -r '.entities[0] | "\(.area_id) \(.since)"'; }
T() { echo "$1 2026-01-01T10:00:$2.000001Z"; }

start_sto sto
post "$(rec 00 kitchen)" "$(rec 01 kitchen)"
check_eq "in order: since the first kitchen event" "$(T kitchen 00)" "$(since)"
post "$(rec 10 bedroom)"
post "$(rec 12 bedroom)"
check_eq "a move: since the move" "$(T bedroom 10)" "$(since)"
# a retried batch: the move really happened at :07; its events arrive after :10 and :12
post "$(rec 07 bedroom)" "$(rec 08 bedroom)"
check_eq "late events of the current context: since moves back to the first" "$(T bedroom 07)" "$(since)"
post "$(rec 05 kitchen)"
check_eq "a late event of the old context changes nothing" "$(T bedroom 07)" "$(since)"
post "$(rec 04 bedroom)"
check_eq "a late bedroom event before the kitchen one at :05: since stays" "$(T bedroom 07)" "$(since)"
post "$(rec 06 bedroom)"
check_eq "a late bedroom event after the kitchen one at :05: since moves back to it" "$(T bedroom 06)" "$(since)"
post "$(rec 06 bedroom)"
check_eq "a re-sent event changes nothing" "$(T bedroom 06)" "$(since)"
check "storage exits cleanly" stop_pid "$PID"
# a restart forgets what was written (InfluxDB's memory of the points): nothing moves
start_sto sto2
post "$(rec 20 bedroom)"
check_eq "after a restart: since the same event" "$(T bedroom 06)" "$(since)"
post "$(rec 03 bedroom)"
check_eq "after a restart, a late bedroom event before the kitchen ones: since stays" "$(T bedroom 06)" "$(since)"
check "storage exits cleanly (2)" stop_pid "$PID"
finish

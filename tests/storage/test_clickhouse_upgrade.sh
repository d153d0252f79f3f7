#!/usr/bin/env bash
# test_clickhouse_upgrade.sh STORAGE_BIN -- a ClickHouse store at schema version 2 (as
# main's binary before the registry made it) is upgraded to version 3 at start: the
# registry columns are added to events (one ALTER per column: 18.16 has no ADD COLUMN
# IF NOT EXISTS), a column already there (a start that ran its ALTER but stopped before
# recording the version) counts as done, the old rows stay readable, new events get
# the registry and its filters; a second start changes nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/clickhouse.sh"
BIN=${1:?usage: test_clickhouse_upgrade.sh /path/to/homeiq-data-storage}
clickhouse_start ch1 || bail "clickhouse-server starts"
q() { clickhouse_query ch1 "$1"; }

# schema version 2, the statements of clickhouse_sql.c before version 3
q "CREATE DATABASE up" >/dev/null
q "CREATE TABLE up.homeiq_schema (version UInt32, applied_at DateTime) ENGINE = TinyLog" >/dev/null
q "CREATE TABLE up.events (home_id String, event_id String, time DateTime, time_us Int64, entity_id String, domain String, event_type String, stored_at_us Int64, record String) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(time) ORDER BY (home_id, entity_id, time_us, event_id)" >/dev/null
q "CREATE TABLE up.dead_letters (home_id String, dl_key String, id Int64, received_at DateTime, received_at_us Int64, seq UInt32, source String, error String, raw String) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(received_at) ORDER BY (home_id, dl_key)" >/dev/null
q "CREATE TABLE up.statistics (home_id String, entity_id String, period UInt8, start_us Int64, start DateTime, version Int64, kind UInt8, flags UInt8, mean Float64, min Float64, max Float64, last Float64, state Float64, sum Float64, last_reset_us Int64, count Int64, covered_us Int64) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(start) ORDER BY (home_id, entity_id, period, start_us)" >/dev/null
q "INSERT INTO up.homeiq_schema VALUES (1, now()), (2, now())" >/dev/null
OLD='{"event_type":"state_changed","entity_id":"sensor.a","time_fired":"2026-01-01T10:00:00.000001Z","state":"1","area_id":"kitchen"}'
q "INSERT INTO up.events VALUES ('default', '0123456789abcdef0123456789abcdef', 1767261600, 1767261600000001, 'sensor.a', 'sensor', 'state_changed', 1767261600000001, '$OLD')" >/dev/null
# a start that added area_id and stopped before recording version 3
q "ALTER TABLE up.events ADD COLUMN area_id String" >/dev/null
check_eq "the store is at version 2, one event, area_id already added" "2 1 1" \
  "$(q "SELECT (SELECT max(version) FROM up.homeiq_schema), (SELECT count() FROM up.events), (SELECT count() FROM system.columns WHERE database = 'up' AND table = 'events' AND name = 'area_id') FORMAT TSV" | tr '\t' ' ')"

start_sto() {
  PORT=$(free_port) U=http://127.0.0.1:$PORT
  start_bg "$1" env STORAGE_BACKEND=clickhouse CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE=up \
    CLICKHOUSE_PING_INTERVAL_MS=200 DATA_STORAGE_PORT=$PORT DATA_DIR="$TEST_TMP/data" "$BIN"
  PID=$LAST_PID
  wait_healthy "$U/health" 60 "$PID"
}
check "data-storage upgrades the store and gets healthy" start_sto sto
check_eq "schema version 3 recorded, health says so" "3 3" \
  "$(q "SELECT max(version) FROM up.homeiq_schema FORMAT TSV") $(curl -s "$U/health" | jq .backend.stored_schema_version)"
check_eq "events has the registry columns" "area_id context_hash device_id floor_id labels platform" \
  "$(q "SELECT name FROM system.columns WHERE database = 'up' AND table = 'events' AND name IN ('area_id','floor_id','device_id','platform','labels','context_hash') ORDER BY name FORMAT TSV" | grep . | paste -sd' ')"
check_eq "the version-2 event is still answered, byte for byte" "$OLD" \
  "$(curl -s "$U/api/v1/events?entity_id=sensor.a" | jq -c '.events[0] | del(.event_id, .stored_at)')"
NEW='{"event_type":"state_changed","entity_id":"sensor.a","time_fired":"2026-01-01T10:00:05.000001Z","state":"2","context_id":"c2","area_id":"hall","floor_id":"ground","device_id":"dev_a","labels":["x"],"platform":"zha"}'
check_eq "a new event with a context is stored" 1 \
  "$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "[$NEW]" | jq .stored)"
check_eq "events?area=hall&label=x: the new one (the old row has no context columns filled)" "1 2" \
  "$(curl -s "$U/api/v1/events?area=hall&label=x" | jq -r '"\(.count) \(.events[0].state)"')"
check_eq "registry: sensor.a in the hall since the new event" "hall 2026-01-01T10:00:05.000001Z zha" \
  "$(curl -s "$U/api/v1/registry" | jq -r '.entities[] | "\(.area_id) \(.since) \(.platform)"')"
check "storage exits cleanly" stop_pid "$PID"
check "a second start: healthy" start_sto sto2
check_eq "... no second upgrade (versions 1, 2, 3 recorded once each)" "1 2 3" \
  "$(q "SELECT version FROM up.homeiq_schema ORDER BY version FORMAT TSV" | grep . | paste -sd' ')"
check "storage exits cleanly (2)" stop_pid "$PID"
finish

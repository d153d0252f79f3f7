#!/usr/bin/env bash
# test_clickhouse_upgrade.sh STORAGE_BIN [cluster] -- a ClickHouse store at schema version 2 (as
# main's binary before the registry made it) is upgraded to version 3 at start: the
# registry columns are added to events (one ALTER per column: 18.16 has no ADD COLUMN
# IF NOT EXISTS), a column already there (a start that ran its ALTER but stopped before
# recording the version) counts as done, the old rows stay readable, new events get
# the registry and its filters; a second start changes nothing. `cluster`: the same on the
# loopback cluster (ZooKeeper; ALTERs ON CLUSTER on events_local and the Distributed events).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/clickhouse.sh"
BIN=${1:?usage: test_clickhouse_upgrade.sh /path/to/homeiq-data-storage [cluster]}
MODE=${2:-single}
q() { clickhouse_query ch1 "$1"; }
EV="(home_id String, event_id String, time DateTime, time_us Int64, entity_id String, domain String, event_type String, stored_at_us Int64, record String)"
EV_KEY="PARTITION BY toYYYYMM(time) ORDER BY (home_id, entity_id, time_us, event_id)"
DL="(home_id String, dl_key String, id Int64, received_at DateTime, received_at_us Int64, seq UInt32, source String, error String, raw String)"
DL_KEY="PARTITION BY toYYYYMM(received_at) ORDER BY (home_id, dl_key)"
ST="(home_id String, entity_id String, period UInt8, start_us Int64, start DateTime, version Int64, kind UInt8, flags UInt8, mean Float64, min Float64, max Float64, last Float64, state Float64, sum Float64, last_reset_us Int64, count Int64, covered_us Int64)"
ST_KEY="PARTITION BY toYYYYMM(start) ORDER BY (home_id, entity_id, period, start_us)"
ENV=(CLICKHOUSE_DATABASE=up)
# schema version 2, the statements of clickhouse_sql.c before version 3
if [ "$MODE" = cluster ]; then # ZooKeeper, shard 1 = ch1 + ch2, shard 2 = ch3: ON CLUSTER, local + Distributed
  . "$here/../lib/zookeeper.sh"
  zookeeper_start || bail "zookeeper starts"
  clickhouse_cluster_start || bail "the ClickHouse cluster starts"
  OC="ON CLUSTER homeiq"
  rep() { echo "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/up/$1_local', '{replica}'${2:-})"; }
  check "v2 made: CREATE DATABASE up" q "CREATE DATABASE up $OC"
  check "v2 made: CREATE TABLE up.homeiq_schema" q "CREATE TABLE up.homeiq_schema $OC (version UInt32, applied_at DateTime) ENGINE = TinyLog"
  check "v2 made: CREATE TABLE up.events_local" q "CREATE TABLE up.events_local $OC $EV ENGINE = $(rep events) $EV_KEY"
  check "v2 made: CREATE TABLE up.events" q "CREATE TABLE up.events $OC $EV ENGINE = Distributed(homeiq, up, events_local, cityHash64(home_id, entity_id))"
  check "v2 made: CREATE TABLE up.dead_letters_local" q "CREATE TABLE up.dead_letters_local $OC $DL ENGINE = $(rep dead_letters) $DL_KEY"
  check "v2 made: CREATE TABLE up.dead_letters" q "CREATE TABLE up.dead_letters $OC $DL ENGINE = Distributed(homeiq, up, dead_letters_local, cityHash64(home_id))"
  check "v2 made: CREATE TABLE up.statistics_local" q "CREATE TABLE up.statistics_local $OC $ST ENGINE = $(rep statistics ', version') $ST_KEY"
  check "v2 made: CREATE TABLE up.statistics" q "CREATE TABLE up.statistics $OC $ST ENGINE = Distributed(homeiq, up, statistics_local, cityHash64(home_id, entity_id))"
  ENV+=(CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_TIMEOUT_MS=20000)
  LOCAL=events_local
else
  clickhouse_start ch1 || bail "clickhouse-server starts"
  OC=""
  check "v2 made: CREATE DATABASE up" q "CREATE DATABASE up"
  check "v2 made: CREATE TABLE up.homeiq_schema" q "CREATE TABLE up.homeiq_schema (version UInt32, applied_at DateTime) ENGINE = TinyLog"
  check "v2 made: CREATE TABLE up.events" q "CREATE TABLE up.events $EV ENGINE = ReplacingMergeTree $EV_KEY"
  check "v2 made: CREATE TABLE up.dead_letters" q "CREATE TABLE up.dead_letters $DL ENGINE = ReplacingMergeTree $DL_KEY"
  check "v2 made: CREATE TABLE up.statistics" q "CREATE TABLE up.statistics $ST ENGINE = ReplacingMergeTree(version) $ST_KEY"
  LOCAL=events
fi
ENV+=(CLICKHOUSE_URL="http://127.0.0.1:$CH_HTTP_ch1")
q "INSERT INTO up.homeiq_schema VALUES (1, now()), (2, now())" >/dev/null
OLD='{"event_type":"state_changed","entity_id":"sensor.a","time_fired":"2026-01-01T10:00:00.000001Z","state":"1","area_id":"kitchen"}'
# synchronously (a Distributed table's default INSERT is queued and sent later), then on both replicas
curl -s "http://127.0.0.1:$CH_HTTP_ch1/?insert_distributed_sync=1" --data-binary "INSERT INTO up.events VALUES ('default', '0123456789abcdef0123456789abcdef', 1767261600, 1767261600000001, 'sensor.a', 'sensor', 'state_changed', 1767261600000001, '$OLD')"
if [ "$MODE" = cluster ]; then
  lc() { clickhouse_query "$1" "SELECT count() FROM up.events_local FORMAT TSV" | grep .; }
  stored_once() { [ "$(lc ch1)" = "$(lc ch2)" ] && [ $(( $(lc ch1) + $(lc ch3) )) = 1 ]; }
  check "the version-2 event is on its shard's every replica" wait_for 30 stored_once
fi
# a start that added area_id and stopped before recording version 3
check "... area_id added to $LOCAL already" q "ALTER TABLE up.$LOCAL $OC ADD COLUMN area_id String"
check_eq "the store is at version 2, one event, area_id already added" "2 1 1" \
  "$(q "SELECT (SELECT max(version) FROM up.homeiq_schema), (SELECT count() FROM up.events), (SELECT count() FROM system.columns WHERE database = 'up' AND table = '$LOCAL' AND name = 'area_id') FORMAT TSV" | tr '\t' ' ')"

start_sto() {
  PORT=$(free_port) U=http://127.0.0.1:$PORT
  start_bg "$1" env STORAGE_BACKEND=clickhouse "${ENV[@]}" \
    CLICKHOUSE_PING_INTERVAL_MS=200 DATA_STORAGE_PORT=$PORT DATA_DIR="$TEST_TMP/data" "$BIN"
  PID=$LAST_PID
  wait_healthy "$U/health" 120 "$PID"
}
check "data-storage upgrades the store and gets healthy" start_sto sto
check_eq "schema version 3 recorded, health says so" "3 3" \
  "$(q "SELECT max(version) FROM up.homeiq_schema FORMAT TSV") $(curl -s "$U/health" | jq .backend.stored_schema_version)"
tables=events; [ "$MODE" = cluster ] && tables="events events_local"
for n in $([ "$MODE" = cluster ] && echo ch1 ch2 ch3 || echo ch1); do
  for t in $tables; do
    check_eq "$n: $t has the registry columns" "area_id context_hash device_id floor_id labels platform" \
      "$(clickhouse_query $n "SELECT name FROM system.columns WHERE database = 'up' AND table = '$t' AND name IN ('area_id','floor_id','device_id','platform','labels','context_hash') ORDER BY name FORMAT TSV" | grep . | paste -sd' ')"
  done
done
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
if [ "$MODE" = cluster ]; then for n in ch1 ch2 ch3; do clickhouse_stop $n; done; zookeeper_stop; fi
finish

#!/usr/bin/env bash
# test_registry_migration.sh -- the registry migration (issue 11: area_id, floor_id,
# device_id, platform columns, event_labels, the registry table) on a database that
# already holds events. data/events_v5_main-bc6f40c.db was written by main's
# data-storage at bc6f40c (schema 5, the commit before issue 11) from 12 records
# (data/make_events_v5.sh). Opening it with this binary must migrate it in place, keep
# every old row readable as it was stored (no context: null area), and the new filters
# (area, floor, device, label, platform) and GET /api/v1/registry must work on events
# stored after the migration -- and find none of the old ones.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_registry_migration.sh /path/to/homeiq-data-storage}
FIXTURE=$here/data/events_v5_main-bc6f40c.db

mkdir -p "$TEST_TMP/data"
cp "$FIXTURE" "$TEST_TMP/data/events.db"
DB=$TEST_TMP/data/events.db
check_eq "fixture: schema 5" 5 "$(sqlite3 "$DB" 'PRAGMA user_version')"
check_eq "fixture: 12 events" 12 "$(sqlite3 "$DB" 'SELECT count(*) FROM events')"
check_eq "fixture: no registry columns yet" 0 \
  "$(sqlite3 "$DB" "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'area_id'")"
sqlite3 "$DB" "SELECT event_id || ' ' || record FROM events ORDER BY id" >"$TEST_TMP/old.rows"

PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
PID=$LAST_PID
check "storage opens the schema-5 database" wait_healthy "$U/health" 30
check "the migration is logged" grep -q "sqlite schema migrated to version 6" "$TEST_TMP/storage.log"
check "health: schema 6 or later" test "$(curl -s "$U/health" | jq .backend.schema_version)" -ge 6

# ---- the old rows, as they were ---------------------------------------------------------
curl -s "$U/api/v1/events?limit=100" >"$TEST_TMP/all.json"
check_eq "every old row is served" 12 "$(jq '.events | length' "$TEST_TMP/all.json")"
check_eq "every old event_id is served" "$(cut -d' ' -f1 "$TEST_TMP/old.rows" | sort)" \
  "$(jq -r '.events[].event_id' "$TEST_TMP/all.json" | sort)"
check_eq "old rows have no context (area_id null)" 0 "$(jq '[.events[] | select(.area_id != null)] | length' "$TEST_TMP/all.json")"
check_eq "old rows: the entity filter still finds them" 4 \
  "$(curl -s "$U/api/v1/events?entity_id=sensor.old_kitchen" | jq '.events | length')"
for q in area=kitchen floor=ground_floor device=dev_kitchen label=battery platform=zha; do
  check_eq "?$q finds none of the old rows" 0 "$(curl -s "$U/api/v1/events?$q" | jq '.events | length')"
done

# ---- new events, with context ------------------------------------------------------------
rec() { # rec ENTITY TIME AREA FLOOR DEVICE LABEL PLATFORM
  printf '{"event_type":"state_changed","entity_id":"%s","domain":"sensor","time_fired":"%s","context_id":"c-%s","state":"21.5","attributes":{},"area_id":"%s","area":"A %s","floor_id":"%s","floor":"F %s","device_id":"%s","device":"D %s","manufacturer":"Aqara","model":"M1","labels":["%s"],"platform":"%s","entity_category":null}' \
    "$1" "$2" "$2" "$3" "$3" "$4" "$4" "$5" "$5" "$6" "$7"
}
BODY="[$(rec sensor.old_kitchen 2026-01-01T10:00:00.000001Z kitchen ground_floor dev_kitchen battery zha),$(rec sensor.old_kitchen 2026-01-01T10:00:01.000001Z kitchen ground_floor dev_kitchen battery zha),$(rec sensor.new_bedroom 2026-01-01T10:00:02.000001Z bedroom first_floor dev_bedroom energy hue)]"
ANS=$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "$BODY")
check_eq "three new events with context stored" "3 0" "$(jq -r '"\(.stored) \(.duplicates)"' <<<"$ANS")"
check_eq "?area=kitchen: exactly the two new kitchen events" "2 kitchen" \
  "$(curl -s "$U/api/v1/events?area=kitchen" | jq -r '"\(.events | length) \([.events[].area_id] | unique | join(","))"')"
check_eq "?floor=first_floor: the bedroom event" "sensor.new_bedroom" \
  "$(curl -s "$U/api/v1/events?floor=first_floor" | jq -r '[.events[].entity_id] | join(",")')"
check_eq "?device=dev_kitchen: 2" 2 "$(curl -s "$U/api/v1/events?device=dev_kitchen" | jq '.events | length')"
check_eq "?label=energy: the bedroom event" "sensor.new_bedroom" \
  "$(curl -s "$U/api/v1/events?label=energy" | jq -r '[.events[].entity_id] | join(",")')"
check_eq "?platform=zha: 2" 2 "$(curl -s "$U/api/v1/events?platform=zha" | jq '.events | length')"
check_eq "?entity_id=sensor.old_kitchen: old and new rows (4 + 2)" 6 \
  "$(curl -s "$U/api/v1/events?entity_id=sensor.old_kitchen" | jq '.events | length')"
check_eq "?area=Kitchen -> 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/v1/events?area=Kitchen")"
R=$(curl -s "$U/api/v1/registry")
check_eq "GET /api/v1/registry: the two entities with context" "sensor.new_bedroom sensor.old_kitchen" \
  "$(jq -r '[.entities[].entity_id] | sort | join(" ")' <<<"$R")"
check_eq "GET /api/v1/registry: old_kitchen is in kitchen since its first event with context" \
  "kitchen 2026-01-01T10:00:00.000001Z" \
  "$(jq -r '.entities[] | select(.entity_id == "sensor.old_kitchen") | "\(.area_id) \(.since)"' <<<"$R")"
check "storage exits cleanly" stop_pid "$PID"

check_eq "the old rows' records are unchanged on disk" "$(cat "$TEST_TMP/old.rows")" \
  "$(sqlite3 "$DB" "SELECT event_id || ' ' || record FROM events WHERE id <= 12 ORDER BY id")"
check_eq "the old rows have null registry columns" 12 \
  "$(sqlite3 "$DB" "SELECT count(*) FROM events WHERE id <= 12 AND area_id IS NULL AND floor_id IS NULL AND device_id IS NULL AND platform IS NULL")"
finish

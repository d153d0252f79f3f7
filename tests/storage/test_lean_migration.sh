#!/usr/bin/env bash
# test_lean_migration.sh /path/to/homeiq-data-storage [/path/to/fault_shim.so] -- migration 10
# (issue 15, store_sqlite_context.h) on a database made by main's binary before it:
# data/events_v9_main-e3aed48.db (schema 9; data/make_events_v9.sh: an entity that moves
# and moves back, a late batch, entity-less context events, two homes, labels). Opening it
# with this binary must keep every row, drop events_time, make the registry and type
# indexes partial, fill event_contexts so that every event with a context is covered,
# answer every registry and type filter as the rows say (what the old indexes answered),
# read by time through events_identity, and store new events into the spans.
# With the fault shim: a disk too small for the migration is refused with the reason,
# the store stays at schema 9 and the next start with room migrates it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/migration_lib.sh"   # mig_fixture, q, plan, start_sto, mig_start, mig_no_room, post, ids
BIN=${1:?usage: test_lean_migration.sh /path/to/homeiq-data-storage [fault_shim.so]}
SHIM=${2:-}
FIXTURE=$here/data/events_v9_main-e3aed48.db

mig_fixture "$FIXTURE"
check_eq "fixture: schema 9, 14 events, 11 labels" "9|14|11" \
  "$(q 'SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM events), (SELECT count(*) FROM event_labels)')"
check_eq "fixture: events_time and the full registry indexes" "events_area_time|events_time" \
  "$(q "SELECT group_concat(name, '|') FROM (SELECT name FROM sqlite_master WHERE name IN ('events_time', 'events_area_time') AND sql NOT LIKE '%entity_id IS NULL%' ORDER BY 1)")"

if [ -n "$SHIM" ]; then
  mig_no_room 10 "fewer indexes per event" "$SHIM"
  check_eq "... nothing changed: schema 9, events_time kept" "9|1" \
    "$(q "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master WHERE name = 'events_time')")"
fi

mig_start 10
check_eq "every old row unchanged" "$(cat "$TEST_TMP/old.rows")" "$(q "$ROWS")"
check_eq "events_time is gone" 0 "$(q "SELECT count(*) FROM sqlite_master WHERE name = 'events_time'")"
check_eq "the registry indexes (and, migration 11, events_domain_time) are partial on entity-less rows, events_type_time on types but state_changed" \
  "events_area_time|events_device_time|events_domain_time|events_floor_time|events_platform_time|events_type_time" \
  "$(q "SELECT group_concat(name, '|') FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND (sql LIKE '%AND entity_id IS NULL' OR sql LIKE '%WHERE event_type != ''state_changed''') ORDER BY 1)")"
check_eq "event_contexts: one span per entity, home and context, its events' first and last time" \
  "sensor.v9_energy|default|hall|ground|dev2|zha|1780308002000001|1780311601000001
sensor.v9_power|cabin|attic|top|dev9|zha|1780308000000001|1780309800000001
sensor.v9_power|default|hall|ground|dev1|zha|1780315200000001|1780315201000001
sensor.v9_power|default|kitchen|ground|dev1|zha|1780308000000001|1780318800000001" \
  "$(q 'SELECT * FROM event_contexts ORDER BY 1, 2, 3')"

ref() { q "SELECT group_concat(event_id) FROM (SELECT event_id FROM events WHERE $1 ORDER BY time_us DESC, id DESC)"; }
for f in "area=kitchen|area_id = 'kitchen'" "area=hall|area_id = 'hall'" "area=kitchen&home=default|area_id = 'kitchen' AND home_id = 'default'" \
         "floor=ground|floor_id = 'ground'" "device=dev1|device_id = 'dev1'" "platform=zha&home=cabin|platform = 'zha' AND home_id = 'cabin'" \
         "area=kitchen&label=energy|area_id = 'kitchen' AND id IN (SELECT event_rowid FROM event_labels WHERE label = 'energy')" \
         "event_type=device_registry_updated|event_type = 'device_registry_updated'" \
         "event_type=state_changed|event_type = 'state_changed'" "event_type=call_service|event_type = 'call_service'"; do
  want=$(ref "${f#*|}")
  check "${f%%|*}: the fixture has rows for it" test -n "$want"
  check_eq "${f%%|*}: as the rows say" "$want" "$(ids "${f%%|*}&limit=100")"
done
check_eq "area=kitchen: the move back and the late batch (4 of sensor.v9_power, the device update)" 5 \
  "$(curl -s "$U/api/v1/events?area=kitchen" | jq '.events | length')"

check_eq "a new event of the hall's sensor.v9_power, after the migration: stored" "1 0" \
  "$(post '[{"event_type":"state_changed","entity_id":"sensor.v9_power","time_fired":"2026-06-01T14:00:00.000001Z","context_id":"n1","state":"9","attributes":{},"area_id":"hall","area":"A","floor_id":"ground","floor":"F","device_id":"dev1","device":"D","manufacturer":"M","model":"X","labels":[],"platform":"zha","entity_category":null}]')"
check_eq "its span is widened" 1780322400000001 \
  "$(q "SELECT last_us FROM event_contexts WHERE entity_id = 'sensor.v9_power' AND home_id = 'default' AND area_id = 'hall'")"
check_eq "area=hall finds it first" sensor.v9_power "$(curl -s "$U/api/v1/events?area=hall&limit=1" | jq -r '.events[0].entity_id')"
check "storage exits cleanly" stop_pid "$PID"
check_eq "integrity_check" ok "$(q 'PRAGMA integrity_check')"
check "a read by time uses events_identity (events_time's key was its prefix)" \
  grep -q "USING INDEX events_identity" <<<"$(plan "SELECT record FROM events WHERE time_us >= 1 AND time_us < 2 ORDER BY time_us DESC, id DESC LIMIT 100")"
check "retention's purge by time uses events_identity" \
  grep -q "USING COVERING INDEX events_identity" <<<"$(plan "SELECT id FROM events WHERE time_us < 1 ORDER BY time_us LIMIT 10")"
# the moved filters' statements (store_sqlite.c, store_sqlite_merge.c) read indexes, never the table in full
check "event_type= of another type than state_changed: the partial events_type_time" \
  grep -q "SEARCH events USING INDEX events_type_time (event_type=?)" <<<"$(plan "SELECT record,event_id,stored_at_us FROM events WHERE 1 AND event_type=? AND event_type != 'state_changed' ORDER BY time_us DESC, id DESC LIMIT ? OFFSET ?")"
check "area=: one entity's range of events_entity_series" \
  grep -q "SEARCH events USING INDEX events_entity_series (entity_id=? AND time_us>? AND time_us<?)" <<<"$(plan "SELECT time_us, id FROM events WHERE entity_id = ?1 AND home_id = ?2 AND time_us >= ?3 AND time_us <= ?4 AND (time_us < ?4 OR id < ?5) AND area_id = ?12 ORDER BY time_us DESC, id DESC LIMIT ?6")"
check "area=: the entity-less events with a context through the partial events_area_time" \
  grep -q "SEARCH events USING INDEX events_area_time (area_id=? AND time_us>? AND time_us<?)" <<<"$(plan "SELECT time_us, id FROM events INDEXED BY events_area_time WHERE entity_id IS NULL AND time_us >= ?3 AND time_us <= ?4 AND (time_us < ?4 OR id < ?5) AND area_id = ?12 ORDER BY time_us DESC, id DESC LIMIT ?6")"
check "area= with label=: the label's rows first" \
  grep -q "SEARCH event_labels USING PRIMARY KEY (label=?)" <<<"$(plan "SELECT record,event_id,stored_at_us FROM events WHERE 1 AND area_id=? AND id IN (SELECT event_rowid FROM event_labels WHERE label=?) ORDER BY time_us DESC, id DESC LIMIT ? OFFSET ?")"
check "events/feed?area= (first page): the area's ids from the spans, through events_entity_series and the partial index" \
  grep -q "COVERING INDEX events_entity_series.*events_area_time (area_id=?)" <<<"$(plan "SELECT id, record FROM events WHERE id <= ?1 AND id > ?2 AND area_id = ?8 AND id IN (SELECT e.id FROM event_contexts c JOIN events e INDEXED BY events_entity_series ON e.entity_id = c.entity_id AND e.time_us BETWEEN c.first_us AND c.last_us WHERE c.area_id = ?8 UNION ALL SELECT id FROM events INDEXED BY events_area_time WHERE entity_id IS NULL AND area_id = ?8) ORDER BY id DESC LIMIT ?6")"
check "no moved filter scans events without an index" bash -c "! grep -q 'SCAN events\$' <<<\"\$(sqlite3 '$DB' \"EXPLAIN QUERY PLAN SELECT record FROM events WHERE event_type=? AND event_type != 'state_changed' ORDER BY time_us DESC LIMIT 9\")\""
finish

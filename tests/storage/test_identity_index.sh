#!/usr/bin/env bash
# test_identity_index.sh -- the identity index by time (issue 15, store_sqlite_identity.h)
# on a database made by main's binary before it: data/events_v6_main-c72e842.db (schema 6,
# event_id UNIQUE in CREATE TABLE; data/make_events_v6.sh). Opening it with this binary
# must rebuild events in place: every row (ids, identities, records, registry columns)
# and every label kept, every index and the purge trigger re-created, the UNIQUE on
# event_id replaced by UNIQUE(time_us, event_id) -- and identities must still refuse a
# re-sent event exactly (old rows and new, both homes), whatever the batch.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_identity_index.sh /path/to/homeiq-data-storage}
FIXTURE=$here/data/events_v6_main-c72e842.db

mkdir -p "$TEST_TMP/data"
cp "$FIXTURE" "$TEST_TMP/data/events.db"
DB=$TEST_TMP/data/events.db
q() { sqlite3 "$DB" "$1"; }
check_eq "fixture: schema 6" 6 "$(q 'PRAGMA user_version')"
check_eq "fixture: 10 events, 12 labels" "10|12" "$(q 'SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_labels)')"
check_eq "fixture: event_id has its own UNIQUE index" 1 \
  "$(q "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_autoindex_events_1'")"
ROWS="SELECT id, event_id, time_us, entity_id, domain, event_type, stored_at_us, record, kind, state, value, area_id, floor_id, device_id, platform FROM events ORDER BY id"
q "$ROWS" >"$TEST_TMP/old.rows"
q "SELECT * FROM event_labels ORDER BY 1, 2, 3" >"$TEST_TMP/old.labels"
q "SELECT name FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL AND type IN ('index', 'trigger') ORDER BY 1" \
  >"$TEST_TMP/old.objects"

PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
PID=$LAST_PID
check "storage opens the schema-6 database" wait_healthy "$U/health" 30
check "the migration is logged" grep -q "sqlite schema migrated to version 8" "$TEST_TMP/storage.log"

post() { curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' "$@"; }
r() { printf '{"event_type":"%s","entity_id":%s,"time_fired":"%s","context_id":"v6-%s","state":%s,"attributes":{"unit_of_measurement":"W"}%s}' "$@"; }
CTX=',"area_id":"kitchen","area":"Kitchen","floor_id":"ground","floor":"Ground","device_id":"dev1","device":"Plug","manufacturer":"X","model":"Y","labels":["energy","old"],"platform":"zha","entity_category":null'
OLD="[$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:00.000001Z 1 '"120"' "$CTX"),
$(r state_changed '"sensor.v6_energy"' 2026-06-01T10:00:05.000001Z 6 '"1.7"' "$CTX"),
$(r state_changed '"light.v6_lamp"' 2026-06-01T10:00:06.000001Z 7 '"on"' ''),
$(r call_service null 2026-06-01T10:00:07.000001Z 8 null ''),
$(r automation_triggered null 2026-06-01T10:00:08.000001Z 9 null '')]"
check_eq "old events re-sent after the migration: all duplicates" "0 5" \
  "$(post --data-binary "$OLD" | jq -r '"\(.stored) \(.duplicates)"')"
check_eq "the other home's old event re-sent: a duplicate" "0 1" \
  "$(post -H 'X-HomeIQ-Home: cabin' --data-binary "[$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:00.000001Z 10 '"7"' '')]" |
     jq -r '"\(.stored) \(.duplicates)"')"
# new events: one at a time already stored (10:00:00.000001, other context: state_changed's
# identity is entity + time), one between old ones, two later; twice in one batch
NEW="[$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:00.000001Z 99 '"121"' "$CTX"),
$(r state_changed '"sensor.v6_power"' 2026-06-01T10:00:01.500000Z 11 '"135"' "$CTX"),
$(r call_service null 2026-06-01T10:00:07.000001Z 12 null ''),
$(r state_changed '"sensor.v6_power"' 2026-06-01T11:00:00.000001Z 13 '"150"' "$CTX"),
$(r state_changed '"sensor.v6_power"' 2026-06-01T11:00:00.000001Z 13 '"150"' "$CTX")]"
check_eq "new events: 3 stored, the same-time state_changed and the in-batch twin are duplicates" "3 2" \
  "$(post --data-binary "$NEW" | jq -r '"\(.stored) \(.duplicates)"')"
check_eq "the same batch again: all duplicates" "0 5" "$(post --data-binary "$NEW" | jq -r '"\(.stored) \(.duplicates)"')"
check_eq "every stored event served once" 13 "$(curl -s "$U/api/v1/events?limit=100" | jq '[.events[].event_id] | unique | length')"
check_eq "?label=energy: old rows and new ones" 8 "$(curl -s "$U/api/v1/events?label=energy&limit=100" | jq '.events | length')"
check "storage exits cleanly" stop_pid "$PID"

check "schema 8 or later" test "$(q 'PRAGMA user_version')" -ge 8
check_eq "integrity_check" ok "$(q 'PRAGMA integrity_check')"
check_eq "the old rows are unchanged (ids, identities, records, columns)" "$(cat "$TEST_TMP/old.rows")" \
  "$(q "${ROWS/ORDER BY id/WHERE id <= 10 ORDER BY id}")"
check_eq "the old labels are unchanged" "$(cat "$TEST_TMP/old.labels")" \
  "$(q "SELECT * FROM event_labels WHERE event_rowid <= 10 ORDER BY 1, 2, 3")"
check_eq "event_id has no UNIQUE index of its own any more" 0 \
  "$(q "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'events' AND name LIKE 'sqlite_autoindex%'")"
check_eq "events_identity is UNIQUE(time_us, event_id)" "1|time_us,event_id" \
  "$(q "SELECT (SELECT \"unique\" FROM pragma_index_list('events') WHERE name = 'events_identity'), (SELECT group_concat(name) FROM (SELECT name FROM pragma_index_info('events_identity') ORDER BY seqno))")"
# (later migrations may add indexes of their own: every old one must be back, but
# events_time, which migration 10 drops: events_identity's prefix serves its reads)
q "SELECT name FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL AND type IN ('index', 'trigger') AND name != 'events_identity' UNION SELECT 'events_time' ORDER BY 1" >"$TEST_TMP/new.objects"
check_eq "every other index and the trigger are back" "" "$(comm -23 "$TEST_TMP/old.objects" "$TEST_TMP/new.objects")"
q "INSERT INTO events(event_id, time_us, event_type, stored_at_us, record) SELECT event_id, time_us, event_type, 0, '{}' FROM events WHERE id = 1" >"$TEST_TMP/dup.err" 2>&1
check "an insert of a stored identity is refused by the index" \
  grep -q "UNIQUE constraint failed: events.time_us, events.event_id" "$TEST_TMP/dup.err"
q "DELETE FROM events WHERE id = 1"
check_eq "the purge trigger still removes a deleted event's labels" 0 "$(q 'SELECT count(*) FROM event_labels WHERE event_rowid = 1')"
finish

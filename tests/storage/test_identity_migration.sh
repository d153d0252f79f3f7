#!/usr/bin/env bash
# test_identity_migration.sh -- the state_changed identity (entity + last_updated)
# on a database made by an older binary: data/events_v2_main-3fc28d8.db was written
# by main's data-storage at 3fc28d8 (schema 2, identities with the context), from
# the ten HA examples of docs/EVENTS.md plus two changes of sensor.twin at one
# microsecond with two contexts and a call_service. Opening it with this binary
# must migrate it (schema 3), keep every row, give each state_changed its new
# identity (so a history-backfilled twin without context is a duplicate), and
# keep the old identity of the one row whose new identity is taken.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_identity_migration.sh /path/to/homeiq-data-storage}
FIXTURE=$here/data/events_v2_main-3fc28d8.db

mkdir -p "$TEST_TMP/data"
cp "$FIXTURE" "$TEST_TMP/data/events.db"
check_eq "fixture: schema 2" 2 "$(sqlite3 "$TEST_TMP/data/events.db" 'PRAGMA user_version')"
check_eq "fixture: 13 rows" 13 "$(sqlite3 "$TEST_TMP/data/events.db" 'SELECT count(*) FROM events')"
OLD_IDS=$(sqlite3 "$TEST_TMP/data/events.db" "SELECT event_id FROM events WHERE event_type='state_changed' ORDER BY id")
OLD_OTHER=$(sqlite3 "$TEST_TMP/data/events.db" "SELECT event_id FROM events WHERE event_type!='state_changed'")

PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
PID=$LAST_PID
check "storage opens the old database" wait_healthy "$U/health" 30
check "the identity migration (schema 4) is logged" grep -q "migrated to version 4" "$TEST_TMP/storage.log"
check "the twin row that keeps its old identity is logged" \
  grep -q "1 state_changed row(s) share entity and time" "$TEST_TMP/storage.log"
check_eq "every row is still served" 13 "$(curl -s "$U/api/v1/events?limit=100" | jq '.events | length')"

# A change from HA's history has no context: same entity + time = the stored record.
post() { curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "$1"; }
REC='{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"x","origin":"HOMEIQ_BACKFILL","context_id":null}'
ANS=$(post "[$(printf "$REC" sensor.living_room_temperature 2025-06-14T08:33:20.218734Z),$(printf "$REC" \
  cover.kitchen_shutter 2025-06-14T08:40:00.993311Z),$(printf "$REC" sensor.outdoor_humidity 2025-06-14T08:35:11.000000Z)]")
check_eq "three backfilled twins of migrated rows: all duplicates" "0 3" "$(jq -r '"\(.stored) \(.duplicates)"' <<<"$ANS")"
ANS=$(post "[$(printf "$REC" sensor.twin 2025-06-14T09:00:00.500000Z)]")
check_eq "the twin pair: one of them carries the new identity" "0 1" "$(jq -r '"\(.stored) \(.duplicates)"' <<<"$ANS")"
ANS=$(post "[$(printf "$REC" sensor.living_room_temperature 2025-06-14T08:33:20.218735Z)]")
check_eq "one microsecond later is another change: stored" "1 0" "$(jq -r '"\(.stored) \(.duplicates)"' <<<"$ANS")"
check "storage exits cleanly" stop_pid "$PID"

DB=$TEST_TMP/data/events.db
check "schema 4 or later on disk" test "$(sqlite3 "$DB" 'PRAGMA user_version')" -ge 4
NEW_IDS=$(sqlite3 "$DB" "SELECT event_id FROM events WHERE event_type='state_changed' AND id <= 12 ORDER BY id")
check_eq "state_changed identities changed, but one (the twin that kept its old one)" 1 \
  "$(comm -12 <(sort <<<"$OLD_IDS") <(sort <<<"$NEW_IDS") | wc -l)"
check_eq "other event types keep their identity" "$OLD_OTHER" \
  "$(sqlite3 "$DB" "SELECT event_id FROM events WHERE event_type!='state_changed'")"
finish

#!/usr/bin/env bash
# tests/storage/test_sqlite_migration.sh -- data-storage opens a SQLite store
# written by the previous schema version and migrates it in place.
#
# Why: the README promises that a newer binary upgrades an existing store
# (PRAGMA user_version + ordered migrations) and refuses a store newer than it
# knows. The fixture below is schema version 1 as the first release wrote it
# (events + dead_letters, two indexes), with rows in it; the test checks that
# the rows survive the upgrade byte for byte, the new indexes exist, identities
# still deduplicate, and a store from the future is refused.
# Usage: test_sqlite_migration.sh DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
STO=$1
HERE=$(cd "$(dirname "$0")" && pwd)

# The current schema version: what a fresh store gets.
P=$(free_port)
start_bg fresh env DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/fresh" "$STO"
wait_healthy "http://127.0.0.1:$P/health" 20 "$LAST_PID" || bail "data-storage on a fresh store started"
CURRENT=$(curl -s "http://127.0.0.1:$P/health" | jq .backend.schema_version)
check "a fresh store reports its schema version ($CURRENT)" test "$CURRENT" -ge 2
check "fresh store: exits cleanly" stop_pid "$LAST_PID"

# ---- a version-1 store with data --------------------------------------------
REC='{"event_type":"state_changed","entity_id":"light.v1_lamp","domain":"light","time_fired":"2024-12-31T23:59:59.500000Z","context_id":"v1-ctx-1","state":"on","attributes":{"b":7.0,"a":"caf\u00e9"}}'
STORED_REC='{"event_type":"state_changed","entity_id":"light.v1_lamp","domain":"light","time_fired":"2024-12-31T23:59:59.500000Z","context_id":"v1-ctx-1","state":"on","attributes":{"b":7.0,"a":"café"}}'
EID=$(printf 'state_changed\x1flight.v1_lamp\x1f2024-12-31T23:59:59.500000Z\x1fv1-ctx-1\x1f' | sha256sum | cut -c1-32)
mkdir -p "$TEST_TMP/v1"
sqlite3 "$TEST_TMP/v1/events.db" <<SQL || bail "sqlite3 wrote the version-1 fixture"
PRAGMA journal_mode=WAL;
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  time_us INTEGER NOT NULL,
  entity_id TEXT,
  domain TEXT,
  event_type TEXT NOT NULL,
  stored_at_us INTEGER NOT NULL,
  record TEXT NOT NULL);
CREATE INDEX events_time ON events(time_us);
CREATE INDEX events_entity_time ON events(entity_id, time_us);
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY,
  received_at_us INTEGER NOT NULL,
  source TEXT NOT NULL,
  error TEXT NOT NULL,
  raw TEXT NOT NULL);
INSERT INTO events(event_id,time_us,entity_id,domain,event_type,stored_at_us,record)
  VALUES('$EID',1735689599500000,'light.v1_lamp','light','state_changed',1735689600000000,'$STORED_REC');
INSERT INTO dead_letters(received_at_us,source,error,raw) VALUES(1735689600000001,'enrichment-pipeline','bad entity_id','{"x":1}');
PRAGMA user_version=1;
SQL
check_eq "fixture: schema version 1" 1 "$(sqlite3 "$TEST_TMP/v1/events.db" 'PRAGMA user_version')"

P=$(free_port)
U=http://127.0.0.1:$P
start_bg v1 env DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/v1" "$STO"
V1_PID=$LAST_PID
wait_healthy "$U/health" 20 "$V1_PID" || bail "data-storage on the version-1 store started"
check "the log says it migrated to version 2" grep -q "sqlite schema migrated to version 2" "$TEST_TMP/v1.log"
check "... and not version 1 again" bash -c "! grep -qE 'migrated to version 1([^0-9]|\$)' '$TEST_TMP/v1.log'"
check_eq "health: the current schema version" "$CURRENT" "$(curl -s "$U/health" | jq .backend.schema_version)"
check_eq "the store's user_version is the current one" "$CURRENT" "$(sqlite3 "$TEST_TMP/v1/events.db" 'PRAGMA user_version')"
check "version 2's indexes exist" bash -c "sqlite3 '$TEST_TMP/v1/events.db' \"SELECT name FROM sqlite_master WHERE type='index'\" | grep -q events_domain_time"
curl -s "$U/api/v1/events?entity_id=light.v1_lamp" >"$TEST_TMP/got.json"
check_eq "the old event is served" 1 "$(jq .count "$TEST_TMP/got.json")"
python3 "$HERE/raw_records.py" --strip-storage-keys "$TEST_TMP/got.json" >"$TEST_TMP/got.raw"
printf '%s\n' "$STORED_REC" >"$TEST_TMP/want.raw"
check "... byte for byte as version 1 stored it" cmp "$TEST_TMP/want.raw" "$TEST_TMP/got.raw"
# Schema 4 gave state changes the identity entity + last_updated (docs/EVENTS.md section 8).
EID_V2=$(printf 'state_changed\x1f%s\x1f%s\x1f\x1f' light.v1_lamp 2024-12-31T23:59:59.500000Z | sha256sum | cut -c1-32)
check_eq "... with its event_id, migrated to the entity + last_updated identity" "$EID_V2" "$(jq -r '.events[0].event_id' "$TEST_TMP/got.json")"
check_eq "the old dead letter is served" "bad entity_id" "$(curl -s "$U/api/v1/dead-letters" | jq -r '.dead_letters[0].error')"
check_eq "the domain filter (new index) finds the old event" 1 "$(curl -s "$U/api/v1/events?domain=light" | jq .count)"
r=$(curl -s -H 'Content-Type: application/json' --data-binary "[$REC]" "$U/api/v1/events")
check_eq "re-posting the old event is a duplicate (identity unchanged)" '[0,1]' "$(jq -c '[.stored,.duplicates]' <<<"$r")"
check "migrated store: exits cleanly" stop_pid "$V1_PID"

# A second start finds nothing to migrate.
start_bg v1again env DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/v1" "$STO"
wait_healthy "$U/health" 20 "$LAST_PID" || bail "data-storage restarted on the migrated store"
check "no migration on the second start" bash -c "! grep -q 'migrated' '$TEST_TMP/v1again.log'"
check "second start: exits cleanly" stop_pid "$LAST_PID"

# ---- a store from a newer version is refused ----------------------------------
sqlite3 "$TEST_TMP/v1/events.db" "PRAGMA user_version=$((CURRENT + 1))"
timeout 20 env DATA_STORAGE_PORT=$P DATA_DIR="$TEST_TMP/v1" "$STO" >"$TEST_TMP/newer.log" 2>&1
RC=$?
check "a store newer than the binary: refuses to start (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
check "... saying to upgrade" grep -q "this binary knows up to $CURRENT (upgrade it)" "$TEST_TMP/newer.log"
finish

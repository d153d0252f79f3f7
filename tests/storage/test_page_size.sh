#!/usr/bin/env bash
# test_page_size.sh /path/to/homeiq-data-storage -- the SQLite file's page size (issue 15,
# SQLITE_PAGE_SIZE, retention_sqlite_prepare_file): a new file gets SQLite's 4 KiB pages by
# default, SQLITE_PAGE_SIZE=16384 gives 16 KiB (cheaper in bursts, dearer in trickles:
# docs/BENCHMARKS.md), and the WAL is checkpointed every 32 MiB whatever the page size; an
# existing 4 KiB file (data/events_v9_main-e3aed48.db, made by an older binary) is opened as it
# is and keeps every row, and SQLITE_VACUUM_ON_START=1 rewrites it once with the page size
# asked for, in WAL mode again, every row kept and read back alike.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_page_size.sh /path/to/homeiq-data-storage}
FIXTURE=$here/data/events_v9_main-e3aed48.db

start_sto() { # start_sto DIR NAME [env...]
  local dir=$1 name=$2; shift 2
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_DIR="$dir" DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  PID=$LAST_PID
  wait_healthy "$U/health" 30 "$PID" || bail "data-storage ($name) starts"
}
pragma() { sqlite3 "$1" "PRAGMA $2"; }
health() { curl -s "$U/health" | jq -r "$1"; }
post() { curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "$1" | jq -r '"\(.stored) \(.duplicates)"'; }
EV='[{"event_type":"state_changed","entity_id":"sensor.page_t","time_fired":"2026-06-01T14:00:00.000001Z","context_id":"p1","state":"1","attributes":{}}]'

# ---- a new file ------------------------------------------------------------------------------
start_sto "$TEST_TMP/default" default
check_eq "a new file, by default: 4 KiB pages in /health, a checkpoint every 8192 frames" "4096 8192" \
  "$(health '"\(.backend.retention.page_size) \(.backend.retention.wal_autocheckpoint)"')"
check "storage exits cleanly" stop_pid "$PID"
export SQLITE_PAGE_SIZE=16384
start_sto "$TEST_TMP/new" new
check_eq "SQLITE_PAGE_SIZE=16384: a new file with 16 KiB pages" 16384 "$(health .backend.retention.page_size)"
check_eq "... and a checkpoint every 32 MiB of WAL: 2048 frames" 2048 "$(health .backend.retention.wal_autocheckpoint)"
check_eq "an event is stored" "1 0" "$(post "$EV")"
check "storage exits cleanly" stop_pid "$PID"
check_eq "the file has 16 KiB pages, WAL, auto_vacuum=incremental" "16384|wal|2" \
  "$(printf '%s|%s|%s' "$(pragma "$TEST_TMP/new/events.db" page_size)" "$(pragma "$TEST_TMP/new/events.db" journal_mode)" \
     "$(pragma "$TEST_TMP/new/events.db" auto_vacuum)")"
start_sto "$TEST_TMP/small" small SQLITE_PAGE_SIZE=8192
check_eq "SQLITE_PAGE_SIZE=8192: a new file with 8 KiB pages, a checkpoint every 4096 frames" "8192 4096" \
  "$(health '"\(.backend.retention.page_size) \(.backend.retention.wal_autocheckpoint)"')"
check "storage exits cleanly" stop_pid "$PID"

# ---- an existing 4 KiB file ------------------------------------------------------------------
mkdir -p "$TEST_TMP/old"
cp "$FIXTURE" "$TEST_TMP/old/events.db"
DB=$TEST_TMP/old/events.db
check_eq "fixture: 4 KiB pages, 14 events" "4096|14" "$(pragma "$DB" page_size)|$(sqlite3 "$DB" 'SELECT count(*) FROM events')"
start_sto "$TEST_TMP/old" keep
check_eq "an existing file keeps its 4 KiB pages (SQLITE_PAGE_SIZE=16384)" 4096 "$(health .backend.retention.page_size)"
check_eq "... with a checkpoint every 32 MiB of WAL: 8192 frames" 8192 "$(health .backend.retention.wal_autocheckpoint)"
check "... and the log says how to convert it" grep -q "SQLITE_VACUUM_ON_START=1 converts it" "$TEST_TMP/keep.log"
curl -s "$U/api/v1/events?limit=100" | jq -c '[.events[] | [.event_id, .entity_id, .time_fired]]' >"$TEST_TMP/before.json"
check "storage exits cleanly" stop_pid "$PID"
ROWS="SELECT id, event_id, time_us, entity_id, record, area_id, home_id FROM events ORDER BY id"
sqlite3 "$DB" "$ROWS" >"$TEST_TMP/old.rows"

start_sto "$TEST_TMP/old" convert SQLITE_VACUUM_ON_START=1
check "SQLITE_VACUUM_ON_START=1: the conversion is logged" grep -q "16384-byte pages (VACUUM" "$TEST_TMP/convert.log"
check_eq "... the file now has 16 KiB pages" 16384 "$(health .backend.retention.page_size)"
check_eq "... and auto_vacuum=incremental" incremental "$(health .backend.retention.auto_vacuum)"
check_eq "... every event reads back alike" "$(cat "$TEST_TMP/before.json")" \
  "$(curl -s "$U/api/v1/events?limit=100" | jq -c '[.events[] | [.event_id, .entity_id, .time_fired]]')"
check_eq "a new event is stored after the conversion" "1 0" "$(post "$EV")"
check "storage exits cleanly" stop_pid "$PID"
check_eq "the file is in WAL mode again" wal "$(pragma "$DB" journal_mode)"
check_eq "every old row unchanged" "$(cat "$TEST_TMP/old.rows")" "$(sqlite3 "$DB" "$ROWS" | head -n "$(wc -l <"$TEST_TMP/old.rows")")"
check_eq "integrity_check" ok "$(pragma "$DB" integrity_check)"
start_sto "$TEST_TMP/old" again SQLITE_VACUUM_ON_START=1
check "a converted file is not rewritten again" bash -c "! grep -q 'VACUUM' '$TEST_TMP/again.log'"
check "storage exits cleanly" stop_pid "$PID"
finish

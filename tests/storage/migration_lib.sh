# tests/storage/migration_lib.sh -- sourced by the tests of a SQLite schema migration run on a fixture made by
# main's binary before it (test_lean_migration.sh: migration 10, test_domain_migration.sh: migration 11):
# the fixture copied into a data dir, the rows to compare before and after, data-storage's start, the refusal
# on a disk too small (with the fault shim) and the requests and plans every such test reads.
#
# Why: test_domain_migration.sh began as a copy of test_lean_migration.sh's setup (sessions 8-9); one copy
# means a fix to how the fixture is opened, or to what "every old row unchanged" compares, reaches both.
#
# Needs common.sh sourced and BIN (homeiq-data-storage) set.

# mig_fixture FILE : FILE copied to $TEST_TMP/data/events.db (DB); ROWS selects every column of every event, in
# id order, and its answer on the fixture is kept in $TEST_TMP/old.rows ("every old row unchanged")
mig_fixture() {
  mkdir -p "$TEST_TMP/data"
  cp "$1" "$TEST_TMP/data/events.db"
  DB=$TEST_TMP/data/events.db
  ROWS="SELECT id, event_id, time_us, entity_id, domain, event_type, stored_at_us, record, kind, state, value, area_id, floor_id, device_id, platform, home_id FROM events ORDER BY id"
  q "$ROWS" >"$TEST_TMP/old.rows"
}
q() { sqlite3 "$DB" "$1"; }
# plan SQL : its EXPLAIN QUERY PLAN on one line
plan() { q "EXPLAIN QUERY PLAN $1" | tr '\n' ' '; }

# start_sto NAME [VAR=VALUE...] : data-storage on the fixture's data dir (log $TEST_TMP/NAME.log); sets PORT, U,
# PID; does not wait (a start that must fail is watched too)
start_sto() {
  local name=$1; shift
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  PID=$LAST_PID
}
# mig_start N : data-storage on the fixture (log sto.log): it opens the database healthy and logs migration N
mig_start() {
  start_sto sto
  check "storage opens the schema-$(($1 - 1)) database" wait_healthy "$U/health" 30 "$PID"
  check "migration $1 is logged" grep -q "sqlite schema migrated to version $1" "$TEST_TMP/sto.log"
}
# mig_no_room N WHAT SHIM : data-storage with the fault shim saying 4 KiB are free must refuse migration N (WHAT:
# its name in the log) with the reason and exit with an error; the test then checks that nothing changed
mig_no_room() {
  start_sto short LD_PRELOAD="$3" HOMEIQ_FAULT_FREE_BYTES=4096
  check "with 4 KiB free, storage says why: migration $1 needs room" \
    wait_for 30 grep -q "migration $1 ($2) needs about .* MB free" "$TEST_TMP/short.log"
  stop_pid "$PID" 10; local rc=$?   # the status it exited with; a server still running exits 0 here
  check "... and exits with an error, not healthy" test "$rc" -ne 0 -a "$rc" -lt 124
}

# post BODY : "stored duplicates" of POST /api/v1/events
post() { curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "$1" | jq -r '"\(.stored) \(.duplicates)"'; }
# ids QUERY : the event_ids /api/v1/events?QUERY answers, comma-separated
ids() { curl -s "$U/api/v1/events?$1" | jq -r '[.events[].event_id] | join(",")'; }

#!/usr/bin/env bash
# tests/security/test_backup_safety.sh -- backups never overwrite what they should not.
#
# Why: `homeiqctl backup --out` pointed at the live database (or at last
# week's backup) must not destroy it, and `restore` must never swap the store
# under a running data-storage, even with --force and even when that
# data-storage is not where DATA_STORAGE_URL points.
# Usage: test_backup_safety.sh HOMEIQCTL DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
CTL=$1 STO_BIN=$2
unset HOMEIQ_API_TOKEN HOMEIQ_API_TOKEN_FILE
PORT=$(free_port)
export DATA_DIR=$TEST_TMP/data DATA_STORAGE_URL=http://127.0.0.1:$(free_port)   # nothing answers there
start_bg sto env DATA_STORAGE_PORT=$PORT "$STO_BIN"
wait_healthy "http://127.0.0.1:$PORT/health" 20 || { check "data-storage starts" false; finish; }
curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary \
  '[{"event_type":"state_changed","entity_id":"sensor.safe","domain":"sensor","time_fired":"2025-01-01T00:00:00Z","state":"1","context_id":"safe-1"}]' \
  "http://127.0.0.1:$PORT/api/v1/events"
DB=$DATA_DIR/events.db
count() { sqlite3 "$1" 'SELECT count(*) FROM events'; }
check_eq "one event stored" 1 "$(count "$DB")"

for target in "$DB" "$DB-wal" "$DB-shm" "$DATA_DIR/../data/events.db" "$DB.lock"; do
  "$CTL" backup --out "$target" --force >"$TEST_TMP/live.log" 2>&1
  RC=$?
  check "backup over the live store file $(basename "$target") refused, even with --force (exit $RC)" test "$RC" -ne 0
  check "... saying why" grep -q 'live store' "$TEST_TMP/live.log"
done
ln -s "$DB" "$TEST_TMP/link.db"
"$CTL" backup --out "$TEST_TMP/link.db" --force >/dev/null 2>&1
check "backup through a symlink to the live store refused" test $? -ne 0
check_eq "the live store is intact" 1 "$(count "$DB")"

echo "last week's backup" >"$TEST_TMP/old.db"
"$CTL" backup --out "$TEST_TMP/old.db" >"$TEST_TMP/exists.log" 2>&1
RC=$?
check "backup over an existing file refused without --force (exit $RC)" test "$RC" -ne 0
check "... naming --force" grep -q -- '--force' "$TEST_TMP/exists.log"
check_eq "... and the file is untouched" "last week's backup" "$(cat "$TEST_TMP/old.db")"
"$CTL" backup --out "$TEST_TMP/old.db" --force >/dev/null 2>&1
check_eq "with --force it is replaced by a good backup" 1 "$(count "$TEST_TMP/old.db")"

"$CTL" restore --from "$TEST_TMP/old.db" --force >"$TEST_TMP/restore.log" 2>&1
RC=$?
check "restore refused while data-storage holds the store, even with --force (exit $RC)" test "$RC" -ne 0
check "... naming the process" grep -q "in use by data-storage (pid $PID_sto)" "$TEST_TMP/restore.log"
check "... and nothing was moved aside" bash -c "! ls '$DATA_DIR' | grep -q pre-restore"

P2=$(free_port)
DATA_STORAGE_PORT=$P2 timeout 10 "$STO_BIN" >"$TEST_TMP/second.log" 2>&1
RC=$?
check "a second data-storage on the same DATA_DIR refuses to start (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 124
check "... saying the store is in use" grep -q 'in use by another process' "$TEST_TMP/second.log"

stop_pid "$PID_sto"; check_eq "data-storage exits cleanly" 0 $?
check_eq "the live store still matches (the refusals wrote nothing)" 1 "$(count "$DB")"
"$CTL" restore --from "$TEST_TMP/old.db" >"$TEST_TMP/restore2.log" 2>&1
check_eq "once it stopped, restore works" 0 $?
finish

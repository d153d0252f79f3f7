#!/usr/bin/env bash
# tests/cli/test_backup.sh -- `homeiqctl backup` under load, then `restore`.
#
# Why: a backup is only worth something if it is consistent and complete. A
# loader keeps posting batches to a real data-storage (SQLite) while the backup
# copies the store in small steps; every batch acked (200, stored) before the
# backup began must be in the restored store, which must pass
# PRAGMA integrity_check and be servable by a fresh data-storage.
# Usage: test_backup.sh HOMEIQCTL DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
CTL=$1 STORAGE=$2
ENTITY=sensor.backup_load
PER_BATCH=20

PORT=$(free_port)
export DATA_DIR=$TEST_TMP/data
start_bg storage env DATA_STORAGE_PORT="$PORT" "$STORAGE"
wait_healthy "http://127.0.0.1:$PORT/health" 20 "$LAST_PID" || bail "data-storage did not start"
export DATA_STORAGE_URL=http://127.0.0.1:$PORT

# batch_json I: PER_BATCH enriched records; batch I, event J has time_fired
# 2025-01-01 + I seconds + J ms (unique identity per event).
batch_json() {
  local i=$1 j sep="" h m s
  h=$((i / 3600)); m=$((i / 60 % 60)); s=$((i % 60))
  printf '['
  for ((j = 0; j < PER_BATCH; j++)); do
    printf '%s{"event_type":"state_changed","entity_id":"%s","domain":"sensor","time_fired":"2025-01-01T%02d:%02d:%02d.%03d000Z","state":"%d","context_id":"ctx-%d-%d","attributes":{"friendly_name":"Backup load","pad":"%0200d"}}' \
      "$sep" "$ENTITY" "$h" "$m" "$s" "$j" "$((i * 100 + j))" "$i" "$j" 0
    sep=,
  done
  printf ']'
}

# The loader: posts batch after batch, logs "I" for every batch acked with 200
# and stored+duplicates == PER_BATCH. Stops when $TEST_TMP/stop exists.
loader() {
  local i=0 out
  while [ ! -e "$TEST_TMP/stop" ]; do
    out=$(batch_json "$i" | curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' \
          --data-binary @- "$DATA_STORAGE_URL/api/v1/events")
    if [ "${out##*$'\n'}" = 200 ] && \
       [ "$(printf '%s' "${out%$'\n'*}" | jq '.stored + .duplicates')" = "$PER_BATCH" ]; then
      echo "$i" >>"$TEST_TMP/acked"
    fi
    i=$((i + 1))
  done
}
: >"$TEST_TMP/acked"
loader &
LOADER=$!
TEST_PIDS+=("$LOADER")

# Let some data accumulate, then freeze the list of acked batches and back up.
for _ in $(seq 600); do [ "$(wc -l <"$TEST_TMP/acked")" -ge 40 ] && break; sleep 0.05; done
cp "$TEST_TMP/acked" "$TEST_TMP/acked_before"
BEFORE=$(wc -l <"$TEST_TMP/acked_before")
check "loader acked batches before the backup ($BEFORE)" test "$BEFORE" -ge 40
# Small steps with sleeps: the copy spans many steps while the loader writes.
"$CTL" backup --out "$TEST_TMP/backup.db" --step-pages 8 --sleep 50ms >"$TEST_TMP/backup.log" 2>&1
RC=$?
AFTER=$(wc -l <"$TEST_TMP/acked")
touch "$TEST_TMP/stop"; wait "$LOADER"
cat "$TEST_TMP/backup.log"
check_eq "homeiqctl backup exits 0" 0 "$RC"
check "the loader kept committing during the backup ($BEFORE -> $AFTER batches)" test "$AFTER" -gt "$BEFORE"
check_eq "backup passes PRAGMA integrity_check" ok "$(sqlite3 "$TEST_TMP/backup.db" 'PRAGMA integrity_check')"
check "backup is one self-contained file (no -wal next to it)" test ! -e "$TEST_TMP/backup.db-wal"

# Restore refuses while a data-storage answers at DATA_STORAGE_URL.
"$CTL" restore --from "$TEST_TMP/backup.db" --data-dir "$TEST_TMP/restored" >"$TEST_TMP/refuse.log" 2>&1
RC=$?
check "restore refuses while data-storage is running (exit $RC)" test "$RC" -ne 0
check "... and says why" grep -q "data-storage is running" "$TEST_TMP/refuse.log"
check "... and touched nothing" test ! -e "$TEST_TMP/restored/events.db"
# --force: the data-storage answering at DATA_STORAGE_URL serves another store
# (DATA_DIR=$TEST_TMP/data), so restoring into a directory it does not hold goes ahead.
"$CTL" restore --from "$TEST_TMP/backup.db" --data-dir "$TEST_TMP/restored_force" --force >"$TEST_TMP/force.log" 2>&1
RC=$?
cat "$TEST_TMP/force.log"
check_eq "restore --force goes ahead while a data-storage answers (another store)" 0 "$RC"
check_eq "... the restored store passes PRAGMA integrity_check" ok \
  "$(sqlite3 "$TEST_TMP/restored_force/events.db" 'PRAGMA integrity_check')"
check_eq "... and holds the backup's events" "$(sqlite3 "$TEST_TMP/backup.db" 'SELECT count(*) FROM events')" \
  "$(sqlite3 "$TEST_TMP/restored_force/events.db" 'SELECT count(*) FROM events')"

# Restore refuses a damaged backup.
head -c 8192 "$TEST_TMP/backup.db" >"$TEST_TMP/damaged.db"
head -c 20000 /dev/urandom >>"$TEST_TMP/damaged.db"
P2=$(free_port)
DATA_STORAGE_URL=http://127.0.0.1:$P2 "$CTL" restore --from "$TEST_TMP/damaged.db" \
  --data-dir "$TEST_TMP/restored" >"$TEST_TMP/damaged.log" 2>&1
check "restore refuses a damaged backup" test $? -ne 0
check "... naming the file" grep -q "damaged.db is not a usable backup" "$TEST_TMP/damaged.log"

# Restore into a directory that already holds a store: the old one is kept.
mkdir -p "$TEST_TMP/restored"
echo "old store" >"$TEST_TMP/restored/events.db"
echo "stale wal" >"$TEST_TMP/restored/events.db-wal"
DATA_STORAGE_URL=http://127.0.0.1:$P2 "$CTL" restore --from "$TEST_TMP/backup.db" \
  --data-dir "$TEST_TMP/restored" >"$TEST_TMP/restore.log" 2>&1
RC=$?
cat "$TEST_TMP/restore.log"
check_eq "restore exits 0 when data-storage is stopped" 0 "$RC"
check "the previous store was kept aside" bash -c "ls '$TEST_TMP/restored/' | grep -q 'events.db.pre-restore-.*-wal'"
check "no stale -wal next to the restored store" test ! -e "$TEST_TMP/restored/events.db-wal"
check_eq "restored store passes PRAGMA integrity_check" ok \
  "$(sqlite3 "$TEST_TMP/restored/events.db" 'PRAGMA integrity_check')"

# A fresh data-storage on the restored directory serves every event acked
# before the backup began.
start_bg storage2 env DATA_STORAGE_PORT="$P2" DATA_DIR="$TEST_TMP/restored" "$STORAGE"
wait_healthy "http://127.0.0.1:$P2/health" 20 "$LAST_PID" || bail "data-storage did not start on the restored store"
curl -s "http://127.0.0.1:$P2/api/v1/events?entity_id=$ENTITY&limit=10000" |
  jq -r '.events[].context_id' | sort -u >"$TEST_TMP/restored_ids"
while read -r i; do
  for ((j = 0; j < PER_BATCH; j++)); do echo "ctx-$i-$j"; done
done <"$TEST_TMP/acked_before" | sort -u >"$TEST_TMP/expected_ids"
MISSING=$(comm -23 "$TEST_TMP/expected_ids" "$TEST_TMP/restored_ids" | wc -l)
check_eq "every event acked before the backup began is in the restored store ($(wc -l <"$TEST_TMP/expected_ids") events)" \
  0 "$MISSING"
check "the restored store holds nothing beyond what the loader posted" \
  test "$(wc -l <"$TEST_TMP/restored_ids")" -le "$(((AFTER + 1) * PER_BATCH))"

stop_pid "$PID_storage2"; check_eq "data-storage (restored) exits cleanly" 0 $?
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
finish

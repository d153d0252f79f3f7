#!/usr/bin/env bash
# purge_fsync.sh -- a purge step's commit does not fsync; every batch's does,
# and a purge loses nothing it should keep. On the real data-storage binary,
# its system calls seen by strace.
#
# Use: purge_fsync.sh /path/to/homeiq-data-storage
# Why: a purge step that fsyncs the WAL holds the loop (and every POST behind
# it) for the length of a disk flush -- 5-50 ms under load, the largest share
# of a step (bench/purge_latency.sh). Its commit needs no flush of its own: the
# WAL is written in order, so the next batch's fsync (synchronous=FULL) makes
# the purge durable with it, and a step a power cut undoes is purged again.
# What must hold, and is checked here:
#  - the purge steps make no fsync/fdatasync of events.db-wal but the new WAL
#    header's (the old code made one per step);
#  - each acked batch made one before its 200 (the ack contract: one per POST
#    at least, so synchronous is FULL again after every step);
#  - exactly the events older than RETENTION_DAYS are purged, every newer one kept.
# Checkpoints (which fsync the WAL too) are kept out: SQLITE_WAL_CHECKPOINTER=0
# and far fewer frames than wal_autocheckpoint (32 MiB of WAL: with 4 KiB pages 8192
# frames, the purge's ~3,000 stay under it; with 16 KiB pages they would not).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: purge_fsync.sh /path/to/homeiq-data-storage}
command -v strace >/dev/null || { skip "strace not installed"; finish; }
export STORAGE_BACKEND=sqlite LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216 STORAGE_MIN_FREE_BYTES=0 SQLITE_PAGE_SIZE=4096
echo "# a purge step commits without fsync; batches fsync (SQLite)"
jqe() { jq -e "$@" >/dev/null; }

# 1,200 events older than 31 days and 800 younger than 29: none near the cut-off
# (30 days, floored to the hour), whatever the hour the purge runs in
NOW=$(date +%s)
jq -nc --argjson now "$NOW" '{events: [range(2000) as $k | "sensor.p\($k % 7)" as $e |
  (if $k < 1200 then $now - 31 * 86400 - $k * 40 else $now - 29 * 86400 + ($k - 1200) * 40 end) as $t |
  {event_type: "state_changed", entity_id: $e, domain: "sensor", object_id: ($e | split(".")[1]),
   time_fired: ($t | todate), context_id: "c\($k)", state: ($k % 50 | tostring), value: ($k % 50),
   state_class: "measurement", attributes: {}}]}' >"$TEST_TMP/events.json"
PORT=$(free_port); U=http://127.0.0.1:$PORT
start_bg storage env DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT "$BIN"
wait_healthy "$U/health" 30 "$LAST_PID" || bail "data-storage starts"
check_eq "2000 events stored (1200 older than 31 days)" 2000 \
  "$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/events.json" | jq .stored)"
check "stop: exit 0" stop_pid "$LAST_PID"

# the purge, in steps of at most 20 rows, under strace (every thread)
PORT=$(free_port); U=http://127.0.0.1:$PORT
# (LeakSanitizer cannot run under ptrace: off for this run only; the first run and
# the other suites keep it)
start_bg strace strace -f -y -qq -e trace=fsync,fdatasync -o "$TEST_TMP/sync.trace" \
  env ASAN_OPTIONS="${ASAN_OPTIONS//detect_leaks=1/detect_leaks=0}" DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT RETENTION_DAYS=30 PURGE_INTERVAL_MS=100 PURGE_STEP_MS=5 \
  PURGE_STEP_ROWS=20 SQLITE_WAL_CHECKPOINTER=0 "$BIN"
SPID=$LAST_PID
wait_healthy "$U/health" 60 "$SPID" || bail "data-storage starts under strace"
purged() { curl -s "$U/health" | jqe '.backend.retention.events_purged == 1200 and .backend.retention.purging == false'; }
check "the 1200 events older than 30 days purged" wait_for 120 purged
steps=$(curl -s "$U/metrics" | awk '/^homeiq_storage_purge_steps_total\{result="ok"\}/ {print $2}')
check "the purge took at least 60 steps (20 rows each: $steps)" [ "${steps:-0}" -ge 60 ]
syncs_purge=$(grep -c 'events.db-wal>' "$TEST_TMP/sync.trace")
# SQLite syncs a new WAL's header once whatever the setting (the first step
# creates the file: a clean stop removed it): 1; the old code, one per step
check "the purge's $steps steps fsynced the WAL at most once (its header): $syncs_purge" [ "$syncs_purge" -le 1 ]

# ten batches, each acked only after its fsync
ok=0
for i in $(seq 10); do
  before=$(grep -c 'events.db-wal>' "$TEST_TMP/sync.trace")
  st=$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary \
    "{\"events\":[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.live\",\"time_fired\":\"$(date -u +%FT%T.%NZ)\",\"context_id\":\"live-$i\",\"state\":\"$i\",\"attributes\":{}}]}" | jq .stored)
  after=$(grep -c 'events.db-wal>' "$TEST_TMP/sync.trace")
  [ "$st" = 1 ] && [ "$after" -gt "$before" ] && ok=$((ok + 1))
done
check_eq "each of 10 batches fsynced the WAL before its 200" 10 "$ok"

# stop: data-storage (strace's child) first; strace then ends with its status
kid=$(pgrep -P "$SPID" | head -n 1)
[ -n "$kid" ] && kill -TERM "$kid"
check "stop: exit 0" stop_pid "$SPID"
check_eq "the 800 younger events and the 10 new ones kept" 810 \
  "$(sqlite3 "$TEST_TMP/data/events.db" "SELECT count(*) FROM events")"
check_eq "none older than 30 days left" 0 \
  "$(sqlite3 "$TEST_TMP/data/events.db" "SELECT count(*) FROM events WHERE time_us < ($NOW - 30 * 86400) * 1000000")"
finish

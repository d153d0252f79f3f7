#!/usr/bin/env bash
# test_ack_durable.sh STO SHIM -- data-storage (SQLite) answers 200 for a batch only after
# the transaction holding it committed durably, also with the writer thread
# (store_sqlite_writer.h): the disk hangs in the middle of a commit (fault_shim: the
# first write to the WAL after arming never returns -- the COMMIT's first frame), more
# batches are posted while it hangs, storage is killed (SIGKILL) there and restarted
# without the fault: every event of every batch answered 200 must be stored. A build
# that answers a batch before its COMMIT returned (reported done after the inserts, or
# at hand-over to the writer) acks a batch whose frames never reached the WAL and fails
# here (seen with that ordering patched in). A hang in the fdatasync instead would not
# tell: the frames written before it survive a SIGKILL in the page cache.
# The WAL's writes go through store_sqlite_vfs.c, which gathers a commit's frames and
# writes them at the WAL's sync: the hung write is that gathering's, so the kill comes
# while frames are buffered and before the fsync. ACK_N=1500 ACK_NTH=2
# (fault_storage_ack_durable_large): batches larger than the buffer, the hang in the
# second write of a commit, i.e. part of its frames in the file, the rest still buffered.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/sensor_batch.sh"
STO=${1:?}; SHIM=${2:?}
PORT=$(free_port)
ARM=$TEST_TMP/arm
BATCHES=5
N=${ACK_N:-40}
NTH=${ACK_NTH:-1}

post() { # post NAME -> the HTTP status (000: no answer within 3 s)
  sensor_batch "ack_$1" $N >"$TEST_TMP/$1.json"
  curl -s -o "$TEST_TMP/$1.out" -w '%{http_code}' --max-time 3 -XPOST -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/$1.json" "http://127.0.0.1:$PORT/api/v1/events"
}
stored() { # stored NAME -> how many of its events the store holds
  curl -s "http://127.0.0.1:$PORT/api/v1/events?limit=10000" |
    jq --arg p "sensor.ack_$1_" '[.events[] | select(.entity_id | startswith($p))] | length'
}

start_bg storage env LD_PRELOAD="$SHIM" HOMEIQ_FAULT="write:events.db-wal:$NTH:stall" HOMEIQ_FAULT_ARM="$ARM" \
  DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT MAX_BODY_BYTES=16777216 "$STO"
STO_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 30 || exit 1
check_eq "a batch before the hang is answered 200" "200" "$(post before)"

touch "$ARM"   # from now on, the NTH write to events.db-wal never returns
acked=(before)
for b in $(seq 1 $BATCHES); do
  code=$(post "b$b")
  echo "# batch b$b (posted during the hang): HTTP $code"
  [ "$code" = 200 ] && acked+=("b$b")
done
fired() { grep -q "fault_shim: write(.*events.db-wal) stalls" "$TEST_TMP/storage.log"; }
check "the WAL's write hung in a commit" fired
kill -9 "$STO_PID"
wait "$STO_PID" 2>/dev/null

start_bg storage2 env DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT "$STO"
STO2_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 30 || exit 1
echo "# answered 200: ${acked[*]}"
for b in "${acked[@]}"; do
  check_eq "batch $b was answered 200: all $N of its events are stored after the kill" "$N" "$(stored "$b")"
done
check "storage exits cleanly" stop_pid "$STO2_PID"
finish

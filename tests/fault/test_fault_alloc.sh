#!/usr/bin/env bash
# test_fault_alloc.sh SHIM ING ENR STO MIN NTH -- out of memory in ingestion's
# spool read path and forwarder (issue 14: "allocation failure injection").
# 22 events of 8 KB are accepted into the spool while enrichment is down;
# ingestion is restarted under the fault shim with HOMEIQ_FAULT=alloc:MIN:NTH,
# armed after start-up (the NTH allocation of >= MIN bytes then fails), and
# enrichment comes up. Seen in the printed stacks: MIN=65536 fails the batch
# body grown while the spool is read (spool_read -> ingest_forwarder_record_cb ->
# ingest_forwarder_body_add: finding 4's out-of-memory branch), MIN=32768 the request
# copy when a batch is sent (ingest_forwarder_send -> httpc_send -> evbuffer_add). Every accepted event must be stored exactly once, the
# spool must drain, and ingestion must neither crash nor exit: an allocation
# that fails leaves the records where they are and is retried.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
SHIM=${1:?}; ING=${2:?}; ENR=${3:?}; STO=${4:?}; MIN=${5:-65536}; NTH=${6:-1}
N=22
STO_PORT=$(free_port); ENR_PORT=$(free_port); ING_PORT=$(free_port)
ARM="$TEST_TMP/arm"
FAULT="alloc:$MIN:$NTH"
echo "# fault in ingestion after its restart: $FAULT"

start_bg storage env DATA_DIR="$TEST_TMP/storage" DATA_STORAGE_PORT=$STO_PORT "$STO"
wait_healthy "http://127.0.0.1:$STO_PORT/health" 30 || bail "storage started"
ing_env=(HOME_ASSISTANT_URL=none DATA_DIR="$TEST_TMP/ingestion" WEBSOCKET_INGESTION_PORT=$ING_PORT
         SPOOL_SEGMENT_BYTES=65536 ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$ENR_PORT
         FORWARD_RETRY_MIN_MS=50 FORWARD_RETRY_MAX_MS=200)
start_bg ingestion env "${ing_env[@]}" "$ING"
ING_PID=$LAST_PID
wait_http "http://127.0.0.1:$ING_PORT/health" 30 || bail "ingestion started"

pad=$(head -c 8000 /dev/zero | tr '\0' 'p')
ev=""
for i in $(seq 1 $N); do
  ev="$ev${ev:+,}{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.oom_$i\",\"state\":\"$i\",\"time_fired\":\"2025-01-01T00:00:$(printf %02d $i)Z\",\"attributes\":{\"pad\":\"$pad\"}}"
done
echo "[$ev]" >"$TEST_TMP/body.json"
code=$(curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
  --data-binary @"$TEST_TMP/body.json" "http://127.0.0.1:$ING_PORT/api/v1/events/forward")
check_eq "forward: $N events accepted (durable) while enrichment is down" "200 $N" "$code $(jq .accepted "$TEST_TMP/resp")"
check "ingestion stops cleanly with a full spool" stop_pid "$ING_PID"

# Armed once the restart is done (start-up's own allocations -- segment list,
# recovery read -- failing just end start-up with an error, nothing lost).
# Small batches, so records are read from the spool after arming.
start_bg ingestion2 env LD_PRELOAD="$SHIM" HOMEIQ_FAULT="$FAULT" HOMEIQ_FAULT_ARM="$ARM" "${ing_env[@]}" \
  FORWARD_BATCH_MAX_BYTES=40000 "$ING"
ING_PID=$LAST_PID
wait_http "http://127.0.0.1:$ING_PORT/health" 30 || bail "ingestion restarted under the fault shim"
touch "$ARM"
start_bg enrichment env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO_PORT "$ENR"
wait_healthy "http://127.0.0.1:$ENR_PORT/health" 30 || bail "enrichment started"

fired() { grep -q "fault_shim: alloc" "$TEST_TMP/ingestion2.log"; }
drained() { [ "$(curl -s "http://127.0.0.1:$ING_PORT/health" | jq .spool.depth)" = 0 ]; }
for i in $(seq 1 150); do drained && fired && break; sleep 0.2; done
check "the injected allocation failure fired" fired
check "ingestion's spool drained" drained
stored=$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=1000" |
  jq '[.events[] | select(.entity_id | startswith("sensor.oom_"))] | [length, (map(.entity_id) | unique | length)]' -c)
check_eq "every accepted event stored exactly once" "[$N,$N]" "$stored"
check "ingestion is still running and exits cleanly" stop_pid "$ING_PID"
grep -A12 "fault_shim: alloc" "$TEST_TMP/ingestion2.log" | sed "s/^/# /"
finish

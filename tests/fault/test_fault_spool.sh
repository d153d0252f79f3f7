#!/usr/bin/env bash
# test_fault_spool.sh SHIM ING ENR STO [WHO FAULT] -- I/O faults in real
# processes (LD_PRELOAD fault_shim, HOMEIQ_FAULT=FAULT in process WHO:
# ingestion or storage); every case must end with every accepted event
# stored exactly once. Default: finding 4 of issue 14, the spool's reader
# fails to open the next segment file once (the 2nd read-only open of a .seg
# fails with EIO): on the old code the records already handed over were
# dropped with the partial batch (the issue saw 12 of 22 lost; this test saw
# the spool never drain, 0 of 22 stored).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
SHIM=${1:?}; ING=${2:?}; ENR=${3:?}; STO=${4:?}
WHO=${5:-ingestion}; FAULT=${6:-open_rdonly:.seg:2}
N=22
echo "# fault in $WHO: $FAULT"
ING_PRE=(); STO_PRE=()
if [ "$WHO" = storage ]; then STO_PRE=(LD_PRELOAD="$SHIM" HOMEIQ_FAULT="$FAULT"); else ING_PRE=(LD_PRELOAD="$SHIM" HOMEIQ_FAULT="$FAULT"); fi

STO_PORT=$(free_port); ENR_PORT=$(free_port); ING_PORT=$(free_port)
# A count written "+N" (storage) means the Nth call after start-up: start-up's
# own calls (schema migrations, pragmas) are counted in a traced dry run on a
# fresh store first, so a new migration does not move the fault into start-up.
if [ "$WHO" = storage ]; then
  IFS=: read -r f_call f_pat f_nth f_rest <<<"$FAULT"
  if [ "${f_nth#+}" != "$f_nth" ]; then
    P0=$(free_port)
    LD_PRELOAD="$SHIM" HOMEIQ_FAULT="$f_call:$f_pat:999999999" HOMEIQ_FAULT_TRACE=1 DATA_DIR="$TEST_TMP/dry" \
      DATA_STORAGE_PORT=$P0 "$STO" >"$TEST_TMP/dry.log" 2>&1 &
    DRY=$!
    for _ in $(seq 100); do grep -q 'listening on' "$TEST_TMP/dry.log" && break; sleep 0.1; done
    kill "$DRY" 2>/dev/null; wait "$DRY" 2>/dev/null
    base=$(awk '/listening on/ {exit} /fault_shim: trace/' "$TEST_TMP/dry.log" | grep -c "trace $f_call($f_pat\|trace $f_call(.*$f_pat")
    FAULT="$f_call:$f_pat:$((base + ${f_nth#+}))${f_rest:+:$f_rest}"
    STO_PRE=(LD_PRELOAD="$SHIM" HOMEIQ_FAULT="$FAULT")
    echo "# start-up makes $base $f_call call(s) on $f_pat: the fault is call $((base + ${f_nth#+}))"
  fi
fi
start_bg storage env "${STO_PRE[@]}" DATA_DIR="$TEST_TMP/storage" DATA_STORAGE_PORT=$STO_PORT "$STO"
wait_healthy "http://127.0.0.1:$STO_PORT/health" 30 || exit 1
start_bg enrichment env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO_PORT "$ENR"
wait_healthy "http://127.0.0.1:$ENR_PORT/health" 30 || exit 1
start_bg ingestion env "${ING_PRE[@]}" HOME_ASSISTANT_URL=none \
  DATA_DIR="$TEST_TMP/ingestion" WEBSOCKET_INGESTION_PORT=$ING_PORT SPOOL_SEGMENT_BYTES=65536 \
  ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$ENR_PORT FORWARD_RETRY_MIN_MS=50 FORWARD_RETRY_MAX_MS=200 "$ING"
ING_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$ING_PORT/health" 30 || exit 1

pad=$(head -c 8000 /dev/zero | tr '\0' 'p')
ev=""
for i in $(seq 1 $N); do
  ev="$ev${ev:+,}{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.fault_$i\",\"state\":\"$i\",\"time_fired\":\"2025-01-01T00:00:$(printf %02d $i)Z\",\"attributes\":{\"pad\":\"$pad\"}}"
done
echo "[$ev]" >"$TEST_TMP/body.json"
code=$(curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
  --data-binary @"$TEST_TMP/body.json" "http://127.0.0.1:$ING_PORT/api/v1/events/forward")
check_eq "forward: $N events accepted (durable)" "200 $N" "$code $(jq .accepted "$TEST_TMP/resp")"
fired() { grep -q "fault_shim: ${FAULT%%:*}" "$TEST_TMP/$WHO.log"; }
for i in $(seq 1 150); do fired && break; sleep 0.2; done
check "the injected fault fired" fired
drained() { [ "$(curl -s "http://127.0.0.1:$ING_PORT/health" | jq .spool.depth)" = 0 ]; }
for i in $(seq 1 100); do drained && break; sleep 0.2; done
check "ingestion's spool drained" drained
stored=$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=1000" |
  jq '[.events[] | select(.entity_id | startswith("sensor.fault_"))] | [length, (map(.entity_id) | unique | length)]' -c)
check_eq "every accepted event stored exactly once" "[$N,$N]" "$stored"
check "ingestion exits cleanly" stop_pid "$ING_PID"
finish

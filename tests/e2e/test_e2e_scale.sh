#!/usr/bin/env bash
# test_e2e_scale.sh EVENTS_PER_HOME RATE -- the scale-out layout of issue 18 on
# real processes, loopback only: 3 homes (simulator + websocket-ingestion with
# HOMEIQ_HOME_ID each, the same seeded house so entity ids are identical) ->
# nginx -> 2 enrichment-pipeline replicas -> nginx -> 2 data-storage replicas ->
# one clickhouse-server. Mid-stream a storage replica, then an enrichment
# replica, is SIGKILLed. Every home's events are stored exactly once, checked
# per home against that home's simulator sent-log.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
. "$(dirname "$0")/../lib/clickhouse.sh"
. "$(dirname "$0")/../lib/nginx.sh"
PER_HOME=${1:-5000}
RATE=${2:-500}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HOMES="h1 h2 h3"

clickhouse_start ch || bail "clickhouse-server starts"
S1=$(free_port) S2=$(free_port) E1=$(free_port) E2=$(free_port) LB_S=$(free_port) LB_E=$(free_port)
nginx_start "$ROOT/deploy/scale/nginx.conf" ENRICHMENT_1=127.0.0.1:$E1 ENRICHMENT_2=127.0.0.1:$E2 \
  STORAGE_1=127.0.0.1:$S1 STORAGE_2=127.0.0.1:$S2 ENRICHMENT_LISTEN=127.0.0.1:$LB_E STORAGE_LISTEN=127.0.0.1:$LB_S \
  || bail "nginx starts"
for i in 1 2; do
  p=S$i
  start_bg storage$i env STORAGE_BACKEND=clickhouse CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE=homeiq_scale \
    CLICKHOUSE_PING_INTERVAL_MS=200 DATA_DIR="$TEST_TMP/storage$i" DATA_STORAGE_PORT=${!p} "$STO_BIN"
  printf -v "STO_PID$i" '%s' "$LAST_PID"
  wait_healthy "http://127.0.0.1:${!p}/health" 60 "$LAST_PID" || bail "storage replica $i healthy"
done
for i in 1 2; do
  p=E$i
  start_bg enrichment$i env ENRICHMENT_PIPELINE_PORT=${!p} DATA_STORAGE_URL=http://127.0.0.1:$LB_S "$ENR_BIN"
  printf -v "ENR_PID$i" '%s' "$LAST_PID"
  wait_healthy "http://127.0.0.1:${!p}/health" 30 "$LAST_PID" || bail "enrichment replica $i healthy"
done
check "storage through the balancer: healthy" wait_healthy "http://127.0.0.1:$LB_S/health" 20
check "enrichment through the balancer: healthy" wait_healthy "http://127.0.0.1:$LB_E/health" 20

for h in $HOMES; do
  sp=$(free_port) ip=$(free_port)
  start_bg sim_$h env SIMULATOR_PORT=$sp "$SIM_BIN" --rate "$RATE" --count "$PER_HOME" --seed 7 --sent-log "$TEST_TMP/sent_$h.jsonl"
  printf -v "SIM_PID_$h" '%s' "$LAST_PID"; printf -v "SIM_PORT_$h" '%s' "$sp"
  wait_http "http://127.0.0.1:$sp/health" 20 || bail "simulator $h started"
  start_bg ing_$h env HOME_ASSISTANT_URL=http://127.0.0.1:$sp HOME_ASSISTANT_TOKEN=$E2E_TOKEN HOMEIQ_HOME_ID=$h \
    DATA_DIR="$TEST_TMP/ing_$h" WEBSOCKET_INGESTION_PORT=$ip ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$LB_E \
    RECONNECT_MIN_DELAY_MS=200 RECONNECT_MAX_DELAY=2 FORWARD_RETRY_MAX_MS=1000 BACKFILL=0 "$ING_BIN"
  printf -v "ING_PID_$h" '%s' "$LAST_PID"; printf -v "ING_PORT_$h" '%s' "$ip"
done
for h in $HOMES; do p=ING_PORT_$h; wait_healthy "http://127.0.0.1:${!p}/health" 30 || bail "ingestion $h healthy"; done

total_stored() { curl -s "http://127.0.0.1:$CH_HTTP_ch/" --data-binary \
  "SELECT count() FROM (SELECT event_id FROM homeiq_scale.events GROUP BY event_id) FORMAT TSV" 2>/dev/null || echo 0; }
ALL=$((3 * PER_HOME))
over() { [ "$(total_stored)" -ge "$1" ]; }
check "a third stored" wait_for 300 over $((ALL / 3))
kill -KILL "$STO_PID1"; wait "$STO_PID1" 2>/dev/null
echo "# SIGKILL storage replica 1 at $(total_stored) stored"
check "two thirds stored with one storage replica" wait_for 300 over $((2 * ALL / 3))
kill -KILL "$ENR_PID1"; wait "$ENR_PID1" 2>/dev/null
echo "# SIGKILL enrichment replica 1 at $(total_stored) stored"

sims_done() { local h p; for h in $HOMES; do p=SIM_PORT_$h; [ "$(curl -s "http://127.0.0.1:${!p}/api/sim/stats" | jq -r .count_reached)" = true ] || return 1; done; }
drained() { local h p d; for h in $HOMES; do p=ING_PORT_$h; d=$(curl -s "http://127.0.0.1:${!p}/health" | jq -r '.spool.depth'); [ "$d" = 0 ] || return 1; done; }
check "every simulator sent its $PER_HOME events" wait_for 600 sims_done
check "every ingestion drained its spool (acked through the balancers)" wait_for 600 drained

for h in $HOMES; do
  jq -r '[.entity_id, (.time_fired | sub("\\+00:00$"; "") | if test("\\.") then . else . + ".000000" end | . + "Z"),
          .context_id, (.state // "null")] | @tsv' "$TEST_TMP/sent_$h.jsonl" | sort >"$TEST_TMP/sent_$h.keys"
  off=0; : >"$TEST_TMP/stored_$h.keys.u"
  while :; do
    curl -s -o "$TEST_TMP/page.json" "http://127.0.0.1:$LB_S/api/v1/events?limit=10000&offset=$off&home=$h"
    n=$(jq '.events | length' "$TEST_TMP/page.json")
    jq -r '.events[] | [.entity_id, .time_fired, .context_id, (.state // "null")] | @tsv' "$TEST_TMP/page.json" >>"$TEST_TMP/stored_$h.keys.u"
    [ "$n" -lt 10000 ] && break; off=$((off + n))
  done
  sort "$TEST_TMP/stored_$h.keys.u" >"$TEST_TMP/stored_$h.keys"
  check_eq "home $h: the simulator's sent-log holds $PER_HOME events" "$PER_HOME" "$(wc -l <"$TEST_TMP/sent_$h.keys")"
  check_eq "home $h: exactly the sent events stored (missing, extra, doubled)" "0 0 0" \
    "$(comm -23 "$TEST_TMP/sent_$h.keys" "$TEST_TMP/stored_$h.keys" | wc -l) $(comm -13 "$TEST_TMP/sent_$h.keys" "$TEST_TMP/stored_$h.keys" | wc -l) $(uniq -d "$TEST_TMP/stored_$h.keys" | wc -l)"
done
check_eq "all homes: $ALL distinct events in ClickHouse" "$ALL" "$(total_stored)"
check "the surviving storage replica took writes" bash -c "curl -s http://127.0.0.1:$S2/metrics | grep -qE '^homeiq_storage_events_stored_total [1-9]'"

for h in $HOMES; do p=ING_PID_$h; check "ingestion $h exits cleanly" stop_pid "${!p}"; p=SIM_PID_$h; stop_pid "${!p}" >/dev/null; done
check "enrichment replica 2 exits cleanly" stop_pid "$ENR_PID2"
check "storage replica 2 exits cleanly" stop_pid "$STO_PID2"
nginx_stop
clickhouse_stop ch
finish

#!/usr/bin/env bash
# test_e2e_delivery.sh COUNT RATE BACKEND -- simulator -> ingestion -> enrichment
# -> storage (sqlite | influxdb) on real processes: every one of COUNT simulated
# events is stored exactly once, checked against the simulator's sent-log.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-100000}
RATE=${2:-20000}
BACKEND=${3:-sqlite}

if [ "$BACKEND" = influxdb ]; then
  . "$(dirname "$0")/../lib/influxd.sh"
  influxd_start || bail "influxd starts"
  start_storage storage STORAGE_BACKEND=influxdb INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE=homeiq_e2e
else
  start_storage storage
fi
start_enrichment enrichment
start_sim "$RATE" "$COUNT"
start_ingestion ingestion
check "ingestion healthy (authenticated, subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20

T0=$(date +%s.%N)
check "simulator sent all $COUNT events" wait_until 600 sim_done
check "ingestion drained its spool" wait_until 600 ing_drained
T1=$(date +%s.%N)
check_eq "simulator sent $COUNT" "$COUNT" "$(sim_stat sent)"
check_eq "ingestion received exactly what was sent (one subscription)" "$COUNT" "$(ing_stat .events.received)"
check_eq "ingestion forwarded (acked) $COUNT" "$COUNT" "$(ing_stat .events.forwarded)"
check_eq "no events dropped" 0 "$(ing_stat .events.dropped)"
echo "# $COUNT events through the pipeline ($BACKEND) in $(awk "BEGIN{printf \"%.1f\", $T1 - $T0}") s"

verify_exactly_once "$COUNT"

check "ingestion exits cleanly on SIGTERM" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

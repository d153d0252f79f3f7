#!/usr/bin/env bash
# test_e2e_storage_cut.sh -- issue 14: a large event in flight while
# data-storage dies is retried, not dead-lettered.
#
# Why: enrichment used to take a connection cut after a storage request of
# >= 1 MiB (DELIVERY_BIG_BODY) as a refusal at once; ingestion then split and
# dead-lettered the event (8 KiB of it kept). lib/delivery.h now says a cut is
# retried until the same body was cut DELIVERY_SUSPECT_TRIES times while
# storage was healthy. Real processes: simulator -> ingestion -> enrichment ->
# storage (SQLite). Storage is frozen (SIGSTOP) so the 1.5 MiB event is caught
# in flight on a fresh connection, then SIGKILLed and restarted on the same
# database: the event must be stored exactly once, whole, with no dead letter.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-200}

start_storage storage
start_enrichment enrichment STORAGE_PROBE_INTERVAL_MS=300 STORAGE_PROBE_TIMEOUT_MS=300 STORAGE_TIMEOUT_MS=60000
start_sim 100 "$COUNT"
start_ingestion ingestion FORWARD_TIMEOUT_MS=120000 FORWARD_RETRY_MIN_MS=100
check "ingestion healthy (authenticated, subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20
check "the good events went through" wait_until 120 sim_done
check "ingestion drained its spool" wait_until 120 ing_drained

MARK=big-cut-$$
big_event() {
  printf '{"context":{"id":"%s","parent_id":null,"user_id":null},"event_type":"state_changed","origin":"LOCAL",' "$MARK"
  printf '"time_fired":"2024-01-01T00:00:01.000000+00:00","data":{"entity_id":"sensor.big_cut","new_state":{"state":"1","attributes":{"blob":"'
  head -c $((3 * 512 * 1024)) /dev/zero | tr '\0' 'y'
  printf '"}}}}'
}
big_event >"$TEST_TMP/big.json"
enr_inflight() {
  local v
  v=$(curl -s "http://127.0.0.1:$ENR_PORT/metrics" | awk '/^homeiq_enrichment_storage_requests_inflight /{print $2}')
  [ "${v:-0}" != 0 ]
}
enr_unhealthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENR_PORT/health")" = 503 ]; }

# Frozen storage: its probe times out, so enrichment's kept-alive connection is
# gone and the big request goes out on a fresh one that the kernel accepts.
kill -STOP "$STO_PID"
check "enrichment sees the frozen storage (probe timed out)" wait_until 30 enr_unhealthy
d=$(curl -s -XPOST --data-binary @"$TEST_TMP/big.json" "http://127.0.0.1:$SIM_PORT/api/sim/inject" | jq .delivered)
check "simulator sent the 1.5 MiB event (to the one subscription of its type)" test "${d:-0}" = 1
check "enrichment has the storage request in flight" wait_until 60 enr_inflight
# The body is being written into the frozen peer's socket: over 64 KiB queued on storage's
# side (ss, Recv-Q of the connection to its port). A fixed sleep here was too short under load,
# so the kill came before the request left and no cut happened.
sto_queued() {
  ss -Htn state established "( sport = :$STO_PORT )" | awk '$1 > 65536 {f = 1} END {exit !f}'
}
check "the 1.5 MiB request is being written into frozen storage's socket" wait_until 60 sto_queued
kill -KILL "$STO_PID"; wait "$STO_PID" 2>/dev/null
check "enrichment counted the cut" wait_until 30 bash -c \
  "curl -s http://127.0.0.1:$ENR_PORT/metrics | grep -q '^homeiq_enrichment_storage_cuts_total [1-9]'"
sleep 1     # ingestion retries against a dead storage meanwhile (503s)
start_storage storage2
check "ingestion drained its spool after the restart" wait_until 120 ing_drained

curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?entity_id=sensor.big_cut&limit=10" >"$TEST_TMP/big_stored.json"
check_eq "the big event is stored exactly once" 1 \
  "$(jq --arg m "$MARK" '[.events[] | select(.context_id == $m)] | length' "$TEST_TMP/big_stored.json")"
check_eq "stored whole (1.5 MiB attribute)" $((3 * 512 * 1024)) \
  "$(jq -r --arg m "$MARK" '[.events[] | select(.context_id == $m)][0].attributes.blob | length' "$TEST_TMP/big_stored.json")"
check_eq "no dead letter" 0 "$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/dead-letters?limit=100" | jq '.dead_letters | length')"
check_eq "ingestion dead-lettered nothing" 0 "$(ing_stat .events.dead_lettered)"
# the injected event is not in the simulator's sent-log: add its key
printf '{"entity_id":"sensor.big_cut","time_fired":"2024-01-01T00:00:01.000000+00:00","context_id":"%s","state":"1"}\n' \
  "$MARK" >>"$SENT_LOG"
verify_exactly_once $((COUNT + 1))

check "ingestion exits cleanly on SIGTERM" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

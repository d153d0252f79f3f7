#!/usr/bin/env bash
# test_e2e_ingestion_cut.sh -- issue 14: ingestion's forwarder follows
# lib/delivery's cut rule (delivery_cut), as enrichment's storage client does:
# a connection cut after a body >= 1 MiB is retried; the body is refused only
# on the DELIVERY_SUSPECT_TRIES-th (3rd) cut of the same bytes while
# enrichment's /health (probed after each cut) said healthy.
#
# Real processes: simulator -> ingestion -> enrichment -> storage (SQLite).
#  A. enrichment SIGKILLed with a 1.5 MiB event in flight (frozen first, so
#     the body sits in its socket): retried, stored exactly once after the
#     restart, no dead letter.
#  B. a 20 MiB event, larger than enrichment's MAX_BODY_BYTES (16 MiB) but
#     within ingestion's FORWARD_BATCH_MAX_BYTES: enrichment closes the
#     connection on every attempt. While storage is down enrichment's /health
#     is 503, so cuts do not count: more than 3 cuts, nothing dead-lettered
#     (the old rule, 3 cuts whatever the peer's health, dead-lettered it here).
#     With storage back, the 3rd healthy cut refuses it: dead-lettered with the
#     reason, and the events injected behind it are stored.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-200}

start_storage storage
start_enrichment enrichment STORAGE_PROBE_INTERVAL_MS=300 STORAGE_PROBE_TIMEOUT_MS=300 STORAGE_TIMEOUT_MS=60000
start_sim 100 "$COUNT"
start_ingestion ingestion FORWARD_TIMEOUT_MS=120000 FORWARD_RETRY_MIN_MS=100 FORWARD_RETRY_MAX_MS=500 \
  FORWARD_BATCH_MAX_BYTES=41943040
check "ingestion healthy (authenticated, subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20
check "the good events went through" wait_until 120 sim_done
check "ingestion drained its spool" wait_until 120 ing_drained

# event MARKER ENTITY BLOB_BYTES : one state_changed with a blob attribute of BLOB_BYTES 'y's
event() {
  printf '{"context":{"id":"%s","parent_id":null,"user_id":null},"event_type":"state_changed","origin":"LOCAL",' "$1"
  printf '"time_fired":"2024-01-01T00:00:0%s.000000+00:00","data":{"entity_id":"%s","new_state":{"state":"1","attributes":{"blob":"' "$4" "$2"
  head -c "$3" /dev/zero | tr '\0' 'y'
  printf '"}}}}'
}
inject() { # inject FILE : 0 when the simulator delivered it to its one subscription
  [ "$(curl -s -XPOST --data-binary @"$1" "http://127.0.0.1:$SIM_PORT/api/sim/inject" | jq .delivered)" = 1 ]
}
sent() { # sent MARKER ENTITY SECOND : the event's key for verify_exactly_once
  printf '{"entity_id":"%s","time_fired":"2024-01-01T00:00:0%s.000000+00:00","context_id":"%s","state":"1"}\n' \
    "$2" "$3" "$1" >>"$SENT_LOG"
}
ing_metric() { curl -s "http://127.0.0.1:$ING_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
cuts() { local v; v=$(ing_metric homeiq_ingestion_forward_cuts_total); echo "${v:-0}"; }
cuts_at_least() { [ "$(cuts)" -ge "$1" ]; }
ing_inflight() { [ "$(ing_stat .downstream.inflight)" != 0 ]; }
enr_health() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENR_PORT/health"; }
enr_unhealthy() { [ "$(enr_health)" = 503 ]; }
stored_count() { # stored_count MARKER ENTITY
  curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?entity_id=$2&limit=10" |
    jq --arg m "$1" '[.events[] | select(.context_id == $m)] | length'
}

# ---- A: enrichment SIGKILLed with a 1.5 MiB event in flight ------------------
A=cut-kill-$$
event "$A" sensor.cut_kill $((3 * 512 * 1024)) 1 >"$TEST_TMP/a.json"
kill -STOP "$ENR_PID"
check "simulator sent the 1.5 MiB event" inject "$TEST_TMP/a.json"
check "ingestion has the forward request in flight" wait_until 60 ing_inflight
sleep 0.5 # the body is being written into the frozen peer's socket
kill -KILL "$ENR_PID"; wait "$ENR_PID" 2>/dev/null
check "ingestion counted the cut" wait_until 30 cuts_at_least 1
sleep 1 # retried against a dead enrichment meanwhile (connection refused: plain retries)
start_enrichment enrichment2 STORAGE_PROBE_INTERVAL_MS=300 STORAGE_PROBE_TIMEOUT_MS=300 STORAGE_TIMEOUT_MS=60000
check "ingestion drained its spool after the restart" wait_until 120 ing_drained
check_eq "A: the 1.5 MiB event is stored exactly once" 1 "$(stored_count "$A" sensor.cut_kill)"
check_eq "A: nothing dead-lettered by ingestion" 0 "$(ing_stat .events.dead_lettered)"
sent "$A" sensor.cut_kill 1

# ---- B: a body enrichment always cuts -----------------------------------------
B=cut-always-$$
event "$B" sensor.cut_always $((20 * 1024 * 1024)) 2 >"$TEST_TMP/b.json"
cuts0=$(cuts)
kill -KILL "$STO_PID"; wait "$STO_PID" 2>/dev/null
check "enrichment reports storage down (/health 503)" wait_until 30 enr_unhealthy
check "simulator sent the 20 MiB event" inject "$TEST_TMP/b.json"
for i in 1 2 3; do # good events behind it
  event "good-behind-$i-$$" sensor.cut_behind 10 $((2 + i)) >"$TEST_TMP/g$i.json"
  check "simulator sent good event $i behind it" inject "$TEST_TMP/g$i.json"
done
check "B: enrichment cut it more than 3 times while unhealthy" wait_until 120 cuts_at_least $((cuts0 + 5))
check_eq "B: not dead-lettered while enrichment's probe said unhealthy" 0 "$(ing_stat .events.dead_lettered)"
check_eq "B: still held in the spool" false "$(ing_stat '.spool.depth == 0')"
start_storage storage2
check "ingestion drained its spool once storage was back" wait_until 180 ing_drained
check_eq "B: dead-lettered by ingestion (once)" 1 "$(ing_stat .events.dead_lettered)"
curl -s "http://127.0.0.1:$STO_PORT/api/v1/dead-letters?limit=100" >"$TEST_TMP/dead.json"
check_eq "B: one dead letter in storage, the 20 MiB event's, with the reason" 1 \
  "$(jq --arg m "$B" '[.dead_letters[] | select((.event | tostring | contains($m)) and (.error | contains("refused by")) and (.error | contains("20971")))] | length' "$TEST_TMP/dead.json")"
check_eq "no other dead letter" 1 "$(jq '.dead_letters | length' "$TEST_TMP/dead.json")"
for i in 1 2 3; do
  check_eq "B: good event $i behind it stored once" 1 "$(stored_count "good-behind-$i-$$" sensor.cut_behind)"
  sent "good-behind-$i-$$" sensor.cut_behind $((2 + i))
done
verify_exactly_once $((COUNT + 4))
echo "# cuts counted by ingestion: $(cuts)"

check "ingestion exits cleanly on SIGTERM" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

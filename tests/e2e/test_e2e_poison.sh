#!/usr/bin/env bash
# test_e2e_poison.sh COUNT -- issue 14's acceptance test on real processes:
# HA simulator -> websocket-ingestion -> enrichment-pipeline -> data-storage
# (SQLite). While the simulator sends COUNT good events, poisoned ones are
# injected among them (POST /api/sim/inject sends bytes as HA would), one of
# each kind that used to stop the pipeline or lose events:
#   utf8      entity id "a"*99+"é": the reason cut the é (finding 1)
#   real      1e400 in an attribute: json_scan accepted, jansson refused (2)
#   surrogate a lone \ud800 in the state (2)
#   nulkey    \u0000 in an attribute key (2)
#   storage   a 3 MiB event: passes ingestion and enrichment, data-storage
#             (MAX_BODY_BYTES=2 MiB) refuses the batch: split, dead-lettered (3)
#   batch     a 5 MiB event, larger than FORWARD_BATCH_MAX_BYTES (3, 6)
# Then: every good event is stored exactly once (the simulator's sent-log),
# every poisoned one is dead-lettered exactly once with its reason, the spool
# is drained and every service's /health is 200.
# On the old code the first poisoned event stops the spool head for good
# (the test times out waiting for the drain).
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-20000}
RATE=${2:-2000}

start_storage storage MAX_BODY_BYTES=2097152
start_enrichment enrichment
start_sim "$RATE" "$COUNT"
start_ingestion ingestion FORWARD_BATCH_MAX=250 FORWARD_BATCH_MAX_BYTES=4194304 FORWARD_RETRY_MIN_MS=50 \
  DOWNSTREAM_UNHEALTHY_S=5
check "ingestion healthy (authenticated, subscribed)" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20

# poison KIND MARKER : prints the raw event (the marker is its context id, first, so a truncated copy keeps it)
poison() {
  local kind=$1 m=$2 tf='"time_fired":"2024-01-01T00:00:01.000000+00:00"'
  local head="{\"context\":{\"id\":\"$m\",\"parent_id\":null,\"user_id\":null},\"event_type\":\"state_changed\",\"origin\":\"LOCAL\",$tf"
  case $kind in
    utf8) printf '%s,"data":{"entity_id":"%s\xc3\xa9","new_state":{"state":"1"}}}' "$head" "$(printf 'a%.0s' $(seq 99))" ;;
    real) printf '%s,"data":{"entity_id":"sensor.p_real","new_state":{"state":"1","attributes":{"x":1e400}}}}' "$head" ;;
    surrogate) printf '%s,"data":{"entity_id":"sensor.p_sur","new_state":{"state":"\\ud800"}}}' "$head" ;;
    nulkey) printf '%s,"data":{"entity_id":"sensor.p_nul","new_state":{"state":"1","attributes":{"\\u0000":1}}}}' "$head" ;;
    storage|batch)
      local mb=3; [ "$kind" = batch ] && mb=5
      printf '%s,"data":{"entity_id":"sensor.p_big","new_state":{"state":"1","attributes":{"blob":"' "$head"
      head -c $((mb * 1024 * 1024)) /dev/zero | tr '\0' 'x'
      printf '"}}}}' ;;
  esac
}
KINDS=(utf8 real surrogate nulkey storage batch)
declare -A WHY=([utf8]="is invalid" [real]="too large for a double" [surrogate]="surrogate"
                [nulkey]="in an object key" [storage]="refused by" [batch]="FORWARD_BATCH_MAX_BYTES")
INJECTED=0
MARKERS=()
inject_round() { # one of each kind
  local k m
  for k in "${KINDS[@]}"; do
    m="poison-$k-$INJECTED"
    poison "$k" "$m" >"$TEST_TMP/poison.json"
    d=$(curl -s -XPOST --data-binary @"$TEST_TMP/poison.json" "http://127.0.0.1:$SIM_PORT/api/sim/inject" | jq .delivered)
    [ "$d" = 1 ] || echo "inject $m: delivered=$d" >&2
    MARKERS+=("$k $m")
    INJECTED=$((INJECTED + 1))
    sleep 0.1
  done
}
# three rounds sprinkled over the run, the last after the good events ended
while ! sim_done && [ ${#MARKERS[@]} -lt 12 ]; do inject_round; sleep 1; done
check "simulator sent all $COUNT events" wait_until 600 sim_done
inject_round
check "ingestion drained its spool (no event holds the line)" wait_until ${DRAIN_WAIT_S:-300} ing_drained
check_eq "ingestion received every good and poisoned event" $((COUNT + INJECTED)) "$(ing_stat .events.received)"
check_eq "nothing dropped" 0 "$(ing_stat .events.dropped)"
echo "# $COUNT good events, $INJECTED poisoned ones (${#KINDS[@]} kinds)"

verify_exactly_once "$COUNT"

curl -s "http://127.0.0.1:$STO_PORT/api/v1/dead-letters?limit=10000" >"$TEST_TMP/dead.json"
bad=0
for km in "${MARKERS[@]}"; do
  k=${km%% *}; m=${km#* }
  n=$(jq --arg m "$m" --arg why "${WHY[$k]}" \
    '[.dead_letters[] | select((.event | tostring | contains("\"" + $m + "\"")) and (.error | contains($why)))] | length' "$TEST_TMP/dead.json")
  if [ "$n" != 1 ]; then
    bad=$((bad + 1))
    echo "# $m ($k): $n dead letter(s) with reason containing '${WHY[$k]}'; found:" >&2
    jq -c --arg m "$m" '[.dead_letters[] | select(.event | tostring | contains("\"" + $m + "\"")) | .error]' "$TEST_TMP/dead.json" >&2
  fi
done
check_eq "every poisoned event dead-lettered exactly once, with its reason" 0 "$bad"
check_eq "no other dead letters" "$INJECTED" "$(jq '.dead_letters | length' "$TEST_TMP/dead.json")"
check "ingestion /health is 200 at the end" wait_healthy "http://127.0.0.1:$ING_PORT/health" 15
check "enrichment /health is 200" wait_healthy "http://127.0.0.1:$ENR_PORT/health" 5
check "storage /health is 200" wait_healthy "http://127.0.0.1:$STO_PORT/health" 5
check_eq "ingestion: events dead-lettered by the forwarder (storage + batch kinds)" \
  $(( ${#MARKERS[@]} / ${#KINDS[@]} * 2 )) "$(ing_stat .events.dead_lettered)"
check_eq "nothing needed the local quarantine file" 0 "$(ing_stat .events.quarantined)"

check "ingestion exits cleanly on SIGTERM" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

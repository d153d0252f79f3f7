# tests/e2e/e2e_lib.sh -- start the real HomeIQ processes and check end-to-end
# delivery against the HA simulator's sent-log. Sourced after tests/lib/common.sh.
#
# Needs: SIM_BIN ING_BIN ENR_BIN STO_BIN (absolute paths, passed by CMake).
# Processes are started with start_bg (common.sh kills them on exit); every
# start_* function records its port in a variable (SIM_PORT, ING_PORT, ...).

E2E_TOKEN=homeiq-simulator-token

# start_sim RATE COUNT [extra args...] : simulator in load mode with a sent-log.
start_sim() {
  local rate=$1 count=$2; shift 2
  SIM_PORT=${SIM_PORT:-$(free_port)}
  SENT_LOG=${SENT_LOG:-$TEST_TMP/sent.jsonl}
  start_bg sim env SIMULATOR_PORT=$SIM_PORT "$SIM_BIN" --rate "$rate" --count "$count" --seed 7 --sent-log "$SENT_LOG" "$@"
  SIM_PID=$LAST_PID
  wait_http "http://127.0.0.1:$SIM_PORT/health" 20 || bail "simulator started"
}

# start_storage NAME [env...] : data-storage on STO_PORT (sqlite in $TEST_TMP/storage unless env says otherwise).
start_storage() {
  local name=$1; shift
  STO_PORT=${STO_PORT:-$(free_port)}
  start_bg "$name" env DATA_DIR="$TEST_TMP/storage" DATA_STORAGE_PORT=$STO_PORT "$@" "$STO_BIN"
  STO_PID=$LAST_PID
  wait_http "http://127.0.0.1:$STO_PORT/health" 30 || bail "data-storage ($name) started"
}

start_enrichment() {
  local name=$1; shift
  ENR_PORT=${ENR_PORT:-$(free_port)}
  start_bg "$name" env ENRICHMENT_PIPELINE_PORT=$ENR_PORT DATA_STORAGE_URL=http://127.0.0.1:$STO_PORT "$@" "$ENR_BIN"
  ENR_PID=$LAST_PID
  wait_http "http://127.0.0.1:$ENR_PORT/health" 30 || bail "enrichment-pipeline ($name) started"
}

# start_ingestion NAME [VAR=value...] : ingestion connected to the simulator.
start_ingestion() {
  local name=$1; shift
  ING_PORT=${ING_PORT:-$(free_port)}
  start_bg "$name" env HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN=$E2E_TOKEN \
    DATA_DIR="$TEST_TMP/ingestion" WEBSOCKET_INGESTION_PORT=$ING_PORT \
    ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$ENR_PORT RECONNECT_MIN_DELAY_MS=200 RECONNECT_MAX_DELAY=2 \
    FORWARD_RETRY_MAX_MS=1000 "$@" "$ING_BIN"
  ING_PID=$LAST_PID
  wait_http "http://127.0.0.1:$ING_PORT/health" 30 || bail "websocket-ingestion ($name) started"
}

sim_stat() { curl -s "http://127.0.0.1:$SIM_PORT/api/sim/stats" | jq -r ".$1"; }
ing_stat() { curl -s "http://127.0.0.1:$ING_PORT/health" | jq -r "$1"; }

# wait_until SECONDS CMD... : polls CMD every 0.2 s.
wait_until() {
  local t=$1 i=0; shift
  while (( i < t * 5 )); do
    if "$@"; then return 0; fi
    sleep 0.2; i=$((i + 1))
  done
  echo "timeout after ${t}s waiting for: $*" >&2
  return 1
}

sim_done() { [ "$(sim_stat count_reached)" = true ]; }
# Everything the current ingestion received is acknowledged downstream.
ing_drained() {
  local h; h=$(curl -s "http://127.0.0.1:$ING_PORT/health") || return 1
  [ "$(jq -r '.spool.depth' <<<"$h")" = 0 ] && [ "$(jq -r '.spool.next_seq > 0' <<<"$h")" = true ]
}
# The ingestion's received counter did not move for 0.6 s (nothing left in flight from HA).
ing_quiet() {
  local a b; a=$(ing_stat .events.received); sleep 0.6; b=$(ing_stat .events.received)
  [ "$a" = "$b" ]
}

# Prints "entity_id<TAB>time_fired<TAB>context_id<TAB>state" per sent event,
# time_fired normalised to storage's form (…Z, 6 fraction digits).
sent_keys() {
  jq -r '[.entity_id,
          (.time_fired | sub("\\+00:00$"; "") | if test("\\.") then . else . + ".000000" end | . + "Z"),
          .context_id, (.state // "null")] | @tsv' "$SENT_LOG"
}

# Same for everything in storage (paged, 10000 per request).
stored_keys() {
  local off=0 n
  while :; do
    local page="$TEST_TMP/page.json"
    curl -s -o "$page" "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10000&offset=$off" || return 1
    n=$(jq '.events | length' "$page")
    jq -r '.events[] | [.entity_id, .time_fired, .context_id, (.state // "null")] | @tsv' "$page"
    [ "$n" -lt 10000 ] && break
    off=$((off + n))
  done
}

# verify_exactly_once EXPECTED_COUNT : every sent event stored exactly once, nothing else stored.
verify_exactly_once() {
  local want=$1
  sent_keys | sort >"$TEST_TMP/sent.keys"
  stored_keys | sort >"$TEST_TMP/stored.keys"
  local nsent nstored ndup nmiss nextra
  nsent=$(wc -l <"$TEST_TMP/sent.keys")
  nstored=$(wc -l <"$TEST_TMP/stored.keys")
  ndup=$(uniq -d "$TEST_TMP/stored.keys" | wc -l)
  nmiss=$(comm -23 "$TEST_TMP/sent.keys" "$TEST_TMP/stored.keys" | wc -l)
  nextra=$(comm -13 "$TEST_TMP/sent.keys" "$TEST_TMP/stored.keys" | wc -l)
  check_eq "simulator sent-log has $want events" "$want" "$nsent"
  check_eq "sent-log events are distinct" 0 "$(uniq -d "$TEST_TMP/sent.keys" | wc -l)"
  check_eq "storage holds $want events" "$want" "$nstored"
  check_eq "no duplicates in storage" 0 "$ndup"
  check_eq "no sent event missing from storage" 0 "$nmiss"
  check_eq "nothing stored that was not sent" 0 "$nextra"
  if [ "$nmiss" != 0 ]; then comm -23 "$TEST_TMP/sent.keys" "$TEST_TMP/stored.keys" | head -5 >&2; fi
  if [ "$nextra" != 0 ]; then comm -13 "$TEST_TMP/sent.keys" "$TEST_TMP/stored.keys" | head -5 >&2; fi
}

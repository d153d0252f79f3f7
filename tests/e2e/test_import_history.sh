#!/usr/bin/env bash
# test_import_history.sh CTL_BIN -- `homeiqctl import-history` on real processes: HA's recorder
# (the simulator's history file) holds 8 days of state changes; a fresh HomeIQ imports the last 7.
#   1. Ctrl-C stops watching, the import goes on; ingestion SIGKILLed mid-import resumes from its
#      last finished window after the restart; the command run again watches it to the end;
#   2. the store then holds exactly the rows of the last 7 days (none older, none twice);
#   3. run twice: the same count; --entity imports one entity only.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
CTL=${1:?usage: test_import_history.sh /path/to/homeiqctl}
HIST=$TEST_TMP/history.jsonl
SRC=$(cd "$(dirname "$0")/../.." && pwd)

# 8 days of history, one row per entity every 30 min; none within an hour of the 7-day boundary
NOW=$(date +%s)
jq -r '.entities[] | [.entity_id, ((.attributes // {}) | tojson)] | @tsv' "$SRC/tools/ha-simulator/scenarios/house.json" |
  awk -F'\t' -v now="$NOW" '
  { id[NR - 1] = $1; attrs[NR - 1] = $2; n = NR }
  END {
    srand(7)
    for (t = now - 8 * 86400; t < now - 600; t += 1800) {
      if (t > now - 7 * 86400 - 3600 && t < now - 7 * 86400 + 3600) continue
      for (e = 0; e < n; e++) {
        lu = t + e * 7.31 + rand() * 1e-3
        printf "{\"entity_id\":\"%s\",\"s\":\"%.1f\",\"a\":%s,\"lu\":%.7f,\"lc\":%.7f}\n", id[e], 15 + rand() * 10, attrs[e], lu, lu
      }
    }
  }' >"$HIST"
WANT=$(jq -s --argjson t0 $((NOW - 7 * 86400)) '[.[] | select(.lu >= $t0)] | length' "$HIST")
WANT_ONE=$(jq -s --argjson t0 $((NOW - 7 * 86400)) '[.[] | select(.lu >= $t0 and .entity_id == "sensor.kitchen_temperature")] | length' "$HIST")
echo "# history: $(wc -l <"$HIST") rows over 8 days, $WANT in the last 7"

start_storage storage
start_enrichment enrichment
SIM_PORT=$(free_port)
start_bg sim env SIMULATOR_PORT=$SIM_PORT "$SIM_BIN" --history-file "$HIST"
SIM_PID=$LAST_PID
wait_http "http://127.0.0.1:$SIM_PORT/health" 20
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/pause" # no live events: the store holds imports only
ING_ENV=(BACKFILL_WINDOW_S=86400 BACKFILL_DELAY_S=0 BACKFILL_INTERVAL_MS=400 BACKFILL_CHUNK_ENTITIES=20)
start_ingestion ingestion "${ING_ENV[@]}"
check "ingestion healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20
export WEBSOCKET_INGESTION_URL=http://127.0.0.1:$ING_PORT
stored() { curl -s "http://127.0.0.1:$STO_PORT/metrics" | awk '/^homeiq_storage_events_stored_total/ {printf "%d", $2}'; }
windows_done() { [ "$(ing_stat .backfill.windows_done)" -ge "$1" ] && [ "$(ing_stat .backfill.kind)" = import ]; }

# --- 1. Ctrl-C, SIGKILL mid-import, resume ------------------------------------------------
"$CTL" import-history --since 7d >"$TEST_TMP/ctl1.out" 2>"$TEST_TMP/ctl1.err" &
CTL_PID=$!
check "the import is under way" wait_until 30 windows_done 1
kill -INT "$CTL_PID"; wait "$CTL_PID"; RC=$?
check_eq "Ctrl-C: homeiqctl stops watching (exit 130)" 130 "$RC"
check "Ctrl-C: it says the import continues" grep -q "the import continues in websocket-ingestion" "$TEST_TMP/ctl1.err"
check "the import continues without homeiqctl" wait_until 30 windows_done 3
check "the import's progress is kept next to the spool" test -s "$TEST_TMP/ingestion/spool/import"
kill -KILL "$ING_PID"; wait "$ING_PID" 2>/dev/null
BEFORE=$(stored)
start_ingestion ingestion2 "${ING_ENV[@]}"
check "after a restart the import resumes from its last finished window" \
  grep -q "an unfinished import resumes from" "$TEST_TMP/ingestion2.log"
"$CTL" import-history --since 7d >"$TEST_TMP/ctl2.out" 2>"$TEST_TMP/ctl2.err"; RC=$?
check_eq "run again: watches the running import to the end (exit 0)" 0 "$RC"
check "... and says so" grep -q "already under way" "$TEST_TMP/ctl2.err"
check "the progress bar is shown" grep -q "%" "$TEST_TMP/ctl2.err"
check "ingestion drained its spool" wait_until 60 ing_drained
N1=$(stored)
echo "# stored $BEFORE before the kill, $N1 at the end"
check_eq "the store holds exactly the last 7 days of history" "$WANT" "$N1"
check_eq "nothing older than 7 days" 0 "$(curl -s "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10&end=$(date -u -d @$((NOW - 7 * 86400)) +%Y-%m-%dT%H:%M:%SZ)" | jq '.events | length')"
check "the progress file is gone" test ! -e "$TEST_TMP/ingestion/spool/import"

# --- 2. twice: the same count; one entity ------------------------------------------------------------
"$CTL" import-history --since 7d --quiet >"$TEST_TMP/ctl3.out" 2>&1; RC=$?
check_eq "second import: exit 0" 0 "$RC"
check "second import read the rows again" grep -q "import done: $WANT events" "$TEST_TMP/ctl3.out"
check "ingestion drained its spool" wait_until 60 ing_drained
check_eq "second import: the same count" "$N1" "$(stored)"
"$CTL" import-history --since 7d --entity sensor.kitchen_temperature --quiet >"$TEST_TMP/ctl4.out" 2>&1; RC=$?
check_eq "--entity: exit 0" 0 "$RC"
check_eq "--entity: only that entity's rows were read" "import done: $WANT_ONE events read from Home Assistant's history" \
  "$(cat "$TEST_TMP/ctl4.out")"
check_eq "--entity: still the same count" "$N1" "$(stored)"
ERR=$("$CTL" import-history --since soon 2>&1); RC=$?
check "a bad --since fails (exit $RC) with the reason: $ERR" bash -c "[ $RC = 2 ] && grep -q since <<<'$ERR'"

check "ingestion exits cleanly" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

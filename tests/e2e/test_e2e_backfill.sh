#!/usr/bin/env bash
# test_e2e_backfill.sh RATE BACKEND -- no state change lost while HomeIQ or its HA link
# is down (issue 9), on real processes: simulator (a house that lives on without
# subscribers, recorder history with HA's float times, history kept across its
# restart) -> ingestion (backfill) -> enrichment -> storage (sqlite | influxdb).
#   A. ingestion SIGKILLed for 5 s while the simulator generates RATE changes/s;
#   B. the HA link cut mid-stream without a close frame; the first 2 history calls fail;
#   C. HA restarted (SIGTERM, 2 s down, restarted with its history file);
# then every state change the simulator GENERATED (its truth log, from the first
# one ingestion heard) must be stored exactly once: none missing, none twice, nothing
# else. Backfilled rows whose live twin is stored (the overlap) must be duplicates.
# Last, HA without the history component: reported in /health and the log, live goes on.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
RATE=${1:-300}
BACKEND=${2:-sqlite}
TRUTH=$TEST_TMP/truth.jsonl
HIST=$TEST_TMP/history.jsonl
BF_WAIT=${BF_WAIT:-120} # seconds to wait for a backfill run (a smaller one to watch the test fail with BACKFILL=0)

if [ "$BACKEND" = influxdb ]; then
  . "$(dirname "$0")/../lib/influxd.sh"
  influxd_start || { check "influxd starts" false; finish; }
  start_storage storage STORAGE_BACKEND=influxdb INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE=homeiq_backfill
else
  start_storage storage
fi
start_enrichment enrichment
start_house() { # start_house NAME : load mode, always on, truth log and history file (both appended)
  SIM_PORT=${SIM_PORT:-$(free_port)}
  start_bg "$1" env SIMULATOR_PORT=$SIM_PORT "$SIM_BIN" --rate "$RATE" --always-on --seed 9 \
    --truth-log "$TRUTH" --history-file "$HIST"
  SIM_PID=$LAST_PID
  wait_http "http://127.0.0.1:$SIM_PORT/health" 20
}
start_house sim
start_ingestion ingestion BACKFILL_INTERVAL_MS=20
check "ingestion healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 20

bf() { ing_stat ".backfill.$1"; }
# wait_run_done N : the backfill run after run N (the one a new subscribe started) is done
wait_run_done() { local h; h=$(curl -s "http://127.0.0.1:$ING_PORT/health") || return 1
  [ "$(jq -r .backfill.state <<<"$h")" = done ] && [ "$(jq -r .backfill.runs <<<"$h")" -gt "$1" ]; }
now_iso() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
phase_report() { # phase_report NAME : the backfill figures from /health
  local h; h=$(curl -s "http://127.0.0.1:$ING_PORT/health")
  echo "# $1: backfill $(jq -c '.backfill | {state, from, to, entities, events, requests, failures, duration_s}' <<<"$h")"
}
sleep 3

# --- A. ingestion SIGKILLed for 5 s -----------------------------------------------------
check "a high-water mark is kept next to the spool" bash -c "ls '$TEST_TMP'/ingestion/spool/hwm-* >/dev/null"
GEN_A0=$(sim_stat generated)
TA0=$(now_iso)
kill -KILL "$ING_PID"; wait "$ING_PID" 2>/dev/null
sleep 5
GEN_A1=$(sim_stat generated)
echo "# A: ingestion down for 5 s while the house generated $((GEN_A1 - GEN_A0)) changes (${RATE}/s)"
start_ingestion ingestion2 BACKFILL_INTERVAL_MS=20
check "A: ingestion healthy again" wait_healthy "http://127.0.0.1:$ING_PORT/health" 30
check "A: backfill done" wait_until "$BF_WAIT" wait_run_done 0
phase_report A
TA1=$(now_iso)
BF_A=$(bf events)
check "A: backfill spooled at least the $((GEN_A1 - GEN_A0)) changes of the gap ($BF_A)" test "$BF_A" -ge $((GEN_A1 - GEN_A0))
check "A: backfill progress is logged" grep -q "backfill: gap done, [0-9]* event(s)" "$TEST_TMP/ingestion2.log"
check "A: /metrics counts backfilled events" bash -c \
  "curl -s http://127.0.0.1:$ING_PORT/metrics | grep -q '^homeiq_ingestion_backfill_events_total [1-9]'"
sleep 2

# --- B. HA link cut without a close frame; the first 2 history calls fail ------------------
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/history/fail/2"
RUNS=$(bf runs)
TB0=$(now_iso)
check_eq "B: simulator drops the connection" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SIM_PORT/api/sim/drop")"
check "B: backfill retried the failed history calls and finished" wait_until "$BF_WAIT" wait_run_done "$RUNS"
phase_report B
TB1=$(now_iso)
check "B: the failures are counted in /health" test "$(bf failures)" -ge 2
check "B: the failed history call is logged with HA's error" grep -q "history_during_period failed: unknown_error" \
  "$TEST_TMP/ingestion2.log"
sleep 2

# --- C. HA restart, its history kept ---------------------------------------------------------
RUNS=$(bf runs)
TC0=$(now_iso)
check "C: HA stops (SIGTERM)" stop_pid "$SIM_PID"
sleep 2
start_house sim2
check "C: ingestion reconnected and backfilled" wait_until "$BF_WAIT" wait_run_done "$RUNS"
phase_report C
TC1=$(now_iso)
check "C: HA restored its history" grep -q "row(s) restored" "$TEST_TMP/sim2.log"
sleep 2

# --- the comparison: truth vs storage ----------------------------------------------------------
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/pause"
check "ingestion received everything" wait_until 20 ing_quiet
check "ingestion drained its spool" wait_until 300 ing_drained
curl -s -o /dev/null "http://127.0.0.1:$SIM_PORT/api/sim/stats" # flushes the truth log
stored_keys() {
  local off=0 n page="$TEST_TMP/page.json"
  while :; do
    curl -s -o "$page" "http://127.0.0.1:$STO_PORT/api/v1/events?limit=10000&offset=$off" || return 1
    n=$(jq '.events | length' "$page")
    jq -r '.events[] | [.entity_id, .time_fired, (.state // "null")] | @tsv' "$page"
    jq -c '.events[] | select(.origin == "HOMEIQ_BACKFILL") | {entity_id, area_id, device_id}' "$page" >>"$TEST_TMP/bf_rows.jsonl"
    [ "$n" -lt 10000 ] && break
    off=$((off + n))
  done
}
: >"$TEST_TMP/bf_rows.jsonl"
stored_keys | sort >"$TEST_TMP/stored.keys"
T0=$(cut -f2 "$TEST_TMP/stored.keys" | sort | head -1)
jq -r 'select(.event_type == "state_changed") | [.entity_id,
        (.time_fired | sub("\\+00:00$"; "") | if test("\\.") then . else . + ".000000" end | . + "Z"),
        (.state // "null")] | @tsv' "$TRUTH" | awk -F'\t' -v t0="$T0" '$2 >= t0' | sort >"$TEST_TMP/truth.keys"
GEN=$(wc -l <"$TEST_TMP/truth.keys")
STORED=$(wc -l <"$TEST_TMP/stored.keys")
DUP=$(cut -f1,2 "$TEST_TMP/stored.keys" | uniq -d | wc -l)
MISS=$(comm -23 "$TEST_TMP/truth.keys" "$TEST_TMP/stored.keys" | wc -l)
EXTRA=$(comm -13 "$TEST_TMP/truth.keys" "$TEST_TMP/stored.keys" | wc -l)
echo "# generated (from the first stored, $T0) $GEN, stored $STORED, missing $MISS, duplicated $DUP, extra $EXTRA"
check "truth log is not trivially small ($GEN)" test "$GEN" -ge $((RATE * 10))
check_eq "every generated change is stored" 0 "$MISS"
check_eq "no change stored twice" 0 "$DUP"
check_eq "nothing stored that was not generated (no float-rounded twin)" 0 "$EXTRA"
check_eq "storage holds exactly the generated changes" "$GEN" "$STORED"
in_window() { awk -F'\t' -v a="$1" -v b="$2" '$2 >= a && $2 < b' "$3"; }
for ph in "A (ingestion SIGKILLed 5 s) $TA0 $TA1" "B (link cut, 2 history calls failing) $TB0 $TB1" \
          "C (HA restart, history kept) $TC0 $TC1"; do
  set -- $ph; a=${*: -2:1}; b=${*: -1}
  in_window "$a" "$b" "$TEST_TMP/truth.keys" >"$TEST_TMP/w.truth"; in_window "$a" "$b" "$TEST_TMP/stored.keys" >"$TEST_TMP/w.stored"
  echo "# phase ${ph% * *}: from the fault to the end of its backfill: generated $(wc -l <"$TEST_TMP/w.truth"), stored $(wc -l <"$TEST_TMP/w.stored"), missing $(comm -23 "$TEST_TMP/w.truth" "$TEST_TMP/w.stored" | wc -l), duplicated $(cut -f1,2 "$TEST_TMP/w.stored" | uniq -d | wc -l)"
done
if [ "$MISS" != 0 ]; then comm -23 "$TEST_TMP/truth.keys" "$TEST_TMP/stored.keys" | head -5 >&2; fi
if [ "$EXTRA" != 0 ]; then comm -13 "$TEST_TMP/truth.keys" "$TEST_TMP/stored.keys" | head -5 >&2; fi
DUPS=$(curl -s "http://127.0.0.1:$ENR_PORT/metrics" | awk '/^homeiq_enrichment_events_duplicate_total/ {print $2}')
echo "# storage answered 'duplicate' $DUPS times (the overlap re-read + re-sent batches)"
check "the overlap re-read rows already stored: storage saw duplicates ($DUPS)" test "${DUPS%.*}" -gt 0

# --- backfilled rows carry registry context (issue 11): the entity's area (its own, else its
# device's) and device, from the scenario file (the house does not change during this test)
HOUSE="$(cd "$(dirname "$0")/../.." && pwd)/tools/ha-simulator/scenarios/house.json"
jq '.registry as $r | [.entities[].entity_id] | map(. as $e
      | ([$r.devices[] | select(.entities | index($e))] | first) as $d
      | {key: $e, value: {area_id: (($r.entities[$e].area_id // null) // $d.area_id // null), device_id: ($d.id // null)}})
    | from_entries' "$HOUSE" >"$TEST_TMP/house_ctx.json"
BF_ROWS=$(wc -l <"$TEST_TMP/bf_rows.jsonl")
BF_CTX=$(jq -s '[.[] | select(.area_id != null and .device_id != null)] | length' "$TEST_TMP/bf_rows.jsonl")
BF_WRONG=$(jq -s --slurpfile h "$TEST_TMP/house_ctx.json" \
  '[.[] | select(($h[0][.entity_id] // {area_id: null, device_id: null}) != {area_id, device_id})] | length' "$TEST_TMP/bf_rows.jsonl")
echo "# backfilled rows stored: $BF_ROWS, with area and device: $BF_CTX, context differing from the house: $BF_WRONG"
check "some stored events are backfilled rows ($BF_ROWS)" test "$BF_ROWS" -gt 0
check "backfilled rows carry area and device ($BF_CTX of $BF_ROWS)" test "$BF_CTX" -gt 0
check_eq "every backfilled row carries its entity's area and device" 0 "$BF_WRONG"

# --- HA without the history component ------------------------------------------------------------
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/history/off"
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/resume"
curl -s -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/api/sim/drop"
check "no history: reported in /health" wait_until 60 bash -c \
  "[ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq -r '.backfill.state') = unsupported ]"
check "no history: logged as an error" grep -q "error.*no history component" "$TEST_TMP/ingestion2.log"
R0=$(ing_stat .events.received)
check "no history: ingestion stays healthy" wait_healthy "http://127.0.0.1:$ING_PORT/health" 10
check "no history: live events keep coming" wait_until 20 bash -c \
  "[ \$(curl -s http://127.0.0.1:$ING_PORT/health | jq .events.received) -gt $R0 ]"

check "ingestion exits cleanly" stop_pid "$ING_PID"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

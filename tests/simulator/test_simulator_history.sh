#!/usr/bin/env bash
# test_simulator_history.sh -- the simulator's recorder and history/history_during_period,
# through a real WebSocket client (ws_probe): HA's errors, HA's compressed rows (s, a, lu,
# lc only when it differs), the rows equal the truth log (every generated change, heard or
# not: --always-on), float lu that HA's rounding turns into the ISO time fired, the start
# state row, history kept across a restart (--history-file), no history component.
# usage: test_simulator_history.sh SIMULATOR_BIN WS_PROBE_BIN
. "$(dirname "$0")/../lib/common.sh"
SIM=${1:?simulator binary}
PROBE=${2:?ws_probe binary}
TRUTH=$TEST_TMP/truth.jsonl
HIST=$TEST_TMP/history.jsonl
PORT=$(free_port)
probe() { local name=$1; shift; "$PROBE" "ws://127.0.0.1:$PORT/api/websocket" auth wait:auth_ok "$@" \
  >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log"; }
answer() { grep -F "\"id\":$2," "$TEST_TMP/$1.out" | head -1; } # answer NAME ID : the result line
err_of() { answer "$1" "$2" | jq -r '.error.code + ": " + .error.message'; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S+00:00; }

SIMULATOR_PORT=$PORT start_bg sim "$SIM" --rate 200 --always-on --seed 3 --truth-log "$TRUTH" --history-file "$HIST"
SIM_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 10
START=$(( $(date +%s) - 1 ))
sleep 2
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/sim/pause" # the window's rows are final
END=$(( $(date +%s) + 1 ))
H='"type":"history/history_during_period"'
probe errs \
  "send:{\"id\":2,$H,\"start_time\":\"$(iso $START)\"}" 'wait:"id":2,' \
  "send:{\"id\":3,$H,\"start_time\":\"$(iso $START)\",\"entity_ids\":[\"Sensor.Bad\"]}" 'wait:"id":3,' \
  "send:{\"id\":4,$H,\"start_time\":\"yesterday\",\"entity_ids\":[\"sensor.living_room_temperature\"]}" 'wait:"id":4,' \
  "send:{\"id\":5,$H,\"start_time\":\"$(iso $START)\",\"end_time\":\"later\",\"entity_ids\":[\"sensor.living_room_temperature\"]}" 'wait:"id":5,' \
  "send:{\"id\":6,$H,\"start_time\":\"$(iso $((START + 86400)))\",\"entity_ids\":[\"sensor.living_room_temperature\"]}" 'wait:"id":6,' \
  "send:{\"id\":7,$H,\"start_time\":\"$(iso $START)\",\"entity_ids\":[\"sensor.living_room_temperature\"],\"bogus\":1}" 'wait:"id":7,' \
  "send:{\"id\":8,$H,\"entity_ids\":[\"sensor.living_room_temperature\"]}" 'wait:"id":8,'
check_eq "entity_ids missing: invalid_entity_ids" "invalid_entity_ids: Invalid entity_ids" "$(err_of errs 2)"
check_eq "an invalid entity id: invalid_entity_ids" "invalid_entity_ids: Invalid entity_ids" "$(err_of errs 3)"
check_eq "bad start_time: invalid_start_time" "invalid_start_time: Invalid start_time" "$(err_of errs 4)"
check_eq "bad end_time: invalid_end_time" "invalid_end_time: Invalid end_time" "$(err_of errs 5)"
check_eq "a future start: {}" "{}" "$(answer errs 6 | jq -c .result)"
check_eq "extra keys: invalid_format" "invalid_format: extra keys not allowed @ data['bogus']" "$(err_of errs 7)"
check_eq "start_time missing: invalid_format" "invalid_format: required key not provided @ data['start_time']. Got None" \
  "$(err_of errs 8)"

E=sensor.living_room_temperature
probe rows "send:{\"id\":2,$H,\"start_time\":\"$(iso $START)\",\"end_time\":\"$(iso $END)\",\"entity_ids\":[\"$E\",\"climate.ground_floor\"],\"include_start_time_state\":false,\"significant_changes_only\":false,\"minimal_response\":false,\"no_attributes\":false}" 'wait:"id":2,'
curl -s -o /dev/null "http://127.0.0.1:$PORT/api/sim/stats" # flushes the logs
ROWS=$(answer rows 2 | jq -c ".result[\"$E\"]")
N=$(jq length <<<"$ROWS")
check "rows for $E ($N)" test "$N" -gt 0
check_eq "rows are compressed: s, a, lu (no lc: the state changed)" '["a","lu","s"]' "$(jq -c '[.[] | keys] | unique | .[0]' <<<"$ROWS")"
check "lu is a float epoch" jq -e 'all(.[]; (.lu | type) == "number" and .lu > 1.7e9)' <<<"$ROWS"
# the truth log's ISO times for E in the window == the rows' lu, converted as HA does (round half even)
jq -r --arg e "$E" --argjson s "$START" --argjson t "$END" 'select(.entity_id == $e and .event_type == "state_changed")
  | .time_fired' "$TRUTH" | while read -r tf; do
  t=$(date -u -d "${tf%+00:00}" +%s.%6N); awk -v t="$t" -v s="$START" -v e="$END" 'BEGIN{exit !(t > s && t < e)}' && echo "$tf"
done >"$TEST_TMP/truth.times"
jq -r '.[].lu' <<<"$ROWS" | while read -r lu; do python3 -c "
import sys, datetime; print(datetime.datetime.fromtimestamp(float(sys.argv[1]), datetime.timezone.utc).isoformat())" "$lu"
done >"$TEST_TMP/rows.times" 2>/dev/null || true
if command -v python3 >/dev/null && [ -s "$TEST_TMP/rows.times" ]; then
  check_eq "every row is a generated change, at the time it was fired (CPython's rounding)" \
    "$(cat "$TEST_TMP/truth.times")" "$(cat "$TEST_TMP/rows.times")"
else
  check_eq "as many rows as generated changes in the window" "$(wc -l <"$TEST_TMP/truth.times")" "$N"
fi
check "climate: attribute-only rows carry lc" jq -e '.result["climate.ground_floor"] | any(.[]; has("lc"))' <<<"$(answer rows 2)"

probe start "send:{\"id\":2,$H,\"start_time\":\"$(iso $((START + 1)))\",\"end_time\":\"$(iso $END)\",\"entity_ids\":[\"$E\"],\"include_start_time_state\":true,\"minimal_response\":true}" 'wait:"id":2,'
check_eq "include_start_time_state: the first row is stamped start_time" "$((START + 1))" \
  "$(answer start 2 | jq -r ".result[\"$E\"][0].lu | floor")"
check "minimal_response: no attributes after the first row" jq -e ".result[\"$E\"][1:] | all(.[]; has(\"a\") | not)" \
  <<<"$(answer start 2)"

# --- HA restart: the history is kept --------------------------------------------------------------
check "simulator stops" stop_pid "$SIM_PID"
BEFORE=$(wc -l <"$HIST")
SIMULATOR_PORT=$PORT start_bg sim2 "$SIM" --rate 200 --always-on --seed 4 --truth-log "$TRUTH" --history-file "$HIST"
SIM_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$PORT/health" 10
check "restart: every row restored" grep -q "history $HIST: $(( BEFORE )) row(s) restored" "$TEST_TMP/sim2.log"
probe again "send:{\"id\":2,$H,\"start_time\":\"$(iso $START)\",\"end_time\":\"$(iso $END)\",\"entity_ids\":[\"$E\"],\"significant_changes_only\":false}" 'wait:"id":2,'
check_eq "restart: the same rows are served" "$ROWS" "$(answer again 2 | jq -c ".result[\"$E\"]")"
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/sim/pause"
G=$(curl -s "http://127.0.0.1:$PORT/api/sim/stats" | jq .generated) # (also flushes the logs)
check_eq "the truth log holds every generated change, sent or not (both runs)" \
  "$((BEFORE + G))" "$(wc -l <"$TRUTH")"

# --- no history component ---------------------------------------------------------------------------
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/sim/history/off"
probe off "send:{\"id\":2,$H,\"start_time\":\"$(iso $START)\",\"entity_ids\":[\"$E\"]}" 'wait:"id":2,'
check_eq "history off: unknown_command" "unknown_command: Unknown command." "$(err_of off 2)"
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/sim/history/on"
curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/api/sim/history/fail/1"
probe fail "send:{\"id\":2,$H,\"start_time\":\"$(iso $START)\",\"entity_ids\":[\"$E\"]}" 'wait:"id":2,' \
  "send:{\"id\":3,$H,\"start_time\":\"$(iso $START)\",\"entity_ids\":[\"$E\"]}" 'wait:"id":3,'
check_eq "history/fail/1: the next call fails" "unknown_error: Unknown error" "$(err_of fail 2)"
check_eq "... and only that one" true "$(answer fail 3 | jq -r .success)"
check "simulator exits cleanly" stop_pid "$SIM_PID"
finish

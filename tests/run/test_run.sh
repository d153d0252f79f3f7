#!/usr/bin/env bash
# tests/run/test_run.sh -- `make run` as a user runs it, then Ctrl-C.
#
# Why: `make run` is the first thing a newcomer types. It must reach
# all-healthy, events from the (simulated) Home Assistant must arrive in
# storage, `homeiqctl validate` must pass against it, and Ctrl-C must leave no
# process behind. Ctrl-C is emulated as the terminal does it: SIGINT to the
# whole foreground process group (make, scripts/run and the services), which
# runs in a session of its own so that "no process left" can be checked
# exactly (nothing may remain in that session).
# Usage: test_run.sh REPO_ROOT BUILD_DIR MODE
#   MODE=make:   make -C REPO_ROOT run BUILD=BUILD_DIR (the build under test:
#                deps + build are no-ops there, then scripts/run); with
#                HOMEIQ_TEST_FRESH_CLONE=1: `make run` in a fresh copy of
#                REPO_ROOT (a full build, 20-60 s on 2 cores; CI covers the
#                fresh clone anyway, since .ci/run is `make test` on one)
#   MODE=script: REPO_ROOT/scripts/run with BUILD=BUILD_DIR (sanitizer builds,
#                whose CMake cache `make build` must not reconfigure)
. "$(dirname "$0")/../lib/common.sh"
ROOT=$1 BUILD_DIR=$2 MODE=${3:-make}
CTL=$BUILD_DIR/tools/homeiqctl/homeiqctl

export WEBSOCKET_INGESTION_PORT=$(free_port) ENRICHMENT_PIPELINE_PORT=$(free_port)
export DATA_STORAGE_PORT=$(free_port) SIMULATOR_PORT=$(free_port) ADMIN_API_PORT=$(free_port)
export DATA_DIR=$TEST_TMP/data RUN_LOG_DIR=$TEST_TMP   # service logs: $TEST_TMP/<name>.log
export RUN_STATUS_LINE_EVERY=1 RUN_HEALTH_TIMEOUT=60
unset HOME_ASSISTANT_URL HOME_ASSISTANT_TOKEN HOME_ASSISTANT_TOKEN_FILE STORAGE_BACKEND
unset HOMEIQ_API_TOKEN HOMEIQ_API_TOKEN_FILE   # make run generates $DATA_DIR/api-token
export WEBSOCKET_INGESTION_URL=http://127.0.0.1:$WEBSOCKET_INGESTION_PORT
export ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$ENRICHMENT_PIPELINE_PORT
export DATA_STORAGE_URL=http://127.0.0.1:$DATA_STORAGE_PORT

if [ "$MODE" = make ] && [ "${HOMEIQ_TEST_FRESH_CLONE:-0}" = 1 ] && git -C "$ROOT" rev-parse >/dev/null 2>&1; then
  # `make run` as on a fresh clone: a copy of the working tree (the files git
  # would clone plus untracked, non-ignored ones), built from scratch in its
  # own build/ (about 20-60 s on 2 cores).
  CLONE=$TEST_TMP/clone
  mkdir -p "$CLONE"
  (cd "$ROOT" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$CLONE" 2>/dev/null)
  ROOT=$CLONE BUILD_DIR=$CLONE/build CTL=$CLONE/build/tools/homeiqctl/homeiqctl
  CMD=(make -C "$ROOT" --no-print-directory run)
elif [ "$MODE" = make ]; then
  CMD=(make -C "$ROOT" --no-print-directory run "BUILD=$BUILD_DIR")
else
  CMD=(env "BUILD=$BUILD_DIR" "$ROOT/scripts/run")
fi
echo "running: ${CMD[*]}"
# A background job of a non-interactive shell starts with SIGINT ignored, and
# bash cannot trap a signal ignored at entry: restore the default, as a
# terminal session has it.
setsid env --default-signal=INT bash -c 'echo $$ >"$0"; exec "$@"' "$TEST_TMP/run.pid" "${CMD[@]}" \
  </dev/null >"$TEST_TMP/run.log" 2>&1 &
for _ in $(seq 300); do [ -s "$TEST_TMP/run.pid" ] && break; sleep 0.1; done
SID=$(cat "$TEST_TMP/run.pid")
session_procs() { ps -eo pid=,sid=,args= | awk -v s="$SID" '$2 == s'; }
# Safety net: whatever happens below, nothing of the session survives the test.
on_cleanup 'kill -KILL -- -"$SID" 2>/dev/null'

UP=0
for _ in $(seq 4200); do   # up to 420 s: make builds first
  grep -q 'every service is healthy' "$TEST_TMP/run.log" && { UP=1; break; }
  kill -0 "$SID" 2>/dev/null || break
  sleep 0.1
done
check_eq "make run reaches 'every service is healthy'" 1 "$UP"
[ "$UP" = 1 ] || { cat "$TEST_TMP/run.log"; finish; }

for url in "http://127.0.0.1:$SIMULATOR_PORT" "$WEBSOCKET_INGESTION_URL" "$ENRICHMENT_PIPELINE_URL" "$DATA_STORAGE_URL"; do
  check_eq "$url/health is 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")"
done
check "it prints a homeiqctl line to watch events" grep -q 'homeiqctl events -f' "$TEST_TMP/run.log"
check_eq "the first thing it prints after starting is the dashboard URL" "Dashboard: http://127.0.0.1:$ADMIN_API_PORT/" \
  "$(awk '/^run: started admin-api/ {on = 1; next} on && NF && !/^run: / {print $1, $2; exit}' "$TEST_TMP/run.log")"

# make run generated the API token, readable only by its owner; without it the
# APIs answer 401, with it they answer.
TOKEN_FILE=$DATA_DIR/api-token
check_eq "make run generated an API token file with mode 600" 600 "$(stat -c %a "$TOKEN_FILE" 2>/dev/null)"
check "... of 64 hex characters" grep -qxE '[0-9a-f]{64}' "$TOKEN_FILE"
check_eq "events without the token: 401" 401 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$DATA_STORAGE_URL/api/v1/events?limit=1")"
export HOMEIQ_API_TOKEN_FILE=$TOKEN_FILE
acurl() { curl -K- "$@" <<<"header = \"Authorization: Bearer $(cat "$TOKEN_FILE")\""; }
check_eq "the dashboard's page answers; its API says every hop is healthy (with the token)" '200 healthy' \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_API_PORT/") $(acurl -s "http://127.0.0.1:$ADMIN_API_PORT/api/v1/health" | jq -r .status)"

# Events from the simulated house arrive in storage.
N=0
for _ in $(seq 300); do
  N=$(acurl -s "$DATA_STORAGE_URL/api/v1/events?limit=100" | jq '[.events[] | select(.entity_id != "sensor.homeiq_validation")] | length')
  [ "${N:-0}" -gt 0 ] && break; sleep 0.1
done
check "simulated Home Assistant events arrive in storage ($N)" test "${N:-0}" -gt 0

OUT=$("$CTL" validate --timeout 30s); RC=$?
echo "$OUT"
check_eq "homeiqctl validate passes against make run" 0 "$RC"

# Not a terminal: the status comes as lines, at most one per RUN_STATUS_LINE_EVERY.
for _ in $(seq 300); do grep -q 'spool depth' "$TEST_TMP/run.log" && break; sleep 0.1; done
check "status lines with events/s, stored and spool depth" \
  grep -qE 'events/s [0-9]+  stored [0-9]+ .*spool depth [0-9]+' "$TEST_TMP/run.log"
check "no terminal control codes when stdout is not a TTY" bash -c "! grep -q $'\r' '$TEST_TMP/run.log'"

# Ctrl-C.
kill -INT -- -"$SID"
for _ in $(seq 300); do [ -z "$(session_procs)" ] && break; sleep 0.1; done
LEFT=$(session_procs)
check_eq "Ctrl-C leaves no process behind" "" "$LEFT"
check "scripts/run reported a clean stop" grep -q 'run: stopped' "$TEST_TMP/run.log"
for p in "$WEBSOCKET_INGESTION_PORT" "$ENRICHMENT_PIPELINE_PORT" "$DATA_STORAGE_PORT" "$SIMULATOR_PORT"; do
  check "port $p is free again" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null"
done
check "no service reported an error on shutdown" \
  bash -c "! grep -l 'exited unexpectedly' '$TEST_TMP/run.log'"
tail -n 5 "$TEST_TMP/run.log"

# A real HA that rejects the token: run stops at once with the reason and a
# hint, and leaves nothing behind. (The simulator stands in for HA.)
SIM_PORT=$(free_port)
start_bg badtoken-ha env SIMULATOR_PORT="$SIM_PORT" SIMULATOR_TOKEN=right "$BUILD_DIR/tools/ha-simulator/homeiq-ha-simulator"
wait_http "http://127.0.0.1:$SIM_PORT/health" 20 || bail "the stand-in HA (simulator) started"
setsid env HOME_ASSISTANT_URL="http://127.0.0.1:$SIM_PORT" HOME_ASSISTANT_TOKEN=wrong BUILD="$BUILD_DIR" \
  DATA_DIR="$TEST_TMP/data-badtoken" RUN_LOG_DIR="$TEST_TMP/badtoken" bash -c 'echo $$ >"$0"; exec "$@"' \
  "$TEST_TMP/bad.pid" "$ROOT/scripts/run" </dev/null >"$TEST_TMP/badtoken-run.log" 2>&1
RC=$?
SID=$(cat "$TEST_TMP/bad.pid")
cat "$TEST_TMP/badtoken-run.log" | cut -c1-160
check_eq "run with a rejected token exits 1" 1 "$RC"
check "... saying so, with the fix" grep -q 'Home Assistant rejected the token: create a long-lived access token' \
  "$TEST_TMP/badtoken-run.log"
check_eq "... and leaves no process behind" "" "$(session_procs)"
for f in "$TEST_TMP"/badtoken/*.log; do  # sanitizer reports are checked in $TEST_TMP/*.log
  cp "$f" "$TEST_TMP/badtoken-$(basename "$f")"
done
check "the stand-in HA exits cleanly" stop_pid "$PID_badtoken_ha"
finish

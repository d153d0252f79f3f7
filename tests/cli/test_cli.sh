#!/usr/bin/env bash
# tests/cli/test_cli.sh -- homeiqctl health / validate / events against the
# real pipeline: simulator -> websocket-ingestion -> enrichment-pipeline ->
# data-storage (SQLite), all on free loopback ports.
#
# Why: `validate` is the check operators trust during a migration, so it must
# pass on a working pipeline and fail -- clearly, naming the service -- when
# any one service is down. `events` must apply the storage API's filters and
# its follow mode must print each new event exactly once, oldest first.
# Usage: test_cli.sh HOMEIQCTL SIMULATOR DATA_STORAGE ENRICHMENT INGESTION
. "$(dirname "$0")/../lib/common.sh"
CTL=$1 SIM=$2 STORAGE=$3 ENRICH=$4 INGEST=$5

SIM_PORT=$(free_port) ST_PORT=$(free_port) EN_PORT=$(free_port) IN_PORT=$(free_port)
export DATA_DIR=$TEST_TMP/data
export WEBSOCKET_INGESTION_URL=http://127.0.0.1:$IN_PORT
export ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$EN_PORT
export DATA_STORAGE_URL=http://127.0.0.1:$ST_PORT
export HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN=cli-test-token
export SIMULATOR_TOKEN=cli-test-token

start_storage() { start_bg storage env DATA_STORAGE_PORT="$ST_PORT" "$STORAGE"; }
start_enrich() { start_bg enrich env ENRICHMENT_PIPELINE_PORT="$EN_PORT" "$ENRICH"; }
start_ingest() { start_bg ingest env WEBSOCKET_INGESTION_PORT="$IN_PORT" "$INGEST"; }
all_healthy() {
  wait_healthy "$DATA_STORAGE_URL/health" 30 && wait_healthy "$ENRICHMENT_PIPELINE_URL/health" 30 &&
    wait_healthy "$WEBSOCKET_INGESTION_URL/health" 30
}

start_bg sim env SIMULATOR_PORT="$SIM_PORT" "$SIM"
wait_http "http://127.0.0.1:$SIM_PORT/health" 20 || bail "simulator started"
start_storage; start_enrich; start_ingest
check "all three services healthy" all_healthy

# ---- health ------------------------------------------------------------
OUT=$("$CTL" health); RC=$?
echo "$OUT"
check_eq "health exits 0 when all are healthy" 0 "$RC"
check_eq "health table shows three healthy rows" 3 "$(grep -c ' 200  healthy ' <<<"$OUT")"
check_eq "health --json" true "$("$CTL" health --json | jq '[.[] | .healthy] | all')"
# --probe (issue 18): one more row per replica / server, counted in the exit status
OUT=$("$CTL" health --probe "extra=$DATA_STORAGE_URL/health" --probe "gone=http://127.0.0.1:$(free_port)/health"); RC=$?
check_eq "health --probe: a probe that does not answer -> exit 1" 1 "$RC"
check "health --probe: the answering probe is a healthy row" grep -q '^extra .* 200  healthy ' <<<"$OUT"
check "health --probe: the silent probe is a DOWN row" grep -q '^gone .* -  *DOWN ' <<<"$OUT"
check_eq "health --probe without NAME=URL -> usage error (2)" 2 "$("$CTL" health --probe nourl >/dev/null 2>&1; echo $?)"

# ---- validate ------------------------------------------------------------
OUT=$("$CTL" validate --timeout 20s); RC=$?
echo "$OUT"
check_eq "validate passes on a working pipeline" 0 "$RC"
check_eq "validate prints five PASS lines" 5 "$(grep -c '^PASS  ' <<<"$OUT")"
check "validate prints the summary" grep -q '^validate: PASS' <<<"$OUT"
CTX=$(sed -n 's/.*context_id \([0-9A-Z]\{26\}\).*/\1/p' <<<"$OUT" | head -1)
check "validate names its test event's context id ($CTX)" test -n "$CTX"
check_eq "the test event is stored exactly once, by identity" 1 \
  "$(curl -s "$DATA_STORAGE_URL/api/v1/events?entity_id=sensor.homeiq_validation&limit=100" |
     jq --arg c "$CTX" '[.events[] | select(.context_id == $c)] | length')"
OUT2=$("$CTL" validate --timeout 20s)
CTX2=$(sed -n 's/.*context_id \([0-9A-Z]\{26\}\).*/\1/p' <<<"$OUT2" | head -1)
check "a second run uses a new identity and passes too" test "$CTX2" != "$CTX" -a -n "$CTX2"
# --home (issue 18): the test event must be served as that home's; this ingestion is the default home's
check_eq "validate --home default passes (the ingestion's home)" 0 "$("$CTL" validate --home default --timeout 20s >/dev/null; echo $?)"
OUT3=$("$CTL" --home other validate --timeout 2s); RC=$?
check_eq "homeiqctl --home other validate fails: the event is the default home's, not other's" 1 "$RC"
check "... the storage check is the one that failed" grep -q '^FAIL  data-storage did not serve the test event' <<<"$OUT3"

# ---- events --------------------------------------------------------------
post_enriched() { # post_enriched JSON : straight to storage
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" \
    "$DATA_STORAGE_URL/api/v1/events"
}
REC='{"event_type":"%s","entity_id":"%s","time_fired":"%s","state":"%s","context_id":"%s"}'
BATCH="[$(printf "$REC" state_changed light.cli_kitchen 2025-03-01T10:00:00Z on cli-1),$(printf "$REC" \
  state_changed light.cli_kitchen 2025-03-01T11:00:00Z off cli-2),$(printf "$REC" call_service \
  switch.cli_pump 2025-03-01T12:00:00Z on cli-3)]"
check_eq "fixture events stored" 200 "$(post_enriched "$BATCH")"

OUT=$("$CTL" events --entity-id light.cli_kitchen); RC=$?
echo "$OUT"
check_eq "events exits 0" 0 "$RC"
check "events prints a table header" grep -q '^TIME_FIRED  *EVENT_TYPE  *ENTITY_ID  *STATE' <<<"$OUT"
check_eq "events --entity-id: newest first" "2025-03-01T11:00:00Z 2025-03-01T10:00:00Z" \
  "$(awk '/light.cli_kitchen/ {print $1}' <<<"$OUT" | xargs)"
check_eq "events --json --entity-id --limit 1" '1 cli-2' \
  "$("$CTL" events --json --entity-id light.cli_kitchen --limit 1 | jq -r '"\(.count) \(.events[0].context_id)"')"
check_eq "events --offset" cli-1 \
  "$("$CTL" events --json --entity-id light.cli_kitchen --limit 1 --offset 1 | jq -r '.events[0].context_id')"
# The simulated house sends switch and call_service events of its own (time "now"):
# the fixture's day keeps them out.
FIXTURE_DAY=(--start 2025-03-01T00:00:00Z --end 2025-03-02T00:00:00Z)
check_eq "events --domain" cli-3 \
  "$("$CTL" events --json --domain switch "${FIXTURE_DAY[@]}" | jq -r '[.events[].context_id] | join(",")')"
check_eq "events --event-type" cli-3 \
  "$("$CTL" events --json --event-type call_service "${FIXTURE_DAY[@]}" | jq -r '[.events[].context_id] | join(",")')"
check_eq "events --start/--end (start inclusive, end exclusive)" cli-2 \
  "$("$CTL" events --json --domain light --start 2025-03-01T11:00:00Z --end 2025-03-01T12:00:00Z |
     jq -r '[.events[].context_id] | join(",")')"
ERR=$("$CTL" events --limit 0 2>&1); RC=$?
check "a bad filter fails (exit $RC) naming the parameter: $ERR" bash -c "[ $RC -ne 0 ] && grep -q limit <<<'$ERR'"
check "... as every subcommand says an HTTP error: service, path, status, reason" \
  grep -q '^homeiqctl: data-storage /api/v1/events?[^ ]*: HTTP 400: .*limit' <<<"$ERR"
GONE=http://127.0.0.1:$(free_port)
for args in "events --entity-id x" "homes" "stats --entity x"; do
  ERR=$(DATA_STORAGE_URL=$GONE "$CTL" $args 2>&1); RC=$?
  check "$args: storage not there says so (exit $RC): $ERR" grep -q "^homeiqctl: data-storage at $GONE: no answer: " <<<"$ERR"
done

# Follow: prints the last events, then each new one once, oldest first.
"$CTL" events -f --json --interval 200ms --entity-id sensor.cli_follow >"$TEST_TMP/follow.log" 2>&1 &
FOLLOW=$!
TEST_PIDS+=("$FOLLOW")
sleep 0.5
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
post_enriched "[$(printf "$REC" cli_follow sensor.cli_follow "${NOW}.000001Z" 1 f-1)]" >/dev/null
sleep 0.5
# Two at the same time_fired plus a later one (not state_changed: one entity's state changes
# at one time are one record, docs/EVENTS.md), in one batch (newest first from the API).
post_enriched "[$(printf "$REC" cli_follow sensor.cli_follow "${NOW}.000002Z" 2 f-2),$(printf "$REC" \
  cli_follow sensor.cli_follow "${NOW}.000002Z" 3 f-3),$(printf "$REC" cli_follow sensor.cli_follow \
  "${NOW}.000003Z" 4 f-4)]" >/dev/null
for _ in $(seq 300); do [ "$(grep -c cli_follow "$TEST_TMP/follow.log")" -ge 4 ] && break; sleep 0.1; done
sleep 0.5 # a few more polls: nothing may be printed twice
kill -INT "$FOLLOW"; wait "$FOLLOW"; RC=$?
check_eq "events -f stops with exit 0 on SIGINT" 0 "$RC"
GOT=$(jq -r '.context_id' "$TEST_TMP/follow.log" | xargs)
check "events -f printed every new event once, oldest first ($GOT)" \
  bash -c "[ '$GOT' = 'f-1 f-2 f-3 f-4' ] || [ '$GOT' = 'f-1 f-3 f-2 f-4' ]"

# ---- validate fails clearly when a service is down -------------------------
validate_down() { # validate_down SERVICE-NAME : runs validate, checks the failure names it
  local out rc
  out=$("$CTL" validate --timeout 3s); rc=$?
  echo "$out"
  check "validate fails while $1 is down (exit $rc)" test "$rc" = 1
  check "... with a FAIL line naming $1 as down" grep -q "^FAIL  $1 GET /health: service down" <<<"$out"
  check "... and the FAIL summary" grep -q '^validate: FAIL' <<<"$out"
  OUT=$out
}

stop_pid "$PID_ingest"; check_eq "websocket-ingestion exits cleanly" 0 $?
validate_down websocket-ingestion
check "... and says the test event was not accepted" grep -q '^FAIL  websocket-ingestion POST /api/v1/events/forward: no answer' <<<"$OUT"
OUT=$("$CTL" health); RC=$?
check "health exits 1 when a service is down" test "$RC" = 1
check "health marks it DOWN" grep -q '^websocket-ingestion .* -  *DOWN ' <<<"$OUT"
start_ingest
check "websocket-ingestion healthy again" wait_healthy "$WEBSOCKET_INGESTION_URL/health" 30

stop_pid "$PID_enrich"; check_eq "enrichment-pipeline exits cleanly" 0 $?
validate_down enrichment-pipeline
check "... and says storage did not serve the event" grep -q '^FAIL  data-storage did not serve the test event' <<<"$OUT"
start_enrich
check "pipeline healthy again" all_healthy
# The event validate posted while enrichment was down was spooled, not lost.
PENDING=$(sed -n 's/.*context_id \([0-9A-Z]\{26\}\).*/\1/p' <<<"$OUT" | head -1)
ARRIVED=0
for _ in $(seq 100); do
  ARRIVED=$(curl -s "$DATA_STORAGE_URL/api/v1/events?entity_id=sensor.homeiq_validation&limit=100" |
            jq --arg c "$PENDING" '[.events[] | select(.context_id == $c)] | length')
  [ "$ARRIVED" = 1 ] && break; sleep 0.1
done
check_eq "the test event posted while enrichment was down arrives after its restart" 1 "$ARRIVED"

stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
validate_down data-storage
start_storage
check "pipeline healthy again" all_healthy
OUT=$("$CTL" validate --timeout 20s); RC=$?
check_eq "validate passes again after the restarts" 0 "$RC"

for p in "$PID_ingest" "$PID_enrich" "$PID_storage" "$PID_sim"; do
  stop_pid "$p"; check_eq "${TEST_PID_NAME[$p]} (pid $p) exits cleanly at the end" 0 $?
done
finish

#!/usr/bin/env bash
# retention_overrides.sh -- RETENTION_OVERRIDES on the SQLite store: per-domain
# and per-entity retention of raw events, on the real data-storage binary.
#
# Use: retention_overrides.sh /path/to/homeiq-data-storage
# Covers: 60 days of one state a day for three entities; restarted with
# RETENTION_DAYS=30 RETENTION_OVERRIDES="sensor.keep=0, light=7": the entity
# rule keeps everything, the domain rule 7 days, the rest 30; statistics of
# every entity are kept (hourly rows of purged days); /health lists the rules;
# bad values stop the start with an error naming the entry.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: retention_overrides.sh /path/to/homeiq-data-storage}
export STORAGE_BACKEND=sqlite LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216 STORAGE_MIN_FREE_BYTES=0
echo "# retention overrides (SQLite)"

start_storage() {   # start_storage NAME [VAR=VALUE...] : sets U and SPID
  local name=$1; shift
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
jqe() { jq -e "$@" >/dev/null; }
count() { curl -s "$U/api/v1/events?entity_id=$1&limit=10000" | jq .count; }

NOW=$(date +%s)
jq -nc --argjson now "$NOW" '{events: [range(60) as $d | ("sensor.keep", "light.porch", "sensor.other") as $e |
  {event_type: "state_changed", entity_id: $e, domain: ($e | split(".")[0]), object_id: ($e | split(".")[1]),
   time_fired: (($now - $d * 86400 - 7200) | todate), state: ($d | tostring), value: $d,
   state_class: "measurement", attributes: {}}]}' >"$TEST_TMP/events.json"
start_storage storage || bail "data-storage starts"
check_eq "180 events over 60 days stored" 180 \
  "$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/events.json" | jq .stored)"
check "stop: exit 0" stop_pid "$SPID"

start_storage storage_r RETENTION_DAYS=30 RETENTION_OVERRIDES="sensor.keep=0, light=7" PURGE_INTERVAL_MS=100 \
  PURGE_STEP_MS=5 PURGE_STEP_ROWS=10 || bail "data-storage with overrides starts"
done_purging() { curl -s "$U/health" | jqe '.backend.retention.events_purged == 83 and .backend.retention.purging == false'; }
check "83 events purged in steps of 10 (53 light, 30 others)" wait_for 60 done_purging
check_eq "sensor.keep=0: every event kept" 60 "$(count sensor.keep)"
check_eq "light=7: the last 7 days kept" 7 "$(count light.porch)"
check_eq "RETENTION_DAYS=30 for the rest" 30 "$(count sensor.other)"
check "/health lists the overrides" \
  jqe '.backend.retention.overrides == {"sensor.keep": 0, "light": 7}' <(curl -s "$U/health")
OLD=$(date -u -d "@$((NOW - 50 * 86400 - 86400))" +%Y-%m-%dT%H:00:00Z)
curl -s "$U/api/v1/statistics?entity_id=light.porch,sensor.other&period=hour&start=$OLD&end=$(date -u -d "@$((NOW - 40 * 86400))" +%Y-%m-%dT%H:00:00Z)" >"$TEST_TMP/st.json"
check "hourly statistics of purged days are kept" \
  jqe '(.["light.porch"] | length) >= 240 and (.["sensor.other"] | length) >= 240' "$TEST_TMP/st.json"
check "stop: exit 0" stop_pid "$SPID"

for bad in "light=abc" "light=7,light=8" "sensor.x" "=5" "light=-1" "light=7,,"; do
  env DATA_DIR="$TEST_TMP/data" DATA_STORAGE_PORT=$(free_port) RETENTION_OVERRIDES="$bad" timeout 20 "$BIN" \
    >"$TEST_TMP/bad.log" 2>&1
  rc=$?
  check "RETENTION_OVERRIDES=\"$bad\": the start fails (exit $rc) naming the variable" \
    bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'RETENTION_OVERRIDES' '$TEST_TMP/bad.log'"
done
finish

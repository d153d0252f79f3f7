#!/usr/bin/env bash
# stats_influx_suite.sh -- long-term statistics and retention policies on the
# InfluxDB backend: the real data-storage binary against a real influxd.
#
# Use: stats_influx_suite.sh /path/to/homeiq-data-storage
# Covers: the known-answer series of stats_series.py (constant, step,
# sawtooth, irregular spacing, a gap, a meter reset, last_reset cycles, on/off
# not counted) posted shuffled in batches with re-posts, compared with the
# independent computation to 1e-9; every batch re-posted changes nothing;
# SIGKILL of data-storage during batches, restart and re-send: no row missing
# or counted twice; the rows are a measurement homeiq_statistics in the
# retention policies homeiq_stats_5min / homeiq_stats_hour; retention
# policies created for a new database from RETENTION_DAYS, an existing policy
# with another duration left alone and warned about in the log and /health.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

BIN=${1:?usage: stats_influx_suite.sh /path/to/homeiq-data-storage}
SERIES="python3 $here/stats_series.py"
export STORAGE_BACKEND=influxdb INFLUXDB_STATISTICS=1 LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216 INFLUXDB_PING_INTERVAL_MS=200
echo "# statistics suite, InfluxDB"
influxd_start || bail "influxd starts"

start_storage() {   # start_storage NAME [VAR=VALUE...] : sets U and SPID
  local name=$1; shift
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
post_file() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
stats_get() { curl -s -o "$2" -w '%{http_code}' "$U/api/v1/statistics?$1"; }
influxql() { curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"; }
jqe() { jq -e "$@" >/dev/null; }

# ---- a new database: retention policies from RETENTION_DAYS -----------------
export INFLUXDB_DATABASE=homeiq_stats
start_storage storage RETENTION_DAYS=30 STATISTICS_5MIN_RETENTION_DAYS=10 || bail "data-storage starts"
influxql "" "SHOW RETENTION POLICIES ON homeiq_stats" >"$TEST_TMP/rp.json"
check "new database: default policy homeiq_raw keeps 30 days (720h)" \
  jqe '.results[0].series[0].values | map(select(.[4] == true))[0] | .[0] == "homeiq_raw" and .[1] == "720h0m0s"' "$TEST_TMP/rp.json"
check "homeiq_stats_5min keeps 10 days, homeiq_stats_hour forever" \
  jqe '(.results[0].series[0].values | map({(.[0]): .[1]}) | add) as $p | $p.homeiq_stats_5min == "240h0m0s" and $p.homeiq_stats_hour == "0s"' "$TEST_TMP/rp.json"
check "/health: no retention warning" jqe '.backend.retention.warnings == []' <(curl -s "$U/health")

# ---- known answers, out of order, duplicates --------------------------------
T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
$SERIES gen "$T0" "$TEST_TMP" || bail "generate series"
START=$(date -u -d "@$((T0 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/expected.json"),light.porch
n=$(jq length "$TEST_TMP/records.json"); ok=1; k=0
for ((i = 0; i < n; i += 97)); do
  jq -c --argjson i $i '{events: .[$i:$i+97]}' "$TEST_TMP/records.json" >"$TEST_TMP/b_$k.json"
  [ "$(post_file "$TEST_TMP/b_$k.json")" = 200 ] || ok=0
  if (( k % 3 == 1 )); then [ "$(post_file "$TEST_TMP/b_$((k - 1)).json")" = 200 ] || ok=0; fi  # a retry
  k=$((k + 1))
done
check "$k shuffled batches (and re-posts) answered 200" [ $ok = 1 ]
r5=$(stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/got5.json")
rh=$(stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/goth.json")
check_eq "statistics 5minute and hour answer 200" "200 200" "$r5 $rh"
check "5-minute and hourly rows equal the independent computation (1e-9)" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/got5.json" "$TEST_TMP/goth.json"
check "on/off entity has no statistics" jqe 'has("light.porch") | not' "$TEST_TMP/goth.json"
check "measurement rows have no sum, totals do" \
  jqe '(.["sensor.step"][0].sum == null) and (.["sensor.meter"][-1].sum > 0) and (.["sensor.cost"][-1].sum > 0)' "$TEST_TMP/goth.json"
for ((j = 0; j < k; j++)); do post_file "$TEST_TMP/b_$j.json" >/dev/null; done
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/got5b.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/gothb.json" >/dev/null
# a re-post recomputes its range (a duplicate marks its entity dirty: that is what makes a crash between
# the events' write and the statistics' write harmless), so a cumulative sum may differ in its last bits
nosum() { jq -S 'walk(if type == "object" then del(.sum, .change) else . end)' "$1"; }
check "re-posting every batch changes no row and no value but the sums' rounding" \
  cmp -s <(nosum "$TEST_TMP/got5.json") <(nosum "$TEST_TMP/got5b.json")
check "... and the sums still equal the independent computation (1e-9)" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/got5b.json" "$TEST_TMP/gothb.json"
stats_get "entity_id=sensor.sawtooth&period=day&start=$START" "$TEST_TMP/day.json" >/dev/null
check "day row merged from the hours: count = every sample (300)" \
  jqe '([.["sensor.sawtooth"][].count] | add) == 300' "$TEST_TMP/day.json"
influxql homeiq_stats 'SELECT count("count") FROM "homeiq_stats_hour"."homeiq_statistics" WHERE "entity_id" = '"'sensor.step'" >"$TEST_TMP/ih.json"
check "hourly rows are points of homeiq_statistics in policy homeiq_stats_hour" \
  jqe --slurpfile h "$TEST_TMP/goth.json" '.results[0].series[0].values[0][1] >= ($h[0]["sensor.step"] | length)' "$TEST_TMP/ih.json"
influxql homeiq_stats 'SELECT count("count") FROM "homeiq_stats_5min"."homeiq_statistics" WHERE "period" = '"'5minute'" >"$TEST_TMP/i5.json"
check "5-minute rows are in policy homeiq_stats_5min" jqe '.results[0].series[0].values[0][1] > 0' "$TEST_TMP/i5.json"
check "/health counts the statistics update" \
  jqe '.backend.statistics.enabled and .backend.statistics.entities_updated > 0 and .backend.statistics.failures == 0' <(curl -s "$U/health")
code=$(curl -s -o "$TEST_TMP/err.json" -w '%{http_code}' "$U/api/v1/statistics?entity_id=sensor.step&start=$START&period=year")
check_eq "a bad parameter is still a 400" 400 "$code"
# a new entity's second state, in the same 5-minute period as its first, in the next batch
TN=$(( $(date +%s) / 300 * 300 - 1800 ))
for v in 1:0 3:60; do
  jq -nc --argjson t $((TN + ${v#*:})) --arg v "${v%:*}" '{events: [{event_type: "state_changed", entity_id: "sensor.fresh",
    domain: "sensor", object_id: "fresh", time_fired: ($t | todate), state: $v, value: ($v | tonumber),
    state_class: "measurement", attributes: {}}]}' >"$TEST_TMP/fresh.json"
  post_file "$TEST_TMP/fresh.json" >/dev/null
done
stats_get "entity_id=sensor.fresh&period=5minute&start=$(date -u -d "@$TN" +%Y-%m-%dT%H:%M:%SZ)" "$TEST_TMP/fresh5.json" >/dev/null
check "a new entity's two states in one period, posted apart: count 2, mean (1*60+3*240)/300, max 3" \
  jqe '.["sensor.fresh"][0] | .count == 2 and .max == 3 and (.mean - 2.6 | fabs) < 1e-9' "$TEST_TMP/fresh5.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- SIGKILL during batches: nothing missing, nothing counted twice ----------
export INFLUXDB_DATABASE=homeiq_kill
T1=$(( $(date +%s) / 3600 * 3600 - 3 * 3600 ))
mkdir -p "$TEST_TMP/k" && $SERIES gen "$T1" "$TEST_TMP/k" || bail "generate series (kill test)"
start_storage storage_k || bail "data-storage (kill test) starts"
n=$(jq length "$TEST_TMP/k/records.json"); kills=0; ok=1; k=0
for ((i = 0; i < n; i += 60)); do
  jq -c --argjson i $i '{events: .[$i:$i+60]}' "$TEST_TMP/k/records.json" >"$TEST_TMP/k/b.json"
  if (( k % 4 == 2 )); then
    # the batch in flight when the process dies: like ingestion, re-send it after the restart
    post_file "$TEST_TMP/k/b.json" >/dev/null &
    cpid=$!
    sleep "0.0$((RANDOM % 3))$((RANDOM % 9))"
    kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; wait "$cpid" 2>/dev/null; _forget_pid "$SPID"
    kills=$((kills + 1))
    start_storage storage_k$kills || bail "restart after SIGKILL $kills"
  fi
  [ "$(post_file "$TEST_TMP/k/b.json")" = 200 ] || ok=0
  k=$((k + 1))
done
check "$kills SIGKILLs, every batch re-sent and answered 200" [ $ok = 1 ]
START=$(date -u -d "@$((T1 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/k/expected.json")
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/k/got5.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/k/goth.json" >/dev/null
check "after SIGKILLs and restarts: statistics equal the independent computation" \
  $SERIES check "$TEST_TMP/k/expected.json" "$TEST_TMP/k/got5.json" "$TEST_TMP/k/goth.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- the statistics write fails after the events were written ---------------
TL=$(( ($(date +%s) - 8 * 86400) / 3600 * 3600 ))
late_batch() {   # late_batch ENTITY : 10 states of value 7, a minute apart, from 8 days ago
  jq -nc --argjson t "$TL" --arg e "$1" '{events: [range(10) as $i | {event_type: "state_changed", entity_id: $e,
    domain: "sensor", object_id: ($e | split(".")[1]), time_fired: (($t + 60 * $i) | todate), state: "7", value: 7,
    state_class: "measurement", attributes: {state_class: "measurement"}}]}'
}
start_storage storage_f || bail "data-storage (fault test) starts"
# InfluxDB refuses the rows themselves (a string "count" in the hourly shard of 8 days ago: field type
# conflict): the events are stored, so the batch is acknowledged -- it must not block the ones behind it --
# and the refusal is counted and said.
curl -s -o /dev/null -XPOST "$INFLUXDB_URL/write?db=$INFLUXDB_DATABASE&rp=homeiq_stats_hour&precision=s" \
  --data-binary "homeiq_statistics,entity_id=poison,period=hour count=\"x\" $TL"
late_batch sensor.refused >"$TEST_TMP/late1.json"
check_eq "hourly rows refused by InfluxDB (400): the batch is still answered 200" 200 "$(post_file "$TEST_TMP/late1.json")"
check "... /health counts the refusal and says why" \
  jqe '.backend.statistics.refused == 1 and (.backend.statistics.last_refusal | test("conflict"))' <(curl -s "$U/health")
check "... and the log" grep -q "statistics rows refused by InfluxDB" "$TEST_TMP/storage_f.log"
# Deterministic form of "killed between the events and their statistics": the hourly policy is dropped,
# so the statistics write fails (500) after the events were written: 503. data-storage prepares the
# database again (the policy comes back); the re-sent batch is all duplicates -- and its statistics must
# still be computed (nothing later recomputes that range).
influxql "" "DROP RETENTION POLICY homeiq_stats_hour ON $INFLUXDB_DATABASE" >/dev/null
late_batch sensor.late >"$TEST_TMP/late.json"
check_eq "hourly policy gone: the batch is answered 503" 503 "$(post_file "$TEST_TMP/late.json")"
check "... with the statistics' reason" grep -q "statistics" "$TEST_TMP/resp"
check_eq "... although its 10 events are in InfluxDB" 10 \
  "$(influxql "$INFLUXDB_DATABASE" "SELECT count(\"event_id\") FROM \"home_assistant_events\" WHERE \"entity_id\" = 'sensor.late'" | jq '.results[0].series[0].values[0][1]')"
check "the policy is created again, healthy" wait_healthy "$U/health" 20 "$SPID"
check_eq "the re-sent batch is answered 200" 200 "$(post_file "$TEST_TMP/late.json")"
check_eq "... every event a duplicate" 10 "$(jq .duplicates "$TEST_TMP/resp")"
stats_get "entity_id=sensor.late&period=hour&start=$(date -u -d "@$TL" +%Y-%m-%dT%H:%M:%SZ)" "$TEST_TMP/lateh.json" >/dev/null
check "... and its statistics were computed: one hour, mean 7, count 10" \
  jqe '.["sensor.late"] | length == 1 and .[0].mean == 7 and .[0].count == 10' "$TEST_TMP/lateh.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- an existing database: its policies are the user's ----------------------
influxql "" 'CREATE DATABASE "users_db" WITH DURATION 14d REPLICATION 1 NAME "mine"' >/dev/null
influxql "" 'CREATE RETENTION POLICY "homeiq_stats_5min" ON "users_db" DURATION 3d REPLICATION 1' >/dev/null
export INFLUXDB_DATABASE=users_db
start_storage storage_u RETENTION_DAYS=30 RETENTION_OVERRIDES=light=7 || bail "data-storage on an existing database starts"
influxql "" "SHOW RETENTION POLICIES ON users_db" >"$TEST_TMP/rpu.json"
check "the user's default policy is not changed (mine, 14 days)" \
  jqe '.results[0].series[0].values | map(select(.[4] == true))[0] | .[0] == "mine" and .[1] == "336h0m0s"' "$TEST_TMP/rpu.json"
check "the user's homeiq_stats_5min (3 days) is left as it is; homeiq_stats_hour created" \
  jqe '(.results[0].series[0].values | map({(.[0]): .[1]}) | add) as $p | $p.homeiq_stats_5min == "72h0m0s" and $p.homeiq_stats_hour == "0s"' "$TEST_TMP/rpu.json"
curl -s "$U/health" >"$TEST_TMP/hu.json"
check "/health warns: default policy keeps 336h but RETENTION_DAYS is 30d" \
  jqe '.backend.retention.warnings | any(test("\"mine\".*336h.*RETENTION_DAYS is 30d"))' "$TEST_TMP/hu.json"
check "/health warns about homeiq_stats_5min's 72h" \
  jqe '.backend.retention.warnings | any(test("homeiq_stats_5min.*72h.*STATISTICS_5MIN_RETENTION_DAYS"))' "$TEST_TMP/hu.json"
check "/health says RETENTION_OVERRIDES is not applied on InfluxDB" \
  jqe '.backend.retention.warnings | any(test("RETENTION_OVERRIDES is applied by the sqlite backend only"))' "$TEST_TMP/hu.json"
check "the log says it too" grep -q 'does not change an existing policy' "$TEST_TMP/storage_u.log"
check "stop: exit 0" stop_pid "$SPID"
finish

#!/usr/bin/env bash
# stats_suite.sh -- long-term statistics and retention on the real
# data-storage binary, on either backend: a real SQLite file, or a real influxd.
#
# Use: stats_suite.sh sqlite|influxdb /path/to/homeiq-data-storage [/path/to/homeiqctl]
# Both backends: known-answer series (stats_series.py: constant, step,
# sawtooth, irregular spacing, a gap, a meter reset, a total with last_reset
# cycles, on/off not counted) posted shuffled in batches with re-posted
# duplicates, compared with an independent computation to 1e-9; the same
# series posted in time order (the live case: the running state per entity,
# /health fast_updates) to 1e-9, then every batch re-posted; 400s naming the
# parameter; SIGKILL during batches, restart and re-send: no row missing or
# counted twice.
# sqlite: purge of raw events older than RETENTION_DAYS in time-bounded steps,
# the file shrinking, hourly statistics kept; the disk guard on a small tmpfs
# (root only; otherwise skipped, exit 77).
# influxdb: rows in homeiq_statistics in the policies homeiq_stats_5min /
# homeiq_stats_hour; statistics on by default; rows refused / a policy gone;
# RETENTION_OVERRIDES applied by DELETE in steps (entity beats domain, hourly
# statistics of deleted raw points kept); an existing database's policies left
# alone and warned about.
# influxdb with STATS_INFLUX_SCHEMA=homeassistant (INFLUXDB_SCHEMA=homeassistant):
# the known answers, the time-ordered run, the catch-up of history stored with
# STATISTICS=0 (with a SIGKILL in it), the SIGKILLs during batches and the
# refused / failed statistics writes, all computed from the identity points
# (homeiq_ids); the expected rows leave out the states HA's integration skips
# (unknown, unavailable, empty: not stored on that schema).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BACKEND=${1:?usage: stats_suite.sh sqlite|influxdb|clickhouse /path/to/homeiq-data-storage [/path/to/homeiqctl]}
BIN=${2:?usage: stats_suite.sh sqlite|influxdb /path/to/homeiq-data-storage [/path/to/homeiqctl]}
CTL=${3:-}
SERIES="python3 $here/stats_series.py"
export STORAGE_BACKEND=$BACKEND LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216
HA_SCHEMA= EVENTS_MEASUREMENT=home_assistant_events
if [ "$BACKEND" = influxdb ] && [ "${STATS_INFLUX_SCHEMA:-homeiq}" = homeassistant ]; then
  HA_SCHEMA=ha EVENTS_MEASUREMENT=homeiq_ids; export INFLUXDB_SCHEMA=homeassistant
fi
echo "# statistics suite, $BACKEND${HA_SCHEMA:+, INFLUXDB_SCHEMA=homeassistant}"
case $BACKEND in
  sqlite) ;;
  influxdb) . "$here/../lib/influxd.sh"; export INFLUXDB_PING_INTERVAL_MS=200; influxd_start || bail "influxd starts" ;;
  # ClickHouse (issue 18): the known answers, re-posts and SIGKILLs on a real clickhouse-server
  # (CLICKHOUSE_STATISTICS=1); its retention is tests/storage/test_clickhouse_retention.sh
  clickhouse) . "$here/../lib/clickhouse.sh"
              if [ -n "${STATS_CLICKHOUSE_CLUSTER:-}" ]; then
                # the same suite on the loopback cluster (ZooKeeper; shard 1 = ch1 + ch2, shard 2 = ch3):
                # statistics tables ON CLUSTER, rows sharded by home + entity, read through Distributed
                . "$here/../lib/zookeeper.sh"
                zookeeper_start || bail "zookeeper starts"
                clickhouse_cluster_start || bail "the ClickHouse cluster starts"
                export CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP_ch1
                echo "# on the cluster homeiq (2 shards, 2 + 1 replicas)"
              else
                clickhouse_start stats || bail "clickhouse-server starts"
              fi
              export CLICKHOUSE_STATISTICS=1 CLICKHOUSE_PING_INTERVAL_MS=200 ;;
  *) bail "unknown backend $BACKEND" ;;
esac

# start_storage NAME STORE [VAR=VALUE...] : starts one on STORE (sqlite: the
# DATA_DIR $TEST_TMP/STORE; influxdb: the database homeiq_STORE); sets U, SPID.
start_storage() {
  local name=$1 where=$2; shift 2
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  case $BACKEND in
    sqlite) set -- DATA_DIR="$TEST_TMP/$where" "$@" ;;
    influxdb) set -- INFLUXDB_DATABASE="homeiq_$where" "$@" ;;
    clickhouse) set -- DATA_DIR="$TEST_TMP/$where" CLICKHOUSE_DATABASE="homeiq_$where" "$@" ;;
  esac
  start_bg "$name" env DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
post_file() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
# influxdb: the rows of acknowledged batches are written by the next flush (INFLUXDB_STATISTICS_FLUSH_MS):
# wait for it before reading them
stats_get() {
  if [ "$BACKEND" = influxdb ]; then influx_stats_settled "$U" || return 1; fi
  curl -s -o "$2" -w '%{http_code}' "$U/api/v1/statistics?$1"
}
jqe() { jq -e "$@" >/dev/null; }
influxql() { curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"; }

if [ "$BACKEND" = influxdb ]; then
# ---- a new database: retention policies from RETENTION_DAYS -----------------
start_storage storage stats RETENTION_DAYS=30 STATISTICS_5MIN_RETENTION_DAYS=10 || bail "data-storage starts"
influxql "" "SHOW RETENTION POLICIES ON homeiq_stats" >"$TEST_TMP/rp.json"
check "new database: default policy homeiq_raw keeps 30 days (720h)" \
  jqe '.results[0].series[0].values | map(select(.[4] == true))[0] | .[0] == "homeiq_raw" and .[1] == "720h0m0s"' "$TEST_TMP/rp.json"
check "homeiq_stats_5min keeps 10 days, homeiq_stats_hour forever" \
  jqe '(.results[0].series[0].values | map({(.[0]): .[1]}) | add) as $p | $p.homeiq_stats_5min == "240h0m0s" and $p.homeiq_stats_hour == "0s"' "$TEST_TMP/rp.json"
check "/health: no retention warning" jqe '.backend.retention.warnings == []' <(curl -s "$U/health")
else
start_storage storage data PURGE_INTERVAL_MS=200 || bail "data-storage starts"
fi

# ---- known answers, out of order, duplicates --------------------------------
T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
$SERIES gen "$T0" "$TEST_TMP" $HA_SCHEMA || bail "generate series"
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
if [ -n "$HA_SCHEMA" ]; then
  influxql homeiq_stats 'SHOW MEASUREMENTS' >"$TEST_TMP/meas.json"
  check "HA's schema: HA's points (measurement W, the unit) and identity points stored, no state_changed in home_assistant_events" \
    jqe '[.results[0].series[0].values[][0]] | index("W") != null and index("homeiq_ids") != null and index("home_assistant_events") == null' "$TEST_TMP/meas.json"
fi
check "on/off entity has no statistics" jqe 'has("light.porch") | not' "$TEST_TMP/goth.json"
check "measurement rows have no sum, totals do" \
  jqe '(.["sensor.step"][0].sum == null) and (.["sensor.meter"][-1].sum > 0) and (.["sensor.cost"][-1].sum > 0)' "$TEST_TMP/goth.json"
# everything again (all duplicates): nothing may change
for ((j = 0; j < k; j++)); do post_file "$TEST_TMP/b_$j.json" >/dev/null; done
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/got5b.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/gothb.json" >/dev/null
if [ "$BACKEND" = sqlite ]; then
  check "re-posting every batch changes no statistic" cmp -s "$TEST_TMP/got5.json" "$TEST_TMP/got5b.json"
else
  # a re-post recomputes its range (a duplicate marks its entity dirty: that is what makes a crash between
  # the events' write and the statistics' write harmless), so a cumulative sum may differ in its last bits
  nosum() { jq -S 'walk(if type == "object" then del(.sum, .change) else . end)' "$1"; }
  check "re-posting every batch changes no row and no value but the sums' rounding" \
    cmp -s <(nosum "$TEST_TMP/got5.json") <(nosum "$TEST_TMP/got5b.json")
  check "... and the sums still equal the independent computation (1e-9)" \
    $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/got5b.json" "$TEST_TMP/gothb.json"
fi
stats_get "entity_id=sensor.sawtooth&period=day&start=$START" "$TEST_TMP/day.json" >/dev/null
check "day row: count = every sample, merged from the hours" \
  jqe --slurpfile h "$TEST_TMP/goth.json" '([.["sensor.sawtooth"][].count] | add) == ([$h[0]["sensor.sawtooth"][].count] | add) and ([.["sensor.sawtooth"][].count] | add) == 300' "$TEST_TMP/day.json"
for q in "period=year&entity_id=sensor.step&start=$START:period" "entity_id=sensor.step:start" \
         "entity_id=sensor.step&start=yesterday:start" "entity_id=sensor.step&start=$START&types=mean,avg:types" \
         "entity_id=sensor.step&start=$START&end=$START:end" "entity_id=sensor.step&start=$START&foo=1:foo" \
         "start=$START:entity_id"; do
  code=$(curl -s -o "$TEST_TMP/err.json" -w '%{http_code}' "$U/api/v1/statistics?${q%:*}")
  check "bad ${q##*:} -> 400 naming it" jqe --arg p "${q##*:}" '.error | startswith($p)' "$TEST_TMP/err.json"
  [ "$code" = 400 ] || check_eq "status for ${q##*:}" 400 "$code"
done
if [ "$BACKEND" = influxdb ]; then
  influxql homeiq_stats 'SELECT count("count") FROM "homeiq_stats_hour"."homeiq_statistics" WHERE "entity_id" = '"'sensor.step'" >"$TEST_TMP/ih.json"
  check "hourly rows are points of homeiq_statistics in policy homeiq_stats_hour" \
    jqe --slurpfile h "$TEST_TMP/goth.json" '.results[0].series[0].values[0][1] >= ($h[0]["sensor.step"] | length)' "$TEST_TMP/ih.json"
  influxql homeiq_stats 'SELECT count("count") FROM "homeiq_stats_5min"."homeiq_statistics" WHERE "period" = '"'5minute'" >"$TEST_TMP/i5.json"
  check "5-minute rows are in policy homeiq_stats_5min" jqe '.results[0].series[0].values[0][1] > 0' "$TEST_TMP/i5.json"
  check "/health counts the statistics update" \
    jqe '.backend.statistics.enabled and .backend.statistics.entities_updated > 0 and .backend.statistics.failures == 0' <(curl -s "$U/health")
fi
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
if [ -n "$CTL" ]; then
  DATA_STORAGE_URL=$U "$CTL" stats --entity sensor.step --period hour --start "$START" --json >"$TEST_TMP/ctl.json"
  check_eq "homeiqctl stats --json exits 0" 0 $?
  check "homeiqctl stats --json prints the API's rows" \
    jqe --slurpfile g "$TEST_TMP/goth.json" '.["sensor.step"] == $g[0]["sensor.step"]' "$TEST_TMP/ctl.json"
  DATA_STORAGE_URL=$U "$CTL" stats --entity sensor.step --start "$START" >"$TEST_TMP/ctl.txt"
  check "homeiqctl stats prints a table with the hourly means" grep -q "^$(date -u -d "@$T0" '+%Y-%m-%d %H:%M') " "$TEST_TMP/ctl.txt"
  DATA_STORAGE_URL=$U "$CTL" stats --entity sensor.step --period year --start "$START" 2>"$TEST_TMP/ctl.err"
  check_eq "homeiqctl stats with a bad period exits 2" 2 $?
  check "... and says which parameter" grep -q "period" "$TEST_TMP/ctl.err"
fi
check "stop: exit 0" stop_pid "$SPID"
if [ -n "${STATS_CLICKHOUSE_CLUSTER:-}" ]; then
  # the known answers above were read through the Distributed table: its rows are on both shards,
  # every entity's on one shard only, and the replica pair holds the same rows
  rows() { clickhouse_query "$1" "SELECT $2 FROM homeiq_data.statistics_local FORMAT TSV"; }
  R1=$(rows ch1 'count()') R2=$(rows ch2 'count()') R3=$(rows ch3 'count()')
  check_eq "cluster: the merged count = shard 1 + shard 2 (rows on both shards: $R1 + $R3)" \
    "$(clickhouse_query ch1 'SELECT count() FROM homeiq_data.statistics FORMAT TSV') yes" "$((R1 + R3)) $([ "$R1" -gt 0 ] && [ "$R3" -gt 0 ] && echo yes)"
  check_eq "cluster: no entity on both shards" "" \
    "$(comm -12 <(rows ch1 'DISTINCT entity_id' | sort) <(rows ch3 'DISTINCT entity_id' | sort))"
  for i in $(seq 1 100); do R2=$(rows ch2 'count()'); [ "$R2" = "$R1" ] && break; sleep 0.2; done
  check_eq "cluster: ch2 (shard 1's replica) holds shard 1's rows" "$R1" "$R2"
fi

# ---- the same series in time order: the live case (running state per entity) --
jq -c 'sort_by(.time_fired | sub("\\.[0-9]+Z$"; "Z") | fromdate)' "$TEST_TMP/records.json" >"$TEST_TMP/sorted.json"
start_storage storage_o inorder || bail "data-storage (in order) starts"
n=$(jq length "$TEST_TMP/sorted.json"); ok=1; k=0
for ((i = 0; i < n; i += 97)); do
  jq -c --argjson i $i '{events: .[$i:$i+97]}' "$TEST_TMP/sorted.json" >"$TEST_TMP/o_$k.json"
  [ "$(post_file "$TEST_TMP/o_$k.json")" = 200 ] || ok=0
  k=$((k + 1))
done
check "$k batches in time order answered 200" [ $ok = 1 ]
[ "$BACKEND" = clickhouse ] || check "the running state served most entity updates (/health fast_updates)" \
  jqe '.backend.statistics | .fast_updates > 0 and .fast_updates * 2 > .entities_updated' <(curl -s "$U/health")
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/o5.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/oh.json" >/dev/null
check "in time order: rows equal the independent computation (1e-9)" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/o5.json" "$TEST_TMP/oh.json"
for ((j = 0; j < k; j += 2)); do post_file "$TEST_TMP/o_$j.json" >/dev/null; done   # re-sent: duplicates, slow path
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/o5b.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/ohb.json" >/dev/null
check "... re-sent batches (recomputed from the stored points) still equal it" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/o5b.json" "$TEST_TMP/ohb.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- history stored before the statistics: the background catch-up ----------
# (InfluxDB's homeiq schema: stats_catchup_influx.sh; its homeassistant schema here)
if [ "$BACKEND" = sqlite ] || [ -n "$HA_SCHEMA" ]; then
  # two thirds of the series (in time order) stored with STATISTICS=0 -- like a file from schema <= 4 --
  # then statistics on: the rest arrives live while the catch-up computes the history in steps; one
  # SIGKILL during it; the result must equal the independent computation
  n=$(jq length "$TEST_TMP/sorted.json"); cut=$((n * 2 / 3))
  jq -c --argjson c $cut '{events: .[0:$c]}' "$TEST_TMP/sorted.json" >"$TEST_TMP/old_part.json"
  start_storage storage_c0 catchup STATISTICS=0 || bail "data-storage with STATISTICS=0 starts"
  check_eq "history stored without statistics" 200 "$(post_file "$TEST_TMP/old_part.json")"
  check "stop: exit 0" stop_pid "$SPID"
  # steps 3 s apart of 1 ms: the live batches arrive first, the history then meets their rows
  start_storage storage_c1 catchup PURGE_STEP_MS=3000 PURGE_STEP_BUDGET_MS=1 ${HA_SCHEMA:+STATISTICS_CATCHUP_CHUNK=50} || bail "data-storage with statistics starts"
  ok=1
  for ((i = cut; i < n; i += 97)); do
    jq -c --argjson i $i '{events: .[$i:([$i+97, 1e9] | min)]}' "$TEST_TMP/sorted.json" >"$TEST_TMP/live.json"
    [ "$(post_file "$TEST_TMP/live.json")" = 200 ] || ok=0
  done
  check "the rest posted live (the catch-up's first step comes 3 s after the start)" [ $ok = 1 ]
  begun() { curl -s "$U/health" | jq -e '.backend.retention.statistics_catchup | .done == false and .entities_caught_up > 0' >/dev/null; }
  check "the catch-up begins in the background (one step: not done yet)" wait_for 60 begun
  kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"   # SIGKILL in the middle of it
  start_storage storage_c2 catchup PURGE_STEP_MS=5 ${HA_SCHEMA:+STATISTICS_CATCHUP_CHUNK=50} || bail "restart after SIGKILL during the catch-up"
  catchup_done() { curl -s "$U/health" | jq -e '.backend.retention.statistics_catchup.done == true' >/dev/null; }
  check "after the restart the catch-up resumes and finishes" wait_for 120 catchup_done
  stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/c5.json" >/dev/null
  stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/ch.json" >/dev/null
  check "history + live: rows equal the independent computation (1e-9), sums carried through" \
    $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/c5.json" "$TEST_TMP/ch.json"
  check "the log says which entities had history" grep -q "has history before its statistics" "$TEST_TMP/storage_c1.log"
  check "stop: exit 0" stop_pid "$SPID"
fi

# ---- SIGKILL: nothing missing, nothing counted twice ----------
T1=$(( $(date +%s) / 3600 * 3600 - 3 * 3600 ))
$SERIES gen "$T1" "$TEST_TMP/k" $HA_SCHEMA 2>/dev/null || { mkdir -p "$TEST_TMP/k" && $SERIES gen "$T1" "$TEST_TMP/k" $HA_SCHEMA; }
start_storage storage_k kdata || bail "data-storage (kill test) starts"
n=$(jq length "$TEST_TMP/k/records.json"); kills=0; ok=1; k=0
for ((i = 0; i < n; i += 60)); do
  jq -c --argjson i $i '{events: .[$i:$i+60]}' "$TEST_TMP/k/records.json" >"$TEST_TMP/k/b.json"
  if (( k % 4 == 2 )); then
    # the batch in flight when the process dies: like ingestion, re-send it after the restart
    post_file "$TEST_TMP/k/b.json" >/dev/null &
    cpid=$!
    if [ "$BACKEND" = sqlite ]; then sleep "0.00$((RANDOM % 9))"; else sleep "0.0$((RANDOM % 3))$((RANDOM % 9))"; fi
    kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; wait "$cpid" 2>/dev/null; _forget_pid "$SPID"
    kills=$((kills + 1))
    start_storage storage_k$kills kdata || bail "restart after SIGKILL $kills"
  fi
  [ "$(post_file "$TEST_TMP/k/b.json")" = 200 ] || ok=0
  k=$((k + 1))
done
check "$kills SIGKILLs, every batch re-sent and answered 200" [ $ok = 1 ]
START=$(date -u -d "@$((T1 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/k/expected.json")
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/k/got5.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/k/goth.json" >/dev/null
check "after SIGKILLs and restarts: statistics equal the independent computation (no row missing or doubled)" \
  $SERIES check "$TEST_TMP/k/expected.json" "$TEST_TMP/k/got5.json" "$TEST_TMP/k/goth.json"
[ "$BACKEND" = sqlite ] && check_eq "every event stored once" "$n" "$(curl -s "$U/api/v1/events?limit=10000&start=$START" | jq .count)"
check "stop: exit 0" stop_pid "$SPID"

if [ "$BACKEND" = sqlite ]; then
# ---- retention: purge in steps, the file shrinks, statistics stay -----------
NOW=$(date +%s)
CUT=$(( (NOW - 30 * 86400) / 3600 * 3600 ))
$SERIES bulk "$NOW" 60 8000 5 "$TEST_TMP/bulk.json" "$CUT"   # none within 3 h of the cut-off
total=$(jq length "$TEST_TMP/bulk.json")
old=$(jq --argjson c "$CUT" '[.[] | select((.time_fired | sub("\\.[0-9]+Z$"; "Z") | fromdate) < $c)] | length' "$TEST_TMP/bulk.json")
start_storage storage_r rdata || bail "data-storage (retention) starts"
ok=1
for ((i = 0; i < total; i += 2000)); do
  jq -c --argjson i $i '{events: .[$i:$i+2000]}' "$TEST_TMP/bulk.json" >"$TEST_TMP/rb.json"
  [ "$(post_file "$TEST_TMP/rb.json")" = 200 ] || ok=0
done
check "$total events over 60 days stored" [ $ok = 1 ]
check "a new file has auto_vacuum=incremental" \
  jqe '.backend.retention.auto_vacuum == "incremental"' <(curl -s "$U/health")
stop_pid "$SPID"
size1=$(stat -c %s "$TEST_TMP/rdata/events.db")
# steps of at most 10 rows: a larger step writes fewer WAL frames per row (retention_sqlite.c), and this
# purge must write more than the checkpointer's limit (32 MiB of WAL) for the check below
start_storage storage_r2 rdata RETENTION_DAYS=30 PURGE_INTERVAL_MS=100 PURGE_STEP_MS=5 PURGE_STEP_ROWS=10 \
  || bail "data-storage with RETENTION_DAYS=30 starts"
purged() { curl -s "$U/health" | jq -e --argjson n "$old" '.backend.retention.events_purged == $n and .backend.retention.freelist_pages == 0 and .backend.retention.purging == false' >/dev/null; }
check "all $old events older than 30 days purged in steps, free pages vacuumed" wait_for 400 purged
# retention_wal.h: every WAL checkpoint ran on the checkpointer thread, none in a
# purge step's or a batch's commit, and the WAL restarted from its beginning
check "WAL checkpoints ran off the loop (thread > 0, inline 0), the WAL restarted" \
  jqe '.backend.retention | .phases.checkpoint_thread.n > 0 and .phases.checkpoint_purge.n == 0
       and .phases.checkpoint_batch.n == 0 and .wal_frames < 16000' <(curl -s "$U/health")
check_eq "no event older than the cut-off left" 0 "$(curl -s "$U/api/v1/events?limit=1&end=$(date -u -d "@$CUT" +%Y-%m-%dT%H:%M:%SZ)" | jq .count)"
check_eq "every newer event kept" "$((total - old))" "$(curl -s "$U/api/v1/events?limit=10000&start=$(date -u -d "@$CUT" +%Y-%m-%dT%H:%M:%SZ)" | jq .count)"
OLDDAY=$(date -u -d "@$((NOW - 50 * 86400))" +%Y-%m-%dT00:00:00Z)
OLDEND=$(date -u -d "@$((NOW - 49 * 86400))" +%Y-%m-%dT00:00:00Z)
stats_get "entity_id=sensor.bulk_3&period=hour&start=$OLDDAY&end=$OLDEND" "$TEST_TMP/oldh.json" >/dev/null
check "hourly statistics of a purged day are kept (24 rows)" jqe '.["sensor.bulk_3"] | length == 24' "$TEST_TMP/oldh.json"
stats_get "entity_id=sensor.bulk_3&period=5minute&start=$OLDDAY&end=$OLDEND" "$TEST_TMP/old5.json" >/dev/null
check "5-minute statistics older than 10 days are purged" jqe '.["sensor.bulk_3"] | length == 0' "$TEST_TMP/old5.json"
stop_pid "$SPID"
size2=$(stat -c %s "$TEST_TMP/rdata/events.db")
echo "# events.db: $size1 bytes before, $size2 bytes after purging $old of $total events"
check "the file shrank with the purge (to < 70 %)" [ "$size2" -lt $((size1 * 7 / 10)) ]

# ---- disk guard on a small tmpfs --------------------------------------------
if [ "$(id -u)" != 0 ]; then
  skip "disk guard: needs root to mount a tmpfs"
elif ! mkdir -p "$TEST_TMP/small" || ! mount -t tmpfs -o size=16m homeiq-test "$TEST_TMP/small"; then
  skip "disk guard: cannot mount a tmpfs here"
else
  on_cleanup "umount $TEST_TMP/small 2>/dev/null"
  start_storage storage_d small/data STORAGE_MIN_FREE_BYTES=2097152 || bail "data-storage on tmpfs starts"
  jq -c '{events: .[0:50]}' "$TEST_TMP/bulk.json" >"$TEST_TMP/d1.json"
  jq -c '{events: .[50:100]}' "$TEST_TMP/bulk.json" >"$TEST_TMP/d2.json"
  check_eq "a batch is stored while space is free" 200 "$(post_file "$TEST_TMP/d1.json")"
  avail=$(df -B1 --output=avail "$TEST_TMP/small" | tail -1)
  dd if=/dev/zero of="$TEST_TMP/small/filler" bs=65536 count=$(( (avail - 1048576) / 65536 )) status=none
  check_eq "below STORAGE_MIN_FREE_BYTES: POST answers 503" 503 "$(post_file "$TEST_TMP/d2.json")"
  check "the 503 says why" grep -q disk_low "$TEST_TMP/resp"
  check_eq "/health 503 disk_low" "503 disk_low" "$(curl -s -o "$TEST_TMP/h.json" -w '%{http_code}' "$U/health") $(jq -r .reason "$TEST_TMP/h.json")"
  check "/health shows free and store bytes" jqe '.disk.free_bytes < 2097152 and .disk.store_bytes > 0' "$TEST_TMP/h.json"
  check "/metrics shows free disk and store size" \
    bash -c "curl -s $U/metrics | grep -q '^homeiq_storage_disk_free_bytes ' && curl -s $U/metrics | grep -q '^homeiq_storage_store_bytes '"
  rm -f "$TEST_TMP/small/filler"
  check_eq "space back: the refused batch is stored" 200 "$(post_file "$TEST_TMP/d2.json")"
  check_eq "... all 50 of it (nothing was half-stored)" 50 "$(jq .stored "$TEST_TMP/resp")"
  check_eq "/health 200 again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")"
  stop_pid "$SPID"
  # no guard (0): the disk really fills; SQLite refuses the commit, 503, nothing acked is lost
  start_storage storage_f small/data STORAGE_MIN_FREE_BYTES=0 || bail "data-storage without guard starts"
  avail=$(df -B1 --output=avail "$TEST_TMP/small" | tail -1)
  dd if=/dev/zero of="$TEST_TMP/small/filler" bs=4096 count=$((avail / 4096)) status=none 2>/dev/null
  jq -c '{events: .[100:600]}' "$TEST_TMP/bulk.json" >"$TEST_TMP/d3.json"
  check_eq "disk full: POST answers 503" 503 "$(post_file "$TEST_TMP/d3.json")"
  rm -f "$TEST_TMP/small/filler"
  check_eq "space back: stored" 200 "$(post_file "$TEST_TMP/d3.json")"
  check_eq "every acked event is there (50 + 50 + 500)" 600 "$(curl -s "$U/api/v1/events?limit=10000" | jq .count)"
  check "stop: exit 0" stop_pid "$SPID"
fi
elif [ "$BACKEND" = influxdb ]; then
# ---- the statistics write fails after the events were written ---------------
TL=$(( ($(date +%s) - 8 * 86400) / 3600 * 3600 ))
late_batch() {   # late_batch ENTITY : 10 states of value 7, a minute apart, from 8 days ago
  jq -nc --argjson t "$TL" --arg e "$1" '{events: [range(10) as $i | {event_type: "state_changed", entity_id: $e,
    domain: "sensor", object_id: ($e | split(".")[1]), time_fired: (($t + 60 * $i) | todate), state: "7", value: 7,
    state_class: "measurement", attributes: {state_class: "measurement"}}]}'
}
start_storage storage_f late || bail "data-storage (fault test) starts"
# InfluxDB refuses the rows themselves (a string "count" in the hourly shard of 8 days ago: field type
# conflict): the events are stored, so the batch is acknowledged -- it must not block the ones behind it --
# and the refusal is counted and said.
curl -s -o /dev/null -XPOST "$INFLUXDB_URL/write?db=homeiq_late&rp=homeiq_stats_hour&precision=s" \
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
influxql "" "DROP RETENTION POLICY homeiq_stats_hour ON homeiq_late" >/dev/null
late_batch sensor.late >"$TEST_TMP/late.json"
check_eq "hourly policy gone: the batch is answered 503" 503 "$(post_file "$TEST_TMP/late.json")"
check "... with the statistics' reason" grep -q "statistics" "$TEST_TMP/resp"
check_eq "... although its 10 events are in InfluxDB" 10 \
  "$(influxql "homeiq_late" "SELECT count(\"event_id\") FROM \"$EVENTS_MEASUREMENT\" WHERE \"entity_id\" = 'sensor.late'" | jq '.results[0].series[0].values[0][1]')"
check "the policy is created again, healthy" wait_healthy "$U/health" 20 "$SPID"
check_eq "the re-sent batch is answered 200" 200 "$(post_file "$TEST_TMP/late.json")"
check_eq "... every event a duplicate" 10 "$(jq .duplicates "$TEST_TMP/resp")"
stats_get "entity_id=sensor.late&period=hour&start=$(date -u -d "@$TL" +%Y-%m-%dT%H:%M:%SZ)" "$TEST_TMP/lateh.json" >/dev/null
check "... and its statistics were computed: one hour, mean 7, count 10" \
  jqe '.["sensor.late"] | length == 1 and .[0].mean == 7 and .[0].count == 10' "$TEST_TMP/lateh.json"
check "stop: exit 0" stop_pid "$SPID"
fi
if [ "$BACKEND" = influxdb ] && [ -z "$HA_SCHEMA" ]; then
# ---- RETENTION_OVERRIDES: DELETE by entity / domain, in steps ---------------
NOW=$(date +%s)
ov_state() {   # ov_state ENTITY AGE_DAYS N : N states of value 7, a minute apart, AGE_DAYS days ago
  jq -nc --argjson t $(( (NOW - $2 * 86400) / 3600 * 3600 )) --arg e "$1" --argjson n "$3" '[range($n) as $i |
    {event_type: "state_changed", entity_id: $e, domain: ($e | split(".")[0]), object_id: ($e | split(".")[1]),
     time_fired: (($t + 60 * $i) | todate), state: "7", value: 7, state_class: "measurement", attributes: {}}]'
}
{ ov_state sensor.short 8 10; ov_state sensor.short 2 10
  for e in light.a light.b sensor.keep sensor.other; do for d in 30 15 3; do ov_state $e $d 1; done; done
} | jq -sc '{events: add}' >"$TEST_TMP/ov.json"
# stored (with their statistics) before the rules exist, as when the time passes or a rule is added later
start_storage storage_ov0 ov || bail "data-storage without overrides starts"
check_eq "events of every age stored" 200 "$(post_file "$TEST_TMP/ov.json")"
check "stop: exit 0" stop_pid "$SPID"
start_storage storage_ov ov RETENTION_OVERRIDES="sensor.short=5, light=7, light.b=20, sensor.keep=0" \
  PURGE_INTERVAL_MS=300 PURGE_STEP_MS=5 || bail "data-storage with RETENTION_OVERRIDES starts"
ov_counts() { influxql homeiq_ov 'SELECT count("event_id") FROM "home_assistant_events" GROUP BY "entity_id"' |
  jq -c '[.results[0].series[]? | {(.tags.entity_id): .values[0][1]}] | add'; }
want='{"light.a":1,"light.b":2,"sensor.keep":3,"sensor.other":3,"sensor.short":10}'
ov_done() { [ "$(ov_counts)" = "$want" ]; }
check "rules applied by DELETE steps: light=7 (light.a 1 left), light.b=20 beats it (2 left), sensor.short=5 (10 left), =0 and no rule keep all" \
  wait_for 60 ov_done
ov_counts >"$TEST_TMP/ov_counts.txt"; echo "# counts per entity: $(cat "$TEST_TMP/ov_counts.txt")"
check "/health says what was deleted, nothing failed" \
  jqe '.backend.retention_overrides | .deletes > 0 and .failures == 0 and (.purged_before_ms | has("sensor.short") and has("light"))' <(curl -s "$U/health")
stats_get "entity_id=sensor.short&period=hour&start=$(date -u -d "@$(( NOW - 9 * 86400 ))" +%Y-%m-%dT%H:%M:%SZ)" "$TEST_TMP/ovh.json" >/dev/null
check "the hourly statistics of sensor.short's deleted raw points stay (8 days ago: mean 7, count 10)" \
  jqe '.["sensor.short"][0] | .mean == 7 and .count == 10' "$TEST_TMP/ovh.json"
check "the log names each rule" grep -q 'raw events of domain light deleted after 7 days' "$TEST_TMP/storage_ov.log"
check "stop: exit 0" stop_pid "$SPID"

# ---- an existing database: its policies are the user's ----------------------
influxql "" 'CREATE DATABASE "users_db" WITH DURATION 14d REPLICATION 1 NAME "mine"' >/dev/null
influxql "" 'CREATE RETENTION POLICY "homeiq_stats_5min" ON "users_db" DURATION 3d REPLICATION 1' >/dev/null
PORT=$(free_port); U=http://127.0.0.1:$PORT
start_bg storage_u env DATA_STORAGE_PORT=$PORT INFLUXDB_DATABASE=users_db RETENTION_DAYS=30 RETENTION_OVERRIDES="light=7,sensor.keep=0" "$BIN"
SPID=$LAST_PID; wait_healthy "$U/health" 30 "$SPID" || bail "data-storage on an existing database starts"
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
check "/health warns: sensor.keep=0 cannot outlive the default policy (light=7 is shorter: no warning)" \
  jqe '[.backend.retention.warnings[] | select(test("RETENTION_OVERRIDES"))] | length == 1 and (.[0] | test("sensor.keep=0 cannot keep raw events longer than the default policy mine"))' "$TEST_TMP/hu.json"
check "the log says it too" grep -q 'does not change an existing policy' "$TEST_TMP/storage_u.log"
check "stop: exit 0" stop_pid "$SPID"
fi
finish

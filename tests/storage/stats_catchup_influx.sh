#!/usr/bin/env bash
# stats_catchup_influx.sh -- statistics of history stored before statistics
# existed, on a real influxd (stats_influx_catchup.h): events written with
# STATISTICS=0, then data-storage restarted with statistics on.
#
# Use: stats_catchup_influx.sh /path/to/homeiq-data-storage
# 1. Recent history (within the 5-minute policy): the first two thirds of each
#    entity's known-answer series (stats_series.py) stored without statistics, the rest posted live
#    after the restart (half before the pass, a quarter as it resumes after
#    the SIGKILLs, a quarter after it in the same process); the catch-up (STATISTICS_CATCHUP_CHUNK=10: several
#    chunks per entity) is SIGKILLed once between steps and four times at
#    random moments; after the last restart it finishes, and the 5-minute and
#    hourly rows equal the independent computation to 1e-9 (the live rows'
#    sums moved by the history's). A further restart does no chunk again.
# 2. History older than the 5-minute policy (STATISTICS_5MIN_RETENTION_DAYS=1,
#    the series 3 days ago): hourly rows only, equal to the independent
#    computation; no 5-minute row, no write refused.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

BIN=${1:?usage: stats_catchup_influx.sh /path/to/homeiq-data-storage}
SERIES="python3 $here/stats_series.py"
export STORAGE_BACKEND=influxdb LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216 INFLUXDB_PING_INTERVAL_MS=200
echo "# statistics catch-up on InfluxDB"
influxd_start || bail "influxd starts"

# start_storage NAME DB [VAR=VALUE...] : sets U, SPID
start_storage() {
  local name=$1 db=$2; shift 2
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_STORAGE_PORT=$PORT INFLUXDB_DATABASE="$db" "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
stats_get() { influx_stats_settled "$U" || return 1; curl -s -o "$2" -w '%{http_code}' "$U/api/v1/statistics?$1"; }
jqe() { jq -e "$@" >/dev/null; }
catchup() { curl -s "$U/health" | jq -c '.backend.retention.statistics_catchup'; }
kill_storage() { kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"; }
catchup_done() { catchup | jq -e '.done == true' >/dev/null; }
# post_batches FILE FROM TO : records [FROM, TO) of FILE in batches of 97; 1 when every one answered 200
post_batches() {
  local ok=1
  for ((i = $2; i < $3; i += 97)); do
    jq -c --argjson i $i --argjson e "$3" '{events: .[$i:([$i+97, $e] | min)]}' "$1" >"$TEST_TMP/b.json"
    [ "$(post "$TEST_TMP/b.json")" = 200 ] || ok=0
  done
  [ $ok = 1 ]
}

# ---- 1. recent history, the rest live, SIGKILLs during the catch-up ---------
T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
$SERIES gen "$T0" "$TEST_TMP" || bail "generate series"
START=$(date -u -d "@$((T0 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/expected.json"),light.porch
# each entity's first two thirds are the history, the rest arrives live (so totals meet live rows too)
tf='(.time_fired | sub("\\.[0-9]+Z$"; "Z") | fromdate)'
jq -c "group_by(.entity_id) | map(sort_by($tf) | .[0:(length * 2 / 3 | floor)]) | add | sort_by($tf)" \
  "$TEST_TMP/records.json" >"$TEST_TMP/hist.json"
# the live rest in three parts, each entity's states split the same way (half, quarter, quarter)
for p in "1 0 0.5" "2 0.5 0.75" "3 0.75 1"; do set -- $p
  jq -c --argjson a "$2" --argjson b "$3" "group_by(.entity_id) | map(sort_by($tf) | .[(length * 2 / 3 | floor):]
    | .[(length * \$a | floor):(length * \$b | floor)]) | add | sort_by($tf)" "$TEST_TMP/records.json" >"$TEST_TMP/live$1.json"
done
cut=$(jq length "$TEST_TMP/hist.json")
export STATISTICS_CATCHUP_CHUNK=10
start_storage storage_c0 homeiq_cu STATISTICS=0 || bail "data-storage with STATISTICS=0 starts"
check "history ($cut events) stored without statistics" post_batches "$TEST_TMP/hist.json" 0 $cut
curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode db=homeiq_cu --data-urlencode "q=SHOW MEASUREMENTS" >"$TEST_TMP/m.json"
check "... and no statistics row was written" jqe '[.results[0].series[0].values[][0]] | index("homeiq_statistics") == null' "$TEST_TMP/m.json"
check "stop: exit 0" stop_pid "$SPID"
# the first step 3 s after the start: the live batches arrive first, the history then meets their rows
start_storage storage_c1 homeiq_cu PURGE_STEP_MS=3000 || bail "data-storage with statistics starts"
check "half the rest ($(jq length "$TEST_TMP/live1.json") events) posted live" \
  post_batches "$TEST_TMP/live1.json" 0 "$(jq length "$TEST_TMP/live1.json")"
begun() { catchup | jq -e '.done == false and .entities_caught_up > 0' >/dev/null; }
check "the catch-up begins in the background (/health statistics_catchup, not done)" wait_for 60 begun
kill_storage
during=0
for r in 1 2 3 4 5 6; do   # SIGKILL at random moments: after a chunk, 0-249 ms later (steps 300 ms apart)
  start_storage storage_k$r homeiq_cu PURGE_STEP_MS=300 || bail "restart $r during the catch-up"
  want=1
  for ((p = 0; p < 500; p++)); do catchup | jq -e --argjson w $want '.chunks >= $w or .done' >/dev/null && break; done
  sleep "0.$((RANDOM % 25))"
  catchup >"$TEST_TMP/k.json"
  jqe '.done == false' "$TEST_TMP/k.json" && during=$((during + 1))
  kill_storage
  echo "# SIGKILL $r after $(jq -c '{chunks, current, done}' "$TEST_TMP/k.json")"
done
check "the random SIGKILLs came during the pass ($during of 6)" [ $during -ge 3 ]
# live batches before (running states seeded), during and after the rest of the pass, in one process: the
# pass must leave no running state behind that disagrees with the rows it rewrote
start_storage storage_c2 homeiq_cu PURGE_STEP_MS=100 || bail "restart after the SIGKILLs"
check "a quarter more posted live as the pass resumes" post_batches "$TEST_TMP/live2.json" 0 "$(jq length "$TEST_TMP/live2.json")"
check "after the restarts the catch-up resumes and finishes" wait_for 120 catchup_done
check "the last quarter posted live after the pass" post_batches "$TEST_TMP/live3.json" 0 "$(jq length "$TEST_TMP/live3.json")"
check "... (from the running state: /health fast_updates)" jqe '.backend.statistics.fast_updates > 0' <(curl -s "$U/health")
catchup >"$TEST_TMP/cu.json"; echo "# catch-up: $(cat "$TEST_TMP/cu.json")"
check "... without a failed step" jqe '.failures == 0' "$TEST_TMP/cu.json"
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/c5.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/ch.json" >/dev/null
check "history + live: 5-minute and hourly rows equal the independent computation (1e-9), sums carried through" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/c5.json" "$TEST_TMP/ch.json"
check "the log says which entities had history" \
  bash -c "cat '$TEST_TMP'/storage_c1.log '$TEST_TMP'/storage_k*.log | grep -q 'has history before its statistics'"
check "stop: exit 0" stop_pid "$SPID"
start_storage storage_c3 homeiq_cu PURGE_STEP_MS=1 || bail "restart after the catch-up"
check "a restart after the pass: done again, no chunk computed twice" wait_for 60 catchup_done
check "... (chunks 0, every entity checked)" jqe '.chunks == 0 and .entities_checked == 8' <(catchup)
stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/ch2.json" >/dev/null
check "... and the rows are the same" cmp -s "$TEST_TMP/ch.json" "$TEST_TMP/ch2.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- 2. history older than the 5-minute policy: hourly rows only ------------
TO=$(( $(date +%s) / 3600 * 3600 - 3 * 86400 ))
mkdir -p "$TEST_TMP/old"
$SERIES gen "$TO" "$TEST_TMP/old" || bail "generate old series"
jq -c 'sort_by(.time_fired | sub("\\.[0-9]+Z$"; "Z") | fromdate)' "$TEST_TMP/old/records.json" >"$TEST_TMP/old/sorted.json"
jq 'map_values(.["5minute"] = [])' "$TEST_TMP/old/expected.json" >"$TEST_TMP/old/expected_h.json"
OSTART=$(date -u -d "@$((TO - 3600))" +%Y-%m-%dT%H:%M:%SZ)
n=$(jq length "$TEST_TMP/old/sorted.json")
export STATISTICS_5MIN_RETENTION_DAYS=1
start_storage storage_o0 homeiq_old STATISTICS=0 || bail "data-storage with STATISTICS=0 starts (old history)"
check "3-day-old history ($n events) stored without statistics" post_batches "$TEST_TMP/old/sorted.json" 0 $n
check "stop: exit 0" stop_pid "$SPID"
start_storage storage_o1 homeiq_old PURGE_STEP_MS=500 || bail "data-storage with statistics starts (old history)"
check "the catch-up begins" wait_for 60 begun
kill_storage
start_storage storage_o2 homeiq_old PURGE_STEP_MS=1 || bail "restart after SIGKILL (old history)"
check "the catch-up of the old history finishes" wait_for 120 catchup_done
check "... without a failed step" jqe '.failures == 0' <(catchup)
stats_get "entity_id=$ENTS&period=5minute&start=$OSTART" "$TEST_TMP/old/c5.json" >/dev/null
stats_get "entity_id=$ENTS&period=hour&start=$OSTART" "$TEST_TMP/old/ch.json" >/dev/null
check "older than the 5-minute policy: hourly rows equal the independent computation (1e-9), no 5-minute row" \
  $SERIES check "$TEST_TMP/old/expected_h.json" "$TEST_TMP/old/c5.json" "$TEST_TMP/old/ch.json"
check "no statistics write refused" jqe '.backend.statistics.refused == 0' <(curl -s "$U/health")
check "stop: exit 0" stop_pid "$SPID"
finish

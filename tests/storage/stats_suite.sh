#!/usr/bin/env bash
# stats_suite.sh -- long-term statistics, retention and the disk guard, on the
# real data-storage binary with a real SQLite file.
#
# Use: stats_suite.sh /path/to/homeiq-data-storage
# Covers: known-answer series (constant, step, sawtooth, irregular spacing, a
# gap, a meter reset, a total with last_reset cycles, on/off not counted) posted
# out of order in batches with re-posted duplicates, compared with an
# independent computation (stats_series.py) to 1e-9; SIGKILL during batches
# then restart and re-post: nothing missing or counted twice; 400s naming the
# parameter; purge of raw events older than RETENTION_DAYS in small steps, the
# file shrinking, hourly statistics kept; the disk guard on a small tmpfs
# (root only; otherwise skipped, exit 77).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: stats_suite.sh /path/to/homeiq-data-storage [/path/to/homeiqctl]}
CTL=${2:-}
SERIES="python3 $here/stats_series.py"
# BACKEND=clickhouse (issue 18): the known answers, re-posts and SIGKILLs on a real
# clickhouse-server (CLICKHOUSE_STATISTICS=1); retention and the disk guard below are SQLite's
# (ClickHouse's retention: test_clickhouse_retention.sh).
BACKEND=${BACKEND:-sqlite}
export STORAGE_BACKEND=$BACKEND LOG_LEVEL=${LOG_LEVEL:-info} MAX_BODY_BYTES=16777216
if [ "$BACKEND" = clickhouse ]; then
  . "$here/../lib/clickhouse.sh"
  clickhouse_start stats || bail "clickhouse-server starts"
  export CLICKHOUSE_STATISTICS=1 CLICKHOUSE_PING_INTERVAL_MS=200
fi
echo "# statistics suite on $BACKEND"

# start_storage NAME DATA_DIR [VAR=VALUE...] : starts one, sets U and SPID.
start_storage() {
  local name=$1 dir=$2; shift 2
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_DIR="$dir" CLICKHOUSE_DATABASE="$(basename "$dir")" DATA_STORAGE_PORT=$PORT "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
post_file() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
stats_get() { curl -s -o "$2" -w '%{http_code}' "$U/api/v1/statistics?$1"; }
jqe() { jq -e "$@" >/dev/null; }

# ---- known answers, out of order, duplicates --------------------------------
T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
$SERIES gen "$T0" "$TEST_TMP" || bail "generate series"
START=$(date -u -d "@$((T0 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/expected.json"),light.porch
start_storage storage "$TEST_TMP/data" PURGE_INTERVAL_MS=200 || bail "data-storage starts"
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
# everything again (all duplicates): nothing may change
for ((j = 0; j < k; j++)); do post_file "$TEST_TMP/b_$j.json" >/dev/null; done
stats_get "entity_id=$ENTS&period=5minute&start=$START" "$TEST_TMP/got5b.json" >/dev/null
if [ "$BACKEND" = sqlite ]; then
  check "re-posting every batch changes no statistic" cmp -s "$TEST_TMP/got5.json" "$TEST_TMP/got5b.json"
else
  # as on InfluxDB: a re-post recomputes its range (a duplicate marks its entity dirty, which makes a crash
  # between the events' INSERT and the statistics' harmless), so a cumulative sum may differ in its last bits
  stats_get "entity_id=$ENTS&period=hour&start=$START" "$TEST_TMP/gothb.json" >/dev/null
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

# ---- SIGKILL during batches: nothing missing, nothing counted twice ----------
T1=$(( $(date +%s) / 3600 * 3600 - 3 * 3600 ))
$SERIES gen "$T1" "$TEST_TMP/k" 2>/dev/null || { mkdir -p "$TEST_TMP/k" && $SERIES gen "$T1" "$TEST_TMP/k"; }
start_storage storage_k "$TEST_TMP/kdata" || bail "data-storage (kill test) starts"
n=$(jq length "$TEST_TMP/k/records.json"); kills=0; ok=1; k=0
for ((i = 0; i < n; i += 60)); do
  jq -c --argjson i $i '{events: .[$i:$i+60]}' "$TEST_TMP/k/records.json" >"$TEST_TMP/k/b.json"
  if (( k % 4 == 2 )); then
    # the batch in flight when the process dies: like ingestion, re-send it after the restart
    post_file "$TEST_TMP/k/b.json" >/dev/null &
    cpid=$!
    sleep "0.00$((RANDOM % 9))"
    kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; wait "$cpid" 2>/dev/null; _forget_pid "$SPID"
    kills=$((kills + 1))
    start_storage storage_k$kills "$TEST_TMP/kdata" || bail "restart after SIGKILL $kills"
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
check_eq "every event stored once" "$n" "$(curl -s "$U/api/v1/events?limit=10000&start=$START" | jq .count)"
check "stop: exit 0" stop_pid "$SPID"

[ "$BACKEND" = sqlite ] || finish

# ---- retention: purge in steps, the file shrinks, statistics stay -----------
NOW=$(date +%s)
CUT=$(( (NOW - 30 * 86400) / 3600 * 3600 ))
$SERIES bulk "$NOW" 60 8000 5 "$TEST_TMP/bulk.json" "$CUT"   # none within 3 h of the cut-off
total=$(jq length "$TEST_TMP/bulk.json")
old=$(jq --argjson c "$CUT" '[.[] | select((.time_fired | sub("\\.[0-9]+Z$"; "Z") | fromdate) < $c)] | length' "$TEST_TMP/bulk.json")
start_storage storage_r "$TEST_TMP/rdata" || bail "data-storage (retention) starts"
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
start_storage storage_r2 "$TEST_TMP/rdata" RETENTION_DAYS=30 PURGE_INTERVAL_MS=100 PURGE_STEP_MS=5 PURGE_STEP_ROWS=5000 \
  || bail "data-storage with RETENTION_DAYS=30 starts"
purged() { curl -s "$U/health" | jq -e --argjson n "$old" '.backend.retention.events_purged == $n and .backend.retention.freelist_pages == 0 and .backend.retention.purging == false' >/dev/null; }
check "all $old events older than 30 days purged in steps, free pages vacuumed" wait_for 400 purged
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
  start_storage storage_d "$TEST_TMP/small/data" STORAGE_MIN_FREE_BYTES=2097152 || bail "data-storage on tmpfs starts"
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
  start_storage storage_f "$TEST_TMP/small/data" STORAGE_MIN_FREE_BYTES=0 || bail "data-storage without guard starts"
  avail=$(df -B1 --output=avail "$TEST_TMP/small" | tail -1)
  dd if=/dev/zero of="$TEST_TMP/small/filler" bs=4096 count=$((avail / 4096)) status=none 2>/dev/null
  jq -c '{events: .[100:600]}' "$TEST_TMP/bulk.json" >"$TEST_TMP/d3.json"
  check_eq "disk full: POST answers 503" 503 "$(post_file "$TEST_TMP/d3.json")"
  rm -f "$TEST_TMP/small/filler"
  check_eq "space back: stored" 200 "$(post_file "$TEST_TMP/d3.json")"
  check_eq "every acked event is there (50 + 50 + 500)" 600 "$(curl -s "$U/api/v1/events?limit=10000" | jq .count)"
  check "stop: exit 0" stop_pid "$SPID"
fi
finish

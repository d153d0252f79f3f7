#!/usr/bin/env bash
# bench/admin.sh -- the dashboard's targets (issue 12), measured, not asserted:
#   series:   a 30-day series of one sensor reporting every 10 s (259,200 rows,
#             among BENCH_ADMIN_OTHER other events) -> GET /api/v1/series
#             (data-storage) and /api/v1/entities/{id}/series (admin-api),
#             points=500, best and median of 5, curl's total time on loopback;
#   entities: GET /api/v1/entities with BENCH_ADMIN_ENTITIES entities;
#   sse:      the simulator at BENCH_ADMIN_SSE_RATE events/s for
#             BENCH_ADMIN_SSE_SECONDS through the whole pipeline while one SSE
#             client tails admin-api; the ids it got must be exactly the
#             stored seqs (no gap, no repeat), and its lag at the end;
#   rss:      admin-api's VmRSS idle after start, and after serving the page
#             and the API calls above (VmHWM too).
# Use: bench/admin.sh   (BUILD=build by default; HOUSE_BACKEND=influxdb for a real
#      influxd instead of SQLite; results printed, and as JSON
#      to bench/results/admin-<time>.json)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=warn
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline STO=$BUILD/services/data-storage/homeiq-data-storage
ADM=$BUILD/services/admin-api/homeiq-admin-api
ROWS=${BENCH_ADMIN_ROWS:-259200} OTHER=${BENCH_ADMIN_OTHER:-100000} NENT=${BENCH_ADMIN_ENTITIES:-500}
RATE=${BENCH_ADMIN_SSE_RATE:-1000} SECS=${BENCH_ADMIN_SSE_SECONDS:-60}
say() { printf '[bench-admin %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

. "$ROOT/tests/admin/house.sh"
# ---- history: the sensor plus other entities, straight into data-storage --------
# HOUSE_BACKEND=influxdb: the same on a throw-away influxd (tests/lib/influxd.sh)
if [ "$HOUSE_BACKEND" = influxdb ]; then influxd_start || exit 1; fi
house_start_storage
wait_healthy "$DATA_STORAGE_URL/health" 30 || exit 1
say "posting $ROWS sensor rows (every 10 s over 30 days) + $OTHER events over $NENT entities"
NOW_S=$(date +%s)
HOUSE_BACKEND=$HOUSE_BACKEND /usr/bin/python3 - "$ROWS" "$OTHER" "$NENT" "$NOW_S" "$TEST_TMP/hist" <<'PY'
import json, sys, datetime, os
rows, other, nent, now, out = map(str, sys.argv[1:6])
rows, other, nent, now = int(rows), int(other), int(nent), int(now)
os.makedirs(out, exist_ok=True)
def ts(s): return datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
def rec(e, t, st, v, i):
    return {"event_type": "state_changed", "entity_id": e, "domain": e.split(".")[0], "object_id": e.split(".")[1],
            "time_fired": ts(t), "origin": "LOCAL", "context_id": f"bench-{i}", "state": st, "value": v,
            "unit_of_measurement": "°C", "attributes": {"unit_of_measurement": "°C", "friendly_name": e}}
evs = [rec("sensor.bench_temperature", now - 30 * 86400 + 10 * i, "%.1f" % (20 + (i % 100) / 10), 20 + (i % 100) / 10, i)
       for i in range(rows)]
evs += [rec(f"sensor.bench_{i % nent}", now - 30 * 86400 + (i * 2591) % (30 * 86400), str(i % 50), float(i % 50), rows + i)
        for i in range(other)]
influx = os.environ.get("HOUSE_BACKEND") == "influxdb"
def lp_str(s): return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
for k in range(0, len(evs), 5000):
    if not influx:
        with open(f"{out}/b{k // 5000:05d}.json", "w") as f: json.dump({"events": evs[k:k + 5000]}, f)
        continue
    with open(f"{out}/b{k // 5000:05d}.lp", "w") as f:
        for j, r in enumerate(evs[k:k + 5000]):
            i = k + j
            sec = int(datetime.datetime.strptime(r["time_fired"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp())
            rec_json = json.dumps(r, separators=(",", ":"), ensure_ascii=False)
            f.write(f"home_assistant_events,domain=sensor,entity_id={r['entity_id']},event_type=state_changed,"
                    f"unit_of_measurement=°C event_id=\"{i:032x}\",stored_at=\"{r['time_fired']}\",record={lp_str(rec_json)},"
                    f"state=\"{r['state']}\",value={float(r['value'])},context_id=\"{r['context_id']}\" {sec * 10**9}\n")
PY
t0=$(date +%s.%N)
# SQLite: through data-storage's API. InfluxDB: the same points straight into influxd, since through the API
# a sparse history (one event per 10 s) crawls at ~5,000 events per 30 s here (the duplicate check asks one
# SELECT per second it touches); data-storage then meets a store it did not write: its first read scans once
if [ "$HOUSE_BACKEND" = influxdb ]; then
  for f in "$TEST_TMP"/hist/b*.lp; do
    c=$(curl -q -s -o /dev/null -w '%{http_code}' --data-binary @"$f" "$INFLUXDB_URL/write?db=$INFLUXDB_DATABASE&precision=ns")
    [ "$c" = 204 ] || { say "write $f: $c"; exit 1; }
  done
else
  for f in "$TEST_TMP"/hist/b*.json; do
    c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$f" "$DATA_STORAGE_URL/api/v1/events")
    [ "$c" = 200 ] || { say "post $f: $c"; exit 1; }
  done
fi
t1=$(date +%s.%N)
say "stored $((ROWS + OTHER)) events in $(echo "$t1 - $t0" | bc) s"
rm -rf "$TEST_TMP/hist"
# the first entity list and stats after a restart, twice: InfluxDB's first is the one scan of a store written
# without data-storage (no summary yet), the second reads the summary that scan wrote (O(entities))
first_reads() {
  stop_pid "$PID_storage"
  house_start_storage
  wait_healthy "$DATA_STORAGE_URL/health" 30 || exit 1
  local e s
  e=$(curl -s -o /dev/null -w '%{time_total}' "$DATA_STORAGE_URL/api/v1/entities?limit=10000" | awk '{printf "%.1f", $1 * 1000}')
  s=$(curl -s -o /dev/null -w '%{time_total}' "$DATA_STORAGE_URL/api/v1/stats" | awk '{printf "%.1f", $1 * 1000}')
  echo "$e $s"
  sleep 2   # InfluxDB: the summary write goes out
}
first_reads >"$TEST_TMP/first1"; read -r ENT_FIRST_SCAN STATS_FIRST_SCAN <"$TEST_TMP/first1"
first_reads >"$TEST_TMP/first2"; read -r ENT_FIRST STATS_FIRST <"$TEST_TMP/first2"
say "after a restart: first entity list ${ENT_FIRST_SCAN} ms, first stats ${STATS_FIRST_SCAN} ms (InfluxDB: no summary yet, one scan)"
say "after a second restart: first entity list ${ENT_FIRST} ms, first stats ${STATS_FIRST} ms (InfluxDB: from the summary)"

# ---- the rest of the house and admin-api -----------------------------------------------
start_bg admin env ADMIN_API_PORT="$AD_PORT" "$ADM"
wait_healthy "$A/health" 30 || exit 1
sleep 2
RSS_IDLE=$(rss "$PID_admin" VmRSS)

# timed URL [N] : best and median curl total time (ms) over N runs
timed() {
  local url=$1 n=${2:-5} i
  for ((i = 0; i < n; i++)); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done |
    sort -n | awk '{a[NR] = $1 * 1000} END {printf "%.1f %.1f", a[1], a[int((NR + 1) / 2)]}'
}
START=$(date -u -d "@$((NOW_S - 30 * 86400))" +%Y-%m-%dT%H:%M:%SZ) END=$(date -u -d "@$NOW_S" +%Y-%m-%dT%H:%M:%SZ)
Q="start=$START&end=$END&points=500"
N=$(curl -s "$DATA_STORAGE_URL/api/v1/series?entity_id=sensor.bench_temperature&$Q" | jq '[.buckets[].count] | add')
SERIES_ST=$(timed "$DATA_STORAGE_URL/api/v1/series?entity_id=sensor.bench_temperature&$Q")
SERIES_AD=$(timed "$A/api/v1/entities/sensor.bench_temperature/series?$Q")
# InfluxDB: the same bucket query straight to influxd (influxd's own time; the rest is ours)
RAW_SERIES="0 0"
if [ "$HOUSE_BACKEND" = influxdb ]; then
  S0=$(date -u -d "@$((NOW_S - 30 * 86400))" +%s) W=$(( (30 * 86400 + 499) / 500 ))
  rawq() { echo "SELECT min(value), mean(value), max(value), count(value) FROM home_assistant_events WHERE entity_id = 'sensor.bench_temperature' AND event_type = 'state_changed'$1 AND time >= ${S0}s AND time < ${NOW_S}s GROUP BY time(${W}s, $((S0 % W))s) fill(none)"; }
  rawu() { echo "$INFLUXDB_URL/query?db=$INFLUXDB_DATABASE&epoch=ns&q=$(jq -rn --arg q "$(rawq "$1")" '$q | @uri')"; }
  RAW_SERIES=$(timed "$(rawu " AND state =~ /[0-9]/")")
  RAW_SERIES_NOREGEX=$(timed "$(rawu "")")
  say "series straight to influxd: best/median ${RAW_SERIES// / / } ms (without the state regex: ${RAW_SERIES_NOREGEX// / / } ms)"
fi
ENT_N=$(curl -s "$A/api/v1/entities?limit=10000" | jq .count)
ENT_ST=$(timed "$DATA_STORAGE_URL/api/v1/entities?limit=10000")
ENT_AD=$(timed "$A/api/v1/entities?limit=10000")
for p in / app.js app.css vendor/chart.min.js api/v1/health api/v1/overview; do curl -s -o /dev/null --compressed "$A/$p"; done
say "series of $N rows (points=500): data-storage best/median ${SERIES_ST// / / } ms, via admin-api ${SERIES_AD// / / } ms"
say "entities ($ENT_N): data-storage ${ENT_ST// / / } ms, via admin-api ${ENT_AD// / / } ms"

# ---- SSE at RATE events/s for SECS ----------------------------------------------------------
start_bg sim env SIMULATOR_PORT="$SIM_PORT" "$SIM" --rate "$RATE" --count $((RATE * SECS))
wait_http "http://127.0.0.1:$SIM_PORT/health" 20 || exit 1
HEAD0=$(curl -s "$DATA_STORAGE_URL/api/v1/stats?window=1" | jq .cursor)
curl -sN -H "Last-Event-ID: $HEAD0" "$A/api/v1/events/stream" >"$TEST_TMP/sse" & CURL=$!
TEST_PIDS+=("$CURL")
start_bg enrich env ENRICHMENT_PIPELINE_PORT="$EN_PORT" "$ENR"
start_bg ingest env WEBSOCKET_INGESTION_PORT="$IN_PORT" "$ING"
say "SSE: $RATE events/s for $SECS s through the pipeline, one client tailing admin-api"
T_END=$(( $(date +%s) + SECS + 60 ))
while :; do
  sent=$(curl -s "http://127.0.0.1:$SIM_PORT/api/sim/stats" | jq '.sent // 0')
  got=$(grep -c '^id: ' "$TEST_TMP/sse")
  [ "$sent" -ge $((RATE * SECS)) ] && [ "$got" -ge $((RATE * SECS)) ] && break
  [ "$(date +%s)" -gt "$T_END" ] && break
  sleep 1
done
sleep 2
kill "$CURL" 2>/dev/null; wait "$CURL" 2>/dev/null
GOT=$(grep '^id: ' "$TEST_TMP/sse" | cut -d' ' -f2)
HEAD1=$(curl -s "$DATA_STORAGE_URL/api/v1/stats?window=1" | jq .cursor)
# storage's own feed over the span (SQLite: consecutive ids; InfluxDB: commit sequences)
# (pages of 1,000 with retries: on a loaded machine a 10,000-event InfluxDB page can outlast INFLUXDB_TIMEOUT_MS)
WANT=$(c=$HEAD0; while [ "$c" -lt "$HEAD1" ]; do
  for try in 1 2 3 4 5; do
    f=$(curl -s "$DATA_STORAGE_URL/api/v1/events/feed?after=$c&limit=1000")
    n=$(jq -r '.cursor // empty' <<<"$f" 2>/dev/null); [ -n "$n" ] && break; sleep 2
  done
  [ -n "$n" ] || { say "feed after $c: $f"; break; }
  jq -r '.events[].seq' <<<"$f"; [ "$n" -gt "$c" ] || break; c=$n; done | awk -v h="$HEAD1" '$1 <= h')
SSE_N=$(wc -l <<<"$GOT")
if [ "$GOT" = "$WANT" ]; then SSE_OK=true; else SSE_OK=false; fi
RSS_AFTER=$(rss "$PID_admin" VmRSS) HWM=$(rss "$PID_admin" VmHWM)
say "SSE: $SSE_N events received, stored $(wc -l <<<"$WANT"); every seq once, in order: $SSE_OK"
say "admin-api RSS: idle $RSS_IDLE kB, after the run $RSS_AFTER kB, peak $HWM kB"
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/admin-$([ "$HOUSE_BACKEND" = influxdb ] && echo influxdb-)$(date -u +%Y%m%dT%H%M%SZ).json
jq -n --argjson rows "$N" --arg sst "$SERIES_ST" --arg sad "$SERIES_AD" --argjson ents "$ENT_N" --arg est "$ENT_ST" \
  --arg ead "$ENT_AD" --argjson rate "$RATE" --argjson secs "$SECS" --argjson got "$SSE_N" --argjson ok "$SSE_OK" \
  --argjson idle "$RSS_IDLE" --argjson after "$RSS_AFTER" --argjson hwm "$HWM" --arg cpu "$(nproc)" \
  --arg backend "$HOUSE_BACKEND" --argjson efirst "$ENT_FIRST" --argjson sfirst "$STATS_FIRST" --arg raw "$RAW_SERIES" \
  --argjson escan "$ENT_FIRST_SCAN" --argjson sscan "$STATS_FIRST_SCAN" \
  '{backend: $backend, after_restart_ms: {entities_first: $efirst, stats_first: $sfirst,
                                          entities_first_without_summary: $escan, stats_first_without_summary: $sscan},
    series: {rows: $rows, points: 500, data_storage_ms: ($sst | split(" ") | map(tonumber) | {best: .[0], median: .[1]}),
             influxd_alone_ms: ($raw | split(" ") | map(tonumber) | {best: .[0], median: .[1]}),
             admin_api_ms: ($sad | split(" ") | map(tonumber) | {best: .[0], median: .[1]})},
    entities: {count: $ents, data_storage_ms: ($est | split(" ") | map(tonumber) | {best: .[0], median: .[1]}),
               admin_api_ms: ($ead | split(" ") | map(tonumber) | {best: .[0], median: .[1]})},
    sse: {rate: $rate, seconds: $secs, received: $got, every_seq_once_in_order: $ok},
    admin_api_rss_kb: {idle: $idle, after: $after, peak: $hwm}, cpus: $cpu}' | tee "$OUT"
for p in "$PID_ingest" "$PID_enrich" "$PID_admin" "$PID_storage" "$PID_sim"; do stop_pid "$p"; done

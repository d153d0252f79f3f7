#!/usr/bin/env bash
# bench/purge_latency.sh -- does a retention purge hurt ingestion latency?
#
# Fills a store with OLD events spread over 60 days (half of them older than
# RETENTION_DAYS=30), restarts data-storage with RETENTION_DAYS=30 so the purge
# starts, and meanwhile posts live events at RATE events/s (batches of 10, one
# keep-alive connection) measuring each POST's latency (request -> 200 after
# the durable commit). Prints p50/p99/max during the purge and, for
# comparison, the same load after the purge finished, plus the file sizes.
#
# Use: bench/purge_latency.sh [path/to/homeiq-data-storage]
#   OLD=2000000 (the issue's database; default 60000) RATE=1000 SECONDS_=8
#   GEN=sql|http (default: sql above 100,000 events -- straight into the SQLite
#   file data-storage created, as bench/gen_sqlite_events.sql does for the
#   dashboard, spread over 60 days instead of 30; http posts them)
#   PURGE_STEP_BUDGET_MS / PURGE_STEP_MS / PURGE_STEP_ROWS / PURGE_COMMIT_FSYNC:
#   passed on when set.
#   CATCHUP=1 (GEN=sql only): leave the generated history without statistics,
#   so data-storage's background catch-up (stats_catchup.c) computes them
#   first: one more phase, "during-catchup", is measured before the purge.
#   DB_CACHE=/path/events.db (GEN=sql): reuse that generated file when it exists
#   (copied, so the cache stays unpurged), else generate and keep a copy there:
#   old and new binaries measured back to back on the same file.
# Prints, besides the latencies (each with the load average), the purge's
# phase histograms (/health retention.phases: each DELETE, incremental_vacuum,
# COMMIT, checkpoint by the purge / a batch / the thread, WAL flush, whole
# steps, batch writes by what ran beside them; counts over 10 and 25 ms) when
# the binary has them, and the load-robust figures: process CPU and WAL frames
# per purged row and per step (from /proc and /health, any binary), CPU vs
# wall per phase (binaries with retention.cost). Checks the counts: rows
# before + events acked - events purged = rows after, none older than the
# cut-off left; exit 1 otherwise.
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
OLD=${OLD:-60000}
RATE=${RATE:-1000}
SECS=${SECONDS_:-8}
GEN=${GEN:-$( (( OLD > 100000 )) && echo sql || echo http)}
NOW=$(date +%s)
port=$(free_port); U=http://127.0.0.1:$port
export STORAGE_BACKEND=sqlite DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$port LOG_LEVEL=warn STORAGE_MIN_FREE_BYTES=0
start_bg fill "$BIN"; wait_healthy "$U/health" 30 || exit 1
t0=$(date +%s.%N)
if [ "$GEN" = sql ] && [ -n "${DB_CACHE:-}" ] && [ -s "$DB_CACHE" ]; then
  stop_pid "$LAST_PID"
  cp "$DB_CACHE" "$TEST_TMP/data/events.db" && rm -f "$TEST_TMP/data/events.db-wal" "$TEST_TMP/data/events.db-shm"
  echo "events.db copied from $DB_CACHE"
elif [ "$GEN" = sql ]; then
  stop_pid "$LAST_PID"
  printf "CREATE TEMP TABLE gen(n, entities, now_us); INSERT INTO gen VALUES (%d, 60, %s);\n" "$OLD" "$(date +%s%6N)" >"$TEST_TMP/gen.sql"
  sed 's/30 \* 86400000000/60 * 86400000000/g' "$root/bench/gen_sqlite_events.sql" >>"$TEST_TMP/gen.sql"  # 60 days
  sqlite3 "$TEST_TMP/data/events.db" <"$TEST_TMP/gen.sql" >/dev/null || exit 1
  if [ "${CATCHUP:-0}" != 1 ]; then   # generated history needs no statistics: mark the catch-up done
    sqlite3 "$TEST_TMP/data/events.db" "INSERT OR REPLACE INTO stats_marks(name, value)
      SELECT 'catchup_at:' || entity_id, 1 FROM entities UNION ALL SELECT 'catchup_to:' || entity_id, 0 FROM entities"
  fi
  sqlite3 "$TEST_TMP/data/events.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
  [ -n "${DB_CACHE:-}" ] && cp "$TEST_TMP/data/events.db" "$DB_CACHE"
else
  python3 "$root/tests/storage/stats_series.py" bulk "$NOW" 60 "$OLD" 60 "$TEST_TMP/bulk.json"
  python3 - "$TEST_TMP/bulk.json" "$TEST_TMP" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
for i in range(0, len(recs), 5000):
    json.dump({"events": recs[i:i + 5000]}, open("%s/old_%03d.json" % (sys.argv[2], i // 5000), "w"))
PY
  for f in "$TEST_TMP"/old_*.json; do curl -s -o /dev/null -XPOST "$U/api/v1/events" --data-binary @"$f"; done
  stop_pid "$LAST_PID"
fi
echo "generated $OLD events over 60 days ($GEN) in $(echo "$(date +%s.%N) - $t0" | bc) s"
size1=$(stat -c %s "$TEST_TMP/data/events.db")
rows1=$(sqlite3 "$TEST_TMP/data/events.db" "SELECT count(*) FROM events")
# live load: RATE events/s in batches of 10; prints p50 p99 max (ms) of each phase
load() {
  python3 - "$port" "$RATE" "$1" "$2" "$TEST_TMP/acked" <<'PY'
import http.client, json, sys, time, datetime
port, rate, secs, tag = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
lat, n, t0 = [], 0, time.time()
while time.time() - t0 < secs:
    now = time.time()
    evs = []
    for k in range(10):
        ts = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
        evs.append({"event_type": "state_changed", "entity_id": "sensor.live_%d" % (k % 5), "time_fired": ts,
                    "context_id": "%s-%d-%d" % (tag, n, k), "state": str(n % 50), "value": float(n % 50),
                    "state_class": "measurement", "attributes": {}})
    body = json.dumps({"events": evs})
    s = time.perf_counter()
    c.request("POST", "/api/v1/events", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    lat.append((time.perf_counter() - s) * 1000)
    assert r.status == 200, r.status
    n += 1
    nxt = t0 + n * 10.0 / rate
    if nxt > time.time():
        time.sleep(nxt - time.time())
open(sys.argv[5], "a").write("%d\n" % (n * 10))   # events acked, for the count check
over10, over25 = sum(1 for x in lat if x > 10), sum(1 for x in lat if x > 25)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1) + 0.5))]
print("%s: %d POSTs (%d events/s target): p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d over 10 ms, %d over 25 ms; load %s" %
      (tag, len(lat), rate, p(0.5), p(0.99), lat[-1], over10, over25, " ".join(open("/proc/loadavg").read().split()[:3])))
PY
}
proc_cpu_ms() {   # utime + stime of a process, ms
  awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"
}
knobs=()
for v in PURGE_STEP_BUDGET_MS PURGE_STEP_MS PURGE_STEP_ROWS PURGE_COMMIT_FSYNC; do [ -n "${!v:-}" ] && knobs+=("$v=${!v}"); done
start_bg purge env RETENTION_DAYS=30 PURGE_INTERVAL_MS=60000 "${knobs[@]}" "$BIN"
pid=$LAST_PID; wait_healthy "$U/health" 60 || exit 1
echo "purge knobs: ${knobs[*]:-defaults}"
if [ "${CATCHUP:-0}" = 1 ]; then
  load "$SECS" during-catchup
  echo "catch-up so far: $(curl -s "$U/health" | jq -c '.backend.retention.statistics_catchup')"
  t0=$(date +%s.%N)
  wait_for ${PURGE_WAIT_S:-3600} bash -c "curl -s $U/health | jq -e '.backend.retention.statistics_catchup.done' >/dev/null"
  echo "catch-up done after $(echo "$(date +%s.%N) - $t0" | bc) more s: $(curl -s "$U/health" | jq -c '.backend.retention.statistics_catchup')"
fi
load "$SECS" during-purge
curl -s "$U/health" >"$TEST_TMP/h1.json"
cpu1=$(proc_cpu_ms "$pid")
echo "purge so far: $(jq -c '.backend.retention | {events_purged, stats_rows_purged, purging, step_us_max, wal_frames, wal_frames_purge, wal_frames_other}' "$TEST_TMP/h1.json")"
phases() {   # one line per phase: n, max, count over 10 / 25 ms, total
  jq -r '.backend.retention.phases // {} | to_entries[] | "  \(.key): n \(.value.n), max \(.value.max_us / 1000) ms, over 10 ms \(.value.over_10ms), over 25 ms \(.value.over_25ms), total \(.value.total_us / 1000) ms, le_ms \(.value.le_ms | tostring)"' "$1"
}
echo "phases during the measured window:"; phases "$TEST_TMP/h1.json"
wait_for ${PURGE_WAIT_S:-3600} bash -c "curl -s $U/health | jq -e '.backend.retention.purging == false and .backend.retention.events_purged > 0' >/dev/null"
curl -s "$U/health" >"$TEST_TMP/h2.json"
cpu2=$(proc_cpu_ms "$pid")
# any binary (old ones have no retention.cost): the whole process' CPU (loop, checkpoint thread) from the end of
# the measured window to the end of the purge, when nothing but the purge (and /health polls) ran
jq -r --argjson cpu $((cpu2 - cpu1)) --slurpfile h1 "$TEST_TMP/h1.json" '.backend.retention as $r | $h1[0].backend.retention as $a |
  (($r.events_purged + $r.stats_rows_purged) - ($a.events_purged + $a.stats_rows_purged)) as $rows |
  (($r.phases.step.n // 0) - ($a.phases.step.n // 0)) as $steps | ($r.wal_frames_purge - $a.wal_frames_purge) as $fr |
  "after the window, purge alone: \($rows) rows in \($steps) steps, process CPU \($cpu) ms = \($cpu * 1000 / ([$rows,1]|max) * 100 | round / 100) us per purged row; WAL frames \($fr / ([$rows,1]|max) * 1000 | round / 1000) per row, \($fr / ([$steps,1]|max) * 10 | round / 10) per step"' "$TEST_TMP/h2.json"
echo "purge done: $(jq -c '.backend.retention | {events_purged, stats_rows_purged, step_us_max, wal_frames, wal_frames_purge, wal_frames_other}' "$TEST_TMP/h2.json")"
# load-robust figures: CPU and WAL frames per purged row, frames per step (what a batch's fsync may carry)
jq -r '.backend.retention | select(.cost) | .cost as $c | (.events_purged + .stats_rows_purged) as $rows |
  "purge cost: \($c.steps) steps, CPU \($c.cpu_us / 1000 | floor) ms = \($c.cpu_us / ([$rows,1]|max) * 100 | round / 100) us per purged row; WAL frames \(.wal_frames_purge / ([$rows,1]|max) * 1000 | round / 1000) per purged row, \(.wal_frames_purge / ([.phases.step.n,1]|max) * 10 | round / 10) per step; \($c.pages_freed) pages vacuumed; cost model \($c.delete_us_per_row | round) us/row, \($c.vacuum_us_per_page | round) us/page; commit_fsync \($c.commit_fsync)",
  (select($c.cpu_delete_us) | .phases as $p | "wall vs CPU on the loop (the rest: waiting for a core or the disk): " +
   ([["delete", $c.cpu_delete_us], ["vacuum", $c.cpu_vacuum_us], ["commit", $c.cpu_commit_us]] |
    map("\(.[0]) \($p[.[0]].total_us / 1000 | round) / \(.[1] / 1000 | round) ms") | join(", ")))' "$TEST_TMP/h2.json"
batches() {   # a batch's write by what ran beside it (phases batch_*), and the steps' blocking of the loop
jq -r '.backend.retention.phases // {} | [.step, .batch_idle, .batch_purging, .batch_checkpoint] | select(.[1]) |
  "a batch write takes on average: idle \(.[1].total_us / ([.[1].n,1]|max) / 10 | round / 100) ms (n \(.[1].n)), beside a purge \(.[2].total_us / ([.[2].n,1]|max) / 10 | round / 100) ms (n \(.[2].n)), beside a checkpoint \(.[3].total_us / ([.[3].n,1]|max) / 10 | round / 100) ms (n \(.[3].n)); a step blocks the loop \(.[0].total_us / ([.[0].n,1]|max) / 10 | round / 100) ms on average, max \(.[0].max_us / 1000) ms"' "$1"
}
echo "phases over the whole purge:"; phases "$TEST_TMP/h2.json"
load "$SECS" after-purge
curl -s "$U/health" >"$TEST_TMP/h3.json"
batches "$TEST_TMP/h3.json"
echo "phases over the whole run:"; phases "$TEST_TMP/h3.json" | grep -E '^  (batch_|step)'
stop_pid "$pid"
size2=$(stat -c %s "$TEST_TMP/data/events.db")
# nothing unpurged lost: rows now = rows before + events acked - events purged; and none older than the cut-off
# (30 days floored to the hour, so older than 30 days + 1 h) is left
rows2=$(sqlite3 "$TEST_TMP/data/events.db" "SELECT count(*) FROM events")
acked=$(awk '{s += $1} END {print s + 0}' "$TEST_TMP/acked")
purged=$(jq '.backend.retention.events_purged' "$TEST_TMP/h3.json")
left=$(sqlite3 "$TEST_TMP/data/events.db" "SELECT count(*) FROM events WHERE time_us < ($(date +%s) - 30 * 86400 - 3600) * 1000000")
if [ "$rows2" -eq $((rows1 + acked - purged)) ] && [ "$left" -eq 0 ]; then
  echo "counts: OK -- $rows1 events + $acked acked - $purged purged = $rows2 in the file; none older than the cut-off left"
else
  echo "counts: MISMATCH -- $rows1 events + $acked acked - $purged purged != $rows2 in the file, or $left older than the cut-off left"
  status=1
fi
echo "events.db: $size1 bytes with $OLD events (half older than 30 days), $size2 after the purge"
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exit "${status:-0}"

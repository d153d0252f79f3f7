#!/usr/bin/env bash
# bench/year_size.sh -- how big events.db gets after one simulated year of a
# 60-entity house, kept whole and with RETENTION_DAYS=30 (issue 13's "done
# when"). A year is ~19 M events: posting it through HTTP would take hours on
# this machine, so the year is generated offline, but every byte of it is
# made by data-storage's own code:
#   1. one day of the house (tests/storage/stats_series.py house: power every
#      30 s, energy meters every 60 s, climate every 5 min, on/off every
#      ~10 min) is POSTed to the real data-storage (STATISTICS=1): real rows,
#      real record text, real statistics;
#   2. that day's rows are copied into the YEAR_DAYS-1 days before it, straight
#      in SQLite (times shifted by whole days, event ids made unique, every
#      other column as stored) -- the offline part;
#   3. data-storage is started again: its statistics catch-up
#      (stats_catchup.c) computes the 5-minute and hourly rows of the copied
#      days from the raw events; once done, the file size is "kept whole"
#      (5-minute rows are then purged by the default 10-day policy, as they
#      would be in a real year);
#   4. data-storage is restarted with RETENTION_DAYS=30 and runs its purge and
#      incremental vacuum to the end; the file size is "RETENTION_DAYS=30".
# The copy runs in rollback-journal mode (a WAL would hold the whole copy twice).
# Sizes are after a WAL checkpoint (TRUNCATE), i.e. events.db alone.
# Purge steps are made large here (PURGE_STEP_ROWS, PURGE_STEP_BUDGET_MS,
# PURGE_STEP_MS=0): this measures sizes, not latency (bench/purge_latency.sh).
# The copied energy meters restart each day, so each day has one meter reset.
#
# Use: bench/year_size.sh [path/to/homeiq-data-storage]
#      YEAR_DAYS=365  YEAR_DIR=<dir on a disk with ~20 GB free; default under /tmp>
#      KEEP=1 leaves the database in YEAR_DIR.
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
YEAR_DAYS=${YEAR_DAYS:-365}
DIR=${YEAR_DIR:-$TEST_TMP/year}
mkdir -p "$DIR" "$TEST_TMP/h"
DB=$DIR/events.db
[ -e "$DB" ] && { echo "$DB exists: give an empty YEAR_DIR" >&2; exit 2; }
now=$(date +%s)
ts() { date -u +%H:%M:%S; }
size() { sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null; stat -c %s "$DB"; }
mb() { echo "scale=1; $1 / 1048576" | bc; }

port=$(free_port)
base_env=(DATA_STORAGE_PORT=$port LOG_LEVEL=warn STORAGE_BACKEND=sqlite DATA_DIR=$DIR STATISTICS=1
          STORAGE_MIN_FREE_BYTES=0)
run_storage() {   # run_storage NAME ENV... : start data-storage, wait until healthy
  local name=$1; shift
  start_bg "$name" env "${base_env[@]}" "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "http://127.0.0.1:$port/health" 120 || { echo "data-storage did not start" >&2; exit 1; }
}
health() { curl -s "http://127.0.0.1:$port/health"; }

# ---- 1. one real day -----------------------------------------------------
N=$(python3 "$root/tests/storage/stats_series.py" house "$now" 1 1000 "$TEST_TMP/h")
echo "# $(ts) day 1: $N events of a 60-entity house, posted to data-storage"
run_storage day1
for f in "$TEST_TMP"/h/h_*.json; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
         --data-binary @"$f" "http://127.0.0.1:$port/api/v1/events")
  [ "$code" = 200 ] || { echo "POST $f: HTTP $code" >&2; exit 1; }
done
stop_pid "$SPID" >/dev/null
day_bytes=$(size)
stored=$(sqlite3 "$DB" 'SELECT count(*) FROM events')
echo "# $(ts) day 1 stored: $stored events, events.db $(mb "$day_bytes") MB"

# ---- 2. the other days, copied offline -------------------------------------
cols=$(sqlite3 "$DB" "SELECT group_concat(name, ',') FROM pragma_table_info('events') WHERE name <> 'id'")
sel=$(sqlite3 "$DB" "SELECT group_concat(CASE
        WHEN name = 'event_id' THEN 'substr(e.event_id, 1, length(e.event_id) - 4) || ''y'' || printf(''%03d'', d.k)'
        WHEN name IN ('time_us', 'stored_at_us') THEN 'e.' || name || ' - d.k * 86400000000'
        ELSE 'e.' || name END, ',') FROM pragma_table_info('events') WHERE name <> 'id'")
echo "# $(ts) copying day 1 into the $((YEAR_DAYS - 1)) days before it"
sqlite3 "$DB" <<SQL
PRAGMA journal_mode=DELETE;
PRAGMA cache_size=-1000000;
PRAGMA synchronous=OFF;
CREATE TEMP TABLE d(k INTEGER PRIMARY KEY);
WITH RECURSIVE i(k) AS (SELECT $((YEAR_DAYS - 1)) UNION ALL SELECT k - 1 FROM i WHERE k > 1) INSERT INTO d SELECT k FROM i;
CREATE TEMP TABLE day1 AS SELECT * FROM events;
INSERT INTO events($cols) SELECT $sel FROM d, day1 e ORDER BY d.k DESC, e.id;
UPDATE entities SET event_count = event_count * $YEAR_DAYS;
PRAGMA journal_mode=WAL;
SQL
total=$(sqlite3 "$DB" 'SELECT count(*) FROM events')
raw_bytes=$(size)
echo "# $(ts) $total events, events.db $(mb "$raw_bytes") MB before the catch-up"

# ---- 3. statistics of the copied days, by data-storage's catch-up -----------
run_storage catchup PURGE_STEP_MS=0 PURGE_STEP_ROWS=20000 PURGE_STEP_BUDGET_MS=1000
# done when the catch-up is, and the 5-minute rows older than 10 days that it
# wrote are purged and their pages vacuumed (as in a year of normal running)
settled() {   # settled JQ-CONDITION: the retention state of /health satisfies it
  h=$(health)
  [ "$(echo "$h" | jq -r ".backend.retention | (.purging == false and .freelist_pages < 1000 and ($1))")" = true ]
}
until settled '.statistics_catchup.done'; do
  kill -0 "$SPID" 2>/dev/null || { echo "data-storage died during the catch-up" >&2; exit 1; }
  sleep 10
done
stop_pid "$SPID" >/dev/null
whole=$(size)
rows=$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM stats_5min) || ' 5-minute rows, ' || (SELECT count(*) FROM stats_hour) || ' hourly rows'")
echo "# $(ts) catch-up done ($(echo "$h" | jq -c '.backend.retention.statistics_catchup')); $rows"
echo "kept whole: $total events, events.db $(mb "$whole") MB"

# ---- 4. RETENTION_DAYS=30 --------------------------------------------------
run_storage purge RETENTION_DAYS=30 PURGE_STEP_MS=0 PURGE_STEP_ROWS=20000 PURGE_STEP_BUDGET_MS=1000
until settled '.events_purged > 0'; do
  kill -0 "$SPID" 2>/dev/null || { echo "data-storage died during the purge" >&2; exit 1; }
  sleep 10
done
stop_pid "$SPID" >/dev/null
kept=$(sqlite3 "$DB" 'SELECT count(*) FROM events')
rows=$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM stats_5min) || ' 5-minute rows, ' || (SELECT count(*) FROM stats_hour) || ' hourly rows'")
ret=$(size)
echo "# $(ts) purge done: $(echo "$h" | jq -c '.backend.retention | {events_purged, stats_rows_purged, freelist_pages, step_us_max}')"
echo "RETENTION_DAYS=30: $kept events, $rows, events.db $(mb "$ret") MB"
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$root" rev-parse --short HEAD)"
if [ "${KEEP:-0}" = 1 ]; then trap - EXIT; echo "# kept: $DIR"; fi

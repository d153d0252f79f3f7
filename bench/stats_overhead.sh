#!/usr/bin/env bash
# bench/stats_overhead.sh -- what long-term statistics cost per event, and how
# big the SQLite file of a 60-entity house gets.
#
# Generates DAYS days of a 60-entity house (tests/storage/stats_series.py
# house: power every 30 s, energy meters every 60 s, climate every 5 min,
# on/off every ~10 min), posts it in time order in batches of BATCH to the real
# data-storage twice -- STATISTICS=1 and STATISTICS=0 -- and prints: wall time
# per event for each, the difference, the time spent inside the statistics
# update per event (data-storage's own counter, /health), and events.db bytes
# per day with and without statistics, extrapolated to a year with and
# without RETENTION_DAYS=30.
#
# Use: bench/stats_overhead.sh [path/to/homeiq-data-storage]   DAYS=2 BATCH=100
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
DAYS=${DAYS:-2}
BATCH=${BATCH:-100}
mkdir -p "$TEST_TMP/h"
N=$(python3 "$root/tests/storage/stats_series.py" house "$(date +%s)" "$DAYS" "$BATCH" "$TEST_TMP/h")
echo "# $N events, $DAYS days of a 60-entity house, batches of $BATCH"
for on in 1 0; do
  port=$(free_port)
  STORAGE_BACKEND=sqlite DATA_DIR=$TEST_TMP/d$on DATA_STORAGE_PORT=$port LOG_LEVEL=warn STATISTICS=$on \
    STORAGE_MIN_FREE_BYTES=0 start_bg "storage-$on" "$BIN"
  pid=$LAST_PID
  wait_healthy "http://127.0.0.1:$port/health" 30 || exit 1
  args=()
  for f in "$TEST_TMP"/h/h_*.json; do
    args+=(-o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json' --data-binary @"$f"
           "http://127.0.0.1:$port/api/v1/events" --next)
  done
  unset 'args[${#args[@]}-1]'
  t0=$(date +%s.%N)
  codes=$(curl -s "${args[@]}" | sort | uniq -c | tr '\n' ' ')
  t1=$(date +%s.%N)
  wall[$on]=$(echo "($t1 - $t0) * 1000000 / $N" | bc -l)
  upd[$on]=$(curl -s "http://127.0.0.1:$port/health" | jq '.backend.statistics.update_us // 0')
  stop_pid "$pid"
  size[$on]=$(stat -c %s "$TEST_TMP/d$on/events.db")
  printf 'STATISTICS=%s: %7.1f us/event wall (HTTP %s), events.db %d bytes\n' "$on" "${wall[$on]}" "$codes" "${size[$on]}"
done
printf 'statistics: %.1f us/event wall difference, %.1f us/event inside the update (in the batch transaction)\n' \
  "$(echo "${wall[1]} - ${wall[0]}" | bc -l)" "$(echo "${upd[1]} / $N" | bc -l)"
rows=$(sqlite3 "$TEST_TMP/d1/events.db" "select (select count(*) from stats_5min), (select count(*) from stats_hour)")
statb=$(sqlite3 "$TEST_TMP/d1/events.db" "select sum(pgsize) from dbstat where name like 'stats%'" 2>/dev/null || echo 0)
echo "statistics rows (5min|hour): $rows; statistics bytes: ${statb:-n/a}"
python3 - "$DAYS" "${size[1]}" "${statb:-0}" "$N" <<'PY'
import sys
days, total, statb, n = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3] or 0), int(sys.argv[4])
raw_day = (total - statb) / days
hour_day = statb / days / 13.0          # hourly ~1/13 of the stats rows (12 five-minute rows + 1 hourly)
five_day = statb / days - hour_day
year_all = 365 * raw_day + 10 * five_day + 365 * hour_day
year_30 = 30 * raw_day + 10 * five_day + 365 * hour_day
print("per day: raw events %.1f MB, 5-minute stats %.2f MB, hourly stats %.3f MB (%d events/day)" %
      (raw_day / 1e6, five_day / 1e6, hour_day / 1e6, n / days))
print("one year, extrapolated: keep everything %.2f GB; RETENTION_DAYS=30 %.2f GB" % (year_all / 1e9, year_30 / 1e9))
PY
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

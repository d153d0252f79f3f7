#!/usr/bin/env bash
# bench/stats_overhead.sh -- what long-term statistics cost per event, on
# either backend, and (SQLite) how big the file of a 60-entity house gets.
#
# Generates DAYS days of a 60-entity house (tests/storage/stats_series.py
# house: power every 30 s, energy meters every 60 s, climate every 5 min,
# on/off every ~10 min), posts it in time order in batches of BATCH to the real
# data-storage twice -- STATISTICS=1 and STATISTICS=0 -- and prints for each:
# wall time per event, CPU time per event of data-storage (and, on InfluxDB,
# of influxd: /proc/PID/stat utime+stime over the posting), then the
# differences and the time spent inside the statistics update per event
# (data-storage's own counter, /health). Wall time is meaningless on a busy
# machine; the CPU times are what load changes least.
#   sqlite:   events.db bytes per day with and without statistics,
#             extrapolated to a year with and without RETENTION_DAYS=30.
#   influxdb: a throw-away influxd, one database per run; statistics are
#             computed from the running state per entity (stats_influx.c),
#             /health's fast_updates says how many entity updates were.
#
# Use: bench/stats_overhead.sh [sqlite|influxdb] [path/to/homeiq-data-storage]
#      DAYS=2 (influxdb: 1) BATCH=100
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
BACKEND=${1:-sqlite}
BIN=${2:-$root/build/services/data-storage/homeiq-data-storage}
case $BACKEND in
  sqlite) DAYS=${DAYS:-2} ;;
  influxdb) DAYS=${DAYS:-1}; . "$root/tests/lib/influxd.sh"; influxd_start || exit 1 ;;
  *) echo "usage: $0 [sqlite|influxdb] [binary]" >&2; exit 2 ;;
esac
BATCH=${BATCH:-100}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, clock ticks
HZ=$(getconf CLK_TCK)
mkdir -p "$TEST_TMP/h"
N=$(python3 "$root/tests/storage/stats_series.py" house "$(date +%s)" "$DAYS" "$BATCH" "$TEST_TMP/h")
echo "# $BACKEND: $N events, $DAYS days of a 60-entity house, batches of $BATCH"
for on in 1 0; do
  port=$(free_port)
  env=(DATA_STORAGE_PORT=$port LOG_LEVEL=warn STATISTICS=$on STORAGE_MIN_FREE_BYTES=0)
  if [ "$BACKEND" = sqlite ]; then env+=(STORAGE_BACKEND=sqlite DATA_DIR=$TEST_TMP/d$on)
  else env+=(STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=bench$on INFLUXDB_PING_INTERVAL_MS=200); fi
  start_bg "storage-$on" env "${env[@]}" "$BIN"
  pid=$LAST_PID
  wait_healthy "http://127.0.0.1:$port/health" 30 || exit 1
  args=()
  for f in "$TEST_TMP"/h/h_*.json; do
    args+=(-o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json' --data-binary @"$f"
           "http://127.0.0.1:$port/api/v1/events" --next)
  done
  unset 'args[${#args[@]}-1]'
  c0=$(cpu_ticks "$pid"); i0=0; [ "$BACKEND" = influxdb ] && i0=$(cpu_ticks "$INFLUXD_PID")
  t0=$(date +%s.%N)
  codes=$(curl -s "${args[@]}" | sort | uniq -c | tr '\n' ' ')
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$pid"); i1=0; [ "$BACKEND" = influxdb ] && i1=$(cpu_ticks "$INFLUXD_PID")
  wall[$on]=$(echo "($t1 - $t0) * 1000000 / $N" | bc -l)
  cpu[$on]=$(echo "($c1 - $c0) * 1000000 / $HZ / $N" | bc -l)
  icpu[$on]=$(echo "($i1 - $i0) * 1000000 / $HZ / $N" | bc -l)
  curl -s "http://127.0.0.1:$port/health" >"$TEST_TMP/health$on.json"
  upd[$on]=$(jq '.backend.statistics.update_us // 0' "$TEST_TMP/health$on.json")
  stop_pid "$pid"
  if [ "$BACKEND" = sqlite ]; then
    size[$on]=$(stat -c %s "$TEST_TMP/d$on/events.db")
    printf 'STATISTICS=%s: %7.1f us/event wall, %6.1f us/event CPU of data-storage (HTTP %s), events.db %d bytes\n' \
      "$on" "${wall[$on]}" "${cpu[$on]}" "$codes" "${size[$on]}"
  else
    printf 'STATISTICS=%s: %7.1f us/event wall, %6.1f us/event CPU of data-storage, %6.1f of influxd (HTTP %s)\n' \
      "$on" "${wall[$on]}" "${cpu[$on]}" "${icpu[$on]}" "$codes"
  fi
done
printf 'statistics: %.1f us/event wall difference, %.1f us/event CPU difference (data-storage), %.1f (influxd), %.1f us/event inside the update\n' \
  "$(echo "${wall[1]} - ${wall[0]}" | bc -l)" "$(echo "${cpu[1]} - ${cpu[0]}" | bc -l)" \
  "$(echo "${icpu[1]} - ${icpu[0]}" | bc -l)" "$(echo "${upd[1]} / $N" | bc -l)"
if [ "$BACKEND" = influxdb ]; then
  jq -c '.backend.statistics' "$TEST_TMP/health1.json"
  echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
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
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

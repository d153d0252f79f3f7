#!/usr/bin/env bash
# bench/influx_homes.sh -- what the per-home totals cost on InfluxDB (issue 18):
# data-storage's CPU per stored event (the write path now adds each batch to
# its home's totals and writes one homeiq_homes point per changed home with the
# summary), and CPU per GET /api/v1/stats (every home: from memory), GET
# /api/v1/stats?home= (totals from memory, the window asked from InfluxDB by
# home_id tag) and GET /api/v1/homes (memory), for data-storage and influxd
# (utime+stime from /proc, which load changes much less than wall time).
# OLD and NEW binaries alternate, each round on a fresh database of the same
# influxd. Measured, not asserted.
#   BENCH_HOMES_EVENTS (20,000) events over BENCH_HOMES_N (4) homes, batches of
#   1,000 (each batch one home's); BENCH_HOMES_READS (200) reads of each kind;
#   BENCH_HOMES_ROUNDS (2).
# Use: OLD_BIN=/tmp/old/build/services/data-storage/homeiq-data-storage bench/influx_homes.sh
#      (BUILD=build for NEW). Results printed and written to bench/results/influx-homes-<time>.json.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"
. "$ROOT/tests/lib/influxd.sh"
NEW=$STO OLD=${OLD_BIN:?OLD_BIN: the old homeiq-data-storage}
N=${BENCH_HOMES_EVENTS:-20000} NH=${BENCH_HOMES_N:-4} READS=${BENCH_HOMES_READS:-200} ROUNDS=${BENCH_HOMES_ROUNDS:-2}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data
mkdir -p "$DATA_DIR"
say() { printf '[bench-homes %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
influxd_start || exit 1
PORT=$(free_port) U=http://127.0.0.1:$PORT
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
TCK=$(getconf CLK_TCK)
reads() { # reads PATH: READS GETs; "storage_us influxd_us" per read
  local s0 i0 k
  s0=$(cpu "$SPID") i0=$(cpu "$INFLUXD_PID")
  for ((k = 0; k < READS; k++)); do curl -s -o /dev/null "$U$1"; done
  echo "$(( ($(cpu "$SPID") - s0) * 1000000 / TCK / READS )) $(( ($(cpu "$INFLUXD_PID") - i0) * 1000000 / TCK / READS ))"
}
OUT=$ROOT/bench/results/influx-homes-$(date -u +%Y%m%dT%H%MZ).json
echo "[" >"$OUT"
first=1
for ((r = 0; r < ROUNDS; r++)); do
  for which in old new; do
    bin=$([ $which = old ] && echo "$OLD" || echo "$NEW")
    db=bh_${which}_$r
    INFLUXDB_DATABASE=$db DATA_STORAGE_PORT=$PORT start_bg "st_${which}_$r" "$bin"
    SPID=$LAST_PID
    wait_healthy "$U/health" 60 || exit 1
    c0=$(cpu "$SPID")
    /usr/bin/python3 - "$N" "$NH" "$(date +%s)" "$U" <<'PY' || exit 1
import json, sys, datetime, urllib.request
n, nh, now, url = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ts = lambda us: datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
t0 = (now - 1800) * 1000000
for k in range(0, n, 1000):
    home = "h%d" % ((k // 1000) % nh)
    evs = [{"event_type": "state_changed", "entity_id": f"sensor.bh_{i % 100}", "time_fired": ts(t0 + i * 50000),
            "context_id": f"bh-{i}", "state": str(i % 50), "value": float(i % 50)} for i in range(k, min(n, k + 1000))]
    hdr = {"Content-Type": "application/json"}
    if home != "h0": hdr["X-HomeIQ-Home"] = home
    req = urllib.request.Request(url + "/api/v1/events", json.dumps(evs).encode(), hdr)
    with urllib.request.urlopen(req, timeout=600) as r:
        assert json.load(r)["stored"] == len(evs)
PY
    write_us=$(( ($(cpu "$SPID") - c0) * 1000000 / TCK ))
    read -r all_s all_i <<<"$(reads '/api/v1/stats')"
    home_s=null home_i=null homes_s=null homes_i=null
    if [ $which = new ]; then
      read -r home_s home_i <<<"$(reads '/api/v1/stats?home=h1')"
      read -r homes_s homes_i <<<"$(reads '/api/v1/homes')"
    fi
    stop_pid "$SPID" >/dev/null
    line=$(printf '{"round":%d,"binary":"%s","events":%d,"homes":%d,"storage_write_us_per_event":%s,"stats_all":{"storage_us":%s,"influxd_us":%s},"stats_home":{"storage_us":%s,"influxd_us":%s},"homes":{"storage_us":%s,"influxd_us":%s},"load":"%s"}' \
      "$r" "$which" "$N" "$NH" "$(awk -v a="$write_us" -v n="$N" 'BEGIN{printf "%.2f", a / n}')" "$all_s" "$all_i" \
      "$home_s" "$home_i" "$homes_s" "$homes_i" "$(cut -d' ' -f1-3 /proc/loadavg)")
    say "$line"
    [ $first = 1 ] || echo "," >>"$OUT"
    first=0
    echo "$line" >>"$OUT"
  done
done
echo "]" >>"$OUT"
say "written $OUT"

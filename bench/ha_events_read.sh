#!/usr/bin/env bash
# bench/ha_events_read.sh -- the cost of GET /api/v1/events on
# INFLUXDB_SCHEMA=homeassistant (state_changed from the identity points,
# unfiltered pages merged from two measurements, influx_page.c) against the
# same read on INFLUXDB_SCHEMA=homeiq, for the same events.
#
# Two data-storage processes on one throw-away influxd (A: homeiq, database
# iq; B: homeassistant, database ha) get the same N events (95 %
# state_changed over 50 sensors, 5 % call_service). Then, per query, blocks of
# R requests go to A and B alternately (ROUNDS times); per request: the CPU
# time (utime+stime, /proc) of that data-storage and of influxd, and the
# answer's bytes. The answers are compared first (records without stored_at).
# Wall-clock times are left out on purpose (shared, loaded machine).
# Usage: bench/ha_events_read.sh [N=20000] [R=10] [ROUNDS=5]
# Writes bench/results/ha-events-read-<UTC>.json.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"
. "$ROOT/tests/lib/influxd.sh"
N=${1:-20000} R=${2:-10} ROUNDS=${3:-5}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data INFLUXDB_PING_INTERVAL_MS=500
mkdir -p "$DATA_DIR"
influxd_start || { echo "influxd does not start" >&2; exit 1; }
PA=$(free_port) PB=$(free_port) A=http://127.0.0.1:$PA B=http://127.0.0.1:$PB
INFLUXDB_DATABASE=iq INFLUXDB_SCHEMA=homeiq DATA_STORAGE_PORT=$PA start_bg sa "$STO"
INFLUXDB_DATABASE=ha INFLUXDB_SCHEMA=homeassistant DATA_STORAGE_PORT=$PB start_bg sb "$STO"
wait_healthy "$A/health" 30 && wait_healthy "$B/health" 30 || { echo "data-storage does not start" >&2; exit 1; }

/usr/bin/python3 - "$N" "$TEST_TMP/batches" <<'PY'
import datetime, json, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
evs = []
for i in range(n):
    t = 1740820000 + 10 * i
    ts = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    if i % 20 == 19:
        evs.append({"event_type": "call_service", "time_fired": ts, "context_id": f"c{i}", "domain": "light",
                    "service": "turn_on"})
    else:
        v = round(20 + (i % 97) / 10, 1)
        evs.append({"event_type": "state_changed", "entity_id": f"sensor.e{i % 50}", "time_fired": ts,
                    "context_id": f"s{i}", "state": str(v), "value": v, "attributes": {"unit_of_measurement": "°C"}})
for k in range(0, n, 1000):
    open(f"{out}/{k // 1000:05d}.json", "w").write(json.dumps(evs[k:k + 1000]))
PY
for f in "$TEST_TMP"/batches/*.json; do
  for u in "$A" "$B"; do
    c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$f" "$u/api/v1/events")
    [ "$c" = 200 ] || { echo "post to $u: $c" >&2; exit 1; }
  done
done

cpu_ms() { awk '{printf "%d", ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
QUERIES=("event_type=state_changed&limit=100" "limit=100" "limit=100&offset=1000" "entity_id=sensor.e7&limit=100"
         "event_type=state_changed&entity_id=sensor.e7&start=2025-03-01T10:00:00Z&end=2025-03-02T10:00:00Z&limit=1000")
rows=()
for q in "${QUERIES[@]}"; do
  a=$(curl -s "$A/api/v1/events?$q" | jq -c '[.events[] | del(.stored_at)]')
  b=$(curl -s "$B/api/v1/events?$q" | jq -c '[.events[] | del(.stored_at)]')
  same=false; [ "$a" = "$b" ] && same=true
  declare -A sto=( [A]=0 [B]=0 ) inf=( [A]=0 [B]=0 ) bytes=( [A]=0 [B]=0 )
  for _ in $(seq "$ROUNDS"); do
    for side in A B; do
      if [ $side = A ]; then u=$A pid=$PID_sa; else u=$B pid=$PID_sb; fi
      s0=$(cpu_ms "$pid") i0=$(cpu_ms "$INFLUXD_PID")
      for _ in $(seq "$R"); do bytes[$side]=$(curl -s -o /dev/null -w '%{size_download}' "$u/api/v1/events?$q"); done
      sto[$side]=$(( ${sto[$side]} + $(cpu_ms "$pid") - s0 ))
      inf[$side]=$(( ${inf[$side]} + $(cpu_ms "$INFLUXD_PID") - i0 ))
    done
  done
  n=$((R * ROUNDS))
  rows+=("$(jq -cn --arg q "$q" --argjson same "$same" --argjson n "$n" \
    --argjson sa "${sto[A]}" --argjson sb "${sto[B]}" --argjson ia "${inf[A]}" --argjson ib "${inf[B]}" \
    --argjson ba "${bytes[A]}" --argjson bb "${bytes[B]}" \
    '{query: $q, same_answer: $same, requests_each: $n,
      homeiq: {storage_cpu_ms_per_req: ($sa / $n), influxd_cpu_ms_per_req: ($ia / $n), bytes: $ba},
      homeassistant: {storage_cpu_ms_per_req: ($sb / $n), influxd_cpu_ms_per_req: ($ib / $n), bytes: $bb}}')")
  printf '%-110s same=%s  storage ms/req A %.2f B %.2f  influxd ms/req A %.2f B %.2f\n' "$q" "$same" \
    "$(jq -n "${sto[A]} / $n")" "$(jq -n "${sto[B]} / $n")" "$(jq -n "${inf[A]} / $n")" "$(jq -n "${inf[B]} / $n")"
done
mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/ha-events-read-$(date -u +%Y%m%dT%H%M%SZ).json
printf '%s\n' "${rows[@]}" | jq -s --argjson n "$N" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg commit "$(git -C "$ROOT" rev-parse --short HEAD)" --arg cpu "$(nproc) cores" \
  '{events: $n, load_average: $load, commit: $commit, machine: $cpu, queries: .}' >"$OUT"
echo "results: $OUT (load average $(cut -d' ' -f1-3 /proc/loadavg))"
stop_pid "$PID_sa"; stop_pid "$PID_sb"

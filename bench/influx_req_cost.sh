#!/usr/bin/env bash
# bench/influx_req_cost.sh -- influxd's CPU per write request and per event, by request size
# (issue 15): the same 1,000 events/s as 200 requests of 5, 50 of 20 or 20 of 50 events a second,
# then 20,000 single-event requests and 200 of 1,000 as fast as answered (plain, then gzipped), into a throw-away
# influxd (tests/lib/influxd.sh); an idle influxd's own CPU over 20 s first. Prints one line per size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$ROOT/tests/lib/influxd.sh"
influxd_start 60 || exit 1
ticks() { awk '{ print $14 + $15 }' "/proc/$INFLUXD_PID/stat"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 3
a=$(ticks); sleep 20; b=$(ticks)
echo "idle influxd: $(( b - a )) ticks of CPU in 20 s"
for spec in "1000 5 200" "250 20 50" "100 50 20" "20000 1 0" "200 1000 0" "200 1000 0 gzip"; do
  # shellcheck disable=SC2086
  python3 "$ROOT/bench/influx_req_cost.py" "$INFLUXDB_URL" "$INFLUXD_PID" $spec
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
influxd_stop

#!/usr/bin/env bash
# bench/influx_replay.sh CAPTURE SPEC... -- each SPEC on its own fresh influxd (tests/lib/influxd.sh), printing
# one JSON line each (issue 15: what influxd's CPU per 1,000 events comes from). A SPEC is
#   "replay MODE [VAR=VALUE...]"  -- bench/influx_replay.py CAPTURE MODE with those variables (REPLAY_ONLY,
#                                    REPLAY_DROP, REPLAY_SORT_TAGS), e.g. "replay asis", "replay rebatch:5000"
#   "plain COUNT BATCH"           -- bench/influx_plain.py, the bench's plain writer, CPU per 1,000 points
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$ROOT/tests/lib/influxd.sh"
cap=$1; shift
ticks() { awk '{ print $14 + $15 }' "/proc/$INFLUXD_PID/stat"; }
for spec in "$@"; do
  influxd_start 60 || exit 1
  read -r -a a <<<"$spec"
  if [ "${a[0]}" = plain ]; then
    sleep 1; c0=$(ticks)
    r=$(python3 "$ROOT/bench/influx_plain.py" "$INFLUXDB_URL" plain "${a[1]}" "${a[2]}")
    c1=$(ticks)
    jq -c --argjson c $((c1 - c0)) --argjson hz "$(getconf CLK_TCK)" --arg b "${a[2]}" --arg l "$(cut -d' ' -f1 /proc/loadavg)" \
      '{mode: ("plain batch " + $b), events: .points, requests_per_1000: (.requests / (.points / 1000)),
        events_per_s: (.points / .seconds | round), influxd_cpu_s_per_1000: ($c / $hz / (.points / 1000)), load: $l}' <<<"$r"
  else
    env "${a[@]:2}" python3 "$ROOT/bench/influx_replay.py" "$INFLUXDB_URL" "$INFLUXD_PID" "$cap" "${a[1]}"
  fi
  influxd_stop
done

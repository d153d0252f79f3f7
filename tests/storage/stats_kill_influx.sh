#!/usr/bin/env bash
# stats_kill_influx.sh -- data-storage dies between a batch's two statistics
# writes on a real influxd (issue 13: "kill storage during statistics updates:
# no row missing or counted twice after restart").
#
# Why: a batch writes its 5-minute rows, then its hourly rows, in two
# requests. A late event of a total_increasing meter (a reset in its second
# hour, posted after five hours of rows) moves every later sum. If storage
# dies after the 5-minute write, the 5-minute rows already carry the new sums
# when the batch is sent again; the later hourly rows must still be moved.
#
# Use: stats_kill_influx.sh /path/to/homeiq-data-storage
# A proxy (tests/admin/influx_cut_proxy.py) refuses the meter's hourly write
# (503) after influxd applied the 5-minute one; storage is SIGKILLed,
# restarted, the late batch posted again; every 5-minute and hourly row equals
# the independent computation (stats_series.py) to 1e-9.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

BIN=${1:?usage: stats_kill_influx.sh /path/to/homeiq-data-storage}
SERIES="python3 $here/stats_series.py"
export STORAGE_BACKEND=influxdb LOG_LEVEL=${LOG_LEVEL:-info} INFLUXDB_PING_INTERVAL_MS=200 INFLUXDB_DATABASE=homeiq_kill
echo "# statistics: SIGKILL between the 5-minute and the hourly write (InfluxDB)"
influxd_start || bail "influxd starts"
PP=$(free_port)
CUT=$TEST_TMP/cut
start_bg proxy /usr/bin/python3 "$here/../admin/influx_cut_proxy.py" "$PP" "$INFLUXDB_URL" "$CUT"
wait_http "http://127.0.0.1:$PP/ping" 20 || bail "the proxy starts"

start_storage() {
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$1" env DATA_STORAGE_PORT=$PORT INFLUXDB_URL=http://127.0.0.1:$PP "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
# post_batches FILE : the records of FILE in batches of 25; 1 when every one answered 200
post_batches() {
  local ok=1 n; n=$(jq length "$1")
  for ((i = 0; i < n; i += 25)); do
    jq -c --argjson i $i '{events: .[$i:$i+25]}' "$1" >"$TEST_TMP/b.json"
    [ "$(post "$TEST_TMP/b.json")" = 200 ] || ok=0
  done
  [ $ok = 1 ]
}
jqe() { jq -e "$@" >/dev/null; }
rows() { curl -s "$U/api/v1/statistics?entity_id=sensor.late_meter&period=$1&start=$START"; }

T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
$SERIES late "$T0" "$TEST_TMP" || bail "generate the series"
START=$(date -u -d "@$((T0 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
start_storage storage0 || bail "data-storage (through the proxy) starts"
check "five hours of the meter posted live (300 events)" post_batches "$TEST_TMP/live.json"
rows hour >"$TEST_TMP/h0.json"
check "... its later hours have rows (5)" jqe '.["sensor.late_meter"] | length == 5' "$TEST_TMP/h0.json"

printf 'entity_id=sensor.late_meter,period=hour' >"$CUT.block"   # the hourly write refused, nothing else
check "the late reset: not acknowledged (the hourly write refused)" \
  test "$(post "$TEST_TMP/late.json")" != 200
rows 5minute >"$TEST_TMP/m1.json"
check "... after influxd applied the 5-minute rows (the last one's sum moved)" \
  jqe --slurpfile x "$TEST_TMP/expected.json" \
  '.["sensor.late_meter"][-1].sum == $x[0]["sensor.late_meter"]["5minute"][-1].sum' "$TEST_TMP/m1.json"
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
rm -f "$CUT.block"

start_storage storage1 || bail "data-storage restarts after SIGKILL"
check "the late batch sent again: 200" test "$(post "$TEST_TMP/late.json")" = 200
rows 5minute >"$TEST_TMP/c5.json"
rows hour >"$TEST_TMP/ch.json"
check "every 5-minute and hourly row equals the independent computation (1e-9): none missing, none counted twice" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/c5.json" "$TEST_TMP/ch.json"
check "sent a third time: 200" test "$(post "$TEST_TMP/late.json")" = 200
rows hour >"$TEST_TMP/ch2.json"
check "... and the hourly rows are the same" cmp -s "$TEST_TMP/ch.json" "$TEST_TMP/ch2.json"
check "stop: exit 0" stop_pid "$SPID"
finish

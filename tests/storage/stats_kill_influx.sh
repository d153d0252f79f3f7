#!/usr/bin/env bash
# stats_kill_influx.sh -- data-storage dies when only one of a batch's two
# statistics writes landed, on a real influxd (issue 13: "kill storage during
# statistics updates: no row missing or counted twice after restart").
#
# Why: a batch writes its 5-minute rows and its hourly rows in two requests,
# sent together (issue 15), so either may land alone. A late event of a
# total_increasing meter (a reset in its second hour, posted after five hours
# of rows) moves every later sum. If storage dies after the 5-minute write
# landed, the 5-minute rows already carry the new sums when the batch is sent
# again; the later hourly rows must still be moved. If only the hourly write
# landed, the reverse: the later 5-minute rows must move, the hours not twice.
#
# The same holds for hours without states: a batch after a silence of two
# hours whose hourly write is refused while its 5-minute write (the silent
# hours' rows) lands, then SIGKILL -- on the ack path and with the flush
# (the recovery from the mark); the silent hours must get their hourly rows.
# And a partly written flush (chunks): some hourly chunks stored, a later one
# refused, then SIGKILL -- each entity's rows must be stored oldest first.
#
# Use: stats_kill_influx.sh /path/to/homeiq-data-storage
# A proxy (tests/admin/influx_cut_proxy.py) refuses the meter's hourly write
# (503) while influxd applies the 5-minute one (then, on a second database,
# the reverse); storage is SIGKILLed, restarted, the late batch posted again;
# every 5-minute and hourly row equals the independent computation
# (stats_series.py) to 1e-9.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: stats_kill_influx.sh /path/to/homeiq-data-storage}
echo "# statistics: SIGKILL when one of the 5-minute and hourly writes landed (InfluxDB)"
. "$here/stats_influx_lib.sh"   # influxd, the proxy; start_storage, post, post_batches, jqe, series_gen
rows() { influx_stats_settled "$U" >&2; curl -s "$U/api/v1/statistics?entity_id=sensor.late_meter&period=$1&start=$START"; }

series_gen late

# scenario DB BLOCKED LANDED : the late batch's BLOCKED-period write refused (503) while the LANDED one is applied;
# SIGKILL, restart, the batch again
scenario() {
  local db=$1 blocked=$2 landed=$3
  export INFLUXDB_DATABASE=$db
  echo "# $db: the $blocked write refused, the $landed write lands"
  start_storage "storage0-$db" || bail "data-storage (through the proxy) starts"
  check "five hours of the meter posted live (300 events)" post_batches "$TEST_TMP/live.json" 25
  rows hour >"$TEST_TMP/h0.json"
  check "... its later hours have rows (5)" jqe '.["sensor.late_meter"] | length == 5' "$TEST_TMP/h0.json"

  printf 'entity_id=sensor.late_meter,period=%s' "$blocked" >"$CUT.block"   # that write refused, nothing else
  check "the late reset: not acknowledged (the $blocked write refused)" \
    test "$(post "$TEST_TMP/late.json")" != 200
  rows "$landed" >"$TEST_TMP/m1.json"
  check "... after influxd applied the $landed rows (the last one's sum moved)" \
    jqe --slurpfile x "$TEST_TMP/expected.json" --arg p "$landed" \
    '.["sensor.late_meter"][-1].sum == $x[0]["sensor.late_meter"][$p][-1].sum' "$TEST_TMP/m1.json"
  kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
  rm -f "$CUT.block"

  start_storage "storage1-$db" || bail "data-storage restarts after SIGKILL"
  check "the late batch sent again: 200" test "$(post "$TEST_TMP/late.json")" = 200
  rows 5minute >"$TEST_TMP/c5.json"
  rows hour >"$TEST_TMP/ch.json"
  check "every 5-minute and hourly row equals the independent computation (1e-9): none missing, none counted twice" \
    $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/c5.json" "$TEST_TMP/ch.json"
  check "sent a third time: 200" test "$(post "$TEST_TMP/late.json")" = 200
  rows hour >"$TEST_TMP/ch2.json"
  check "... and the hourly rows are the same" cmp -s "$TEST_TMP/ch.json" "$TEST_TMP/ch2.json"
  check "stop: exit 0" stop_pid "$SPID"
}
scenario homeiq_kill hour 5minute
scenario homeiq_kill_h 5minute hour   # only since the two writes go out together (issue 15)

# ---- hours without states (docs/STATISTICS.md "Hours without states") --------------------------------------
# Two entities silent for over two hours; the batch with their first states after the silence writes the
# 5-minute rows that fill the silent hours (the value held) and the hourly rows of every hour it crossed. Its
# hourly write is refused (503) while its 5-minute write lands, and storage is SIGKILLed. The recomputation
# after the start (the batch sent again on the ack path; the recovery from the mark with the flush) finds the
# silent hours' 5-minute rows stored and starts after them: the hours must still be merged again, from the
# one of the latest hourly row before the batch (itself stale) on.
$SERIES silent "$T0" "$TEST_TMP" || bail "generate the silent series"
SENTS=sensor.silent,sensor.silent_meter
srows() { influx_stats_settled "$U" >&2; curl -s "$U/api/v1/statistics?entity_id=$SENTS&period=$1&start=$START"; }
# gap_scenario DB FLUSH_MS
gap_scenario() {
  local db=$1 fms=$2
  export INFLUXDB_DATABASE=$db INFLUXDB_STATISTICS_FLUSH_MS=$fms
  echo "# $db (INFLUXDB_STATISTICS_FLUSH_MS=$fms): the silent hours' hourly write refused, then SIGKILL"
  start_storage "storage0-$db" || bail "data-storage (through the proxy) starts"
  check "50 minutes of both entities posted" post_batches "$TEST_TMP/before.json" 25
  srows hour >"$TEST_TMP/g0.json"
  check "... one hourly row each so far" jqe 'map(length) == [1, 1]' "$TEST_TMP/g0.json"
  printf 'period=hour' >"$CUT.block"   # every hourly write refused (503), the 5-minute ones land
  if [ "$fms" = 0 ]; then
    check "the first states after the silence: not acknowledged (the hourly write refused)" \
      test "$(post <(jq -c '{events: .}' "$TEST_TMP/cross.json"))" != 200
  else
    check "the first states after the silence: acknowledged (their rows queued for the flush)" \
      test "$(post <(jq -c '{events: .}' "$TEST_TMP/cross.json"))" = 200
    flush_failed() { curl -s "$U/health" | jq -e '.backend.statistics.flush.failures > 0' >/dev/null; }
    check "... the flush's hourly write failed" wait_for 60 flush_failed
  fi
  five_landed() { curl -s "$U/api/v1/statistics?entity_id=sensor.silent&period=5minute&start=$START" |
    jq -e --argjson t $(( (T0 + 2 * 3600) * 1000 )) '[.["sensor.silent"][] | select(.start >= $t)] | length > 0' >/dev/null; }
  check "... while the 5-minute rows of the silent hours landed" wait_for 60 five_landed
  kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
  rm -f "$CUT.block"
  start_storage "storage1-$db" || bail "data-storage restarts after SIGKILL"
  if [ "$fms" = 0 ]; then
    check "the batch sent again: 200" test "$(post <(jq -c '{events: .}' "$TEST_TMP/cross.json"))" = 200
  fi
  check "the next 20 minutes posted" post_batches "$TEST_TMP/after.json" 25
  srows 5minute >"$TEST_TMP/g5.json"
  srows hour >"$TEST_TMP/gh.json"
  check "every 5-minute and hourly row equals the independent computation (1e-9): the silent hours have theirs" \
    $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/g5.json" "$TEST_TMP/gh.json"
  check "stop: exit 0" stop_pid "$SPID"
  unset INFLUXDB_STATISTICS_FLUSH_MS
}
gap_scenario homeiq_gap_ack 0
gap_scenario homeiq_gap_flush 200

# ---- a partly written flush (review of session 9, finding 1) ----------------------------------------------
# The flush writes in chunks (1 KiB here); a failed chunk ends it, and what no chunk wrote is queued again. The
# gap-crossing batch's hourly chunk fails while a live batch of the last silent hour, acknowledged meanwhile,
# replaces that hour's row; the next flush stores some hourly chunks and fails at the mark's; SIGKILL. Were the
# hour-3 row stored before the hour-1 and hour-2 rows (queued again behind it), the recovery -- which merges the
# hours again from the latest hourly row before the batch -- would never write hours 1 and 2.
hourly_stored() {   # the hourly rows of the silent entities stored in InfluxDB after their first hour
  curl -s "$INFLUXDB_URL/query" --data-urlencode "db=$INFLUXDB_DATABASE" --data-urlencode \
    "q=SELECT count(\"count\") FROM \"homeiq_stats_hour\".\"homeiq_statistics\" WHERE period='hour' AND time > $((T0 * 1000000000))" |
    jq '.results[0].series[0].values[0][1] // 0'
}
export INFLUXDB_DATABASE=homeiq_partial INFLUXDB_STATISTICS_FLUSH_MS=200 INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES=1024
echo "# $INFLUXDB_DATABASE: a flush in 1 KiB chunks stores some hourly chunks, then fails; SIGKILL"
start_storage storage0-partial || bail "data-storage (through the proxy) starts"
check "50 minutes of both entities posted" post_batches "$TEST_TMP/before.json" 25
srows hour >/dev/null
jq -c '.[0:2]' "$TEST_TMP/after.json" >"$TEST_TMP/after1.json"
jq -c '.[2:]' "$TEST_TMP/after.json" >"$TEST_TMP/after2.json"
: >"$CUT.log"
printf 'period=hour' >"$CUT.hold"   # the flush's first hourly chunk waits
check "the first states after the silence: acknowledged" \
  test "$(post <(jq -c '{events: .}' "$TEST_TMP/cross.json"))" = 200
held() { grep -q held "$CUT.log"; }
check "... the flush's first hourly chunk held" wait_for 30 held
check "the next states (the last silent hour) acknowledged while that flush is in flight" \
  test "$(post <(jq -c '{events: .}' "$TEST_TMP/after1.json"))" = 200
printf 'period=hour' >"$CUT.block"; rm -f "$CUT.hold"
fails() { curl -s "$U/health" | jq '.backend.statistics.flush.failures'; }
failed() { [ "$(fails)" -ge 1 ]; }
check "... that flush failed" wait_for 30 failed
printf 'homeiq_statistics_written' >"$CUT.block"   # now only the chunk with the mark refused
F=$(fails)
failed_twice_more() { [ "$(fails)" -ge $((F + 2)) ]; }   # the second started after the block changed
check "the next flushes failed at the mark's chunk" wait_for 30 failed_twice_more
H=$(hourly_stored)
check "... after storing some hourly chunks ($H of the 6 rows after the first hour)" test "$H" -gt 0 -a "$H" -lt 6
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
rm -f "$CUT.block"
unset INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES
start_storage storage1-partial || bail "data-storage restarts after SIGKILL"
check "the rest posted" post_batches "$TEST_TMP/after2.json" 25
srows 5minute >"$TEST_TMP/p5.json"
srows hour >"$TEST_TMP/ph.json"
check "every 5-minute and hourly row equals the independent computation (1e-9): every silent hour has its row" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/p5.json" "$TEST_TMP/ph.json"
check "stop: exit 0" stop_pid "$SPID"
unset INFLUXDB_STATISTICS_FLUSH_MS
finish

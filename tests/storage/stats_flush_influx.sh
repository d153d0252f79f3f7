#!/usr/bin/env bash
# stats_flush_influx.sh -- InfluxDB statistics written off the ack path
# (INFLUXDB_STATISTICS_FLUSH_MS, stats_influx_flush.h): the rows of
# acknowledged batches are never lost, on a real influxd.
#
# Why: a batch is acknowledged before its statistics rows are stored; they are
# written, coalesced, by the next flush. Two ways to lose them, both here:
#  1. data-storage SIGKILLed after the acks and before a flush
#     (INFLUXDB_STATISTICS_FLUSH_MS=600000: no flush comes): after the restart
#     the recovery (stats_influx_recover.h) recomputes the entities with feed
#     entries after the mark, and every row equals the independent computation
#     (stats_series.py) -- as an uninterrupted run's do (stats_suite.sh).
#  2. a flush failing (a proxy answers 503 to every statistics write while the
#     events' writes go through): every batch is still acknowledged, the rows
#     are kept and written once InfluxDB takes them; again every row equals the
#     computation.
#  3. a late state and the next live one far apart (50 minutes of stored states
#     between them) acknowledged before a SIGKILL: the recovery recomputes
#     them as two runs, no /query answer holds the states between (a proxy
#     logs each answer's size), and every row equals the computation.
# No timed assertion: wait_for until the rows are written (/health
# unwritten_rows) or the recovery is done.
#
# Use: stats_flush_influx.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: stats_flush_influx.sh /path/to/homeiq-data-storage}
export MAX_BODY_BYTES=16777216
echo "# statistics off the ack path (InfluxDB): SIGKILL before a flush, a failing flush"
. "$here/stats_influx_lib.sh"   # influxd, the proxy; start_storage, post, post_batches, jqe, health, series_live
rows_now() { curl -s "$U/api/v1/statistics?entity_id=$ENTS&period=$1&start=$START" >"$2"; }   # no wait
rows() { influx_stats_settled "$U" 120 || return 1; rows_now "$@"; }

series_live   # first.json, rest.json: in time order, each entity's first state apart

# ---- 1. SIGKILL after the acks, before a flush ---------------------------------------
export INFLUXDB_DATABASE=homeiq_flush_kill
start_storage storage_k0 INFLUXDB_STATISTICS_FLUSH_MS=600000 || bail "data-storage (no flush for 10 min) starts"
check "each entity's first state posted (written before the ack)" post_batches "$TEST_TMP/first.json"
check "the rest posted in time order in batches of 7: every one acknowledged" post_batches "$TEST_TMP/rest.json"
check "their rows are queued, not written (/health unwritten_rows > 0, no flush yet)" \
  jqe '.backend.statistics | .unwritten_rows > 0 and .flush.flushes == 0 and .fast_updates > 0' <(health)
rows_now 5minute "$TEST_TMP/k5.json"; rows_now hour "$TEST_TMP/kh.json"
check "... so InfluxDB's rows do not equal the computation yet" \
  bash -c "! $SERIES check '$TEST_TMP/expected.json' '$TEST_TMP/k5.json' '$TEST_TMP/kh.json' >/dev/null 2>&1"
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
start_storage storage_k1 INFLUXDB_STATISTICS_FLUSH_MS=1000 || bail "data-storage restarts after the SIGKILL"
recovered() { health | jq -e '.backend.statistics.recovery.done == true' >/dev/null; }
check "after the restart the recovery runs (no batch needed: the catch-up's first step)" wait_for 60 recovered
check "... it recomputed the entities with feed entries after the mark" \
  jqe '.backend.statistics.recovery | .entities >= 5 and .failures == 0' <(health)
rows 5minute "$TEST_TMP/r5.json"; rows hour "$TEST_TMP/rh.json"
check "every 5-minute and hourly row equals the independent computation (1e-9): nothing acknowledged was lost" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/r5.json" "$TEST_TMP/rh.json"
check "the mark moved past them: InfluxDB holds homeiq_statistics_written" \
  bash -c "curl -s -G '$INFLUXDB_URL/query' --data-urlencode db=homeiq_flush_kill \
    --data-urlencode 'q=SELECT \"seq\" FROM homeiq_stats_hour.homeiq_statistics_written' | jq -e '.results[0].series[0].values[0][1] > 0' >/dev/null"
check "stop: exit 0" stop_pid "$SPID"
start_storage storage_k2 INFLUXDB_STATISTICS_FLUSH_MS=1000 || bail "data-storage starts again"
check "a clean restart: the recovery finds nothing to recompute" wait_for 60 recovered
check "... (0 entities)" jqe '.backend.statistics.recovery.entities == 0' <(health)
check "stop: exit 0" stop_pid "$SPID"
mark() { curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=homeiq_flush_kill \
  --data-urlencode 'q=SELECT "seq" FROM homeiq_stats_hour.homeiq_statistics_written' | jq '.results[0].series[0].values[0][1]'; }
start_storage storage_k3 INFLUXDB_STATISTICS_FLUSH_MS=0 || bail "data-storage with the flush off starts"
check "with the flush off (rows before each ack) the recovery still runs once" wait_for 60 recovered
check_eq "... and sets the mark to 0: a later start with the flush finds none and recomputes nothing" 0 "$(mark)"
check "... /health has no flush" jqe '.backend.statistics | has("flush") | not' <(health)
check "stop: exit 0" stop_pid "$SPID"

# ---- 2. a failing flush: the rows are kept and written later ------------------------
export INFLUXDB_DATABASE=homeiq_flush_fail
start_storage storage_f INFLUXDB_STATISTICS_FLUSH_MS=200 || bail "data-storage (flush every 200 ms) starts"
check "each entity's first state posted" post_batches "$TEST_TMP/first.json"
check "... its rows written" influx_stats_settled "$U" 60
printf 'homeiq_statistics' >"$CUT.block"   # every statistics write refused (503); the events' writes go through
check "the rest posted while every statistics write fails: every batch acknowledged" post_batches "$TEST_TMP/rest.json"
failed() { health | jq -e '.backend.statistics | .flush.failures > 0 and .unwritten_rows > 0' >/dev/null; }
check "the flush failed and its rows are kept (/health flush.failures > 0, unwritten_rows > 0)" wait_for 60 failed
check "... and said why" jqe '.backend.statistics.flush.last_error | test("503")' <(health)
rm -f "$CUT.block"
rows 5minute "$TEST_TMP/f5.json"; rows hour "$TEST_TMP/fh.json"
check "once InfluxDB takes them, every row equals the independent computation (1e-9): nothing lost" \
  $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/f5.json" "$TEST_TMP/fh.json"
check "stop: exit 0" stop_pid "$SPID"

# ---- 3. the recovery of a late and a live state far apart: runs, not one span ------------------------
# 50 minutes of a sensor with a state every second, its rows written (the mark past them); then, with no flush
# for 10 minutes, a late state of its second minute and the next live one, acknowledged; SIGKILL. The recovery
# must recompute the two as two runs: neither reads the ~2,900 stored states between them (~2 MB in one answer
# before), and the state after the late one is found a page at a time (a late batch read up to 10,000 states).
export INFLUXDB_DATABASE=homeiq_flush_runs
mkdir -p "$TEST_TMP/busy"
$SERIES busy "$T0" "$TEST_TMP/busy" 3000 || bail "generate the busy series"
start_storage storage_r0 INFLUXDB_STATISTICS_FLUSH_MS=200 || bail "data-storage (flush every 200 ms) starts"
check "3,000 states of sensor.busy posted (a state a second)" post_batches "$TEST_TMP/busy/live.json" 100
check "... their rows written" influx_stats_settled "$U" 60
check "stop: exit 0" stop_pid "$SPID"
start_storage storage_r1 INFLUXDB_STATISTICS_FLUSH_MS=600000 || bail "data-storage (no flush for 10 min) starts"
jq -c '.events[0] |= (.entity_id = "sensor.busy_other" | .object_id = "busy_other" | .context_id = "ctx-other")' \
  "$TEST_TMP/busy/late.json" >"$TEST_TMP/busy/other.json"
check "another entity's state first (the recovery after the start runs with it and moves the mark past it)" \
  test "$(post "$TEST_TMP/busy/other.json")" = 200
check "a state of its second minute, late: acknowledged" test "$(post "$TEST_TMP/busy/late.json")" = 200
check "the next live state: acknowledged (its rows queued)" test "$(post "$TEST_TMP/busy/last.json")" = 200
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null; _forget_pid "$SPID"
: >"$CUT.qlog"   # the proxy logs every /query with its answer's size from now on
start_storage storage_r2 INFLUXDB_STATISTICS_FLUSH_MS=1000 || bail "data-storage restarts after the SIGKILL"
check "the recovery runs" wait_for 60 recovered
mv "$CUT.qlog" "$TEST_TMP/recovery.qlog"
echo "# recovery: $(health | jq -c .backend.statistics.recovery)"
check "... the late and the live state of sensor.busy as two runs (/health recovery.spans, requests >= 2)" \
  jqe '.backend.statistics.recovery | .spans >= 2 and .requests >= 2 and .failures == 0' <(health)
BIG=$(awk '$1 > m {m = $1} END {print m + 0}' "$TEST_TMP/recovery.qlog")
echo "# the recovery's largest /query answer: $BIG bytes ($(wc -l <"$TEST_TMP/recovery.qlog") queries)"
check "... and no answer of the recovery holds the stored states between them (all < 1 MB)" test "$BIG" -lt 1000000
busy_rows() { influx_stats_settled "$U" 120 || return 1
  curl -s "$U/api/v1/statistics?entity_id=sensor.busy&period=$1&start=$START" >"$2"; }
busy_rows 5minute "$TEST_TMP/b5.json"; busy_rows hour "$TEST_TMP/bh.json"
check "every 5-minute and hourly row equals the independent computation (1e-9)" \
  $SERIES check "$TEST_TMP/busy/expected.json" "$TEST_TMP/b5.json" "$TEST_TMP/bh.json"
check "stop: exit 0" stop_pid "$SPID"
finish

#!/usr/bin/env bash
# stats_bounds_influx.sh -- the InfluxDB statistics flush (INFLUXDB_STATISTICS_FLUSH_MS,
# stats_influx_flush.h) stays bounded, on a real influxd: a backlog is written
# in chunks, the queue has a bound, a clean stop flushes.
#
# Why: with the flush, the rows of acknowledged batches wait in memory. After a
# long outage of the statistics writes alone, (1) one flush request holding the
# whole backlog can exceed influxd's max-body-size (413) and never succeed; (2)
# the queue grows without bound; (3) a SIGTERM left everything queued for the
# next start to recompute. So, against an influxd whose max-body-size is 64 KiB:
#  1. every statistics write refused (503 by a proxy) while the series is posted
#     (all acknowledged), then let through: the backlog (> 64 KiB) is written in
#     chunks of INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES and every row equals the
#     independent computation (stats_series.py);
#  2. INFLUXDB_STATISTICS_MAX_PENDING_ROWS=60: with the statistics writes
#     refused, batches answer 503 once 60 rows wait (/health backpressure), the
#     queue stays near the bound; let through, the refused batches sent again
#     are acknowledged and every row equals the computation;
#  3. no flush for 10 minutes, the series posted, SIGTERM: the stop writes the
#     queue and the mark, so the next start recomputes nothing, and every row
#     equals the computation.
#  4. while the stop's flush runs (held by the proxy), a batch posted is not
#     acknowledged: the listener is closed (httpd_stop).
# No timed assertion: wait_for until the rows are written or the flush failed.
#
# Use: stats_bounds_influx.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"

BIN=${1:?usage: stats_bounds_influx.sh /path/to/homeiq-data-storage}
echo "# statistics flush bounds (InfluxDB): chunks under max-body-size, backpressure, a flush at SIGTERM"
INFLUXD_MAX_BODY_SIZE=65536
. "$here/stats_influx_lib.sh"   # influxd, the proxy; start_storage, post, post_batches, jqe, health, series_live
rows() { influx_stats_settled "$U" 120 || return 1; curl -s "$U/api/v1/statistics?entity_id=$ENTS&period=$1&start=$START" >"$2"; }
same_rows() { # same_rows TAG : every row equals the independent computation
  rows 5minute "$TEST_TMP/$1-5.json" && rows hour "$TEST_TMP/$1-h.json" &&
    $SERIES check "$TEST_TMP/expected.json" "$TEST_TMP/$1-5.json" "$TEST_TMP/$1-h.json"
}
flush_failed() { health | jq -e '.backend.statistics.flush.failures > 0' >/dev/null; }

series_live   # first.json, rest.json: in time order, each entity's first state apart

# ---- 1. a backlog larger than influxd's max-body-size: written in chunks ------------------------
export INFLUXDB_DATABASE=homeiq_bounds_chunk
start_storage storage_c INFLUXDB_STATISTICS_FLUSH_MS=200 INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES=16384 ||
  bail "data-storage (flush every 200 ms, chunks of 16 KiB) starts"
check "each entity's first state posted" post_batches "$TEST_TMP/first.json"
check "... its rows written" influx_stats_settled "$U" 60
printf 'homeiq_statistics' >"$CUT.block"   # every statistics write refused (503); the events' writes go through
check "the rest posted while every statistics write fails: every batch acknowledged" post_batches "$TEST_TMP/rest.json"
check "the flush failed and keeps its rows" wait_for 60 flush_failed
check "... more of them than one 64 KiB request holds (> 300 rows of ~250 bytes)" \
  jqe '.backend.statistics.unwritten_rows > 300' <(health)
REQ0=$(health | jq '.backend.statistics.flush.requests')
rm -f "$CUT.block"
check "once InfluxDB takes them, every row equals the independent computation (1e-9): nothing lost" same_rows c
check "... written in several requests of at most 16 KiB (influxd refuses a body above 64 KiB)" \
  jqe --argjson r0 "$REQ0" '.backend.statistics.flush | .requests >= $r0 + 6 and .chunk_bytes == 16384' <(health)
check "stop: exit 0" stop_pid "$SPID"

# ---- 2. backpressure: a bound on the rows waiting ---------------------------------------------
export INFLUXDB_DATABASE=homeiq_bounds_pressure
start_storage storage_p INFLUXDB_STATISTICS_FLUSH_MS=200 INFLUXDB_STATISTICS_MAX_PENDING_ROWS=60 ||
  bail "data-storage (at most 60 rows waiting) starts"
check "each entity's first state posted" post_batches "$TEST_TMP/first.json"
check "... its rows written" influx_stats_settled "$U" 60
printf 'homeiq_statistics' >"$CUT.block"
post_batches "$TEST_TMP/rest.json" || true
echo "# with every statistics write refused: $OK batches acknowledged, $REFUSED answered otherwise"
check "once 60 rows wait, batches are not acknowledged (503: the flush they wait for fails)" test "$REFUSED" -gt 0
check "... some were, before the bound" test "$OK" -gt 0
check "... /health counts it (flush.backpressure > 0, max_pending_rows 60)" \
  jqe '.backend.statistics.flush | .backpressure > 0 and .max_pending_rows == 60' <(health)
check "... and the rows waiting stay near the bound (<= 60 + one batch's)" \
  jqe '.backend.statistics.unwritten_rows <= 100' <(health)
check "... the answer says why" grep -q 'flush' "$TEST_TMP/resp"
rm -f "$CUT.block"
check "the series sent again once InfluxDB takes the rows: every batch acknowledged" post_batches "$TEST_TMP/rest.json"
check "every row equals the independent computation (1e-9)" same_rows p
check "stop: exit 0" stop_pid "$SPID"

# ---- 3. a clean stop writes the queue --------------------------------------------------------
export INFLUXDB_DATABASE=homeiq_bounds_stop
start_storage storage_s0 INFLUXDB_STATISTICS_FLUSH_MS=600000 INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES=16384 || bail "data-storage (no flush for 10 min) starts"
post_all() { post_batches "$TEST_TMP/first.json" && post_batches "$TEST_TMP/rest.json"; }
check "the series posted in time order: every batch acknowledged" post_all
check "... its rows queued, not written" jqe '.backend.statistics | .unwritten_rows > 0 and .flush.flushes == 0' <(health)
check "SIGTERM: exit 0" stop_pid "$SPID"
check "... the stop wrote them (logged)" grep -q 'rows written at the stop' "$TEST_TMP/storage_s0.log"
start_storage storage_s1 INFLUXDB_STATISTICS_FLUSH_MS=1000 INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES=16384 || bail "data-storage starts again"
recovered() { health | jq -e '.backend.statistics.recovery.done == true' >/dev/null; }
check "the recovery runs" wait_for 60 recovered
check "... and finds nothing to recompute (the mark moved at the stop)" \
  jqe '.backend.statistics.recovery | .entities == 0 and .failures == 0' <(health)
check "every row equals the independent computation (1e-9)" same_rows s
check "stop: exit 0" stop_pid "$SPID"

# ---- 4. no batch is taken during the stop's flush ----------------------------------------------
# The stop's flush runs the loop for up to INFLUXDB_STATISTICS_STOP_FLUSH_MS; a batch acknowledged then would be
# one the service is about to leave behind (before: 200 for a post 1 s after SIGTERM, up to 5 s).
export INFLUXDB_DATABASE=homeiq_bounds_stop2
start_storage storage_t0 INFLUXDB_STATISTICS_FLUSH_MS=600000 INFLUXDB_STATISTICS_STOP_FLUSH_MS=30000 || bail "data-storage (no flush for 10 min) starts"
check "the first part posted: acknowledged, rows queued" post_batches "$TEST_TMP/first.json"
: >"$CUT.log"
printf 'homeiq_statistics' >"$CUT.hold"   # the stop's flush waits in the proxy
kill -TERM "$SPID"
held() { grep -q held "$CUT.log"; }
check "SIGTERM: the stop's flush under way (held)" wait_for 30 held
jq -c '{events: .[0:7]}' "$TEST_TMP/rest.json" >"$TEST_TMP/late_post.json"
code=$(post "$TEST_TMP/late_post.json")
check "a batch posted meanwhile is not acknowledged (got $code)" test "$code" != 200
rm -f "$CUT.hold"
wait "$SPID"; rc=$?; _forget_pid "$SPID"
check "exit 0 once the flush is let through" test "$rc" = 0
check "... the stop wrote the queue (logged)" grep -q 'rows written at the stop' "$TEST_TMP/storage_t0.log"
finish

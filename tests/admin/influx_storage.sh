# tests/admin/influx_storage.sh -- sourced by the tests of one data-storage on a real influxd reached through
# influx_cut_proxy.py (test_influx_summary.sh, test_influx_restore.sh, test_influx_feed.sh,
# test_influx_feed_faults.sh): starts influxd and the proxy, and defines the requests all of them make.
#
# Why: the four tests began as copies of one another's setup (sessions 8-9); one copy means a fix to how
# data-storage is started, or to a request, reaches every one of them.
#
# Needs common.sh sourced and BIN (homeiq-data-storage) set; the test exports its own variables for
# data-storage (STORAGE_BACKEND=influxdb and LOG_LEVEL=warn are set here). Bails when influxd or the proxy
# does not start. Sets REAL (influxd itself, for the test's own queries), CUT (the proxy's control files) and
# PORT, U (data-storage's port and URL). The database is $DB, read at each call: a test moves on to another
# database by setting DB, and each database has its own data dir ($TEST_TMP/data-$DB).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/influxd.sh"
export STORAGE_BACKEND=influxdb LOG_LEVEL=warn INFLUXDB_PING_INTERVAL_MS=200
influxd_start || bail "influxd starts"
REAL=$INFLUXDB_URL
influxd_cut_proxy_start || bail "the proxy starts"
PORT=$(free_port) U=http://127.0.0.1:$PORT

get() { curl -s "$U$1"; }
# post BODY [HOME] : the HTTP status of POST /api/v1/events (X-HomeIQ-Home: HOME); the answer in $TEST_TMP/post.json
post() {
  local h=(); [ -n "${2:-}" ] && h=(-H "X-HomeIQ-Home: $2")
  curl -s -o "$TEST_TMP/post.json" -w '%{http_code}' -H 'Content-Type: application/json' "${h[@]}" \
    --data-binary @- "$U/api/v1/events" <<<"$1"
}
# iql QUERY : InfluxQL on $DB, asked of influxd itself (not through the proxy), times in ns
iql() { curl -s -G "$REAL/query" --data-urlencode "db=$DB" --data-urlencode "epoch=ns" --data-urlencode "q=$1"; }
# start_storage : data-storage on $DB through the proxy (as PID_storage and STORAGE_PID); 0 once /health is 200
start_storage() {
  INFLUXDB_DATABASE=$DB DATA_DIR=$TEST_TMP/data-$DB INFLUXDB_URL=$PROXY_URL DATA_STORAGE_PORT=$PORT \
    start_bg storage "$BIN"
  STORAGE_PID=$LAST_PID
  wait_healthy "$U/health" 30
}

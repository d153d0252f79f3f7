# tests/storage/data/fixture_lib.sh -- sourced by the fixture makers (make_events_v5.sh, v6, v9, v10): a
# data-storage binary of an older main on a fresh data dir, the requests that fill it, and its events.db
# copied out once it stopped cleanly.
#
# Why: each maker began as a copy of the one before (sessions 8-9); one copy of the start, the post and the
# clean stop means a new fixture is made the same way as the ones the migration tests already trust.
#
# Use: . fixture_lib.sh DATA_STORAGE_BIN OUT.db (a maker's own arguments: sets BIN and OUT, starts BIN);
# then post ...; fixture_finish "$OUT"
set -eu
. "$(dirname "${BASH_SOURCE[0]}")/../../lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a maker, not a test: it ends without finish
BIN=${1:?usage: make_events_vN.sh DATA_STORAGE_BIN OUT.db} OUT=${2:?usage: make_events_vN.sh DATA_STORAGE_BIN OUT.db}

# fixture_start : $BIN on a free port (PORT) with a fresh data dir; returns once /health is 200
fixture_start() {
  PORT=$(free_port)
  DATA_DIR=$TEST_TMP/d DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
  FIXTURE_PID=$LAST_PID
  wait_healthy "http://127.0.0.1:$PORT/health" 30
}
# post CURL_ARGS... : POST /api/v1/events (JSON) with those curl arguments (the body, a header); prints the answer
post() { curl -s -XPOST "http://127.0.0.1:$PORT/api/v1/events" -H 'Content-Type: application/json' "$@"; echo; }
# ctx AREA FLOOR DEVICE LABEL : the registry context fields of a record (to append to its JSON object)
ctx() {
  printf ',"area_id":"%s","area":"A","floor_id":"%s","floor":"F","device_id":"%s","device":"D","manufacturer":"M","model":"X","labels":["%s"],"platform":"zha","entity_category":null' "$@"; }
# fixture_finish OUT : stops data-storage cleanly, copies its events.db to OUT and prints its schema version and
# counts (events, and event_labels where the schema has them)
fixture_finish() {
  stop_pid "$FIXTURE_PID"
  cp "$TEST_TMP/d/events.db" "$1"
  if [ "$(sqlite3 "$1" "SELECT count(*) FROM sqlite_master WHERE name = 'event_labels'")" = 1 ]; then
    sqlite3 "$1" 'PRAGMA user_version; SELECT count(*) FROM events; SELECT count(*) FROM event_labels'
  else
    sqlite3 "$1" 'PRAGMA user_version; SELECT count(*) FROM events'
  fi
}

fixture_start

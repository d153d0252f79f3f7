# tests/storage/stats_influx_lib.sh -- sourced by the statistics tests on a real influxd behind
# tests/admin/influx_cut_proxy.py (stats_flush_influx.sh, stats_bounds_influx.sh, stats_kill_influx.sh):
# starts influxd and the proxy, and defines how they start data-storage, post the known-answer series
# (stats_series.py) and read /health.
#
# Why: the three tests began as copies of one another's setup (sessions 8-9); one copy means a fix to a
# start, a batch or the series' split reaches every one of them.
#
# Needs common.sh sourced and BIN (homeiq-data-storage) set. INFLUXD_MAX_BODY_SIZE as for influxd_start.
# Bails when influxd or the proxy does not start. Sets SERIES (stats_series.py), CUT and PROXY_URL
# (influxd_cut_proxy_start); data-storage's database is the exported INFLUXDB_DATABASE or a VAR=VALUE given
# to start_storage.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/influxd.sh"
SERIES="python3 $(dirname "${BASH_SOURCE[0]}")/stats_series.py"
export STORAGE_BACKEND=influxdb LOG_LEVEL=${LOG_LEVEL:-info} INFLUXDB_PING_INTERVAL_MS=200
influxd_start || bail "influxd${INFLUXD_MAX_BODY_SIZE:+ (max-body-size $INFLUXD_MAX_BODY_SIZE)} starts"
influxd_cut_proxy_start || bail "the proxy starts"

# start_storage NAME [VAR=VALUE...] : data-storage through the proxy on a free port, with those variables
# (log $TEST_TMP/NAME.log); sets PORT, U, SPID; 0 once /health is 200 (fails at once if it exits)
start_storage() {
  local name=$1; shift
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_STORAGE_PORT=$PORT INFLUXDB_URL=$PROXY_URL "$@" "$BIN"
  SPID=$LAST_PID
  wait_healthy "$U/health" 30 "$SPID"
}
# post FILE : the HTTP status of POST /api/v1/events with FILE as the body; the answer in $TEST_TMP/resp
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$1"; }
# post_batches FILE [SIZE] : the records of FILE (a JSON array) in batches of SIZE (7, the steady load's); counts
# the answers in OK (200) and REFUSED (any other, the last one's answer said); 0 when every one was 200
post_batches() {
  local n i size=${2:-7} last=""; n=$(jq length "$1"); OK=0; REFUSED=0
  for ((i = 0; i < n; i += size)); do
    jq -c --argjson i $i --argjson s "$size" '{events: .[$i:$i+$s]}' "$1" >"$TEST_TMP/b.json"
    if [ "$(post "$TEST_TMP/b.json")" = 200 ]; then OK=$((OK + 1)); else REFUSED=$((REFUSED + 1)) last=$(cat "$TEST_TMP/resp"); fi
  done
  [ "$REFUSED" = 0 ] || echo "# $REFUSED of $((OK + REFUSED)) batches of $1 not acknowledged; the last: $last"
  [ "$REFUSED" = 0 ]
}
jqe() { jq -e "$@" >/dev/null; }
health() { curl -s "$U/health"; }

# series_gen KIND : stats_series.py KIND over the six hours before this one into TEST_TMP; sets T0 (their start)
# and START (an hour before T0: the statistics read's start)
series_gen() {
  T0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))
  $SERIES "$1" "$T0" "$TEST_TMP" || bail "generate the series ($1)"
  START=$(date -u -d "@$((T0 - 3600))" +%Y-%m-%dT%H:%M:%SZ)
}
# series_live : series_gen gen, then its records in time order (the live case) with each entity's first state
# apart, first.json and rest.json (an entity's first batch after a start takes the slow path: its rows are
# written before its ack; every later one the running state); sets ENTS (the series' entities)
series_live() {
  series_gen gen
  ENTS=$(jq -r 'keys | join(",")' "$TEST_TMP/expected.json")
  jq -c 'sort_by(.time_fired)' "$TEST_TMP/records.json" >"$TEST_TMP/sorted.json"
  jq -c '[group_by(.entity_id)[] | .[0]] | sort_by(.time_fired)' "$TEST_TMP/sorted.json" >"$TEST_TMP/first.json"
  jq -c --slurpfile f "$TEST_TMP/first.json" '[.[] | select(. as $r | $f[0] | index($r) | not)]' \
    "$TEST_TMP/sorted.json" >"$TEST_TMP/rest.json"
}

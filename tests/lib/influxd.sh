# tests/lib/influxd.sh -- start and stop a real, throw-away influxd (Debian's
# `influxdb` package, 1.x) for integration tests.
#
# Why: the storage and pipeline tests must talk to a real InfluxDB, never a
# mock, but must not touch the machine's own instance (no systemd here either).
# So each test gets its own influxd with a temporary config: data, meta and WAL
# under a temp dir, HTTP and RPC bound to free loopback ports, no reporting,
# quiet logs.
#
# Use (after sourcing common.sh):
#   . "$(dirname "$0")/../lib/influxd.sh"
#   influxd_start || exit 1      # exports INFLUXDB_URL, INFLUXD_PID, INFLUXD_DIR
#   ...
#   influxd_stop                 # also done by common.sh's cleanup (PID in TEST_PIDS)
#
# INFLUXD_KEEP_DIR=dir uses dir (data, meta, WAL, config) instead of a temp
# dir, and keeps it: a benchmark's store generated once (bench/page_ready.sh).
#
# INFLUXD_MAX_BODY_SIZE=N: influxd's [http] max-body-size (default 25000000,
# influxd's own): a larger write is refused with 413 (stats_bounds_influx.sh).
#
# INFLUXD_AUTH_ENABLED=true starts it with authentication on (create the first
# admin user through /query, as on a real install).
#
# influxd_start FAILS (does not skip) when /usr/bin/influxd is missing: the
# project's scripts/install-deps installs it. INFLUXD_BIN overrides the path.
#
# influxd_cut_proxy_start puts tests/admin/influx_cut_proxy.py in front of it,
# for a test that must lose, hold or refuse InfluxDB's answers.

_INFLUXD_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_influxd_free_port() {
  if declare -F free_port >/dev/null; then free_port; return; fi
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
}

# influxd_start [SECONDS] : starts influxd, waits until /ping answers 204.
influxd_start() {
  local t=${1:-30} bin=${INFLUXD_BIN:-/usr/bin/influxd}
  if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not found; install the Debian 'influxdb' package (scripts/install-deps)" >&2
    return 1
  fi
  local base=${TEST_TMP:-$(mktemp -d /tmp/homeiq-influxd.XXXXXX)}
  if [ -n "${INFLUXD_KEEP_DIR:-}" ]; then # a kept data dir (a bench's store, reused across runs)
    INFLUXD_DIR=$INFLUXD_KEEP_DIR; mkdir -p "$INFLUXD_DIR" || return 1
  else
    INFLUXD_DIR=$(mktemp -d "$base/influxd.XXXXXX")
  fi
  local http_port rpc_port
  http_port=$(_influxd_free_port)
  rpc_port=$(_influxd_free_port)
  while [ "$rpc_port" = "$http_port" ]; do rpc_port=$(_influxd_free_port); done
  cat >"$INFLUXD_DIR/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"

[meta]
  dir = "$INFLUXD_DIR/meta"
  logging-enabled = false

[data]
  dir = "$INFLUXD_DIR/data"
  wal-dir = "$INFLUXD_DIR/wal"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:$http_port"
  auth-enabled = ${INFLUXD_AUTH_ENABLED:-false}
  max-body-size = ${INFLUXD_MAX_BODY_SIZE:-25000000}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false
EOF
  local log=${TEST_TMP:-$INFLUXD_DIR}/influxd.$http_port.log
  "$bin" -config "$INFLUXD_DIR/influxdb.conf" >"$log" 2>&1 &
  INFLUXD_PID=$!
  if declare -p TEST_PIDS >/dev/null 2>&1; then TEST_PIDS+=("$INFLUXD_PID"); fi
  export INFLUXDB_URL="http://127.0.0.1:$http_port" INFLUXD_PID INFLUXD_DIR
  local i=0
  while (( i < t * 10 )); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$INFLUXDB_URL/ping")" = 204 ]; then return 0; fi
    if ! kill -0 "$INFLUXD_PID" 2>/dev/null; then break; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "FAIL: influxd did not answer /ping on $INFLUXDB_URL; log:" >&2
  cat "$log" >&2
  influxd_stop
  return 1
}

# influxd_stop : SIGTERM, wait for exit (kill -9 after 10 s). Data dir stays
# (under TEST_TMP, removed by common.sh) so influxd_restart can reuse it.
influxd_stop() {
  [ -n "${INFLUXD_PID:-}" ] || return 0
  kill -TERM "$INFLUXD_PID" 2>/dev/null || true
  local i=0
  while kill -0 "$INFLUXD_PID" 2>/dev/null && (( i < 100 )); do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$INFLUXD_PID" 2>/dev/null || true   # safe under `set -e` too
  wait "$INFLUXD_PID" 2>/dev/null || true
  INFLUXD_PID=
  return 0
}

# influxd_restart [SECONDS] : starts influxd again on the same port and data
# (after influxd_stop), e.g. to test recovery after an outage.
influxd_restart() {
  local t=${1:-30} bin=${INFLUXD_BIN:-/usr/bin/influxd}
  local log=${TEST_TMP:-$INFLUXD_DIR}/influxd.restart.$$.$RANDOM.log
  "$bin" -config "$INFLUXD_DIR/influxdb.conf" >"$log" 2>&1 &
  INFLUXD_PID=$!
  if declare -p TEST_PIDS >/dev/null 2>&1; then TEST_PIDS+=("$INFLUXD_PID"); fi
  export INFLUXD_PID
  local i=0
  while (( i < t * 10 )); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$INFLUXDB_URL/ping")" = 204 ]; then return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "FAIL: influxd did not come back on $INFLUXDB_URL" >&2
  cat "$log" >&2
  return 1
}

# influxd_cut_proxy_start : tests/admin/influx_cut_proxy.py between the tests'
# data-storage and the influxd of influxd_start (its docstring: which files make
# it lose, hold, refuse or log a request). Sets CUT (the prefix of those files,
# under TEST_TMP) and PROXY_URL (point data-storage's INFLUXDB_URL there;
# INFLUXDB_URL stays influxd's own, for the test's queries). Needs common.sh (the
# proxy is a start_bg process, stopped by its cleanup). Fails when it does not answer.
influxd_cut_proxy_start() {
  local port; port=$(free_port)
  CUT=$TEST_TMP/cut PROXY_URL=http://127.0.0.1:$port
  start_bg proxy /usr/bin/python3 "$_INFLUXD_LIB_DIR/../admin/influx_cut_proxy.py" "$port" "$INFLUXDB_URL" "$CUT"
  wait_http "$PROXY_URL/ping" 20
}

# influx_stats_settled STORAGE_URL [SECONDS] : waits until data-storage has
# written every statistics row of the batches it acknowledged (/health
# backend.statistics.unwritten_rows = 0): with INFLUXDB_STATISTICS_FLUSH_MS the
# rows follow the ack by up to that interval (docs/STATISTICS.md).
influx_stats_unwritten_0() {
  curl -s "$1/health" | jq -e '(.backend.statistics.unwritten_rows // 0) == 0' >/dev/null
}
influx_stats_settled() {
  wait_for "${2:-60}" influx_stats_unwritten_0 "$1"
}

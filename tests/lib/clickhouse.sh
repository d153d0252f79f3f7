# tests/lib/clickhouse.sh -- start and stop real, throw-away ClickHouse servers
# (Debian's `clickhouse-server` package, 18.16) for integration tests.
#
# Why: STORAGE_BACKEND=clickhouse must be tested against the real server,
# never a mock, and without touching the machine's own instance (no systemd
# here). Each server gets a temporary config: data under $TEST_TMP, HTTP, TCP
# and interserver ports free on loopback, quiet logs. Several named servers
# can run at once (a cluster: give each the same EXTRA xml, e.g. the
# remote_servers, zookeeper and macros sections).
#
# Use (after sourcing common.sh):
#   . "$(dirname "$0")/../lib/clickhouse.sh"
#   clickhouse_start ch1 || bail "clickhouse starts"   # exports CLICKHOUSE_URL
#   ...
#   clickhouse_stop ch1        # SIGTERM (clickhouse_kill ch1: SIGKILL)
#   clickhouse_restart ch1     # same ports, same data
# Per server NAME: CH_HTTP_<NAME>, CH_TCP_<NAME>, CH_PID_<NAME>, CH_DIR_<NAME>.
# clickhouse_ports NAME allocates the ports before start (to write a cluster
# config naming them); clickhouse_start does it when not done.
#
# Fails (does not skip) when /usr/sbin/clickhouse-server is missing: the
# project's scripts/install-deps installs it. CLICKHOUSE_BIN overrides the path.

_ch_free_port() {
  if declare -F free_port >/dev/null; then free_port; return; fi
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
}

_ch_get() { local v="$1_$2"; echo "${!v:-}"; }

clickhouse_ports() {
  local n=$1
  [ -n "$(_ch_get CH_HTTP "$n")" ] && return 0
  printf -v "CH_HTTP_$n" '%s' "$(_ch_free_port)"
  printf -v "CH_TCP_$n" '%s' "$(_ch_free_port)"
  printf -v "CH_INTER_$n" '%s' "$(_ch_free_port)"
}

# clickhouse_start NAME [EXTRA_XML] [SECONDS]
clickhouse_start() {
  local n=$1 extra=${2:-} t=${3:-60} bin=${CLICKHOUSE_BIN:-/usr/sbin/clickhouse-server}
  if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not found; install the Debian 'clickhouse-server' package (scripts/install-deps)" >&2
    return 1
  fi
  clickhouse_ports "$n"
  local base=${TEST_TMP:-$(mktemp -d /tmp/homeiq-clickhouse.XXXXXX)}
  local dir="$base/clickhouse-$n"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  printf -v "CH_DIR_$n" '%s' "$dir"
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/server.err.log</errorlog><console>0</console></logger>
  <http_port>$(_ch_get CH_HTTP "$n")</http_port>
  <tcp_port>$(_ch_get CH_TCP "$n")</tcp_port>
  <interserver_http_port>$(_ch_get CH_INTER "$n")</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>134217728</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>0</builtin_dictionaries_reload_interval>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  $extra
</yandex>
EOF
  cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage><log_queries>0</log_queries></default></profiles>
  <users>
    <default><password>${CLICKHOUSE_TEST_PASSWORD:-}</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows>
    <read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
EOF
  _clickhouse_run "$n" "$t"
}

_clickhouse_run() {
  local n=$1 t=$2 bin=${CLICKHOUSE_BIN:-/usr/sbin/clickhouse-server}
  local dir; dir=$(_ch_get CH_DIR "$n")
  "$bin" --config-file="$dir/config.xml" >>"$dir/stdout.log" 2>&1 &
  local pid=$!
  printf -v "CH_PID_$n" '%s' "$pid"
  if declare -p TEST_PIDS >/dev/null 2>&1; then TEST_PIDS+=("$pid"); fi
  local url="http://127.0.0.1:$(_ch_get CH_HTTP "$n")"
  export CLICKHOUSE_URL="$url"
  local i=0
  while (( i < t * 10 )); do
    if [ "$(curl -s "$url/ping")" = "Ok." ]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1; i=$((i + 1))
  done
  echo "FAIL: clickhouse-server $n did not answer /ping on $url; logs:" >&2
  tail -n 30 "$dir/stdout.log" "$dir/server.err.log" >&2 2>/dev/null
  return 1
}

# clickhouse_stop NAME [SIGNAL] : stops it and waits (KILL after 20 s). Data stays.
clickhouse_stop() {
  local n=$1 sig=${2:-TERM} pid; pid=$(_ch_get CH_PID "$n")
  [ -n "$pid" ] || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  local i=0
  while kill -0 "$pid" 2>/dev/null && (( i < 200 )); do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  printf -v "CH_PID_$n" '%s' ""
  return 0
}

clickhouse_kill() { clickhouse_stop "$1" KILL; }

# clickhouse_restart NAME [SECONDS] : the same server again (ports, data, config).
clickhouse_restart() { _clickhouse_run "$1" "${2:-60}"; }

# clickhouse_query NAME SQL : prints the answer; non-zero unless HTTP 200.
clickhouse_query() {
  local url="http://127.0.0.1:$(_ch_get CH_HTTP "$1")/"
  local out code
  out=$(curl -s -w '\n%{http_code}' -u "default:${CLICKHOUSE_TEST_PASSWORD:-}" --data-binary "$2" "$url")
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  [ "$code" = 200 ]
}

# clickhouse_cluster_start [CLUSTER] : the loopback cluster the cluster tests and
# deploy/scale/run-local.sh run (one definition, so they cannot drift apart):
# cluster CLUSTER (default homeiq) of shard 1 = ch1 + ch2 (a replica pair,
# internal_replication) and shard 2 = ch3, every server with the same
# remote_servers and zookeeper sections and its own macros (shard 01/02,
# replica = its name); CH_SHARD2_PAIR=1 adds ch4 as shard 2's second replica. Needs ZooKeeper running on ZK_PORT (tests/lib/zookeeper.sh).
# Sets CH_HTTP_ch1..3 etc. as clickhouse_start does; 1 (naming the server)
# when one does not start.
clickhouse_cluster_start() {
  local c=${1:-homeiq} n pair2=""
  [ -n "${ZK_PORT:-}" ] || { echo "FAIL: clickhouse_cluster_start: ZooKeeper first (ZK_PORT unset)" >&2; return 1; }
  for n in ch1 ch2 ch3; do clickhouse_ports "$n"; done
  if [ "${CH_SHARD2_PAIR:-0}" = 1 ]; then # shard 2 a replica pair too (ch3 + ch4): CLICKHOUSE_INSERT_QUORUM=2
    clickhouse_ports ch4
    pair2="<replica><host>127.0.0.1</host><port>$CH_TCP_ch4</port></replica>"
  fi
  local remote="<remote_servers><$c>
  <shard><internal_replication>true</internal_replication>
    <replica><host>127.0.0.1</host><port>$CH_TCP_ch1</port></replica>
    <replica><host>127.0.0.1</host><port>$CH_TCP_ch2</port></replica></shard>
  <shard><internal_replication>true</internal_replication>
    <replica><host>127.0.0.1</host><port>$CH_TCP_ch3</port></replica>$pair2</shard>
</$c></remote_servers>
<zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>"
  clickhouse_start ch1 "$remote <macros><shard>01</shard><replica>ch1</replica></macros>" || { echo "FAIL: ch1" >&2; return 1; }
  clickhouse_start ch2 "$remote <macros><shard>01</shard><replica>ch2</replica></macros>" || { echo "FAIL: ch2" >&2; return 1; }
  clickhouse_start ch3 "$remote <macros><shard>02</shard><replica>ch3</replica></macros>" || { echo "FAIL: ch3" >&2; return 1; }
  [ -z "$pair2" ] || clickhouse_start ch4 "$remote <macros><shard>02</shard><replica>ch4</replica></macros>" ||
    { echo "FAIL: ch4" >&2; return 1; }
}

# tests/lib/zookeeper.sh -- a real, throw-away ZooKeeper (Debian's `zookeeper`
# 3.8 on openjdk-17-jre-headless) for ClickHouse's replicated tables.
#
# Why: ReplicatedMergeTree and ON CLUSTER DDL need ZooKeeper (ClickHouse 18.16
# has no Keeper). Debian's package is started by systemd normally; tests run
# their own standalone server on a free loopback port, data under $TEST_TMP.
#
# Use (after sourcing common.sh):
#   . "$(dirname "$0")/../lib/zookeeper.sh"
#   zookeeper_start || bail "zookeeper starts"   # exports ZK_PORT, ZK_PID
#   zookeeper_stop
# Fails (does not skip) when the package is missing (scripts/install-deps installs it).

zookeeper_start() {
  local t=${1:-60} jar=/usr/share/java/zookeeper.jar
  if [ ! -r "$jar" ] || ! command -v java >/dev/null; then
    echo "FAIL: $jar or java not found; install Debian's zookeeper + openjdk-17-jre-headless (scripts/install-deps)" >&2
    return 1
  fi
  local base=${TEST_TMP:-$(mktemp -d /tmp/homeiq-zk.XXXXXX)}
  ZK_DIR="$base/zookeeper"
  mkdir -p "$ZK_DIR/data"
  if declare -F free_port >/dev/null; then ZK_PORT=$(free_port); else ZK_PORT=$(( 20000 + RANDOM % 30000 )); fi
  cat >"$ZK_DIR/zoo.cfg" <<CFG
tickTime=500
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
CFG
  cat >"$ZK_DIR/log4j.properties" <<'CFG'
log4j.rootLogger=WARN, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d %p %c{1}: %m%n
CFG
  java -Xmx256m -XX:+UseSerialGC -Dzookeeper.log.dir="$ZK_DIR" -Dlog4j.configuration="file:$ZK_DIR/log4j.properties" \
    -cp "$ZK_DIR:$jar" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg" >"$ZK_DIR/zk.log" 2>&1 &
  ZK_PID=$!
  if declare -p TEST_PIDS >/dev/null 2>&1; then TEST_PIDS+=("$ZK_PID"); fi
  export ZK_PORT ZK_PID
  local i=0
  while (( i < t * 10 )); do
    # "srvr" names the mode only once the server serves requests: "ruok" says imok earlier, while
    # sessions are still refused, and ClickHouse 18.16 dies (SIGSEGV in zkutil) when its first
    # handshake is cut that way
    if (exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null | grep -q '^Mode: '; then
      return 0
    fi
    kill -0 "$ZK_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  echo "FAIL: zookeeper did not serve (srvr) on 127.0.0.1:$ZK_PORT; log:" >&2
  tail -n 30 "$ZK_DIR/zk.log" >&2
  return 1
}

zookeeper_stop() {
  [ -n "${ZK_PID:-}" ] || return 0
  kill -TERM "$ZK_PID" 2>/dev/null || true
  local i=0
  while kill -0 "$ZK_PID" 2>/dev/null && (( i < 100 )); do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$ZK_PID" 2>/dev/null || true
  wait "$ZK_PID" 2>/dev/null || true
  ZK_PID=
}

#!/usr/bin/env bash
# bench/clickhouse.sh -- issue 18's figures: committed insert throughput and peak
# RSS of homeiq-data-storage on ClickHouse (one loopback clickhouse-server) next to
# SQLite, and 1 vs 2 storage replicas behind nginx (deploy/scale/nginx.conf).
#
# Each POST is answered only after the commit (SQLite) / ClickHouse's 200 for the
# INSERT, so these are committed events/s. CLIENTS curl processes post the
# batches in parallel (each over its own keep-alive connection), as several
# enrichment replicas would. Everything (clickhouse-server, nginx, storage,
# curl) shares this machine's cores: the scaling figure says what a second
# replica buys *here*, not on separate machines.
#
# Use: bench/clickhouse.sh [path/to/homeiq-data-storage]
#      EVENTS=40000 BATCH=1000 CLIENTS=4 (defaults)
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$root/tests/lib/clickhouse.sh"
. "$root/tests/lib/nginx.sh"
BIN=${1:-$root/build/services/data-storage/homeiq-data-storage}
EVENTS=${EVENTS:-40000}
BATCH=${BATCH:-1000}
CLIENTS=${CLIENTS:-4}

nb=$((EVENTS / BATCH))
echo "# generating $EVENTS events in $nb batches of $BATCH"
jq -nc --argjson n "$EVENTS" --argjson from 0 -f "$root/tests/storage/gen_events.jq" > "$TEST_TMP/all.json"
jq -c --argjson b "$BATCH" '. as $a | range(0; length; $b) | {events: $a[.:. + $b]}' "$TEST_TMP/all.json" |
  split -l 1 -a 4 -d --additional-suffix=.json - "$TEST_TMP/b"
for ((k = 0; k < nb; k++)); do mv "$TEST_TMP/b$(printf %04d $k).json" "$TEST_TMP/b$k.json"; done
bytes=$(cat "$TEST_TMP"/b*.json | wc -c)

# post_all URL : CLIENTS curls, batch k by client k % CLIENTS; prints seconds and the status codes
post_all() {
  local url=$1 c k t0 t1
  t0=$(date +%s.%N)
  for ((c = 0; c < CLIENTS; c++)); do
    local args=()
    for ((k = c; k < nb; k += CLIENTS)); do
      ((${#args[@]})) && args+=(--next)
      args+=(-o /dev/null -w '%{http_code}\n' -XPOST -H 'Content-Type: application/json' -H 'X-HomeIQ-Home: bench'
             --data-binary @"$TEST_TMP/b$k.json" "$url")
    done
    curl -s "${args[@]}" >"$TEST_TMP/codes.$c" &
  done
  wait
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc -l) $(cat "$TEST_TMP"/codes.* | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
}
report() { # NAME SECS CODES... PID...
  local name=$1 secs=$2 codes=$3 rss=$4
  printf '%-28s %6d events, batch %5d, %d clients: %6.2f s, %8.0f events/s, peak RSS %s  (HTTP: %s)\n' \
    "$name" "$EVENTS" "$BATCH" "$CLIENTS" "$secs" "$(echo "$EVENTS / $secs" | bc -l)" "$rss" "$codes"
}
hwm() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' "/proc/$p/status"))); done; echo "$((t / 1024)) MB"; }

start_storage() { # NAME BACKEND DB -> sets SPID SPORT
  SPORT=$(free_port)
  STORAGE_BACKEND=$2 DATA_DIR=$TEST_TMP/data-$1 DATA_STORAGE_PORT=$SPORT LOG_LEVEL=warn CLICKHOUSE_URL=${CLICKHOUSE_URL:-} \
    CLICKHOUSE_DATABASE=$3 CLICKHOUSE_PING_INTERVAL_MS=200 start_bg "storage-$1" "$BIN"
  SPID=$LAST_PID
  wait_healthy "http://127.0.0.1:$SPORT/health" 60 || exit 1
}

# SQLite, for reference
start_storage sqlite sqlite x
read -r secs codes < <(post_all "http://127.0.0.1:$SPORT/api/v1/events")
report "sqlite" "$secs" "$codes" "$(hwm $SPID)"
stop_pid "$SPID" >/dev/null

clickhouse_start ch || exit 1
start_storage ch1 clickhouse bench_one
read -r secs codes < <(post_all "http://127.0.0.1:$SPORT/api/v1/events")
report "clickhouse, 1 storage" "$secs" "$codes" "$(hwm $SPID)"
stop_pid "$SPID" >/dev/null

# 1 vs 2 replicas behind nginx (a fresh database each)
for n in 1 2; do
  start_storage "r1-$n" clickhouse "bench_lb$n"; P1=$SPORT; Q1=$SPID
  if [ $n = 2 ]; then start_storage "r2-$n" clickhouse "bench_lb$n"; P2=$SPORT; Q2=$SPID; else P2=$P1; Q2=; fi
  LB=$(free_port)
  nginx_start "$root/deploy/scale/nginx.conf" ENRICHMENT_1=127.0.0.1:1 ENRICHMENT_2=127.0.0.1:2 ENRICHMENT_LISTEN=127.0.0.1:$(free_port) \
    STORAGE_1=127.0.0.1:$P1 STORAGE_2=127.0.0.1:$P2 STORAGE_LISTEN=127.0.0.1:$LB >/dev/null || exit 1
  read -r secs codes < <(post_all "http://127.0.0.1:$LB/api/v1/events")
  report "clickhouse, nginx, $n storage" "$secs" "$codes" "$(hwm $Q1 $Q2)"
  nginx_stop; stop_pid "$Q1" >/dev/null; [ -n "$Q2" ] && stop_pid "$Q2" >/dev/null
done
clickhouse_stop ch
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0  # cleanup (trap above) stops everything; a benchmark has no checks

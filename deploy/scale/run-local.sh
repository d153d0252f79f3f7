#!/usr/bin/env bash
# deploy/scale/run-local.sh -- the scale-out layout of issue 18, natively on this
# machine, loopback only (deploy/scale/README.md):
#
#   HOMES x (homeiq-ha-simulator + websocket-ingestion, HOMEIQ_HOME_ID=home1..)
#     --> nginx (enrichment port) --> 2 enrichment-pipeline replicas
#     --> nginx (storage port)    --> 2 data-storage replicas
#     --> ClickHouse cluster "homeiq": shard 1 = ch1 + ch2 (replicas), shard 2 = ch3
#         (ReplicatedReplacingMergeTree + Distributed), ZooKeeper
#
# Why a script: docker-compose.scale.yml needs a Docker engine; this runs the same
# layout from Debian's packages (clickhouse-server, zookeeper, nginx-light) and
# the build's binaries, so it can be tried (and its faults provoked) anywhere
# `make` works. The servers are started with the helpers the tests use
# (tests/lib/{zookeeper,clickhouse,nginx}.sh): one way to run each of them.
# Ports are free loopback ports picked at start; they are printed and written to
# $RUN_DIR/scale.env, together with a ready `homeiqctl health` command.
#
# Use:   deploy/scale/run-local.sh            # runs until Ctrl-C, then stops everything
#        deploy/scale/run-local.sh --check    # sends SCALE_EVENTS, checks every home's count
#                                             # and the health view, stops, exits 0/1
# Environment: BUILD (default build), SCALE_HOMES (3), SCALE_RATE (events/s per home,
# 200), SCALE_EVENTS (events per home; default 0 = endless, --check: 2000),
# RUN_DIR (data and logs; default a new /tmp/homeiq-scale.XXXXXX, kept).
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "${1:-}" in
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --check) CHECK=1 ;;
  "") CHECK=0 ;;
  *) echo "usage: $0 [--check|--help]" >&2; exit 2 ;;
esac
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
HOMES=${SCALE_HOMES:-3}
RATE=${SCALE_RATE:-200}
EVENTS=${SCALE_EVENTS:-$([ "$CHECK" = 1 ] && echo 2000 || echo 0)}
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator
ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
STO=$BUILD/services/data-storage/homeiq-data-storage
CTL=$BUILD/tools/homeiqctl/homeiqctl
for b in "$SIM" "$ING" "$ENR" "$STO" "$CTL"; do
  [ -x "$b" ] || { echo "run-local: $b missing; run 'make' first" >&2; exit 1; }
done

. "$ROOT/tests/lib/common.sh"       # free_port, start_bg, wait_healthy, cleanup of every child
rmdir "$TEST_TMP"
TEST_TMP=${RUN_DIR:-$(mktemp -d /tmp/homeiq-scale.XXXXXX)}
mkdir -p "$TEST_TMP"
export KEEP_TMP=1                   # data and logs stay for a look afterwards (--check: on failure)
on_exit() {
  local rc=$?
  SANITIZER_FAILED=0
  cleanup                           # stops every process started here; notes crashes and sanitizer reports
  if [ "$CHECK" = 1 ] && [ "$CRASH_FAILED$SANITIZER_FAILED" != 00 ]; then
    echo "run-local: FAILED: a process crashed or a sanitizer reported (above)"; rc=1
  fi
  if [ "$KEEP_TMP" = 1 ]; then echo "run-local: stopped; data and logs in $TEST_TMP"; else echo "run-local: stopped"; fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 0' INT TERM HUP
. "$ROOT/tests/lib/zookeeper.sh"
. "$ROOT/tests/lib/clickhouse.sh"
. "$ROOT/tests/lib/nginx.sh"
say() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { say "FAILED: $*"; exit 1; }

say "ZooKeeper"
zookeeper_start || die "zookeeper"
say "ClickHouse: shard 1 = ch1 + ch2, shard 2 = ch3"
clickhouse_cluster_start || die "clickhouse cluster"
CH1=http://127.0.0.1:$CH_HTTP_ch1 CH2=http://127.0.0.1:$CH_HTTP_ch2 CH3=http://127.0.0.1:$CH_HTTP_ch3

S1=$(free_port) S2=$(free_port) E1=$(free_port) E2=$(free_port) LB_S=$(free_port) LB_E=$(free_port)
say "nginx: enrichment on :$LB_E, storage on :$LB_S"
nginx_start "$ROOT/deploy/scale/nginx.conf" ENRICHMENT_1=127.0.0.1:$E1 ENRICHMENT_2=127.0.0.1:$E2 \
  STORAGE_1=127.0.0.1:$S1 STORAGE_2=127.0.0.1:$S2 ENRICHMENT_LISTEN=127.0.0.1:$LB_E STORAGE_LISTEN=127.0.0.1:$LB_S \
  || die "nginx"
urls=("" "$CH1,$CH2" "$CH2,$CH1")
for i in 1 2; do
  p=S$i
  say "data-storage replica $i on :${!p} (ClickHouse ${urls[$i]})"
  start_bg storage$i env STORAGE_BACKEND=clickhouse CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_DATABASE=homeiq \
    CLICKHOUSE_URL="${urls[$i]}" CLICKHOUSE_TIMEOUT_MS=20000 DATA_DIR="$TEST_TMP/storage$i" DATA_STORAGE_PORT=${!p} "$STO"
  wait_healthy "http://127.0.0.1:${!p}/health" 180 "$LAST_PID" || die "storage replica $i (log: $TEST_TMP/storage$i.log)"
done
for i in 1 2; do
  p=E$i
  say "enrichment-pipeline replica $i on :${!p}"
  start_bg enrichment$i env ENRICHMENT_PIPELINE_PORT=${!p} DATA_STORAGE_URL=http://127.0.0.1:$LB_S STORAGE_TIMEOUT_MS=40000 "$ENR"
  wait_healthy "http://127.0.0.1:${!p}/health" 30 "$LAST_PID" || die "enrichment replica $i"
done
PROBES="--probe enrichment-1=http://127.0.0.1:$E1/health --probe enrichment-2=http://127.0.0.1:$E2/health"
PROBES+=" --probe storage-1=http://127.0.0.1:$S1/health --probe storage-2=http://127.0.0.1:$S2/health"
PROBES+=" --probe clickhouse-shard1-ch1=$CH1/ping --probe clickhouse-shard1-ch2=$CH2/ping --probe clickhouse-shard2-ch3=$CH3/ping"
ING1=
for ((k = 1; k <= HOMES; k++)); do
  h=home$k sp=$(free_port) ip=$(free_port)
  say "home $h: simulator on :$sp ($RATE events/s$([ "$EVENTS" -gt 0 ] && echo ", $EVENTS events")), websocket-ingestion on :$ip"
  start_bg sim_$h env SIMULATOR_PORT=$sp "$SIM" --rate "$RATE" --count "$EVENTS" --seed 7
  wait_http "http://127.0.0.1:$sp/health" 20 || die "simulator $h"
  start_bg ing_$h env HOME_ASSISTANT_URL=http://127.0.0.1:$sp HOME_ASSISTANT_TOKEN=homeiq-simulator-token HOMEIQ_HOME_ID=$h \
    DATA_DIR="$TEST_TMP/ing_$h" WEBSOCKET_INGESTION_PORT=$ip ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$LB_E FORWARD_TIMEOUT_MS=50000 "$ING"
  wait_healthy "http://127.0.0.1:$ip/health" 30 "$LAST_PID" || die "ingestion $h"
  [ -n "$ING1" ] || ING1=$ip
  [ $k -gt 1 ] && PROBES+=" --probe ingestion-$h=http://127.0.0.1:$ip/health"
  printf -v "SIMP_$k" '%s' "$sp"; printf -v "INGP_$k" '%s' "$ip"
done

HEALTH_CMD="WEBSOCKET_INGESTION_URL=http://127.0.0.1:$ING1 ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$LB_E DATA_STORAGE_URL=http://127.0.0.1:$LB_S $CTL health $PROBES"
cat >"$TEST_TMP/scale.env" <<EOF
# written by deploy/scale/run-local.sh ($(date -u +%FT%TZ))
ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$LB_E
DATA_STORAGE_URL=http://127.0.0.1:$LB_S
ENRICHMENT_REPLICAS=http://127.0.0.1:$E1,http://127.0.0.1:$E2
STORAGE_REPLICAS=http://127.0.0.1:$S1,http://127.0.0.1:$S2
CLICKHOUSE_SHARD1=$CH1,$CH2
CLICKHOUSE_SHARD2=$CH3
ZOOKEEPER=127.0.0.1:$ZK_PORT
HEALTH_CMD='$HEALTH_CMD'
EOF
say "up. Events through the balancer: curl 'http://127.0.0.1:$LB_S/api/v1/events?home=home1&limit=5'"
say "health, per replica and per ClickHouse server (also in $TEST_TMP/scale.env):"
echo "  $HEALTH_CMD"

if [ "$CHECK" = 0 ]; then
  say "running; Ctrl-C stops everything"
  while :; do
    sleep 10
    n=$(curl -s "$CH1/" --data-binary "SELECT uniqExact(event_id) FROM homeiq.events FORMAT TSV" 2>/dev/null)
    say "stored: ${n:-?} events"
  done
fi

# --check: every home's events stored once, the health view all green
per_home() { curl -s "$CH1/" --data-binary \
  "SELECT home_id, uniqExact(event_id) FROM homeiq.events GROUP BY home_id ORDER BY home_id FORMAT TSV" | tr '\t' '=' | paste -sd' '; }
want=$(for ((k = 1; k <= HOMES; k++)); do echo "home$k=$EVENTS"; done | sort | paste -sd' ')
i=0
until [ "$(per_home)" = "$want" ]; do
  i=$((i + 1)); [ $i -gt $((EVENTS / RATE * 3 + 300)) ] && die "stored per home: $(per_home), wanted $want"
  sleep 1
done
say "stored per home (distinct events): $(per_home)"
eval "$HEALTH_CMD" || die "homeiqctl health"
for ((k = 1; k <= HOMES; k++)); do
  p=INGP_$k
  d=$(curl -s "http://127.0.0.1:${!p}/health" | jq -r .spool.depth)
  [ "$d" = 0 ] || die "home$k: spool depth $d"
done
say "check passed: $want, every spool drained, every hop healthy"
[ -n "${RUN_DIR:-}" ] || KEEP_TMP=0
exit 0

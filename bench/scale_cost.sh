#!/usr/bin/env bash
# bench/scale_cost.sh -- the per-core cost model of the scale-out layout (issue 18):
# CPU time per event of every tier, from /proc/PID/stat utime+stime over a known
# number of events, and from it how many cores of each tier 1,000,000 events/s needs.
#
# Why CPU per event and not events/s: events/s on a shared 2-core machine says
# more about the neighbours than about HomeIQ; the CPU a tier spends per event
# barely depends on load (what load changes is how full the batches are, which
# this script reports), so it can be measured on a busy machine and scaled:
# a tier that spends C µs of CPU per event needs C cores per 1M events/s
# (1 core = 1,000,000 µs of CPU per second), before headroom.
#
# Layout (real processes, loopback): homeiq-ha-simulator (load mode, paused until
# everything is up) -> websocket-ingestion -> nginx -> enrichment-pipeline -> nginx
# -> data-storage (STORAGE_BACKEND=clickhouse) -> one clickhouse-server
# (SCALE_COST_CLUSTER=1: the 2-shard cluster with a replica pair and ZooKeeper,
# insert_distributed_sync; clickhouse-server's CPU is then the sum of the 3 servers
# and ZooKeeper is reported too). One replica per tier: a replica's cost per event
# does not change with the number of replicas (nginx spreads whole batches).
#
# Use: bench/scale_cost.sh                  (make bench-scale runs it)
#      SCALE_COST_EVENTS=100000 (default) SCALE_COST_CLUSTER=0 BUILD=build
# Prints a table and writes bench/results/scale-cost-<time>.json.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$ROOT/tests/lib/clickhouse.sh"
. "$ROOT/tests/lib/zookeeper.sh"
. "$ROOT/tests/lib/nginx.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=${LOG_LEVEL:-warn}
BUILD=${BUILD:-$ROOT/build}
N=${SCALE_COST_EVENTS:-100000}
CLUSTER=${SCALE_COST_CLUSTER:-0}
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator
ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
STO=$BUILD/services/data-storage/homeiq-data-storage
for b in "$SIM" "$ING" "$ENR" "$STO"; do [ -x "$b" ] || { echo "scale_cost: $b missing; run 'make' first" >&2; exit 1; }; done
TCK=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'; }
say() { printf '[scale-cost %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- ClickHouse --------------------------------------------------------------
CH_PIDS=() ZK=
if [ "$CLUSTER" = 1 ]; then
  zookeeper_start || exit 1
  ZK=$ZK_PID
  for n in ch1 ch2 ch3; do clickhouse_ports "$n"; done
  remote="<remote_servers><homeiq>
    <shard><internal_replication>true</internal_replication>
      <replica><host>127.0.0.1</host><port>$CH_TCP_ch1</port></replica>
      <replica><host>127.0.0.1</host><port>$CH_TCP_ch2</port></replica></shard>
    <shard><internal_replication>true</internal_replication>
      <replica><host>127.0.0.1</host><port>$CH_TCP_ch3</port></replica></shard>
  </homeiq></remote_servers>
  <zookeeper><node><host>127.0.0.1</host><port>$ZK_PORT</port></node></zookeeper>"
  clickhouse_start ch1 "$remote <macros><shard>01</shard><replica>ch1</replica></macros>" || exit 1
  clickhouse_start ch2 "$remote <macros><shard>01</shard><replica>ch2</replica></macros>" || exit 1
  clickhouse_start ch3 "$remote <macros><shard>02</shard><replica>ch3</replica></macros>" || exit 1
  CH_PIDS=("$CH_PID_ch1" "$CH_PID_ch2" "$CH_PID_ch3")
  CH_ENV=(CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_URL="http://127.0.0.1:$CH_HTTP_ch1,http://127.0.0.1:$CH_HTTP_ch2")
else
  clickhouse_start ch || exit 1
  CH_PIDS=("$CH_PID_ch")
  CH_ENV=(CLICKHOUSE_URL="$CLICKHOUSE_URL")
fi

# ---- the pipeline, one replica per tier, nginx between the tiers --------------
P_STO=$(free_port) P_ENR=$(free_port) LB_S=$(free_port) LB_E=$(free_port) P_SIM=$(free_port) P_ING=$(free_port)
nginx_start "$ROOT/deploy/scale/nginx.conf" ENRICHMENT_1=127.0.0.1:$P_ENR ENRICHMENT_2=127.0.0.1:$P_ENR \
  STORAGE_1=127.0.0.1:$P_STO STORAGE_2=127.0.0.1:$P_STO ENRICHMENT_LISTEN=127.0.0.1:$LB_E STORAGE_LISTEN=127.0.0.1:$LB_S \
  >/dev/null || exit 1
# the timeout ladder of deploy/scale/README.md: ClickHouse < enrichment's wait < ingestion's forward < nginx
start_bg sto env STORAGE_BACKEND=clickhouse "${CH_ENV[@]}" CLICKHOUSE_DATABASE=bench_cost CLICKHOUSE_TIMEOUT_MS=20000 \
  DATA_DIR="$TEST_TMP/sto" DATA_STORAGE_PORT=$P_STO "$STO"
STO_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$P_STO/health" 180 "$STO_PID" || exit 1
start_bg enr env ENRICHMENT_PIPELINE_PORT=$P_ENR DATA_STORAGE_URL=http://127.0.0.1:$LB_S STORAGE_TIMEOUT_MS=40000 "$ENR"
ENR_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$P_ENR/health" 30 "$ENR_PID" || exit 1
start_bg sim env SIMULATOR_PORT=$P_SIM "$SIM" --rate 1000000 --count "$N" --seed 42
SIM_PID=$LAST_PID
wait_http "http://127.0.0.1:$P_SIM/health" 20 || exit 1
curl -s -X POST "http://127.0.0.1:$P_SIM/api/sim/pause" >/dev/null
start_bg ing env WEBSOCKET_INGESTION_PORT=$P_ING DATA_DIR="$TEST_TMP/ing" HOMEIQ_HOME_ID=cost \
  ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$LB_E FORWARD_TIMEOUT_MS=50000 HOME_ASSISTANT_URL=http://127.0.0.1:$P_SIM \
  HOME_ASSISTANT_TOKEN=homeiq-simulator-token BACKFILL=0 "$ING"
ING_PID=$LAST_PID
wait_healthy "http://127.0.0.1:$P_ING/health" 30 "$ING_PID" || exit 1

# idle cost of ClickHouse (background tasks) over a few seconds, to take off its figure
sleep 2
IDLE_S=5
i0=$(ticks "${CH_PIDS[@]}"); sleep $IDLE_S; i1=$(ticks "${CH_PIDS[@]}")
ch_idle_per_s=$(echo "($i1 - $i0) / $IDLE_S" | bc -l)

names=(simulator ingestion nginx enrichment storage clickhouse)
pids=("$SIM_PID" "$ING_PID" "$NGINX_PID" "$ENR_PID" "$STO_PID" "${CH_PIDS[*]}")
[ -n "$ZK" ] && names+=(zookeeper) && pids+=("$ZK")
declare -a t0 t1
for k in "${!names[@]}"; do t0[$k]=$(ticks ${pids[$k]}); done
start=$(date +%s.%N)
say "$N events through sim -> ingestion -> nginx -> enrichment -> nginx -> storage -> clickhouse$([ "$CLUSTER" = 1 ] && echo ' cluster')"
curl -s -X POST "http://127.0.0.1:$P_SIM/api/sim/resume" >/dev/null
# done when ClickHouse holds N distinct events (storage's stored counter can stay below N
# when an INSERT went through but its answer timed out: the retry counts them duplicates)
CH_Q=http://127.0.0.1:$([ "$CLUSTER" = 1 ] && echo "$CH_HTTP_ch1" || echo "$CH_HTTP_ch")/
in_ch() { local n; n=$(curl -s -m 30 "$CH_Q" --data-binary "SELECT uniqExact(event_id) FROM bench_cost.events FORMAT TSV" 2>/dev/null)
  [[ "$n" =~ ^[0-9]+$ ]] && echo "$n" || echo 0; }
deadline=$((SECONDS + N / 20 + 900))
until [ "$(in_ch)" -ge "$N" ]; do
  [ $SECONDS -lt $deadline ] || { say "timeout: $(in_ch) of $N in ClickHouse"; exit 1; }
  sleep 0.5
done
end=$(date +%s.%N)
for k in "${!names[@]}"; do t1[$k]=$(ticks ${pids[$k]}); done
secs=$(echo "$end - $start" | bc -l)
batches=$(metric "http://127.0.0.1:$P_STO" 'homeiq_storage_batches_total{result="committed"}')

# ---- the model -----------------------------------------------------------------
rows=()
printf '\n%-12s %12s %14s %24s\n' tier "CPU s" "µs / event" "cores for 1M events/s"
for k in "${!names[@]}"; do
  d=$(( t1[k] - t0[k] ))
  [ "${names[$k]}" = clickhouse ] && d=$(echo "$d - $ch_idle_per_s * $secs" | bc -l)
  us=$(echo "$d / $TCK / $N * 1000000" | bc -l)
  printf '%-12s %12.2f %14.1f %24.1f\n' "${names[$k]}" "$(echo "$d / $TCK" | bc -l)" "$us" "$us"
  rows+=("$(jq -nc --arg t "${names[$k]}" --argjson s "$(echo "$d / $TCK" | bc -l | sed 's/^\./0./;s/^-\./-0./')" \
    --argjson us "$(echo "$us" | sed 's/^\./0./;s/^-\./-0./')" '{tier: $t, cpu_s: $s, us_per_event: $us, cores_per_1m_events_s: $us}')")
done
rate=$(echo "$N / $secs" | bc -l)
printf '\n%d events in %.1f s (%.0f events/s on this machine now: load %s), %d storage batches (%.0f events each);\nClickHouse idle %.2f ticks/s taken off its figure\n' \
  "$N" "$secs" "$rate" "$(cut -d' ' -f1-3 /proc/loadavg)" "$batches" "$(echo "$N / ($batches + 0.0001)" | bc -l)" "$ch_idle_per_s"
mkdir -p "$ROOT/bench/results"
out=$ROOT/bench/results/scale-cost-$(date -u +%Y%m%dT%H%M%SZ).json
printf '%s\n' "${rows[@]}" | jq -s --argjson n "$N" --argjson secs "$secs" --argjson cluster "$CLUSTER" --argjson batches "$batches" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson cores "$(nproc)" --arg date "$(date -u +%FT%TZ)" \
  --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  '{date: $date, commit: $commit, events: $n, seconds: $secs, cluster: ($cluster == 1), storage_batches: $batches, cores: $cores, loadavg: $load, tiers: .}' >"$out"
say "results: $out"
exit 0

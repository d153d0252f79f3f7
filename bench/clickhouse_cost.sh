#!/usr/bin/env bash
# bench/clickhouse_cost.sh -- data-storage alone on one ClickHouse node, with the
# burst's own records: storage CPU and clickhouse-server CPU per event, and what
# ClickHouse read to answer the per-batch duplicate checks, for one or more
# binaries back to back (alternated per round), same corpus, same server.
#
# Why: `make bench`'s ClickHouse burst mixes five processes on two cores; when it is
# slower than SQLite the question is which process pays (storage? the server's
# SELECTs and INSERTs? merges?). Wall-clock is meaningless under load: the figures
# are CPU (/proc/PID/stat utime+stime) and counts (ClickHouse's system.events:
# SelectedRows, SelectedMarks, InsertQuery, Merge) per event.
#
# The corpus is bench/storage_burst.sh's (the records the pipeline really stored,
# in batches of BATCH; made there when missing). Each binary gets a fresh
# database; every body is POSTed in order over one keep-alive connection (each
# answered after ClickHouse's 200), then all again (every event a duplicate).
#
# Use: bench/clickhouse_cost.sh BIN [BIN ...]
#      COUNT=40000 BATCH=1000 ROUNDS=2 BENCH_CORPUS_DIR=/tmp/homeiq-storage-corpus-$COUNT-$BATCH
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${COUNT:-40000}
BATCH=${BATCH:-1000}
ROUNDS=${ROUNDS:-2}
CORPUS=${BENCH_CORPUS_DIR:-/tmp/homeiq-storage-corpus-$COUNT-$BATCH}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
. "$ROOT/tests/lib/clickhouse.sh"
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=${LOG_LEVEL:-warn}
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/build/services/data-storage/homeiq-data-storage")
[ -d "$CORPUS" ] || COUNT=$COUNT BATCH=$BATCH "$ROOT/bench/storage_burst.sh" "${BINS[0]}" >/dev/null
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'; }
TCK=$(getconf CLK_TCK)
nev=$(cat "$CORPUS"/*.json | jq '.events | length' | awk '{ s += $1 } END { print s }')
args=()
for f in "$CORPUS"/*.json; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' --data-binary @"$f")
  args+=("http://127.0.0.1:PORT/api/v1/events")
done
post_all() { curl "${args[@]//PORT/$1}" | sort | uniq -c | tr '\n' ' '; }
# ClickHouse's own counters (server-wide; only this bench uses the server)
ch_events() { clickhouse_query cost "SELECT sumIf(value, event = 'SelectedRows'), sumIf(value, event = 'SelectedMarks'),
  sumIf(value, event = 'InsertQuery'), sumIf(value, event = 'Merge') FROM system.events FORMAT TSV"; }

clickhouse_start cost || exit 1
chpid=$(_ch_get CH_PID cost)
echo "# $nev events in $(ls "$CORPUS" | wc -l) bodies from $CORPUS; clickhouse-server pid $chpid"
n=0
for round in $(seq "$ROUNDS"); do
  for bin in "${BINS[@]}"; do
    n=$((n + 1))
    port=$(free_port)
    start_bg "sto-$n" env STORAGE_BACKEND=clickhouse CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE="cost_$n" \
      DATA_STORAGE_PORT=$port "$bin"
    pid=$LAST_PID
    wait_healthy "http://127.0.0.1:$port/health" 60 || { echo "$bin did not get healthy" >&2; exit 1; }
    sleep 1   # the schema's DDL and its merges out of the way
    for pass in new re-sent; do
      e0=$(ch_events); c0=$(cpu_ticks "$pid"); k0=$(cpu_ticks "$chpid"); t0=$(date +%s.%N)
      s0=$(metric "http://127.0.0.1:$port" homeiq_storage_events_stored_total)
      codes=$(post_all "$port")
      t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); k1=$(cpu_ticks "$chpid"); e1=$(ch_events)
      s1=$(metric "http://127.0.0.1:$port" homeiq_storage_events_stored_total)
      awk -v bin="$bin" -v pass="$pass" -v nev="$nev" -v c="$((c1 - c0))" -v k="$((k1 - k0))" -v tck="$TCK" \
        -v t="$(echo "$t1 - $t0" | bc)" -v st="$((${s1%.*} - ${s0%.*}))" -v codes="$codes" -v e0="$e0" -v e1="$e1" \
        -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { split(e0, a, "\t"); split(e1, b, "\t")
        printf "%s round %d %-7s stored %6d, %6.0f events/s, storage %5.1f us/event, clickhouse-server %6.1f us/event, read %.1f rows/event (%.3f marks), %d INSERTs, %d merges [HTTP %s] load %s\n",
          bin, '"$round"', pass, st, nev / t, c * 1e6 / tck / nev, k * 1e6 / tck / nev, (b[1] - a[1]) / nev,
          (b[2] - a[2]) / nev, b[3] - a[3], b[4] - a[4], codes, load }'
    done
    stop_pid "$pid" || true
    clickhouse_query cost "DROP DATABASE cost_$n" >/dev/null || true
  done
done
clickhouse_stop cost

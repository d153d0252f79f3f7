#!/usr/bin/env bash
# bench/storage_burst.sh -- data-storage alone on SQLite, with the burst's own records.
#
# Why: `make bench`'s burst measures the whole pipeline, so storage's cost per event is
# mixed with three other processes on two cores. This bench replays to data-storage only
# the enriched records the pipeline really produced (the simulated house: ~200 entities,
# registry context, numeric sensors, so statistics, entities and registry work per batch
# is the burst's) and measures storage's CPU per event (utime+stime from /proc/PID/stat)
# for one or two binaries back to back, same corpus, same moment.
#
# 1. corpus (once, cached in BENCH_CORPUS_DIR): simulator -> ingestion -> enrichment ->
#    data-storage, COUNT events; the stored records (exact text storage received, in
#    commit order) are cut into batches of BATCH as {"events":[...]} bodies.
# 2. for each binary given: a fresh DATA_DIR, POST every body in order over one
#    keep-alive curl connection (each answered after its durable commit), then
#    REPEAT=1 posts them all again (every event a duplicate: the retry cost).
#    Prints events/s, CPU us/event and bytes written per event (/proc/PID/io wchar: WAL
#    frames, checkpoints, HTTP answers).
#
# Use: bench/storage_burst.sh [BIN ...]   (default build/services/data-storage/homeiq-data-storage)
#      COUNT=40000 BATCH=1000 ROUNDS=1 BENCH_CORPUS_DIR=/tmp/homeiq-storage-corpus-$COUNT-$BATCH
#      CLIENTS=N: post over N connections at once (curl --parallel; default 1, one keep-alive
#      connection), as ingestion's FORWARD_MAX_INFLIGHT=4 window does through enrichment
#      PERF=1: perf record -g the storage process during the first round (perf-<n>.data in $PWD)
#      A BIN may be given as 'BIN#SQL': its store is made first (the binary started once on an
#      empty DATA_DIR, schema up to date) and SQL run on it with sqlite3 before the replay, e.g.
#      'build/.../homeiq-data-storage#DROP INDEX events_area_time' prices one index.
# make bench-storage runs it on build/'s binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
COUNT=${COUNT:-40000}
BATCH=${BATCH:-1000}
ROUNDS=${ROUNDS:-1}
CORPUS=${BENCH_CORPUS_DIR:-/tmp/homeiq-storage-corpus-$COUNT-$BATCH}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=${LOG_LEVEL:-warn}
set +u
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$BUILD/services/data-storage/homeiq-data-storage")
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator
ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
metric() { curl -s "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'; }
TCK=$(getconf CLK_TCK)

make_corpus() {
  local dir=$TEST_TMP/corpus ps pi pe pt
  mkdir -p "$dir"
  ps=$(free_port); pi=$(free_port); pe=$(free_port); pt=$(free_port)
  start_bg corpus-sim env SIMULATOR_PORT=$ps "$SIM" --rate 1000000 --count "$COUNT" --seed 42
  local sim=$LAST_PID
  wait_http "http://127.0.0.1:$ps/health" 30 || { echo "corpus: the simulator did not start" >&2; exit 1; }
  start_bg corpus-sto env DATA_DIR="$dir/sto" DATA_STORAGE_PORT=$pt "${BINS[0]%%#*}"
  local sto=$LAST_PID
  start_bg corpus-enr env ENRICHMENT_PIPELINE_PORT=$pe DATA_STORAGE_URL="http://127.0.0.1:$pt" "$ENR"
  local enr=$LAST_PID
  start_bg corpus-ing env WEBSOCKET_INGESTION_PORT=$pi DATA_DIR="$dir/ing" ENRICHMENT_PIPELINE_URL="http://127.0.0.1:$pe" \
    HOME_ASSISTANT_URL="http://127.0.0.1:$ps" HOME_ASSISTANT_TOKEN=homeiq-simulator-token "$ING"
  local ing=$LAST_PID
  for p in $pt $pe $pi; do
    wait_healthy "http://127.0.0.1:$p/health" 60 || { echo "corpus: a service on :$p did not get healthy" >&2; exit 1; }
  done
  local got=0 start=$SECONDS
  while (( SECONDS - start < COUNT / 100 + 120 )); do
    got=$(metric "http://127.0.0.1:$pt" homeiq_storage_events_stored_total) || got=0
    got=${got%.*}
    [ "$got" -ge "$COUNT" ] && break
    sleep 0.5
  done
  for p in $ing $enr $sto $sim; do stop_pid "$p" || true; done
  [ "$got" -ge "$COUNT" ] || { echo "corpus: only $got of $COUNT events stored" >&2; exit 1; }
  mkdir -p "$CORPUS.tmp"
  sqlite3 -noheader -list "$dir/sto/events.db" "SELECT record FROM events ORDER BY id" |
    awk -v b="$BATCH" -v out="$CORPUS.tmp" '
      { f = sprintf("%s/b%06d.json", out, int((NR - 1) / b)) }
      (NR - 1) % b == 0 { if (prev) { print "]}" > prev; close(prev) } printf "{\"events\":[%s", $0 > f; prev = f; next }
      { printf ",%s", $0 > f }
      END { if (prev) print "]}" > prev }'
  mv "$CORPUS.tmp" "$CORPUS"
}

if [ ! -d "$CORPUS" ]; then
  echo "# making the corpus: $COUNT events through the pipeline -> $CORPUS" >&2
  make_corpus
fi
nfiles=$(ls "$CORPUS" | wc -l)
nev=$(cat "$CORPUS"/*.json | jq '.events | length' | awk '{ s += $1 } END { print s }')
args=()
for f in "$CORPUS"/*.json; do
  [ ${#args[@]} -gt 0 ] && args+=(--next)
  args+=(-s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' --data-binary @"$f")
  args+=("http://127.0.0.1:PORT/api/v1/events")
done

CLIENTS=${CLIENTS:-1}
par=()
[ "$CLIENTS" -gt 1 ] && par=(--no-progress-meter --parallel --parallel-max "$CLIENTS")
# post_all PORT -> codes summary
post_all() { curl "${par[@]}" "${args[@]//PORT/$1}" | sort | uniq -c | tr '\n' ' '; }
# thread_ticks PID -> "name:ticks ..." per thread (utime+stime; the loop is the thread whose id is PID)
thread_ticks() {
  local t
  for t in /proc/$1/task/*; do
    awk -v pid="$1" -v tid="${t##*/}" -v comm="$(cat "$t/comm" 2>/dev/null)" '{ n = (tid == pid) ? "loop" : comm "/" tid; sub(/.*\) /, ""); print n ":" $12 + $13 }' "$t/stat" 2>/dev/null
  done | tr '\n' ' '
}
# thread_split BEFORE AFTER NEV -> per thread us/event
thread_split() {
  awk -v a="$1" -v b="$2" -v nev="$3" -v tck="$TCK" 'BEGIN {
    n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, ":"); before[kv[1]] = kv[2] }
    n = split(b, y, " "); for (i = 1; i <= n; i++) { split(y[i], kv, ":"); d = kv[2] - before[kv[1]]
      if (d > 0) printf "%s %.1f  ", kv[1], d * 1e6 / tck / nev } }'
}

n=0
for round in $(seq "$ROUNDS"); do
  for spec in "${BINS[@]}"; do
    n=$((n + 1))
    bin=${spec%%#*}
    if [ "$bin" != "$spec" ]; then   # BIN#SQL: the store made, then changed, before the replay
      port=$(free_port)
      start_bg "sto-pre-$n" env DATA_DIR="$TEST_TMP/run-$n" DATA_STORAGE_PORT=$port "$bin"
      wait_healthy "http://127.0.0.1:$port/health" 60 || { echo "$bin did not get healthy" >&2; exit 1; }
      stop_pid "$LAST_PID"
      sqlite3 "$TEST_TMP/run-$n/events.db" "${spec#*#}"
    fi
    port=$(free_port)
    start_bg "sto-$n" env DATA_DIR="$TEST_TMP/run-$n" DATA_STORAGE_PORT=$port "$bin"
    pid=$LAST_PID
    wait_healthy "http://127.0.0.1:$port/health" 60 || { echo "$bin did not get healthy" >&2; exit 1; }
    perf_pid=
    if [ "${PERF:-0}" = 1 ] && [ "$round" = 1 ]; then
      perf record ${PERF_ARGS:--g} -o "$PWD/perf-$n.data" -p "$pid" 2>/dev/null >/dev/null & perf_pid=$!
      sleep 0.5
    fi
    w0=$(awk '/^wchar/ { print $2 }' "/proc/$pid/io"); f0=$(awk '/^syscw/ { print $2 }' "/proc/$pid/io")
    c0=$(cpu_ticks "$pid"); th0=$(thread_ticks "$pid"); t0=$(date +%s.%N)
    codes=$(post_all "$port")
    t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); th1=$(thread_ticks "$pid")
    w1=$(awk '/^wchar/ { print $2 }' "/proc/$pid/io"); f1=$(awk '/^syscw/ { print $2 }' "/proc/$pid/io")
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    stored=$(metric "http://127.0.0.1:$port" homeiq_storage_events_stored_total)
    c2=$(cpu_ticks "$pid"); t2=$(date +%s.%N)
    codes2=$(post_all "$port")
    t3=$(date +%s.%N); c3=$(cpu_ticks "$pid")
    stored2=$(metric "http://127.0.0.1:$port" homeiq_storage_events_stored_total)
    stop_pid "$pid"
    db=$(stat -c %s "$TEST_TMP/run-$n/events.db")   # after the close's checkpoint
    awk -v bin="$spec" -v nev="$nev" -v nf="$nfiles" -v c0="$c0" -v c1="$c1" -v c2="$c2" -v c3="$c3" -v tck="$TCK" \
      -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v st="$stored" -v st2="$stored2" -v codes="$codes" \
      -v codes2="$codes2" -v db="$db" -v w="$((w1 - w0))" -v wc="$((f1 - f0))" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      printf "%s\n  new:     %d events (%d bodies), stored %d, %.0f events/s, storage CPU %.1f us/event  [HTTP %s]\n",
        bin, nev, nf, st, nev / (t1 - t0), (c1 - c0) * 1e6 / tck / nev, codes
      printf "           written %.0f bytes/event (%.2f KiB per 1,000 events = %.0f 4-KiB pages), %.2f write calls/event\n",
        w / nev, w / nev, w / nev * 1000 / 4096, wc / nev
      printf "  re-sent: %d events, stored +%d, %.0f events/s, storage CPU %.1f us/event  [HTTP %s]; db %d bytes; load %s\n",
        nev, st2 - st, nev / (t3 - t2), (c3 - c2) * 1e6 / tck / nev, codes2, db, load }'
    echo "  new events, CPU per thread (us/event): $(thread_split "$th0" "$th1" "$nev")"
  done
done

#!/usr/bin/env bash
# bench/storage_instructions.sh BIN [N] -- instructions per event of data-storage (SQLite) over
# the first N bodies (default 10) of bench/storage_burst.sh's corpus, counted by callgrind.
#
# Why: on this shared 2-vCPU machine CPU time per event moves by +-20 % with the other
# processes' load; an instruction count does not move at all, so two binaries compare
# exactly (it misses what instructions do not show: cache misses, atomic operations,
# the kernel's copies -- keep the CPU figures of storage_burst.sh beside it).
# How: the binary is started under valgrind --tool=callgrind on an empty DATA_DIR, the N
# bodies are posted in order, it is stopped; a start and stop with no body is counted the
# same way and subtracted. Needs the corpus (run bench/storage_burst.sh once) and valgrind.
# Use: BENCH_CORPUS_DIR=/tmp/homeiq-storage-corpus-40000-1000 bench/storage_instructions.sh BIN [N]
set -u
BIN=${1:?usage: storage_instructions.sh BIN [N]}
N=${2:-10}
CORPUS=${BENCH_CORPUS_DIR:-/tmp/homeiq-storage-corpus-40000-1000}
[ -d "$CORPUS" ] || { echo "no corpus in $CORPUS: run bench/storage_burst.sh first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS

count() { # count NBODIES -> total instructions (Ir) from start to stop
  local d port pid f
  d=$(mktemp -d "$TEST_TMP/cg.XXXXXX"); port=$(free_port)
  LOG_LEVEL=warn DATA_DIR=$d DATA_STORAGE_PORT=$port \
    valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$BIN" >"$d/log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$port/health" 120 "$pid" >&2 || return 1
  for f in $(ls "$CORPUS"/*.json | head -n "$1"); do
    curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$f" "http://127.0.0.1:$port/api/v1/events"
  done
  kill -TERM "$pid"; wait "$pid"
  awk '/^summary:|^totals:/ { print $2; exit }' "$d/cg.out"
}
nev=$(cat $(ls "$CORPUS"/*.json | head -n "$N") | jq '.events | length' | awk '{ s += $1 } END { print s }')
base=$(count 0) && total=$(count "$N") || { echo "callgrind run failed" >&2; exit 1; }
awk -v b="$base" -v t="$total" -v n="$nev" -v bin="$BIN" \
  'BEGIN { printf "%s: %d events, %.1fk instructions per event (%.0f total, %.0f for an empty start)\n", bin, n, (t - b) / n / 1000, t, b }'

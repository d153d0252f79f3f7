#!/usr/bin/env bash
# bench/whitespace.sh -- does how the JSON is spaced change what an event costs?
# (issue 15: at most 20 %.) The same HA-shaped events, compact (as HA's orjson
# sends them) and with a space after every ':' and ',' (json.dumps' default,
# bench/json_spaced.py), back to back:
#   1. in process: enrichment's fast path on one 1,000-event body, CPU time per
#      event (bench_fastpath: CLOCK_PROCESS_CPUTIME_ID, no sockets);
#   2. end to end: bench/enrichment.sh both ways (a real enrichment-pipeline and
#      data-storage on SQLite), enrichment's and storage's CPU per event from
#      /proc/PID/stat, and the throughput ratio;
#   3. websocket-ingestion: bench/ingestion_receive.sh both ways (the simulator
#      sends compact or json.dumps-spaced event messages; ingestion spools them),
#      ingestion's CPU per event.
# CPU per event barely depends on machine load; the throughput ratio is only
# meaningful because both runs are back to back.
# Usage: bench/whitespace.sh [BUILD_DIR]   (env BATCHES, default 20; BATCH_SIZE 1000; REPEAT 200;
#        INGEST_EVENTS 200000)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
BATCHES=${BATCHES:-20} BATCH_SIZE=${BATCH_SIZE:-1000} REPEAT=${REPEAT:-200} INGEST_EVENTS=${INGEST_EVENTS:-200000}
FP=$BUILD/tests/enrichment/bench_fastpath
[ -x "$FP" ] || { echo "missing $FP (build first)" >&2; exit 1; }
T=$(mktemp -d /tmp/homeiq-ws.XXXXXX)
trap 'rm -rf "$T"' EXIT

jq -c --argjson n "$BATCH_SIZE" '. as $ex | [range(0; $n) as $j | $ex[$j % 10] | .event.data.entity_id += "_\($j)"]' \
  "$ROOT/tests/enrichment/data/ha_examples.json" >"$T/compact.json"
python3 "$HERE/json_spaced.py" <"$T/compact.json" >"$T/spaced.json"

echo "== 1. in process: enrichment fast path, $BATCH_SIZE events x $REPEAT, 3 alternating runs each (lowest kept)"
us() { sed -n 's/.*, \([0-9.]*\) us\/event.*/\1/p' <<<"$1"; }
for i in 1 2 3; do
  for f in compact spaced; do
    r=$(TZ=Europe/Amsterdam "$FP" fast "$T/$f.json" "$REPEAT"); echo "$f $r"; us "$r" >>"$T/$f.us"
  done
done
awk -v c="$(sort -n "$T/compact.us" | head -1)" -v s="$(sort -n "$T/spaced.us" | head -1)" \
  'BEGIN { printf "in-process ratio spaced/compact: %.2f (%.2f vs %.2f us/event)\n", s / c, s, c }'

echo "== 2. end to end: $BATCHES batches of $BATCH_SIZE, compact then spaced"
BATCHES=$BATCHES BATCH_SIZE=$BATCH_SIZE SPACED=0 "$HERE/enrichment.sh" "$BUILD" | tee "$T/e2e.compact"
BATCHES=$BATCHES BATCH_SIZE=$BATCH_SIZE SPACED=1 "$HERE/enrichment.sh" "$BUILD" | tee "$T/e2e.spaced"
field() { awk -v k="$2" 'index($0, k) == 1 { for (i = 1; i <= NF; i++) if ($i == "->") { print $(i + 1); exit } }' "$1"; }
awk -v ec="$(field "$T/e2e.compact" "enrichment CPU")" -v es="$(field "$T/e2e.spaced" "enrichment CPU")" \
    -v sc="$(field "$T/e2e.compact" "storage CPU")" -v ss="$(field "$T/e2e.spaced" "storage CPU")" \
    -v wc="$(field "$T/e2e.compact" "wall")" -v ws="$(field "$T/e2e.spaced" "wall")" 'BEGIN {
  printf "enrichment CPU/event spaced/compact: %.2f (%s vs %s us)\n", es / ec, es, ec
  printf "storage CPU/event spaced/compact:    %.2f (%s vs %s us)\n", ss / sc, ss, sc
  printf "throughput spaced/compact:           %.2f (back to back)\n", ws / wc
}'

echo "== 3. websocket-ingestion: $INGEST_EVENTS events from the simulator into the spool, compact then spaced"
EVENTS=$INGEST_EVENTS SPACED=0 "$HERE/ingestion_receive.sh" "$BUILD" | tee "$T/ing.compact"
EVENTS=$INGEST_EVENTS SPACED=1 "$HERE/ingestion_receive.sh" "$BUILD" | tee "$T/ing.spaced"
awk -v c="$(field "$T/ing.compact" "ingestion CPU")" -v s="$(field "$T/ing.spaced" "ingestion CPU")" \
  'BEGIN { printf "ingestion CPU/event spaced/compact:  %.2f (%s vs %s us)\n", s / c, s, c }'

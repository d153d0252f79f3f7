#!/usr/bin/env bash
# bench/backfill.sh [BUILD_DIR] [HOURS] [ROWS] -- a long backfill, measured: HA's recorder
# (the simulator's history file) holds ROWS state changes (default 500,000) spread over the
# last HOURS (default 48) for the 44 entities of scenarios/house.json; ingestion starts with
# a high-water mark HOURS ago and reads the whole gap through history/history_during_period
# (windows of BACKFILL_WINDOW_S, chunks of BACKFILL_CHUNK_ENTITIES, defaults), into the real
# pipeline (enrichment -> storage/SQLite). Prints: rows, events backfilled, requests, the
# backfill time, the time until storage holds them all, ingestion's peak RSS (VmHWM) and RSS
# sampled during the run. Release build, loopback; numbers vary with the machine.
set -u
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/build}
HOURS=${2:-48}
ROWS=${3:-500000}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SIM=$B/tools/ha-simulator/homeiq-ha-simulator
ING=$B/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$B/services/enrichment-pipeline/homeiq-enrichment-pipeline
STO=$B/services/data-storage/homeiq-data-storage
for f in "$SIM" "$ING" "$ENR" "$STO"; do [ -x "$f" ] || { echo "missing $f (build first)" >&2; exit 1; }; done
T=$(mktemp -d /tmp/homeiq-bench-backfill.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"; }
trap cleanup EXIT
port() { while :; do local p=$((20000 + RANDOM % 30000)); (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
hget() { curl -s "http://127.0.0.1:$1/health" | jq -r "$2"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# ---- HA's recorder: ROWS rows over HOURS, as the simulator's history file ----------------
NOW=$(date +%s)
START=$((NOW - HOURS * 3600))
jq -r '.entities[] | [.entity_id, ((.attributes // {}) | tojson)] | @tsv' "$SRC/tools/ha-simulator/scenarios/house.json" \
  >"$T/entities.tsv"
echo "== writing $ROWS history rows over $HOURS h for $(wc -l <"$T/entities.tsv") entities"
awk -F'\t' -v rows="$ROWS" -v start="$START" -v span=$((HOURS * 3600 - 60)) '
  { id[NR - 1] = $1; attrs[NR - 1] = $2; n = NR }
  END {
    srand(42)
    for (i = 0; i < rows; i++) {
      e = i % n
      t = start + span * i / rows + rand() * 1e-6
      printf "{\"entity_id\":\"%s\",\"s\":\"%.1f\",\"a\":%s,\"lu\":%.7f,\"lc\":%.7f}\n", id[e], 15 + rand() * 10, attrs[e], t, t
    }
  }' "$T/entities.tsv" >"$T/history.jsonl"

SP=$(port); EP=$(port); DP=$(port); IP=$(port)
DATA_DIR=$T/storage DATA_STORAGE_PORT=$DP "$STO" >"$T/storage.log" 2>&1 & PIDS+=($!)
ENRICHMENT_PIPELINE_PORT=$EP DATA_STORAGE_URL=http://127.0.0.1:$DP "$ENR" >"$T/enrichment.log" 2>&1 & PIDS+=($!)
SIMULATOR_PORT=$SP "$SIM" --history-file "$T/history.jsonl" >"$T/sim.log" 2>&1 & PIDS+=($!)
up() { # PORT PID : waits for /health; fails when the process died (e.g. the port was taken)
  until curl -s -o /dev/null "http://127.0.0.1:$1/health"; do kill -0 "$2" 2>/dev/null || { echo "a process on port $1 died" >&2; exit 1; }; sleep 0.1; done
}
up $DP "${PIDS[0]}"; up $EP "${PIDS[1]}"
until curl -s "http://127.0.0.1:$SP/health" | grep -q ha-simulator; do # (loading the history takes a while)
  kill -0 "${PIDS[2]}" 2>/dev/null || { echo "the simulator died (port $SP taken?)" >&2; exit 1; }; sleep 0.2
done
grep "restored" "$T/sim.log"

# ---- the mark: HOURS ago (hwm-<FNV-1a 64 of the WebSocket URL>, as hwm.c names it) ----------
URL="ws://127.0.0.1:$SP/api/websocket"
h=-3750763034362895579 # 14695981039346656037 as a signed 64-bit integer
for ((i = 0; i < ${#URL}; i++)); do
  c=$(printf '%d' "'${URL:i:1}")
  h=$(( (h ^ c) * 1099511628211 ))
done
mkdir -p "$T/ingestion/spool"
echo "$((START * 1000000)) mark" >"$T/ingestion/spool/hwm-$(printf '%016x' "$h")"

T0=$(date +%s.%N)
HOME_ASSISTANT_URL=http://127.0.0.1:$SP HOME_ASSISTANT_TOKEN=homeiq-simulator-token DATA_DIR=$T/ingestion \
  WEBSOCKET_INGESTION_PORT=$IP ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$EP BACKFILL_OVERLAP_S=0 \
  "$ING" >"$T/ingestion.log" 2>&1 & PIDS+=($!); IPID=$!
up $IP $IPID
MAXRSS=0
while [ "$(hget $IP .backfill.state)" != done ]; do
  r=$(rss_kb $IPID); [ "$r" -gt "$MAXRSS" ] && MAXRSS=$r
  st=$(hget $IP .backfill.state)
  if [ "$st" = unsupported ]; then echo "backfill $st" >&2; tail "$T/ingestion.log" >&2; exit 1; fi
  sleep 0.2
done
T1=$(date +%s.%N)
EVENTS=$(hget $IP .backfill.events)
PEAK_BF=$(hwm_kb $IPID)
echo "== backfill: $(hget $IP '.backfill | {events, requests, failures, windows, entities, duration_s}' | jq -c .)"
while :; do
  n=$(curl -s "http://127.0.0.1:$DP/metrics" | awk '/^homeiq_storage_events_stored_total/ {print $2}')
  [ "${n%.*}" -ge "$EVENTS" ] 2>/dev/null && break
  r=$(rss_kb $IPID); [ "$r" -gt "$MAXRSS" ] && MAXRSS=$r
  sleep 0.5
done
T2=$(date +%s.%N)
echo "rows in HA's history: $ROWS over $HOURS h; backfilled events: $EVENTS"
echo "backfill time (subscribe -> done, incl. BACKFILL_DELAY_S): $(awk "BEGIN{printf \"%.1f\", $T1 - $T0}") s"
echo "until storage holds them all: $(awk "BEGIN{printf \"%.1f\", $T2 - $T0}") s"
echo "connections cut during the backfill (an answer over HA_MAX_MESSAGE_BYTES): $(grep -c 'ended during a history request' "$T/ingestion.log")"
echo "ingestion peak RSS (VmHWM) at backfill end: $((PEAK_BF / 1024)) MB; largest sampled RSS: $((MAXRSS / 1024)) MB; idle now: $(( $(rss_kb $IPID) / 1024 )) MB"

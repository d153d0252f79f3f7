#!/usr/bin/env bash
# bench/cpu_per_event.sh -- issue 15: CPU per event of each service in the SQLite
# burst, for one build or two builds back to back (old vs new at the same moment).
#
# Why: on a shared machine events/s mean little, CPU per event (utime+stime from
# /proc/PID/stat over a known number of events, as bench/run measures it) changes
# much less with load; comparing two builds alternately, round by round, cancels
# most of what load still does.
#
# Usage: bench/cpu_per_event.sh [BUILD_A [BUILD_B]]   (default: build/ only)
#   env ROUNDS (3), COUNT (50000 events per burst), BENCH_* passed on to bench/run.
# Prints each round's µs/event (ingestion / enrichment / storage) and the medians.
# `make bench-cpu` runs it on build/; for old vs new, build the old commit in
# another directory and give both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=${1:-$ROOT/build}
B=${2:-}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-50000}
T=$(mktemp -d /tmp/homeiq-cpu.XXXXXX)
trap 'rm -rf "$T"' EXIT

run_one() { # BUILD TAG ROUND
  local dir="$T/$2-$3"
  mkdir -p "$dir"
  BUILD=$1 BENCH_CASES=burst BENCH_BACKENDS=sqlite BENCH_BURST_COUNT=$COUNT BENCH_RESULTS_DIR="$dir" \
    BENCH_DOC="$dir/doc.md" "$ROOT/bench/run" >"$dir/log" 2>&1 || { echo "bench/run failed ($1):" >&2; tail -20 "$dir/log" >&2; exit 1; }
  jq -r --arg tag "$2" --arg round "$3" '.results[] | select(.case == "burst") |
    "\($tag) round \($round): \(.stored) stored, \(.lost) lost, \(.duplicates) duplicates, µs/event " +
    "ingestion \(.cpu_s_per_1000.ingestion * 1000 | . * 10 | round / 10) " +
    "enrichment \(.cpu_s_per_1000.enrichment * 1000 | . * 10 | round / 10) " +
    "storage \(.cpu_s_per_1000.storage * 1000 | . * 10 | round / 10)"' "$dir"/[0-9]*.json | tee -a "$T/$2.lines"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

summary() { # TAG
  local f="$T/$1.lines"
  printf '%s median µs/event over %s rounds (load %s): ingestion %s, enrichment %s, storage %s\n' "$1" "$ROUNDS" \
    "$(cut -d' ' -f1 /proc/loadavg)" \
    "$(sed -E 's/.*ingestion ([0-9.]+).*/\1/' "$f" | median)" \
    "$(sed -E 's/.*enrichment ([0-9.]+).*/\1/' "$f" | median)" \
    "$(sed -E 's/.*storage ([0-9.]+).*/\1/' "$f" | median)"
}

for r in $(seq 1 "$ROUNDS"); do
  run_one "$A" A "$r"
  [ -n "$B" ] && run_one "$B" B "$r"
done
echo "A = $A"
summary A
if [ -n "$B" ]; then
  echo "B = $B"
  summary B
fi

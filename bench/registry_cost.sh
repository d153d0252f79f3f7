#!/usr/bin/env bash
# bench/registry_cost.sh -- issue 11's cost figure: enrichment CPU per event with registry
# context against today's without it, measured back to back so machine load hits all
# variants alike.
#
# Runs bench/enrichment.sh ROUNDS times in turn for:
#   base     BASE_BUILD (e.g. a build of the commit before issue 11), events without context
#   plain    BUILD, events without context (REGISTRY=0)
#   context  BUILD, every event with websocket-ingestion's context (REGISTRY=1)
# and prints each run's enrichment CPU us/event, then per variant the median, and the
# context/base and context/plain ratios. CPU time (utime+stime of the process, 10 ms
# ticks), not wall time: load changes it far less.
# Usage: bench/registry_cost.sh BASE_BUILD [BUILD] [ROUNDS]   (env BATCHES, BATCH_SIZE as enrichment.sh)
#   e.g. git worktree add /tmp/pre11 bc6f40c && cmake -S /tmp/pre11 -B /tmp/pre11/build
#        -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build /tmp/pre11/build --target
#        homeiq-enrichment-pipeline homeiq-data-storage && bench/registry_cost.sh /tmp/pre11/build
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${1:?usage: registry_cost.sh BASE_BUILD [BUILD] [ROUNDS]}
BUILD=${2:-$HERE/../build}
ROUNDS=${3:-3}
export BATCHES=${BATCHES:-30}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for v in base plain context; do
    case $v in
      base) b=$BASE reg=0 ;;
      plain) b=$BUILD reg=0 ;;
      context) b=$BUILD reg=1 ;;
    esac
    us=$(REGISTRY=$reg "$HERE/enrichment.sh" "$b" | awk '/^enrichment CPU:/ { print $6 }')
    echo "round $r $v: ${us} us/event"
    echo "$v $us" >>"$out"
  done
done
med() { grep "^$1 " "$out" | cut -d' ' -f2 | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mb=$(med base) mp=$(med plain) mc=$(med context)
echo "median us/event over $ROUNDS runs: base $mb, plain $mp, context $mc"
awk -v b="$mb" -v p="$mp" -v c="$mc" 'BEGIN {
  printf "context / base  = %.3f  (issue 11 asks <= 1.10)\n", c / b
  printf "context / plain = %.3f\n", c / p }'

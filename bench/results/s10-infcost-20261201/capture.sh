#!/usr/bin/env bash
cd /work/wt/infcost
cp docs/BENCHMARKS.md /tmp/infcost/doc.md
for s in default slim slimflush; do
  case $s in
    default) envs=();;
    slim) envs=(INFLUXDB_EVENT_FIELDS=slim);;
    slimflush) envs=(INFLUXDB_EVENT_FIELDS=slim INFLUXDB_STATISTICS_FLUSH_MS=1000);;
  esac
  echo "$s start $(date -u +%T) $(cat /proc/loadavg)"
  env "${envs[@]}" BUILD=/tmp/infcost/build BENCH_INFLUX_CAPTURE=/tmp/infcost/cap/$s.txt BENCH_BURST_COUNT=100000 \
    BENCH_BACKENDS=influxdb BENCH_CASES=burst BENCH_DOC=/tmp/infcost/doc.md BENCH_RESULTS_DIR=/tmp/infcost/res/$s \
    bench/run > /tmp/infcost/cap-$s.out 2> /tmp/infcost/cap-$s.err
  echo "$s end rc=$? $(date -u +%T) $(cat /proc/loadavg)"
done

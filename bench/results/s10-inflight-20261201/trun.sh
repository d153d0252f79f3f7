#!/bin/bash
# trun.sh NAME BUILD CASES [VAR=V...]: one bench run, trace in /tmp/inflight-res/NAME.trace
name=$1 build=$2 cases=$3; shift 3
cd /work/wt/inflight
rm -f /tmp/inflight-res/$name.trace
l0=$(cut -d' ' -f1 /proc/loadavg)
env "$@" INFLUX_TRACE=/tmp/inflight-res/$name.trace BUILD=$build BENCH_RESULTS_DIR=/tmp/inflight-res/$name BENCH_DOC=/tmp/inflight-res/$name.md BENCH_BACKENDS=influxdb BENCH_CASES="$cases" bench/run > /tmp/inflight-res/$name.log 2>&1
l1=$(cut -d' ' -f1 /proc/loadavg)
echo "== $name load $l0 -> $l1 ($*)"
/tmp/inflight-res/sum.sh /tmp/inflight-res/$name/*.json
[ -f /tmp/inflight-res/$name.trace ] && grep ^L /tmp/inflight-res/$name.trace | tail -1 | awk '{t=0; for(i=3;i<=8;i++) t+=$i; printf "all-requests outstanding 0/1/2/3/4/5+: "; for(i=3;i<=8;i++) printf "%.0f%% ", 100*$i/t; printf " event writes 0/1/2/3+: "; for(i=10;i<=13;i++) printf "%.0f%% ", 100*$i/t; printf " stats writes 0/1/2: "; for(i=15;i<=17;i++) printf "%.0f%% ", 100*$i/t; printf " total %.1fs\n", t/1e6}'
true

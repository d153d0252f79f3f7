#!/bin/sh
# sum.sh FILE... : one line per case
for f in "$@"; do jq -r --arg f "$(basename $(dirname $f))" '.results[] | [$f, .case, (.events_per_s|floor), .lost, .duplicates, ((.cpu_s_per_1000.storage//0)*1000*100|round/100), (.influxd_cpu_s_per_1000//0|.*10000|round/10000), ((.rss_peak_kb.storage//0)/1024|.*10|round/10), (.latency_ms.p99//0), (.influxd_asked_per_1000.writeReq//0), (.influxd_asked_per_1000.pointsWrittenOK//0)] | @tsv' "$f"; done

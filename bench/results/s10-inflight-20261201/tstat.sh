#!/bin/bash
# tstat.sh TRACE: medians (ms) per batch of the phases, from the J and A lines
f=$1
grep ^J $f | awk '$3=="items=1000"{for(i=5;i<=12;i++){split($i,a,"=");v[a[1]]=a[2]} 
 print (v["assigned"]-v["start"])/1000, (v["allbuilt"]-v["assigned"])/1000, (v["written"]-v["allbuilt"])/1000, (v["finish"]-v["written"])/1000, (v["stats"]-v["finish"])/1000, (v["cb"]-v["stats"])/1000, v["cb"]/1000}' > /tmp/inflight-res/_ph.txt
n=$(wc -l < /tmp/inflight-res/_ph.txt)
printf "batches %d; median ms: " $n
for c in 1 2 3 4 5 6 7; do sort -n -k$c /tmp/inflight-res/_ph.txt | awk -v c=$c -v n=$n 'NR==int(n/2)+1{printf "%s ", $c}'; done
echo "(check, build, write RTT, wait-for-older, statistics, registry+rest, in storage total)"
grep ^A $f | awk '{split($3,a,"="); print a[2]/1000}' | sort -n | awk '{v[NR]=$1} END {printf "gate wait before admit: median %.1f ms, p90 %.1f ms\n", v[int(NR/2)+1], v[int(NR*0.9)]}'

#!/usr/bin/env bash
# everything re-batched 5,000 lines a request (per db/rp): what FORWARD_BATCH_MAX=5000-sized writes would leave
cd /work/wt/infcost
C=/tmp/infcost/cap
items=(
 "slimflush|replay rebatch:5000"
 "slimflush|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
 "default|replay rebatch:5000"
 "default|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
)
n=${#items[@]}
for r in 1 2; do
  if [ $((r % 2)) = 0 ]; then order=$(seq $((n-1)) -1 0); else order=$(seq 0 $((n-1))); fi
  for i in $order; do
    cap=${items[$i]%%|*}; spec=${items[$i]#*|}
    out=$(bench/influx_replay.sh $C/$cap.txt "$spec" 2>>/tmp/infcost/replay3.err | tail -1)
    jq -c --arg cap "$cap" --arg spec "$spec" --argjson r $r --arg t "$(date -u +%T)" '{round: $r, t: $t, cap: $cap, spec: $spec} + .' <<<"$out" >> /tmp/infcost/replay3.jsonl
  done
done
echo done >> /tmp/infcost/replay3.jsonl

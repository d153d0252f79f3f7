#!/usr/bin/env bash
# reads and pace: one JSON line per spec into /tmp/infcost/replay2.jsonl
cd /work/wt/infcost
C=/tmp/infcost/cap
items=(
 "default|replay asis"
 "default|replay asis REPLAY_READS=1"
 "default|replay asis REPLAY_PACE=3000"
 "default|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
 "default|replay rebatch:5000 REPLAY_ONLY=home_assistant_events REPLAY_PACE=10000"
 "default|replay rebatch:5000 REPLAY_ONLY=home_assistant_events REPLAY_PACE=3000"
)
n=${#items[@]}
for r in $(seq 1 ${ROUNDS:-3}); do
  if [ $((r % 2)) = 0 ]; then order=$(seq $((n-1)) -1 0); else order=$(seq 0 $((n-1))); fi
  for i in $order; do
    cap=${items[$i]%%|*}; spec=${items[$i]#*|}
    out=$(bench/influx_replay.sh $C/$cap.txt "$spec" 2>>/tmp/infcost/replay2.err | tail -1)
    jq -c --arg cap "$cap" --arg spec "$spec" --argjson r $r --arg t "$(date -u +%T)" '{round: $r, t: $t, cap: $cap, spec: $spec} + .' <<<"$out" >> /tmp/infcost/replay2.jsonl
  done
done
echo done >> /tmp/infcost/replay2.jsonl

#!/usr/bin/env bash
# rounds of replays, alternating order; one JSON line per spec into /tmp/infcost/replay.jsonl
cd /work/wt/infcost
C=/tmp/infcost/cap
items=(
 "default|replay asis"
 "default|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
 "slim|replay asis"
 "slim|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
 "slimflush|replay asis"
 "slimflush|replay rebatch:5000 REPLAY_ONLY=home_assistant_events"
 "default|replay asis REPLAY_ONLY=home_assistant_events"
 "default|replay asis REPLAY_DROP=homeiq_statistics"
)
for r in $(seq 1 ${ROUNDS:-3}); do
  if [ $((r % 2)) = 0 ]; then order=$(seq 7 -1 0); else order=$(seq 0 7); fi
  for i in $order; do
    cap=${items[$i]%%|*}; spec=${items[$i]#*|}
    out=$(bench/influx_replay.sh $C/$cap.txt "$spec" 2>>/tmp/infcost/replay.err | tail -1)
    jq -c --arg cap "$cap" --arg spec "$spec" --argjson r $r --arg t "$(date -u +%T)" '{round: $r, t: $t, cap: $cap, spec: $spec} + .' <<<"$out" >> /tmp/infcost/replay.jsonl
  done
done
echo done >> /tmp/infcost/replay.jsonl

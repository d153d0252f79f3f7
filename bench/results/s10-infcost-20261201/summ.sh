#!/usr/bin/env bash
# per (capture, spec): the runs in round order and the mean (writes only, and +10 s)
for f in "$@"; do grep -h '^{' "$f"; done | jq -s -r '
  group_by(.cap + "|" + .spec)[] |
  "\(.[0].cap) | \(.[0].spec) | \(.[0].requests_per_1000) /w, \(.[0].reads_per_1000 // 0) reads, \((.[0].bytes_per_1000/1000)|round) KB | " +
  ([.[] | "r\(.round):\(.influxd_cpu_s_per_1000)"] | join(" ")) +
  " | mean \(([.[].influxd_cpu_s_per_1000] | add / length * 10000 | round) / 10000)" +
  " | +10s mean \(([.[].influxd_cpu_s_per_1000_plus_10s] | add / length * 10000 | round) / 10000)" +
  " | wall \(([.[].wall_s] | add / length * 10 | round) / 10) s | load \([.[].load] | join(","))"'

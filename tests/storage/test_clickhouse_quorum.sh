#!/usr/bin/env bash
# test_clickhouse_quorum.sh STORAGE_BIN -- CLICKHOUSE_INSERT_QUORUM=2 on the loopback
# cluster (ZooKeeper; shard 1 = the replica pair ch1 + ch2, shard 2 = ch3 + ch4 here:
# 18.16's synchronous Distributed INSERT checks the quorum on every shard, even one
# that gets no row of the batch, so every shard needs N replicas), and the
# registry (schema v3) through the Distributed tables.
#
# Why: without a quorum a batch is acknowledged once one replica of each shard has
# it; the replica pair's second copy follows asynchronously, so losing ch1's disk
# right after the ack could lose the batch. With the quorum, storage answers 200 only
# when both replicas of shard 1 have it, and with one replica down it answers 503
# (the batch is retried, nothing lost) instead of acknowledging a single copy.
# Checks:
#  - every batch's 200 comes with the rows already on both replicas (read at once on
#    ch2, no waiting);
#  - ch2 SIGKILLed: a batch -> 503 (on the code before: 200 with one copy), again
#    503 on the retry (its rows written on ch1 alone are not taken as stored);
#  - ch2 back: the retried batch -> 200, on both replicas at that moment; exact
#    reads hold every event once;
#  - registry through the Distributed table: GET /api/v1/registry and ?label=.
# Entities are picked on shard 1 (cityHash64(home, entity) % 2 = 0), so the replica
# counts below are those of the pair that loses a replica.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/clickhouse.sh"
. "$here/../lib/zookeeper.sh"
BIN=${1:?usage: test_clickhouse_quorum.sh /path/to/homeiq-data-storage}
N=200

zookeeper_start || bail "zookeeper starts"
CH_SHARD2_PAIR=1 clickhouse_cluster_start || bail "the ClickHouse cluster starts (shard 1 = ch1 + ch2, shard 2 = ch3 + ch4)"

PORT=$(free_port) U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT STORAGE_BACKEND=clickhouse CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_DATABASE=homeiq_quorum \
  CLICKHOUSE_URL="http://127.0.0.1:$CH_HTTP_ch1,http://127.0.0.1:$CH_HTTP_ch3" CLICKHOUSE_PING_INTERVAL_MS=200 \
  CLICKHOUSE_TIMEOUT_MS=20000 CLICKHOUSE_INSERT_QUORUM=2 DATA_DIR="$TEST_TMP/data" start_bg storage "$BIN"
STO_PID=$LAST_PID
wait_healthy "$U/health" 120 "$STO_PID" || bail "data-storage healthy (schema created ON CLUSTER)"

# 20 entities of home q on shard 1
ENTS=$(clickhouse_query ch1 "SELECT arrayStringConcat(groupArray(e), ' ') FROM (SELECT concat('sensor.q', toString(number)) AS e FROM system.numbers LIMIT 200) WHERE cityHash64('q', e) % 2 = 0 LIMIT 20 FORMAT TSV")
ENTS=$(tr ' ' '\n' <<<"$ENTS" | head -n 20 | paste -sd' ')
check_eq "20 entities of home q on shard 1" 20 "$(wc -w <<<"$ENTS")"
gen() { # FROM COUNT -> a batch of home q's entities, with a registry context
  jq -nc --arg ents "$ENTS" --argjson from "$1" --argjson n "$2" '($ents | split(" ")) as $e | {events: [range($from; $from + $n) as $i |
    {event_type:"state_changed", entity_id:$e[$i % ($e | length)], state:"\($i)", context_id:"q\($i)",
     time_fired:("2025-05-01T00:00:00Z" | fromdateiso8601 + $i | todate | sub("Z$"; ".000000Z")),
     area_id:(if $i % 2 == 0 then "kitchen" else "hall" end), floor_id:"ground", device_id:"dev\($i % 20 % 3)",
     platform:"zha", labels:(if $i % 5 == 0 then ["five"] else [] end)}]}'
}
post() { # FILE -> "code stored duplicates"
  local out; out=$(curl -s -m 60 -w ' %{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' \
    -H 'X-HomeIQ-Home: q' --data-binary @"$1")
  echo "${out##* } $(jq -r '"\(.stored) \(.duplicates)"' <<<"${out% *}" 2>/dev/null)"
}
on() { clickhouse_query "$1" "SELECT uniqExact(event_id) FROM homeiq_quorum.events_local WHERE home_id = 'q' FORMAT TSV"; }

gen 0 "$N" >"$TEST_TMP/b1.json"
r=$(post "$TEST_TMP/b1.json")
check_eq "quorum 2, both replicas up: the batch -> 200, all stored" "200 $N 0" "$r"
check_eq "... and at the 200 both replicas hold it (ch1)" "$N" "$(on ch1)"
check_eq "... (ch2, read at once)" "$N" "$(on ch2)"
check_eq "... shard 2 holds none of home q's entities" 0 "$(on ch3)"

gen "$N" "$N" >"$TEST_TMP/b2.json"
clickhouse_kill ch2
r=$(post "$TEST_TMP/b2.json")
check_eq "ch2 down: a batch -> 503, not acknowledged with one copy" 503 "${r%% *}"
r=$(post "$TEST_TMP/b2.json")
check_eq "ch2 down: the retry -> 503 again (rows on ch1 alone are not stored)" 503 "${r%% *}"
clickhouse_restart ch2 || bail "ch2 restarts"
retry_ok() { r=$(post "$TEST_TMP/b2.json"); [ "${r%% *}" = 200 ]; }
check "ch2 back: the retried batch -> 200" wait_for 120 retry_ok
check_eq "... at that 200 ch2 holds both batches" $((2 * N)) "$(on ch2)"
check_eq "... and ch1" $((2 * N)) "$(on ch1)"
check_eq "exact reads: every event once" "$((2 * N)) $((2 * N))" \
  "$(curl -s "$U/api/v1/events?home=q&limit=10000" | jq -r '"\(.count) \([.events[].event_id] | unique | length)"')"
set -- $(post "$TEST_TMP/b2.json")
check_eq "once more: all $N duplicates" "200 0 $N" "$*"

# the registry through the Distributed tables (schema v3 ON CLUSTER)
R=$(curl -s "$U/api/v1/registry?home=q")
check_eq "registry: the 20 entities of home q" 20 "$(jq '.entities | length' <<<"$R")"
E0=${ENTS%% *}
T() { jq -r --argjson i "$1" -n '"2025-05-01T00:00:00Z" | fromdateiso8601 + $i | todate | sub("Z$"; ".000000Z")'; }
check_eq "registry: $E0 (events 0, 20, ...) in the kitchen since event 0, last seen at event $((2 * N - 20)), home q" \
  "kitchen $(T 0) $(T $((2 * N - 20))) q" \
  "$(jq -r --arg e "$E0" '.entities[] | select(.entity_id == $e) | "\(.area_id) \(.since) \(.last_seen) \(.home_id)"' <<<"$R")"
check_eq "events?label=five&home=q: every fifth event" $((2 * N / 5)) \
  "$(curl -s "$U/api/v1/events?home=q&label=five&limit=10000" | jq .count)"
check_eq "events?area=hall&device=dev1&floor=ground&platform=zha" \
  "$(jq -n --argjson n $((2 * N)) '[range(0; $n) | select(. % 2 == 1 and . % 20 % 3 == 1)] | length')" \
  "$(curl -s "$U/api/v1/events?home=q&area=hall&device=dev1&floor=ground&platform=zha&limit=10000" | jq .count)"

stop_pid "$STO_PID"; check_eq "storage: SIGTERM exit status 0" 0 $?
for n in ch1 ch2 ch3 ch4; do clickhouse_stop "$n"; done
zookeeper_stop
finish

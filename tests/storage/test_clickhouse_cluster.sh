#!/usr/bin/env bash
# test_clickhouse_cluster.sh STORAGE_BIN [EVENTS_PER_HOME] -- STORAGE_BACKEND=clickhouse
# with CLICKHOUSE_CLUSTER on a real loopback cluster (issue 18): ZooKeeper, three
# clickhouse-servers = shard 1 (a replica pair ch1 + ch2) and shard 2 (ch3);
# data-storage creates the schema ON CLUSTER (Distributed over
# ReplicatedReplacingMergeTree) and writes with insert_distributed_sync.
# Checks: 3 homes with the same entity ids all stored once, rows on both
# shards, merged answers = per-shard sums, the replica holds its shard's rows;
# shard 2 SIGKILLed -> 503 (never a 200 for a batch not fully stored), back ->
# the retried batch completes, nothing lost or doubled; the first URL's server
# (a shard-1 replica) SIGKILLed -> storage fails over to the next URL and the
# batch is stored through the other replica.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/clickhouse.sh"
. "$here/../lib/zookeeper.sh"
BIN=${1:?usage: test_clickhouse_cluster.sh /path/to/homeiq-data-storage [EVENTS_PER_HOME]}
PER_HOME=${2:-2000}
BATCH=500
jqe() { jq -e "$@" >/dev/null; }

zookeeper_start || bail "zookeeper starts"
clickhouse_cluster_start || bail "the ClickHouse cluster starts (shard 1 = ch1 + ch2, shard 2 = ch3)"
check_eq "the cluster has 3 hosts in 2 shards" "3 2" \
  "$(clickhouse_query ch1 "SELECT count(), uniqExact(shard_num) FROM system.clusters WHERE cluster = 'homeiq' FORMAT TSV" | tr '\t' ' ')"

PORT=$(free_port)
U=http://127.0.0.1:$PORT
# (CLICKHOUSE_URL with trailing / and spaces: each server's URL is trimmed)
DATA_STORAGE_PORT=$PORT STORAGE_BACKEND=clickhouse CLICKHOUSE_CLUSTER=homeiq CLICKHOUSE_DATABASE=homeiq_cluster \
  CLICKHOUSE_URL="http://127.0.0.1:$CH_HTTP_ch1/, http://127.0.0.1:$CH_HTTP_ch3// " CLICKHOUSE_PING_INTERVAL_MS=200 \
  CLICKHOUSE_TIMEOUT_MS=20000 DATA_DIR="$TEST_TMP/data" start_bg storage "$BIN"
STO_PID=$LAST_PID
wait_healthy "$U/health" 120 "$STO_PID" || bail "data-storage healthy (schema created ON CLUSTER)"
for n in ch1 ch2 ch3; do
  check_eq "$n: the 7 tables of schema v2 exist (v1 + statistics, statistics_local)" 7 \
    "$(clickhouse_query $n "SELECT count() FROM system.tables WHERE database = 'homeiq_cluster' FORMAT TSV")"
done
for n in ch1 ch2 ch3; do
  check_eq "$n: events_local is ReplicatedReplacingMergeTree, events Distributed" "Distributed ReplicatedReplacingMergeTree" \
    "$(clickhouse_query $n "SELECT engine FROM system.tables WHERE database = 'homeiq_cluster' AND name IN ('events','events_local') ORDER BY name FORMAT TSV" | grep . | paste -sd' ')"
done

# 3 homes, the same 50 entity ids and times in each
gen() { # HOME FROM COUNT -> batch file
  jq -nc --arg h "$1" --argjson from "$2" --argjson n "$3" '{events: [range($from; $from + $n) as $i |
    {event_type:"state_changed", entity_id:"sensor.e\($i % 50)", state:"\($i)",
     time_fired:("2025-04-01T00:00:00Z" | fromdateiso8601 + $i | todate | sub("Z$"; ".000000Z")), context_id:"c\($i)"}]}'
}
post() { # HOME FILE -> "code stored duplicates"
  local out; out=$(curl -s -w ' %{http_code}' -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' \
    -H "X-HomeIQ-Home: $1" --data-binary @"$2")
  echo "${out##* } $(jq -r '"\(.stored) \(.duplicates)"' <<<"${out% *}" 2>/dev/null)"
}
ok=1 stored=0
for h in h1 h2 h3; do
  for ((k = 0; k < PER_HOME; k += BATCH)); do
    gen "$h" "$k" "$BATCH" >"$TEST_TMP/b.json"
    # a 503 is a legal answer (the caller retries: that is the contract), e.g. a
    # query timing out on this loaded machine; anything else is a failure
    for try in 1 2 3 4 5 6 7 8 9 10; do
      r=$(post "$h" "$TEST_TMP/b.json"); set -- $r
      [ "$1" = 503 ] || break
      echo "# $h $k: 503, retrying"; sleep 1
    done
    [ "$1" = 200 ] || { ok=0; echo "# $h $k: $r"; }
    [ "$1" = 200 ] && stored=$((stored + $2))
  done
done
TOTAL=$((3 * PER_HOME))
check "every batch of 3 homes answered 200" [ $ok = 1 ]
check_eq "$TOTAL events stored" "$TOTAL" "$stored"
local_count() { clickhouse_query "$1" "SELECT count() FROM homeiq_cluster.events_local FINAL FORMAT TSV"; }
s1=$(local_count ch1); s3=$(local_count ch3)
check "rows on both shards (shard 1: $s1, shard 2: $s3)" [ "$s1" -gt 0 -a "$s3" -gt 0 ]
check_eq "per-shard rows add up to $TOTAL" "$TOTAL" $((s1 + s3))
replica_synced() { [ "$(local_count ch2)" = "$(local_count ch1)" ]; }
check "the replica ch2 holds shard 1's rows" wait_for 60 replica_synced
# count_of FILTER : events in the store (paged); a page that is not a 200 with a
# count is asked again (a loaded machine may time a query out), 30 times at most.
count_of() { local n=0 off=0 c tries
  while :; do
    tries=0
    until c=$(curl -s "$U/api/v1/events?limit=10000&offset=$off$1" | jq -e .count 2>/dev/null); do
      tries=$((tries + 1)); [ $tries -ge 30 ] && { echo "unreadable"; return 1; }; sleep 1
    done
    n=$((n + c)); [ "$c" -lt 10000 ] && break; off=$((off + c))
  done
  echo $n; }
check_eq "the merged answer (Distributed) = the per-shard sum" "$TOTAL" "$(count_of "")"
for h in h1 h2 h3; do check_eq "home=$h: $PER_HOME" "$PER_HOME" "$(count_of "&home=$h")"; done
check_eq "a home's entity is on one shard only (sharded by home + entity)" 0 \
  "$(clickhouse_query ch1 "SELECT count() FROM (SELECT home_id, entity_id FROM homeiq_cluster.events_local GROUP BY home_id, entity_id) a ANY INNER JOIN (SELECT home_id, entity_id FROM remote('127.0.0.1:$CH_TCP_ch3', homeiq_cluster, events_local) GROUP BY home_id, entity_id) b USING (home_id, entity_id) FORMAT TSV")"

# ---- shard 2 down ----------------------------------------------------------
gen h1 "$PER_HOME" "$BATCH" >"$TEST_TMP/late.json"
clickhouse_kill ch3
r=$(post h1 "$TEST_TMP/late.json")
check_eq "shard 2 down: a batch touching it -> 503" 503 "${r%% *}"
r=$(post h1 "$TEST_TMP/late.json")
check_eq "shard 2 down: the retry -> 503 again (never a 200 for a batch not stored)" 503 "${r%% *}"
shard_reported() { h=$(curl -s -w ' %{http_code}' "$U/health")
  [ "${h##* } $(jq -r .reason <<<"${h% *}")" = "503 clickhouse_shard_unreachable" ]; }
check "shard 2 down: /health 503 clickhouse_shard_unreachable (the probe reads every shard)" wait_for 20 shard_reported
check "... its cluster_error names the shard's server (127.0.0.1:$CH_TCP_ch3)" grep -q "127.0.0.1:$CH_TCP_ch3" <<<"$(jq -r .backend.cluster_error <<<"${h% *}")"
check "... and the failed write's last_error names it too" grep -q "$CH_TCP_ch3" <<<"$(jq -r .backend.last_error <<<"${h% *}")"
clickhouse_restart ch3 || bail "ch3 restarts"
retry_ok() { r=$(post h1 "$TEST_TMP/late.json"); [ "${r%% *}" = 200 ]; }
check "shard 2 back: the retried batch is stored" wait_for 60 retry_ok
health_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")" = 200 ]; }
check "shard 2 back: /health 200 (the probe reads every shard again)" wait_for 20 health_ok
set -- $(post h1 "$TEST_TMP/late.json")
check_eq "and once more: all $BATCH duplicates" "200 0 $BATCH" "$*"
TOTAL=$((TOTAL + BATCH))
check_eq "nothing lost, nothing doubled: $TOTAL in exact reads" "$TOTAL" "$(count_of "")"
check_eq "event ids unique in the merged answer" "$TOTAL" \
  "$(for off in $(seq 0 10000 $TOTAL); do curl -s "$U/api/v1/events?limit=10000&offset=$off" | jq -r '.events[].event_id'; done | sort -u | wc -l)"

# ---- the first URL's server (a shard-1 replica) down: failover -------------
gen h2 "$PER_HOME" "$BATCH" >"$TEST_TMP/fo.json"
clickhouse_kill ch1
fo_ok() { r=$(post h2 "$TEST_TMP/fo.json"); [ "${r%% *}" = 200 ]; }
check "ch1 down: storage fails over to ch3 and stores the batch through replica ch2" wait_for 60 fo_ok
check "health names the server in use (ch3)" jqe --arg u "http://127.0.0.1:$CH_HTTP_ch3" '.backend.url == $u' \
  <<<"$(curl -s "$U/health")"
TOTAL=$((TOTAL + BATCH))
check_eq "exact reads through ch3: $TOTAL" "$TOTAL" "$(count_of "")"
clickhouse_restart ch1 || bail "ch1 restarts"
check "ch1 back: it catches up with replica ch2" wait_for 60 replica_synced

stop_pid "$STO_PID"; rc=$?
check_eq "storage: SIGTERM exit status 0" 0 $rc
for n in ch1 ch2 ch3; do clickhouse_stop "$n"; done
zookeeper_stop
finish

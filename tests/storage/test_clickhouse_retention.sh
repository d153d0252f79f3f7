#!/usr/bin/env bash
# tests/storage/test_clickhouse_retention.sh -- RETENTION_DAYS on
# STORAGE_BACKEND=clickhouse (issue 18) against a real clickhouse-server.
#
# Why: expired months must go as whole partitions, the rest of the cut-off
# month by a delete, events after the cut-off must stay, and an expired
# event must never be answered again -- also when its rows come back (18.16
# can restore dropped parts after a restart within old_parts_lifetime; here
# a returned row is simulated by inserting it behind data-storage's back,
# and the server is restarted once).
# Usage: test_clickhouse_retention.sh /path/to/homeiq-data-storage
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/clickhouse.sh"
BIN=${1:?usage: test_clickhouse_retention.sh homeiq-data-storage}
export LOG_LEVEL=warn STORAGE_BACKEND=clickhouse CLICKHOUSE_DATABASE=ret CLICKHOUSE_PING_INTERVAL_MS=200

clickhouse_start ch || bail "clickhouse-server starts"
q() { clickhouse_query ch "$1"; }
jqe() { jq -e "$@" >/dev/null; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
rec() { printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"1","value":1,"context_id":"r-%s-%s"}' "$1" "$(iso "$2")" "$1" "$2"; }
NOW=$(date +%s)
CUT=$(( NOW / 3600 * 3600 - 30 * 86400 ))   # RETENTION_DAYS=30: a whole hour
OLD=$(( NOW - 400 * 86400 ))
B="[$(rec sensor.old $OLD),$(rec sensor.old $((OLD + 60))),$(rec sensor.old $((OLD + 120)))"
B="$B,$(rec sensor.edge $((CUT - 60))),$(rec sensor.edge $((CUT - 7200)))"
B="$B,$(rec sensor.keep $((CUT + 7200))),$(rec sensor.keep $((CUT + 3600 * 5))),$(rec sensor.keep $NOW)]"

PORT=$(free_port) U=http://127.0.0.1:$PORT
DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage (keep everything) is healthy" wait_healthy "$U/health" 60
check_eq "8 events stored, 3 of them 400 days old" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$B" "$U/api/v1/events")"
check_eq "all 8 readable without retention" 8 "$(curl -s "$U/api/v1/events?limit=100" | jq .count)"
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?

OLDP=$(q "SELECT toYYYYMM(toDateTime($OLD))")
check "the old events have their own partition ($OLDP)" test \
  "$(q "SELECT count() FROM system.parts WHERE database = 'ret' AND table = 'events' AND active AND partition = '$OLDP'")" -gt 0

RETENTION_DAYS=30 PURGE_INTERVAL_MS=300 DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
check "data-storage with RETENTION_DAYS=30 is healthy" wait_healthy "$U/health" 60
check_eq "reads answer only the 3 events after the cut-off (from the first request on)" \
  'sensor.keep,sensor.keep,sensor.keep' "$(curl -s "$U/api/v1/events?limit=100" | jq -r '[.events[].entity_id] | join(",")')"
gone() { [ "$(q "SELECT count() FROM ret.events WHERE time < toDateTime($CUT)")" = 0 ]; }
check "expired rows leave the table (partition dropped, cut-off month deleted)" wait_for 60 gone
check_eq "the old month's partition is gone" 0 \
  "$(q "SELECT count() FROM system.parts WHERE database = 'ret' AND table = 'events' AND active AND partition = '$OLDP'")"
check_eq "the 3 events after the cut-off stay" 3 "$(q "SELECT count() FROM ret.events WHERE time >= toDateTime($CUT)")"
H=$(curl -s "$U/health")
check "health shows retention: days, a dropped partition, no error left (a round before the schema is ready fails and is retried)" \
  jqe '.backend.retention | .days == 30 and .partitions_dropped >= 1 and (has("last_error") | not)' <<<"$H"
if [ "$(q "SELECT toYYYYMM(toDateTime($((CUT - 60)))) = toYYYYMM(toDateTime($CUT))")" = 1 ]; then
  check "... and the rest of the cut-off month went by a delete" jqe '.backend.retention.deletes_issued >= 1' <<<"$H"
fi

# expired rows that come back (as 18.16 may restore dropped parts after a restart)
ROW="{\"home_id\":\"default\",\"event_id\":\"back-1\",\"time\":$OLD,\"time_us\":${OLD}000000,\"entity_id\":\"sensor.old\",\"domain\":\"sensor\",\"event_type\":\"state_changed\",\"stored_at_us\":1,\"record\":\"{}\"}"
check "an expired row reappears behind data-storage's back" q "INSERT INTO ret.events FORMAT JSONEachRow $ROW"
check_eq "... it is never answered" 3 "$(curl -s "$U/api/v1/events?limit=100" | jq .count)"
check_eq "... not in the entity list either" '' \
  "$(curl -s "$U/api/v1/entities" | jq -r '[.entities[].entity_id | select(. == "sensor.old")] | join(",")')"
check "... and the next rounds remove it again" wait_for 60 gone
# SIGKILL, not SIGTERM: an unclean restart is where 18.16 brings parts back, and its SIGTERM
# shutdown was seen to abort (SIGABRT, its own) once right after a mutation
clickhouse_kill ch
check "clickhouse-server restarts" clickhouse_restart ch
check "data-storage healthy again" wait_healthy "$U/health" 60
check_eq "after the restart: still only the 3 events after the cut-off" 3 "$(curl -s "$U/api/v1/events?limit=100" | jq .count)"
check "... and nothing expired in the table once a round ran" wait_for 60 gone
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
clickhouse_kill ch # throw-away data (see above)
finish

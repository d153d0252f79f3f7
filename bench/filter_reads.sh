#!/usr/bin/env bash
# bench/filter_reads.sh OLD_BIN NEW_BIN -- what GET /api/v1/events?area= / floor= / device= /
# platform= / event_type= / domain= cost on a large SQLite store, for two data-storage binaries
# on copies of one store (issue 15, migration 10: the registry filters moved from one index
# per column to context spans + the entity index; events_type_time partial; migration 11:
# domain= from domain spans + the entity index, events_domain_time partial).
#
# 1. OLD_BIN makes an empty store (its schema), bench/gen_sqlite_events.sql fills it with N
#    events over NENT entities (30 days), then one UPDATE gives them a registry context
#    (area_<e%20>, floor_<e%3>, a device per two entities, platform hue/zha), entities of
#    area_3 move to area_4 halfway, entity 5 is in area_rare during its first day only,
#    every 50th event is an automation_triggered and every 997th an entity-less call_service;
#    the sensors numbered 6, 7, 8 mod 10 become climate.* (30 % of the events over 30 % of
#    the entities: a domain of many entities that is not most of the events).
# 2. the store is copied; OLD_BIN serves one copy, NEW_BIN the other (it migrates first: the
#    migration's CPU and wall time are printed).
# 3. each query Q times, old and new alternated: median wall ms (curl) and storage CPU ms per
#    query (utime+stime of the process over the Q calls, /proc/PID/stat).
# A query "feed?..." is GET /api/v1/events/feed?limit=100&... (the admin live stream's first
# request is feed?domain=). Any answer that differs from OLD_BIN's is marked.
# Use: N=1000000 NENT=200 Q=15 bench/filter_reads.sh OLD NEW   (~1.2 GB in $TMPDIR while it runs)
# FILTER_QUERIES='domain=sensor&offset=200000|domain=climate' runs only those queries.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: filter_reads.sh OLD_BIN NEW_BIN} NEW=${2:?usage: filter_reads.sh OLD_BIN NEW_BIN}
N=${N:-1000000} NENT=${NENT:-200} Q=${Q:-15}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=info STATISTICS=0
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
say() { printf '# %s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
A=$TEST_TMP/old B=$TEST_TMP/new
mkdir -p "$A" "$B"
P=$(free_port)
DATA_DIR=$A DATA_STORAGE_PORT=$P start_bg mk "$OLD"
wait_healthy "http://127.0.0.1:$P/health" 30 || exit 1
stop_pid "$LAST_PID"
say "generating $N events over $NENT entities (old schema $(sqlite3 "$A/events.db" 'PRAGMA user_version'))"
NOW=$(date +%s%6N)
{ printf "CREATE TEMP TABLE gen(n, entities, now_us); INSERT INTO gen VALUES (%d, %d, %s);\n.read %s\n" \
    "$N" "$NENT" "$NOW" "$ROOT/bench/gen_sqlite_events.sql"
  cat <<SQL
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-1000000;
BEGIN;
UPDATE events SET entity_id = 'climate.bench_' || e, domain = 'climate'
  FROM (SELECT id AS rid, CAST(substr(entity_id, 14) AS INTEGER) AS e FROM events WHERE entity_id GLOB 'sensor.bench_*')
  WHERE rid = id AND e % 10 IN (6, 7, 8);
UPDATE entities SET entity_id = 'climate.' || substr(entity_id, 8), domain = 'climate'
  WHERE entity_id GLOB 'sensor.bench_*' AND CAST(substr(entity_id, 14) AS INTEGER) % 10 IN (6, 7, 8);
UPDATE events SET area_id = CASE
    WHEN e = 5 AND time_us < $NOW - 29 * 86400000000 THEN 'area_rare'
    WHEN e % 20 = 3 AND time_us > $NOW - 15 * 86400000000 THEN 'area_4'
    ELSE 'area_' || (e % 20) END,
  floor_id = 'floor_' || (e % 3), device_id = printf('%032x', e / 2),
  platform = CASE WHEN e % 4 = 0 THEN 'hue' ELSE 'zha' END,
  event_type = CASE WHEN id % 50 = 0 THEN 'automation_triggered' ELSE event_type END
  FROM (SELECT id AS rid, CAST(substr(entity_id, instr(entity_id, '_') + 1) AS INTEGER) AS e FROM events) WHERE rid = id;
UPDATE events SET entity_id = NULL, event_type = 'call_service', area_id = NULL, floor_id = NULL, device_id = NULL,
  platform = NULL, kind = NULL WHERE id % 997 = 0;
COMMIT;
PRAGMA journal_mode=WAL;
SQL
} | sqlite3 "$A/events.db" >/dev/null
# a store made at schema 11 or later has the domain spans, which migration 11 fills only when it
# runs: fill them here as it does (the rows above came straight through SQLite, not the writer);
# at schema 12 also the spans of domain '' of the rows with an entity and no domain, as
# migration 12 does (a deep domain= offset trusts that every entity row lies in a span)
if [ -n "$(sqlite3 "$A/events.db" "SELECT 1 FROM sqlite_master WHERE name = 'event_domains'")" ]; then
  nodomain="AND domain IS NOT NULL"
  [ "$(sqlite3 "$A/events.db" 'PRAGMA user_version')" -lt 12 ] || nodomain=""
  sqlite3 "$A/events.db" "DELETE FROM event_domains; INSERT INTO event_domains SELECT coalesce(domain, ''), entity_id,
    home_id, min(time_us), max(time_us) FROM events WHERE entity_id IS NOT NULL $nodomain GROUP BY 1, 2, 3"
fi
cp "$A/events.db" "$B/events.db"
say "store: $(du -m "$A/events.db" | cut -f1) MB, $(sqlite3 "$A/events.db" 'SELECT count(*) FROM events') events"

PA=$(free_port) PB=$(free_port)
DATA_DIR=$A DATA_STORAGE_PORT=$PA start_bg old "$OLD"; PIDA=$LAST_PID
wait_healthy "http://127.0.0.1:$PA/health" 60 || exit 1
t0=$(date +%s.%N)
DATA_DIR=$B DATA_STORAGE_PORT=$PB start_bg new "$NEW"; PIDB=$LAST_PID
wait_healthy "http://127.0.0.1:$PB/health" 1800 || exit 1
say "new binary: migrated and healthy in $(echo "$(date +%s.%N) - $t0" | bc) s wall, $(( $(cpu_ticks "$PIDB") * 1000 / TCK )) ms CPU; $(grep -o 'migrated to version [0-9]*' "$TEST_TMP/new.log" | tr '\n' ' ')"
# wait until both are idle: after the migration retention's incremental vacuum gives the dropped
# indexes' pages back for a while (its CPU would be counted in the queries')
idle() { local a b; a=$(cpu_ticks "$1"); sleep 2; b=$(cpu_ticks "$1"); [ "$a" = "$b" ]; }
t0=$(date +%s)
for pid in $PIDA $PIDB; do wait_for 900 idle "$pid" || true; done
say "idle after $(( $(date +%s) - t0 )) s; new store $(du -m "$B/events.db" | cut -f1) MB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

DEV=$(printf '%032x' 21)
START=$(date -ud @$(( NOW / 1000000 - 20 * 86400 )) +%Y-%m-%dT%H:%M:%SZ)
END=$(date -ud @$(( NOW / 1000000 - 19 * 86400 )) +%Y-%m-%dT%H:%M:%SZ)
QUERIES=("" "area=area_3" "area=area_4" "area=area_rare" "area=area_3&offset=5000" "area=area_7&start=$START&end=$END"
         "floor=floor_1" "device=$DEV" "platform=hue" "platform=hue&offset=2000" "area=area_2&label=x" "domain=binary_sensor"
         "event_type=automation_triggered" "event_type=call_service" "event_type=state_changed" "entity_id=sensor.bench_3"
         "domain=sensor" "domain=sensor&offset=5000" "domain=binary_sensor&start=$START&end=$END"
         "domain=binary_sensor&event_type=call_service" "domain=sensor&event_type=automation_triggered"
         "domain=binary_sensor&area=area_9" "domain=sensor&offset=200000" "domain=climate" "domain=climate&offset=5000"
         "domain=climate&offset=200000" "domain=binary_sensor&offset=100000" "domain=nosuch"
         "feed?domain=nosuch" "feed?domain=binary_sensor" "feed?domain=climate" "feed?domain=sensor")
# FILTER_QUERIES="a|b|...": only these (e.g. the deep domain= pages)
[ -z "${FILTER_QUERIES:-}" ] || IFS='|' read -ra QUERIES <<<"$FILTER_QUERIES"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '%-58s %8s %8s %10s %10s %6s\n' "GET /api/v1/events?limit=100&..." "old ms" "new ms" "old CPU ms" "new CPU ms" "rows"
for qs in "${QUERIES[@]}"; do
  ta=() tb=(); ca=0; cb=0
  for i in $(seq "$Q"); do
    for side in a b; do
      if [ $side = a ]; then port=$PA pid=$PIDA; else port=$PB pid=$PIDB; fi
      c0=$(cpu_ticks "$pid")
      case $qs in feed\?*) url="/api/v1/events/feed?limit=100&${qs#feed?}" ;; *) url="/api/v1/events?limit=100&$qs" ;; esac
      w=$(curl -s -o "$TEST_TMP/ans.$side" -w '%{time_total}' "http://127.0.0.1:$port$url")
      c1=$(cpu_ticks "$pid")
      if [ $side = a ]; then ta+=("$w"); ca=$((ca + c1 - c0)); else tb+=("$w"); cb=$((cb + c1 - c0)); fi
    done
  done
  ra=$(jq -r '[.events[].event_id] | join(",")' "$TEST_TMP/ans.a") rb=$(jq -r '[.events[].event_id] | join(",")' "$TEST_TMP/ans.b")
  same=$([ "$ra" = "$rb" ] && echo "" || echo " DIFFERENT ANSWERS")
  printf '%-58s %8.1f %8.1f %10.1f %10.1f %6s%s\n' "${qs:-(no filter)}" \
    "$(printf '%s\n' "${ta[@]}" | median | awk '{ print $1 * 1000 }')" "$(printf '%s\n' "${tb[@]}" | median | awk '{ print $1 * 1000 }')" \
    "$(echo "$ca * 1000 / $TCK / $Q" | bc -l)" "$(echo "$cb * 1000 / $TCK / $Q" | bc -l)" "$(jq '.events | length' "$TEST_TMP/ans.b")" "$same"
done
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_pid "$PIDA"; stop_pid "$PIDB"

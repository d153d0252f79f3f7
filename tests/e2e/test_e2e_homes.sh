#!/usr/bin/env bash
# test_e2e_homes.sh COUNT BACKEND -- homes (issue 18) on real processes: two
# websocket-ingestions (HOMEIQ_HOME_ID unset = "default", and "b") forward the
# very same COUNT events (identical entity ids, times and contexts) through one
# enrichment-pipeline to one data-storage (sqlite | clickhouse). Both homes'
# copies are stored, never merged; home= selects each; a re-sent home's events
# are duplicates of its own, not of the other home's; malformed home ids are
# refused at every hop; on SQLite each home has its own statistics of the
# shared entity ids.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-2000}
BACKEND=${2:-sqlite}
BATCH=500
jqe() { jq -e "$@" >/dev/null; }

if [ "$BACKEND" = clickhouse ]; then
  . "$(dirname "$0")/../lib/clickhouse.sh"
  clickhouse_start ch || bail "clickhouse-server starts"
  start_storage storage STORAGE_BACKEND=clickhouse CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE=homes_e2e \
    CLICKHOUSE_PING_INTERVAL_MS=200
else
  start_storage storage
fi
wait_healthy "http://127.0.0.1:$STO_PORT/health" 30 || bail "storage healthy"
start_enrichment enrichment
S=http://127.0.0.1:$STO_PORT E=http://127.0.0.1:$ENR_PORT

# two homes, forward-only ingestions
start_ing() { # NAME HOME|"" : sets PORT_<NAME>, PID_<NAME>
  local port; port=$(free_port)
  start_bg "$1" env HOME_ASSISTANT_URL=none DATA_DIR="$TEST_TMP/$1" WEBSOCKET_INGESTION_PORT=$port \
    ENRICHMENT_PIPELINE_URL="$E" FORWARD_RETRY_MAX_MS=500 ${2:+HOMEIQ_HOME_ID=$2} "$ING_BIN"
  printf -v "PID_$1" '%s' "$LAST_PID"
  printf -v "PORT_$1" '%s' "$port"
  wait_http "http://127.0.0.1:$port/health" 30 || bail "ingestion $1 started"
}
start_ing ing_default ""
start_ing ing_b b
IA=$PORT_ing_default IB=$PORT_ing_b

jq -nc --argjson n "$COUNT" '[range($n) as $i | {event_type:"state_changed", entity_id:"sensor.s\($i % 37)",
  state:"\($i)", time_fired:("2025-03-01T00:00:00.\(1000000 + $i | tostring | .[1:])Z"),
  context_id:"ctx-\($i)"}]' >"$TEST_TMP/events.json"
fwd() { # PORT FILE -> http code
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$2" \
    "http://127.0.0.1:$1/api/v1/events/forward"
}
ok=1
for ((k = 0; k < COUNT; k += BATCH)); do
  jq -c --argjson k $k --argjson b $BATCH '.[$k:$k+$b]' "$TEST_TMP/events.json" >"$TEST_TMP/b.json"
  [ "$(fwd "$IA" "$TEST_TMP/b.json")" = 200 ] || ok=0
  [ "$(fwd "$IB" "$TEST_TMP/b.json")" = 200 ] || ok=0
done
check "both ingestions accepted the same $COUNT events" [ $ok = 1 ]
# count_of FILTER : events in the store (paged); a page that is not a 200 with a
# count is asked again (a loaded machine may time a query out), 30 times at most.
count_of() { local n=0 off=0 c tries
  while :; do
    tries=0
    until c=$(curl -s "$S/api/v1/events?limit=10000&offset=$off$1" | jq -e .count 2>/dev/null); do
      tries=$((tries + 1)); [ $tries -ge 30 ] && { echo "unreadable"; return 1; }; sleep 1
    done
    n=$((n + c)); [ "$c" -lt 10000 ] && break; off=$((off + c))
  done
  echo $n; }
stored_all() { [ "$(count_of "")" = $((2 * COUNT)) ]; }
check "storage holds both homes' copies: $((2 * COUNT)) events" wait_until 120 stored_all
check_eq "home=default selects the default home's $COUNT" "$COUNT" "$(count_of "&home=default")"
check_eq "home=b selects home b's $COUNT" "$COUNT" "$(count_of "&home=b")"
check_eq "home=c selects nothing" 0 "$(count_of "&home=c")"
curl -s "$S/api/v1/events?limit=10000&home=default" >"$TEST_TMP/a.json"
curl -s "$S/api/v1/events?limit=10000&home=b" >"$TEST_TMP/b.json"
check "default-home records carry no home_id (their text is unchanged)" jqe 'all(.events[]; has("home_id") | not)' "$TEST_TMP/a.json"
check "home b's records say home_id b" jqe 'all(.events[]; .home_id == "b")' "$TEST_TMP/b.json"
check_eq "identical events of two homes have disjoint event_ids" 0 \
  "$(jq -n --slurpfile a "$TEST_TMP/a.json" --slurpfile b "$TEST_TMP/b.json" '[$a[0].events[].event_id] - ([$a[0].events[].event_id] - [$b[0].events[].event_id]) | length')"
jq -c '.events[] | del(.event_id, .stored_at)' "$TEST_TMP/a.json" | sort >"$TEST_TMP/a.rec"
jq -c '.events[] | del(.event_id, .stored_at, .home_id)' "$TEST_TMP/b.json" | sort >"$TEST_TMP/b.rec"
check_eq "same entity, time and context in both homes: $COUNT records each, the same otherwise" \
  "$COUNT 0" "$(wc -l <"$TEST_TMP/a.rec") $(cmp -s "$TEST_TMP/a.rec" "$TEST_TMP/b.rec"; echo $?)"
# long-term statistics per (entity, home) (SQLite: stats_sqlite.h): each home's sensor.s0 holds its own
# states only, though both homes have the same ids and times (merged, the count would be twice)
if [ "$BACKEND" = sqlite ]; then
  n0=$(( (COUNT + 36) / 37 ))
  st() { curl -s "$S/api/v1/statistics?entity_id=sensor.s0&start=2025-03-01T00:00:00Z&period=5minute&types=count$1" |
         jq -r '[.["sensor.s0"][]?.count] | add'; }
  check_eq "statistics home=default: sensor.s0's $n0 states" "$n0" "$(st '&home=default')"
  check_eq "statistics home=b: its own $n0 states of the same ids and times, never merged" "$n0" "$(st '&home=b')"
  check_eq "statistics without home=: the default home's" "$n0" "$(st '')"
fi
# the v2 identity of the default home is kept: entity + last_updated, as before issue 18
first=$(jq -c '.events | map(select(.context_id == "ctx-0"))[0]' "$TEST_TMP/a.json")
want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(("state_changed\x1fsensor.s0\x1f2025-03-01T00:00:00.000000Z\x1f\x1f").encode()).digest()[:16].hex())')
check_eq "the default home's event_id is the unchanged v2 identity" "$want" "$(jq -r .event_id <<<"$first")"

# re-sending home b: duplicates of its own events only
jq -c '.[0:100]' "$TEST_TMP/events.json" >"$TEST_TMP/again.json"
r=$(curl -s -H 'Content-Type: application/json' -H 'X-HomeIQ-Home: b' --data-binary @"$TEST_TMP/again.json" "$E/api/v1/events")
check_eq "home b re-sent through enrichment: 0 stored, 100 duplicates" "[0,100]" "$(jq -c '[.stored,.duplicates]' <<<"$r")"
r=$(curl -s -H 'Content-Type: application/json' -H 'X-HomeIQ-Home: c' --data-binary @"$TEST_TMP/again.json" "$E/api/v1/events")
check_eq "the same events as a third home c: 100 stored, 0 duplicates" "[100,0]" "$(jq -c '[.stored,.duplicates]' <<<"$r")"

# malformed home ids: refused, nothing stored
code() { curl -s -o "$TEST_TMP/err.json" -w '%{http_code}' -H 'Content-Type: application/json' -H "X-HomeIQ-Home: $2" --data-binary @"$TEST_TMP/again.json" "$1/api/v1/events"; }
check_eq "enrichment: X-HomeIQ-Home 'Bad Home' -> 400" 400 "$(code "$E" 'Bad Home')"
check "... naming the header" grep -q 'X-HomeIQ-Home' "$TEST_TMP/err.json"
check_eq "storage: X-HomeIQ-Home '../x' -> 400" 400 "$(code "$S" '../x')"
out=$(curl -s -w ' %{http_code}' "$S/api/v1/events?home=Bad")
check_eq "storage: home=Bad is a 400 naming home" "400 home" "${out##* } $(jq -r '.error|split(":")[0]' <<<"${out% *}")"
HOMEIQ_HOME_ID='not ok' HOME_ASSISTANT_URL=none DATA_DIR="$TEST_TMP/bad" WEBSOCKET_INGESTION_PORT=$(free_port) \
  timeout 20 "$ING_BIN" >"$TEST_TMP/bad.log" 2>&1; rc=$?
check "ingestion with HOMEIQ_HOME_ID='not ok' refuses to start (exit $rc)" [ "$rc" -ne 0 -a "$rc" -ne 124 ]
check "... and says why" grep -q 'HOMEIQ_HOME_ID' "$TEST_TMP/bad.log"
check_eq "still exactly $((2 * COUNT + 100)) events" $((2 * COUNT + 100)) "$(count_of "")"

check "ingestion (default home) exits cleanly" stop_pid "$PID_ing_default"
check "ingestion (home b) exits cleanly" stop_pid "$PID_ing_b"
check "enrichment exits cleanly" stop_pid "$ENR_PID"
check "storage exits cleanly" stop_pid "$STO_PID"
[ "$BACKEND" = clickhouse ] && clickhouse_stop ch
finish

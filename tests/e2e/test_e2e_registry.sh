#!/usr/bin/env bash
# test_e2e_registry.sh COUNT RATE BACKEND -- issue 11 on real processes: the simulated
# house's registries (HA protocol) -> websocket-ingestion (registry.c) -> enrichment ->
# storage (sqlite | influxdb | clickhouse). Checks, for COUNT events at RATE/s:
#  - every state_changed event carries the area/floor/device/labels the scenario's
#    registry gives its entity (resolved here from house.json, independently of the code);
#  - an entity moved and a device moved mid-stream: events HA fired before the move
#    carry the old area, after it the new one (mis-enriched count must be 0), with
#    enrichment SIGKILLed right after the moves and restarted;
#  - GET /api/v1/events?area=... returns exactly that area's events; bad values -> 400;
#  - the registry changes are stored as events; GET /api/v1/registry knows the move, the label, the rename;
#  - HA never answering a reload: the held events go after REGISTRY_HOLD_MAX_MS, /health says why;
#  - a non-admin token and an older HA: events still flow, /health says why context is missing.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/e2e_lib.sh"
COUNT=${1:-20000}
RATE=${2:-1000}
BACKEND=${3:-sqlite}
HOUSE="$(cd "$(dirname "$0")/../.." && pwd)/tools/ha-simulator/scenarios/house.json"
: "${SIM_BIN:?}" "${ING_BIN:?}" "${ENR_BIN:?}" "${STO_BIN:?}" "${CTL_BIN:?}"

if [ "$BACKEND" = influxdb ]; then
  . "$(dirname "$0")/../lib/influxd.sh"
  influxd_start || bail "influxd starts"
  start_storage storage STORAGE_BACKEND=influxdb INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE=homeiq_registry
elif [ "$BACKEND" = clickhouse ]; then
  . "$(dirname "$0")/../lib/clickhouse.sh"
  clickhouse_start ch1 || bail "clickhouse-server starts"
  start_storage storage STORAGE_BACKEND=clickhouse CLICKHOUSE_URL="$CLICKHOUSE_URL" CLICKHOUSE_DATABASE=homeiq_registry \
    CLICKHOUSE_PING_INTERVAL_MS=200
else
  start_storage storage
fi
start_enrichment enrichment
start_sim "$RATE" "$COUNT"
# REGISTRY_DEBOUNCE_MS=2000: one reload round trip lasts 2 s, so the four changes below, 0.3 s
# apart, all fall within one (back to back, as far as the registry can tell) with ~300 events
# between each two -- enough for a wrong context to show. With no pause at all only the few
# events of curl's own gaps fall between them: the code before the fix passed that in release.
start_ingestion ingestion BACKFILL=0 REGISTRY_DEBOUNCE_MS=2000
STO=http://127.0.0.1:$STO_PORT

MOVED_ENTITY=sensor.kitchen_temperature
MOVED_TO=bedroom
MOVED_DEVICE_NAME="Living room climate"
MOVED_DEVICE=$(jq -r --arg n "$MOVED_DEVICE_NAME" '.registry.devices[] | select(.name == $n) | .id' "$HOUSE")
DEVICE_TO=office
LABEL_ENTITY=sensor.outdoor_temperature
NEW_LABEL=outdoor
RENAMED_AREA=office
NEW_AREA_NAME="Study room"

# ---- the move, mid-stream, then enrichment SIGKILLed -----------------------------------
half_sent() { [ "$(sim_stat sent)" -ge $((COUNT / 2)) ]; }
wait_until 120 half_sent || bail "half the events sent"
check_eq "the simulator moves $MOVED_ENTITY" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/entity/$MOVED_ENTITY/area/$MOVED_TO")"
# Back to back, within one reload round trip: the events between the updates must get the
# context of their own position (registry.c undoes the later updates for the events before them).
sleep 0.3
check_eq "the simulator moves device $MOVED_DEVICE_NAME" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/device/$MOVED_DEVICE/area/$DEVICE_TO")"
# ... then a label added (a new label: label_registry_updated, then the entity's update) and
# an area renamed (area_registry_updated carries no "changes": undone from the area list
# known before the hold), still within the same round trip.
sleep 0.3
check_eq "the simulator adds label $NEW_LABEL to $LABEL_ENTITY" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/entity/$LABEL_ENTITY/label/$NEW_LABEL")"
sleep 0.3
check_eq "the simulator renames area $RENAMED_AREA" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/area/$RENAMED_AREA/name/${NEW_AREA_NAME// /%20}")"
sleep 0.3
kill -KILL "$ENR_PID"; wait "$ENR_PID" 2>/dev/null; _forget_pid "$ENR_PID"
echo "# moved at sent=$(sim_stat sent); enrichment SIGKILLed"
sleep 1
start_enrichment enrichment2
wait_until 300 sim_done || bail "the simulator sent $COUNT events"
wait_until 300 ing_drained || bail "ingestion drained its spool"
H=$(curl -s "http://127.0.0.1:$ING_PORT/health")
check_eq "ingestion: registry ready" ready "$(jq -r .registry.state <<<"$H")"
check "ingestion: the moves made it reload (loads >= 2)" test "$(jq -r .registry.loads <<<"$H")" -ge 2
check_eq "ingestion: nothing released without its reload" 0 "$(jq -r .registry.released_unresolved <<<"$H")"
echo "# registry: $(jq -c '.registry | {loads, updates, held, updates_undone}' <<<"$H")"
check "ingestion: the changes shared a hold: later updates were undone ($(jq -r .registry.updates_undone <<<"$H"))" \
  test "$(jq -r '.registry.updates_undone // 0' <<<"$H")" -gt 0

# ---- what storage holds ----------------------------------------------------------------
fetch_all() { # fetch_all QUERY OUT : every page of GET /api/v1/events?QUERY into one JSON array
  local q=$1 out=$2 off=0 n
  echo '[]' >"$out"
  while :; do
    curl -s -o "$TEST_TMP/page.json" "$STO/api/v1/events?$q&limit=10000&offset=$off" || return 1
    n=$(jq '.events | length' "$TEST_TMP/page.json")
    jq -s '.[0] + .[1].events' "$out" "$TEST_TMP/page.json" >"$out.tmp" && mv "$out.tmp" "$out"
    [ "$n" -lt 10000 ] && break
    off=$((off + n))
  done
}
fetch_all "event_type=state_changed" "$TEST_TMP/sc.json"
check_eq "storage holds every state_changed event" "$COUNT" "$(jq length "$TEST_TMP/sc.json")"
check_eq "no duplicates" "$COUNT" "$(jq '[.[].event_id] | unique | length' "$TEST_TMP/sc.json")"

T_ENT=$(curl -s "$STO/api/v1/events?event_type=entity_registry_updated&entity_id=$MOVED_ENTITY" | jq -r '.events[0].time_fired')
T_DEV=$(curl -s "$STO/api/v1/events?event_type=device_registry_updated&device=$MOVED_DEVICE" | jq -r '.events[0].time_fired')
T_LAB=$(curl -s "$STO/api/v1/events?event_type=entity_registry_updated&entity_id=$LABEL_ENTITY" | jq -r '.events[0].time_fired')
T_REN=$(curl -s "$STO/api/v1/events?event_type=area_registry_updated&area=$RENAMED_AREA" | jq -r '.events[0].time_fired')
check "the label add is stored as an event (time $T_LAB)" test "$T_LAB" != null
check "the area rename is stored as an event (time $T_REN)" test "$T_REN" != null
check_eq "the stored rename carries the new name" "$NEW_AREA_NAME" \
  "$(curl -s "$STO/api/v1/events?event_type=area_registry_updated&area=$RENAMED_AREA" | jq -r '.events[0].area')"
check "the entity's move is stored as an event (time $T_ENT)" test "$T_ENT" != null
check "the device's move is stored as an event (time $T_DEV)" test "$T_DEV" != null
check_eq "the stored entity move carries the new area" "$MOVED_TO" \
  "$(curl -s "$STO/api/v1/events?event_type=entity_registry_updated&entity_id=$MOVED_ENTITY" | jq -r '.events[0].area_id')"
check_eq "the stored device move carries the new area" "$DEVICE_TO" \
  "$(curl -s "$STO/api/v1/events?event_type=device_registry_updated&device=$MOVED_DEVICE" | jq -r '.events[0].area_id')"

# The truth, from the scenario file: each entity's area (its own, else its device's),
# floor, device name and labels, before and after the moves.
jq --arg me "$MOVED_ENTITY" --arg mt "$MOVED_TO" --arg md "$MOVED_DEVICE" --arg dt "$DEVICE_TO" '
  .registry as $r
  | ($r.areas | map({key: .area_id, value: .floor_id}) | from_entries) as $floor
  | [.entities[].entity_id] | map(. as $e
      | ([$r.devices[] | select(.entities | index($e))] | first) as $d
      | ($r.entities[$e].area_id // null) as $own
      | ($own // $d.area_id // null) as $before
      | (if $e == $me then $mt elif $own == null and $d.id == $md then $dt else $before end) as $after
      | {key: $e, value: {before: $before, after: $after, floor_before: $floor[$before // ""],
                          floor_after: $floor[$after // ""], device: ($d.name // null),
                          device_id: ($d.id // null), labels: ($r.entities[$e].labels // [])}})
  | from_entries' "$HOUSE" >"$TEST_TMP/truth.json"
check_eq "truth: the moved entity goes kitchen -> $MOVED_TO" "kitchen $MOVED_TO" \
  "$(jq -r --arg e "$MOVED_ENTITY" '.[$e] | "\(.before) \(.after)"' "$TEST_TMP/truth.json")"

# Mis-enriched: area, floor, device or labels differ from the truth at the event's time.
jq '.registry.areas | map({key: .area_id, value: .name}) | from_entries' "$HOUSE" >"$TEST_TMP/names.json"
jq --slurpfile t "$TEST_TMP/truth.json" --arg te "$T_ENT" --arg td "$T_DEV" --arg tl "$T_LAB" --arg le "$LABEL_ENTITY" \
   --arg nl "$NEW_LABEL" --arg tr "$T_REN" --arg ra "$RENAMED_AREA" --arg nn "$NEW_AREA_NAME" \
   --slurpfile names "$TEST_TMP/names.json" '
  $t[0] as $truth
  | map(. as $ev | $truth[$ev.entity_id] as $x
      | (if ($ev.entity_id | IN("'"$MOVED_ENTITY"'")) then ($ev.time_fired > $te)
         else ($ev.time_fired > $td) end) as $after
      | select(($x == null)
          or ($ev.area_id != (if $after then $x.after else $x.before end))
          or ($ev.floor_id != (if $after then $x.floor_after else $x.floor_before end))
          or ($ev.device != $x.device) or ($ev.device_id != $x.device_id)
          or (($ev.labels // "absent") != (if $ev.entity_id == $le and $ev.time_fired > $tl
                                            then $x.labels + [$nl] else $x.labels end))
          or ($ev.area != (if $ev.area_id == $ra and $ev.time_fired > $tr then $nn
                           else $names[0][$ev.area_id // ""] end))))' "$TEST_TMP/sc.json" >"$TEST_TMP/wrong.json"
MIS=$(jq length "$TEST_TMP/wrong.json")
echo "# mis-enriched events: $MIS of $COUNT"
check_eq "zero mis-enriched events (area, floor, device, labels) across the moves" 0 "$MIS"
[ "$MIS" = 0 ] || jq -c '.[0:3][] | {entity_id, time_fired, area_id, area, floor_id, device, labels}' "$TEST_TMP/wrong.json" >&2
N_AFTER=$(jq --arg te "$T_ENT" --arg e "$MOVED_ENTITY" '[.[] | select(.entity_id == $e and .time_fired > $te)] | length' "$TEST_TMP/sc.json")
N_BEFORE=$(jq --arg te "$T_ENT" --arg e "$MOVED_ENTITY" '[.[] | select(.entity_id == $e and .time_fired < $te)] | length' "$TEST_TMP/sc.json")
check "the moved entity has events on both sides of the move ($N_BEFORE before, $N_AFTER after)" \
  test "$N_BEFORE" -gt 0 -a "$N_AFTER" -gt 0

# ---- query filters -------------------------------------------------------------------------
for area in kitchen "$MOVED_TO" garden; do
  fetch_all "event_type=state_changed&area=$area" "$TEST_TMP/q.json"
  check "?area=$area is not empty" test "$(jq length "$TEST_TMP/q.json")" -gt 0
  check_eq "?area=$area returns exactly that area's events" \
    "$(jq -c --arg a "$area" '[.[] | select(.area_id == $a) | .event_id] | sort' "$TEST_TMP/sc.json" | sha1sum)" \
    "$(jq -c '[.[].event_id] | sort' "$TEST_TMP/q.json" | sha1sum)"
done
for f in "floor=first_floor:floor_id:first_floor" "platform=hue:platform:hue" "device=$MOVED_DEVICE:device_id:$MOVED_DEVICE"; do
  IFS=: read -r q field val <<<"$f"
  fetch_all "event_type=state_changed&$q" "$TEST_TMP/q.json"
  got=$(jq length "$TEST_TMP/q.json")
  check "?$q returns events ($got)" test "$got" -gt 0
  check_eq "?$q returns exactly the events with $field=$val" \
    "$(jq --arg v "$val" --arg f "$field" '[.[] | select(.[$f] == $v)] | length' "$TEST_TMP/sc.json")" "$got"
done
CTL_OUT=$(DATA_STORAGE_URL=$STO "$CTL_BIN" events --area kitchen --event-type state_changed --limit 10000 --json)
check "homeiqctl events --area kitchen answers" test "$(jq '.events | length' <<<"$CTL_OUT")" -gt 0
check_eq "homeiqctl events --area kitchen: only kitchen events" 0 \
  "$(jq '[.events[] | select(.area_id != "kitchen")] | length' <<<"$CTL_OUT")"
check "homeiqctl events --area Kitchen: refused (exit != 0)" \
  bash -c "! DATA_STORAGE_URL=$STO '$CTL_BIN' events --area Kitchen >/dev/null 2>&1"
fetch_all "event_type=state_changed&label=battery" "$TEST_TMP/q.json"
check_eq "?label=battery returns exactly the events labelled battery" \
  "$(jq '[.[] | select(.labels | index("battery"))] | length' "$TEST_TMP/sc.json")" "$(jq length "$TEST_TMP/q.json")"
check "?label=battery is not empty" test "$(jq length "$TEST_TMP/q.json")" -gt 0
for bad in "area=Kitchen" "floor=a%20b" "label=" "device=x%27y" "platform=$(printf 'p%.0s' {1..200})"; do
  body=$(curl -s -w '\n%{http_code}' "$STO/api/v1/events?$bad")
  check_eq "?$bad -> 400" 400 "$(tail -n1 <<<"$body")"
  check "?$bad: the error names the parameter" grep -q "\"${bad%%=*}: " <<<"$(head -n -1 <<<"$body")"
done

# both backends (SQLite: the registry table; InfluxDB: the homeiq_registry points)
R=$(curl -s "$STO/api/v1/registry?entity_id=$MOVED_ENTITY")
check_eq "GET /api/v1/registry: the moved entity is in $MOVED_TO" "$MOVED_TO" "$(jq -r '.entities[0].area_id' <<<"$R")"
check_eq "GET /api/v1/registry: since = the move's time" "$T_ENT" "$(jq -r '.entities[0].since' <<<"$R")"
check "GET /api/v1/registry: $LABEL_ENTITY has the new label" \
  jq -e --arg l "$NEW_LABEL" '.entities[0].labels | index($l) != null' <<<"$(curl -s "$STO/api/v1/registry?entity_id=$LABEL_ENTITY")"
check_eq "GET /api/v1/registry: the moved device's entities are in the renamed area" "$NEW_AREA_NAME" \
  "$(curl -s "$STO/api/v1/registry" | jq -r --arg d "$MOVED_DEVICE" '[.entities[] | select(.device_id == $d) | .area] | unique | join(",")')"
check_eq "GET /api/v1/registry lists every entity of the house" \
  "$(jq '.entities | length' "$HOUSE")" "$(curl -s "$STO/api/v1/registry" | jq '.entities | length')"

# ---- a non-admin token, then an older HA: events flow, health says why -------------------
degraded_run() { # degraded_run MODE N : a second simulator in MODE, its own ingestion
  local mode=$1 n=$2
  SIM_PORT=$(free_port); SENT_LOG=$TEST_TMP/sent-$mode.jsonl
  start_sim 500 "$n"
  check_eq "$mode: the simulator plays it" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/mode/$mode")"
  ING_PORT=$(free_port)
  start_ingestion "ingestion-$mode" BACKFILL=0 DATA_DIR="$TEST_TMP/ingestion-$mode"
  wait_until 120 sim_done || bail "$mode: the simulator sent $n events"
  wait_until 120 ing_drained || bail "$mode: ingestion drained"
  H=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$ING_PORT/health")
  check_eq "$mode: ingestion stays healthy (200)" 200 "$(tail -n1 <<<"$H")"
  H=$(head -n -1 <<<"$H")
  check_eq "$mode: registry degraded in /health" degraded "$(jq -r .registry.state <<<"$H")"
  check_eq "$mode: every event forwarded" "$n" "$(jq -r .events.forwarded <<<"$H")"
}
degraded_run user 1000
check "user: health says the token may not list registries" grep -q "not an admin" <<<"$(jq -r .registry.reason <<<"$H")"
check_eq "user: the entity registry was refused (unauthorized)" unauthorized "$(jq -r .registry.registries.entity.state <<<"$H")"
check_eq "user: events carry no context" 1000 "$(jq -r .registry.events_without_context <<<"$H")"
stop_pid "$SIM_PID"
degraded_run old 1000
check "old: health says older HA" grep -q "older Home Assistant" <<<"$(jq -r .registry.reason <<<"$H")"
check_eq "old: floor registry unsupported" unsupported "$(jq -r .registry.registries.floor.state <<<"$H")"
check_eq "old: events still carry context (areas, devices)" 1000 "$(jq -r .registry.events_with_context <<<"$H")"
T_OLD=$(head -n 1 "$TEST_TMP/sent-old.jsonl" | jq -r .time_fired | sed 's/+00:00$/Z/')
fetch_all "event_type=state_changed&area=garden&start=$T_OLD" "$TEST_TMP/q.json"
check "old: garden events of the old HA are found by area" test "$(jq length "$TEST_TMP/q.json")" -gt 0
check_eq "old: no floors, no labels on them" 0 "$(jq '[.[] | select(.floor_id != null or .labels != [])] | length' "$TEST_TMP/q.json")"

# ---- HA never answers a reload: the held events go after REGISTRY_HOLD_MAX_MS, health says why --
stop_pid "$SIM_PID"
SIM_PORT=$(free_port); SENT_LOG=$TEST_TMP/sent-mute.jsonl
start_sim 500 3000
ING_PORT=$(free_port)
start_ingestion ingestion-mute BACKFILL=0 DATA_DIR="$TEST_TMP/ingestion-mute" REGISTRY_HOLD_MAX_MS=1500
reg_ready() { [ "$(ing_stat .registry.state)" = ready ]; }
wait_until 60 reg_ready || bail "mute: the registry loaded"
check_eq "mute: the simulator stops answering registry commands" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/mode/mute")"
check_eq "mute: the simulator moves $MOVED_ENTITY" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$SIM_PORT/api/sim/registry/entity/$MOVED_ENTITY/area/garden")"
wait_until 120 sim_done || bail "mute: the simulator sent 3000 events"
wait_until 120 ing_drained || bail "mute: ingestion drained"
wait_until 30 ing_quiet || bail "mute: ingestion quiet"
H=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$ING_PORT/health")
check_eq "mute: ingestion stays healthy (200)" 200 "$(tail -n1 <<<"$H")"
H=$(head -n -1 <<<"$H")
check "mute: events were held for the reload ($(jq -r .registry.held <<<"$H"))" test "$(jq -r .registry.held <<<"$H")" -gt 0
check "mute: the held events were released unresolved ($(jq -r .registry.released_unresolved <<<"$H"))" \
  test "$(jq -r .registry.released_unresolved <<<"$H")" -gt 0
check "mute: health names the limit" grep -q REGISTRY_HOLD_MAX_MS <<<"$(jq -r .registry.last_unresolved_reason <<<"$H")"
check_eq "mute: registry degraded" degraded "$(jq -r .registry.state <<<"$H")"
check "mute: health says HA did not answer" grep -q "did not answer" <<<"$(jq -r .registry.reason <<<"$H")"
check_eq "mute: every event forwarded (3000 + the move)" 3001 "$(jq -r .events.forwarded <<<"$H")"
T_MUTE=$(head -n 1 "$TEST_TMP/sent-mute.jsonl" | jq -r .time_fired | sed 's/+00:00$/Z/')
fetch_all "event_type=state_changed&start=$T_MUTE" "$TEST_TMP/q.json"
check_eq "mute: storage holds the 3000 events" 3000 "$(jq length "$TEST_TMP/q.json")"

finish

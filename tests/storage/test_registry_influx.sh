#!/usr/bin/env bash
# test_registry_influx.sh -- issue 11 on a real influxd (tests/lib/influxd.sh):
#  A. homeiq schema: GET /api/v1/registry answers from the homeiq_registry points
#     (influx_registry.h): the current context per entity, "since" = its first event
#     with that context (a move restarts it; a late older event does not; a restart of
#     data-storage, which forgets what it wrote, does not), last_seen = its newest event;
#     ?entity_id= narrows it; one point per change, not per event.
#  B. homeassistant schema with INFLUXDB_REGISTRY_TAGS=area_id,floor_id,labels: the tags
#     land on HA's points (SHOW TAG KEYS, the values), InfluxQL filters on them return
#     exactly the points of that area / label, a record without context gets no tag,
#     and /api/v1/registry works there too (last_seen null: no HomeIQ events measurement).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"
BIN=${1:?usage: test_registry_influx.sh /path/to/homeiq-data-storage}
influxd_start || bail "influxd starts"

iq() { # iq DB QUERY : InfluxQL against influxd, the JSON answer
  curl -s -G "$INFLUXDB_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}
start_sto() { # start_sto NAME DB [env...]
  local name=$1 db=$2; shift 2
  PORT=$(free_port); U=http://127.0.0.1:$PORT
  start_bg "$name" env DATA_STORAGE_PORT=$PORT DATA_DIR="$TEST_TMP/$name" STORAGE_BACKEND=influxdb \
    INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE="$db" "$@" "$BIN"
  PID=$LAST_PID
  wait_healthy "$U/health" 30 "$PID" || bail "data-storage ($name) started"
}
rec() { # rec ENTITY TIME STATE AREA FLOOR LABEL : a record with registry context (AREA "-": none)
  if [ "$4" = - ]; then
    printf '{"event_type":"state_changed","entity_id":"%s","domain":"sensor","time_fired":"%s","context_id":"c-%s-%s","state":"%s","attributes":{"unit_of_measurement":"°C","friendly_name":"%s"}}' \
      "$1" "$2" "$1" "$2" "$3" "$1"
    return
  fi
  printf '{"event_type":"state_changed","entity_id":"%s","domain":"sensor","time_fired":"%s","context_id":"c-%s-%s","state":"%s","attributes":{"unit_of_measurement":"°C","friendly_name":"%s"},"area_id":"%s","area":"Area %s","floor_id":"%s","floor":"Floor %s","device_id":"dev_%s","device":"Device %s","manufacturer":"Aqara","model":"M1","labels":["%s"],"platform":"zha","entity_category":null}' \
    "$1" "$2" "$1" "$2" "$3" "$1" "$4" "$4" "$5" "$5" "$1" "$1" "$6"
}
post() { curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' --data-binary "[$1]"; }
reg() { curl -s "$U/api/v1/registry$1"; }

# ---- A. homeiq schema ------------------------------------------------------------------
start_sto sto_a homeiq_reg
ANS=$(post "$(rec sensor.a 2026-01-01T10:00:00.000001Z 20 kitchen ground battery),$(rec sensor.a 2026-01-01T10:00:01.000001Z 21 kitchen ground battery),$(rec sensor.b 2026-01-01T10:00:02.000001Z 22 bedroom first energy),$(rec sensor.c 2026-01-01T10:00:03.000001Z 23 - - -)")
check_eq "A: four events stored" 4 "$(jq .stored <<<"$ANS")"
R=$(reg "")
check_eq "A: GET /api/v1/registry answers 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/v1/registry")"
check_eq "A: the entities with context (not sensor.c)" "sensor.a sensor.b" "$(jq -r '[.entities[].entity_id] | join(" ")' <<<"$R")"
check_eq "A: sensor.a: kitchen, since its first event, last seen its newest" \
  "kitchen Area kitchen ground battery 2026-01-01T10:00:00.000001Z 2026-01-01T10:00:01.000001Z" \
  "$(jq -r '.entities[] | select(.entity_id == "sensor.a") | "\(.area_id) \(.area) \(.floor_id) \(.labels | join(",")) \(.since) \(.last_seen)"' <<<"$R")"
check_eq "A: the context's eleven members" 14 "$(jq '.entities[0] | length' <<<"$R")"
check_eq "A: one registry point per change (2), not per event (3)" 2 \
  "$(iq homeiq_reg 'SELECT count("context") FROM "homeiq_registry"' | jq '.results[0].series[0].values[0][1]')"

# a move, then a late event of before the move (an older time, the old context)
post "$(rec sensor.a 2026-01-01T10:00:10.000001Z 24 bedroom first battery)" >/dev/null
post "$(rec sensor.a 2026-01-01T10:00:05.000001Z 22.5 kitchen ground battery)" >/dev/null
R=$(reg "?entity_id=sensor.a")
check_eq "A: ?entity_id=sensor.a: only it" 1 "$(jq '.entities | length' <<<"$R")"
check_eq "A: after the move: bedroom since the move; a late older event does not undo it" \
  "bedroom 2026-01-01T10:00:10.000001Z 2026-01-01T10:00:10.000001Z" \
  "$(jq -r '.entities[0] | "\(.area_id) \(.since) \(.last_seen)"' <<<"$R")"

# a restart forgets what was written: the same context again does not restart "since"
check "A: storage exits cleanly" stop_pid "$PID"
start_sto sto_a2 homeiq_reg
post "$(rec sensor.a 2026-01-01T10:00:20.000001Z 25 bedroom first battery)" >/dev/null
R=$(reg "?entity_id=sensor.a")
check_eq "A: after a restart: still since the move, last seen the new event" \
  "bedroom 2026-01-01T10:00:10.000001Z 2026-01-01T10:00:20.000001Z" \
  "$(jq -r '.entities[0] | "\(.area_id) \(.since) \(.last_seen)"' <<<"$R")"
# back to the kitchen: since is this move, not the first kitchen event before the bedroom
post "$(rec sensor.a 2026-01-01T10:00:30.000001Z 26 kitchen ground battery)" >/dev/null
check_eq "A: moved back: kitchen since the move back" "kitchen 2026-01-01T10:00:30.000001Z" \
  "$(reg "?entity_id=sensor.a" | jq -r '.entities[0] | "\(.area_id) \(.since)"')"
check_eq "A: ?entity_id= of an unknown entity: none" 0 "$(reg "?entity_id=sensor.nope" | jq '.entities | length')"
check "A: storage exits cleanly (2)" stop_pid "$PID"

# ---- B. homeassistant schema with INFLUXDB_REGISTRY_TAGS ---------------------------------
start_sto sto_b homeiq_ha INFLUXDB_SCHEMA=homeassistant INFLUXDB_REGISTRY_TAGS=area_id,floor_id,labels
ANS=$(post "$(rec sensor.k1 2026-01-02T10:00:00.000001Z 20 kitchen ground battery),$(rec sensor.k2 2026-01-02T10:00:01.000001Z 21 kitchen ground energy),$(rec sensor.b1 2026-01-02T10:00:02.000001Z 22 bedroom first battery),$(rec sensor.n1 2026-01-02T10:00:03.000001Z 23 - - -)")
check_eq "B: four HA points stored" 4 "$(jq .stored <<<"$ANS")"
TK=$(iq homeiq_ha 'SHOW TAG KEYS FROM "°C"' | jq -r '[.results[0].series[0].values[][0]] | join(",")')
for t in area_id floor_id labels; do check "B: tag $t on HA's points ($TK)" grep -qw "$t" <<<"${TK//,/ }"; done
check "B: a registry field not asked for is no tag (device_id)" bash -c "! grep -qw device_id <<<'${TK//,/ }'"
check_eq "B: InfluxQL area_id='kitchen' returns exactly the kitchen points" "k1,k2" \
  "$(iq homeiq_ha "SELECT value, entity_id FROM \"°C\" WHERE area_id = 'kitchen'" | jq -r '[.results[0].series[0].values[][2]] | sort | join(",")')"
check_eq "B: InfluxQL labels =~ /,battery,/ returns exactly the battery points" "b1,k1" \
  "$(iq homeiq_ha "SELECT value, entity_id FROM \"°C\" WHERE labels =~ /,battery,/" | jq -r '[.results[0].series[0].values[][2]] | sort | join(",")')"
check_eq "B: InfluxQL floor_id='first' returns the bedroom point" "b1" \
  "$(iq homeiq_ha "SELECT value, entity_id FROM \"°C\" WHERE floor_id = 'first'" | jq -r '[.results[0].series[0].values[][2]] | join(",")')"
check_eq "B: the point without context has no area_id tag" 1 \
  "$(iq homeiq_ha "SELECT value FROM \"°C\" WHERE area_id = '' AND entity_id = 'n1'" | jq '.results[0].series[0].values | length')"
R=$(reg "")
check_eq "B: /api/v1/registry on the HA schema" "sensor.b1=bedroom sensor.k1=kitchen sensor.k2=kitchen" \
  "$(jq -r '[.entities[] | "\(.entity_id)=\(.area_id)"] | join(" ")' <<<"$R")"
check_eq "B: last_seen is null there (no HomeIQ events measurement)" null "$(jq -r '.entities[0].last_seen' <<<"$R")"
check "B: storage exits cleanly" stop_pid "$PID"
finish

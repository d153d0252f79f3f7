#!/usr/bin/env bash
# ha_schema_suite.sh -- INFLUXDB_SCHEMA=homeassistant against a real influxd,
# with the real enrichment-pipeline in front of the real data-storage.
#
# Use: ha_schema_suite.sh STORAGE_BIN ENRICHMENT_BIN [MIXED_EVENTS]
# Covers:
#  - golden: the reference's sample events (§2) and awkward attributes, posted
#    as HA sends them, read back from influxd equal HA's own points
#    (tests/storage/data/ha_golden.lp written as HA writes them into a second
#    database): measurements, tags, field names, field types, values, times;
#  - skipped like HA (removed, unknown, unavailable, "") and counted; a re-post
#    changes nothing; other event types in HomeIQ's measurement; GET
#    /api/v1/events answers state_changed from the identity points;
#  - a field type conflict (400) dead-letters that line only;
#  - configuration.yaml with !secret: connection, measurement_attr
#    domain__device_class, overrides per entity/glob/domain, tags,
#    tags_attributes, ignore lists, precision s, include/exclude (case 4),
#    unknown keys warned, the password never logged; wrong types and missing
#    secrets stop the start naming the key;
#  - env variables: measurement_attr entity_id, global override,
#    default_measurement, precision ms/us, static tags, filters (cases 2, 3);
#  - MIXED_EVENTS (default 50,000) mixed events: no field type conflict.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"

STO=${1:?usage: ha_schema_suite.sh STORAGE_BIN ENRICHMENT_BIN [MIXED_EVENTS]}
ENR=${2:?usage: ha_schema_suite.sh STORAGE_BIN ENRICHMENT_BIN [MIXED_EVENTS]}
NMIX=${3:-50000}
DATA=$here/data
echo "# data-storage INFLUXDB_SCHEMA=homeassistant suite"
export LOG_LEVEL=${LOG_LEVEL:-info} INFLUXDB_PING_INTERVAL_MS=200
influxd_start || bail "influxd did not start"
INFLUX=$INFLUXDB_URL
SPORT=$(free_port)
EPORT=$(free_port)
S=http://127.0.0.1:$SPORT
E=http://127.0.0.1:$EPORT
DATA_STORAGE_URL=$S ENRICHMENT_PIPELINE_PORT=$EPORT STORAGE_PROBE_INTERVAL_MS=200 start_bg enrichment "$ENR"
wait_http "$E/health" 20 || bail "enrichment-pipeline did not start"

iq() { # iq DB QUERY -> JSON
  curl -s -G "$INFLUX/query" --data-urlencode "db=$1" --data-urlencode "epoch=ns" --data-urlencode "q=$2"
}
jqe() { jq -e "$@" >/dev/null; }
# post_enr FILE -> "CODE BODY" (through the enrichment-pipeline, as ingestion does)
post_enr() {
  local c
  c=$(curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -XPOST "$E/api/v1/events" -H 'Content-Type: application/json' \
    --data-binary @"$1")
  echo "$c $(cat "$TEST_TMP/resp")"
}
metric() { curl -s "$S/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
STORAGE_PID=
# storage NAME [env ARGS...] : (re)starts data-storage with these settings
HA="STORAGE_BACKEND=influxdb INFLUXDB_SCHEMA=homeassistant"
storage() {
  local name=$1; shift
  if [ -n "$STORAGE_PID" ]; then
    local st=0
    stop_pid "$STORAGE_PID" || st=$?
    [ "$st" = 0 ] || check_eq "data-storage before '$name' exited cleanly" 0 "$(exit_status_name "$st")"
  fi
  env "$@" DATA_STORAGE_PORT=$SPORT "$STO" >"$TEST_TMP/storage-$name.log" 2>&1 &
  STORAGE_PID=$!
  TEST_PIDS+=("$STORAGE_PID")
  wait_healthy "$S/health" 30 "$STORAGE_PID" || { tail -n 20 "$TEST_TMP/storage-$name.log"; return 1; }
  wait_healthy "$E/health" 30 || return 1   # enrichment saw storage come back
}
measurements() { iq "$1" 'SHOW MEASUREMENTS' | jq -c '[.results[0].series[0].values[]?[0]] | sort'; }
# HomeIQ's own homeiq_* measurements (identity points, feed, summary: docs/INFLUX_READS.md) left out
ha_measurements() { measurements "$1" | jq -c 'map(select(startswith("homeiq_") | not))'; }
# times DB QUERY : the point times of the answer, one per line, as InfluxDB
# wrote them (jq would turn 19-digit integers into doubles)
times() { iq "$1" "$2" | grep -oE '\[[0-9]{19},' | tr -d '[,'; }
# The whole content of a database, measurement by measurement: points (all
# columns, times), field types, tag keys, as InfluxDB's own JSON text (its
# columns are sorted; jq is kept away from the 19-digit times). Comparable.
dump_db() {
  local db=$1 m
  for m in $(iq "$db" 'SHOW MEASUREMENTS' | jq -r '.results[0].series[0].values[]?[0] | @base64'); do
    m=$(base64 -d <<<"$m")
    case $m in home_assistant_events | homeiq_*) continue ;; esac   # HomeIQ's own (dead letters, identity, feed, summary)
    local qm=${m//\\/\\\\}; qm=${qm//\"/\\\"}
    echo "$m points $(iq "$db" "SELECT * FROM \"$qm\"")"
    echo "$m fields $(iq "$db" "SHOW FIELD KEYS FROM \"$qm\"")"
    echo "$m tags $(iq "$db" "SHOW TAG KEYS FROM \"$qm\"")"
  done | sort
}

# ---- golden: HA's points, read back ------------------------------------------
storage golden $HA INFLUXDB_DATABASE=hiq || bail "data-storage did not start"
# (posted as they are: jq would print the attribute 1.0 as 1, which Python's str() tells apart)
r1=$(post_enr "$here/../enrichment/data/ha_examples.json")
r2=$(post_enr "$DATA/ha_awkward_events.json")
check_eq "golden events: enrichment answers 200" "200 200" "${r1%% *} ${r2%% *}"
check_eq "golden events: nothing rejected" '[] []' "$(jq -c '.rejected' <<<"${r1#* }") $(jq -c '.rejected' <<<"${r2#* }")"
check_eq "golden events: 7 + 5 HA points + 1 call_service stored" "7 6" "$(jq .stored <<<"${r1#* }") $(jq .stored <<<"${r2#* }")"
curl -s -XPOST "$INFLUX/query" --data-urlencode 'q=CREATE DATABASE ref' >/dev/null
grep -v '^#' "$DATA/ha_golden.lp" > "$TEST_TMP/golden.lp"
check_eq "HA's golden lines load into the reference database" 204 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$INFLUX/write?db=ref" --data-binary @"$TEST_TMP/golden.lp")"
dump_db ref > "$TEST_TMP/ref.dump"
dump_db hiq > "$TEST_TMP/hiq.dump"
check_eq "golden: same measurements as HA's (plus HomeIQ's own)" \
  "$(measurements ref | jq -c '. + ["home_assistant_events"] | sort')" "$(ha_measurements hiq)"
check_eq "golden: one identity point per HA point (12, influx_ids.h)" 12 \
  "$(iq hiq 'SELECT count(event_id) FROM homeiq_ids' | jq '.results[0].series[0].values[0][1]')"
check_eq "golden: $(grep -c . "$TEST_TMP/golden.lp") points in $(grep -c '^[^ ]* points ' "$TEST_TMP/ref.dump") measurements read back equal HA's (tags, fields, types, values, ns times)" \
  "$(md5sum < "$TEST_TMP/ref.dump")" "$(md5sum < "$TEST_TMP/hiq.dump")"
if ! cmp -s "$TEST_TMP/ref.dump" "$TEST_TMP/hiq.dump"; then diff "$TEST_TMP/ref.dump" "$TEST_TMP/hiq.dump" | head -20; fi
check_eq "golden: every measurement's field types as HA's" "$(grep -c '^[^ ]* fields ' "$TEST_TMP/ref.dump")" \
  "$(grep '^[^ ]* fields ' "$TEST_TMP/hiq.dump" | grep -cxFf - "$TEST_TMP/ref.dump")"
check_eq "skipped as HA skips them: removed, unknown, unavailable, empty state" "1 1 1 1" \
  "$(for k in removed unknown unavailable empty_state; do metric "homeiq_storage_ha_points_total{result=\"$k\"}"; done | xargs)"
check_eq "written counter" 12 "$(metric 'homeiq_storage_ha_points_total{result="written"}')"
h=$(curl -s "$S/health")
check "/health: schema homeassistant with the point counters" \
  jqe '.backend.schema == "homeassistant" and .backend.ha_points.written == 12 and .backend.ha_points.removed == 1' <<<"$h"
check_eq "the call_service event is in HomeIQ's measurement" 1 \
  "$(iq hiq 'SELECT count(record) FROM home_assistant_events' | jq '.results[0].series[0].values[0][1]')"
post_enr "$here/../enrichment/data/ha_examples.json" >/dev/null
r=$(post_enr "$DATA/ha_awkward_events.json")
check_eq "re-post: 200, the 5 HA points (their identity points) and call_service duplicates, nothing stored" \
  "200 6 0" "${r%% *} $(jq -r '"\(.duplicates) \(.stored)"' <<<"${r#* }")"
dump_db hiq > "$TEST_TMP/hiq2.dump"
check "re-post: the database is unchanged" cmp -s "$TEST_TMP/hiq.dump" "$TEST_TMP/hiq2.dump"
c=$(curl -s -o "$TEST_TMP/get" -w '%{http_code}' "$S/api/v1/events?limit=100")
check_eq "GET /api/v1/events: every stored event, HA's from their identity points (12 + call_service)" \
  "200 13 call_service,state_changed" "$c $(jq -r '"\(.count) \([.events[].event_type] | unique | join(","))"' "$TEST_TMP/get")"
c=$(curl -s -o "$TEST_TMP/get" -w '%{http_code}' "$S/api/v1/events?event_type=state_changed&limit=100")
check_eq "GET ?event_type=state_changed: the 12 HomeIQ records of HA's points, each with its event_id" "200 12 12" \
  "$c $(jq -r '"\(.count) \([.events[].event_id] | unique | length)"' "$TEST_TMP/get")"
c=$(curl -s -o "$TEST_TMP/get" -w '%{http_code}' "$S/api/v1/events?event_type=call_service")
check_eq "GET ?event_type=call_service: the HomeIQ record" "200 1 call_service" \
  "$c $(jq -r '"\(.count) \(.events[0].event_type)"' "$TEST_TMP/get")"

# storage's own answer says what it acknowledged without a point
printf '%s' '[{"event_type":"state_changed","entity_id":"sensor.z","time_fired":"2025-06-14T11:00:00.000001Z","state":"unknown"},
 {"event_type":"state_changed","entity_id":"sensor.z","time_fired":"2025-06-14T11:00:00.000002Z","state":"5"}]' > "$TEST_TMP/direct.json"
check_eq "storage answers stored 1, skipped 1 (unknown), nothing rejected" '[1,1,0,[]]' \
  "$(curl -s -XPOST "$S/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/direct.json" |
     jq -c '[.stored, .skipped, .dead_lettered, .rejected]')"

# ---- the Grafana dashboards' queries run on what was written -------------------
# dash_queries DASHBOARD DB : every variable and panel query of the dashboard,
# Grafana's macros filled in, must answer without error and with data.
dash_queries() {
  local dash=$1 db=$2 q n=0 bad=0
  while IFS= read -r q; do
    q=${q//\$timeFilter/time >= \'2025-06-01T00:00:00Z\' AND time < now() + 1d}   # dead letters: receive time
    q=${q//\$__interval/30d}; q=${q//\$unit/°C}; q=${q//\$entity/.*}; q=${q//\$domain/.*}
    n=$((n + 1))
    if ! iq "$db" "$q" | jq -e '(.results[0].error == null) and ([.results[0].series[]?.values | length] | add > 0)' >/dev/null; then
      bad=$((bad + 1)); echo "# dashboard query without data: $q"; iq "$db" "$q" | head -c 300; echo
    fi
  done < <(jq -r '(.templating.list[].query, .panels[].targets[].query)' "$dash")
  echo "$n $bad"
}
check_eq "the homeassistant-schema Grafana dashboard: 7 queries answer with data" "7 0" \
  "$(dash_queries "$here/../../deploy/grafana/homeiq-influxdb-homeassistant-schema.json" hiq | tail -1)"

# ---- a 400 for one line: that line dead-lettered, the rest stored -------------
ev() { # ev ENTITY STATE ATTRS_JSON SECOND
  jq -nc --arg e "$1" --arg s "$2" --argjson a "$3" --arg t "2025-06-15T10:00:$4.123456+00:00" \
    '{event_type:"state_changed", time_fired:$t, origin:"LOCAL", context:{id:("01JXQ" + ($t|gsub("[^0-9]";""))[-21:]), parent_id:null, user_id:null},
      data:{entity_id:$e, old_state:null, new_state:{entity_id:$e, state:$s, attributes:$a, last_changed:$t, last_updated:$t,
      context:{id:"x", parent_id:null, user_id:null}}}}'
}
ev sensor.c1 20 '{"unit_of_measurement":"°C","x_str":5}' 01 | jq -s . > "$TEST_TMP/c1.json"
check_eq "x_str as a float field in °C" 200 "$(post_enr "$TEST_TMP/c1.json" | cut -d' ' -f1)"
{ ev sensor.c2 21 '{"unit_of_measurement":"°C","x":"abc"}' 02; ev sensor.c3 22 '{"unit_of_measurement":"°C"}' 03; } \
  | jq -s . > "$TEST_TMP/c2.json"
r=$(post_enr "$TEST_TMP/c2.json")
check_eq "x_str as a string in °C: 200, index 0 rejected, 1 stored" "200 [0] 1" \
  "${r%% *} $(jq -c '[.rejected[].index]' <<<"${r#* }") $(jq .stored <<<"${r#* }")"
check "the reason is InfluxDB's field type conflict" jqe '.rejected[0].error | test("conflict")' <<<"${r#* }"
check_eq "the good line is stored" 22 \
  "$(iq hiq "SELECT value FROM \"°C\" WHERE entity_id = 'c3'" | jq '.results[0].series[0].values[0][1]')"
check "the refused line is a dead letter with its event" \
  jqe '[.dead_letters[] | select(.error | test("conflict"))] | length == 1' <<<"$(curl -s "$S/api/v1/dead-letters?limit=5")"

# ---- configuration.yaml with !secret -----------------------------------------
case_events() { # the same entities for every configuration case
  {
    ev sensor.kitchen_temp 21.5 '{"unit_of_measurement":"°C","device_class":"temperature","state_class":"measurement","icon":"mdi:t","friendly_name":"Kitchen"}' 11
    ev sensor.house_power 1200 '{"unit_of_measurement":"W","device_class":"power","state_class":"measurement","friendly_name":"House"}' 12
    ev climate.hall heat '{"current_temperature":20.5,"icon":"mdi:h"}' 13
    ev binary_sensor.door on '{"device_class":"motion"}' 14
    ev light.desk_lamp on '{"brightness":200}' 15
    ev light.ceiling off '{}' 16
    ev sensor.noisy 1 '{"unit_of_measurement":"W"}' 17
    ev sensor.t_raw 2 '{"unit_of_measurement":"W"}' 18
    ev switch.x on '{}' 19
    ev sensor.hum 55 '{"unit_of_measurement":"%","device_class":"humidity"}' 20
  } | jq -s .
}
case_events > "$TEST_TMP/case.json"
mkdir -p "$TEST_TMP/ha"
ihost=${INFLUX#http://}
cat > "$TEST_TMP/ha/secrets.yaml" <<EOF
influx_password: "s3cr3t-Pa55word"
influx_host: "${ihost%:*}"
EOF
cat > "$TEST_TMP/ha/configuration.yaml" <<EOF
homeassistant:
  name: Home
automation: !include automations.yaml
influxdb:
  host: !secret influx_host
  port: ${ihost##*:}
  database: case_yaml
  username: homeiq
  password: !secret influx_password
  max_retries: 3
  measurement_attr: domain__device_class
  tags:
    source: hass
  tags_attributes:
    - friendly_name
  ignore_attributes: [icon]
  precision: s
  component_config:
    sensor.kitchen_temp:
      override_measurement: kitchen
  component_config_glob:
    "sensor.*_power":
      override_measurement: power
      ignore_attributes: [state_class]
  component_config_domain:
    climate:
      override_measurement: hvac
  include:
    domains: [sensor, climate, binary_sensor]
    entity_globs: "light.*_lamp"
  exclude:
    entities: sensor.noisy
    entity_globs: ["sensor.*_raw"]
  unknown_key: 1
EOF
storage yaml -u INFLUXDB_URL -u STORAGE_BACKEND -u INFLUXDB_SCHEMA INFLUXDB_HA_CONFIG="$TEST_TMP/ha/configuration.yaml" || bail "data-storage did not start"
check_eq "yaml: host/port/database from the block (host via !secret)" "$INFLUX case_yaml" \
  "$(curl -s "$S/health" | jq -r '"\(.backend.url) \(.backend.database)"')"
r=$(post_enr "$TEST_TMP/case.json")
check_eq "yaml: 200, 6 written, excluded ones neither rejected nor dead-lettered" "200 6 [] 0" \
  "${r%% *} $(jq -c '.stored, .rejected, .dead_lettered' <<<"${r#* }" | xargs)"
check_eq "yaml: overrides per entity/glob/domain, domain__device_class, include glob; excluded ones absent" \
  '["binary_sensor__motion","hvac","kitchen","light","power","sensor__humidity"]' "$(ha_measurements case_yaml)"
check_eq "yaml: 4 excluded, counted" 4 "$(metric 'homeiq_storage_ha_points_total{result="excluded"}')"
check_eq "yaml: /health counts them too" 4 "$(curl -s "$S/health" | jq .backend.ha_points.excluded)"
check_eq "yaml: static tag and tags_attributes" '["domain","entity_id","friendly_name","source"]' \
  "$(iq case_yaml 'SHOW TAG KEYS FROM kitchen' | jq -c '[.results[0].series[0].values[][0]] | sort')"
check_eq "yaml: tag values" '["Kitchen","hass"]' \
  "$(iq case_yaml 'SELECT friendly_name, source, value FROM kitchen' | jq -c '.results[0].series[0].values[0][1:3]')"
check_eq "yaml: kitchen keeps device_class (not its measurement's rule) and state_class, not icon" \
  '["device_class_str","state_class_str","unit_of_measurement_str","value"]' \
  "$(iq case_yaml 'SHOW FIELD KEYS FROM kitchen' | jq -c '[.results[0].series[0].values[][0]] | sort')"
check_eq "yaml: glob ignore_attributes drops state_class on power" \
  '["device_class_str","unit_of_measurement_str","value"]' \
  "$(iq case_yaml 'SHOW FIELD KEYS FROM power' | jq -c '[.results[0].series[0].values[][0]] | sort')"
times case_yaml 'SELECT value FROM /.*/' > "$TEST_TMP/t_s"
check_eq "yaml: precision s (5 points, all whole seconds)" "5 5" \
  "$(grep -c . "$TEST_TMP/t_s") $(grep -c '000000000$' "$TEST_TMP/t_s")"
check "yaml: the unknown key is warned about" grep -q "unknown_key is not a known key" "$TEST_TMP/storage-yaml.log"
check "yaml: the password never reaches the log" bash -c "! grep -q 's3cr3t-Pa55word' '$TEST_TMP/storage-yaml.log'"

# wrong configurations stop the start with the key named
bad_start() { # bad_start NAME YAML_BODY -> prints the first error line; exit code must be non-zero
  mkdir -p "$TEST_TMP/bad-$1"
  cp "$TEST_TMP/ha/secrets.yaml" "$TEST_TMP/bad-$1/"
  printf 'influxdb:\n%s\n' "$2" > "$TEST_TMP/bad-$1/configuration.yaml"
  env -u INFLUXDB_URL DATA_STORAGE_PORT=$(free_port) INFLUXDB_HA_CONFIG="$TEST_TMP/bad-$1/configuration.yaml" \
    timeout 10 "$STO" > "$TEST_TMP/bad-$1.log" 2>&1
  echo "rc=$? $(grep -m1 -o 'INFLUXDB_HA_CONFIG.*' "$TEST_TMP/bad-$1.log")"
}
check "wrong type: port" bash -c "grep -q 'rc=1 .*line 2: influxdb.port: expected an integer, got \"eighty\"' <<<'$(bad_start port '  port: eighty')'"
check "wrong type: tags" bash -c "grep -q 'rc=1 .*influxdb.tags: expected a mapping' <<<'$(bad_start tags '  tags: [a, b]')'"
check "wrong value: precision" bash -c "grep -q 'rc=1 .*influxdb.precision: expected ns, us, ms or s' <<<'$(bad_start prec '  precision: m')'"
check "missing secret named" bash -c "grep -q 'rc=1 .*influxdb.password: !secret nope is not defined' <<<'$(bad_start sec '  password: !secret nope')'"
check "v1 and v2 keys mixed" bash -c "grep -q 'rc=1 .*token, organization and bucket need api_version: 2' <<<'$(bad_start mix '  token: abc')'"
check_eq "INFLUXDB_SCHEMA=bogus stops the start" 1 \
  "$(env INFLUXDB_SCHEMA=bogus STORAGE_BACKEND=influxdb DATA_STORAGE_PORT=$(free_port) timeout 10 "$STO" >/dev/null 2>&1; echo $?)"

# ---- environment variables -----------------------------------------------------
storage env1 $HA INFLUXDB_DATABASE=case_env1 INFLUXDB_MEASUREMENT_ATTR=entity_id INFLUXDB_PRECISION=ms \
  INFLUXDB_TAGS=site=home,room=all INFLUXDB_EXCLUDE_DOMAINS=switch,light INFLUXDB_EXCLUDE_ENTITIES=sensor.noisy || bail "data-storage did not start"
r=$(post_enr "$TEST_TMP/case.json")
check_eq "env (filter case 3: excludes only): measurement = entity id" \
  '["binary_sensor.door","climate.hall","sensor.house_power","sensor.hum","sensor.kitchen_temp","sensor.t_raw"]' \
  "$(ha_measurements case_env1)"
times case_env1 'SELECT value FROM /.*/' > "$TEST_TMP/t_ms"
check_eq "env: precision ms (5 points, all ...123000000)" "5 5" \
  "$(grep -c . "$TEST_TMP/t_ms") $(grep -c '123000000$' "$TEST_TMP/t_ms")"
check_eq "env: static tags" '["home","all"]' \
  "$(iq case_env1 'SELECT site, room, value FROM "sensor.hum"' | jq -c '.results[0].series[0].values[0][1:3]')"
storage env2 $HA INFLUXDB_DATABASE=case_env2 INFLUXDB_OVERRIDE_MEASUREMENT=ha INFLUXDB_PRECISION=us \
  INFLUXDB_INCLUDE_ENTITY_GLOBS='sensor.*_temp,sensor.h*' INFLUXDB_INCLUDE_ENTITIES=light.desk_lamp || bail "data-storage did not start"
post_enr "$TEST_TMP/case.json" >/dev/null
check_eq "env (filter case 2: includes only) + global override: one measurement" '["ha"]' "$(ha_measurements case_env2)"
check_eq "env: the included entities" '["desk_lamp","house_power","hum","kitchen_temp"]' \
  "$(iq case_env2 'SHOW TAG VALUES FROM ha WITH KEY = entity_id' | jq -c '[.results[0].series[0].values[][1]] | sort')"
check "env: the unit is a field under an override" \
  jqe '[.results[0].series[0].values[][0]] | index("unit_of_measurement_str") != null' <<<"$(iq case_env2 'SHOW FIELD KEYS FROM ha')"
times case_env2 'SELECT value FROM ha' > "$TEST_TMP/t_us"
check_eq "env: precision us (4 points, all ...123456000)" "4 4" \
  "$(grep -c . "$TEST_TMP/t_us") $(grep -c '123456000$' "$TEST_TMP/t_us")"
storage env3 $HA INFLUXDB_DATABASE=case_env3 INFLUXDB_DEFAULT_MEASUREMENT=state || bail "data-storage did not start"
post_enr "$TEST_TMP/case.json" >/dev/null
check_eq "env: default_measurement for points without a unit" '["%","W","state","°C"]' "$(ha_measurements case_env3)"

# ---- differential: random awkward events against real Python -------------------
# ha_oracle.py computes HA's line for each event with Python's own float(),
# str() and re; what influxd holds after HomeIQ wrote the events must equal
# what it holds after those lines are written as HA writes them.
storage diff $HA INFLUXDB_DATABASE=diff || bail "data-storage did not start"
ndiff=$(python3 "$here/ha_oracle.py" "${HA_ORACLE_EVENTS:-3000}" 7 "$TEST_TMP/oracle.json" "$TEST_TMP/oracle.lp")
r=$(post_enr "$TEST_TMP/oracle.json")
check_eq "differential: 200, nothing rejected, $ndiff points written" "200 [] $ndiff" \
  "${r%% *} $(jq -c .rejected <<<"${r#* }") $(metric 'homeiq_storage_ha_points_total{result="written"}')"
curl -s -XPOST "$INFLUX/query" --data-urlencode 'q=CREATE DATABASE oracle' >/dev/null
check_eq "differential: Python's lines load into a second database" 204 \
  "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$INFLUX/write?db=oracle" --data-binary @"$TEST_TMP/oracle.lp")"
dump_db oracle > "$TEST_TMP/oracle.dump"
dump_db diff > "$TEST_TMP/diff.dump"
check_eq "differential: $ndiff random points in $(grep -c '^[^ ]* points ' "$TEST_TMP/oracle.dump") measurements equal Python's" \
  "$(md5sum < "$TEST_TMP/oracle.dump")" "$(md5sum < "$TEST_TMP/diff.dump")"
if ! cmp -s "$TEST_TMP/oracle.dump" "$TEST_TMP/diff.dump"; then
  diff <(tr '[' '\n' < "$TEST_TMP/oracle.dump") <(tr '[' '\n' < "$TEST_TMP/diff.dump") | head -20
fi

# ---- mixed events: field types never conflict ----------------------------------
storage mixed $HA INFLUXDB_DATABASE=mixed || bail "data-storage did not start"
jq -nc --argjson n "$NMIX" '
  def pad6: tostring | ("000000" + .)[-6:];
  def t(i): ((1749900000 + (i / 20 | floor)) | todate | sub("Z$"; "")) + "." + ((i % 20) * 7 | pad6) + "+00:00";
  [range(0; $n) | . as $i | ($i % 40) as $e
   | (["sensor","binary_sensor","light","switch","cover","person","lock","sensor"][$e % 8]) as $d
   | ($d + ".e" + ($e | tostring)) as $id
   | (if $d == "sensor" then ([(($i % 1000) / 10 | tostring), "unknown", "1e3", " 7 ", "unavailable", "12"][$i % 6])
      elif $d == "cover" then ["open","closed"][$i % 2]
      elif $d == "person" then ["home","not_home"][$i % 2]
      elif $d == "lock" then ["locked","unlocked",""][$i % 3]
      else ["on","off"][$i % 2] end) as $s
   | {battery: [50, "low", null, true, "75%", [1,2]][$i % 6],
      last_seen: ("Last seen \($i % 60) minutes ago"), friendly_name: "E \($e)",
      unit_of_measurement: (if $d == "sensor" then ["°C","W","%"][$e % 3] else null end),
      value: (if $i % 5 == 0 then "x\($i)" else $i end), list: [$i % 3, "a"], nested: {k: ($i % 2 == 0)},
      temperature: (if $i % 7 == 0 then "inf" else ($i % 30) end)} as $a
   | {event_type: "state_changed", time_fired: t($i), origin: "LOCAL",
      context: {id: ("01JXR" + ($i | tostring | ("000000000000000000000" + .)[-21:])), parent_id: null, user_id: null},
      data: {entity_id: $id, old_state: null,
             new_state: {entity_id: $id, state: $s, attributes: $a, last_changed: t($i), last_updated: t($i),
                         context: {id: "c", parent_id: null, user_id: null}}}}]' > "$TEST_TMP/mixed_all.json"
want_written=$(jq '[.[] | .data.new_state.state | select(. != "unknown" and . != "unavailable" and . != "")] | length' "$TEST_TMP/mixed_all.json")
ok=1; rej=0; B=1000; k=0
jq -c --argjson b $B '. as $a | range(0; length; $b) | $a[.:. + $b]' "$TEST_TMP/mixed_all.json" > "$TEST_TMP/mixed.batches"
while IFS= read -r line; do
  printf '%s' "$line" > "$TEST_TMP/mb.json"
  r=$(post_enr "$TEST_TMP/mb.json")
  [ "${r%% *}" = 200 ] || { ok=0; echo "batch $k: ${r:0:300}"; }
  rej=$((rej + $(jq '.rejected | length' <<<"${r#* }" 2>/dev/null || echo 1)))
  k=$((k + 1))
done < "$TEST_TMP/mixed.batches"
check "mixed: $NMIX events in batches of $B answered 200" [ $ok = 1 ]
check_eq "mixed: no rejects (no field type conflict)" 0 "$rej"
check_eq "mixed: no errors counted" 0 "$(metric 'homeiq_storage_ha_points_total{result="error"}')"
check_eq "mixed: $want_written points written" "$want_written" "$(metric 'homeiq_storage_ha_points_total{result="written"}')"
check_eq "mixed: every written point is in InfluxDB" "$want_written" \
  "$(iq mixed 'SELECT count(value) FROM /.*/' | jq '[.results[0].series[].values[0][1]] | add')"
check "mixed: battery is a float and battery_str a string everywhere" \
  jqe '[.results[0].series[].values[] | select(.[0] == "battery" and .[1] != "float" or .[0] == "battery_str" and .[1] != "string")] | length == 0' \
  <<<"$(iq mixed 'SHOW FIELD KEYS')"

stop_pid "$STORAGE_PID"
check_eq "data-storage exits 0 on SIGTERM" 0 $?
STORAGE_PID=

# ---- the same events on the homeiq schema, for its dashboard --------------------
storage homeiq STORAGE_BACKEND=influxdb INFLUXDB_SCHEMA=homeiq INFLUXDB_DATABASE=homeiq_schema || bail "data-storage did not start"
post_enr "$here/../enrichment/data/ha_examples.json" >/dev/null
post_enr "$DATA/ha_awkward_events.json" >/dev/null
printf '{"events":[],"dead_letters":[{"error":"test","event":{"x":1},"source":"test"}]}' > "$TEST_TMP/dl.json"
curl -s -o /dev/null -XPOST "$S/api/v1/events" -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/dl.json"
check_eq "homeiq schema: GET /api/v1/events answers every event" 17 "$(curl -s "$S/api/v1/events?limit=100" | jq .count)"
check_eq "the homeiq-schema Grafana dashboard: 8 queries answer with data" "8 0" \
  "$(dash_queries "$here/../../deploy/grafana/homeiq-influxdb-homeiq-schema.json" homeiq_schema | tail -1)"
stop_pid "$STORAGE_PID"
check_eq "data-storage (homeiq schema) exits 0 on SIGTERM" 0 $?
influxd_stop
finish

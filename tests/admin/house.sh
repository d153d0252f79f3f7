# tests/admin/house.sh -- sourced by the admin-api tests: a live simulated
# house on free loopback ports (simulator -> websocket-ingestion ->
# enrichment-pipeline -> data-storage on SQLite, or with HOUSE_BACKEND=influxdb
# on a throw-away real influxd) plus admin-api.
# Needs common.sh sourced and SIM ING ENR STO ADM set to the binaries.
HOUSE_BACKEND=${HOUSE_BACKEND:-sqlite}
if [ "$HOUSE_BACKEND" = influxdb ]; then
  . "$(dirname "${BASH_SOURCE[0]}")/../lib/influxd.sh"
  export STORAGE_BACKEND=influxdb INFLUXDB_DATABASE=house INFLUXDB_PING_INTERVAL_MS=500
  # HOUSE_INFLUX_SCHEMA=homeassistant: HA's own points plus identity points (docs/INFLUX_READS.md)
  export INFLUXDB_SCHEMA=${HOUSE_INFLUX_SCHEMA:-homeiq}
elif [ "$HOUSE_BACKEND" = clickhouse ]; then # issue 18: a throw-away real clickhouse-server
  . "$(dirname "${BASH_SOURCE[0]}")/../lib/clickhouse.sh"
  # one storage: its own batches in flight bound the tail exactly; a short settle keeps the page's 2 s promise
  export STORAGE_BACKEND=clickhouse CLICKHOUSE_DATABASE=house CLICKHOUSE_PING_INTERVAL_MS=500 CLICKHOUSE_FEED_SETTLE_MS=300
fi
echo "# the house stores on $HOUSE_BACKEND${HOUSE_INFLUX_SCHEMA:+ (schema $HOUSE_INFLUX_SCHEMA)}"
SIM_PORT=$(free_port) ST_PORT=$(free_port) EN_PORT=$(free_port) IN_PORT=$(free_port) AD_PORT=$(free_port)
export DATA_DIR=$TEST_TMP/data LOG_LEVEL=${LOG_LEVEL:-warn}
export WEBSOCKET_INGESTION_URL=http://127.0.0.1:$IN_PORT
export ENRICHMENT_PIPELINE_URL=http://127.0.0.1:$EN_PORT
export DATA_STORAGE_URL=http://127.0.0.1:$ST_PORT
export HOME_ASSISTANT_URL=http://127.0.0.1:$SIM_PORT HOME_ASSISTANT_TOKEN=admin-test-token SIMULATOR_TOKEN=admin-test-token
A=http://127.0.0.1:$AD_PORT
# Every service asks for this token (docs/SECURITY.md); the tests' curl sends it
# through a config file (never argv). `curl -q` leaves it out.
export HOMEIQ_API_TOKEN=admin-test-$RANDOM$RANDOM$RANDOM
export CURL_HOME=$TEST_TMP/curlhome
mkdir -p "$CURL_HOME" && printf 'header = "Authorization: Bearer %s"\n' "$HOMEIQ_API_TOKEN" >"$CURL_HOME/.curlrc"

house_start_storage() { start_bg storage env DATA_STORAGE_PORT="$ST_PORT" "$STO"; }
house_start() {
  if [ "$HOUSE_BACKEND" = influxdb ]; then influxd_start || return 1; fi
  if [ "$HOUSE_BACKEND" = clickhouse ]; then clickhouse_start house || return 1; fi
  start_bg sim env SIMULATOR_PORT="$SIM_PORT" "$SIM"
  wait_http "http://127.0.0.1:$SIM_PORT/health" 20 || return 1
  house_start_storage
  start_bg enrich env ENRICHMENT_PIPELINE_PORT="$EN_PORT" "$ENR"
  start_bg ingest env WEBSOCKET_INGESTION_PORT="$IN_PORT" "$ING"
  start_bg admin env ADMIN_API_PORT="$AD_PORT" "$ADM"
  wait_healthy "$DATA_STORAGE_URL/health" 30 && wait_healthy "$ENRICHMENT_PIPELINE_URL/health" 30 &&
    wait_healthy "$WEBSOCKET_INGESTION_URL/health" 30 && wait_healthy "$A/api/v1/health" 30
}

# probe ENTITY STATE [CONTEXT] : one state_changed, fired now, through ingestion's forward API.
probe() {
  local t ctx=${3:-probe-$RANDOM$RANDOM}
  t=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary \
    "{\"event_type\":\"state_changed\",\"entity_id\":\"$1\",\"state\":\"$2\",\"time_fired\":\"$t\",\"context_id\":\"$ctx\"}" \
    "$WEBSOCKET_INGESTION_URL/api/v1/events/forward"
}

# house_seed_history : 24 h of history for a few of the house's entities, posted
# straight to data-storage as stored records (temperatures every 5 min, a lamp
# switching every 2 h), so the history charts have something to draw.
house_seed_history() {
  /usr/bin/python3 - "$(date +%s)" <<'PY' >"$TEST_TMP/history.json"
import json, math, sys, datetime
now = int(sys.argv[1])
ts = lambda s: datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
evs = []
for e, base in (("sensor.living_room_temperature", 21.0), ("sensor.kitchen_temperature", 19.5)):
    for i in range(288):
        t = now - 86400 + 300 * i
        v = round(base + 2.5 * math.sin(2 * math.pi * i / 288 + (0.8 if "kitchen" in e else 0)), 1)
        evs.append({"event_type": "state_changed", "entity_id": e, "domain": "sensor", "time_fired": ts(t),
                    "context_id": f"seed-{e}-{i}", "state": str(v), "value": v, "unit_of_measurement": "°C"})
for i in range(12):
    t = now - 86400 + 7200 * i
    s = "on" if i % 2 else "off"
    evs.append({"event_type": "state_changed", "entity_id": "light.living_room_spots", "domain": "light",
                "time_fired": ts(t), "context_id": f"seed-spots-{i}", "state": s, "value": 1.0 if s == "on" else 0.0})
print(json.dumps({"events": evs}))
PY
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$TEST_TMP/history.json" "$DATA_STORAGE_URL/api/v1/events")" = 200 ]
}

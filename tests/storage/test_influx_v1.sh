#!/usr/bin/env bash
# tests/storage/test_influx_v1.sh -- data-storage against a real influxd 1.x
# with authentication on, for the promises of its --help / README that the
# storage suite does not reach:
#  - INFLUXDB_USERNAME / INFLUXDB_PASSWORD (basic auth): a wrong password is a
#    503 (never a 200), the right one stores; the password never reaches a log;
#  - INFLUXDB_CHUNK_LINES: a batch goes out in ceil(lines / chunk) write
#    requests (counted by influxd's own /debug/vars);
#  - INFLUXDB_WRITE_LINGER_MS: batches posted together wait for the linger, all stored once;
#  - the database missing: writes answer 503 and /health says
#    influxdb_database_missing; a restart creates it again ("created at start if
#    missing") and the batch is stored.
# (InfluxDB's v2 API cannot run here: Debian 12 ships influxdb 1.x only.)
# Usage: test_influx_v1.sh DATA_STORAGE
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/influxd.sh"
STO=$1
PW="pw-$RANDOM$RANDOM-secret"
DB=homeiq_v1auth

INFLUXD_AUTH_ENABLED=true influxd_start || bail "influxd (auth enabled) starts"
iq() { # iq USER:PASS QUERY : an InfluxQL statement, as that user
  curl -s -u "$1" -XPOST "$INFLUXDB_URL/query" --data-urlencode "q=$2"
}
# With auth on and no user yet, influxd accepts exactly one thing: the first admin.
curl -s -XPOST "$INFLUXDB_URL/query" --data-urlencode "q=CREATE USER admin WITH PASSWORD '$PW' WITH ALL PRIVILEGES" >/dev/null
check "influxd refuses a query without credentials now" \
  bash -c "curl -s -XPOST '$INFLUXDB_URL/query' --data-urlencode 'q=SHOW DATABASES' | grep -q 'unable to parse authentication credentials\|authorization failed'"
write_reqs() { curl -s "$INFLUXDB_URL/debug/vars" | jq '[to_entries[] | select(.key | startswith("httpd")) | .value.values.writeReq] | add // 0'; }

# batch N FIRST : N records with distinct identities
batch() { jq -nc --argjson n "$1" --argjson f "$2" '[range($f; $f + $n) | {event_type: "state_changed",
  entity_id: "sensor.v1_\(.)", time_fired: ((1750000000 + .) | todate), state: "\(.)", context_id: "v1-\(.)"}]'; }
post() { curl -s -o "$TEST_TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$U/api/v1/events"; }
health_reason() { curl -s "$U/health" | jq -r .reason; }
# storage NAME VAR=value... : data-storage on influxd; sets U and SPID
storage() {
  local name=$1; shift
  local p; p=$(free_port); U=http://127.0.0.1:$p
  start_bg "$name" env DATA_STORAGE_PORT=$p DATA_DIR="$TEST_TMP/$name" STORAGE_BACKEND=influxdb \
    INFLUXDB_URL="$INFLUXDB_URL" INFLUXDB_DATABASE=$DB INFLUXDB_USERNAME=admin LOG_LEVEL=debug "$@" "$STO"
  SPID=$LAST_PID
  wait_http "$U/health" 20 "$SPID" || bail "data-storage ($name) started"
}

# ---- wrong password ----------------------------------------------------------------
storage wrongpw INFLUXDB_PASSWORD="not-$PW" INFLUXDB_PING_INTERVAL_MS=200
check_eq "wrong password: a batch is not acknowledged (503)" 503 "$(batch 3 0 | post)"
check "wrong password: /health 503" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$U/health')\" = 503 ]"
check "wrong password: exits cleanly" stop_pid "$SPID"

# ---- right password, INFLUXDB_CHUNK_LINES=7 ----------------------------------------------
printf '%s\n' "$PW" >"$TEST_TMP/pw"
# The counts below are the events' requests and the summary's: statistics off, since their flush (off the ack
# path, at most once a second) writes its mark whenever the feed moved (docs/STATISTICS.md).
storage rightpw INFLUXDB_PASSWORD_FILE="$TEST_TMP/pw" INFLUXDB_CHUNK_LINES=7 INFLUXDB_PING_INTERVAL_MS=200 \
  INFLUXDB_STATISTICS=0
check "right password: healthy (database created with the credentials)" wait_healthy "$U/health" 20 "$SPID"
# After each acknowledged batch the dashboard's entity summary (influx_query.c, docs/INFLUX_READS.md) is
# written as one more request, at most once a second: let the start-up's settle, count it in after the batch.
sleep 1.5
W0=$(write_reqs)
check_eq "50 events with INFLUXDB_CHUNK_LINES=7: 200" 200 "$(batch 50 100 | post)"
check_eq "... all 50 stored" 50 "$(jq .stored "$TEST_TMP/resp")"
reqs_at_least() { [ $(( $(write_reqs) - W0 )) -ge "$1" ]; }
wait_for 30 reqs_at_least 9 # the summary follows within a second: waited for, not slept for
W1=$(write_reqs)
check_eq "... in ceil(50 / 7) = 8 write requests + 1 entity summary (influxd's writeReq counter)" 9 $((W1 - W0))
check_eq "... and readable" 50 "$(curl -s "$U/api/v1/events?limit=1000" | jq '[.events[] | select(.entity_id | startswith("sensor.v1_"))] | length')"
W0=$(write_reqs)
check_eq "7 events: 200" 200 "$(batch 7 200 | post)"
wait_for 30 reqs_at_least 2
check_eq "... in one write request + 1 entity summary" 2 $(( $(write_reqs) - W0 ))
# A line InfluxDB refuses in the second chunk (issue 15: a chunk's lines are built when it is sent): it
# alone is dead-lettered, the other 11 of both chunks are stored. A string "value" in the shard makes a float one conflict.
curl -s -u "admin:$PW" -XPOST "$INFLUXDB_URL/write?db=$DB&precision=s" \
  --data-binary 'home_assistant_events,entity_id=sensor.v1c value="text",event_id="x" 1577836800' >/dev/null
jq -nc '[range(12) | {event_type: "state_changed", entity_id: "sensor.v1c_\(.)", time_fired: "2020-01-01T00:00:\(10 + .)Z",
  state: "s\(.)", context_id: "v1c-\(.)"} + (if . == 9 then {state: "1.5", value: 1.5} else {} end)]' >"$TEST_TMP/conflict.json"
check_eq "12 events over 2 chunks, the 10th refused by InfluxDB: 11 stored, index 9 rejected, 1 dead letter" '200 [11,[9],1]' \
  "$(post <"$TEST_TMP/conflict.json") $(jq -c '[.stored,[.rejected[].index],.dead_lettered]' "$TEST_TMP/resp")"
check_eq "... the 11 are readable" 11 \
  "$(curl -s "$U/api/v1/events?limit=100" | jq '[.events[] | select(.entity_id | startswith("sensor.v1c_"))] | length')"
check "right password: exits cleanly" stop_pid "$SPID"

# ---- the database goes missing ---------------------------------------------------------
storage dbgone INFLUXDB_PASSWORD_FILE="$TEST_TMP/pw" INFLUXDB_PING_INTERVAL_MS=600000
check "healthy before the database is dropped" wait_healthy "$U/health" 20 "$SPID"
iq "admin:$PW" "DROP DATABASE $DB" >/dev/null
check_eq "database dropped: a batch is not acknowledged (503)" 503 "$(batch 3 300 | post)"
check_eq "database dropped: /health says influxdb_database_missing" influxdb_database_missing "$(health_reason)"
check "database dropped: exits cleanly" stop_pid "$SPID"
storage dbback INFLUXDB_PASSWORD_FILE="$TEST_TMP/pw" INFLUXDB_PING_INTERVAL_MS=200
check "restarted: the database is created again, healthy" wait_healthy "$U/health" 20 "$SPID"
check_eq "... and the batch is stored" "200 3" "$(c=$(batch 3 300 | post); echo "$c $(jq .stored "$TEST_TMP/resp")")"
check "restarted: exits cleanly" stop_pid "$SPID"

# ---- INFLUXDB_WRITE_LINGER_MS (issue 15): a batch starts at least that long after the one before ----------
# Three batches posted at once with a 1 s linger: the first starts at once, the next ones wait for it (counted in
# /health's backend.write_linger.held), all three are acknowledged and stored once each.
storage linger INFLUXDB_PASSWORD_FILE="$TEST_TMP/pw" INFLUXDB_PING_INTERVAL_MS=200 INFLUXDB_WRITE_LINGER_MS=1000
check "linger: healthy" wait_healthy "$U/health" 20 "$SPID"
LPIDS=()
for k in 0 1 2; do (batch 4 $((400 + 10 * k)) | curl -s -o "$TEST_TMP/linger$k" -w '%{http_code}' \
  -H 'Content-Type: application/json' --data-binary @- "$U/api/v1/events" >"$TEST_TMP/linger$k.code") & LPIDS+=($!); done
wait "${LPIDS[@]}"
check_eq "linger: the three batches acknowledged, 4 stored each" "200 4 200 4 200 4" \
  "$(for k in 0 1 2; do printf '%s %s ' "$(cat "$TEST_TMP/linger$k.code")" "$(jq .stored "$TEST_TMP/linger$k")"; done | sed 's/ $//')"
check "linger: /health counts the batches whose start waited (at least one)" \
  bash -c "curl -s '$U/health' | jq -e '.backend.write_linger | .ms == 1000 and .held >= 1' >/dev/null"
check_eq "linger: every event readable once" 12 \
  "$(curl -s "$U/api/v1/events?limit=100" | jq '[.events[] | select(.entity_id | test("^sensor.v1_4[0-2][0-3]$"))] | length')"
check "linger: exits cleanly" stop_pid "$SPID"

# ---- secrets ---------------------------------------------------------------------------
B64=$(printf 'admin:%s' "$PW" | base64)
check "the password is in no data-storage log (debug level)" bash -c "! grep -l -e '$PW' -e '$B64' '$TEST_TMP'/wrongpw.log '$TEST_TMP'/rightpw.log '$TEST_TMP'/dbgone.log '$TEST_TMP'/dbback.log '$TEST_TMP'/linger.log"
influxd_stop
finish

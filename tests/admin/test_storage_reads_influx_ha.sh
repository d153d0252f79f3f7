#!/usr/bin/env bash
# tests/admin/test_storage_reads_influx_ha.sh -- the dashboard's reads (feed,
# entities, stats) on INFLUXDB_SCHEMA=homeassistant, where state_changed
# events are written as Home Assistant's own points plus one identity point
# each (homeiq_ids: event_id and the record; influx_ids.h, docs/INFLUX_READS.md).
#
# The oracle is the homeiq schema, already proven against SQLite's answers by
# test_storage_reads_influx.sh: two data-storage processes on one real influxd,
# A on INFLUXDB_SCHEMA=homeiq (database iq), B on homeassistant (database ha,
# through tests/admin/influx_cut_proxy.py, which can lose an answer InfluxDB
# has applied), get the same batches. What must hold on B:
#  - entities, the feed (every page, in commit order, each event once) and the
#    stats equal A's (records compared without seq/stored_at);
#  - a re-post is all duplicates and changes nothing; a batch stored whose
#    answer was lost, then posted again, is counted once and shown once in the
#    feed (the duplicate check reads the identity points);
#  - HA's points are unchanged by it (HA's measurement and fields only);
#  - an unavailable state (HA writes no point) is skipped, in no read;
#  - a restart gives the same entities, feed and totals;
#  - a reader paging while a writer writes sees every event once, no gap.
# Usage: test_storage_reads_influx_ha.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"
BIN=${1:?usage: test_storage_reads_influx_ha.sh homeiq-data-storage}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn INFLUXDB_PING_INTERVAL_MS=200
mkdir -p "$DATA_DIR"
influxd_start || bail "influxd starts"
REAL=$INFLUXDB_URL
influxd_cut_proxy_start || bail "the proxy starts"
PA=$(free_port) PB=$(free_port)
A=http://127.0.0.1:$PA B=http://127.0.0.1:$PB

iql() { curl -s -G "$REAL/query" --data-urlencode "db=$1" --data-urlencode "epoch=ns" --data-urlencode "q=$2"; }
post() { # post URL BODY -> code (answer in $TEST_TMP/post.json)
  curl -s -o "$TEST_TMP/post.json" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$2" "$1/api/v1/events"
}
both() { # both BODY: posted to A and B, "codeA codeB"
  local a b
  a=$(post "$A" "$1"); b=$(post "$B" "$1")
  echo "$a $b"
}
rec() { # rec ENTITY TIME STATE [VALUE|null] [TYPE] [CONTEXT]
  printf '{"event_type":"%s","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s","attributes":{"unit_of_measurement":"u"}}' \
    "${5:-state_changed}" "$1" "$2" "$3" "${4:-null}" "${6:-$1-$2}"
}
start_a() {
  INFLUXDB_DATABASE=iq INFLUXDB_SCHEMA=homeiq DATA_STORAGE_PORT=$PA start_bg sa "$BIN"
  wait_healthy "$A/health" 30
}
start_b() {
  INFLUXDB_URL=$PROXY_URL INFLUXDB_DATABASE=ha INFLUXDB_SCHEMA=homeassistant DATA_STORAGE_PORT=$PB \
    start_bg sb "$BIN"
  wait_healthy "$B/health" 30
}
# the feed read whole, after= paging (limit 5): "state event_id ..." per row, records without seq/stored_at
feed_all() { # feed_all URL AFTER -> lines "seq<TAB>record"
  local c=$2 f
  while :; do
    f=$(curl -s "$1/api/v1/events/feed?after=$c&limit=5")
    jq -c '.events[] | [.seq, del(.seq, .stored_at)]' <<<"$f"
    c=$(jq .cursor <<<"$f")
    [ "$(jq .more <<<"$f")" = true ] || break
  done
}
records() { cut -d, -f2- | sed 's/]$//'; }   # the record column of feed_all's lines
ents() { curl -s "$1/api/v1/entities?limit=1000" | jq -c .; }
stats() { curl -s "$1/api/v1/stats?window=${2:-60}" | jq -c '{events_total, dead_letters_total, entities, window_events, per_domain}'; }

check "data-storage A (schema homeiq) starts healthy" start_a
check "data-storage B (schema homeassistant, through the proxy) starts healthy" start_b
check_eq "B says its schema" homeassistant "$(curl -s "$B/health" | jq -r .backend.schema)"

# ---- the fixtures of test_storage_reads (unavailable aside: HA writes no point) ------------------
T=sensor.reads_temp L=light.reads_lamp
F1="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0),$(rec $T 2025-03-01T10:20:00Z 30.0 30.0)"
F1="$F1,$(rec $T 2025-03-01T11:10:00Z 40.0 40.0)"
F1="$F1,$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0),$(rec $L 2025-03-01T10:40:00Z off 0.0)"
F1="$F1,$(rec $L 2025-03-01T11:00:00Z on 1.0),$(rec $L 2025-03-01T10:50:00Z off 0.0 state_changed late)"
F1="$F1,$(rec $L 2025-03-01T12:00:00Z x null call_service svc1),{\"event_type\":\"homeassistant_start\",\"time_fired\":\"2025-03-01T12:00:00Z\",\"context_id\":\"boot\"}]"
check_eq "fixtures stored on both" "200 200" "$(both "$F1")"
check_eq "B: 11 stored (9 as HA's points)" 11 "$(jq .stored "$TEST_TMP/post.json")"
check_eq "B: HA's own points are there (measurement u, the lamp's 4 distinct times + the late one)" 5 \
  "$(iql ha "SELECT count(value) FROM \"u\" WHERE entity_id = 'reads_lamp'" | jq '.results[0].series[0].values[0][1]')"
check_eq "B: one identity point per HA point (9), none for the two other events" 9 \
  "$(iql ha 'SELECT count(event_id) FROM homeiq_ids' | jq '.results[0].series[0].values[0][1]')"
check_eq "B: HA's measurement holds HA's fields only (no event_id, no record)" '["state","value"]' \
  "$(iql ha 'SHOW FIELD KEYS FROM "u"' | jq -c '[.results[0].series[0].values[][0]] | sort')"
check_eq "a re-post on B: 200, all 11 duplicates, nothing stored" '200 11 0' \
  "$(post "$B" "$F1") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json")"
check_eq "... still 9 identity points" 9 \
  "$(iql ha 'SELECT count(event_id) FROM homeiq_ids' | jq '.results[0].series[0].values[0][1]')"

# ---- entities, feed, stats: equal to schema homeiq's -------------------------------------------
check_eq "entities on B = on A (counts, last state, last change, last event, numeric)" "$(ents "$A")" "$(ents "$B")"
check_eq "B: lamp 6 events, last state on, not numeric" '6 on false' \
  "$(curl -s "$B/api/v1/entities?search=reads_lamp" | jq -r '.entities[0] | "\(.event_count) \(.state) \(.numeric)"')"
feed_all "$A" 0 >"$TEST_TMP/fa"
feed_all "$B" 0 >"$TEST_TMP/fb"
check_eq "B's feed: 11 rows in 5-row pages" 11 "$(wc -l <"$TEST_TMP/fb")"
check_eq "B's feed = A's feed (same records, same commit order)" "$(records <"$TEST_TMP/fa")" "$(records <"$TEST_TMP/fb")"
check_eq "... each seq once, strictly increasing" "$(cut -d, -f1 "$TEST_TMP/fb" | tr -d '[' | sort -un | xargs)" \
  "$(cut -d, -f1 "$TEST_TMP/fb" | tr -d '[' | xargs)"
check_eq "B's feed filtered by entity: the lamp's 6" 6 \
  "$(curl -s "$B/api/v1/events/feed?after=0&entity_id=$L&limit=100" | jq .count)"
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
check_eq "an event fired now, on both" "200 200" "$(both "[$(rec sensor.reads_now "${NOW}Z" 1.0 1.0)]")"
check_eq "stats on B = on A (totals, entities, the window and its domains)" "$(stats "$A" 120)" "$(stats "$B" 120)"
check_eq "B: stats 12 events, 3 entities (homeassistant_start has none), the event fired now in the window" '12 3 1 1' \
  "$(curl -s "$B/api/v1/stats?window=120" | jq -r '"\(.events_total) \(.entities) \(.window_events) \(.per_domain.sensor)"')"

# ---- an unavailable state: HA writes no point, so it is in no read ------------------------------
HEADB=$(curl -s "$B/api/v1/stats" | jq .cursor)
check_eq "unavailable on B: 200, skipped" '200 1 0' \
  "$(post "$B" "[$(rec $T 2025-03-01T11:05:00Z unavailable)]") $(jq -r '"\(.skipped) \(.stored)"' "$TEST_TMP/post.json")"
check_eq "... not in the feed, not counted" '0 12' \
  "$(curl -s "$B/api/v1/events/feed?after=$HEADB" | jq .count) $(curl -s "$B/api/v1/stats" | jq .events_total)"

# ---- stored, the answer lost, posted again: counted once, shown once ----------------------------
C="[$(rec sensor.cut_0 2025-04-02T10:00:00Z 1.5 1.5),$(rec sensor.cut_1 2025-04-02T10:00:01Z 2.5 2.5),$(rec sensor.cut_0 2025-04-02T10:00:02Z 3.5 3.5)]"
check_eq "batch C on A" 200 "$(post "$A" "$C")"
printf 'sensor.cut' >"$CUT"
check_eq "batch C on B: InfluxDB stores it, the answer is lost -> 503" 503 "$(post "$B" "$C")"
rm -f "$CUT"
check "... the proxy cut the write" test "$(wc -l <"$CUT.hits")" -ge 1
check_eq "... yet InfluxDB holds C's 3 identity points" 3 \
  "$(iql ha "SELECT count(event_id) FROM homeiq_ids WHERE entity_id =~ /^sensor.cut/" | jq '.results[0].series[0].values[0][1]')"
wait_healthy "$B/health" 30
check_eq "C posted again (ingestion's retry): 200, all 3 duplicates" '200 3 0' \
  "$(post "$B" "$C") $(jq -r '"\(.duplicates) \(.stored)"' "$TEST_TMP/post.json")"
wait_for 10 bash -c "[ \"\$(curl -s '$B/api/v1/stats' | jq .events_total)\" = 15 ]"
check_eq "C counted once: entities on B = on A" "$(ents "$A")" "$(ents "$B")"
check_eq "... totals 15 on both" "15 15" "$(curl -s "$A/api/v1/stats" | jq .events_total) $(curl -s "$B/api/v1/stats" | jq .events_total)"
feed_all "$A" 0 >"$TEST_TMP/fa"
feed_all "$B" 0 >"$TEST_TMP/fb"
check_eq "... the feed on B = on A (C once, no repeat)" "$(records <"$TEST_TMP/fa")" "$(records <"$TEST_TMP/fb")"

# ---- GET /api/v1/events: state_changed from the identity points, merged with HomeIQ's own ---------
# (was a 501: "HA's points are not HomeIQ records"). Registry tags (area, floor, device, platform,
# labels) are on the identity point too, so those filters narrow state_changed events as on A.
reg() { # reg ENTITY TIME STATE AREA : a state_changed record with registry ids (as enrichment adds them)
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s","area_id":"%s","floor_id":"ground","device_id":"0123456789abcdef0123456789abcdef","platform":"zha","labels":["battery","x_%s"],"attributes":{"unit_of_measurement":"u"}}' \
    "$1" "$2" "$3" "$3" "$1-$2" "$4" "$4"
}
R="[$(reg sensor.reg_a 2025-03-02T08:00:00Z 1.0 kitchen),$(reg sensor.reg_b 2025-03-02T08:00:01Z 2.0 hall)"
R="$R,$(reg sensor.reg_a 2025-03-02T08:00:02Z 3.0 kitchen),$(rec light.reg_c 2025-03-02T08:00:03Z x null call_service)]"
check_eq "registry-tagged events on both" "200 200" "$(both "$R")"
evs() { curl -s -w '\n%{http_code}' "$1/api/v1/events?$2" | jq -c -R 'try (fromjson | [.count, [.events[] | del(.stored_at)]]) catch .'; }
for q in "" "event_type=state_changed" "event_type=state_changed&limit=3" "event_type=state_changed&limit=2&offset=3" \
         "limit=4&offset=2" "limit=1000" "entity_id=$L" "entity_id=$L&event_type=state_changed" "domain=light&limit=3&offset=1" \
         "event_type=call_service" "start=2025-03-01T10:15:00Z&end=2025-03-01T11:05:00Z" \
         "start=2025-03-01T10:15:00Z&end=2025-03-01T11:05:00Z&event_type=state_changed&offset=1&limit=2" \
         "area=kitchen" "area=hall&event_type=state_changed" "floor=ground" "platform=zha&limit=1" \
         "device=0123456789abcdef0123456789abcdef" "label=x_hall" "label=battery&offset=1" "entity_id=sensor.none"; do
  check_eq "events?$q on B = on A (records, newest first)" "$(evs "$A" "$q")" "$(evs "$B" "$q")"
done
check_eq "B: events?event_type=state_changed&entity_id=$T: 200, the sensor's 4, newest first" '200 40.0 30.0 20.0 10.0' \
  "$(curl -s -w ' %{http_code}' "$B/api/v1/events?event_type=state_changed&entity_id=$T" | sed 's/ \([0-9]*\)$/\n\1/' |
     { read -r body; read -r c; echo "$c $(jq -r '[.events[].state] | join(" ")' <<<"$body")"; })"
check_eq "feed?area=kitchen on B = on A (the tail's area filter; a tag of the feed point on both schemas)" \
  "$(curl -s "$A/api/v1/events/feed?after=0&area=kitchen" | jq -c '[.events[] | del(.seq, .stored_at)]')" \
  "$(curl -s "$B/api/v1/events/feed?after=0&area=kitchen" | jq -c '[.events[] | del(.seq, .stored_at)]')"
check_eq "... reg_a's 2" 2 "$(curl -s "$B/api/v1/events/feed?after=0&area=kitchen" | jq .count)"
check_eq "B: events?area=kitchen: reg_a's 2 (state_changed, from the identity points)" '2 sensor.reg_a' \
  "$(curl -s "$B/api/v1/events?area=kitchen" | jq -r '"\(.count) \([.events[].entity_id] | unique | join(","))"')"
check_eq "B: events with no filter: every stored event (F1 11 + now 1 + C 3 + R 4)" 19 \
  "$(curl -s "$B/api/v1/events?limit=1000" | jq .count)"
check_eq "B: a bad parameter is still the 400 naming it" '400 offset' \
  "$(curl -s -w ' %{http_code}' "$B/api/v1/events?offset=-1" | sed -E 's/^\{"error":"([a-z_]+):.* ([0-9]+)$/\2 \1/')"
check_eq "B: home=default: every state_changed event (all are the default home's: its points carry no home_id tag)" \
  "$(curl -s "$B/api/v1/events?event_type=state_changed&limit=1000" | jq .count)" \
  "$(curl -s "$B/api/v1/events?home=default&event_type=state_changed&limit=1000" | jq .count)"
check_eq "B: home=other: none (another home's points carry its home_id tag, issue 18)" 0 \
  "$(curl -s "$B/api/v1/events?home=other&event_type=state_changed" | jq .count)"

# ---- restart: entities, feed and totals come back -----------------------------------------------
feed_all "$B" 0 >"$TEST_TMP/fb"
E_KEPT=$(ents "$B") HEADB=$(curl -s "$B/api/v1/stats" | jq .cursor)
stop_pid "$PID_sb"; check_eq "B exits cleanly" 0 $?
check "B starts again" start_b
check_eq "after a restart: the same entity list" "$E_KEPT" "$(ents "$B")"
feed_all "$B" 0 >"$TEST_TMP/fb2"
check_eq "after a restart: the same feed, the same seqs" "$(cat "$TEST_TMP/fb")" "$(cat "$TEST_TMP/fb2")"
check_eq "after a restart: head and totals" "$HEADB 19" "$(curl -s "$B/api/v1/stats" | jq -r '"\(.cursor) \(.events_total)"')"
check_eq "a state_changed re-posted after the restart is still a duplicate" '200 1' \
  "$(post "$B" "[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0)]") $(jq .duplicates "$TEST_TMP/post.json")"

# ---- a reader paging while a writer writes: every event once ------------------------------------
START=$(curl -s "$B/api/v1/stats" | jq .cursor)
/usr/bin/python3 - "$B" "$START" "$TEST_TMP" <<'PY'
import json, sys, threading, time, urllib.request
u, start, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
done = threading.Event()
stored = []
def writer():
    for k in range(20):
        evs = [{"event_type": "state_changed" if i % 6 else "call_service", "entity_id": f"sensor.tail_{i % 5}",
                "state": f"{k}.{i}", "time_fired": f"2025-05-{k + 1:02d}T10:00:{i:02d}Z", "context_id": f"w{k}-{i}"}
               for i in range(25)]
        req = urllib.request.Request(f"{u}/api/v1/events", json.dumps(evs).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            stored.append(json.load(r)["stored"])
    done.set()
t = threading.Thread(target=writer)
t.start()
seen, cur, last_empty_after_done = [], start, False
while not last_empty_after_done:
    finished = done.is_set()   # read before the poll: an empty page after the writer finished ends it
    with urllib.request.urlopen(f"{u}/api/v1/events/feed?after={cur}&limit=37") as r:
        f = json.load(r)
    seen += [(e["event_id"], e["seq"]) for e in f["events"]]
    cur = f["cursor"]
    last_empty_after_done = finished and not f["events"] and not f["more"]
    if not f["more"]:
        time.sleep(0.02)
t.join()
open(f"{out}/written", "w").write(f"{sum(stored)}\n")
open(f"{out}/tail.txt", "w").write("".join(f"{i} {s}\n" for i, s in seen))
PY
check_eq "writer: 20 batches of 25 (HA points and call_service) stored while a reader paged" 500 "$(cat "$TEST_TMP/written")"
check_eq "reader: 500 events, no repeat" '500 500' \
  "$(wc -l <"$TEST_TMP/tail.txt") $(cut -d' ' -f1 "$TEST_TMP/tail.txt" | sort -u | wc -l)"
check_eq "reader = the stored tail read afterwards (no gap)" \
  "$(curl -s "$B/api/v1/events/feed?after=$START&limit=1000" | jq -r '.events[] | "\(.event_id) \(.seq)"' | xargs)" \
  "$(xargs <"$TEST_TMP/tail.txt")"
check_eq "totals on B: 519" 519 "$(curl -s "$B/api/v1/stats" | jq .events_total)"
check_eq "GET /api/v1/events?event_type=state_changed on B: 200, after the restart too" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/v1/events?event_type=state_changed")"
stop_pid "$PID_sb"
stop_pid "$PID_sa"
finish

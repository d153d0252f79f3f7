#!/usr/bin/env bash
# tests/admin/test_storage_reads_influx.sh -- data-storage's read endpoints for
# the dashboard (feed, entities, series, stats) on a real influxd
# (tests/lib/influxd.sh), with the same fixtures and hand-computed values as
# test_storage_reads.sh on SQLite, plus what is InfluxDB's own: the feed's
# commit-order cursor (homeiq_feed, docs/INFLUX_READS.md) is not time order,
# survives a data-storage restart, and a reader paging while a writer writes
# sees every event once; on INFLUXDB_SCHEMA=homeassistant the series read HA's
# own points (merged across measurements) and feed/entities/stats answer (their
# values: test_storage_reads_influx_ha.sh); an unreachable InfluxDB 503.
# Usage: test_storage_reads_influx.sh /path/to/homeiq-data-storage
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/../lib/influxd.sh"
BIN=${1:?usage: test_storage_reads_influx.sh homeiq-data-storage}
export STORAGE_BACKEND=influxdb DATA_DIR=$TEST_TMP/data LOG_LEVEL=warn INFLUXDB_DATABASE=reads INFLUXDB_PING_INTERVAL_MS=200
mkdir -p "$DATA_DIR"
influxd_start || bail "influxd starts"
PORT=$(free_port) U=http://127.0.0.1:$PORT

get() { curl -s "$U$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$U$1"; }
jqe() { jq -e "$@" >/dev/null; }
post() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" "$U/api/v1/events"; }
rec() { # rec ENTITY TIME STATE [VALUE|null] [TYPE] [CONTEXT]
  printf '{"event_type":"%s","entity_id":"%s","time_fired":"%s","state":"%s","value":%s,"context_id":"%s"}' \
    "${5:-state_changed}" "$1" "$2" "$3" "${4:-null}" "${6:-$1-$2}"
}
start_storage() {
  DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
  wait_healthy "$U/health" 30
}
check "data-storage on influxd starts healthy" start_storage

# ---- fixtures (as on SQLite) -----------------------------------------------------
T=sensor.reads_temp L=light.reads_lamp
B="[$(rec $T 2025-03-01T10:00:00Z 10.0 10.0),$(rec $T 2025-03-01T10:10:00Z 20.0 20.0),$(rec $T 2025-03-01T10:20:00Z 30.0 30.0)"
B="$B,$(rec $T 2025-03-01T11:05:00Z unavailable null),$(rec $T 2025-03-01T11:10:00Z 40.0 40.0)"
B="$B,$(rec $L 2025-03-01T10:00:00Z on 1.0),$(rec $L 2025-03-01T10:30:00Z off 0.0),$(rec $L 2025-03-01T10:40:00Z off 0.0)"
B="$B,$(rec $L 2025-03-01T11:00:00Z on 1.0),$(rec $L 2025-03-01T10:50:00Z off 0.0 state_changed late)"
B="$B,$(rec $L 2025-03-01T12:00:00Z x null call_service svc1),{\"event_type\":\"homeassistant_start\",\"time_fired\":\"2025-03-01T12:00:00Z\",\"context_id\":\"boot\"}]"
check_eq "fixtures stored" 200 "$(post "$B")"
check_eq "a re-post stores nothing (entity counts unchanged)" 200 "$(post "$B")"

# ---- entities ------------------------------------------------------------------------
E=$(get '/api/v1/entities?search=reads_')
check_eq "entities: two, sorted by id" "$L $T" "$(jq -r '[.entities[].entity_id] | join(" ")' <<<"$E")"
check_eq "lamp: 6 events, last state on (the late event is older), last change, last event, numeric false" \
  '6 on 2025-03-01T11:00:00.000000Z 2025-03-01T12:00:00.000000Z false' \
  "$(jq -r ".entities[] | select(.entity_id == \"$L\") | \"\(.event_count) \(.state) \(.last_changed) \(.last_event) \(.numeric)\"" <<<"$E")"
check_eq "temp: 5 events, last 40.0, changed at 11:10, numeric" '5 40.0 2025-03-01T11:10:00.000000Z true' \
  "$(jq -r ".entities[] | select(.entity_id == \"$T\") | \"\(.event_count) \(.state) \(.last_changed) \(.numeric)\"" <<<"$E")"
check_eq "entities ?domain=light" "$L" "$(get '/api/v1/entities?domain=light' | jq -r '[.entities[].entity_id] | join(" ")')"
check_eq "entities ?limit=1 keeps total" '1 2' "$(get '/api/v1/entities?limit=1' | jq -r '"\(.count) \(.total)"')"
check_eq "a search is a substring, not a regular expression" 0 "$(get '/api/v1/entities?search=reads.temp' | jq .count)"
check "events without entity_id make no entity" test "$(get '/api/v1/entities' | jq '[.entities[] | select(.entity_id == null)] | length')" = 0

# ---- series ------------------------------------------------------------------------------
S=$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4")
check_eq "numeric kind and bucket width" 'numeric 1800' "$(jq -r '"\(.kind) \(.bucket_s)"' <<<"$S")"
check_eq "buckets min/mean/max/count (unavailable skipped)" \
  '2025-03-01T10:00:00.000000Z 10 20 30 3|2025-03-01T11:00:00.000000Z 40 40 40 1' \
  "$(jq -r '[.buckets[] | "\(.t) \(.min) \(.mean) \(.max) \(.count)"] | join("|")' <<<"$S")"
check_eq "points=1: one bucket over everything" '1 25' \
  "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=1" | jq -r '"\(.count) \(.buckets[0].mean)"')"
check_eq "buckets start at start, not at an epoch multiple (start 10:07, 3 x 20 min: 10:10 and 10:20 share one)" \
  '2025-03-01T10:07:00.000000Z 25 2' \
  "$(get "/api/v1/series?entity_id=$T&start=2025-03-01T10:07:00Z&end=2025-03-01T11:07:00Z&points=3" | jq -r '[.buckets[] | "\(.t) \(.mean) \(.count)"] | join("|")')"
TL=$(get "/api/v1/series?entity_id=$L&start=2025-03-01T10:15:00Z&end=2025-03-01T11:30:00Z")
check_eq "timeline: starts in the state at range start, merges equal neighbours" \
  '2025-03-01T10:15:00.000000Z-2025-03-01T10:30:00.000000Z on|2025-03-01T10:30:00.000000Z-2025-03-01T11:00:00.000000Z off|2025-03-01T11:00:00.000000Z-2025-03-01T11:30:00.000000Z on' \
  "$(jq -r '[.segments[] | "\(.start)-\(.end) \(.state)"] | join("|")' <<<"$TL")"
check_eq "timeline kind" timeline "$(jq -r .kind <<<"$TL")"
check_eq "series of an unknown entity -> 404" 404 "$(code '/api/v1/series?entity_id=sensor.nope')"
check_eq "series bad points -> 400 (checked before the backend)" 400 "$(code "/api/v1/series?entity_id=$T&points=0")"

# ---- feed: commit order ---------------------------------------------------------------------
HEAD=$(get '/api/v1/stats' | jq .cursor)
check "the head is a microsecond commit sequence (exact in JavaScript)" \
  bash -c "[ '$HEAD' -gt 1700000000000000 ] && [ '$HEAD' -lt 9007199254740992 ]"
F=$(get '/api/v1/events/feed?limit=3')
check_eq "feed without after: the latest 3 in commit (= batch) order, cursor = head = last seq" "off x null $HEAD $HEAD false" \
  "$(jq -r '"\(.events | map(.state // "null") | join(" ")) \(.events[-1].seq) \(.cursor) \(.more)"' <<<"$F")"
check "feed rows are full records with event_id" jqe '.events[0].event_id and .events[0].time_fired' <<<"$F"
all=() states=() c=0
while :; do
  F=$(get "/api/v1/events/feed?after=$c&limit=5")
  all+=($(jq -r '.events[].seq' <<<"$F")); states+=($(jq -r '.events | map(.state // "null") | .[]' <<<"$F"))
  c=$(jq .cursor <<<"$F")
  [ "$(jq .more <<<"$F")" = true ] || break
done
check_eq "paging after= with limit=5: 12 events, in batch order (not time order)" \
  '10.0 20.0 30.0 unavailable 40.0 on off off on off x null' "${states[*]}"
check_eq "... each seq once, strictly increasing" "$(printf '%s\n' "${all[@]}" | sort -un | xargs)" "${all[*]}"
check_eq "... the last page ends at the head" "$HEAD $HEAD" "${all[-1]} $c"
F=$(get "/api/v1/events/feed?after=0&domain=light&limit=2")
check_eq "filtered page: 2 light rows, cursor at the last row, more" "$L $L true $(jq -r '.events[1].seq' <<<"$F")" \
  "$(jq -r '"\(.events[0].entity_id) \(.events[1].entity_id) \(.more) \(.cursor)"' <<<"$F")"
F=$(get "/api/v1/events/feed?after=${all[4]}&entity_id=$T")
check_eq "no match after the cursor: empty, cursor jumps to the head (no rescan)" "0 $HEAD false" \
  "$(jq -r '"\(.count) \(.cursor) \(.more)"' <<<"$F")"
check_eq "feed after=-1 -> 400" 400 "$(code '/api/v1/events/feed?after=-1')"
check_eq "feed offset -> 400" 400 "$(code '/api/v1/events/feed?offset=3')"
check_eq "a backfilled event (fired in 2020) is stored" 200 "$(post "[$(rec sensor.reads_old 2020-01-01T00:00:00Z 5.0 5.0)]")"
NOW=$(date -u +%Y-%m-%dT%H:%M:%S)
check_eq "an event fired now" 200 "$(post "[$(rec sensor.reads_now "${NOW}Z" 1.0 1.0)]")"
F=$(get "/api/v1/events/feed?after=$HEAD")
check_eq "the tail after the head: the 2020 event, then the one fired now (commit order)" 'sensor.reads_old sensor.reads_now' \
  "$(jq -r '[.events[].entity_id] | join(" ")' <<<"$F")"
HEAD2=$(jq .cursor <<<"$F")
check "... and the head moved past the old one" test "$HEAD2" -gt "$HEAD"

# ---- stats -------------------------------------------------------------------------------------
ST=$(get '/api/v1/stats?window=120')
check_eq "stats totals (14 events, 0 dead letters, 4 entities)" "14 0 4 influxdb $HEAD2" \
  "$(jq -r '"\(.events_total) \(.dead_letters_total) \(.entities) \(.backend) \(.cursor)"' <<<"$ST")"
check_eq "stats: the event fired now is in the window and its domain" '120 1 1' \
  "$(jq -r '"\(.per_second | length) \(.window_events) \(.per_domain.sensor)"' <<<"$ST")"
check "stats: store size from InfluxDB's shards" test "$(jq .store_bytes <<<"$ST")" -gt 0
curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary \
  '{"events":[{"event_type":"state_changed","time_fired":"2025-01-01T00:00:00Z"}]}' "$U/api/v1/events"
check_eq "stats: a dead letter is counted by the write path (no recount)" '1 14' \
  "$(get '/api/v1/stats' | jq -r '"\(.dead_letters_total) \(.events_total)"')"

check_eq "entities kept by the write path (cached since the first read): the 2020 event's entity" \
  'sensor.reads_old 1 5.0 2020-01-01T00:00:00.000000Z true' \
  "$(get '/api/v1/entities?search=reads_old' | jq -r '.entities[0] | "\(.entity_id) \(.event_count) \(.state) \(.last_changed) \(.numeric)"')"
E_KEPT=$(get '/api/v1/entities')

# ---- restart: the head and totals come back from InfluxDB --------------------------------------
stop_pid "$PID_storage"; check_eq "data-storage exits cleanly" 0 $?
check "data-storage starts again" start_storage
check_eq "entities read back from InfluxDB after a restart = what the write path kept" "$E_KEPT" "$(get '/api/v1/entities')"
F=$(get "/api/v1/events/feed?after=$HEAD")
check_eq "after a restart: the same tail, the same head" "2 $HEAD2" "$(jq -r '"\(.count) \(.cursor)"' <<<"$F")"
check_eq "an event after the restart" 200 "$(post "[$(rec sensor.reads_now "${NOW}.5Z" 2.0 2.0)]")"
F=$(get "/api/v1/events/feed?after=$HEAD2")
check_eq "... is the one event after the old head" '1 2.0' "$(jq -r '"\(.count) \(.events[0].state)"' <<<"$F")"
check "... with a larger seq" test "$(jq '.events[0].seq' <<<"$F")" -gt "$HEAD2"
check_eq "stats after a restart: totals recounted" '15 1' "$(get '/api/v1/stats' | jq -r '"\(.events_total) \(.dead_letters_total)"')"

# ---- a reader paging while a writer writes: every event once --------------------------------------
START=$(get '/api/v1/stats' | jq .cursor)
/usr/bin/python3 - "$U" "$START" "$TEST_TMP" <<'PY'
import json, sys, threading, time, urllib.request
u, start, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
done = threading.Event()
stored = []
def writer():
    for k in range(20):
        evs = [{"event_type": "state_changed", "entity_id": f"sensor.tail_{i % 5}", "state": f"{k}.{i}",
                "time_fired": f"2025-05-{k + 1:02d}T10:00:{i:02d}Z", "context_id": f"w{k}-{i}"} for i in range(25)]
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
check_eq "writer: 20 batches of 25 stored while a reader paged" 500 "$(cat "$TEST_TMP/written")"
check_eq "reader: 500 events, no repeat" '500 500' \
  "$(wc -l <"$TEST_TMP/tail.txt") $(cut -d' ' -f1 "$TEST_TMP/tail.txt" | sort -u | wc -l)"
check_eq "reader: seqs strictly increasing" "$(cut -d' ' -f2 "$TEST_TMP/tail.txt" | sort -un | xargs)" \
  "$(cut -d' ' -f2 "$TEST_TMP/tail.txt" | xargs)"
check_eq "reader = the stored tail read afterwards (no gap)" \
  "$(get "/api/v1/events/feed?after=$START&limit=1000" | jq -r '.events[] | "\(.event_id) \(.seq)"' | xargs)" \
  "$(xargs <"$TEST_TMP/tail.txt")"

. "$here/feed_area.sh"
feed_area_checks "$U"   # area_id is a tag of the feed point

# ---- InfluxDB down: 503; INFLUXDB_SCHEMA=homeassistant ------------------------------------------------
influxd_stop
for ep in /api/v1/events/feed "/api/v1/series?entity_id=$T" /api/v1/stats; do
  check_eq "influxd stopped: GET $ep -> 503" 503 "$(code "$ep")"
done
check_eq "influxd stopped: the entity list answers from what the write path kept (tail_0: 100 events, last 19.20)" \
  '200 12 sensor.tail_0 100 19.20' \
  "$(code /api/v1/entities) $(get '/api/v1/entities' | jq -r '"\(.total) " + (.entities[] | select(.entity_id == "sensor.tail_0") | "\(.entity_id) \(.event_count) \(.state)")')"

stop_pid "$PID_storage"
influxd_restart || bail "influxd starts again"
P2=$(free_port)
INFLUXDB_SCHEMA=homeassistant DATA_STORAGE_PORT=$P2 start_bg ha "$BIN"
wait_healthy "http://127.0.0.1:$P2/health" 30
# feed, entities and stats read the identity points there (their answers: test_storage_reads_influx_ha.sh)
for ep in /api/v1/events/feed /api/v1/entities /api/v1/stats; do
  check_eq "schema homeassistant: GET $ep -> 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2$ep")"
done
# series on HA's own points: any measurement (the unit), entity_id = the object id; a unit change
# moves the sensor to another measurement mid-range, and the buckets are merged across both
har() { # har ENTITY TIME STATE UNIT
  printf '{"event_type":"state_changed","entity_id":"%s","time_fired":"%s","state":"%s","context_id":"ha-%s-%s","attributes":{"unit_of_measurement":"%s"}}' \
    "$1" "$2" "$3" "$1" "$2" "$4"
}
HT=sensor.ha_temp HL=light.ha_lamp
HB="[$(har $HT 2025-03-01T10:00:00Z 10.0 °C),$(har $HT 2025-03-01T10:10:00Z 20.0 °C),$(har $HT 2025-03-01T10:20:00Z 30.0 K)"
HB="$HB,$(har $HT 2025-03-01T11:05:00Z unavailable °C),$(har $HT 2025-03-01T11:10:00Z 40.0 °C)"
HB="$HB,$(har $HL 2025-03-01T10:00:00Z on x),$(har $HL 2025-03-01T10:30:00Z off x),$(har $HL 2025-03-01T10:40:00Z off x),$(har $HL 2025-03-01T11:00:00Z on x)]"
check_eq "schema homeassistant: HA points stored" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$HB" "http://127.0.0.1:$P2/api/v1/events")"
check_eq "... in two measurements for the sensor (K and °C)" 'K °C' \
  "$(curl -s -G "$INFLUXDB_URL/query" --data-urlencode db=reads --data-urlencode "q=SHOW MEASUREMENTS" |
     jq -r '[.results[0].series[0].values[][0]] | map(select(. == "°C" or . == "K")) | sort | join(" ")')"
HS=$(curl -s "http://127.0.0.1:$P2/api/v1/series?entity_id=$HT&start=2025-03-01T10:00:00Z&end=2025-03-01T12:00:00Z&points=4")
check_eq "schema homeassistant: numeric series, buckets merged across measurements (unavailable is no point)" \
  'numeric 1800 2025-03-01T10:00:00.000000Z 10 20 30 3|2025-03-01T11:00:00.000000Z 40 40 40 1' \
  "$(jq -r '"\(.kind) \(.bucket_s) " + ([.buckets[] | "\(.t) \(.min) \(.mean) \(.max) \(.count)"] | join("|"))' <<<"$HS")"
HTL=$(curl -s "http://127.0.0.1:$P2/api/v1/series?entity_id=$HL&start=2025-03-01T10:15:00Z&end=2025-03-01T11:30:00Z")
check_eq "schema homeassistant: on/off is a timeline (HA writes state and 1/0), equal neighbours merged" \
  'timeline 2025-03-01T10:15:00.000000Z-2025-03-01T10:30:00.000000Z on|2025-03-01T10:30:00.000000Z-2025-03-01T11:00:00.000000Z off|2025-03-01T11:00:00.000000Z-2025-03-01T11:30:00.000000Z on' \
  "$(jq -r '"\(.kind) " + ([.segments[] | "\(.start)-\(.end) \(.state)"] | join("|"))' <<<"$HTL")"
check_eq "schema homeassistant: series of an unknown entity -> 404" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P2/api/v1/series?entity_id=sensor.nope")"
stop_pid "$PID_ha"
finish

#!/usr/bin/env bash
# tests/admin/test_storage_reads_influx.sh -- data-storage's read endpoints for
# the dashboard (feed, entities, series, stats) on a real influxd
# (tests/lib/influxd.sh), with the same fixtures and hand-computed values as
# test_storage_reads.sh on SQLite, plus what is InfluxDB's own: the feed's
# commit-order cursor (homeiq_feed, docs/INFLUX_READS.md) is not time order,
# survives a data-storage restart, and a reader paging while a writer writes
# sees every event once; on INFLUXDB_SCHEMA=homeassistant the series read HA's
# own points (merged across measurements) and feed/entities/stats answer (their
# values: test_storage_reads_influx_ha.sh); an unreachable InfluxDB 503;
# INFLUXDB_EVENT_FIELDS=slim answers every read as full does, also for a store
# switching from full to slim (its full points kept).
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

# ---- INFLUXDB_EVENT_FIELDS: slim points answer every read as full ones ------------------------------
# Two more data-storage processes on this influxd get the same batches: F writes full points (database
# fields_full), S slim ones (fields_slim: event_id, stored_at, record, state, value). Every read HomeIQ
# serves must answer the same on both (records without stored_at/seq, which are each store's own). Then F
# restarts slim -- a store switching, its full points kept -- and must still answer as S, old points and new.
PF=$(free_port) PS=$(free_port)
FU=http://127.0.0.1:$PF SU=http://127.0.0.1:$PS
start_fields() { # start_fields NAME PORT DATABASE full|slim
  INFLUXDB_DATABASE=$3 INFLUXDB_EVENT_FIELDS=$4 DATA_STORAGE_PORT=$2 start_bg "$1" "$BIN"
  wait_healthy "http://127.0.0.1:$2/health" 30
}
check "F (INFLUXDB_EVENT_FIELDS=full) starts healthy" start_fields ef_full "$PF" fields_full full
check "S (INFLUXDB_EVENT_FIELDS=slim) starts healthy" start_fields ef_slim "$PS" fields_slim slim
check_eq "/health says each one's event fields" 'full slim' \
  "$(curl -s "$FU/health" | jq -r .backend.event_fields) $(curl -s "$SU/health" | jq -r .backend.event_fields)"
iqf() { curl -s -G "$INFLUXDB_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"; }
# every member a full point copies into a field, and registry tags: numeric sensors (statistics), on/off, others
# (recent times: the statistics of states older than their retention horizon are left to the catch-up)
EF0=$(( $(date +%s) / 3600 * 3600 - 6 * 3600 ))   # an hour boundary 6 h ago
ef_time() { date -u -d "@$(( EF0 + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }   # ef_time SECONDS_AFTER_EF0
ef_batch() { # ef_batch HOURS_AFTER_EF0 K -> a batch of 3*K events, the sensor's every 5 minutes from there
  /usr/bin/python3 - "$(( EF0 + $1 * 3600 ))" "$2" <<'PY'
import datetime, json, sys
t0, k = int(sys.argv[1]), int(sys.argv[2])
day = t0 // 3600
evs = []
for i in range(k):
    t = datetime.datetime.fromtimestamp(t0 + i * 300, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    v = round(20 + (i * 7 % 11) * 0.5, 1)
    evs.append({"event_type": "state_changed", "entity_id": "sensor.ef_temp", "domain": "sensor", "time_fired": t,
                "state": str(v), "value": v, "old_state": str(v - 0.5), "old_value": v - 0.5,
                "duration_in_state": 300.0 + i, "unit_of_measurement": "°C", "device_class": "temperature",
                "context_id": f"ctx-{day}-{i}", "context_parent_id": f"par-{day}-{i}", "context_user_id": "u1",
                "area_id": "kitchen", "floor_id": "ground", "platform": "zha", "labels": ["ef", "battery"],
                "attributes": {"state_class": "measurement", "unit_of_measurement": "°C", "friendly_name": "T"}})
    st = "on" if i % 2 else "off"
    evs.append({"event_type": "state_changed", "entity_id": "light.ef_lamp", "domain": "light", "time_fired": t[:-1] + ".5Z",
                "state": st, "value": 1.0 if st == "on" else 0.0, "old_state": "off" if st == "on" else "on",
                "old_value": 0.0 if st == "on" else 1.0, "duration_in_state": 60.0, "context_id": f"lamp-{day}-{i}",
                "area_id": "hall", "attributes": {"brightness": i, "friendly_name": "Lamp"}})
    evs.append({"event_type": "call_service", "domain": "light", "time_fired": t[:-1] + ".7Z",
                "context_id": f"svc-{day}-{i}", "context_user_id": "u2", "service": "turn_on"})
print(json.dumps(evs))
PY
}
ef_post() { # ef_post URL BODY -> "code stored duplicates"
  curl -s -H 'Content-Type: application/json' --data-binary "$2" -w ' %{http_code}' "$1/api/v1/events" |
    sed 's/ \([0-9]*\)$/\n\1/' | { read -r body; read -r c; echo "$c $(jq -r '"\(.stored) \(.duplicates)"' <<<"$body")"; }
}
ef_both() { echo "$(ef_post "$FU" "$1") | $(ef_post "$SU" "$1")"; }
ef_feed() { # every feed page (limit 40: pages end inside the batches), records without seq/stored_at
  local c=0 f
  while :; do
    f=$(curl -s "$1/api/v1/events/feed?after=$c&limit=40")
    jq -c '.events[] | del(.seq, .stored_at)' <<<"$f"
    c=$(jq .cursor <<<"$f")
    [ "$(jq .more <<<"$f")" = true ] || break
  done
}
# every read, one line each: events (filters), feed, entities, series, stats, statistics, dead letters, registry
ef_reads() { # ef_reads URL
  local u=$1 q
  for q in "limit=1000" "event_type=state_changed&limit=7&offset=3" "entity_id=sensor.ef_temp" "domain=light" \
           "event_type=call_service" "area=kitchen" "label=battery&limit=5" "floor=ground&platform=zha" \
           "start=$(ef_time 1800)&end=$(ef_time 5400)"; do
    echo "events?$q $(curl -s "$u/api/v1/events?$q" | jq -c '[.count, [.events[] | del(.stored_at)]]')"
  done
  ef_feed "$u" >"$TEST_TMP/ef_feed"
  echo "feed $(md5sum <"$TEST_TMP/ef_feed" | cut -d' ' -f1) $(wc -l <"$TEST_TMP/ef_feed")"
  echo "entities $(curl -s "$u/api/v1/entities?limit=1000" | jq -c .)"
  for q in "entity_id=sensor.ef_temp&start=$(ef_time 0)&end=$(ef_time 21600)&points=72" \
           "entity_id=light.ef_lamp&start=$(ef_time 0)&end=$(ef_time 7200)"; do
    echo "series?$q $(curl -s "$u/api/v1/series?$q" | jq -c .)"
  done
  echo "stats $(curl -s "$u/api/v1/stats?window=60" | jq -c '{events_total, dead_letters_total, entities, window_events, per_domain}')"
  influx_stats_settled "$u"
  for q in "entity_id=sensor.ef_temp&period=5minute&start=$(ef_time 0)" \
           "entity_id=sensor.ef_temp,light.ef_lamp&period=hour&start=$(ef_time 0)"; do
    echo "statistics?$q $(curl -s "$u/api/v1/statistics?$q" | jq -c .)"
  done
  echo "dead-letters $(curl -s "$u/api/v1/dead-letters" | jq -c '[.count, [.dead_letters[] | del(.id, .received_at)]]')"
  echo "registry $(curl -s "$u/api/v1/registry" | jq -c .)"
}
ef_same() { # ef_same WHAT: every read of F = of S, line by line
  ef_reads "$FU" >"$TEST_TMP/ef_f" && ef_reads "$SU" >"$TEST_TMP/ef_s"
  local n d
  n=$(wc -l <"$TEST_TMP/ef_f")
  d=$(diff "$TEST_TMP/ef_f" "$TEST_TMP/ef_s" | grep '^<' | cut -c1-300)
  check_eq "$1: all $n reads (events x9, feed, entities, series x2, stats, statistics x2, dead letters, registry) of F = of S" \
    "" "$d"
}
X=$(ef_batch 0 24)
check_eq "72 events stored on both" '200 72 0 | 200 72 0' "$(ef_both "$X")"
DL="{\"events\":[{\"event_type\":\"state_changed\",\"time_fired\":\"$(ef_time 60)\"}]}"
check_eq "a dead letter on both (stored 0, duplicates 0)" '200 0 0 | 200 0 0' "$(ef_both "$DL")"
check_eq "a re-post: all 72 duplicates on both" '200 0 72 | 200 0 72' "$(ef_both "$X")"
check_eq "S's points hold exactly the slim fields" '["event_id","record","state","stored_at","value"]' \
  "$(iqf fields_slim 'SHOW FIELD KEYS FROM "home_assistant_events"' | jq -c '[.results[0].series[0].values[][0]] | sort')"
check_eq "F's points hold the full fields (each copied member of the fixture written)" \
  '["attributes","context_id","context_parent_id","context_user_id","duration_in_state","event_id","old_state","old_value","record","state","stored_at","value"]' \
  "$(iqf fields_full 'SHOW FIELD KEYS FROM "home_assistant_events"' | jq -c '[.results[0].series[0].values[][0]] | sort')"
check_eq "... and the same tags on both" \
  "$(iqf fields_full 'SHOW TAG KEYS FROM "home_assistant_events"' | jq -c .results)" \
  "$(iqf fields_slim 'SHOW TAG KEYS FROM "home_assistant_events"' | jq -c .results)"
check_eq "the statistics read have rows (the sensor's 2 hours), the dead letter is listed" '2 1' \
  "$(influx_stats_settled "$SU"; curl -s "$SU/api/v1/statistics?entity_id=sensor.ef_temp&period=hour&start=$(ef_time 0)" | jq '.["sensor.ef_temp"] | length') $(curl -s "$SU/api/v1/dead-letters" | jq .count)"
ef_same "full vs slim"
ef_line() { sed -n "s/^$1 //p" "$TEST_TMP/ef_s"; }   # one read's answer on S, from ef_same's last run
check_eq "... reads that answer data (72 events, 72 feed rows, 2 entities, 24 sensor buckets, 24 5-minute rows)" \
  '72 72 2 24 24' "$(ef_line 'events?limit=1000' | jq '.[0]') $(ef_line feed | awk '{print $NF}') \
$(ef_line entities | jq '.entities | length') $(ef_line 'series?entity_id=sensor.ef_temp[^ ]*' | jq '.buckets | length') \
$(ef_line 'statistics?entity_id=sensor.ef_temp&period=5minute[^ ]*' | jq '.["sensor.ef_temp"] | length')"

# ---- F switches to slim: its full points read as before, new points slim, old ones still duplicates -------------
stop_pid "$PID_ef_full"; check_eq "F exits cleanly" 0 $?
check "F starts again with INFLUXDB_EVENT_FIELDS=slim" start_fields ef_full "$PF" fields_full slim
check_eq "... /health says slim" slim "$(curl -s "$FU/health" | jq -r .backend.event_fields)"
ef_same "F's full points read by a slim F"
check_eq "a re-post of the full-written batch after the switch: all duplicates (checked against InfluxDB)" \
  '200 0 72 | 200 0 72' "$(ef_both "$X")"
Y=$(ef_batch 3 12)
check_eq "a new batch on both" '200 36 0 | 200 36 0' "$(ef_both "$Y")"
ef_same "after the switch, old and new points"
Y0=$(( (EF0 + 3 * 3600) * 1000000000 )) # where the new batch starts (ns)
check_eq "F's points written after the switch: slim (no copied field)" '36 null' \
  "$(iqf fields_full "SELECT count(event_id) FROM home_assistant_events WHERE time >= $Y0" | jq '.results[0].series[0].values[0][1]') $(iqf fields_full "SELECT count(old_state), count(attributes), count(context_id), count(duration_in_state) FROM home_assistant_events WHERE time >= $Y0" | jq -c '.results[0].series')"
check_eq "... those before it keep theirs (24 sensor + 24 lamp events with attributes)" 48 \
  "$(iqf fields_full "SELECT count(attributes) FROM home_assistant_events WHERE time < $Y0" | jq '.results[0].series[0].values[0][1]')"
stop_pid "$PID_ef_full"
stop_pid "$PID_ef_slim"

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

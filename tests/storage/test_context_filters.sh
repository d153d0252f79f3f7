#!/usr/bin/env bash
# test_context_filters.sh /path/to/homeiq-data-storage -- GET /api/v1/events with area=,
# floor=, device=, platform= (with label=, event_type=, domain=, home=, start/end, limit and
# offset beside them) on SQLite, differential: since schema 10 these filters read context
# spans and merged entity ranges (store_sqlite_merge.h) instead of one index per column;
# the answer must be exactly what the columns say -- the old index's answer -- computed
# here by sqlite3 straight from the rows (WHERE area_id = ... ORDER BY time_us DESC, id DESC).
#
# The events are made to break a cover that is too narrow: entities that move and move
# back (spans of one entity overlap), late events (a batch older than the ones before it,
# context different from the entity's newest), two homes with the same entity ids,
# entity-less events with a context (device_/area_registry_updated: the partial
# indexes), events without context, labels, several events at one microsecond.
# And event_type= of a rare type and of state_changed (the partial events_type_time).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_context_filters.sh /path/to/homeiq-data-storage}
command -v python3 >/dev/null || skip "python3 missing"

PORT=$(free_port)
U=http://127.0.0.1:$PORT
DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT start_bg storage "$BIN"
PID=$LAST_PID
wait_healthy "$U/health" 30 "$PID" || bail "data-storage started"

# 12 batches of 60 events; batch k's times are from hour (k*5 mod 12): out of order
python3 - "$TEST_TMP/batches" <<'PY'
import json, os, random, sys
out = sys.argv[1]; os.makedirs(out)
rnd = random.Random(15)
areas = [("kitchen", "ground"), ("hall", "ground"), ("bedroom", "upstairs"), ("attic", None)]
ents = ["sensor.t%d" % i for i in range(6)] + ["light.l%d" % i for i in range(4)] + ["switch.s0"]
where = {}  # (home, entity) -> index into areas
for k in range(12):
    hour = (k * 5) % 12
    evs = []
    for n in range(60):
        home = "cabin" if rnd.random() < 0.3 else None
        t = "2026-03-01T%02d:%02d:%02d.%06dZ" % (hour, n, rnd.randrange(60), rnd.choice([1, 1, 2, rnd.randrange(10**6)]))
        r = rnd.random()
        if r < 0.08:  # entity-less, with a context
            a, fl = rnd.choice(areas)
            e = {"event_type": rnd.choice(["device_registry_updated", "area_registry_updated"]), "entity_id": None,
                 "time_fired": t, "context_id": "c%d-%d" % (k, n), "data": {},
                 "area_id": a, "area": a, "floor_id": fl, "floor": fl, "device_id": "d%x" % rnd.randrange(3),
                 "device": "D", "manufacturer": "M", "model": "X", "labels": ["hub"], "platform": "zha",
                 "entity_category": None}
        elif r < 0.14:  # no entity, no context
            e = {"event_type": "call_service", "entity_id": None, "time_fired": t, "context_id": "c%d-%d" % (k, n),
                 "domain": "light", "data": {"domain": "light", "service": "turn_on"}}
        else:
            ent = rnd.choice(ents)
            key = (home, ent)
            if key not in where or rnd.random() < 0.15:
                where[key] = rnd.randrange(len(areas))  # a move (and, later, maybe back)
            a, fl = areas[where[key]]
            e = {"event_type": "state_changed" if rnd.random() < 0.9 else "automation_triggered", "entity_id": ent,
                 "domain": ent.split(".")[0], "time_fired": t, "context_id": "c%d-%d" % (k, n),
                 "state": str(rnd.randrange(30)), "attributes": {}}
            if rnd.random() < 0.85:  # a context; else none (an entity HA's registry does not know)
                e.update({"area_id": a, "area": a, "floor_id": fl, "floor": fl,
                          "device_id": "d%x" % (hash(ent) % 3 if rnd.random() < 0.9 else 7), "device": "D",
                          "manufacturer": "M", "model": "X",
                          "labels": ["battery"] if ent.endswith(("1", "3")) else [],
                          "platform": "zha" if ent.startswith("sensor") else "hue", "entity_category": None})
        evs.append((home, e))
    for h in (None, "cabin"):
        body = [e for home, e in evs if home == h]
        with open("%s/b%02d-%s.json" % (out, k, h or "default"), "w") as f:
            json.dump(body, f)
PY
stored=$(post_home_batches "$U" "$TEST_TMP"/batches/*.json)
check "the events are stored (some share an identity)" test "$stored" -gt 650
DB=$TEST_TMP/data/events.db

ref() { # ref WHERE LIMIT OFFSET : the event ids, straight from the rows
  sqlite3 "$DB" "SELECT event_id FROM events WHERE $1 ORDER BY time_us DESC, id DESC LIMIT $2 OFFSET $3" | paste -sd, -
}
api() { curl -s "$U/api/v1/events?$1" | jq -r '[.events[].event_id] | join(",")'; }
diffcheck() { # diffcheck QUERY WHERE
  local lim off got want
  for lo in "100 0" "7 0" "7 5" "20 33" "1000 0"; do
    set -- "$1" "$2" $lo
    got=$(api "$1&limit=$3&offset=$4"); want=$(ref "$2" "$3" "$4")
    [ -n "$want" ] || [ "$4" -gt 0 ] || { check "reference for '$1' is not empty" false; return; }
    check_eq "$1 limit=$3 offset=$4: the rows' answer" "$want" "$got"
  done
}
T0=2026-03-01T03:00:00Z; T0US=$(( $(date -ud "$T0" +%s) * 1000000 ))
T1=2026-03-01T08:30:00Z; T1US=$(( $(date -ud "$T1" +%s) * 1000000 ))
for a in kitchen hall bedroom attic; do diffcheck "area=$a" "area_id = '$a'"; done
diffcheck "floor=ground" "floor_id = 'ground'"
diffcheck "floor=upstairs&home=cabin" "floor_id = 'upstairs' AND home_id = 'cabin'"
diffcheck "device=d1" "device_id = 'd1'"
diffcheck "device=d7" "device_id = 'd7'"
diffcheck "platform=hue&home=default" "platform = 'hue' AND home_id = 'default'"
diffcheck "area=kitchen&label=battery" "area_id = 'kitchen' AND id IN (SELECT event_rowid FROM event_labels WHERE label = 'battery')"
diffcheck "area=hall&event_type=automation_triggered" "area_id = 'hall' AND event_type = 'automation_triggered'"
diffcheck "floor=ground&domain=light" "floor_id = 'ground' AND domain = 'light'"
diffcheck "area=bedroom&start=$T0&end=$T1" "area_id = 'bedroom' AND time_us >= $T0US AND time_us < $T1US"
diffcheck "platform=zha&floor=upstairs&start=$T0" "platform = 'zha' AND floor_id = 'upstairs' AND time_us >= $T0US"
check_eq "area=nowhere: nothing" "" "$(api 'area=nowhere')"
# event_type: a rare type reads the partial index, state_changed the time order
diffcheck "event_type=device_registry_updated" "event_type = 'device_registry_updated'"
diffcheck "event_type=state_changed&home=cabin" "event_type = 'state_changed' AND home_id = 'cabin'"
diffcheck "event_type=call_service&start=$T0&end=$T1" "event_type = 'call_service' AND time_us >= $T0US AND time_us < $T1US"

# the feed's first page by area= (ids from the spans), and a cursor's page (ids after it)
for a in kitchen attic; do
  check_eq "events/feed?area=$a: the newest ids (oldest first, as the feed answers)" \
    "$(sqlite3 "$DB" "SELECT event_id FROM (SELECT id, event_id FROM events WHERE area_id = '$a' ORDER BY id DESC LIMIT 25) ORDER BY id" | paste -sd, -)" \
    "$(curl -s "$U/api/v1/events/feed?area=$a&limit=25" | jq -r '[.events[].event_id] | join(",")')"
  check_eq "events/feed?area=$a&after=300: the ids after it" \
    "$(sqlite3 "$DB" "SELECT event_id FROM events WHERE area_id = '$a' AND id > 300 ORDER BY id LIMIT 25" | paste -sd, -)" \
    "$(curl -s "$U/api/v1/events/feed?area=$a&after=300&limit=25" | jq -r '[.events[].event_id] | join(",")')"
done

# the spans cover every event with a context, and only what the events say
check_eq "every entity event with a context lies in a span of its entity, home and context" 0 "$(sqlite3 "$DB" \
  "SELECT count(*) FROM events e WHERE entity_id IS NOT NULL AND coalesce(area_id, floor_id, device_id, platform) IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM event_contexts c WHERE c.entity_id = e.entity_id AND c.home_id = e.home_id
   AND c.area_id = ifnull(e.area_id, '') AND c.floor_id = ifnull(e.floor_id, '') AND c.device_id = ifnull(e.device_id, '')
   AND c.platform = ifnull(e.platform, '') AND e.time_us BETWEEN c.first_us AND c.last_us)")"
check_eq "each span is its events' first and last time" 0 "$(sqlite3 "$DB" \
  "SELECT count(*) FROM event_contexts c WHERE (first_us, last_us) IS NOT (SELECT min(time_us), max(time_us) FROM events e
   WHERE c.entity_id = e.entity_id AND c.home_id = e.home_id AND c.area_id = ifnull(e.area_id, '')
   AND c.floor_id = ifnull(e.floor_id, '') AND c.device_id = ifnull(e.device_id, '') AND c.platform = ifnull(e.platform, ''))")"
check "an entity moved and back: some spans of one entity and home overlap" test "$(sqlite3 "$DB" \
  "SELECT count(*) FROM event_contexts a JOIN event_contexts b ON a.entity_id = b.entity_id AND a.home_id = b.home_id
   AND (a.area_id, a.floor_id, a.device_id, a.platform) < (b.area_id, b.floor_id, b.device_id, b.platform)
   AND a.first_us <= b.last_us AND b.first_us <= a.last_us")" -gt 0
check "storage exits cleanly" stop_pid "$PID"

# retention: once every event of March is purged, no span is left to cover nothing
check "spans before the purge" test "$(sqlite3 "$DB" 'SELECT count(*) FROM event_contexts')" -gt 0
DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT RETENTION_DAYS=200 start_bg purge "$BIN"
PID=$LAST_PID
wait_healthy "$U/health" 30 "$PID" || bail "data-storage with RETENTION_DAYS started"
count() { sqlite3 "$DB" "SELECT count(*) FROM $1" 2>/dev/null; }
check "retention purges every event" wait_for 60 bash -c "[ \"\$(sqlite3 '$DB' 'SELECT count(*) FROM events' 2>/dev/null)\" = 0 ]"
check_eq "... and the spans with them" 0 "$(count event_contexts)"
check_eq "area=kitchen: nothing" "" "$(api 'area=kitchen')"
check "storage exits cleanly after the purge" stop_pid "$PID"
finish

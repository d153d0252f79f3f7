#!/usr/bin/env bash
# test_domain_offsets.sh /path/to/homeiq-data-storage -- GET /api/v1/events?domain=...&offset=
# on SQLite, differential: a page deeper than SQX_SKIP_ROWS counts the rows it skips a time
# window at a time, from the entity index alone where the domain spans prove a range holds
# the filter's rows only (store_sqlite_merge.h, schema 12); every answer must be exactly what
# the rows say (sqlite3: WHERE domain = ... ORDER BY time_us DESC, id DESC LIMIT .. OFFSET ..).
#
# The events are made to break a skip that trusts a range too far: one entity id in two homes
# at the same times, an entity with rows of a record's own domain among its own, rows with an
# entity and no domain ("domain": "", an entity id without a dot, a 64-character domain), an
# entity with other event types, entity-less rows with a domain in both homes, many events at
# one microsecond across entities (ties at a window's edge), out-of-order batches, a dense, a
# rare and an empty domain, and entities whose only other rows lie before their span (one
# renamed into the domain, one id that moved from one home to the other). Then migration 12
# on the same rows put back to schema 11.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
BIN=${1:?usage: test_domain_offsets.sh /path/to/homeiq-data-storage}
command -v python3 >/dev/null || skip "python3 missing"

PORT=$(free_port)
U=http://127.0.0.1:$PORT
start_sto() { DATA_DIR=$TEST_TMP/data DATA_STORAGE_PORT=$PORT start_bg "$1" "$BIN"; PID=$LAST_PID
  wait_healthy "$U/health" 30 "$PID" || bail "data-storage started"; }
start_sto storage

# 8 batches per home of ~500 events; batch k covers hour (k*3 mod 8): out of order
python3 - "$TEST_TMP/batches" <<'PY'
import json, os, random, sys
out = sys.argv[1]; os.makedirs(out)
rnd = random.Random(12)
rnd2 = random.Random(34)   # the F1 entities' own: the rest stays as it was
ents = ["sensor.s%d" % i for i in range(24)] + ["light.l%d" % i for i in range(6)] + ["climate.c0", "lock.k0"]
for k in range(8):
    hour = (k * 3) % 8
    for home in ("default", "cabin"):
        evs = []
        for n in range(500 if home == "default" else 150):
            us = rnd.choice([1, 1, 1, 2, rnd.randrange(10**6)])   # many events at one microsecond
            t = "2026-05-02T%02d:%02d:%02d.%06dZ" % (hour, n % 60, (n * 7) % 60, us)
            r = rnd.random()
            if r < 0.03:
                e = {"event_type": "call_service", "entity_id": None, "domain": rnd.choice(["light", "sensor"]),
                     "data": {}}
            else:
                ent = rnd.choice(ents if home == "default" else ents[:4] + ents[24:27])  # same ids in the cabin
                if ent == "lock.k0" and rnd.random() < 0.97: ent = "sensor.s1"      # a rare domain
                e = {"event_type": "state_changed" if rnd.random() < 0.9 else "automation_triggered", "entity_id": ent,
                     "state": str(rnd.randrange(30)), "attributes": {}}
                q = rnd.random()
                if ent == "climate.c0" and q < 0.3: e["domain"] = "custom"         # a record's own domain
                elif ent in ("light.l2", "light.l4") and q < 0.1: e["domain"] = ""  # entity, no domain (l4: one home)
                elif ent == "sensor.s10" and q < 0.05: e["domain"] = "x" * 64      # too long: no domain
                elif q < 0.01: e["entity_id"] = "nodot%d" % (n % 3)                # no dot: no domain
            e["time_fired"] = t
            e["context_id"] = "c%d-%s-%d" % (k, home, n)
            evs.append(e)
        # clean entities with other rows only before their sensor span, which a window reaching
        # below the span must not count: switch.r0 is renamed into sensor at 04:00 (its events
        # carry "domain": "sensor" from then on), sensor.h0 is in the cabin until 04:00, at home after
        f1 = [("switch.r0", "sensor" if hour >= 4 else None)] if home == "default" else []
        if (home == "cabin") == (hour < 4): f1.append(("sensor.h0", None))
        for ent, dom in f1:
            for n in range(60):
                e = {"event_type": "state_changed", "entity_id": ent, "state": str(n), "attributes": {},
                     "time_fired": "2026-05-02T%02d:%02d:%02d.%06dZ" % (hour, rnd2.randrange(60), rnd2.randrange(60),
                                                                      rnd2.randrange(10**6)),
                     "context_id": "r%d-%s-%s-%d" % (k, home, ent, n)}
                if dom: e["domain"] = dom
                evs.append(e)
        with open("%s/b%d-%s.json" % (out, k, home), "w") as f:
            json.dump(evs, f)
# the newest: a burst of 1,800 sensor events in 30 consecutive microseconds, so the skip's
# windows narrow to single microseconds that hold rows (a window's edge at a row's time)
burst = [{"event_type": "state_changed", "entity_id": "sensor.b%d" % (n % 60), "state": str(n), "attributes": {},
          "time_fired": "2026-05-02T09:00:00.%06dZ" % (n // 60), "context_id": "b%d" % n} for n in range(1800)]
with open("%s/b9-default.json" % out, "w") as f:
    json.dump(burst, f)
PY
stored=$(post_home_batches "$U" "$TEST_TMP"/batches/*.json)
check "the events are stored" test "$stored" -gt 6300
DB=$TEST_TMP/data/events.db
q() { sqlite3 "$DB" "$1"; }
check "rows with an entity and no domain (\"\", no dot, too long)" test "$(q "SELECT count(DISTINCT entity_id) FROM events WHERE entity_id IS NOT NULL AND domain IS NULL")" -ge 4
check "light.l2 has rows of no domain amid its light rows" test "$(q "SELECT count(*) FROM events WHERE entity_id = 'light.l2' AND domain IS NULL")" -gt 0
check "switch.r0: switch rows, then (04:00 on) sensor rows only" test "$(q "SELECT (SELECT max(time_us) FROM events WHERE entity_id = 'switch.r0' AND domain = 'switch') < (SELECT min(time_us) FROM events WHERE entity_id = 'switch.r0' AND domain = 'sensor') AND (SELECT count(*) FROM events WHERE entity_id = 'switch.r0' AND domain = 'switch') > 200")" = 1
check "sensor.h0: cabin rows, then (04:00 on) default rows only" test "$(q "SELECT (SELECT max(time_us) FROM events WHERE entity_id = 'sensor.h0' AND home_id = 'cabin') < (SELECT min(time_us) FROM events WHERE entity_id = 'sensor.h0' AND home_id = 'default') AND (SELECT count(*) FROM events WHERE entity_id = 'sensor.h0' AND home_id = 'cabin') > 200")" = 1
check "ties: one microsecond holds events of several entities" test "$(q "SELECT max(n) FROM (SELECT count(DISTINCT entity_id) n FROM events GROUP BY time_us)")" -gt 3

ref() { # ref WHERE LIMIT OFFSET : the event ids, straight from the rows
  q "SELECT event_id FROM events WHERE $1 ORDER BY time_us DESC, id DESC LIMIT $2 OFFSET $3" | paste -sd, -
}
api() { curl -s "$U/api/v1/events?$1" | jq -r '[.events[].event_id] | join(",")'; }
skipped() { curl -s "$U/health" | jq -r '.backend.reads.skipped'; }
pages=0
diffcheck() { # diffcheck QUERY WHERE : pages around every depth, the last ones and past the end
  local total off lim
  total=$(q "SELECT count(*) FROM events WHERE $2")
  for lo in "100 0" "7 511" "100 513" "1 600" "50 999" "100 1500" "1000 2000" "3 2999" \
            "100 $((total / 2))" "100 $((total - 100))" "7 $((total - 3))" "1 $((total - 1))" "10 $total" "5 $((total + 5))"; do
    set -- "$1" "$2" $lo
    [ "$4" -ge 0 ] || continue
    check_eq "$1 limit=$3 offset=$4 (of $total): the rows' answer" "$(ref "$2" "$3" "$4")" "$(api "$1&limit=$3&offset=$4")"
    pages=$((pages + 1))
  done
}
T0=2026-05-02T02:00:00Z; T0US=$(( $(date -ud "$T0" +%s) * 1000000 ))
T1=2026-05-02T06:30:00Z; T1US=$(( $(date -ud "$T1" +%s) * 1000000 ))
s0=$(skipped)
diffcheck "domain=sensor" "domain = 'sensor'"
diffcheck "domain=sensor&home=cabin" "domain = 'sensor' AND home_id = 'cabin'"
diffcheck "domain=sensor&home=default" "domain = 'sensor' AND home_id = 'default'"
diffcheck "domain=light" "domain = 'light'"
diffcheck "domain=light&start=$T0&end=$T1" "domain = 'light' AND time_us >= $T0US AND time_us < $T1US"
diffcheck "domain=climate" "domain = 'climate'"
diffcheck "domain=custom" "domain = 'custom'"
diffcheck "domain=lock" "domain = 'lock'"
diffcheck "domain=sensor&start=$T0" "domain = 'sensor' AND time_us >= $T0US"
diffcheck "domain=sensor&event_type=state_changed" "domain = 'sensor' AND event_type = 'state_changed'"
check_eq "domain=nosuch&offset=600: nothing" "" "$(api 'domain=nosuch&offset=600')"
check "deep pages counted what they skipped (reads.skipped)" test "$(skipped)" -gt "$((s0 + 40))"
check "storage exits cleanly" stop_pid "$PID"

# migration 12 on these rows as schema 11 had them (no spans of domain ''): the same spans back
SPANS="SELECT coalesce(domain, ''), entity_id, home_id, min(time_us), max(time_us) FROM events WHERE entity_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
check_eq "the writer's spans: every (domain or '', entity, home)'s first and last time" "$(q "$SPANS")" "$(q 'SELECT * FROM event_domains ORDER BY 1, 2, 3')"
q "DELETE FROM event_domains WHERE domain = ''; PRAGMA user_version = 11"
start_sto migrated
check "migration 12 is logged" grep -q "sqlite schema migrated to version 12" "$TEST_TMP/migrated.log"
check "... at its start (a full table scan: the log says what it reads)" grep -q "sqlite migration 12: reading up to [0-9]* events ([0-9]* MB)" "$TEST_TMP/migrated.log"
check "... and its end, with the spans and seconds" grep -qE "sqlite migration 12: $(q "SELECT count(*) FROM event_domains WHERE domain = ''") spans of domain '' .* in [0-9.]+ s" "$TEST_TMP/migrated.log"
check_eq "... and fills the spans of domain ''" "$(q "$SPANS")" "$(q 'SELECT * FROM event_domains ORDER BY 1, 2, 3')"
diffcheck "domain=light" "domain = 'light'"
check "every page was compared ($pages)" test "$pages" -gt 140
check "storage exits cleanly" stop_pid "$PID"
finish

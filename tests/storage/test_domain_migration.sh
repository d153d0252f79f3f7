#!/usr/bin/env bash
# test_domain_migration.sh /path/to/homeiq-data-storage [/path/to/fault_shim.so] -- migration 11
# (issue 15, store_sqlite_domain.h) on a database made by main's binary before it:
# data/events_v10_main-0d7b6c3.db (schema 10; data/make_events_v10.sh: three domains, a record
# whose domain is not its entity's prefix, entity-less events with and without a domain, a late
# batch, two homes, registry context, labels, numeric states). Opening it with this binary must
# keep every row, make events_domain_time partial on entity-less rows, fill event_domains so
# every event with an entity and a domain is covered, give every read of data/v10_queries.txt
# (events by entity, domain, type, area, label, home, time ranges and pages; the feed; entities;
# series; statistics; registry) exactly the answer main's binary gave on the same file
# (data/events_v10_main-0d7b6c3.answers), keep the spans as new events arrive, and let a
# RETENTION_OVERRIDES domain rule delete exactly that domain's old events, with and without an
# entity. With the fault shim: a disk too small for the migration is refused with the reason,
# the store stays at schema 10 and the next start with room migrates it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
. "$here/migration_lib.sh"   # mig_fixture, q, plan, start_sto, mig_start, mig_no_room, post, ids
BIN=${1:?usage: test_domain_migration.sh /path/to/homeiq-data-storage [fault_shim.so]}
SHIM=${2:-}
FIXTURE=$here/data/events_v10_main-0d7b6c3.db
ANSWERS=$here/data/events_v10_main-0d7b6c3.answers
export LOG_LEVEL=info STORAGE_MIN_FREE_BYTES=0

mig_fixture "$FIXTURE"
check_eq "fixture: schema 10, 15 events, events_domain_time over every event" "10|15|CREATE INDEX events_domain_time ON events(domain, time_us)" \
  "$(q "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM events), (SELECT sql FROM sqlite_master WHERE name = 'events_domain_time')")"
# what the spans must be: per (domain, entity, home) of the rows, their first and last time
SPANS="SELECT domain, entity_id, home_id, min(time_us), max(time_us) FROM events WHERE entity_id IS NOT NULL AND domain IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
want_spans=$(q "$SPANS")

if [ -n "$SHIM" ]; then
  mig_no_room 11 "domain reads over the entity index" "$SHIM"
  check_eq "... nothing changed: schema 10, no event_domains" "10|0" \
    "$(q "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master WHERE name = 'event_domains')")"
fi

mig_start 11
check "... its start, with the events and where the sort spills" grep -q "sqlite migration 11: filling event_domains from up to 15 events .*temp directory" "$TEST_TMP/sto.log"
check "... its end, with the spans and the entity-less rows" grep -q "sqlite migration 11: 6 domain spans over 2 entity-less rows with a domain, in [0-9.]* s" "$TEST_TMP/sto.log"
check_eq "every old row unchanged" "$(cat "$TEST_TMP/old.rows")" "$(q "$ROWS")"
check_eq "events_domain_time is partial on entity-less rows" \
  "CREATE INDEX events_domain_time ON events(domain, time_us) WHERE domain IS NOT NULL  AND entity_id IS NULL" \
  "$(q "SELECT sql FROM sqlite_master WHERE name = 'events_domain_time'")"
check "the fixture has spans to fill (custom: a record's own domain)" grep -q "^custom|sensor.d10_odd|default|" <<<"$want_spans"
check_eq "event_domains: one span per domain, entity and home, its events' first and last time" "$want_spans" \
  "$(q 'SELECT * FROM event_domains ORDER BY 1, 2, 3')"

n=0
while IFS=$'\t' read -r path want; do
  n=$((n + 1))
  check_eq "$path: main's answer before the migration" "$want" "$(curl -s "$U$path" | jq -cS .)"
done <"$ANSWERS"
check "every read of v10_queries.txt was compared ($n)" test "$n" -eq "$(wc -l <"$here/data/v10_queries.txt")" -a "$n" -gt 30

NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000001Z)
check_eq "after the migration: a new light event, and one without an entity, stored" "2 0" \
  "$(post "[{\"event_type\":\"state_changed\",\"entity_id\":\"light.d10_new\",\"time_fired\":\"$NOW\",\"context_id\":\"n1\",\"state\":\"on\",\"attributes\":{}},
{\"event_type\":\"call_service\",\"entity_id\":null,\"time_fired\":\"$NOW\",\"context_id\":\"n2\",\"domain\":\"light\",\"state\":null,\"attributes\":{}}]")"
check_eq "... a re-sent batch is all duplicates" "0 1" \
  "$(post "[{\"event_type\":\"state_changed\",\"entity_id\":\"light.d10_new\",\"time_fired\":\"$NOW\",\"context_id\":\"n1\",\"state\":\"on\",\"attributes\":{}}]")"
check_eq "... the new entity has its span" 1 "$(q "SELECT count(*) FROM event_domains WHERE domain = 'light' AND entity_id = 'light.d10_new' AND first_us = last_us")"
# which way a read went: /health's backend.reads counters (store_sqlite.c), so a read routed
# back to the old one-statement query (or the feed back to reading by id) fails here
reads() { curl -s "$U/health" | jq -r ".backend.reads.$1"; }
check_eq "domain=light finds both first, then the 7 old ones" "call_service,state_changed|9" \
  "$(curl -s "$U/api/v1/events?domain=light" | jq -r '"\([.events[0,1].event_type] | sort | join(","))|\(.count)"')"
# the feed's first page of a rare or empty domain: ids from the spans (sqr_domain_rare), not by id
feed() { curl -s "$U/api/v1/events/feed?$1" | jq -r '[.events[].event_id] | join(",")'; }
f0=$(reads feed_spans)
check_eq "feed?domain=nosuch: empty" "" "$(feed "domain=nosuch&limit=10")"
check_eq "feed?domain=light&limit=3: the 3 newest light events by id, oldest first" \
  "$(q "SELECT group_concat(event_id) FROM (SELECT * FROM (SELECT event_id, id FROM events WHERE domain = 'light' ORDER BY id DESC LIMIT 3) ORDER BY id)")" \
  "$(feed "domain=light&limit=3")"
check_eq "... both from the spans (reads.feed_spans + 2)" "$((f0 + 2))" "$(reads feed_spans)"
# a batch of another home, several times per entity out of order and a record's own domain: the
# spans take each (domain, entity, home)'s first and last time of the batch (sqd_update)
cabin='[{"event_type":"state_changed","entity_id":"cover.d13_a","time_fired":"2026-07-04T10:00:03.000001Z","context_id":"c1","state":"on","attributes":{}},
{"event_type":"state_changed","entity_id":"cover.d13_a","time_fired":"2026-07-04T10:00:01.000001Z","context_id":"c2","state":"off","attributes":{}},
{"event_type":"state_changed","entity_id":"cover.d13_a","time_fired":"2026-07-04T10:00:05.000001Z","context_id":"c3","state":"on","attributes":{}},
{"event_type":"state_changed","entity_id":"cover.d13_a","domain":"custom","time_fired":"2026-07-04T10:00:02.000001Z","context_id":"c4","state":"on","attributes":{}},
{"event_type":"state_changed","entity_id":"cover.d13_b","time_fired":"2026-07-04T10:00:04.000001Z","context_id":"c5","state":"on","attributes":{}}]'
check_eq "a cabin batch of 5 events stored" "5 0" \
  "$(curl -s -XPOST "$U/api/v1/events" -H 'Content-Type: application/json' -H 'X-HomeIQ-Home: cabin' --data-binary "$cabin" | jq -r '"\(.stored) \(.duplicates)"')"
check_eq "... its spans: cabin's, each from the batch's first to last time" \
  "cover|cover.d13_a|cabin|1783159201000001|1783159205000001
cover|cover.d13_b|cabin|1783159204000001|1783159204000001
custom|cover.d13_a|cabin|1783159202000001|1783159202000001" \
  "$(q "SELECT * FROM event_domains WHERE entity_id LIKE 'cover.d13_%' ORDER BY 1, 2, 3")"
# a dense domain (30 switches, most of the events): read by time instead of merged (sqd_dense),
# the same rows either way
body=$(for e in $(seq 30); do for k in 1 2; do
  labels="\"sw\",\"e$e\""; [ "$e$k" = 11 ] && labels="\"sw\",\"e1\",\"sw\""   # one names a label twice
  printf '{"event_type":"state_changed","entity_id":"switch.d11_%d","time_fired":"2026-07-0%dT10:00:%02d.000001Z","context_id":"s%d-%d","state":"on","attributes":{},"labels":[%s]},' "$e" "$k" "$e" "$e" "$k" "$labels"
done; done)
check_eq "60 switch events stored, two labels each" "60 0" "$(post "[${body%,}]")"
t0=$(reads by_time)
check_eq "domain=switch: 60 events" 60 "$(curl -s "$U/api/v1/events?domain=switch" | jq .count)"
check_eq "... read by time, not merged (reads.by_time + 1)" "$((t0 + 1))" "$(reads by_time)"
m0=$(reads merged)
check_eq "domain=light, now under a tenth of the events: 9" 9 "$(curl -s "$U/api/v1/events?domain=light" | jq .count)"
check_eq "... merged from light's spans (reads.merged + 1)" "$((m0 + 1))" "$(reads merged)"
# their 120 label rows go in statements of 16 rows and one by one (sqr_insert_labels): each event's
# distinct labels, its time and row, as the records say -- the fixture's rows (main's writer) too
check_eq "event_labels: every event's distinct labels, as its record says" \
  "$(q "SELECT DISTINCT j.value, e.time_us, e.id FROM events e, json_each(e.record, '$.labels') j ORDER BY 3, 1")" \
  "$(q 'SELECT label, time_us, event_rowid FROM event_labels ORDER BY 3, 1')"
check_eq "label=sw: the 60 switch events" 60 "$(curl -s "$U/api/v1/events?label=sw" | jq .count)"
# events go in 16 per INSERT (store_sqlite_insert_group): a batch of 40 mixing 20 new events,
# 10 stored before and 10 repeated in the batch -- two groups of 16 and 8 one by one
mixed=$(for k in $(seq 20); do
  printf '{"event_type":"state_changed","entity_id":"switch.d12_%d","time_fired":"2026-07-03T10:00:%02d.000001Z","context_id":"m%d","state":"off","attributes":{},"labels":["n%d"]},' "$k" "$k" "$k" "$k"
  if [ $((k % 2)) = 1 ]; then
    printf '{"event_type":"state_changed","entity_id":"switch.d11_%d","time_fired":"2026-07-01T10:00:%02d.000001Z","context_id":"s%d-1","state":"on","attributes":{},"labels":["sw"]},' "$k" "$k" "$k"
  else
    printf '{"event_type":"state_changed","entity_id":"switch.d12_%d","time_fired":"2026-07-03T10:00:%02d.000001Z","context_id":"m%d","state":"off","attributes":{},"labels":["n%d"]},' "$k" "$k" "$k" "$k"
  fi
done)
check_eq "a mixed batch of 40: 20 stored, 20 duplicates" "20 20" "$(post "[${mixed%,}]")"
check_eq "... each new event stored once, with its own label on its own row" "20|20|20" \
  "$(q "SELECT count(*), count(DISTINCT time_us), (SELECT count(*) FROM event_labels l JOIN events e ON e.id = l.event_rowid WHERE e.entity_id LIKE 'switch.d12_%' AND l.label = 'n' || substr(e.entity_id, 12) AND l.time_us = e.time_us) FROM events WHERE entity_id LIKE 'switch.d12_%'")"
check_eq "... and event_labels still as every record says" \
  "$(q "SELECT DISTINCT j.value, e.time_us, e.id FROM events e, json_each(e.record, '$.labels') j ORDER BY 3, 1")" \
  "$(q 'SELECT label, time_us, event_rowid FROM event_labels ORDER BY 3, 1')"
check_eq "... the same batch again: all 40 duplicates" "0 40" "$(post "[${mixed%,}]")"
ref() { q "SELECT group_concat(event_id) FROM (SELECT event_id FROM events WHERE $1 ORDER BY time_us DESC, id DESC LIMIT $2 OFFSET $3)"; }
for f in "domain=switch|domain = 'switch'|100|0" "domain=switch&limit=7&offset=20|domain = 'switch'|7|20" \
         "domain=switch&start=2026-07-02T00:00:00Z|domain = 'switch' AND time_us >= 1782950400000000|100|0" \
         "domain=light|domain = 'light'|100|0" "domain=light&limit=3&offset=2|domain = 'light'|3|2"; do
  IFS='|' read -r qs cond lim off <<<"$f"
  want=$(ref "$cond" "$lim" "$off")
  check "$qs: the store has rows for it" test -n "$want"
  check_eq "$qs: as the rows say" "$want" "$(ids "$qs")"
done
check "storage exits cleanly" stop_pid "$PID"
check_eq "spans still as the rows say" "$(q "$SPANS")" "$(q 'SELECT * FROM event_domains ORDER BY 1, 2, 3')"

check "domain=: one entity's range of events_entity_series" \
  grep -q "SEARCH events USING INDEX events_entity_series (entity_id=? AND time_us>? AND time_us<?)" <<<"$(plan "SELECT time_us, id FROM events WHERE entity_id = ?1 AND home_id = ?2 AND time_us >= ?3 AND time_us <= ?4 AND (time_us < ?4 OR id < ?5) AND domain = ?10 ORDER BY time_us DESC, id DESC LIMIT ?6")"
check "domain=: the entity-less events through the partial events_domain_time" \
  grep -q "SEARCH events USING INDEX events_domain_time (domain=? AND time_us>? AND time_us<?)" <<<"$(plan "SELECT time_us, id FROM events INDEXED BY events_domain_time WHERE entity_id IS NULL AND time_us >= ?3 AND time_us <= ?4 AND (time_us < ?4 OR id < ?5) AND domain = ?10 ORDER BY time_us DESC, id DESC LIMIT ?6")"
rule=$(plan "SELECT e.id FROM event_domains d JOIN events e INDEXED BY events_entity_series ON e.entity_id = d.entity_id AND e.time_us < ?1 WHERE d.domain = 'light' AND d.first_us < ?1 AND e.home_id = d.home_id AND e.domain = 'light' UNION ALL SELECT id FROM events INDEXED BY events_domain_time WHERE entity_id IS NULL AND domain = 'light' AND time_us < ?1 LIMIT 5")
check "a domain rule's purge: the domain's spans, then each entity's range and the partial index, no scan" \
  bash -c "grep -q 'SEARCH d USING PRIMARY KEY (domain=?)' <<<'$rule' && grep -q 'SEARCH e USING INDEX events_entity_series (entity_id=? AND time_us<?)' <<<'$rule' && grep -q 'events_domain_time (domain=? AND time_us<?)' <<<'$rule' && ! grep -q 'SCAN' <<<'$rule'"

# a domain rule: light's events older than 30 days go (every fixture event is from June 2026)
old_light=$(q "SELECT count(*) FROM events WHERE domain = 'light' AND time_us < 1780999999000000")
others=$(q "SELECT count(*) FROM events WHERE domain IS NOT 'light'")
check_eq "7 old light events (2 without an entity, 1 of the cabin), 93 others (80 switches, 5 cabin covers)" "7|93" "$old_light|$others"
start_sto purge RETENTION_DAYS=0 RETENTION_OVERRIDES="light=30" PURGE_INTERVAL_MS=100 PURGE_STEP_ROWS=2
check "storage starts with the domain rule" wait_healthy "$U/health" 30 "$PID"
done_purging() { curl -s "$U/health" | jq -e '.backend.retention.events_purged == 7 and .backend.retention.purging == false' >/dev/null; }
check "the 7 old light events purged, in steps of 2" wait_for 30 done_purging
check_eq "domain=light: only the two new events left" "2|0" \
  "$(curl -s "$U/api/v1/events?domain=light" | jq -r '"\(.count)|\([.events[] | select(.time_fired < "2026-07")] | length)"')"
check "storage exits cleanly" stop_pid "$PID"
check_eq "every other domain's event kept (and the new ones)" "$((others + 2))|0" \
  "$(q "SELECT count(*), (SELECT count(*) FROM events WHERE domain = 'light' AND time_us < 1780999999000000) FROM events")"
check_eq "integrity_check" ok "$(q 'PRAGMA integrity_check')"
finish

/* store_sqlite_home.h -- homes on the SQLite store (issue 18): the schema step
 * that gives every table a read selects by home a home_id column, and the
 * reads that only exist per home (dead letters of a home, the homes list).
 *
 * Why a column and not the record's member: entities, registry rows and dead
 * letters have no record to look in, and two homes with the same entity id
 * must be two rows (entities and registry are keyed by (entity_id, home_id)).
 * The column holds the exact id ('default' for the default home), so a read
 * filters with `home_id = ?`, never a pattern.
 *
 * Why the partial indexes (WHERE home_id != 'default'): a single-home install
 * (every row 'default') pays nothing for them on insert; a multi-home one pays
 * one small index entry per non-default event, which makes counting a home's
 * events (stats, homes) an index range instead of a scan of every row.
 *
 * Ownership: the functions borrow the store; rows go to the callback. */
#ifndef HOMEIQ_STORE_SQLITE_HOME_H
#define HOMEIQ_STORE_SQLITE_HOME_H

#include "store.h"

#include <sqlite3.h>

/* The migration (store_sqlite.c's list). Cost on an existing file: the new
 * columns are O(1) (a constant default); every record is read once (a scan,
 * a substring test before any JSON parse) and only rows whose record names a
 * home (a top-level "home_id" member: events stored for another home by an
 * older binary) are rewritten; entities are copied, and re-counted from the events only for the
 * entities some other home has events of; registry rows go to the home of the
 * event they were last seen in (preferring the default home when both have
 * one at that microsecond). Dead letters stored before it have no known home:
 * they become the default home's. */
#define STORE_SQLITE_HOME_MIGRATION                                                                            \
    "ALTER TABLE events ADD COLUMN home_id TEXT NOT NULL DEFAULT '" EVENT_HOME_DEFAULT "';"                  \
    "UPDATE events SET home_id = json_extract(record, '$." STORE_HOME_KEY "')"                                \
    "  WHERE instr(record, '\"" STORE_HOME_KEY "\"') > 0"                                                    \
    "  AND json_type(record, '$." STORE_HOME_KEY "') = 'text';"                                              \
    "CREATE INDEX events_home_time ON events(home_id, time_us) WHERE home_id != '" EVENT_HOME_DEFAULT "';"   \
    "ALTER TABLE dead_letters ADD COLUMN home_id TEXT NOT NULL DEFAULT '" EVENT_HOME_DEFAULT "';"             \
    "CREATE INDEX dead_letters_home ON dead_letters(home_id, id) WHERE home_id != '" EVENT_HOME_DEFAULT "';" \
    "CREATE TABLE entities_h ("                                                                                \
    "  id INTEGER PRIMARY KEY,"                                                                                \
    "  entity_id TEXT NOT NULL,"                                                                               \
    "  home_id TEXT NOT NULL DEFAULT '" EVENT_HOME_DEFAULT "',"                                              \
    "  domain TEXT,"                                                                                           \
    "  event_count INTEGER NOT NULL,"                                                                          \
    "  last_time_us INTEGER NOT NULL,"                                                                         \
    "  last_state TEXT,"                                                                                       \
    "  state_time_us INTEGER,"                                                                                 \
    "  last_changed_us INTEGER,"                                                                               \
    "  numeric INTEGER NOT NULL DEFAULT 0,"                                                                    \
    "  UNIQUE (entity_id, home_id));"                                                                          \
    "CREATE TEMP TABLE home_mixed AS SELECT DISTINCT entity_id FROM events"                                   \
    "  WHERE home_id != '" EVENT_HOME_DEFAULT "' AND entity_id IS NOT NULL;"                                 \
    "INSERT INTO entities_h(id, entity_id, domain, event_count, last_time_us, last_state, state_time_us,"     \
    "  last_changed_us, numeric) SELECT id, entity_id, domain, event_count, last_time_us, last_state,"        \
    "  state_time_us, last_changed_us, numeric FROM entities"                                                 \
    "  WHERE entity_id NOT IN (SELECT entity_id FROM temp.home_mixed);"                                      \
    "INSERT INTO entities_h(entity_id, home_id, domain, event_count, last_time_us)"                            \
    "  SELECT entity_id, home_id, max(domain), count(*), max(time_us) FROM events"                            \
    "  WHERE entity_id IN (SELECT entity_id FROM temp.home_mixed) GROUP BY entity_id, home_id;"               \
    "UPDATE entities_h SET (last_state, state_time_us) = (SELECT state, time_us FROM events"                  \
    "    WHERE entity_id = entities_h.entity_id AND home_id = entities_h.home_id AND kind = 1"                \
    "    ORDER BY time_us DESC, id DESC LIMIT 1),"                                                            \
    "  numeric = EXISTS (SELECT 1 FROM events WHERE entity_id = entities_h.entity_id"                         \
    "    AND home_id = entities_h.home_id AND kind = 1 AND value IS NOT NULL)"                                \
    "  WHERE entity_id IN (SELECT entity_id FROM temp.home_mixed);"                                          \
    "UPDATE entities_h SET last_changed_us = (SELECT min(time_us) FROM events s"                              \
    "    WHERE s.entity_id = entities_h.entity_id AND s.home_id = entities_h.home_id AND s.kind = 1"          \
    "    AND s.time_us > coalesce((SELECT max(time_us) FROM events t WHERE t.entity_id = entities_h.entity_id" \
    "    AND t.home_id = entities_h.home_id AND t.kind = 1 AND t.state IS NOT entities_h.last_state), -1))"   \
    "  WHERE state_time_us IS NOT NULL AND entity_id IN (SELECT entity_id FROM temp.home_mixed);"            \
    "DROP TABLE temp.home_mixed;"                                                                             \
    "DROP TABLE entities;"                                                                                     \
    "ALTER TABLE entities_h RENAME TO entities;"                                                               \
    "CREATE TABLE registry_h (entity_id TEXT NOT NULL, home_id TEXT NOT NULL DEFAULT '" EVENT_HOME_DEFAULT   \
    "', time_us INTEGER NOT NULL, since_us INTEGER NOT NULL, context TEXT NOT NULL,"                          \
    "  PRIMARY KEY (entity_id, home_id));"                                                                     \
    "INSERT INTO registry_h(entity_id, home_id, time_us, since_us, context) SELECT entity_id,"                \
    "  coalesce((SELECT e.home_id FROM events e WHERE e.entity_id = registry.entity_id"                       \
    "    AND e.time_us = registry.time_us ORDER BY e.home_id != '" EVENT_HOME_DEFAULT "' LIMIT 1), '"        \
    EVENT_HOME_DEFAULT "'), time_us, since_us, context FROM registry;"                                        \
    "DROP TABLE registry;"                                                                                     \
    "ALTER TABLE registry_h RENAME TO registry;"

/* home as stored: NULL or "" (the batch's default) -> EVENT_HOME_DEFAULT. */
const char *store_sqlite_home_of(const char *home);

/* GET /api/v1/dead-letters?home=: one home's, newest first. */
void store_sqlite_dead_letters_home(store *s, const char *home, long limit, store_rows_cb cb, void *arg);
/* GET /api/v1/homes: {"home_id":..,"events":n} per home with stored events. */
void store_sqlite_homes(store *s, store_rows_cb cb, void *arg);

#endif

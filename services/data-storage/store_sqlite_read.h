/* store_sqlite_read.h -- SQLite's side of store_read.h (feed, entities,
 * series, stats) and the schema step they need (migration 3).
 *
 * Why its own file: store_sqlite.c owns durable writes; these reads only
 * select, from what the writer keeps for them (store_sqlite_model.h). */
#ifndef HOMEIQ_STORE_SQLITE_READ_H
#define HOMEIQ_STORE_SQLITE_READ_H

#include "store.h"

#include <sqlite3.h>

/* Migration 3 (see store_sqlite.c's list and store_sqlite_model.h): the
 * columns, their values for the existing events, the widened entity index,
 * the entities table. The numeric reading of a state is the record's `value`
 * (enrichment's float()/state_as_number) when the state string holds a digit,
 * so "on"/"off" (value 1/0) stay on the state timeline. On a large file this
 * rewrites every row once (minutes for millions of events). */
#define STORE_SQLITE_MIGRATION_3                                                                                   \
    "ALTER TABLE events ADD COLUMN kind INTEGER;"                                                                  \
    "ALTER TABLE events ADD COLUMN state TEXT;"                                                                    \
    "ALTER TABLE events ADD COLUMN value REAL;"                                                                    \
    "UPDATE events SET kind = 1, state = json_extract(record, '$.state'),"                                         \
    "  value = CASE WHEN json_extract(record, '$.state') GLOB '*[0-9]*' THEN json_extract(record, '$.value') END"   \
    "  WHERE event_type = 'state_changed';"                                                                        \
    "DROP INDEX events_entity_time;"                                                                               \
    "CREATE INDEX events_entity_series ON events(entity_id, time_us, kind, value, state);"                        \
    "CREATE TABLE entities ("                                                                                      \
    "  id INTEGER PRIMARY KEY,"                                                                                    \
    "  entity_id TEXT NOT NULL UNIQUE,"                                                                            \
    "  domain TEXT,"                                                                                               \
    "  event_count INTEGER NOT NULL,"                                                                              \
    "  last_time_us INTEGER NOT NULL,"                                                                             \
    "  last_state TEXT,"                                                                                           \
    "  state_time_us INTEGER,"                                                                                     \
    "  last_changed_us INTEGER,"                                                                                   \
    "  numeric INTEGER NOT NULL DEFAULT 0);"                                                                       \
    "INSERT INTO entities(entity_id, domain, event_count, last_time_us)"                                           \
    "  SELECT entity_id, max(domain), count(*), max(time_us) FROM events"                                          \
    "  WHERE entity_id IS NOT NULL GROUP BY entity_id;"                                                            \
    "UPDATE entities SET (last_state, state_time_us) = (SELECT state, time_us FROM events"                         \
    "    WHERE entity_id = entities.entity_id AND kind = 1 ORDER BY time_us DESC, id DESC LIMIT 1),"               \
    "  numeric = EXISTS (SELECT 1 FROM events WHERE entity_id = entities.entity_id AND kind = 1"                   \
    "    AND value IS NOT NULL);"                                                                                  \
    "UPDATE entities SET last_changed_us = (SELECT min(time_us) FROM events s"                                     \
    "    WHERE s.entity_id = entities.entity_id AND s.kind = 1 AND s.time_us > coalesce((SELECT max(time_us)"      \
    "    FROM events t WHERE t.entity_id = entities.entity_id AND t.kind = 1"                                      \
    "    AND t.state IS NOT entities.last_state), -1)) WHERE state_time_us IS NOT NULL;"

/* The connection and file of an open SQLite store (store_sqlite.c). */
sqlite3 *store_sqlite_db(store *s);

/* A feed page read its ids from spans (area=, a rare domain=): /health's
 * backend.reads.feed_spans, with .merged and .by_time for GET /api/v1/events (the
 * tests prove which way a read went with them). */
void store_sqlite_count_feed_spans(store *s);
const char *store_sqlite_path(store *s);

void store_sqlite_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
void store_sqlite_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
void store_sqlite_series(store *s, const store_series_query *q, store_read_cb cb, void *arg);
void store_sqlite_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg);

#endif

/* store_sqlite_read.h -- SQLite's side of store_read.h (feed, entities,
 * series, stats) and the schema step they need (migration 3).
 *
 * Why its own file: store_sqlite.c owns durable writes; these reads only
 * select, and they rely on two small tables that a trigger keeps in the
 * writer's own transaction, so the write path's C code does not change. */
#ifndef HOMEIQ_STORE_SQLITE_READ_H
#define HOMEIQ_STORE_SQLITE_READ_H

#include "store.h"

#include <sqlite3.h>

/* Migration 3 (see store_sqlite.c's list): tables, backfill from existing
 * events, then the trigger. The numeric reading of a state is the record's
 * `value` (enrichment's float()/state_as_number) when the state string holds
 * a digit, so "on"/"off" (value 1/0) stay on the state timeline. */
#define STORE_SQLITE_MIGRATION_3                                                                                   \
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
    "CREATE TABLE samples ("                                                                                       \
    "  entity INTEGER NOT NULL,"                                                                                   \
    "  time_us INTEGER NOT NULL,"                                                                                  \
    "  event INTEGER NOT NULL,"                                                                                    \
    "  value REAL,"                                                                                                \
    "  state TEXT,"                                                                                                \
    "  PRIMARY KEY (entity, time_us, event)) WITHOUT ROWID;"                                                       \
    "INSERT INTO entities(entity_id, domain, event_count, last_time_us)"                                           \
    "  SELECT entity_id, max(domain), count(*), max(time_us) FROM events"                                          \
    "  WHERE entity_id IS NOT NULL GROUP BY entity_id;"                                                            \
    "INSERT INTO samples(entity, time_us, event, value, state)"                                                    \
    "  SELECT n.id, e.time_us, e.id,"                                                                              \
    "    CASE WHEN json_extract(e.record,'$.state') GLOB '*[0-9]*' THEN json_extract(e.record,'$.value') END,"     \
    "    json_extract(e.record,'$.state')"                                                                         \
    "  FROM events e JOIN entities n ON n.entity_id = e.entity_id WHERE e.event_type = 'state_changed';"          \
    "UPDATE entities SET (last_state, state_time_us) = (SELECT state, time_us FROM samples"                        \
    "    WHERE entity = entities.id ORDER BY time_us DESC, event DESC LIMIT 1),"                                   \
    "  numeric = EXISTS (SELECT 1 FROM samples WHERE entity = entities.id AND value IS NOT NULL);"                 \
    "UPDATE entities SET last_changed_us = (SELECT min(time_us) FROM samples s WHERE s.entity = entities.id"       \
    "    AND s.time_us > coalesce((SELECT max(time_us) FROM samples t WHERE t.entity = entities.id"                \
    "    AND t.state IS NOT entities.last_state), -1)) WHERE state_time_us IS NOT NULL;"                           \
    "CREATE TRIGGER events_read_model AFTER INSERT ON events WHEN NEW.entity_id IS NOT NULL BEGIN"                 \
    "  INSERT INTO entities(entity_id, domain, event_count, last_time_us)"                                         \
    "    VALUES (NEW.entity_id, NEW.domain, 1, NEW.time_us)"                                                       \
    "    ON CONFLICT(entity_id) DO UPDATE SET event_count = event_count + 1,"                                      \
    "      last_time_us = max(last_time_us, excluded.last_time_us);"                                               \
    "  INSERT INTO samples(entity, time_us, event, value, state)"                                                  \
    "    SELECT (SELECT id FROM entities WHERE entity_id = NEW.entity_id), NEW.time_us, NEW.id,"                   \
    "      CASE WHEN j.s GLOB '*[0-9]*' THEN j.v END, j.s"                                                         \
    "    FROM (SELECT json_extract(NEW.record,'$.state') AS s, json_extract(NEW.record,'$.value') AS v) j"         \
    "    WHERE NEW.event_type = 'state_changed';"                                                                  \
    "  UPDATE entities SET"                                                                                        \
    "      last_changed_us = CASE WHEN state_time_us IS NOT NULL AND last_state IS x.state"                        \
    "                        THEN last_changed_us ELSE NEW.time_us END,"                                           \
    "      last_state = x.state, state_time_us = NEW.time_us,"                                                     \
    "      numeric = numeric OR x.value IS NOT NULL"                                                               \
    "    FROM (SELECT state, value FROM samples WHERE entity = (SELECT id FROM entities"                           \
    "          WHERE entity_id = NEW.entity_id) AND time_us = NEW.time_us AND event = NEW.id) x"                   \
    "    WHERE entity_id = NEW.entity_id AND (state_time_us IS NULL OR state_time_us <= NEW.time_us);"             \
    "END;"

/* The connection and file of an open SQLite store (store_sqlite.c). */
sqlite3 *store_sqlite_db(store *s);
const char *store_sqlite_path(store *s);

void store_sqlite_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
void store_sqlite_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
void store_sqlite_series(store *s, const store_series_query *q, store_read_cb cb, void *arg);
void store_sqlite_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg);

#endif

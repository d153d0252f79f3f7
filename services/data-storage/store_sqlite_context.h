/* store_sqlite_context.h -- what the registry filters (area=, floor=, device=, platform=)
 * read on SQLite since schema 10, instead of one index per filter (issue 15).
 *
 * Why: the four indexes events_area_time, _floor_time, _device_time, _platform_time
 * (migration 6) put every event with context into four B-trees, each at one place per
 * area / floor / device / platform: 9.3 us of storage's CPU per event and ~300 of the
 * ~1,300 pages written per 1,000 events (docs/BENCHMARKS.md). But an entity's context
 * changes rarely (a move, a relabel), so the same answer is had from a small table of
 * context spans -- per (entity, home, area, floor, device, platform) the first and last
 * time an event with that context was stored -- and the entity index every event is in
 * already (events_entity_series): area=kitchen becomes "these entities, between these
 * times" (store_sqlite_merge.h reads it). The spans only have to *cover* the events (a
 * span may hold events of another context: an entity that moved and moved back); the
 * reader checks each row's own column, so the answer is exactly the old index's.
 *
 * Writes: one upsert per distinct (entity, context) of a batch's stored events, which
 * changes a row only when the batch widens its span (live: last_us, once per entity per
 * batch, in a table of a few pages). Events without an entity_id but with a context
 * (device_, area_, floor_registry_updated) keep the four indexes, now partial on
 * entity_id IS NULL: a handful of rows, nearly free to write.
 *
 * Migration 10 (STORE_SQLITE_LEAN_MIGRATION) also drops events_time (its key is the
 * prefix of events_identity (time_us, event_id), which serves every read by time) and
 * narrows events_type_time to the event types other than state_changed (rare in HA:
 * event_type=state_changed reads events by time and keeps the rows of that type, most
 * of them; any other type reads the partial index).
 *
 * Ownership: none; functions work on the caller's statements and batch. */
#ifndef HOMEIQ_STORE_SQLITE_CONTEXT_H
#define HOMEIQ_STORE_SQLITE_CONTEXT_H

#include "store.h"
#include "store_sqlite_registry.h"

#include <sqlite3.h>

/* NULL context members are '' in event_contexts (a primary key has no NULLs); no
 * filter value is '' (store_filter_registry_id). IF [NOT] EXISTS: a store a test put
 * back to an older user_version runs it again over its own result. */
#define STORE_SQLITE_LEAN_MIGRATION                                                                            \
    "DROP INDEX IF EXISTS events_time;"                                                                                  \
    "DROP INDEX IF EXISTS events_area_time;"                                                                             \
    "DROP INDEX IF EXISTS events_floor_time;"                                                                            \
    "DROP INDEX IF EXISTS events_device_time;"                                                                           \
    "DROP INDEX IF EXISTS events_platform_time;"                                                                         \
    "DROP INDEX IF EXISTS events_type_time;"                                                                             \
    "CREATE INDEX events_area_time ON events(area_id, time_us) WHERE area_id IS NOT NULL AND entity_id IS NULL;" \
    "CREATE INDEX events_floor_time ON events(floor_id, time_us) WHERE floor_id IS NOT NULL"                   \
    "  AND entity_id IS NULL;"                                                                                 \
    "CREATE INDEX events_device_time ON events(device_id, time_us) WHERE device_id IS NOT NULL"                \
    "  AND entity_id IS NULL;"                                                                                 \
    "CREATE INDEX events_platform_time ON events(platform, time_us) WHERE platform IS NOT NULL"                \
    "  AND entity_id IS NULL;"                                                                                 \
    "CREATE INDEX events_type_time ON events(event_type, time_us) WHERE event_type != 'state_changed';"        \
    "CREATE TABLE IF NOT EXISTS event_contexts (entity_id TEXT NOT NULL, home_id TEXT NOT NULL, area_id TEXT NOT NULL,"      \
    "  floor_id TEXT NOT NULL, device_id TEXT NOT NULL, platform TEXT NOT NULL, first_us INTEGER NOT NULL,"    \
    "  last_us INTEGER NOT NULL, PRIMARY KEY (entity_id, home_id, area_id, floor_id, device_id, platform))"   \
    "  WITHOUT ROWID;"                                                                                         \
    "INSERT OR IGNORE INTO event_contexts SELECT entity_id, home_id, ifnull(area_id, ''), ifnull(floor_id, ''),"         \
    "  ifnull(device_id, ''), ifnull(platform, ''), min(time_us), max(time_us) FROM events"                   \
    "  WHERE entity_id IS NOT NULL AND (area_id IS NOT NULL OR floor_id IS NOT NULL OR device_id IS NOT NULL" \
    "  OR platform IS NOT NULL) GROUP BY 1, 2, 3, 4, 5, 6;"

/* The term a query by an event type other than state_changed carries, so SQLite may
 * use the partial events_type_time (it must be implied by the query's WHERE). */
#define STORE_SQLITE_TYPE_OTHER " AND event_type != 'state_changed'"

/* ?1 entity ?2 home ?3..?6 area, floor, device, platform ('' = none) ?7 first ?8 last */
#define STORE_SQLITE_CONTEXT_UPSERT                                                                           \
    "INSERT INTO event_contexts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                                     \
    " ON CONFLICT DO UPDATE SET first_us = min(first_us, excluded.first_us),"                                 \
    "  last_us = max(last_us, excluded.last_us)"                                                               \
    " WHERE excluded.first_us < first_us OR excluded.last_us > last_us"

/* The spans of the batch's STORED items with an entity and a context (r from
 * sqr_prepare), one upsert per distinct (entity, context). 0/-1. */
int sqc_update(const store_sqlite_registry *r, const store_batch *b, sqlite3_stmt *upsert);

/* Before migration 10: 0 when the disk has room for it, else -1 with the reason logged. */
int sqc_room(sqlite3 *db);

/* Retention: the spans that end before the oldest stored event cover nothing. */
#define STORE_SQLITE_CONTEXT_PURGE                                                                            \
    "DELETE FROM event_contexts WHERE last_us < (SELECT coalesce(min(time_us), 9223372036854775807) FROM events)"

#endif

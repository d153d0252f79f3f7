/* stats_sqlite.h -- long-term statistics in the SQLite store: the schema,
 * the incremental update inside each batch's transaction, and the reads.
 *
 * Why inside the batch's transaction: the statistics of an event are committed
 * with the event or not at all, so a crash (SIGKILL mid-batch) can neither
 * lose nor double-count one, and a duplicate (INSERT OR IGNORE skipped it)
 * never reaches the statistics. Why recompute from the raw rows: an event
 * that arrives late or out of order (backfill) changes the buckets around it;
 * recomputing those buckets from the stored events is idempotent by
 * construction. The math is in stats.c; the rules in docs/STATISTICS.md.
 *
 * Why per (entity, home) (issue 18, migration 9): two homes may have the
 * same entity id; their states must never be merged into one series, so the
 * metadata row, the rows and the events a recomputation reads are those of
 * one home (the batch's).
 *
 * Ownership: the stats_sqlite borrows the sqlite3 handle of store_sqlite.c,
 * which must outlive it. */
#ifndef HOMEIQ_STATS_SQLITE_H
#define HOMEIQ_STATS_SQLITE_H

#include "stats.h"
#include "store.h"

#include <jansson.h>
#include <sqlite3.h>

/* The schema migration (appended to store_sqlite.c's migration table). */
#define STATS_SQLITE_MIGRATION                                                                               \
    "CREATE TABLE stats_meta (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL UNIQUE,"                     \
    "  kind INTEGER NOT NULL);"                                                                            \
    "CREATE TABLE stats_5min (meta_id INTEGER NOT NULL, start_us INTEGER NOT NULL, mean REAL, min REAL,"   \
    "  max REAL, last REAL, state REAL, sum REAL, last_reset_us INTEGER, count INTEGER NOT NULL,"           \
    "  covered_us INTEGER NOT NULL, PRIMARY KEY (meta_id, start_us)) WITHOUT ROWID;"                      \
    "CREATE INDEX stats_5min_start ON stats_5min(start_us);"                                               \
    "CREATE TABLE stats_hour (meta_id INTEGER NOT NULL, start_us INTEGER NOT NULL, mean REAL, min REAL,"   \
    "  max REAL, last REAL, state REAL, sum REAL, last_reset_us INTEGER, count INTEGER NOT NULL,"           \
    "  covered_us INTEGER NOT NULL, PRIMARY KEY (meta_id, start_us)) WITHOUT ROWID;"                      \
    "CREATE TABLE stats_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"              \
    "INSERT INTO stats_marks VALUES ('events_purged_before_us', 0), ('stats_5min_purged_before_us', 0);"

/* Migration 9 (issue 18): stats_meta keyed by (entity_id, home_id). Before
 * it, an entity's statistics were computed from every home's events of that
 * entity id. Per entity with statistics, from the homes its stored events
 * belong to (the partial index events_home_time, forced: the planner would
 * rather read every event of each entity by events_entity_series, finds the
 * other homes' events; a single-home file reads no event):
 *  - only the default home's (or none left): its rows become the default home's;
 *  - only one other home's: its rows become that home's (ids kept, catch-up
 *    marks renamed to that home's);
 *  - several homes': the rows mixed them -- they are deleted with their
 *    catch-up marks, and the catch-up (stats_catchup.h) computes each home's
 *    statistics again from its stored events (rows older than the stored
 *    events of such an entity are lost: they were wrong).
 * Rows keep their meta_id, so stats_5min/stats_hour are not rewritten. */
#define STATS_SQLITE_HOME_MIGRATION                                                                              \
    "CREATE TEMP TABLE stats_homes AS SELECT DISTINCT entity_id, home_id FROM events INDEXED BY events_home_time" \
    "  WHERE home_id != '" EVENT_HOME_DEFAULT "' AND entity_id IN (SELECT entity_id FROM stats_meta);"          \
    "CREATE TEMP TABLE stats_home_of AS SELECT m.id AS id, m.entity_id AS entity_id, m.kind AS kind, CASE"      \
    "  WHEN NOT EXISTS (SELECT 1 FROM temp.stats_homes h WHERE h.entity_id = m.entity_id)"                      \
    "    THEN '" EVENT_HOME_DEFAULT "'"                                                                          \
    "  WHEN (SELECT count(*) FROM temp.stats_homes h WHERE h.entity_id = m.entity_id) = 1"                      \
    "    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.entity_id = m.entity_id"                                 \
    "      AND e.home_id = '" EVENT_HOME_DEFAULT "')"                                                            \
    "    THEN (SELECT h.home_id FROM temp.stats_homes h WHERE h.entity_id = m.entity_id) END AS home_id"         \
    "  FROM stats_meta m;"                                                                                       \
    "CREATE TABLE stats_meta_h (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL,"                               \
    "  home_id TEXT NOT NULL DEFAULT '" EVENT_HOME_DEFAULT "', kind INTEGER NOT NULL,"                          \
    "  UNIQUE (entity_id, home_id));"                                                                            \
    "INSERT INTO stats_meta_h(id, entity_id, home_id, kind)"                                                     \
    "  SELECT id, entity_id, home_id, kind FROM temp.stats_home_of WHERE home_id IS NOT NULL;"                   \
    "DELETE FROM stats_5min WHERE meta_id IN (SELECT id FROM temp.stats_home_of WHERE home_id IS NULL);"        \
    "DELETE FROM stats_hour WHERE meta_id IN (SELECT id FROM temp.stats_home_of WHERE home_id IS NULL);"        \
    "INSERT INTO stats_marks(name, value) SELECT 'catchup_' || w.what || '@' || o.home_id || ':' || o.entity_id," \
    "  k.value FROM temp.stats_home_of o, (SELECT 'at' AS what UNION ALL SELECT 'to') w"                         \
    "  JOIN stats_marks k ON k.name = 'catchup_' || w.what || ':' || o.entity_id"                                \
    "  WHERE o.home_id != '" EVENT_HOME_DEFAULT "';"                                                             \
    "DELETE FROM stats_marks WHERE name IN (SELECT 'catchup_' || w.what || ':' || o.entity_id"                   \
    "  FROM temp.stats_home_of o, (SELECT 'at' AS what UNION ALL SELECT 'to') w"                                 \
    "  WHERE o.home_id IS NULL OR o.home_id != '" EVENT_HOME_DEFAULT "');"                                       \
    "DROP TABLE temp.stats_home_of;"                                                                             \
    "DROP TABLE temp.stats_homes;"                                                                               \
    "DROP TABLE stats_meta;"                                                                                     \
    "ALTER TABLE stats_meta_h RENAME TO stats_meta;"

typedef struct stats_sqlite stats_sqlite;

int stats_sqlite_open(sqlite3 *db, stats_sqlite **out);
void stats_sqlite_close(stats_sqlite *s);

/* Updates the statistics of every entity with a STORED state_changed item in
 * b. Runs inside the batch's open transaction. 0, or -1 on an SQLite error
 * (the caller rolls the whole batch back). */
int stats_sqlite_batch(stats_sqlite *s, const store_batch *b);

/* The batch's transaction was rolled back: forget what the cache learned. */
void stats_sqlite_rollback(stats_sqlite *s);

/* Events older than this are stored but not counted: the rows they would
 * change were purged (docs/STATISTICS.md, "late events"). */
int64_t stats_sqlite_horizon(const stats_sqlite *s);
/* Sets a purge watermark ("events_purged_before_us" or
 * "stats_5min_purged_before_us"); inside the purge's transaction. 0/-1. */
int stats_sqlite_set_mark(stats_sqlite *s, const char *name, int64_t value);
/* Re-reads the watermarks (after a rolled-back purge). */
int stats_sqlite_load_marks(stats_sqlite *s);

/* Computes the statistics of entity's stored states of home (NULL: default) in [tmin, tmax] as if
 * they had just arrived late (stats_catchup.c: history stored before the
 * statistics existed): the periods they touch, the first one after them,
 * later sums moved. Inside the caller's transaction. 0, or -1. */
int stats_sqlite_catchup(stats_sqlite *s, const char *entity, const char *home, int64_t tmin, int64_t tmax);

/* Counters for /metrics. */
typedef struct stats_sqlite_counters {
    unsigned long long entities_updated, rows_written, late_skipped;
    unsigned long long batches, update_us;   /* time spent in stats_sqlite_batch */
    unsigned long long fast_updates;          /* entity updates served from the cache */
    unsigned long long fast_merged;           /* of those, groups with states before the cached latest one */
} stats_sqlite_counters;
void stats_sqlite_counters_get(const stats_sqlite *s, stats_sqlite_counters *c);
/* {"entities_updated","rows_written","late_skipped","batches","update_us"} */
json_t *stats_sqlite_info(const stats_sqlite *s);

/* Rows of one entity of one home (NULL: the default home) in [start_us, end_us) from the 5-minute (hourly = 0) or
 * hourly table (hourly = 1), oldest first; *prev gets the row just before
 * start_us (has_prev 0 if none) for "change". The entity's kind goes to
 * *kind (-1 when the entity has no statistics). 0/-1. */
typedef int (*stats_sqlite_row_fn)(const stats_row *r, void *arg);
int stats_sqlite_rows(stats_sqlite *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                      int64_t end_us, int *kind, stats_row *prev, int *has_prev, stats_sqlite_row_fn fn, void *arg);

#endif

/* store_sqlite_registry.h -- what the SQLite writer keeps of each event's registry
 * context (issue 11; the fields: docs/EVENTS.md section 3), in the batch's transaction:
 *  - four columns on each event row, area_id, floor_id, device_id, platform, for GET
 *    /api/v1/events ?area= &floor= &device= &platform= (since schema 10 found through
 *    the context spans, store_sqlite_context.h; indexed only on entity-less rows);
 *  - event_labels, one row per label of an event, for ?label= (an AFTER DELETE
 *    trigger keeps it in step with retention's purge);
 *  - the registry table: per entity the newest context seen, since when it has been
 *    that (a move starts a new "since"), for GET /api/v1/registry. One upsert per
 *    entity per batch, not per event.
 *
 * Why read from the record's text: the record is the contract (enrichment wrote the
 * fields); both batch builders (store_batch_prepare, store_text_prepare) give the
 * same text, so one scan serves both.
 *
 * Ownership: a store_sqlite_registry is per batch, made and freed by the writer;
 * the values point into the items' json or into owned decoded copies. It must not
 * outlive the batch (it borrows the items' record_fields). */
#ifndef HOMEIQ_STORE_SQLITE_REGISTRY_H
#define HOMEIQ_STORE_SQLITE_REGISTRY_H

#include "sbuf.h"
#include "store.h"

#include <sqlite3.h>

/* Schema: the registry columns, indexes, labels and registry tables. Independent of the
 * other migrations (new columns/tables only). Taken locally as version 6; the lead
 * numbers it at merge (keep it after the statistics migration). Records stored before
 * it have no context, so there is nothing to fill in. */
#define STORE_SQLITE_REGISTRY_MIGRATION                                                                       \
    "ALTER TABLE events ADD COLUMN area_id TEXT;"                                                              \
    "ALTER TABLE events ADD COLUMN floor_id TEXT;"                                                             \
    "ALTER TABLE events ADD COLUMN device_id TEXT;"                                                            \
    "ALTER TABLE events ADD COLUMN platform TEXT;"                                                             \
    "CREATE INDEX events_area_time ON events(area_id, time_us) WHERE area_id IS NOT NULL;"                    \
    "CREATE INDEX events_floor_time ON events(floor_id, time_us) WHERE floor_id IS NOT NULL;"                 \
    "CREATE INDEX events_device_time ON events(device_id, time_us) WHERE device_id IS NOT NULL;"              \
    "CREATE INDEX events_platform_time ON events(platform, time_us) WHERE platform IS NOT NULL;"              \
    "CREATE TABLE event_labels (label TEXT NOT NULL, time_us INTEGER NOT NULL, event_rowid INTEGER NOT NULL," \
    "  PRIMARY KEY (label, time_us, event_rowid)) WITHOUT ROWID;"                                              \
    "CREATE INDEX event_labels_event ON event_labels(event_rowid);"                                            \
    "CREATE TRIGGER events_labels_purge AFTER DELETE ON events BEGIN"                                          \
    "  DELETE FROM event_labels WHERE event_rowid = old.id; END;"                                              \
    "CREATE TABLE registry (entity_id TEXT PRIMARY KEY, time_us INTEGER NOT NULL, since_us INTEGER NOT NULL,"  \
    "  context TEXT NOT NULL);"

/* ?1 entity ?2 time ?3 context ?4 home (issue 18: one row per entity and home, store_sqlite_home.h)
 * ?5 the time of the last event of ?2's run in the batch (the following events of the entity
 * with the same context; ?2 when none): the newest context wins; a different one restarts
 * "since". An event older than the newest one (a retried batch, a held one released late)
 * changes nothing, except when it has the current context, is older than "since", and no
 * stored event of the entity lies between its run and "since": then the context began at it,
 * and "since" moves back to it. (Any stored event in between has another context: one with
 * this context would already have moved "since" back past it.) Such late events are rare;
 * the check is one range of events_entity_time. */
#define STORE_SQLITE_REGISTRY_UPSERT                                                                           \
    "INSERT INTO registry(entity_id, time_us, since_us, context, home_id) VALUES (?1, ?2, ?2, ?3, ?4)"        \
    " ON CONFLICT(entity_id, home_id) DO UPDATE SET"                                                           \
    "  since_us = CASE WHEN excluded.time_us < time_us THEN excluded.time_us"                                  \
    "                  WHEN context = excluded.context THEN since_us ELSE excluded.time_us END,"               \
    "  context = CASE WHEN excluded.time_us < time_us THEN context ELSE excluded.context END,"                 \
    "  time_us = max(time_us, excluded.time_us)"                                                               \
    " WHERE excluded.time_us >= time_us"                                                                       \
    "  OR (excluded.context = context AND excluded.time_us < since_us AND NOT EXISTS (SELECT 1 FROM events e"   \
    "      WHERE e.entity_id = excluded.entity_id AND e.time_us > ?5"                                                                       \
    "      AND e.time_us < registry.since_us AND e.home_id = excluded.home_id))"
#define STORE_SQLITE_LABEL_INSERT "INSERT OR IGNORE INTO event_labels(label, time_us, event_rowid) VALUES (?, ?, ?)"
/* The same for SQR_LABEL_ROWS rows at once: a statement per label row opened and closed
 * the table's two B-trees' cursors each time (~11k instructions per label, ~10 % of the
 * writer's; session 9), a statement per 16 rows does it once for them. */
#define SQR_LABEL_ROWS 16
#define SQR_V3 "(?,?,?)"
#define SQR_V3X4 SQR_V3 "," SQR_V3 "," SQR_V3 "," SQR_V3
#define STORE_SQLITE_LABEL_INSERT_MANY                                                                        \
    "INSERT OR IGNORE INTO event_labels(label, time_us, event_rowid) VALUES " SQR_V3X4 "," SQR_V3X4 ","      \
    SQR_V3X4 "," SQR_V3X4

#define SQR_COLUMNS 4 /* area_id, floor_id, device_id, platform */
#define SQR_MAX_LABELS 32

typedef struct sqr_text {
    const char *p; /* NULL = null */
    int n;
} sqr_text;

typedef struct sqr_fields {
    int has;                    /* the record carries a context */
    sqr_text col[SQR_COLUMNS];
    sqr_text label[SQR_MAX_LABELS];
    int nlabels;
    const char *json;           /* the record, and where its context members are: */
    const record_fields *rf;    /* {"area_id":…,…,"entity_category":…} is built from them when needed */
    char *owned[SQR_COLUMNS + SQR_MAX_LABELS]; /* decoded copies of escaped strings */
    int nowned;
    int64_t rowid;              /* the event's row once inserted (sqr_note_rowid), else 0 */
} sqr_fields;

typedef struct store_sqlite_registry {
    sqr_fields *f;              /* one per item */
    size_t n;
} store_sqlite_registry;

/* Each item's context, from its record_fields (record_fields.h). 0/-1. */
int sqr_prepare(store_sqlite_registry *m, store_batch *b);
/* Binds area_id, floor_id, device_id, platform of item i as parameters col..col+3. */
void sqr_bind(const store_sqlite_registry *m, size_t i, sqlite3_stmt *st, int col);
/* Item i was inserted as `rowid` (its label rows follow in sqr_insert_labels). */
void sqr_note_rowid(store_sqlite_registry *m, size_t i, int64_t rowid);
/* The label rows of every item inserted in this batch: SQR_LABEL_ROWS at a time with
 * `many` (STORE_SQLITE_LABEL_INSERT_MANY), the rest with `one`. 0/-1. */
int sqr_insert_labels(const store_sqlite_registry *m, const store_batch *b, sqlite3_stmt *one, sqlite3_stmt *many);
/* The registry table from the batch's STORED/DUPLICATE items: the newest per entity. 0/-1. */
int sqr_update_registry(const store_sqlite_registry *m, const store_batch *b, sqlite3_stmt *upsert);
void sqr_free(store_sqlite_registry *m);

/* GET /api/v1/registry: one JSON text per entity (and home), {"entity_id","since","last_seen",<context>};
 * home NULL = every home's rows (then by entity, home). 0/-1. */
int sqr_read(sqlite3 *db, const char *home, const char *entity_id, long limit, store_rows *rows);

#endif

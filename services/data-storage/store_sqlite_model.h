/* store_sqlite_model.h -- what the SQLite writer keeps for the dashboard's
 * reads, in the same transaction as the events (schema v3):
 *  - three columns on each event row, kind (1 = state_changed), state and
 *    value (the record's number when the state string holds a digit), which
 *    the index events_entity_series (entity_id, time_us, kind, value, state)
 *    covers, so a series is one index range and never parses a record;
 *  - the entities table, one row per entity, updated once per entity per
 *    batch (not per event).
 *
 * Why in C and not a trigger: a trigger doing the same (json_extract per
 * event, an upsert per event, a side table) cut committed SQLite throughput
 * from ~12k to ~4.7k events/s in bench/storage_insert.sh; the record's text
 * is already here, and the scan that finds state/value costs ~1 us.
 *
 * Ownership: a store_sqlite_model is per batch, created and freed by the
 * writer; state texts point into the items' json or into owned copies. */
#ifndef HOMEIQ_STORE_SQLITE_MODEL_H
#define HOMEIQ_STORE_SQLITE_MODEL_H

#include "store.h"

#include <sqlite3.h>

typedef struct sqm_fields {
    int kind;            /* 1 = state_changed, 0 = other */
    const char *state;   /* NULL = JSON null / absent */
    int state_len;
    char *state_owned;   /* decoded copy when the text had escapes */
    int has_value;
    double value;
} sqm_fields;

typedef struct store_sqlite_model {
    sqm_fields *f;       /* one per item */
    size_t n;
} store_sqlite_model;

/* Reads kind/state/value of every item of b, from its record_fields (noted
 * now when the batch did not come from store_text_prepare). 0/-1 (out of memory). */
int sqm_prepare(store_sqlite_model *m, store_batch *b);
/* Binds kind, state, value of item i as parameters col, col+1, col+2. */
void sqm_bind(const store_sqlite_model *m, size_t i, sqlite3_stmt *st, int col);
/* Upserts one entities row per entity of the batch's STORED items, with
 * `upsert` (STORE_SQLITE_ENTITY_UPSERT). 0, or -1 (SQLite error). */
int sqm_update_entities(const store_sqlite_model *m, const store_batch *b, sqlite3 *db, sqlite3_stmt *upsert);
void sqm_free(store_sqlite_model *m);

/* ?1 entity_id ?2 domain ?3 events ?4 newest time ?5 newest state ?6 its time
 * (NULL: no state_changed in the batch) ?7 when that state began ?8 1 when the
 * state began before this batch could tell (the batch's states are all equal)
 * ?9 numeric ?10 home (issue 18: one row per entity and home). Older states
 * than the stored one do not replace it. */
#define STORE_SQLITE_ENTITY_UPSERT                                                                                 \
    "INSERT INTO entities(entity_id, domain, event_count, last_time_us, last_state, state_time_us,"                \
    " last_changed_us, numeric, home_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10)"                             \
    " ON CONFLICT(entity_id, home_id) DO UPDATE SET"                                                                        \
    "  event_count = event_count + excluded.event_count,"                                                          \
    "  last_time_us = max(last_time_us, excluded.last_time_us),"                                                   \
    "  numeric = numeric OR excluded.numeric,"                                                                     \
    "  last_changed_us = CASE WHEN excluded.state_time_us IS NULL"                                                 \
    "      OR (state_time_us IS NOT NULL AND excluded.state_time_us < state_time_us) THEN last_changed_us"         \
    "    WHEN state_time_us IS NOT NULL AND ?8 AND last_state IS excluded.last_state THEN last_changed_us"         \
    "    ELSE excluded.last_changed_us END,"                                                                       \
    "  last_state = CASE WHEN excluded.state_time_us IS NULL"                                                      \
    "      OR (state_time_us IS NOT NULL AND excluded.state_time_us < state_time_us) THEN last_state"              \
    "    ELSE excluded.last_state END,"                                                                            \
    "  state_time_us = CASE WHEN excluded.state_time_us IS NULL"                                                   \
    "      OR (state_time_us IS NOT NULL AND excluded.state_time_us < state_time_us) THEN state_time_us"           \
    "    ELSE excluded.state_time_us END"

#endif

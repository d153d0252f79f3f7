/* clickhouse_registry.h -- issue 11's registry context on STORAGE_BACKEND=clickhouse
 * (schema version 3): the filters area= floor= device= label= platform= and
 * GET /api/v1/registry.
 *
 * Design: every event row carries its context in columns (area_id, floor_id,
 * device_id, platform: '' when none; labels Array(String); context_hash: a
 * 64-bit hash of the eleven members as one JSON object -- the text SQLite's
 * registry table keeps --, 0 when the record has none; the text itself is
 * rebuilt from the newest event's record at read time, so an event row costs 8
 * bytes for it, not ~350). The registry is *derived* from the events at read time,
 * never kept in a table of its own:
 *  - ClickHouse cannot update a row in place, and data-storage runs as several
 *    replicas behind a balancer on a cluster: a per-process "last context" map
 *    (InfluxDB's way) would miss a move seen by the other replica, and a table of
 *    change points would need the same map. The events are the one shared truth.
 *  - "since" is exact whatever order events arrived in (late, retried, from two
 *    replicas): the first event of the current context after the newest event of
 *    another context; "last_seen" the newest event with a context (as SQLite's).
 *  - Cost: nothing extra on the write path but the columns; a registry read
 *    scans the home's (or all) events' key and context_hash columns three
 *    times (joins of per-entity aggregates, one row per entity on the right
 *    side), then reads each entity's newest record by primary key. Fine for the dashboard's
 *    registry view; a store of billions would want a materialized view (not in
 *    18.16's reach with the same semantics).
 * Only 18.16-and-current SQL: ANY INNER JOIN ... USING, argMax, maxIf/minIf,
 * has() on Array(String).
 *
 * Ownership: pure text builders plus one read through store_clickhouse.c
 * (ch_store_select); rows handed to the callback are valid during the call. */
#ifndef HOMEIQ_CLICKHOUSE_REGISTRY_H
#define HOMEIQ_CLICKHOUSE_REGISTRY_H

#include "sbuf.h"
#include "store.h"

/* The events columns this module adds (schema v3), for CREATE TABLE, and one
 * ADD COLUMN clause per column for an older store's upgrade. */
#define CH_REGISTRY_COLUMNS                                                                                          \
    ", area_id String, floor_id String, device_id String, platform String, labels Array(String), context_hash UInt64"
#define CH_REGISTRY_NCOLUMNS 6
extern const char *const ch_registry_column_defs[CH_REGISTRY_NCOLUMNS];

/* The registry columns' names, in the order ch_registry_row writes them. */
#define CH_REGISTRY_COLUMN_NAMES "area_id, floor_id, device_id, platform, labels, context_hash"
/* Appends the item's registry columns to its RowBinary event row
 * (clickhouse_rowbinary.h), in CH_REGISTRY_COLUMN_NAMES' order. Read from the
 * record's text through record_fields (no second parse). 0/-1. */
int ch_registry_row(sbuf *row, store_item *it, sbuf *scratch);

/* Appends the filter's area/floor/device/platform/label conditions. */
void ch_registry_where(sbuf *q, const store_filter *f);

/* GET /api/v1/registry: {"entity_id","since","last_seen"[,"home_id"],<context>} per
 * entity (and home), by entity then home; home NULL = every home. */
void ch_registry_read(store *s, const char *home, const char *entity_id, long limit, store_rows_cb cb, void *arg);

#endif

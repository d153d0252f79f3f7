/* influx_query.h -- InfluxDB's side of store_read.h (the dashboard's reads:
 * feed, entities, series, stats) and the small feed index they need.
 *
 * Why a file of its own: store_influx.c owns the write transport (queue,
 * duplicate check, chunking, bisecting a 400); these are plain InfluxQL reads
 * plus the feed entry of each stored event (influx_feed.h: the points'
 * format). store_influx.c lends its /query transport (store_influx_sql) and
 * calls the hooks below on the write path; it learns nothing else about reads.
 *
 * The tail cursor (docs/INFLUX_READS.md): InfluxDB has no autoincrement, and
 * a point's time is the event's time_fired, which is not commit order
 * (backfill, late events). So every event written to HomeIQ's measurement
 * gets a *commit sequence*: microseconds from the wall clock at write time,
 * strictly increasing within the process (a batch reserves one per event,
 * from max(clock, last + 1)), kept in `homeiq_feed` with its event_id, point
 * time and tags: one batch point per run of consecutive sequences of a
 * request (influx_feed.h; stores written before session 8 hold one point per
 * event, and every reader reads both). The cursor is that sequence: below
 * 2^53, so a browser's JSON keeps it exact. The feed only answers up to the
 * *head*: the highest sequence below which every batch has finished (and the
 * last of them was acknowledged). Several batches are written at a time
 * (INFLUXDB_WRITES_INFLIGHT, default 2, at most INFLUX_WRITES_MAX: every one
 * of them is tracked open, store_influx.h) but they finish in the order they reserved their
 * sequences, so every point at or below the head is already visible and none
 * can appear there later: a reader resuming after any cursor sees no gap and
 * no repeat. On start the head is read back (the last point of homeiq_feed,
 * either form) before the first feed answer.
 *
 * Ownership: influx_reads belongs to the store (created in open, freed in
 * close after the HTTP client, so in-flight reads are answered first). */
#ifndef HOMEIQ_INFLUX_QUERY_H
#define HOMEIQ_INFLUX_QUERY_H

#include "httpc.h"
#include <jansson.h>
#include "influx_feed.h"
#include "sbuf.h"
#include "stats_influx.h"
#include "store.h"


typedef struct influx_reads influx_reads;

/* store_influx.c: POST /query?db=<db>&epoch=ns (chunked) with this InfluxQL.
 * 0, or -1 when the request cannot start (cb not called). */
int store_influx_sql(store *s, const char *sql, httpc_done_cb cb, void *arg);
/* store_influx.c: the store's influx_reads. */
influx_reads *store_influx_reads(store *s);

/* evb: the loop (the summary's write timer); ha_schema: INFLUXDB_SCHEMA=homeassistant (records of HA points are
 * read from their identity points, influx_ids.h; series read HA's own points); db: the database (or v2 bucket) whose shards /stats sizes; io:
 * the store's write transport (copied; its write() carries the entity summary,
 * influx_summary.h). 0/-1. */
int influx_reads_new(struct event_base *evb, int ha_schema, const char *db, const stats_influx_io *io,
                     influx_reads **out);
void influx_reads_free(influx_reads *r);

/* Write-path hooks (store_influx.c), called for the batches in the order
 * they are written, up to INFLUXDB_WRITES_INFLIGHT (default 2) at a time:
 *  - batch_open when a batch builds its first lines: reserves n sequences
 *    (one per event it may write; the unused rest is a gap) and returns the
 *    first. The batch is open until batch_done: the head stays below it.
 *  - feed_entry: the feed entry of an event written to HomeIQ's measurement
 *    (or, on the homeassistant schema, as HA's point with its identity point)
 *    at event_ns, with sequence seq, into the request's feed points fb.
 *  - batch_built when it has built its last line: next = the sequence after
 *    its last entry (base when none); what it did not use is given back.
 *  - dead_built for each dead-letter line built, of the batch opened at base,
 *    at time ns: one built after a later batch opened is counted only when
 *    the settle mark passes it (a restore counts dead letters by time).
 *  - batch_done once per batch, in the order they were opened (base: what
 *    batch_open returned, 0 when it never built a line), rc 0 when InfluxDB
 *    acknowledged it (moves the head, counts it), else -1 (what it wrote, if
 *    anything, is re-read from the feed). */
int64_t influx_reads_batch_open(influx_reads *r, size_t n);
void influx_reads_feed_entry(influx_reads *r, influx_feed_batch *fb, int64_t seq, const store_item *it,
                             const record_fields *f, uint64_t event_ns);
void influx_reads_batch_built(influx_reads *r, int64_t base, int64_t next);
void influx_reads_dead_built(influx_reads *r, int64_t base, int64_t ns);
void influx_reads_batch_done(influx_reads *r, const store_batch *b, int rc, int64_t base);

/* /health's "entity_restore": restores started, feed entries they read back, batches kept while one ran
 * and applied after it (influx_pending.h), restores that read the feed up to the head instead. New object. */
json_t *influx_reads_info(const influx_reads *r);

/* store_ops members (store_read.h). */
void store_influx_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
void store_influx_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
void store_influx_series(store *s, const store_series_query *q, store_read_cb cb, void *arg);
void store_influx_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg);
/* GET /api/v1/homes: each home's stored events, from memory (issue 18). */
void store_influx_homes(store *s, store_rows_cb cb, void *arg);

#endif

/* influx_query.h -- InfluxDB's side of store_read.h (the dashboard's reads:
 * feed, entities, series, stats) and the small feed index they need.
 *
 * Why a file of its own: store_influx.c owns the write transport (queue,
 * duplicate check, chunking, bisecting a 400); these are plain InfluxQL reads
 * plus one extra point per stored event. store_influx.c lends its /query
 * transport (store_influx_sql) and calls two hooks on the write path; it
 * learns nothing else about reads.
 *
 * The tail cursor (docs/INFLUX_READS.md): InfluxDB has no autoincrement, and
 * a point's time is the event's time_fired, which is not commit order
 * (backfill, late events). So every event written to HomeIQ's measurement
 * gets a second, small point in `homeiq_feed` whose time is its *commit
 * sequence*: microseconds from the wall clock at write time, strictly
 * increasing within the process (last + 1 when the clock stalls or steps
 * back; the point's time is seq * 1000 ns), tagged like the event and holding
 * its event_id and point time. The cursor is that sequence: below 2^53, so a
 * browser's JSON keeps it exact. The feed only answers up to the *head*: the highest
 * sequence of a batch InfluxDB has acknowledged. data-storage is the only
 * writer and writes one batch at a time, so every point at or below the head
 * is already visible and none can appear there later: a reader resuming
 * after any cursor sees no gap and no repeat. On start the head is read back
 * (last point of homeiq_feed) before the first feed answer.
 *
 * Ownership: influx_reads belongs to the store (created in open, freed in
 * close after the HTTP client, so in-flight reads are answered first). */
#ifndef HOMEIQ_INFLUX_QUERY_H
#define HOMEIQ_INFLUX_QUERY_H

#include "httpc.h"
#include "sbuf.h"
#include "stats_influx.h"
#include "store.h"

#define INFLUX_FEED_MEASUREMENT "homeiq_feed"

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

/* Write-path hooks (store_influx.c). feed_line appends the feed point of an
 * event written to HomeIQ's measurement (or, on the homeassistant schema, as
 * HA's point with its identity point) at event_ns; batch_done is called once
 * per batch when it ends, rc 0 when InfluxDB acknowledged it (moves the head,
 * counts it), else -1 (what it wrote, if anything, is re-read from the feed). */
void influx_reads_feed_line(influx_reads *r, sbuf *body, const store_item *it, const record_fields *f, uint64_t event_ns,
                            const char *home);
void influx_reads_batch_done(influx_reads *r, const store_batch *b, int rc);
/* The highest feed sequence given out so far (0: none): right after a batch's
 * lines are built, that batch's (stats_influx_batch's seq, the statistics' mark). */
int64_t influx_reads_feed_seq(const influx_reads *r);

/* store_ops members (store_read.h). */
void store_influx_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
void store_influx_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
void store_influx_series(store *s, const store_series_query *q, store_read_cb cb, void *arg);
void store_influx_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg);
/* GET /api/v1/homes: each home's stored events, from memory (issue 18). */
void store_influx_homes(store *s, store_rows_cb cb, void *arg);

#endif

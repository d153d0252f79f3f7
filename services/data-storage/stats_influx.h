/* stats_influx.h -- long-term statistics in InfluxDB: the measurement
 * homeiq_statistics, recomputed after each committed batch, and read back for
 * GET /api/v1/statistics.
 *
 * Why the statistics of a batch are written after its events are committed
 * and before the 200: the ack contract carries restart safety for free -- a
 * crash between the two leaves the batch unacknowledged, ingestion re-sends
 * it, and the re-sent events (duplicates now) mark the same entities dirty
 * again. Statistics are kept per entity and home (issue 18: rows and raw
 * states of another home carry its home_id tag; a batch is one home's), so
 * two homes' identical entity ids are two series. Live, in-order states are
 * computed from a running state per entity and home
 * kept in memory (its latest 5-minute period: the carry at its start and its
 * states), so the cost per event does not grow as a period fills; the running
 * state is seeded by the slow path, which recomputes the affected periods
 * from the stored rows and raw points (the same rules as stats_sqlite.c,
 * docs/STATISTICS.md) -- after a start, for late or out-of-order states and
 * for duplicates. Every row written is a function of the stored raw points
 * and of the row before it, so writing it twice is harmless, and a failed
 * batch forgets the running state of its entities: it can never disagree with
 * the database. Rows go to their own retention policies (retention_influx.h)
 * so 5-minute rows expire and hourly rows stay. One writer per database is
 * assumed (as one process per SQLite file).
 *
 * Off the ack path (INFLUXDB_STATISTICS_FLUSH_MS, InfluxDB 1.x): the rows of a
 * live batch are computed at once from the running state, which moves with
 * them, queued and coalesced (stats_influx_flush.h), and the batch is
 * acknowledged without waiting for them; a durable mark of how far rows are
 * written lets a start recompute the rows of acknowledged batches a flush
 * never wrote (stats_influx_recover.h). The slow path reads rows, so it first
 * waits for the queued ones, and writes its own before the ack, as before.
 * Statistics then lag the events by up to the flush interval.
 *
 * Ownership: the stats_influx borrows the I/O functions (and their ctx) of
 * store_influx.c, which outlive it. Batches are handed in one at a time
 * (store_influx's FIFO), so two recomputations never interleave. */
#ifndef HOMEIQ_STATS_INFLUX_H
#define HOMEIQ_STATS_INFLUX_H

#include "httpc.h"
#include "sbuf.h"
#include "stats.h"
#include "store.h"

#include <event2/event.h>
#include <jansson.h>

#define STATS_INFLUX_MEASUREMENT "homeiq_statistics"

/* What stats_influx needs from the backend: an InfluxQL /query against the
 * configured database, a line-protocol write into a retention policy (rp NULL:
 * the default one), and the measurement whose points hold the stored
 * state_changed records (field "record", tags entity_id, event_type and
 * home_id): HomeIQ's events on INFLUXDB_SCHEMA=homeiq, the identity points
 * (influx_ids.h) on homeassistant -- HA's own points hold no record, but every
 * one of them has its identity point, written in the same request. */
typedef struct stats_influx_io {
    void *ctx;
    int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg);
    int (*write)(void *ctx, const char *rp, const char *lines, size_t len, httpc_done_cb cb, void *arg);
    void (*lost)(void *ctx);    /* a retention policy is gone: prepare the database again */
    const char *events_measurement;
} stats_influx_io;

typedef struct stats_influx stats_influx;

/* rp5/rph: the retention policies of 5-minute and hourly rows (NULL: the
 * default one, e.g. InfluxDB 2.x buckets; then rows are written before the
 * ack: the mark needs a policy that never expires). evb: the flush's timer.
 * Reads STATISTICS, RETENTION_DAYS, STATISTICS_5MIN_RETENTION_DAYS and
 * INFLUXDB_STATISTICS_FLUSH_MS. 0, or -1 (bad config / out of memory). *out is
 * NULL when STATISTICS=0. */
int stats_influx_open(struct event_base *evb, const stats_influx_io *io, const char *rp5, const char *rph,
                      stats_influx **out);
void stats_influx_close(stats_influx *s);
/* A clean stop (the service's loop ended, the HTTP client not yet freed):
 * the queued rows written for at most INFLUXDB_STATISTICS_STOP_FLUSH_MS, so
 * the next start has less to recover; runs the loop until then. s may be NULL. */
void stats_influx_stop(stats_influx *s);

/* Recomputes the statistics of every entity with a STORED or DUPLICATE
 * state_changed item in b (all committed); seq: the batch's feed sequence
 * (influx_feed.h: the highest sequence of its feed entries), which the flush's mark
 * moves to once its rows are stored. done is called exactly once: rc 0 (the
 * rows are written, or queued for the flush), or -1 with err (the batch must
 * then not be acknowledged). */
typedef void (*stats_influx_done_fn)(int rc, const char *err, void *arg);
void stats_influx_batch(stats_influx *s, const store_batch *b, int64_t seq, stats_influx_done_fn done, void *arg);

/* The recovery's recomputation (stats_influx_recover.h): one home's entities
 * (home: the tag's value, "" = default) whose stored states in [tmin, tmax]
 * may lack their rows, recomputed by the slow path as late states would be
 * and written before done. */
typedef struct stats_influx_span {
    const char *entity;
    int64_t tmin_us, tmax_us;
} stats_influx_span;
void stats_influx_recompute(stats_influx *s, const char *home, const stats_influx_span *sp, size_t n,
                            stats_influx_done_fn done, void *arg);

/* done once the rows of every acknowledged batch are stored (recovered after a
 * start, nothing queued or in flight): before a reader of the rows such as a
 * catch-up step. rc -1 with err when a flush or the recovery failed. */
void stats_influx_settle(stats_influx *s, stats_influx_done_fn done, void *arg);
/* The flush (NULL: rows are written before the ack); off: no mark can be kept
 * (the recovery found the hourly policy refusing it), rows before the ack. */
struct stats_influx_flush *stats_influx_flush_of(const stats_influx *s);
void stats_influx_flush_off(stats_influx *s);

/* store_ops.stats_fetch_home for InfluxDB: one home's rows (NULL: the default home). */
void stats_influx_fetch(stats_influx *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                        int64_t end_us, store_stats_cb cb, void *arg);

/* {"entities_updated","fast_updates","rows_written","late_skipped","batches","update_us",...} */
json_t *stats_influx_info(const stats_influx *s);

/* For stats_influx_catchup.c (the same rows, the same policies): */
const stats_influx_io *stats_influx_io_of(const stats_influx *s);
const char *stats_influx_rp(const stats_influx *s, int hourly);   /* NULL: the default policy */
/* The first hour whose 5-minute rows may be written (older: hourly only). */
int64_t stats_influx_horizon5(const stats_influx *s, int64_t now_us);
/* InfluxQL: "rp"."measurement" (the bare measurement when rp is NULL), and
 * ' WHERE "entity_id" = <its tag form> AND "home_id" = <home>' (issue 18: home as the
 * tag's value, "" for the default home, whose points carry no home_id tag). */
void stats_influx_from(sbuf *q, const char *rp, const char *measurement);
void stats_influx_where_entity(sbuf *q, const char *entity, const char *home);
/* Appends (after a ';' when q is not empty) SELECT * FROM <rp>.homeiq_statistics
 * of the entity and period, time in [lo_us, hi_us) (INT64_MIN / INT64_MAX:
 * unbounded), ORDER BY time ASC or DESC, LIMIT limit (0: none). */
void stats_influx_select_rows(sbuf *q, const char *rp, const char *entity, const char *home, int hourly, int64_t lo_us,
                              int64_t hi_us, int desc, int limit);
/* One homeiq_statistics line (every field, flags saying which are real); home as above. */
void stats_influx_row_line(sbuf *b, const char *entity, const char *home, int hourly, stats_kind kind,
                           const stats_row *r);
/* A homeiq_statistics point of a /query answer back into a row; 0, or -1. */
int stats_influx_row_read(json_t *cols, json_t *vals, stats_row *r, int *kind);
/* The entity's rows were changed behind the running state: the next batch
 * of it takes the slow path. */
void stats_influx_forget(stats_influx *s, const char *entity, const char *home); /* home: "" = default */
/* The hash of an (entity, home) key, for the tables that index them (the running states, the recovery's). */
unsigned stats_influx_key_hash(const char *entity, const char *home);

#endif

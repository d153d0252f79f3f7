/* stats_influx_flush.h -- InfluxDB statistics rows written off the ack path:
 * the rows of acknowledged batches kept in memory, coalesced, and written at
 * most once per INFLUXDB_STATISTICS_FLUSH_MS per retention policy, with a
 * durable mark of how far they are written.
 *
 * Why: at a steady trickle each small batch cost influxd two statistics
 * writes before its ack (one per policy, ~0.5-1 ms of its CPU each whatever
 * their size; docs/STATISTICS.md "What the statistics cost influxd"). A live
 * entity rewrites the same 5-minute and hourly row with every batch, so the
 * rows of a second's batches coalesce to one line per (series, period) and
 * the ack waits for none of them.
 *
 * What keeps it restart-safe: every flush writes, in the hourly policy's
 * request and only after the 5-minute request succeeded, the point
 * homeiq_statistics_written (time 0, field seq): the feed's commit sequence
 * (influx_feed.h) of the last batch whose rows are all stored. After a start
 * the entities with feed entries after it are recomputed by the slow path
 * (stats_influx_recover.h) before any new row is written. A failed flush keeps
 * its rows (a newer row of the same series and period wins) and is retried;
 * a reader of the rows waits for the flush (stats_influx_flush_wait).
 * Bounded: a flush writes in chunks of chunk_bytes (influxd's max-body-size
 * refuses a larger body for good), the mark in the last hourly chunk; above
 * max_rows unwritten rows a live batch waits for the flush, and fails (503)
 * when it fails; a clean stop flushes for a bounded time.
 *
 * Ownership: borrows the io (store_influx.c's, outlives it) and the event
 * base; owns the pending rows, the rows in flight and its timer. Free only
 * after the HTTP client (a request in flight is answered first). */
#ifndef HOMEIQ_STATS_INFLUX_FLUSH_H
#define HOMEIQ_STATS_INFLUX_FLUSH_H

#include "sbuf.h"
#include "stats_influx.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

#define STATS_INFLUX_MARK_MEASUREMENT "homeiq_statistics_written"

typedef struct stats_influx_flush stats_influx_flush;

typedef struct stats_influx_flush_opts {
    long flush_ms;          /* the least time between two flushes */
    size_t chunk_bytes;     /* the most line protocol one request of a flush carries (at least one line) */
    size_t max_rows;        /* unwritten rows from which stats_influx_flush_full says so (0: no bound) */
} stats_influx_flush_opts;

/* rp5 / rph: the policies (the mark goes to rph, which never expires).
 * 0, or -1 (out of memory). */
int stats_influx_flush_new(struct event_base *evb, const stats_influx_io *io, const char *rp5, const char *rph,
                           const stats_influx_flush_opts *o, stats_influx_flush **out);
void stats_influx_flush_free(stats_influx_flush *f);

/* The rows of one acknowledged batch (line protocol, one row a line) whose
 * feed sequence is seq; a row replaces a pending one of the same series and
 * time. 0, or -1 (out of memory: nothing was taken). */
int stats_influx_flush_add(stats_influx_flush *f, const sbuf *lines5, const sbuf *linesh, int64_t seq);
/* The rows of every batch through seq are stored (written before its ack):
 * the mark moves to it with the next flush. */
void stats_influx_flush_written(stats_influx_flush *f, int64_t seq);
/* The mark read back at start (0: none). */
void stats_influx_flush_set_mark(stats_influx_flush *f, int64_t seq);
/* done(rc, err, arg) once no row is pending or in flight (at once when none
 * is): rc 0, or -1 with err when a flush failed (its rows stay pending). */
void stats_influx_flush_wait(stats_influx_flush *f, stats_influx_done_fn done, void *arg);
/* The mark line (time 0) into b. */
void stats_influx_flush_mark_line(sbuf *b, int64_t seq);

/* Callers waiting for the flush or the recovery (stats_influx_recover.c). */
typedef struct stats_influx_waiters {
    struct stats_influx_waiter {
        stats_influx_done_fn done;
        void *arg;
    } *w;
    size_t n, cap;
} stats_influx_waiters;
/* 0, or -1 (out of memory: done was called with -1). */
int stats_influx_waiters_add(stats_influx_waiters *ws, stats_influx_done_fn done, void *arg);
/* Calls every waiter once with rc (and err when rc != 0), emptying the list first. */
void stats_influx_waiters_wake(stats_influx_waiters *ws, int rc, const char *err);

/* {"interval_ms","pending_rows","flushes","flush_failures","rows_written","mark","last_error",...} */
json_t *stats_influx_flush_info(const stats_influx_flush *f);
/* Rows pending or in flight (0: everything acknowledged is stored). */
size_t stats_influx_flush_unwritten(const stats_influx_flush *f);
/* 1 when max_rows or more are unwritten (counted: /health flush.backpressure):
 * a live batch must then wait for the flush instead of queueing more. */
int stats_influx_flush_full(stats_influx_flush *f);
/* At a clean stop, after the service's loop ended and before the HTTP client
 * is freed: writes what is queued (with the mark), running the loop for at
 * most ms. 0 when everything is written, -1 when rows are left (the next
 * start's recovery recomputes them). */
int stats_influx_flush_stop(stats_influx_flush *f, long ms);

#endif

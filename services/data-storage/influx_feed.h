/* influx_feed.h -- the points of `homeiq_feed` (the InfluxDB tail's commit
 * order, docs/INFLUX_READS.md): writing them, and reading both forms back.
 *
 * Why a module of its own: the feed has two forms and every reader (the feed
 * page, the head read, the restore's catch-up, statistics' crash recovery)
 * must read both, the same way.
 *
 *  - The per-event form (written before session 8; stores keep it): one point
 *    per event at time seq * 1000 ns, tags domain, entity_id, event_type,
 *    area_id, home_id, fields event_id (string) and t (the event's point time,
 *    integer ns).
 *  - The batch form (written since): one point per run of up to
 *    INFLUX_FEED_MAX_ENTRIES consecutive sequences (at most INFLUX_FEED_POINT_BYTES
 *    of text, each entry measured: one entry longer than that is a point of its
 *    own; a batch of 1,000 events is a few points) at time seq0 * 1000 ns,
 *    tag home_id (a batch is one home's; none for the default home), fields
 *      n = the number of entries (integer), entry k has sequence seq0 + k;
 *      e = the entries, one per line ('\n'), six columns separated by '\t':
 *          event_id \t t \t entity_id \t domain \t event_type \t area_id
 *        (an empty column = none). The text columns hold the *tag form* of the
 *        value (lineproto.h: '\' -> '/', CR/LF/TAB -> ' '), exactly what the
 *        per-event form's tags held, so a filter compares the tag form of its
 *        value with either form, and no column can hold a separator.
 *    So a sequence stays one per event, below 2^53, with the same meaning for
 *    clients; influxd indexes and stores one point per ~400 events instead of
 *    one per event (issue 15: ~1,000 fewer points per 1,000 events).
 *
 * Reading a range (after, upto]: a batch point at time <= after can hold
 * entries above `after`, but only if it starts within INFLUX_FEED_MAX_ENTRIES
 * of it. So a reader asks two statements: the last batch point in
 * (after - INFLUX_FEED_MAX_ENTRIES, after] (influx_feed_sql_before: selecting
 * only n and e, per-event points have neither, and InfluxDB returns no row
 * for them) and the points in (after, upto] (influx_feed_sql_after), and
 * passes every row to influx_feed_row with `after`, which skips entries at
 * or below it. A point never straddles the head: every batch point's entries
 * belong to one batch, and the head only moves past whole batches.
 *
 * For example "which entities have feed entries after sequence X, up to the
 * head H": send influx_feed_sql_before(sql, NULL, X) + ";" +
 * influx_feed_sql_after(sql, NULL, NULL, X, H, 1, points), walk the answer
 * (influx_answer_walk) and pass each row to influx_feed_row(row, X, 0, fn,
 * arg, &last); fn sees e->entity_id (and e->home) of every entry above X. When
 * the range statement returned `points` rows there may be more: ask again
 * from the last row's time / 1000 (the range statement alone).
 *
 * Ownership: the writer owns its text; entries handed to a callback point
 * into memory owned by the parser, valid only during the call. */
#ifndef HOMEIQ_INFLUX_FEED_H
#define HOMEIQ_INFLUX_FEED_H

#include "influx_answer.h"
#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

#define INFLUX_FEED_MEASUREMENT "homeiq_feed"
/* A batch point's entries text stays below this (InfluxDB 1.x documents 64 KB as a string field's limit). */
#define INFLUX_FEED_POINT_BYTES 60000
/* The most entries one batch point holds: how far back a reader looks for a point reaching past its cursor. */
#define INFLUX_FEED_MAX_ENTRIES 1000
/* The columns a reader selects (both forms: the per-event point's fields and tags, the batch point's fields). */
#define INFLUX_FEED_COLUMNS "event_id, t, n, e, entity_id, domain, event_type, area_id, home_id"

/* One feed entry (one stored event). Text members are NUL-terminated tag
 * forms, NULL when none; home NULL = the default home. */
typedef struct influx_feed_entry {
    int64_t seq;            /* the commit sequence (us; the tail's cursor) */
    int64_t t_ns;           /* the event's point time in its measurement */
    const char *event_id;   /* EVENT_ID_LEN - 1 hex digits */
    const char *entity_id, *domain, *event_type, *area, *home;
} influx_feed_entry;

/* ---- writing: the batch points of one request's events ---- */

typedef struct influx_feed_span {
    size_t off, len;        /* the entries' text in influx_feed_batch.text */
    int64_t seq0;
    size_t n;
} influx_feed_span;

typedef struct influx_feed_batch {
    sbuf text;
    influx_feed_span *pts;
    size_t npts, cap;
    int failed;             /* out of memory */
} influx_feed_batch;

void influx_feed_batch_init(influx_feed_batch *fb);
void influx_feed_batch_free(influx_feed_batch *fb);
/* Empties it (keeps its memory). */
void influx_feed_batch_reset(influx_feed_batch *fb);
/* Adds an entry (e->home is ignored: the home is the point's tag). A new point
 * starts when e->seq does not follow the last entry's or the point is full.
 * The text members are written in their tag form. 0, -1 out of memory. */
int influx_feed_batch_add(influx_feed_batch *fb, const influx_feed_entry *e);
/* Appends point i's line (with '\n') to body; home: the home_id tag's value (NULL/"": none). */
void influx_feed_batch_line(const influx_feed_batch *fb, size_t i, const char *home, sbuf *body);

/* ---- reading ---- */

/* Called per entry; non-0 stops (returned by influx_feed_row). */
typedef int (*influx_feed_entry_fn)(const influx_feed_entry *e, void *arg);

/* The entries of one /query row of homeiq_feed (columns INFLUX_FEED_COLUMNS or
 * a subset; tags from the row's columns or its series' tags), either form,
 * in sequence order (reverse: newest first), those with seq <= after skipped.
 * *last_seq (may be NULL) gets the row's highest sequence (0 when it is no
 * feed row). 0, fn's non-0, or -1 out of memory. */
int influx_feed_row(const influx_answer_row *row, int64_t after, int reverse, influx_feed_entry_fn fn, void *arg,
                    int64_t *last_seq);

/* The highest sequence a row of `SELECT last(event_id) ...` (per-event form)
 * or `SELECT last(n) ...` (batch form) of homeiq_feed stands for; 0 when none. */
int64_t influx_feed_head_row(const influx_answer_row *row);
/* Both statements (the head of either form), ";"-joined, appended to sql:
 * `SELECT last(event_id) FROM homeiq_feed [WHERE time < below*1000];SELECT last(n) ...`.
 * below: this process's first sequence (0: none yet): its own points are not an
 * earlier run's head (a batch of it may be in InfluxDB, not finished). */
void influx_feed_sql_head(sbuf *sql, int64_t below);

/* `SELECT n, e FROM homeiq_feed WHERE [home] time > (after-MAX)*1000 AND time <= after*1000 ORDER BY time DESC LIMIT 1`:
 * the batch point that may reach past `after` (none when after <= 0). home: the
 * home_id value to select (NULL every home, "" the default home). */
void influx_feed_sql_before(sbuf *sql, const char *home, int64_t after);
/* A page's filters as tag forms (NULL: none). A per-event point holds them as
 * tags, so InfluxDB selects those points itself: `("entity_id" = '<form>' OR
 * "n" > 0)`; every batch point (n > 0) still comes, its entries filtered by the
 * reader (review-feed 7: a sparse filter over an upgraded store). */
typedef struct influx_feed_filter {
    const char *entity_id, *domain, *event_type, *area_id;
} influx_feed_filter;
/* `SELECT INFLUX_FEED_COLUMNS FROM homeiq_feed WHERE [home] [filters] time > after*1000 AND time <= upto*1000
 * ORDER BY time ASC|DESC LIMIT points`; f may be NULL. */
void influx_feed_sql_after(sbuf *sql, const char *home, const influx_feed_filter *f, int64_t after, int64_t upto,
                           int asc, long points);

#endif

/* influx_query.c -- see influx_query.h (the feed design) and
 * docs/INFLUX_READS.md.
 *
 * Why these queries (InfluxQL, influxd 1.6):
 *  - feed: ranges of homeiq_feed by time (its only index), bounded by the
 *    head, a few points per request (a batch point holds a request's entries,
 *    influx_feed.h), the filters applied to the entries, at most
 *    IQ_FEED_SCAN_ENTRIES looked at per request so a sparse filter still
 *    answers and moves its cursor on; then the page's records are read from HomeIQ's measurement by
 *    time: the page's event times are grouped into ranges (times within a
 *    second share one, influx_dup_ranges), one SELECT per range, joined to
 *    the page by event_id. A live tail is one or two SELECTs per page.
 *  - entities and totals: kept in memory by the write path (each
 *    acknowledged batch is applied) and written back as a snapshot, one point
 *    per entity (influx_summary.h). The first read after a start restores
 *    them: the last snapshot (O(entities)), then the feed after it
 *    (O(events since that snapshot)) up to where the batches were when it
 *    started; batches finishing meanwhile are kept and applied after it
 *    (influx_pending.h), not read back. A store without a snapshot (written
 *    before it existed) is scanned once: count / last() GROUP BY entity_id,
 *    then the time of each entity's last change.
 *  - series: min/mean/max/count GROUP BY time(width, offset) so the buckets
 *    start at `start` as on SQLite; a timeline is the state before the
 *    range plus the range's points, equal neighbours merged here.
 *  - stats: count GROUP BY time(1s) / domain over the window, the shards'
 *    size; totals, entities and the head come from memory.
 * The numeric reading of a state is `value` when the state string holds a
 * digit, as on SQLite (store_sqlite_read.h), so on/off stay a timeline.
 * Every read is a chain of /query requests on the loop (iq_req). */
#include "influx_query.h"
#include "store_influx.h"
#include "influx_answer.h"
#include "influx_ids.h"
#include "influx_points.h"
#include "influx_summary.h"
#include "influx_pending.h"
#include "influx_time.h"
#include "json_text.h"
#include "lineproto.h"
#include "log.h"
#include "service.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IQ_EVENTS "home_assistant_events"
#define IQ_DEAD "homeiq_dead_letters"
#define IQ_STMTS_PER_REQUEST 200
/* Where every stored HomeIQ record is: on the homeassistant schema a
 * state_changed event's record is in its identity point (influx_ids.h). */
#define IQ_RECORDS_FROM(r) ((r)->ha_schema ? INFLUX_IDS_FROM_HA : INFLUX_IDS_FROM_HOMEIQ)

/* batches open at a time: every one store_influx.c may write at once (INFLUXDB_WRITES_INFLIGHT's ceiling) */
#define IQ_OPEN_MAX INFLUX_WRITES_MAX
#define IQ_FEED_FIRST_POINTS 4        /* a feed scan's first request: about 1,600 entries of batch points */
/* points per request of a feed scan: a batch point is up to INFLUX_FEED_POINT_BYTES, so an answer stays under
 * ~3.8 MB whatever the points seen so far suggest (review-feed 3: trickle points, then bursts, asked 997) */
#define IQ_FEED_MAX_POINTS 64
#define IQ_FEED_SCAN_ENTRIES 20000    /* entries one feed request looks at beyond its page (a sparse filter's bound) */
#define IQ_CATCHUP_PAGE 5000          /* feed rows re-applied per request when restoring */
#define IQ_SNAPSHOT_REBASE_S 3600     /* a new snapshot time every hour: a retention policy never drops it */
#define IQ_SNAPSHOT_EVERY_US 1000000  /* at most one snapshot write a second (the rest is re-applied from the feed) */

struct influx_reads {
    int ha_schema;
    char *db;
    stats_influx_io io;  /* the store's write transport (the snapshot) */
    int64_t feed_last;   /* last feed sequence given out (us; the point's time is seq * 1000 ns) */
    int64_t first_seq;   /* the first one this process gave out (0: none yet) */
    int pre_events;      /* events stored before this process's first write: -1 unknown, 0 none, 1 some */
    int64_t head;        /* highest sequence of an acknowledged batch (us) */
    int head_known;      /* head read back from InfluxDB since start */
    int64_t settled;     /* every seq <= it belongs to a finished batch */
    int64_t settle_ns;   /* every dead letter built before it belongs to a finished batch */
    struct { int64_t base, start_ns, prev_last, late_n, late_ns; } open[IQ_OPEN_MAX]; /* batches open (batch_open ..
                         * batch_done), oldest first; late_*: its dead letters built after a later batch opened */
    int nopen;
    int64_t dead_last;   /* the newest dead letter's time (influx_reads_dead_built) */
    struct { int64_t n, ns; char *home; } late; /* a finished batch's late dead letters, above settle_ns: counted
                         * when settle_ns passes them (review-feed 1) */
    influx_entities cache; /* every entity, once restored (cache_state 2), then kept by the write path */
    influx_homes homes;  /* each home's totals, kept with the cache (issue 18) */
    influx_totals tot;   /* tot.seq: the cache and totals are exact through this feed sequence */
    int cache_state;     /* 0 not restored, 1 first restore running, 2 restored (answers from memory) */
    int stale;           /* a batch failed: what it wrote may be missing here; restore again (memory still answers) */
    int restoring;       /* one restore at a time */
    int snap_inflight, snap_full;
    int64_t snap_last_us, snap_seq, snap_dead; /* when, and what, the last snapshot wrote */
    struct event *snap_timer;  /* a write held back by the throttle goes out when it fires */
    struct iq_req *waiting; /* reads waiting for the first restore (linked by next_wait) */
    influx_window win;   /* events per second of event time, kept with the cache (stats' window) */
    int64_t store_bytes, store_bytes_us; /* SHOW STATS' answer, and when (asked again after IQ_DISK_EVERY_US) */
    struct iq_req *restore_q; /* the restore running, else NULL: keeps the batches finishing meanwhile */
    unsigned long long restores, restore_rows, restore_kept, restore_chased; /* /health (influx_reads_info) */
};

#define IQ_DISK_EVERY_US 10000000

/* ---- the write hooks ---------------------------------------------------- */

static void iq_snapshot_timer(evutil_socket_t fd, short what, void *arg);

int influx_reads_new(struct event_base *evb, int ha_schema, const char *db, const stats_influx_io *io,
                     influx_reads **out) {
    influx_reads *r = calloc(1, sizeof *r);
    if (!r || !(r->db = strdup(db ? db : "")) || !(r->snap_timer = evtimer_new(evb, iq_snapshot_timer, r))) {
        if (r) free(r->db);
        free(r);
        return -1;
    }
    r->ha_schema = ha_schema;
    r->pre_events = -1;
    if (io) r->io = *io;
    r->settle_ns = service_now_us() * 1000; /* nothing of this process was built before */
    *out = r;
    return 0;
}

void influx_reads_free(influx_reads *r) {
    if (!r) return;
    event_free(r->snap_timer);
    influx_entities_clear(&r->cache);
    influx_homes_clear(&r->homes);
    influx_window_free(&r->win);
    free(r->late.home);
    free(r->db);
    free(r);
}

/* Answer of the probe sent before this process's first write. */
static void iq_probe_done(const httpc_response *res, void *arg) {
    influx_reads *r = arg;
    if (res->status != 200) return; /* unknown: a restore without a snapshot then scans once */
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    json_t *r0 = json_array_get(json_object_get(j, "results"), 0);
    const char *e = json_string_value(json_object_get(r0, "error"));
    if (j && (!e || strstr(e, "database not found")))
        r->pre_events = json_array_size(json_object_get(r0, "series")) > 0;
    json_decref(j);
}

int64_t influx_reads_batch_open(influx_reads *r, size_t n) {
    if (!r->first_seq && r->io.query) { /* sent before the first write request of this process */
        char sql[96];
        snprintf(sql, sizeof sql, "SHOW SERIES FROM \"%s\" LIMIT 1", IQ_EVENTS);
        (void)r->io.query(r->io.ctx, sql, iq_probe_done, r);
    }
    int64_t now = service_now_us(), base = now; /* microseconds: < 2^53, exact in JavaScript */
    if (base <= r->feed_last) base = r->feed_last + 1;
    int64_t prev_last = r->feed_last;
    r->feed_last = base + (int64_t)(n ? n : 1) - 1;
    if (!r->first_seq) r->first_seq = base;
    /* more cannot be open (INFLUXDB_WRITES_INFLIGHT <= IQ_OPEN_MAX started at a time): else it would not be held */
    if (r->nopen < IQ_OPEN_MAX) {
        /* above every dead letter built so far: those all belong to batches opened before it */
        int64_t start_ns = now * 1000 > r->dead_last ? now * 1000 : r->dead_last + 1;
        memset(&r->open[r->nopen], 0, sizeof r->open[0]);
        r->open[r->nopen].base = base;
        r->open[r->nopen].prev_last = prev_last;
        r->open[r->nopen++].start_ns = start_ns;
    }
    return base;
}

void influx_reads_dead_built(influx_reads *r, int64_t base, int64_t ns) {
    if (ns > r->dead_last) r->dead_last = ns;
    for (int k = 0; k + 1 < r->nopen; k++) /* a later batch is open: above its start_ns, so above the settle mark */
        if (r->open[k].base == base) {
            r->open[k].late_n++;
            if (ns > r->open[k].late_ns) r->open[k].late_ns = ns;
        }
}

void influx_reads_batch_built(influx_reads *r, int64_t base, int64_t next) {
    /* the last batch opened gives back what it did not use, so the head is its last event's sequence */
    if (!r->nopen || r->open[r->nopen - 1].base != base || next - 1 > r->feed_last) return;
    r->feed_last = next > base ? next - 1 : r->open[r->nopen - 1].prev_last;
}

void influx_reads_feed_entry(influx_reads *r, influx_feed_batch *fb, int64_t seq, const store_item *it,
                             const record_fields *f, uint64_t event_ns) {
    (void)r;
    size_t an;
    const char *area = record_fields_at(f, it->json, RF_AREA_ID, &an);
    sbuf scratch;
    sbuf_init(&scratch);
    influx_feed_entry e = {.seq = seq, .t_ns = (int64_t)event_ns, .event_id = it->event_id,
                           .entity_id = it->entity_id, .domain = it->domain, .event_type = it->event_type,
                           .area = influx_points_text_string(&scratch, area, an)}; /* the tail's area= */
    if (sbuf_failed(&scratch) || influx_feed_batch_add(fb, &e) != 0) fb->failed = 1;
    sbuf_free(&scratch);
}

/* ---- the snapshot: written back so a restart reads O(entities) ------------ */

static void iq_snapshot(influx_reads *r, int force);

static void iq_snapshot_done(const httpc_response *res, void *arg) {
    influx_reads *r = arg;
    r->snap_inflight = 0;
    if (res->status != 204 && res->status != 200) {
        r->snap_full = 1; /* which entities landed is unknown: all of them next time */
        log_warn("influxdb: writing the entity summary failed (HTTP %ld); it is written again with the next batch",
                 res->status);
    } else if (r->tot.seq != r->snap_seq || r->tot.dead != r->snap_dead) {
        iq_snapshot(r, 0); /* batches arrived while it was in flight (throttled: the timer sends it) */
    }
}

/* Writes the dirty entities and the totals (all of them on a new snapshot
 * time, or after a failure), at most once a second unless forced. */
static void iq_snapshot(influx_reads *r, int force) {
    if (r->cache_state != 2 || r->stale || r->restoring || r->snap_inflight || !r->io.write) return;
    int64_t now = service_now_us();
    int rebase = r->tot.snap_ns == 0 || now / 1000000 - r->tot.snap_ns / 1000000000 >= IQ_SNAPSHOT_REBASE_S;
    if (!rebase && !r->snap_full && !force && now - r->snap_last_us < IQ_SNAPSHOT_EVERY_US) {
        if (!evtimer_pending(r->snap_timer, NULL)) {
            int64_t wait = IQ_SNAPSHOT_EVERY_US - (now - r->snap_last_us);
            struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
            evtimer_add(r->snap_timer, &tv);
        }
        return;
    }
    if (rebase) r->tot.snap_ns = now / 1000000 * 1000000000;
    sbuf b;
    sbuf_init(&b);
    influx_summary_lines(&b, &r->cache, &r->homes, rebase || r->snap_full, &r->tot);
    r->snap_full = 0;
    r->snap_last_us = now;
    r->snap_inflight = 1;
    r->snap_seq = r->tot.seq;
    r->snap_dead = r->tot.dead;
    if (sbuf_failed(&b) || r->io.write(r->io.ctx, NULL, b.data, b.len, iq_snapshot_done, r) != 0) {
        r->snap_inflight = 0;
        r->snap_full = 1;
    }
    sbuf_free(&b);
}

static void iq_snapshot_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    iq_snapshot(arg, 0);
}

static int iq_restore_start(influx_reads *r);

/* The batch opened at base is done (batches finish in the order they opened):
 * everything below the oldest batch still open is finished. */
static void iq_batch_close(influx_reads *r, int64_t base, int64_t *late_n, int64_t *late_ns) {
    int k = 0;
    while (k < r->nopen && r->open[k].base != base) k++;
    *late_n = *late_ns = 0;
    if (base && k < r->nopen) {
        *late_n = r->open[k].late_n;
        *late_ns = r->open[k].late_ns;
        memmove(&r->open[k], &r->open[k + 1], (size_t)(r->nopen - k - 1) * sizeof r->open[0]);
        r->nopen--;
    }
    r->settled = r->nopen ? r->open[0].base - 1 : r->feed_last;
    r->settle_ns = r->nopen ? r->open[0].start_ns - 1 : service_now_us() * 1000;
}

/* Late dead letters held: 0, or -1 when one batch's are held already (then restore). */
static int iq_late_hold(influx_reads *r, const store_batch *b, int64_t n, int64_t ns) {
    /* With two writes in flight settle_ns passes a batch's late ones when the next finishes, so this is not
     * reached. With three or more (INFLUXDB_WRITES_INFLIGHT) an earlier batch's late ones can still be above
     * settle_ns when a later one finishes with late ones of its own: then a restore recounts them. The totals
     * stay exact (the restore counts dead letters by time); it costs a restore, not a wrong count. */
    if (r->late.n) return -1;
    if (!(r->late.home = strdup(influx_points_home_value(b->home_id)))) return -1;
    r->late.n = n;
    r->late.ns = ns;
    return 0;
}

/* Held late dead letters the settle mark has passed: counted now. -1 out of memory. */
static int iq_late_count(influx_reads *r) {
    if (!r->late.n || r->late.ns > r->tot.dead_ns) return 0;
    int rc = influx_homes_add(&r->homes, r->late.home, 0, (long long)r->late.n, 0);
    r->tot.dead += r->late.n;
    free(r->late.home);
    r->late.home = NULL;
    r->late.n = 0;
    return rc;
}

/* The restore counted dead letters by time up to tot.dead_ns: held ones below it are in its count. */
static void iq_late_drop_counted(influx_reads *r) {
    if (!r->late.n || r->late.ns > r->tot.dead_ns) return;
    free(r->late.home);
    r->late.home = NULL;
    r->late.n = 0;
}

static void iq_restore_keep(influx_reads *r, const store_batch *b, int rc, int64_t prev, int64_t late_n, int held,
                            char *carry_home, long long carry_n);
static char *iq_restore_late_take(influx_reads *r, long long *n);

void influx_reads_batch_done(influx_reads *r, const store_batch *b, int rc, int64_t base) {
    int64_t prev = r->settled, late_n, late_ns;
    int held = 1;
    long long carry_n = 0;
    iq_batch_close(r, base, &late_n, &late_ns);
    if (rc == 0 && r->settled > r->head) r->head = r->settled; /* acknowledged: visible to the feed */
    char *carry_home = iq_restore_late_take(r, &carry_n); /* a restore runs: go with this batch, freeing the hold */
    /* its dead letters built after the next batch opened are above settle_ns: a restore would count them
     * again if they were in tot.dead now (review-feed 1); held until settle_ns passes them */
    if (rc == 0 && late_n && iq_late_hold(r, b, late_n, late_ns) != 0) {
        late_n = 0;
        held = 0;
        if (r->cache_state == 2) r->stale = 1;
    }
    if (r->restoring || r->cache_state == 1) { /* the restore applies it after what it reads (influx_pending.h) */
        iq_restore_keep(r, b, rc, prev, late_n, held, carry_home, carry_n);
        return;
    }
    if (r->cache_state == 2 && !r->stale && rc == 0 && r->tot.seq == prev) {
        for (size_t i = 0; i < b->nitems; i++) {
            const store_item *it = &b->items[i];
            if (it->status != STORE_ITEM_STORED ||
                (influx_entities_apply(&r->cache, it, b->home_id, 0) >= 0 && influx_window_add(&r->win, it->time_us, it->domain) == 0))
                continue;
            r->stale = 1; /* out of memory: restore */
            return;
        }
        int64_t dead = (int64_t)b->ndead - late_n;
        if ((b->stored || dead) && influx_homes_add(&r->homes, influx_points_home_value(b->home_id),
                                                    (long long)b->stored, (long long)dead, 0) != 0) {
            r->stale = 1; /* a batch is one home's (issue 18) */
            return;
        }
        r->tot.events += (int64_t)b->stored;
        r->tot.dead += dead;
        r->tot.seq = r->settled;
        r->tot.dead_ns = r->settle_ns;
        if (iq_late_count(r) != 0) r->stale = 1;
        iq_snapshot(r, 0);
        return;
    }
    /* failed: some of it may be stored and not counted; restore from the snapshot
     * and the feed after it once InfluxDB answers again (memory answers meanwhile) */
    if (r->cache_state == 2) r->stale = 1;
    if (rc == 0) (void)iq_restore_start(r); /* the first batch since start, or the first success after a failure */
}

json_t *influx_reads_info(const influx_reads *r) {
    return json_pack("{s:I,s:I,s:I,s:I}", "restores", (json_int_t)r->restores, "feed_entries_read",
                     (json_int_t)r->restore_rows, "batches_kept", (json_int_t)r->restore_kept, "read_to_head",
                     (json_int_t)r->restore_chased);
}

/* ---- a read: a chain of /query requests -------------------------------- */

typedef struct iq_req iq_req;
typedef int (*iq_row_fn)(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals);
typedef void (*iq_step_fn)(iq_req *q);

typedef struct iq_feed_row {
    int64_t seq, t_ns, stored_at_us;
    char event_id[EVENT_ID_LEN];
    char *record;
} iq_feed_row;

typedef struct iq_ha_bucket {
    double min, max, sum;
    long long n;
} iq_ha_bucket;

typedef struct iq_ha_state {
    int64_t t_us;
    int before;     /* the state before the range (last()) */
    char *state;
} iq_ha_state;

typedef struct iq_segment {
    int open;
    int64_t start_us;
    char *state;
} iq_segment;

struct iq_req {
    influx_reads *r;
    store_read_cb cb;
    void *arg;
    store_rows rows;
    sbuf meta;
    iq_row_fn row;
    iq_step_fn next;
    int tolerate_stmt;          /* a statement whose error is not fatal (-1: none) */
    int failed;
    char err[256];
    /* filters (copied) */
    char *entity_id, *domain, *event_type, *search, *area;
    char *home;                 /* home= as the tag's value ("" = the default home), NULL = every home */
    long limit;
    /* feed */
    int64_t after, head;
    int has_after;
    char *f_entity, *f_domain, *f_type, *f_area; /* the filters' tag forms, compared with the feed's entries */
    size_t scanned, scan_points; /* entries above the cursor and points looked at so far */
    long scan_rows, scan_ask;    /* points the last request returned / asked for */
    int scan_stmt;               /* statement id of the range statement (1 when the batch point before it was asked) */
    int scan_more;               /* the page stops before the head */
    int64_t scan_edge;           /* ASC: the last point's time read (us); DESC: the first; 0 before the first */
    int64_t scan_last;           /* the last entry looked at (ASC), or kept when the page is full */
    iq_feed_row *fr;
    size_t nfr, frcap;
    iq_feed_row **by_id;        /* fr sorted by event_id */
    influx_us_range *ranges;
    size_t nranges, range_next;
    /* entities, and the restore (building) */
    influx_entities ents;
    influx_homes homes;         /* the restore: each home's totals (issue 18) */
    int homes_found, other_homes; /* restore: the snapshot has homeiq_homes points / a home_id tag exists */
    store_rows_cb rows_cb;      /* GET /api/v1/homes: answered with rows only (cb unused) */
    size_t chunk_lo, chunk_hi;
    int64_t total;
    int building;               /* this is the restore of the entity list and totals */
    influx_totals tot;          /* the snapshot read back, then what the restore has re-applied */
    int64_t applied, dead_mark; /* restore: re-applied through this feed seq / dead letters counted up to */
    int64_t dead_to;            /* restore: the mark the dead-letter count in flight goes up to */
    int pre_found, probe_trusted; /* restore: events stored before this process wrote any (see iq_restore_snapshot) */
    int64_t target_seq, target_ns; /* restore: the feed is read up to these (settled at its start), ... */
    influx_pending pend;        /* ... the batches finished after them are applied from here (influx_pending.h) */
    int chase;                  /* restore: read the feed up to the batches' current marks (pend dropped) */
    struct iq_req *next_wait;
    iq_step_fn resume;          /* a read waiting for the restore: continues here */
    /* series */
    int64_t start_us, end_us, width_us;
    long points, max_segments;
    int numeric, exists, truncated;
    iq_segment seg;
    /* stats */
    int64_t now_us, from_s, store_bytes;
    long window_s;
    long long *per_second;
    int stmt_off, disk_asked;   /* statement id of the first statement sent; SHOW STATS was sent */
    /* series on the homeassistant schema: merged across HA's measurements */
    struct iq_ha_bucket *hb;
    struct iq_ha_state *hs;
    size_t nhs, caphs;
    int has_state;
    char fail[200];             /* why a failed entity-list build failed: its waiting reads say it too */
    json_t *per_domain;         /* stats from InfluxDB: domain -> count, summed over the FROM list's measurements */
};

/* A batch finishes while a restore runs: the held late dead letters (an earlier batch's) its settle mark
 * passed, which the write path would count now. The kept batches are applied only after the restore, so
 * without this the hold stayed taken and the next batch with late ones made the restore read to the head
 * (session 9 review, finding 2). At or below the restore's dead-letter bound its own count has them
 * (dropped); above it they are returned, to be counted with this batch when it is applied (its settle mark
 * passes them). n: how many. */
static char *iq_restore_late_take(influx_reads *r, long long *n) {
    iq_req *q = r->restore_q;
    *n = 0;
    if (!q || !r->late.n || r->late.ns > r->settle_ns) return NULL;
    char *home = r->late.home;
    int counted = q->chase || r->late.ns <= q->target_ns; /* chasing: counted up to the settle mark it ends at */
    *n = counted ? 0 : (long long)r->late.n;
    r->late.home = NULL;
    r->late.n = 0;
    if (counted) {
        free(home);
        home = NULL;
    }
    return home;
}

/* A batch finished while the restore runs: kept for it (influx_pending.h), or, when it failed, would pass
 * the bound or its late dead letters could not be held, the restore reads the feed up to the head instead.
 * carry_*: iq_restore_late_take's (owned; freed when not kept: the chase counts them). */
static void iq_restore_keep(influx_reads *r, const store_batch *b, int rc, int64_t prev, int64_t late_n, int held,
                            char *carry_home, long long carry_n) {
    iq_req *q = r->restore_q;
    if (!q || q->chase) {
        free(carry_home);
        return;
    }
    influx_pending_batch marks = {.stored = (long long)b->stored, .dead = (long long)b->ndead - late_n, .prev = prev,
                                  .settled = r->settled, .settle_ns = r->settle_ns};
    if (rc == 0 && held && influx_pending_add(&q->pend, b, &marks) == 0) {
        q->pend.b[q->pend.nb - 1].late_home = carry_home;
        q->pend.b[q->pend.nb - 1].late_n = carry_home ? carry_n : 0;
        r->restore_kept++;
        return;
    }
    free(carry_home);
    influx_pending_clear(&q->pend);
    q->chase = 1;
    r->restore_chased++;
}

static void iq_feed_rows_free(iq_req *q) {
    for (size_t i = 0; i < q->nfr; i++) free(q->fr[i].record);
    free(q->fr);
    free(q->by_id);
    free(q->ranges);
}

static void iq_finish(iq_req *q, int rc, const char *err);

static void iq_free(iq_req *q) {
    if (q->building) {
        if (q->r->restore_q == q) { /* failed (an installed one let go already: a read it resumed may run the next) */
            q->r->restore_q = NULL;
            q->r->restoring = 0;
        }
        influx_pending_clear(&q->pend);
        if (q->r->cache_state == 1) { /* failed: the waiting reads fail too, a later read restores */
            q->r->cache_state = 0;
            iq_req *w = q->r->waiting;
            q->r->waiting = NULL;
            while (w) {
                iq_req *next = w->next_wait;
                char why[256];
                snprintf(why, sizeof why, "the entity list could not be read from InfluxDB: %s",
                         q->fail[0] ? q->fail : "unknown error");
                iq_finish(w, -1, why);
                w = next;
            }
        }
    }
    iq_feed_rows_free(q);
    influx_entities_clear(&q->ents);
    influx_homes_clear(&q->homes);
    free(q->hb);
    for (size_t i = 0; i < q->nhs; i++) free(q->hs[i].state);
    free(q->hs);
    free(q->seg.state);
    free(q->per_second);
    json_decref(q->per_domain);
    free(q->entity_id);
    free(q->home);
    free(q->domain);
    free(q->event_type);
    free(q->area);
    free(q->f_entity);
    free(q->f_domain);
    free(q->f_type);
    free(q->f_area);
    free(q->search);
    store_rows_free(&q->rows);
    sbuf_free(&q->meta);
    free(q);
}

static void iq_finish(iq_req *q, int rc, const char *err) {
    if (rc == 0 && sbuf_failed(&q->meta)) rc = -1, err = "out of memory";
    if (rc != 0 && rc != STORE_QUERY_UNSUPPORTED && rc != 1) log_warn("influxdb read failed: %s", err ? err : "");
    if (rc != 0 && err) snprintf(q->fail, sizeof q->fail, "%s", err);
    if (q->rows_cb) q->rows_cb(&q->rows, rc, rc ? err : NULL, q->arg);
    else q->cb(&q->rows, rc == 0 ? (q->meta.data ? q->meta.data : "") : NULL, rc, err, q->arg);
    iq_free(q);
}

/* A read on either schema. */
static iq_req *iq_new_any(influx_reads *r, store_read_cb cb, void *arg) {
    iq_req *q = calloc(1, sizeof *q);
    if (!q) {
        store_rows none = {0};
        cb(&none, NULL, -1, "out of memory", arg);
        return NULL;
    }
    *q = (iq_req){.r = r, .cb = cb, .arg = arg, .tolerate_stmt = -1};
    sbuf_init(&q->meta);
    return q;
}

/* A read of HomeIQ's records (feed, entities, stats): on either schema, since
 * the homeassistant schema keeps each HA point's record in its identity point. */
static iq_req *iq_new_r(influx_reads *r, store_read_cb cb, void *arg) { return iq_new_any(r, cb, arg); }

static iq_req *iq_new(store *s, store_read_cb cb, void *arg) { return iq_new_r(store_influx_reads(s), cb, arg); }

static char *iq_dup(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static int iq_col(json_t *cols, const char *name) { return influx_answer_col(cols, name); }

static const char *iq_str(json_t *cols, json_t *vals, const char *name) {
    int i = iq_col(cols, name);
    return i < 0 ? NULL : json_string_value(json_array_get(vals, (size_t)i));
}

/* An integer column; 0 with *ok 0 when absent or null. */
static int64_t iq_int(json_t *cols, json_t *vals, const char *name, int *ok) {
    int i = iq_col(cols, name);
    json_t *v = i < 0 ? NULL : json_array_get(vals, (size_t)i);
    if (ok) *ok = json_is_number(v);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static const char *iq_tagv(json_t *tags, const char *key) {
    const char *v = json_string_value(json_object_get(tags, key));
    return v && *v ? v : NULL;
}

static void iq_error_text(const httpc_response *r, char *out, size_t n) {
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e) snprintf(out, n, "influxdb: %s", e);
    else if (r->status == 0) snprintf(out, n, "influxdb unreachable: %s", r->error ? r->error : "no response");
    else snprintf(out, n, "influxdb: HTTP %ld: %.200s", r->status, r->body_len ? r->body : "");
    json_decref(j);
}

static int iq_answer_row(const influx_answer_row *row, void *arg) {
    iq_req *q = arg;
    return q->row(q, row->stmt, row->tags, row->columns, row->values);
}

/* Walks the (chunked) answer (influx_answer.h); the statement q->tolerate_stmt
 * may fail. -1 with q->err. */
static int iq_walk(iq_req *q, const httpc_response *r) {
    return influx_answer_walk(r->body, r->body_len, q->tolerate_stmt, iq_answer_row, q, q->err, sizeof q->err);
}

static void iq_done(const httpc_response *r, void *arg) {
    iq_req *q = arg;
    if (r->status != 200) {
        iq_error_text(r, q->err, sizeof q->err);
        iq_finish(q, -1, q->err);
    } else if (iq_walk(q, r) != 0) {
        iq_finish(q, -1, q->err);
    } else {
        q->next(q);
    }
}

/* Sends sql; row() gets each value row, then next() runs (or the read fails). */
static void iq_send(iq_req *q, sbuf *sql, iq_row_fn row, iq_step_fn next) {
    q->row = row;
    q->next = next;
    if (sbuf_failed(sql)) iq_finish(q, -1, "out of memory");
    else if (!q->r->io.query || q->r->io.query(q->r->io.ctx, sql->data, iq_done, q) != 0)
        iq_finish(q, -1, "cannot start a request to InfluxDB");
    sbuf_free(sql);
}

/* ---- InfluxQL pieces --------------------------------------------------- */

/* ` AND "key" = '<tag form>'` (or WHERE when *first). */
static void iq_where_tag(sbuf *b, int *first, const char *key, const char *value) {
    if (!value) return;
    sbuf_adds(b, *first ? " WHERE " : " AND ");
    *first = 0;
    influxql_ident(b, key);
    sbuf_adds(b, " = ");
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, value);
    influxql_string(b, form.data ? form.data : "");
    sbuf_free(&form);
}

static void iq_where(sbuf *b, int *first, const char *cond) {
    sbuf_adds(b, *first ? " WHERE " : " AND ");
    *first = 0;
    sbuf_adds(b, cond);
}

#define IQ_NUMERIC_STATE "event_type = 'state_changed' AND state =~ /[0-9]/"

/* ---- feed ---------------------------------------------------------------- */

static void iq_feed_list(iq_req *q);

/* The restore reads the feed up to t at least: t is below this process's first sequence (an earlier run's),
 * so every kept batch (all of this process) is exact once memory is exact through t -- its prev is raised to
 * it. Without that, a batch kept with prev 0 (the first of the process, finished before the head was known)
 * never matches the restored memory, or, with no snapshot, matches one that read no feed at all. */
static void iq_restore_raise(iq_req *q, int64_t t) {
    if (!q || t <= q->target_seq) return;
    q->target_seq = t;
    for (size_t i = 0; i < q->pend.nb; i++)
        if (q->pend.b[i].prev < t) q->pend.b[i].prev = t;
}

/* A row of influx_feed_sql_head's statements (either form of the feed, influx_feed.h). */
static int iq_head_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    influx_answer_row row = {stmt, tags, cols, vals};
    int64_t t = influx_feed_head_row(&row);
    influx_reads *r = q->r;
    if (t > r->feed_last) r->feed_last = t;
    /* this process's own points (a batch being written) are not a head: batch_done moves it */
    if (r->first_seq && influx_answer_time(&row) / 1000 >= r->first_seq) return 0;
    if (t > r->head) r->head = t;
    if (t > r->settled) r->settled = t; /* an earlier run's points are all finished */
    iq_restore_raise(r->restore_q, t); /* ... and read by the restore */
    return 0;
}

static void iq_head_known(iq_req *q) {
    q->r->head_known = 1;
    iq_feed_list(q);
}

/* One feed entry of the range being scanned: kept when it passes the filters
 * (the tag forms; home= was asked in the WHERE) and the page has room. */
static int iq_feed_entry_cb(const influx_feed_entry *e, void *arg) {
    iq_req *q = arg;
    if (e->seq > q->head || strlen(e->event_id) != EVENT_ID_LEN - 1) return 0;
    q->scanned++;
    if ((long)q->nfr >= q->limit) return 0; /* full: the cursor stops at the last one kept */
    q->scan_last = e->seq;
    if ((q->f_entity && (!e->entity_id || strcmp(e->entity_id, q->f_entity) != 0)) ||
        (q->f_domain && (!e->domain || strcmp(e->domain, q->f_domain) != 0)) ||
        (q->f_type && (!e->event_type || strcmp(e->event_type, q->f_type) != 0)) ||
        (q->f_area && (!e->area || strcmp(e->area, q->f_area) != 0)))
        return 0;
    if (q->nfr == q->frcap) {
        size_t cap = q->frcap ? q->frcap * 2 : 64;
        iq_feed_row *p = realloc(q->fr, cap * sizeof *p);
        if (!p) return -1;
        q->fr = p;
        q->frcap = cap;
    }
    iq_feed_row *f = &q->fr[q->nfr++];
    memset(f, 0, sizeof *f);
    f->seq = e->seq;
    f->t_ns = e->t_ns;
    memcpy(f->event_id, e->event_id, EVENT_ID_LEN);
    return 0;
}

static int iq_feed_row_cb(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    influx_answer_row row = {stmt, tags, cols, vals};
    int64_t last = 0;
    if (influx_feed_row(&row, q->has_after ? q->after : 0, !q->has_after, iq_feed_entry_cb, q, &last) != 0) return -1;
    if (stmt < q->scan_stmt) return 0; /* the batch point reaching past the cursor: no step of the range */
    q->scan_rows++; /* every row asked for: one without entries must not end the scan (a gap; review-feed 8) */
    if (last) q->scan_points++;
    int64_t t = influx_answer_time(&row) / 1000;
    q->scan_edge = q->has_after ? (t > q->scan_edge ? t : q->scan_edge) : (!q->scan_edge || t < q->scan_edge ? t : q->scan_edge);
    return 0;
}

static int iq_cmp_row_id(const void *a, const void *b) {
    return strcmp((*(iq_feed_row *const *)a)->event_id, (*(iq_feed_row *const *)b)->event_id);
}

static int iq_record_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    const char *id = iq_str(cols, vals, "event_id"), *rec = iq_str(cols, vals, "record");
    const char *at = iq_str(cols, vals, "stored_at");
    int64_t at_us = 0;
    if (!id || !rec || !at || strlen(id) != EVENT_ID_LEN - 1 || event_time_parse(at, &at_us) != 0) return 0;
    iq_feed_row key, *kp = &key;
    memcpy(key.event_id, id, EVENT_ID_LEN);
    iq_feed_row **hit = bsearch(&kp, q->by_id, q->nfr, sizeof *q->by_id, iq_cmp_row_id);
    if (!hit || (*hit)->record) return 0;
    (*hit)->stored_at_us = at_us;
    return ((*hit)->record = strdup(rec)) ? 0 : -1;
}

static void iq_restore_page(iq_req *q);

static void iq_feed_answer(iq_req *q) {
    if (q->building) { /* a restore re-applying the feed */
        iq_restore_page(q);
        return;
    }
    int64_t last = 0;
    for (size_t i = 0; i < q->nfr; i++) {
        /* without after= the page was read newest first: answer oldest first */
        iq_feed_row *f = &q->fr[q->has_after ? i : q->nfr - 1 - i];
        if (f->seq > last) last = f->seq;
        if (!f->record) continue; /* its event line was refused (dead-lettered) */
        if (store_rows_add_event(&q->rows, f->record, strlen(f->record), f->event_id, f->stored_at_us) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        char *o = q->rows.json[q->rows.n - 1];
        size_t len = strlen(o);
        char seq[40];
        int sl = snprintf(seq, sizeof seq, ",\"seq\":%lld}", (long long)f->seq);
        char *p = realloc(o, len + (size_t)sl);
        if (!p) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        memcpy(p + len - 1, seq, (size_t)sl + 1);
        q->rows.json[q->rows.n - 1] = p;
    }
    (void)last;
    int more = q->has_after && q->scan_more && q->scan_last < q->head;
    int64_t cursor = more ? q->scan_last : q->head;
    if (q->has_after && cursor < q->after) cursor = q->after; /* a reader never goes back (review-feed 4) */
    sbuf_printf(&q->meta, "\"cursor\":%lld,\"head\":%lld,\"more\":%s", (long long)cursor, (long long)q->head,
                more ? "true" : "false");
    iq_finish(q, 0, NULL);
}

/* One request with the next IQ_STMTS_PER_REQUEST record ranges. */
static void iq_feed_fetch(iq_req *q) {
    if (q->range_next >= q->nranges) {
        iq_feed_answer(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    for (size_t k = 0; k < IQ_STMTS_PER_REQUEST && q->range_next < q->nranges; k++, q->range_next++) {
        const influx_us_range *rg = &q->ranges[q->range_next];
        int first = 0;
        sbuf_printf(&sql, "%sSELECT record, event_id, stored_at FROM %s WHERE time >= %lld AND time <= %lld",
                    k ? ";" : "", IQ_RECORDS_FROM(q->r), (long long)rg->lo * 1000, (long long)rg->hi * 1000 + 999);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where_tag(&sql, &first, "domain", q->domain);
        iq_where_tag(&sql, &first, "event_type", q->event_type);
        /* the page's ids are the home's already (the feed list); identity points written before they carried
         * a home_id tag (issue 18) have none, so none is asked of them on that schema */
        if (!q->r->ha_schema) iq_where_tag(&sql, &first, INFLUX_HOME_TAG, q->home);
    }
    iq_send(q, &sql, iq_record_row, iq_feed_fetch);
}

static void iq_feed_plan(iq_req *q) {
    if (q->nfr == 0) {
        iq_feed_answer(q);
        return;
    }
    int64_t *us = malloc(q->nfr * sizeof *us);
    q->ranges = malloc(q->nfr * sizeof *q->ranges);
    q->by_id = malloc(q->nfr * sizeof *q->by_id);
    if (!us || !q->ranges || !q->by_id) {
        free(us);
        iq_finish(q, -1, "out of memory");
        return;
    }
    for (size_t i = 0; i < q->nfr; i++) {
        us[i] = q->fr[i].t_ns / 1000;
        q->by_id[i] = &q->fr[i];
    }
    qsort(q->by_id, q->nfr, sizeof *q->by_id, iq_cmp_row_id);
    q->nranges = influx_dup_ranges(us, q->nfr, q->ranges);
    free(us);
    iq_feed_fetch(q);
}

/* The range being scanned is done (or bounded): the page's records next. */
static void iq_feed_scanned(iq_req *q);

/* One request of the scan: the points after the range's edge (ASC from the
 * cursor, or DESC from the head), as many as should fill the page judging by
 * the entries per point seen so far; on the first ASC request also the batch
 * point that may reach past the cursor (influx_feed.h). */
static void iq_feed_scan(iq_req *q) {
    long want = q->limit - (long)q->nfr, per = q->scan_points ? (long)(q->scanned / q->scan_points) : 0;
    long points = q->scan_points ? want / (per > 0 ? per : 1) + 1 : IQ_FEED_FIRST_POINTS;
    if (points > q->limit) points = q->limit;
    if (points > IQ_FEED_MAX_POINTS) points = IQ_FEED_MAX_POINTS;
    if (points < 1) points = 1;
    q->scan_rows = 0;
    q->scan_ask = points;
    sbuf sql;
    sbuf_init(&sql);
    q->scan_stmt = 0;
    if (q->has_after && !q->scan_edge && q->after > 0) {
        influx_feed_sql_before(&sql, q->home, q->after);
        sbuf_addc(&sql, ';');
        q->scan_stmt = 1;
    }
    influx_feed_filter f = {q->f_entity, q->f_domain, q->f_type, q->f_area}; /* per-event points: in the WHERE */
    if (q->has_after) influx_feed_sql_after(&sql, q->home, &f, q->scan_edge ? q->scan_edge : q->after, q->head, 1, points);
    else influx_feed_sql_after(&sql, q->home, &f, 0, q->scan_edge ? q->scan_edge - 1 : q->head, 0, points);
    iq_send(q, &sql, iq_feed_row_cb, iq_feed_scanned);
}

static void iq_feed_scanned(iq_req *q) {
    int exhausted = q->scan_rows < q->scan_ask || (!q->has_after && q->scan_edge <= 1);
    if ((long)q->nfr >= q->limit) { /* full: more after the last entry kept */
        q->scan_more = 1;
        q->scan_last = q->fr[q->nfr - 1].seq;
    } else if (exhausted) {
        q->scan_more = 0; /* the range up to the head is read: the cursor is the head */
    } else if (q->scanned >= IQ_FEED_SCAN_ENTRIES + (size_t)q->limit) {
        q->scan_more = 1; /* bounded: a sparse filter moves on from the last entry looked at */
    } else {
        iq_feed_scan(q);
        return;
    }
    iq_feed_plan(q);
}

static void iq_feed_list(iq_req *q) {
    q->head = q->r->head;
    if (q->head == 0 || (q->has_after && q->after >= q->head)) {
        iq_feed_answer(q);
        return;
    }
    iq_feed_scan(q);
}

/* The filters as the feed holds them (tag forms, influx_feed.h). */
static char *iq_tag_form(const char *v, int *oom) {
    if (!v) return NULL;
    sbuf b;
    sbuf_init(&b);
    lineproto_tag_form(&b, v);
    if (!b.data) sbuf_adds(&b, "");
    if (sbuf_failed(&b)) *oom = 1;
    return sbuf_take(&b, NULL);
}

void store_influx_feed(store *s, const store_feed_query *fq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->entity_id = iq_dup(fq->f->entity_id, &oom);
    q->domain = iq_dup(fq->f->domain, &oom);
    q->event_type = iq_dup(fq->f->event_type, &oom);
    q->area = iq_dup(fq->f->area, &oom);
    q->home = fq->f->home_id ? iq_dup(influx_points_home_value(fq->f->home_id), &oom) : NULL;
    q->f_entity = iq_tag_form(q->entity_id, &oom);
    q->f_domain = iq_tag_form(q->domain, &oom);
    q->f_type = iq_tag_form(q->event_type, &oom);
    q->f_area = iq_tag_form(q->area, &oom);
    q->limit = fq->f->limit;
    q->after = fq->after;
    q->has_after = fq->has_after;
    if (oom) {
        iq_finish(q, -1, "out of memory");
    } else if (!q->r->head_known) {
        /* the head of an earlier run: the feed never answers below it */
        sbuf sql;
        sbuf_init(&sql);
        influx_feed_sql_head(&sql, q->r->first_seq); /* below this process's own points (review-feed 4) */
        iq_send(q, &sql, iq_head_row, iq_head_known);
    } else {
        iq_feed_list(q);
    }
}

/* ---- entities and totals: restored once, then kept by the write path ------------ */

static void iq_restore_catchup(iq_req *q);

static int iq_entity_row(store_rows *rows, const influx_entity *e) {
    char t[EVENT_TIME_LEN];
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"entity_id\":");
    json_text_string(&b, e->id, strlen(e->id));
    sbuf_adds(&b, ",\"domain\":");
    if (e->domain) json_text_string(&b, e->domain, strlen(e->domain));
    else sbuf_adds(&b, "null");
    sbuf_adds(&b, ",\"state\":");
    if (e->has_state) json_text_string(&b, e->state, strlen(e->state));
    else sbuf_adds(&b, "null");
    sbuf_adds(&b, ",\"last_changed\":");
    if (e->has_changed) {
        event_time_format(e->changed_ns / 1000, t);
        sbuf_printf(&b, "\"%s\"", t);
    } else {
        sbuf_adds(&b, "null");
    }
    event_time_format(e->last_ns / 1000, t);
    sbuf_printf(&b, ",\"last_event\":\"%s\",\"event_count\":%lld,\"numeric\":%s", t, e->count,
                e->numeric ? "true" : "false");
    if (e->home) { /* another home's row says so, as its records do (issue 18) */
        sbuf_adds(&b, ",\"" STORE_HOME_KEY "\":");
        json_text_string(&b, e->home, strlen(e->home));
    }
    sbuf_addc(&b, '}');
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

/* From memory: no query at all. home= (issue 18): one home's entries, and
 * its count as the total (without it: every home's entries, a row each). */
static void iq_entities_from_cache(iq_req *q) {
    influx_reads *r = q->r;
    long n = 0;
    long long total = 0;
    for (size_t i = 0; i < r->cache.n; i++) {
        const influx_entity *e = &r->cache.e[i];
        if (q->home && strcmp(influx_entity_home(e), q->home) != 0) continue;
        total++;
        if (n >= q->limit) continue;
        if (q->domain && (!e->domain || strcmp(e->domain, q->domain) != 0)) continue;
        if (q->search && !strstr(e->id, q->search)) continue;
        if (iq_entity_row(&q->rows, e) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        n++;
    }
    sbuf_printf(&q->meta, "\"total\":%lld", total);
    iq_finish(q, 0, NULL);
}

/* -- the end of a restore: memory takes the restored list, waiting reads go on -- */

/* One kept batch applied to memory, as influx_reads_batch_done applies a batch. -1 when memory is not exact. */
static int iq_apply_kept(influx_reads *r, const influx_pending *p, const influx_pending_batch *pb) {
    if (pb->prev != r->tot.seq) return -1; /* memory is not exact through the batch before it */
    for (size_t i = pb->first; i < pb->first + pb->n; i++) {
        influx_fact f;
        influx_pending_fact_at(p, i, &f);
        if (influx_entities_apply_fact(&r->cache, &f, pb->home, 0) < 0 || influx_window_add(&r->win, f.time_us, f.domain) != 0)
            return -1;
    }
    if ((pb->stored || pb->dead) &&
        influx_homes_add(&r->homes, influx_points_home_value(pb->home), pb->stored, pb->dead, 0) != 0)
        return -1;
    if (pb->late_n && influx_homes_add(&r->homes, pb->late_home, 0, pb->late_n, 0) != 0) return -1;
    r->tot.events += pb->stored;
    r->tot.dead += pb->dead + pb->late_n;
    r->tot.seq = pb->settled;
    r->tot.dead_ns = pb->settle_ns;
    return iq_late_count(r);
}

static void iq_restore_install(iq_req *q) {
    influx_reads *r = q->r;
    influx_entities_move(&r->cache, &q->ents);
    influx_homes_move(&r->homes, &q->homes);
    r->tot = q->tot;
    r->tot.seq = q->applied;
    r->tot.dead_ns = q->dead_mark;
    iq_late_drop_counted(r);
    r->cache_state = 2;
    r->stale = 0;
    r->restoring = 0;
    r->restore_q = NULL; /* batches finishing from now on are applied by the write path */
    r->snap_full = 1; /* every entity again, now exact through tot.seq */
    influx_window_reset(&r->win, service_now_us() / 1000000); /* exact for what is stored from now on */
    for (size_t i = 0; i < q->pend.nb && !r->stale; i++) /* the batches finished after what it read, in order */
        if (iq_apply_kept(r, &q->pend, &q->pend.b[i]) != 0) r->stale = 1;
    iq_req *w = r->waiting;
    r->waiting = NULL;
    while (w) {
        iq_req *next = w->next_wait;
        w->resume(w);
        w = next;
    }
    iq_snapshot(r, 1);
    iq_finish(q, 0, NULL);
}

static void iq_restore_cb(const store_rows *rows, const char *meta, int rc, const char *err, void *arg) {
    (void)rows, (void)meta, (void)rc, (void)err, (void)arg; /* failures were logged by iq_finish */
}

/* -- a store written before the summary existed: one scan of every event (once) -- */

static int iq_count_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    if (stmt == 1 || stmt == 2) { /* GROUP BY home_id: one row per home (issue 18) */
        int64_t n = iq_int(cols, vals, "count", NULL);
        if (stmt == 1) q->tot.events += n;
        else q->tot.dead += n;
        return influx_homes_add(&q->homes, iq_tagv(tags, INFLUX_HOME_TAG), stmt == 1 ? n : 0, stmt == 2 ? n : 0, 0);
    }
    const char *id = iq_tagv(tags, "entity_id");
    if (!id) return 0; /* events without entity_id make no entity */
    influx_entity *e = influx_entities_get(&q->ents, id, iq_tagv(tags, INFLUX_HOME_TAG), iq_tagv(tags, "domain"));
    if (!e) return -1;
    e->count += iq_int(cols, vals, "count", NULL); /* one entity seen under two domains: one row */
    return 0;
}

static int iq_last_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    influx_entity *e = influx_entities_find(&q->ents, iq_tagv(tags, "entity_id"), iq_tagv(tags, INFLUX_HOME_TAG));
    if (!e) return 0;
    int64_t t = iq_int(cols, vals, "time", NULL);
    if (stmt == 0) {
        e->last_ns = t;
    } else if (stmt == 1) {
        const char *st = iq_str(cols, vals, "last");
        if (!st) return 0;
        free(e->state);
        if (!(e->state = strdup(st))) return -1;
        e->has_state = 1;
        e->state_ns = t;
    } else if (stmt == 2) {
        e->numeric = 1;
    } else if (iq_int(cols, vals, "count", NULL) > 0) {
        e->mixed = 1; /* a value under a state without a digit */
    }
    return 0;
}

/* Rounds 3 and 4, per entity with a state, IQ_STMTS_PER_REQUEST at a time:
 * the last point in another state (t0), then the first point after it. */
static void iq_changes_next(iq_req *q);

static int iq_change_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags;
    size_t i = q->chunk_lo + (size_t)stmt;
    if (i >= q->chunk_hi) return 0;
    influx_entity *e = &q->ents.e[i];
    int64_t t = iq_int(cols, vals, "time", NULL);
    if (q->numeric == 0) e->t0_ns = t, e->has_t0 = 1;
    else e->changed_ns = t, e->has_changed = 1;
    return 0;
}

static void iq_changes_next(iq_req *q) {
    /* q->numeric is reused here as the round: 0 = t0, 1 = first change */
    if (q->chunk_hi >= q->ents.n) {
        if (q->numeric == 1 || q->ents.n == 0) { /* no entity: no round to ask (review-feed 5: an empty request) */
            /* exact as far as the scan saw: a batch finished during it may be
             * counted or not (docs/INFLUX_READS.md); only a store without a summary gets here */
            q->applied = q->r->settled;
            q->dead_mark = q->r->settle_ns;
            q->tot.snap_ns = 0; /* a new snapshot time: all entities are written */
            iq_restore_install(q);
            return;
        }
        q->numeric = 1;
        q->chunk_hi = 0;
    }
    q->chunk_lo = q->chunk_hi;
    q->chunk_hi = q->chunk_lo + IQ_STMTS_PER_REQUEST < q->ents.n ? q->chunk_lo + IQ_STMTS_PER_REQUEST : q->ents.n;
    sbuf sql;
    sbuf_init(&sql);
    for (size_t i = q->chunk_lo; i < q->chunk_hi; i++) {
        influx_entity *e = &q->ents.e[i];
        int first = 1;
        if (i > q->chunk_lo) sbuf_addc(&sql, ';');
        /* an entity without a state still takes a statement, so statement_id = index in chunk */
        sbuf_printf(&sql, "SELECT %s(state) FROM \"%s\"", q->numeric ? "first" : "last", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", e->id);
        iq_where_tag(&sql, &first, INFLUX_HOME_TAG, influx_entity_home(e)); /* "": the untagged default home */
        iq_where(&sql, &first, "event_type = 'state_changed'");
        if (!e->has_state) {
            iq_where(&sql, &first, "time < 0");
        } else if (q->numeric == 0) {
            sbuf_adds(&sql, " AND state != ");
            influxql_string(&sql, e->state);
        } else if (e->has_t0) {
            sbuf_printf(&sql, " AND time > %lld", (long long)e->t0_ns);
        }
    }
    iq_send(q, &sql, iq_change_row, iq_changes_next);
}

static void iq_legacy_lasts(iq_req *q) {
    sbuf sql;
    sbuf_init(&sql);
    const char *sel[4] = {"last(event_id)", "last(state)", "last(value)", "count(value)"};
    for (int k = 0; k < 4; k++) {
        int first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", sel[k], IQ_EVENTS);
        if (k == 1) iq_where(&sql, &first, "event_type = 'state_changed'");
        if (k == 2) iq_where(&sql, &first, IQ_NUMERIC_STATE);
        if (k == 3) iq_where(&sql, &first, "event_type = 'state_changed' AND state !~ /[0-9]/");
        sbuf_adds(&sql, " GROUP BY entity_id, " INFLUX_HOME_TAG);
    }
    q->numeric = 0;
    q->chunk_hi = 0;
    iq_send(q, &sql, iq_last_row, iq_changes_next);
}

static void iq_legacy_scan(iq_req *q) {
    influx_pending_clear(&q->pend); /* counts what it sees, the batches finished meanwhile too */
    if (!q->chase) q->r->restore_chased++; /* read to the head, as /health says (read_to_head) */
    q->chase = 1;
    log_info("influxdb: no entity summary yet (%s): counting every stored event once", INFLUX_TOTALS_MEASUREMENT);
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql, "SELECT count(event_id) FROM \"%s\" GROUP BY entity_id, domain, " INFLUX_HOME_TAG ";"
                      "SELECT count(event_id) FROM \"%s\" GROUP BY " INFLUX_HOME_TAG ";"
                      "SELECT count(error) FROM \"%s\" GROUP BY " INFLUX_HOME_TAG, IQ_EVENTS, IQ_EVENTS, IQ_DEAD);
    iq_send(q, &sql, iq_count_row, iq_legacy_lasts);
}

/* -- the restore: the last snapshot (O(entities)), then the feed after it ------- */

/* What the restore reads up to: where the batches had got when it started (the later ones are kept,
 * influx_pending.h), or, after it had to drop those, where they are now. */
static int64_t iq_restore_upto(const iq_req *q) { return q->chase ? q->r->settled : q->target_seq; }
static int64_t iq_restore_upto_ns(const iq_req *q) { return q->chase ? q->r->settle_ns : q->target_ns; }

static void iq_restore_dead_done(iq_req *q) {
    q->dead_mark = q->dead_to;
    /* chasing: a batch finished meanwhile, re-apply it too (the write path did not, a restore was running) */
    if (iq_restore_upto(q) > q->applied || iq_restore_upto_ns(q) > q->dead_mark) iq_restore_catchup(q);
    else iq_restore_install(q);
}

static int iq_dead_count_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt;
    int64_t n = iq_int(cols, vals, "count", NULL);
    q->tot.dead += n;
    return influx_homes_add(&q->homes, iq_tagv(tags, INFLUX_HOME_TAG), 0, n, 0);
}

/* Dead letters written since the mark: every one built before settle_ns
 * belongs to a finished batch; later ones are counted when their batch ends. */
static void iq_restore_dead(iq_req *q) {
    int64_t to = iq_restore_upto_ns(q);
    q->dead_to = to > q->dead_mark ? to : q->dead_mark;
    if (to <= q->dead_mark) {
        iq_restore_dead_done(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql, "SELECT count(error) FROM \"%s\" WHERE time > %lld AND time <= %lld GROUP BY " INFLUX_HOME_TAG,
                IQ_DEAD, (long long)q->dead_mark, (long long)to);
    iq_send(q, &sql, iq_dead_count_row, iq_restore_dead_done);
}

/* A page of the feed re-applied (its records were read by iq_feed_plan/fetch). */
static void iq_restore_page(iq_req *q) {
    for (size_t i = 0; i < q->nfr; i++) {
        const iq_feed_row *f = &q->fr[i];
        store_item it;
        json_t *hold;
        const char *home;
        if (!f->record || influx_record_item(f->record, &it, &home, &hold) != 0) continue; /* refused line */
        int rc = influx_entities_apply(&q->ents, &it, home, f->seq);
        if (rc >= 0) rc = influx_homes_add(&q->homes, influx_points_home_value(home), 1, 0, f->seq);
        json_decref(hold);
        if (rc < 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        q->tot.events++;
    }
    q->r->restore_rows += q->nfr;
    q->applied = q->scan_more ? q->scan_last : q->head;
    iq_restore_catchup(q);
}

/* The feed after what is applied, up to what is settled, a page at a time. */
static void iq_restore_catchup(iq_req *q) {
    if (q->applied >= iq_restore_upto(q)) {
        iq_restore_dead(q);
        return;
    }
    iq_feed_rows_free(q);
    q->fr = NULL;
    q->by_id = NULL;
    q->ranges = NULL;
    q->nfr = q->frcap = q->nranges = q->range_next = 0;
    q->has_after = 1;
    q->after = q->applied;
    q->limit = IQ_CATCHUP_PAGE;
    q->head = iq_restore_upto(q);
    q->scanned = q->scan_points = 0;
    q->scan_edge = q->scan_last = 0;
    q->scan_more = 0;
    iq_feed_scan(q);
}

static int iq_snapshot_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    if (stmt == 0) return influx_summary_row(&q->ents, tags, cols, vals);
    q->homes_found = 1;
    return influx_homes_row(&q->homes, tags, cols, vals);
}

static void iq_restore_without_snapshot(iq_req *q);

static void iq_restore_snapshot_read(iq_req *q) {
    if (!q->homes_found && q->other_homes) {
        /* a snapshot written before the totals were kept per home (issue 18), in a store
         * holding another home's points: its totals cannot be split, so as without one */
        influx_entities_clear(&q->ents);
        influx_homes_clear(&q->homes);
        q->tot = (influx_totals){0};
        iq_restore_without_snapshot(q);
        return;
    }
    if (!q->homes_found && (q->tot.events || q->tot.dead) &&
        influx_homes_add(&q->homes, "", q->tot.events, q->tot.dead, 0) != 0) { /* one home: the default one */
        iq_finish(q, -1, "out of memory");
        return;
    }
    for (size_t i = 0; !q->homes_found && i < q->homes.n; i++) q->homes.h[i].seq = q->tot.seq;
    q->applied = q->tot.seq;
    q->dead_mark = q->tot.dead_ns;
    iq_restore_catchup(q);
}

static int iq_totals_head_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    if (stmt == 0) influx_totals_row(&q->tot, cols, vals);
    else if (stmt == 1) q->pre_found = 1;   /* SHOW SERIES: the events measurement has a series */
    else if (stmt == 2) q->other_homes = 1; /* SHOW TAG VALUES: a point of a home other than the default one */
    else return iq_head_row(q, stmt, tags, cols, vals); /* the feed's head, either form */
    return 0;
}

/* No snapshot yet. If no event was stored before this process wrote its
 * first one, every stored event has a feed point: re-apply the feed from
 * the start (exact). Otherwise (a store written by an earlier version) scan
 * every event once. The probe is trusted only when it was asked before this
 * process wrote anything. */
static void iq_restore_without_snapshot(iq_req *q) {
    influx_reads *r = q->r;
    int none_before = q->probe_trusted ? !q->pre_found : r->pre_events == 0;
    /* homeassistant schema: HA points written before identity points existed
     * have no record to count; what has one has a feed point (docs/INFLUX_READS.md) */
    if (!none_before && !r->ha_schema) {
        iq_legacy_scan(q);
        return;
    }
    q->applied = 0;
    q->dead_mark = 0;
    iq_restore_catchup(q);
}

static void iq_restore_snapshot(iq_req *q) {
    q->r->head_known = 1;
    /* its head query went out unbounded (before this process's first batch); when a batch opened meanwhile,
     * the answer may be that batch's own point (skipped by iq_head_row), so the earlier run's head is unknown:
     * every sequence below the first one this process gave out is the earlier run's, read up to there */
    if (q->probe_trusted && q->r->first_seq) iq_restore_raise(q, q->r->first_seq - 1);
    if (!q->tot.found) {
        iq_restore_without_snapshot(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql,
                "SELECT * FROM \"%s\" WHERE time >= %lld AND time <= %lld GROUP BY entity_id, " INFLUX_HOME_TAG ";"
                "SELECT * FROM \"%s\" WHERE time >= %lld AND time <= %lld GROUP BY " INFLUX_HOME_TAG,
                INFLUX_SUMMARY_MEASUREMENT, (long long)q->tot.snap_ns, (long long)q->tot.snap_ns,
                INFLUX_HOMES_MEASUREMENT, (long long)q->tot.snap_ns, (long long)q->tot.snap_ns);
    iq_send(q, &sql, iq_snapshot_row, iq_restore_snapshot_read);
}

/* Starts the one restore (in the background when memory already answers). -1 when it cannot start. */
static int iq_restore_start(influx_reads *r) {
    if (r->restoring) return 0;
    iq_req *q = iq_new_r(r, iq_restore_cb, NULL);
    if (!q) return -1;
    q->building = 1;
    r->restoring = 1;
    r->restore_q = q;
    r->restores++;
    q->target_seq = r->settled; /* the feed is read up to here, the batches after it are kept */
    q->target_ns = r->settle_ns;
    if (r->cache_state == 0) r->cache_state = 1;
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql, "SELECT * FROM \"%s\" ORDER BY time DESC LIMIT 1;SHOW SERIES FROM \"%s\" LIMIT 1;"
                      "SHOW TAG VALUES FROM \"%s\",\"%s\" WITH KEY = \"" INFLUX_HOME_TAG "\" LIMIT 1;",
                INFLUX_TOTALS_MEASUREMENT, IQ_EVENTS, INFLUX_FEED_MEASUREMENT, IQ_DEAD);
    influx_feed_sql_head(&sql, r->first_seq);
    q->probe_trusted = r->first_seq == 0;
    iq_send(q, &sql, iq_totals_head_row, iq_restore_snapshot);
    return 0;
}

/* Runs resume(q) once the entity list and totals are in memory (at once when
 * they are; a stale memory answers while a restore runs behind it). */
static void iq_with_cache(iq_req *q, iq_step_fn resume) {
    influx_reads *r = q->r;
    if (r->cache_state == 2) {
        if (r->stale) (void)iq_restore_start(r);
        resume(q);
        return;
    }
    q->resume = resume;
    q->next_wait = r->waiting;
    r->waiting = q;
    if (r->cache_state == 0 && iq_restore_start(r) != 0) {
        r->waiting = q->next_wait;
        iq_finish(q, -1, "out of memory");
    }
}

void store_influx_entities(store *s, const store_entity_query *eq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->search = iq_dup(eq->search, &oom);
    q->domain = iq_dup(eq->domain, &oom);
    q->home = eq->home_id ? iq_dup(influx_points_home_value(eq->home_id), &oom) : NULL;
    q->limit = eq->limit;
    if (oom) iq_finish(q, -1, "out of memory");
    else iq_with_cache(q, iq_entities_from_cache);
}

/* ---- series ------------------------------------------------------------------ */

static int iq_segment_close(iq_segment *g, int64_t end_us, store_rows *rows) {
    if (!g->open) return 0;
    char a[EVENT_TIME_LEN], b2[EVENT_TIME_LEN];
    event_time_format(g->start_us, a);
    event_time_format(end_us, b2);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"start\":\"%s\",\"end\":\"%s\",\"state\":", a, b2);
    json_text_string(&b, g->state, strlen(g->state));
    sbuf_addc(&b, '}');
    free(g->state);
    g->state = NULL;
    g->open = 0;
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

/* One state at t (us), in time order: a new segment unless it repeats the open one. */
static int iq_timeline_point(iq_req *q, int64_t t, const char *st) {
    if (!st || q->truncated) return 0;
    if (t < q->start_us) t = q->start_us; /* the state the range starts in */
    iq_segment *g = &q->seg;
    if (g->open && strcmp(g->state, st) == 0) return 0;
    if ((long)q->rows.n >= q->max_segments) {
        q->truncated = 1;
        return 0;
    }
    if (iq_segment_close(g, t, &q->rows) != 0) return -1;
    g->open = 1;
    g->start_us = t;
    return (g->state = strdup(st)) ? 0 : -1;
}

static int iq_timeline_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags;
    return iq_timeline_point(q, iq_int(cols, vals, "time", NULL) / 1000, iq_str(cols, vals, stmt == 0 ? "last" : "state"));
}

static void iq_timeline_answer(iq_req *q) {
    int64_t now = service_now_us(), end = q->end_us < now ? q->end_us : now;
    if (end < q->seg.start_us) end = q->seg.start_us;
    if (!q->truncated && iq_segment_close(&q->seg, end, &q->rows) != 0) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    sbuf_printf(&q->meta, ",\"kind\":\"timeline\",\"truncated\":%s", q->truncated ? "true" : "false");
    iq_finish(q, 0, NULL);
}

static int iq_bucket_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    int ok;
    long long n = (long long)iq_int(cols, vals, "count", &ok);
    if (!ok || n == 0) return 0;
    char t[EVENT_TIME_LEN];
    event_time_format(iq_int(cols, vals, "time", NULL) / 1000, t);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"t\":\"%s\"", t);
    const char *k[3] = {"min", "mean", "max"};
    for (int i = 0; i < 3; i++) {
        int c = iq_col(cols, k[i]);
        sbuf_printf(&b, ",\"%s\":", k[i]);
        json_text_real(&b, json_number_value(json_array_get(vals, (size_t)c)));
    }
    sbuf_printf(&b, ",\"count\":%lld}", n);
    return store_rows_add(&q->rows, sbuf_take(&b, NULL));
}

static void iq_bucket_answer(iq_req *q) {
    sbuf_printf(&q->meta, ",\"kind\":\"numeric\",\"bucket_s\":");
    json_text_real(&q->meta, (double)q->width_us / 1e6);
    iq_finish(q, 0, NULL);
}

static int iq_kind_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags, (void)cols, (void)vals;
    if (stmt == 0) q->exists = 1;
    else q->numeric = 1;
    return 0;
}

/* The series answer's head on both schemas: the entity and the range asked for. */
static void iq_series_head(iq_req *q) {
    char a[EVENT_TIME_LEN], b[EVENT_TIME_LEN];
    event_time_format(q->start_us, a);
    event_time_format(q->end_us, b);
    sbuf_adds(&q->meta, "\"entity_id\":");
    json_text_string(&q->meta, q->entity_id, strlen(q->entity_id));
    sbuf_printf(&q->meta, ",\"start\":\"%s\",\"end\":\"%s\"", a, b);
}

static void iq_series_read(iq_req *q) {
    if (!q->exists) {
        snprintf(q->err, sizeof q->err, "entity_id: no events stored for %.200s", q->entity_id);
        iq_finish(q, 1, q->err);
        return;
    }
    iq_series_head(q);
    long long lo = (long long)influx_time_ns_sat(q->start_us), hi = (long long)influx_time_ns_sat(q->end_us);
    sbuf sql;
    int first = 1;
    sbuf_init(&sql);
    if (q->numeric) {
        int64_t span = q->end_us - q->start_us;
        q->width_us = (span + q->points - 1) / q->points;
        if (q->width_us < 1) q->width_us = 1;
        int64_t off = ((q->start_us % q->width_us) + q->width_us) % q->width_us;
        sbuf_printf(&sql, "SELECT min(value), mean(value), max(value), count(value) FROM \"%s\"", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where_tag(&sql, &first, INFLUX_HOME_TAG, q->home);
        /* SQLite's rule is "a value under a state with a digit". When every value this entity
         * ever had came with a digit (kept in memory), a point has a value exactly when it
         * counts, and the regex on the state string -- about half of influxd's time for a
         * 30-day series (bench/admin.sh) -- is left out. */
        iq_where(&sql, &first, q->has_state ? "event_type = 'state_changed'" : IQ_NUMERIC_STATE);
        sbuf_printf(&sql, " AND time >= %lld AND time < %lld GROUP BY time(%lldu, %lldu) fill(none)", lo, hi,
                    (long long)q->width_us, (long long)off);
        iq_send(q, &sql, iq_bucket_row, iq_bucket_answer);
        return;
    }
    for (int k = 0; k < 2; k++) {
        first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", k ? "state" : "last(state)", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where_tag(&sql, &first, INFLUX_HOME_TAG, q->home);
        iq_where(&sql, &first, "event_type = 'state_changed'");
        if (k == 0) sbuf_printf(&sql, " AND time < %lld", lo);
        else sbuf_printf(&sql, " AND time >= %lld AND time < %lld ORDER BY time ASC", lo, hi);
    }
    iq_send(q, &sql, iq_timeline_row, iq_timeline_answer);
}

static void iq_ha_series(iq_req *q);

void store_influx_series(store *s, const store_series_query *sq, store_read_cb cb, void *arg) {
    influx_reads *rd = store_influx_reads(s);
    iq_req *q = rd->ha_schema ? iq_new_any(rd, cb, arg) : iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->entity_id = iq_dup(sq->entity_id, &oom);
    q->home = sq->home_id ? iq_dup(influx_points_home_value(sq->home_id), &oom) : NULL;
    q->start_us = sq->start_us;
    q->end_us = sq->end_us;
    q->points = sq->points;
    q->max_segments = sq->max_segments;
    if (oom) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    influx_reads *r = q->r;
    if (r->ha_schema) {
        iq_ha_series(q);
        return;
    }
    if (r->cache_state == 2 && !r->stale) { /* the kind from memory: no scan of the entity's points for it */
        /* the entity's entries of the home asked (or of every home), adjacent in the table */
        const influx_entity *e = influx_entities_first(&r->cache, q->entity_id), *end = r->cache.e + r->cache.n;
        int mixed = 0;
        q->exists = q->numeric = 0;
        for (; e && e < end && strcmp(e->id, q->entity_id) == 0; e++) {
            if (q->home && strcmp(influx_entity_home(e), q->home) != 0) continue;
            q->exists = 1;
            q->numeric |= e->numeric;
            mixed |= e->mixed;
        }
        q->has_state = q->exists && !mixed; /* reused: no value under a digitless state, the regex can go */
        iq_series_read(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    for (int k = 0; k < 2; k++) {
        int first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", k ? "last(value)" : "last(event_id)", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where_tag(&sql, &first, INFLUX_HOME_TAG, q->home);
        if (k) iq_where(&sql, &first, IQ_NUMERIC_STATE);
    }
    iq_send(q, &sql, iq_kind_row, iq_series_read);
}

/* ---- series on INFLUXDB_SCHEMA=homeassistant ------------------------------------
 * HA's points: any measurement (the unit, by default), tags domain and
 * entity_id = the object id, field `value` for a number (and 1/0 for on/off),
 * field `state` only for a state that is not a number (ha_point.c). So an
 * entity is numeric when its points hold values and never a state string;
 * the statements read every measurement (FROM /.+/) and the answers, one
 * series per measurement, are merged here: buckets by their index (a unit
 * change moves an entity to another measurement), states by time. */

static void iq_ha_where(iq_req *q, sbuf *sql) {
    const char *dot = strchr(q->entity_id, '.');
    char dom[64];
    size_t n = (size_t)(dot - q->entity_id);
    snprintf(dom, sizeof dom, "%.*s", (int)(n < sizeof dom ? n : sizeof dom - 1), q->entity_id);
    /* ::tag: a key that is a field in another measurement (homeiq_summary's domain, an
     * attribute HA wrote as a field) would otherwise make InfluxDB match nothing at all */
    /* home= (issue 18): another home's HA points carry its home_id tag (ha_point.h), the default home's none */
    const char *key[3] = {"domain", "entity_id", INFLUX_HOME_TAG}, *val[3] = {dom, dot + 1, q->home};
    for (int k = 0; k < (q->home ? 3 : 2); k++) {
        sbuf form;
        sbuf_init(&form);
        lineproto_tag_form(&form, val[k]);
        sbuf_adds(sql, k ? " AND " : " WHERE ");
        influxql_ident(sql, key[k]);
        sbuf_adds(sql, "::tag = ");
        influxql_string(sql, form.data ? form.data : "");
        sbuf_free(&form);
    }
}

static int iq_ha_bucket_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    int ok;
    long long n = (long long)iq_int(cols, vals, "count", &ok);
    int64_t idx = (iq_int(cols, vals, "time", NULL) / 1000 - q->start_us) / q->width_us;
    if (!ok || n == 0 || idx < 0 || idx >= q->points) return 0;
    iq_ha_bucket *b = &q->hb[idx];
    double mn = json_number_value(json_array_get(vals, (size_t)iq_col(cols, "min")));
    double mx = json_number_value(json_array_get(vals, (size_t)iq_col(cols, "max")));
    double mean = json_number_value(json_array_get(vals, (size_t)iq_col(cols, "mean")));
    if (b->n == 0 || mn < b->min) b->min = mn;
    if (b->n == 0 || mx > b->max) b->max = mx;
    b->sum += mean * (double)n;
    b->n += n;
    return 0;
}

static void iq_ha_bucket_answer(iq_req *q) {
    for (long i = 0; i < q->points; i++) {
        const iq_ha_bucket *hb = &q->hb[i];
        if (!hb->n) continue;
        char t[EVENT_TIME_LEN];
        event_time_format(q->start_us + i * q->width_us, t);
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "{\"t\":\"%s\",\"min\":", t);
        json_text_real(&b, hb->min);
        sbuf_adds(&b, ",\"mean\":");
        json_text_real(&b, hb->sum / (double)hb->n);
        sbuf_adds(&b, ",\"max\":");
        json_text_real(&b, hb->max);
        sbuf_printf(&b, ",\"count\":%lld}", hb->n);
        if (store_rows_add(&q->rows, sbuf_take(&b, NULL)) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
    }
    iq_bucket_answer(q);
}

static int iq_ha_state_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags;
    const char *st = iq_str(cols, vals, stmt == 0 ? "last" : "state");
    if (!st) return 0;
    if (q->nhs == q->caphs) {
        size_t cap = q->caphs ? q->caphs * 2 : 256;
        iq_ha_state *p = realloc(q->hs, cap * sizeof *p);
        if (!p) return -1;
        q->hs = p;
        q->caphs = cap;
    }
    iq_ha_state *h = &q->hs[q->nhs];
    h->t_us = iq_int(cols, vals, "time", NULL) / 1000;
    h->before = stmt == 0;
    if (!(h->state = strdup(st))) return -1;
    q->nhs++;
    return 0;
}

static int iq_cmp_ha_state(const void *a, const void *b) {
    const iq_ha_state *x = a, *y = b;
    if (x->before != y->before) return x->before ? -1 : 1; /* the state before the range first */
    return x->t_us < y->t_us ? -1 : x->t_us > y->t_us;
}

static void iq_ha_timeline_answer(iq_req *q) {
    qsort(q->hs, q->nhs, sizeof *q->hs, iq_cmp_ha_state);
    size_t i = 0, last_before = SIZE_MAX;
    for (; i < q->nhs && q->hs[i].before; i++) last_before = i; /* one per measurement: the latest */
    if (last_before != SIZE_MAX && iq_timeline_point(q, q->hs[last_before].t_us, q->hs[last_before].state) != 0) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    for (; i < q->nhs; i++)
        if (iq_timeline_point(q, q->hs[i].t_us, q->hs[i].state) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
    iq_timeline_answer(q);
}

static void iq_ha_series_read(iq_req *q) {
    q->exists = q->numeric || q->has_state;
    q->numeric = q->numeric && !q->has_state;
    if (!q->exists) {
        snprintf(q->err, sizeof q->err, "entity_id: no points stored for %.200s", q->entity_id);
        iq_finish(q, 1, q->err);
        return;
    }
    iq_series_head(q);
    long long lo = (long long)influx_time_ns_sat(q->start_us), hi = (long long)influx_time_ns_sat(q->end_us);
    sbuf sql;
    sbuf_init(&sql);
    if (q->numeric) {
        int64_t span = q->end_us - q->start_us;
        q->width_us = (span + q->points - 1) / q->points;
        if (q->width_us < 1) q->width_us = 1;
        int64_t off = ((q->start_us % q->width_us) + q->width_us) % q->width_us;
        if (!(q->hb = calloc((size_t)q->points, sizeof *q->hb))) {
            sbuf_free(&sql);
            iq_finish(q, -1, "out of memory");
            return;
        }
        sbuf_adds(&sql, "SELECT min(value), mean(value), max(value), count(value) FROM /.+/");
        iq_ha_where(q, &sql);
        sbuf_printf(&sql, " AND time >= %lld AND time < %lld GROUP BY time(%lldu, %lldu) fill(none)", lo, hi,
                    (long long)q->width_us, (long long)off);
        iq_send(q, &sql, iq_ha_bucket_row, iq_ha_bucket_answer);
        return;
    }
    sbuf_adds(&sql, "SELECT last(state) FROM /.+/");
    iq_ha_where(q, &sql);
    sbuf_printf(&sql, " AND time < %lld;SELECT state FROM /.+/", lo);
    iq_ha_where(q, &sql);
    sbuf_printf(&sql, " AND time >= %lld AND time < %lld", lo, hi);
    iq_send(q, &sql, iq_ha_state_row, iq_ha_timeline_answer);
}

static int iq_ha_kind_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags, (void)cols, (void)vals;
    if (stmt == 0) q->numeric = 1; /* holds values */
    else q->has_state = 1;         /* holds state strings */
    return 0;
}

static void iq_ha_series(iq_req *q) {
    if (!strchr(q->entity_id, '.')) {
        snprintf(q->err, sizeof q->err, "entity_id: no points stored for %.200s", q->entity_id);
        iq_finish(q, 1, q->err);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    sbuf_adds(&sql, "SELECT last(value) FROM /.+/");
    iq_ha_where(q, &sql);
    sbuf_adds(&sql, ";SELECT last(state) FROM /.+/");
    iq_ha_where(q, &sql);
    iq_send(q, &sql, iq_ha_kind_row, iq_ha_series_read);
}

/* ---- stats ------------------------------------------------------------------- */

enum { IQ_ST_SECOND, IQ_ST_DOMAIN, IQ_ST_DISK };

static int iq_stats_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    int64_t n = iq_int(cols, vals, "count", NULL);
    switch (stmt + q->stmt_off) {
    case IQ_ST_SECOND: {
        int64_t i = iq_int(cols, vals, "time", NULL) / 1000000000 - q->from_s;
        if (i >= 0 && i < q->window_s) q->per_second[i] += n; /* one series per measurement read */
        return 0;
    }
    case IQ_ST_DOMAIN: { /* summed here: a domain may come once per measurement read */
        const char *d = iq_tagv(tags, "domain");
        if (n == 0) return 0;
        if (!q->per_domain && !(q->per_domain = json_object())) return -1;
        json_t *have = json_object_get(q->per_domain, d ? d : "");
        return json_object_set_new_nocheck(q->per_domain, d ? d : "", json_integer(json_integer_value(have) + n));
    }
    case IQ_ST_DISK: {
        const char *db = iq_tagv(tags, "database");
        if (db && strcmp(db, q->r->db) == 0) q->store_bytes += iq_int(cols, vals, "diskBytes", NULL);
        return 0;
    }
    }
    return 0;
}

static void iq_stats_answer(iq_req *q) {
    influx_reads *r = q->r;
    if (q->disk_asked) {
        r->store_bytes = q->store_bytes;
        r->store_bytes_us = service_now_us();
    }
    const char *dk;
    json_t *dv;
    json_object_foreach(q->per_domain, dk, dv) {
        if (q->meta.len && q->meta.data[q->meta.len - 1] != '{') sbuf_addc(&q->meta, ',');
        json_text_string(&q->meta, dk, strlen(dk));
        sbuf_printf(&q->meta, ":%lld", (long long)json_integer_value(dv));
    }
    sbuf_addc(&q->meta, '}'); /* closes per_domain */
    sbuf tail;
    sbuf_init(&tail);
    /* totals, entities and the head from memory (restored once, then kept by the write path);
     * home= (issue 18): that home's totals and entities (the head and the store's size are every home's) */
    long long events = r->tot.events, dead = r->tot.dead + r->late.n, entities = (long long)r->cache.n;
    if (q->home) {
        const influx_home *h = influx_homes_find(&r->homes, q->home);
        events = h ? h->events : 0;
        dead = (h ? h->dead : 0) + (r->late.n && strcmp(r->late.home, q->home) == 0 ? r->late.n : 0); /* held apart */
        entities = 0;
        for (size_t i = 0; i < r->cache.n; i++) entities += strcmp(influx_entity_home(&r->cache.e[i]), q->home) == 0;
    }
    sbuf_printf(&tail,
                "\"events_total\":%lld,\"dead_letters_total\":%lld,\"backend\":\"influxdb\",\"entities\":%lld,"
                "\"store_bytes\":%lld,\"cursor\":%lld,\"window_s\":%ld,\"per_second\":[",
                events, dead, entities, (long long)r->store_bytes, (long long)r->head, q->window_s);
    long long sum = 0;
    for (long i = 0; i < q->window_s; i++) {
        sbuf_printf(&tail, "%s%lld", i ? "," : "", q->per_second[i]);
        sum += q->per_second[i];
    }
    sbuf_printf(&tail, "],\"window_events\":%lld,", sum);
    sbuf_add(&tail, q->meta.data ? q->meta.data : "", q->meta.len);
    sbuf_free(&q->meta);
    q->meta = tail;
    iq_finish(q, 0, NULL);
}

/* The window from memory when it covers it (the memory took over before the
 * window began), else from InfluxDB; the store's size at most every 10 s.
 * One home's window (home=, issue 18) is asked from InfluxDB: the memory's
 * window counts every home's events. */
static void iq_stats_send(iq_req *q) {
    influx_reads *r = q->r;
    int from_memory = !q->home && !r->stale && r->win.from_s && q->from_s > r->win.from_s;
    int ask_disk = !r->store_bytes_us || service_now_us() - r->store_bytes_us >= IQ_DISK_EVERY_US;
    if (from_memory) {
        for (long i = 0; i < q->window_s; i++) q->per_second[i] = influx_window_count(&r->win, q->from_s + i);
        influx_window_domains(&r->win, q->from_s, q->from_s + q->window_s, &q->meta);
    }
    if (from_memory && !ask_disk) {
        iq_stats_answer(q);
        return;
    }
    long long from = (long long)q->from_s * 1000000000, to = (long long)(q->from_s + q->window_s) * 1000000000;
    sbuf sql;
    sbuf_init(&sql);
    q->stmt_off = from_memory ? IQ_ST_DISK : 0; /* SHOW STATS alone: its statement id is 0 */
    for (int k = 0; !from_memory && k < 2; k++) {
        int first = 1;
        sbuf_printf(&sql, "%sSELECT count(event_id) FROM %s", k ? ";" : "", IQ_RECORDS_FROM(r));
        iq_where_tag(&sql, &first, INFLUX_HOME_TAG, q->home);
        sbuf_printf(&sql, "%s time >= %lld AND time < %lld GROUP BY %s", first ? " WHERE" : " AND", from, to,
                    k ? "domain" : "time(1s)");
    }
    if (ask_disk) {
        sbuf_adds(&sql, from_memory ? "SHOW STATS FOR 'shard'" : ";SHOW STATS FOR 'shard'");
        q->tolerate_stmt = IQ_ST_DISK - q->stmt_off; /* SHOW STATS may need admin rights: store_bytes 0 then */
        q->disk_asked = 1;
    }
    iq_send(q, &sql, iq_stats_row, iq_stats_answer);
}

void store_influx_stats(store *s, const store_stats_query *stq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->home = stq->home_id ? iq_dup(influx_points_home_value(stq->home_id), &oom) : NULL;
    if (oom) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    q->window_s = stq->window_s;
    q->now_us = stq->now_us;
    q->from_s = q->now_us / 1000000 - q->window_s + 1;
    q->per_second = calloc((size_t)q->window_s, sizeof *q->per_second);
    if (!q->per_second) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    sbuf_adds(&q->meta, "\"per_domain\":{");
    iq_with_cache(q, iq_stats_send);
}

/* ---- homes (issue 18) -------------------------------------------------------- */

static int iq_cmp_home(const void *a, const void *b) {
    const influx_home *x = *(const influx_home *const *)a, *y = *(const influx_home *const *)b;
    return strcmp(x->home ? x->home : EVENT_HOME_DEFAULT, y->home ? y->home : EVENT_HOME_DEFAULT);
}

/* From memory: the homes with stored events, in home_id order (as SQLite and ClickHouse). */
static void iq_homes_answer(iq_req *q) {
    const influx_homes *t = &q->r->homes;
    const influx_home **v = t->n ? malloc(t->n * sizeof *v) : NULL;
    size_t n = 0;
    if (t->n && !v) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->h[i].events > 0) v[n++] = &t->h[i];
    if (n > 1) qsort(v, n, sizeof *v, iq_cmp_home);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *id = v[i]->home ? v[i]->home : EVENT_HOME_DEFAULT;
        sbuf b;
        sbuf_init(&b);
        sbuf_adds(&b, "{\"home_id\":");
        json_text_string(&b, id, strlen(id));
        sbuf_printf(&b, ",\"events\":%lld}", v[i]->events);
        rc = store_rows_add(&q->rows, sbuf_take(&b, NULL));
    }
    free(v);
    iq_finish(q, rc ? -1 : 0, rc ? "out of memory" : NULL);
}

void store_influx_homes(store *s, store_rows_cb cb, void *arg) {
    iq_req *q = calloc(1, sizeof *q);
    if (!q) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
        return;
    }
    *q = (iq_req){.r = store_influx_reads(s), .rows_cb = cb, .arg = arg, .tolerate_stmt = -1};
    sbuf_init(&q->meta);
    iq_with_cache(q, iq_homes_answer);
}

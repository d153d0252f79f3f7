/* store_influx.c -- the InfluxDB backend.
 *
 * Why it looks like this:
 *  - Writes go out through httpc on the event loop and the caller is answered
 *    from the 204, so "200 only after the commit" holds. Batches are a FIFO
 *    with INFLUXDB_WRITES_INFLIGHT (default 2, at most INFLUX_WRITES_MAX:
 *    what the feed tracks open, store_influx.h) written at a time: the next batch
 *    starts once the one before has sent its last request, so influxd parses
 *    one while the other is on its way. The duplicate check stays honest: a
 *    batch also counts the ids and times of every batch being written before
 *    it (that one stores them, or fails and takes exactly the batches that
 *    counted on it down with it: influx_job.relied), and batches finish --
 *    statistics, the answer, the feed's head -- in order. Why 2 and not more
 *    (session 10, docs/BENCHMARKS.md): a batch's statistics run when it is the
 *    oldest; with more batches ahead already in InfluxDB, the statistics' slow
 *    path finds raw states after the batch and never seeds its running state,
 *    so every batch takes the slow path (~2.8 s instead of ~35 ms) and a burst
 *    collapses. With INFLUXDB_STATISTICS=0 four were no faster than two on
 *    a loaded machine (influxd's CPU was the limit there).
 *    A step of the statistics catch-up (stats_influx_catchup.h, on the purge
 *    timer) runs only when no batch is started: both compute statistics from
 *    the rows the other wrote.
 *  - Duplicates: InfluxDB silently overwrites an identical point, so to report
 *    them we first ask which event_ids already exist in the batch's time
 *    window, and skip those (a re-post writes nothing). On the homeassistant
 *    schema an HA point's event_id is in its identity point (influx_ids.h).
 *    Memory answers for the times above its horizon (influx_recent.h: what
 *    this process wrote), so a live batch asks no query; backfill, retries
 *    after a failed write and the first batch after a start still ask InfluxDB.
 *  - Under a steady trickle each request costs influxd ~0.5 ms of its CPU
 *    whatever its size: the statistics' rows are written coalesced, off the
 *    ack path (stats_influx_flush.h), and INFLUXDB_WRITE_LINGER_MS (off by
 *    default) holds a batch's start so the next one fills (influx_job_linger;
 *    docs/BENCHMARKS.md, issue 15).
 *  - A batch's lines are built a chunk at a time (INFLUXDB_CHUNK_LINES lines,
 *    about INFLUX_CHUNK_BYTES) as the chunks are sent, so a batch of 5,000 is
 *    never held as one 10 MB body.
 *  - Point time = time_fired in ns. time_fired has microseconds, so the three
 *    sub-microsecond digits are free: each point gets an offset derived from
 *    its event_id and bumped past any time already taken in the window, so
 *    two different events in one series and microsecond never overwrite each
 *    other.
 *  - A 400/413 ("partial write", "unable to parse", "field type conflict")
 *    names bad lines but the good ones must not be lost: the failing chunk is
 *    bisected down to single lines; good lines are stored (again -- identical
 *    points overwrite themselves), bad ones become dead letters with
 *    InfluxDB's error. Any other answer, or none, fails the batch (503).
 *  - Dead letters live in the measurement homeiq_dead_letters of the same
 *    database, written in the same request as the batch, with a unique
 *    per-process nanosecond time each (so none overwrites another).
 *  - Exact read-back: the full record JSON is the string field "record"; the
 *    other fields/tags exist for InfluxQL users and for filtering.
 *  - v1 (/write?db=, basic auth) or v2/v3 (/api/v2/write?org=&bucket=,
 *    "Authorization: Token"). Queries use InfluxQL /query, which 2.x (with a
 *    DBRP mapping) and 3.x also serve; db = bucket there. Only v1 is tested
 *    here (Debian ships influxdb 1.6).
 *
 * What is where: this file is the transport (requests to /write, /query and
 * /ping through httpc), the write queue with its duplicate check and
 * splitting, the reads, health and configuration. What a point holds is
 * influx_points.c (HomeIQ's schema) or influx_ha.c (HA's); reading a /query
 * answer is influx_answer.c; the id and time sets of the duplicate check are
 * influx_set.c; statistics, retention policies and the dashboard's reads are
 * stats_influx.c (with stats_influx_catchup.c), retention_influx.c and
 * influx_query.c, reached through the small io structs below.
 *
 * Ownership: store_influx owns its httpc, its queue of jobs (each job owns
 * its request body, line index and sets; the batch stays the caller's until
 * the callback) and the modules above; store_influx_close answers every job
 * still queued with "shutting down". */
#include "store_influx.h"
#include "influx_time.h"
#include "url.h"
#include "config.h"
#include "httpc.h"
#include "influx_ha.h"
#include "influx_ids.h"
#include "stats_influx.h"
#include "stats_influx_catchup.h"
#include "influx_registry.h"
#include "retention_influx.h"
#include "retention_influx_purge.h"
#include "influx_query.h"
#include "influx_answer.h"
#include "influx_page.h"
#include "influx_points.h"
#include "influx_set.h"
#include "influx_recent.h"
#include "lineproto.h"
#include "log.h"
#include "service.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct influx_job influx_job;

typedef struct store_influx {
    store base;
    struct event_base *evb;
    httpc *http;
    char *url, *db, *org, *bucket, *userpwd, *auth_header;
    int api_version;
    long timeout_ms, chunk_lines, ping_ms, linger_ms;
    influx_event_fields event_fields;   /* INFLUXDB_EVENT_FIELDS (influx_points.h) */
    int inflight;                       /* INFLUXDB_WRITES_INFLIGHT: jobs started at a time (<= INFLUX_WRITES_MAX) */
    unsigned long long next_seq;        /* the next started job's number (influx_job.seq) */
    int up, db_ready, ping_inflight, create_inflight, closing;
    char last_error[256];
    struct event *ping_timer;
    struct event *linger_timer;         /* INFLUXDB_WRITE_LINGER_MS: the next batch's start, when it waits */
    int64_t last_start_us;              /* monotonic: when the last batch started */
    unsigned long long linger_held;     /* batches whose start waited for it */
    influx_job *queue, *queue_tail;     /* FIFO: the oldest unfinished job first; the started ones (at most inflight) lead */
    int64_t last_dead_ns;
    influx_ha *ha;                      /* INFLUXDB_SCHEMA=homeassistant, else NULL */
    stats_influx *stats;                /* long-term statistics (stats_influx.h), NULL when STATISTICS=0 */
    stats_influx_catchup *catchup;      /* statistics of older history (v1, either schema), else NULL */
    int catchup_busy, catchup_wanted;   /* a step in flight (batches wait) / wanted after the running batch */
    retention_influx *retention;        /* database and retention policies (v1), NULL for v2/v3 */
    retention_influx_purge *purge;      /* RETENTION_OVERRIDES (v1), NULL when none */
    influx_reads *reads;                /* the dashboard's reads and their feed index (influx_query.h) */
    influx_registry *registry;          /* GET /api/v1/registry's points (influx_registry.h; issue 11) */
    influx_recent *recent;              /* the duplicate check from memory (influx_recent.h; issue 15) */
    unsigned long long dup_queries, dup_memory; /* duplicate-check requests sent / batches answered by memory */
    unsigned long long dup_replans;     /* checks planned again: memory forgot something meanwhile */
    unsigned long long started, started_behind; /* batches started / of them, while the one before was in flight */
} store_influx;

/* ---- small helpers ---------------------------------------------------- */

static void influx_urlencode(sbuf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~') {
            sbuf_addc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sbuf_add(b, e, 3);
        }
    }
}

static void influx_set_down(store_influx *s, const char *detail) {
    snprintf(s->last_error, sizeof s->last_error, "influxdb_unreachable: %.200s", detail ? detail : "");
    if (s->up) log_warn("influxdb unavailable: %s", s->last_error);
    s->up = 0;
}

/* InfluxDB's {"error":"..."} text, or the raw body. */
static void influx_error_text(const httpc_response *r, char *out, size_t n) {
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e) snprintf(out, n, "%s", e);
    else if (r->status == 0) snprintf(out, n, "%s", r->error ? r->error : "no response");
    else snprintf(out, n, "HTTP %ld: %.200s", r->status, r->body_len ? r->body : "");
    json_decref(j);
}

static int influx_send(store_influx *s, const char *method, const char *url, const char *ctype, const char *body,
                       size_t len, httpc_done_cb cb, void *arg) {
    const char *headers[3] = {NULL, NULL, NULL};
    int h = 0;
    if (ctype) headers[h++] = ctype;
    if (s->auth_header) headers[h++] = s->auth_header;
    httpc_request req = {.method = method, .url = url, .headers = headers, .body = body, .body_len = len,
                         .timeout_ms = s->timeout_ms, .userpwd = s->userpwd};
    return httpc_send(s->http, &req, cb, arg);
}

/* POST /query with q=<sql> (and db=, epoch=ns, chunked). */
static int influx_query_send(store_influx *s, const char *sql, int with_db, httpc_done_cb cb, void *arg) {
    sbuf url, form;
    sbuf_init(&url);
    sbuf_init(&form);
    sbuf_printf(&url, "%s/query?epoch=ns&chunked=true&chunk_size=10000", s->url);
    if (with_db) {
        sbuf_adds(&url, "&db=");
        influx_urlencode(&url, s->db);
    }
    sbuf_adds(&form, "q=");
    influx_urlencode(&form, sql);
    int rc = -1;
    if (!sbuf_failed(&url) && !sbuf_failed(&form))
        rc = influx_send(s, "POST", url.data, "Content-Type: application/x-www-form-urlencoded", form.data, form.len,
                         cb, arg);
    sbuf_free(&url);
    sbuf_free(&form);
    return rc;
}

/* ---- write jobs ------------------------------------------------------- */

typedef struct influx_line {
    size_t off, len;
    int item;   /* index into batch items, or -1 - dead letter index */
} influx_line;

typedef struct influx_range {
    size_t lo, hi;
} influx_range;

struct influx_job {
    store_influx *s;
    store_batch *b;
    store_write_cb cb;
    void *arg;
    influx_job *next;
    influx_set ids, times;
    uint64_t *ns;               /* per item: assigned point time */
    sbuf body;                  /* the lines of the chunk being written (INFLUX_CHUNK_BYTES) */
    influx_line *lines;
    size_t nlines, lines_cap;
    influx_range *stack;        /* ranges still to send */
    size_t nstack, stack_cap;
    size_t dead_written;        /* dead letters already turned into lines */
    size_t built;               /* items before this one have their lines built (and sent, but the chunk on the stack) */
    char stored_at[EVENT_TIME_LEN]; /* the batch's stored_at text, "" until the first chunk */
    influx_us_range *dup;       /* time ranges the duplicate check reads (influx_time.h) */
    size_t ndup, dup_next;      /* ranges, and the first not asked yet */
    unsigned char *by_memory;   /* per item: its check was left to memory (influx_recent_covers) */
    unsigned long long recent_epoch; /* influx_recent_epoch when the check was planned */
    int failed, stats_done, registry_done;
    int started;                /* its duplicate check (or probe) was sent: it counts as in flight */
    int assigned;               /* ids and times are in its sets: a later job's check reads them */
    int all_built;              /* every line built: its last request is out, the next job may start */
    int written;                /* every request answered (or failed): it finishes when it is the oldest */
    int finishing;              /* influx_job_finish runs (statistics, registry, then the answer) */
    int doomed;                 /* an earlier job it relied on failed: it fails too */
    unsigned long long seq;     /* its number, given when started (consecutive: started jobs are a prefix of the queue) */
    uint32_t relied;            /* bit d-1: its duplicate check or a time counted on the job started d before it
                                 * (influx_job_earlier_has); d < INFLUX_WRITES_MAX */
    int seqs_built;             /* its unused sequences were given back (influx_reads_batch_built) */
    int64_t seq_base, seq_next; /* its feed sequences (influx_reads_batch_open), the next one to give */
    influx_feed_batch feed;     /* the feed points of the chunk being built (influx_feed.h) */
    char err[256];
};

/* INFLUXDB_WRITES_INFLIGHT's ceiling (INFLUX_WRITES_MAX, store_influx.h: what the feed tracks): a job's
 * `relied` has a bit per job started before it. */
_Static_assert(INFLUX_WRITES_MAX >= 1 && INFLUX_WRITES_MAX <= 32, "influx_job.relied: a bit per earlier job");
/* influx_line.item of a feed point's line (influx_feed.h): no item of its own. */
#define INFLUX_LINE_FEED INT_MIN

static void influx_job_start(store_influx *s);
static int influx_dup_next(influx_job *j);

static void influx_job_free(influx_job *j) {
    influx_set_free(&j->ids);
    influx_set_free(&j->times);
    free(j->ns);
    sbuf_free(&j->body);
    free(j->lines);
    free(j->stack);
    free(j->dup);
    free(j->by_memory);
    influx_feed_batch_free(&j->feed);
    free(j);
}

/* Reports the job (rc -1 when failed), frees it and starts the next one. */
static void influx_job_stats_done(int rc, const char *err, void *arg);

static void influx_queue_advance(store_influx *s);

static void influx_job_finish(influx_job *j) {
    store_influx *s = j->s;
    store_batch *b = j->b;
    j->finishing = 1;
    if (j->doomed && !j->failed) { /* its duplicate check counted on an earlier batch that failed: retried */
        j->failed = 1;
        influx_recent_failed(s->recent);
        snprintf(j->err, sizeof j->err, "influxdb write failed: an earlier batch written at the same time failed");
    }
    int rc = j->failed ? -1 : 0;
    if (rc == 0 && s->stats && !j->stats_done && !s->closing) {
        j->stats_done = 1;  /* the batch is acknowledged only after its statistics (stats_influx.h) */
        /* its highest feed sequence: the statistics' mark passes it once its rows are stored */
        stats_influx_batch(s->stats, b, j->seq_next > 0 ? j->seq_next - 1 : 0, influx_job_stats_done, j);
        return;
    }
    if (rc == 0 && s->registry && !j->registry_done && !s->closing) {
        j->registry_done = 1; /* and after its registry changes (influx_registry.h) */
        influx_registry_batch(s->registry, b, influx_job_stats_done, j);
        return;
    }
    if (rc == 0) {
        b->stored = b->duplicates = 0;
        for (size_t i = 0; i < b->nitems; i++) {
            if (b->items[i].status == STORE_ITEM_STORED) b->stored++;
            else if (b->items[i].status == STORE_ITEM_DUPLICATE) b->duplicates++;
        }
        b->dead_lettered = b->ndead;
    }
    influx_reads_batch_done(s->reads, b, rc, j->seq_base);
    /* only a job whose check counted on this one fails with it (review-feed 2); one that counted on a job
     * between them fails when that one does, if it does */
    for (influx_job *n = j->next; rc != 0 && n && n->started; n = n->next)
        if (n->relied >> (n->seq - j->seq - 1) & 1u) n->doomed = 1;
    s->queue = j->next;
    if (!s->queue) s->queue_tail = NULL;
    store_write_cb cb = j->cb;
    void *arg = j->arg;
    char err[256];
    snprintf(err, sizeof err, "%s", j->err);
    influx_job_free(j);
    cb(b, rc, rc ? err : NULL, arg);
    influx_queue_advance(s);
}

/* Every request of j is answered: it finishes now if it is the oldest job,
 * else when the ones before it have (influx_queue_advance). */
static void influx_job_complete(influx_job *j) {
    j->written = 1;
    if (j == j->s->queue && !j->finishing) influx_job_finish(j);
}

/* The oldest job finishes when it is written; then jobs may start. */
static void influx_queue_advance(store_influx *s) {
    if (s->closing) return;
    if (s->queue && s->queue->written && !s->queue->finishing) influx_job_finish(s->queue);
    else influx_job_start(s);
}

static void influx_job_fail(influx_job *j, const char *why) {
    if (!j->failed) {
        j->failed = 1;
        influx_recent_failed(j->s->recent); /* InfluxDB may hold part of it, now or later: ask again */
        snprintf(j->err, sizeof j->err, "%.250s", why);
    }
    if (j->finishing) influx_job_finish(j); /* its statistics or registry step failed */
    else influx_job_complete(j);
}

static void influx_job_stats_done(int rc, const char *err, void *arg) {
    influx_job *j = arg;
    if (rc != 0) influx_job_fail(j, err ? err : "statistics update failed");
    else influx_job_finish(j);
}

static int influx_job_push(influx_job *j, size_t lo, size_t hi) {
    if (j->nstack == j->stack_cap) {
        size_t cap = j->stack_cap ? j->stack_cap * 2 : 32;
        influx_range *p = realloc(j->stack, cap * sizeof *p);
        if (!p) return -1;
        j->stack = p;
        j->stack_cap = cap;
    }
    j->stack[j->nstack++] = (influx_range){lo, hi};
    return 0;
}

static int influx_job_add_line(influx_job *j, size_t off, int item) {
    if (j->nlines == j->lines_cap) {
        size_t cap = j->lines_cap ? j->lines_cap * 2 : 256;
        influx_line *p = realloc(j->lines, cap * sizeof *p);
        if (!p) return -1;
        j->lines = p;
        j->lines_cap = cap;
    }
    j->lines[j->nlines++] = (influx_line){off, j->body.len - off, item};
    return 0;
}

/* Lines for dead letters [j->dead_written, b->ndead) and a range for them. */
static int influx_job_add_dead_lines(influx_job *j) {
    size_t first = j->nlines;
    for (; j->dead_written < j->b->ndead; j->dead_written++) {
        size_t off = j->body.len;
        influx_points_dead(&j->body, &j->b->dead[j->dead_written], &j->s->last_dead_ns, j->b->home_id);
        influx_reads_dead_built(j->s->reads, j->seq_base, j->s->last_dead_ns);
        if (influx_job_add_line(j, off, -1 - (int)j->dead_written) != 0) return -1;
    }
    if (sbuf_failed(&j->body)) return -1;
    for (size_t lo = first; lo < j->nlines; lo += (size_t)j->s->chunk_lines) {
        size_t hi = lo + (size_t)j->s->chunk_lines < j->nlines ? lo + (size_t)j->s->chunk_lines : j->nlines;
        if (influx_job_push(j, lo, hi) != 0) return -1;
    }
    return 0;
}

/* A request body holds at most chunk_lines lines and about this many bytes:
 * the line text of a batch of 5,000 events was ~10 MB held whole (16 MB of
 * buffer) before its first byte went out (issue 15: peak RSS <= 64 MB at any
 * batch setting). A batch of 1,000 (~2 MB) still goes in one request. */
#define INFLUX_CHUNK_BYTES (3u << 20)

/* Builds the next chunk of event lines into the (emptied) body and pushes its
 * range; once every event is built, the dead letters' lines. A line is built
 * once: a 400 bisects the chunk that holds it. */
static int influx_job_build(influx_job *j) {
    store_batch *b = j->b;
    sbuf_reset(&j->body);
    j->nlines = 0;
    if (!j->stored_at[0]) {
        b->stored_at_us = service_now_us();
        event_time_format(b->stored_at_us, j->stored_at);
        j->seq_next = j->seq_base = influx_reads_batch_open(j->s->reads, b->nitems); /* one per event it may write */
    }
    size_t chunk = (size_t)j->s->chunk_lines;
    for (; j->built < b->nitems && j->nlines < chunk && j->body.len < INFLUX_CHUNK_BYTES; j->built++) {
        size_t i = j->built;
        if (b->items[i].status != STORE_ITEM_PENDING) continue;
        size_t off = j->body.len;
        influx_ha_result ha = influx_ha_line(j->s->ha, b, &b->items[i], &j->body);
        if (ha == INFLUX_HA_OOM) return -1;
        if (ha == INFLUX_HA_NO_LINE) continue;
        const record_fields *f = store_item_fields(&b->items[i]);
        if (!f) return -1; /* a stored record is an object: only out of memory */
        if (ha == INFLUX_HA_NOT_MINE) influx_points_event(&j->body, &b->items[i], f, j->ns[i], j->stored_at, b->home_id,
                                                        j->s->event_fields);
        else influx_ids_line(&j->body, &b->items[i], f, j->ns[i], j->stored_at, b->home_id); /* HA's point: its identity (influx_ids.h) */
        influx_reads_feed_entry(j->s->reads, &j->feed, j->seq_next++, &b->items[i], f, j->ns[i]);
        if (influx_job_add_line(j, off, (int)i) != 0) return -1;
    }
    /* the chunk's feed: a few batch points, each a line of its own (a 400 bisected down to it fails the batch) */
    for (size_t k = 0; k < j->feed.npts; k++) {
        size_t off = j->body.len;
        influx_feed_batch_line(&j->feed, k, influx_points_home_value(b->home_id), &j->body);
        if (influx_job_add_line(j, off, INFLUX_LINE_FEED) != 0) return -1;
    }
    if (j->feed.failed) return -1;
    influx_feed_batch_reset(&j->feed);
    if (j->built >= b->nitems && !j->seqs_built) { /* every event built */
        j->seqs_built = 1;
        influx_reads_batch_built(j->s->reads, j->seq_base, j->seq_next);
    }
    if (sbuf_failed(&j->body)) return -1;
    if (j->nlines) return influx_job_push(j, 0, j->nlines);
    return influx_job_add_dead_lines(j); /* every event built (and sent): the dead letters */
}

/* The chunk just written: its events are stored (those not refused), and remembered (influx_recent.h). */
static void influx_job_mark_stored(influx_job *j) {
    for (size_t i = 0; i < j->nlines; i++) {
        int k = j->lines[i].item;
        if (k < 0 || j->b->items[k].status != STORE_ITEM_PENDING) continue;
        j->b->items[k].status = STORE_ITEM_STORED;
        (void)influx_recent_stored(j->s->recent, influx_set_id_key(j->b->items[k].event_id),
                                       j->b->items[k].event_id, j->ns[k]);
    }
    j->nlines = 0;
}

static void influx_write_done(const httpc_response *r, void *arg);

static void influx_write_url(store_influx *s, sbuf *url) {
    if (s->api_version == 2) {
        sbuf_printf(url, "%s/api/v2/write?precision=ns&org=", s->url);
        influx_urlencode(url, s->org ? s->org : "");
        sbuf_adds(url, "&bucket=");
        influx_urlencode(url, s->bucket);
    } else {
        sbuf_printf(url, "%s/write?precision=ns&db=", s->url);
        influx_urlencode(url, s->db);
    }
}

/* Sends the range on top of the stack, or finishes the job. */
static void influx_job_next(influx_job *j) {
    if (j->nstack == 0) {
        influx_job_mark_stored(j);
        if ((j->built < j->b->nitems || j->dead_written < j->b->ndead) && influx_job_build(j) != 0) {
            influx_job_fail(j, "out of memory");
            return;
        }
    }
    if (j->nstack == 0) {
        influx_job_complete(j);
        return;
    }
    int last = !j->all_built && j->built >= j->b->nitems && j->dead_written >= j->b->ndead;
    influx_range rg = j->stack[j->nstack - 1];
    const influx_line *lo = &j->lines[rg.lo], *hi = &j->lines[rg.hi - 1];
    sbuf url;
    sbuf_init(&url);
    influx_write_url(j->s, &url);
    int rc = sbuf_failed(&url) ? -1
                               : influx_send(j->s, "POST", url.data, "Content-Type: text/plain; charset=utf-8",
                                             j->body.data + lo->off, hi->off + hi->len - lo->off, influx_write_done, j);
    sbuf_free(&url);
    if (rc != 0) {
        influx_job_fail(j, "cannot start a request to InfluxDB");
    } else if (last) {
        j->all_built = 1; /* its last request is out: the next batch's may go while InfluxDB parses this one */
        influx_job_start(j->s);
    }
}

/* A line InfluxDB refused on its own: its event becomes a dead letter. */
static int influx_job_reject_line(influx_job *j, const influx_line *ln, const char *why) {
    if (ln->item < 0) return -1; /* a dead letter itself was refused: fail, the caller retries */
    store_item *it = &j->b->items[ln->item];
    char reason[300];
    snprintf(reason, sizeof reason, "influxdb refused the point: %.250s", why);
    log_warn("event %d (%s) refused by InfluxDB: %s", it->index, it->event_id, why);
    it->status = STORE_ITEM_REJECTED;
    free(it->error);
    it->error = strdup(reason);
    j->b->rejected_by_db++;
    return store_batch_add_dead(j->b, "data-storage", reason, it->json);
}

static void influx_write_done(const httpc_response *r, void *arg) {
    influx_job *j = arg;
    store_influx *s = j->s;
    char why[256];
    influx_range rg = j->stack[--j->nstack];
    if (s->closing) {
        influx_job_fail(j, "shutting down");
        return;
    }
    if (r->status == 204 || r->status == 200) {
        s->up = 1;
        influx_job_next(j);
        return;
    }
    influx_error_text(r, why, sizeof why);
    if (r->status == 400 || r->status == 413) {
        s->up = 1;
        if (rg.hi - rg.lo == 1) {
            if (influx_job_reject_line(j, &j->lines[rg.lo], why) != 0) {
                influx_job_fail(j, why);
                return;
            }
        } else {
            size_t mid = rg.lo + (rg.hi - rg.lo) / 2;
            if (influx_job_push(j, mid, rg.hi) != 0 || influx_job_push(j, rg.lo, mid) != 0) {
                influx_job_fail(j, "out of memory");
                return;
            }
        }
        influx_job_next(j);
        return;
    }
    if (r->status == 0) influx_set_down(s, why);
    else if (r->status == 404) { /* database gone: recreate on the next ping */
        s->db_ready = 0;
        influx_recent_reset(s->recent);
    }
    char msg[300];
    snprintf(msg, sizeof msg, "influxdb write failed: %.250s", why);
    influx_job_fail(j, msg);
}

/* ---- duplicate check -------------------------------------------------- */

static int influx_dup_row(const influx_answer_row *row, void *arg) {
    influx_job *j = arg;
    const char *id = influx_answer_str(row, "event_id");
    int64_t t = influx_answer_time(row);
    if (t && influx_set_put(&j->times, influx_set_mix((uint64_t)t), NULL) < 0) return -1;
    if (id && strlen(id) == EVENT_ID_LEN - 1 && influx_set_put(&j->ids, influx_set_id_key(id), id) < 0) return -1;
    return 0;
}

/* 1 when a job before j, still being written, holds the id (or, times: the
 * point time key): the earlier batch stores it, or failed and dooms j (every
 * such job is noted in j->relied: any of them failing dooms j). */
static int influx_job_earlier_has(influx_job *j, uint64_t key, const char *id, int times) {
    int has = 0;
    for (const influx_job *p = j->s->queue; p && p != j; p = p->next)
        if (p->assigned && influx_set_has(times ? &p->times : &p->ids, key, id)) {
            j->relied |= 1u << (j->seq - p->seq - 1);
            has = 1;
        }
    return has;
}

/* Marks duplicates (stored before, twice in this batch, or in the batch
 * written just before it) and gives every new event a free nanosecond time
 * within its microsecond. */
static int influx_job_assign(influx_job *j) {
    store_batch *b = j->b;
    influx_set seen = {0};
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        if (it->status != STORE_ITEM_PENDING) continue;
        uint64_t key = influx_set_id_key(it->event_id);
        /* an HA point's event_id is in its identity point (influx_ids.h), read by the check too */
        int in_db = j->ids.cap ? influx_set_put(&j->ids, key, it->event_id) : 0;
        if (in_db == 0 && influx_recent_has_id(j->s->recent, key, it->event_id)) in_db = 1; /* influx_recent.h */
        if (in_db == 0 && influx_job_earlier_has(j, key, it->event_id, 0)) in_db = 1; /* being written just before */
        int twice = influx_set_put(&seen, key, it->event_id);
        if (in_db < 0 || twice < 0) {
            influx_set_free(&seen);
            return -1;
        }
        if (in_db == 1 || twice == 1) {
            it->status = STORE_ITEM_DUPLICATE;
            continue;
        }
        unsigned off = (unsigned)(key % 1000);
        for (unsigned k = 0; k < 1000; k++) {
            uint64_t ns = (uint64_t)it->time_us * 1000 + (off + k) % 1000;
            int taken = influx_set_put(&j->times, influx_set_mix(ns), NULL);
            if (taken < 0) {
                influx_set_free(&seen);
                return -1;
            }
            if (!taken && influx_recent_has_time(j->s->recent, ns)) taken = 1;
            if (!taken && influx_job_earlier_has(j, influx_set_mix(ns), NULL, 1)) taken = 1;
            j->ns[i] = ns;
            influx_recent_sending(j->s->recent, ns);
            if (!taken) break;
        }
    }
    influx_set_free(&seen);
    return 0;
}

static int influx_dup_plan(influx_job *j, int again);

/* The check answered: ids and times assigned, then the write. Memory answers for what the plan left to it;
 * when it forgot something since (another write failed, a generation was evicted: influx_recent_epoch) the
 * items left to it that it no longer covers are asked first (influx_dup_done comes back here). */
static void influx_job_write(influx_job *j) {
    if (j->recent_epoch != influx_recent_epoch(j->s->recent)) {
        j->s->dup_replans++;
        if (influx_dup_plan(j, 1) != 0) {
            influx_job_fail(j, "out of memory");
            return;
        }
        int rc = influx_dup_next(j);
        if (rc == 0) return;
        if (rc < 0) {
            influx_job_fail(j, "cannot start a request to InfluxDB");
            return;
        }
    }
    if (influx_job_assign(j) != 0) {
        influx_job_fail(j, "out of memory");
        return;
    }
    j->assigned = 1;
    influx_job_next(j);
}

static void influx_dup_done(const httpc_response *r, void *arg) {
    influx_job *j = arg;
    store_influx *s = j->s;
    char why[256];
    if (s->closing) {
        influx_job_fail(j, "shutting down");
        return;
    }
    if (r->status != 200) {
        influx_error_text(r, why, sizeof why);
        if (r->status == 0) influx_set_down(s, why);
        char msg[300];
        snprintf(msg, sizeof msg, "influxdb duplicate check failed: %.250s", why);
        influx_job_fail(j, msg);
        return;
    }
    s->up = 1;
    /* "database not found" on a fresh database means nothing is stored yet (influx_answer.h) */
    if (influx_answer_walk(r->body, r->body_len, -1, influx_dup_row, j, why, sizeof why) != 0) {
        influx_job_fail(j, why);
        return;
    }
    int rc = influx_dup_next(j);
    if (rc == 1) influx_job_write(j);
    else if (rc != 0) influx_job_fail(j, "cannot start a request to InfluxDB");
}

/* Asks which event_ids already exist near the batch's own times: one SELECT
 * per range of influx_dup_ranges (times within a second of each other share
 * one), INFLUX_DUP_PER_QUERY statements per request, never the whole span
 * between the batch's first and last time (finding 8 of issue 14). */
#define INFLUX_DUP_PER_QUERY 64

/* Plans the queries: the items memory does not cover (it knows what is above its horizon, influx_recent.h).
 * again: the epoch moved since the last plan (influx_job_write): only the items left to memory then, and
 * not covered now, are asked (review inflight-1 F5: a re-post left to memory and forgotten before the
 * assign was neither asked nor remembered, so written twice and reported stored). */
static int influx_dup_plan(influx_job *j, int again) {
    store_batch *b = j->b;
    size_t cap = b->nitems ? b->nitems : 1;
    int64_t *t = malloc(cap * sizeof *t);
    if (!j->dup) j->dup = malloc(cap * sizeof *j->dup);
    if (!j->by_memory) j->by_memory = calloc(cap, 1);
    if (!t || !j->dup || !j->by_memory) {
        free(t);
        return -1;
    }
    j->recent_epoch = influx_recent_epoch(j->s->recent);
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        if (b->items[i].status != STORE_ITEM_PENDING || (again && !j->by_memory[i])) continue;
        j->by_memory[i] = (unsigned char)influx_recent_covers(j->s->recent, b->items[i].time_us);
        if (!j->by_memory[i]) t[n++] = b->items[i].time_us;
    }
    j->ndup = influx_dup_ranges(t, n, j->dup);
    j->dup_next = 0;
    free(t);
    return 0;
}

/* Sends the next request of the duplicate check; 1 when none is left. */
static int influx_dup_next(influx_job *j) {
    if (j->dup_next >= j->ndup) return 1;
    sbuf sql;
    sbuf_init(&sql);
    for (size_t k = 0; k < INFLUX_DUP_PER_QUERY && j->dup_next < j->ndup; k++, j->dup_next++) {
        const influx_us_range *r = &j->dup[j->dup_next];
        sbuf_printf(&sql, "%sSELECT event_id FROM %s WHERE time >= %lld AND time <= %lld", k ? ";" : "",
                    j->s->ha ? INFLUX_IDS_FROM_HA : INFLUX_IDS_FROM_HOMEIQ, (long long)r->lo * 1000,
                    (long long)r->hi * 1000 + 999);
    }
    int rc = sbuf_failed(&sql) || influx_query_send(j->s, sql.data, 1, influx_dup_done, j) != 0 ? -1 : 0;
    sbuf_free(&sql);
    if (rc == 0) j->s->dup_queries++;
    return rc;
}

/* The duplicate check proper: queries for what memory does not cover, then the write. */
static void influx_job_check(influx_job *j) {
    if (influx_dup_plan(j, 0) != 0 || influx_set_grow(&j->ids, 1) != 0) {
        influx_job_fail(j, "out of memory");
        return;
    }
    if (j->ndup == 0) j->s->dup_memory++;
    int rc = influx_dup_next(j);
    if (rc == 1) influx_job_write(j); /* memory answered, or only rejects and dead letters */
    else if (rc != 0) influx_job_fail(j, "cannot start a request to InfluxDB");
}

/* ---- the horizon of memory: the newest stored point, once per start (influx_recent.h) */

static int influx_probe_row(const influx_answer_row *row, void *arg) {
    int64_t *newest = arg;
    int64_t t = influx_answer_time(row);
    if (t > *newest) *newest = t;
    return 0;
}

static void influx_probe_done(const httpc_response *r, void *arg) {
    influx_job *j = arg;
    store_influx *s = j->s;
    char why[256];
    if (s->closing) {
        influx_job_fail(j, "shutting down");
        return;
    }
    int64_t newest = INT64_MIN;
    if (r->status != 200 || influx_answer_walk(r->body, r->body_len, -1, influx_probe_row, &newest, why,
                                               sizeof why) != 0) {
        if (r->status != 200) influx_error_text(r, why, sizeof why);
        if (r->status == 0) influx_set_down(s, why);
        char msg[300];
        snprintf(msg, sizeof msg, "influxdb duplicate check failed: %.250s", why);
        influx_job_fail(j, msg);
        return;
    }
    s->up = 1;
    influx_recent_probed(s->recent, newest != INT64_MIN, newest);
    influx_job_check(j);
}

static void influx_catchup_start(store_influx *s);

/* INFLUXDB_WRITE_LINGER_MS: a batch starts at least linger_ms after the one
 * before. Under a steady trickle ingestion sends the next batch as soon as the
 * last one is acknowledged, so each batch would carry a few events and cost
 * InfluxDB three writes (events, then the two statistics policies); holding
 * the start lets the next one fill (issue 15: influxd's cost per request). A
 * burst is not held: its batches take longer than that to write. 1 when j
 * waits (the timer starts it). */
static int influx_job_linger(store_influx *s) {
    if (s->linger_ms <= 0 || !s->linger_timer) return 0;
    if (evtimer_pending(s->linger_timer, NULL)) return 1;
    int64_t now = service_mono_us(), due = s->last_start_us + s->linger_ms * 1000;
    if (s->last_start_us && now < due) {
        struct timeval tv = {(time_t)((due - now) / 1000000), (suseconds_t)((due - now) % 1000000)};
        if (evtimer_add(s->linger_timer, &tv) == 0) {
            s->linger_held++;
            return 1;
        }
    }
    s->last_start_us = now;
    return 0;
}

static void influx_linger_fire(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    store_influx *s = arg;
    s->last_start_us = 0; /* due: start now */
    if (!s->closing) influx_job_start(s);
}

/* Starts the oldest job not started yet, when the one before it has sent its
 * last request and fewer than INFLUXDB_WRITES_INFLIGHT (default 2) are started. A wanted
 * catch-up step goes first, once no job is started (it and a batch compute
 * statistics from what the other wrote). */
static void influx_job_start(store_influx *s) {
    if (s->catchup_busy || s->closing) return; /* resumed when the catch-up step ends */
    influx_job *prev = NULL, *j = s->queue;
    int running = 0, failing = 0;
    for (; j && j->started; prev = j, j = j->next) running++, failing |= j->failed || j->doomed;
    if (s->catchup_wanted) {
        if (running == 0) influx_catchup_start(s);
        if (s->catchup_busy || running) return;
    }
    /* not beside a failed job: its check would count on what is retried (started when that one finishes) */
    if (!j || running >= s->inflight || failing || (prev && !prev->all_built) || influx_job_linger(s)) return;
    j->started = 1;
    j->seq = s->next_seq++;
    s->started++;
    if (running) s->started_behind++;
    if (!influx_recent_needs_probe(s->recent)) {
        influx_job_check(j);
        return;
    }
    char sql[128];
    influx_recent_probe_sql(sql, sizeof sql, s->ha ? INFLUX_IDS_FROM_HA : INFLUX_IDS_FROM_HOMEIQ);
    if (influx_query_send(s, sql, 1, influx_probe_done, j) != 0) influx_job_fail(j, "cannot start a request to InfluxDB");
}

/* Events whose time InfluxDB cannot hold are dead-lettered with the reason
 * (finding 7): time_us * 1000 must fit int64. */
static int influx_refuse_times(store_batch *b) {
    char why[200];
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        if (it->status != STORE_ITEM_PENDING || influx_time_check(it->time_us, why, sizeof why) == 0) continue;
        log_warn("event %d (%s) refused: %s", it->index, it->event_id, why);
        it->status = STORE_ITEM_REJECTED;
        free(it->error);
        it->error = strdup(why);
        b->rejected_by_db++;
        if (!it->error || store_batch_add_dead(b, "data-storage", why, it->json) != 0) return -1;
    }
    return 0;
}

static void store_influx_write_batch(store *base, store_batch *b, store_write_cb cb, void *arg) {
    store_influx *s = (store_influx *)base;
    influx_job *j = calloc(1, sizeof *j);
    if (j) j->ns = calloc(b->nitems ? b->nitems : 1, sizeof *j->ns);
    if (!j || !j->ns || s->closing) {
        free(j ? j->ns : NULL);
        free(j);
        cb(b, -1, s->closing ? "shutting down" : "out of memory", arg);
        return;
    }
    j->s = s;
    j->b = b;
    j->cb = cb;
    j->arg = arg;
    sbuf_init(&j->body);
    influx_feed_batch_init(&j->feed);
    if (influx_refuse_times(b) != 0) {
        free(j->ns);
        free(j);
        cb(b, -1, "out of memory", arg);
        return;
    }
    if (s->queue_tail) s->queue_tail->next = j;
    else s->queue = j;
    s->queue_tail = j;
    influx_job_start(s);
}

/* ---- what stats_influx.c needs (stats_influx_io) ------------------------ */

static int influx_io_query(void *ctx, const char *sql, httpc_done_cb cb, void *arg) {
    return ((store_influx *)ctx)->closing ? -1 : influx_query_send(ctx, sql, 1, cb, arg);
}

static int influx_io_write(void *ctx, const char *rp, const char *lines, size_t len, httpc_done_cb cb, void *arg) {
    store_influx *s = ctx;
    sbuf url;
    sbuf_init(&url);
    influx_write_url(s, &url);
    if (rp && s->api_version == 1) {
        sbuf_adds(&url, "&rp=");
        influx_urlencode(&url, rp);
    }
    int rc = s->closing || sbuf_failed(&url) ? -1
             : influx_send(s, "POST", url.data, "Content-Type: text/plain; charset=utf-8", lines, len, cb, arg);
    sbuf_free(&url);
    return rc;
}

static void influx_io_lost(void *ctx) {
    store_influx *s = ctx;
    if (s->db_ready) log_warn("a retention policy of %s is gone: preparing the database again", s->db);
    s->db_ready = 0;   /* the next ping runs retention_influx again */
}

static void store_influx_registry(store *base, const char *home, const char *entity_id, long limit,
                                  store_rows_cb cb, void *arg) {
    influx_registry_read(((store_influx *)base)->registry, home, entity_id, limit, cb, arg);
}

static void store_influx_stats_fetch(store *base, const char *home, const char *entity_id, int hourly,
                                     int64_t start_us, int64_t end_us, store_stats_cb cb, void *arg) {
    store_influx *s = (store_influx *)base;
    if (!s->stats) cb(STORE_QUERY_UNSUPPORTED, -1, NULL, 0, NULL, 0, arg);   /* STATISTICS=0 */
    else stats_influx_fetch(s->stats, home, entity_id, hourly, start_us, end_us, cb, arg);
}

/* ---- maintenance: the statistics catch-up, then RETENTION_OVERRIDES ---- */

static void influx_catchup_done(void *arg) {
    store_influx *s = arg;
    s->catchup_busy = 0;
    if (!s->closing) influx_job_start(s);
}

/* One catch-up step (stats_influx_catchup.h), only between two batches:
 * the statistics of both are computed from what the other wrote. */
static void influx_catchup_start(store_influx *s) {
    s->catchup_wanted = 0;
    if (s->closing || !s->catchup || s->catchup_busy) return;
    s->catchup_busy = 1;
    if (stats_influx_catchup_step(s->catchup, influx_catchup_done, s) != 1) s->catchup_busy = 0;
}

/* The catch-up first (raw events must not go before their statistics
 * exist), then one DELETE step (retention_influx_purge.h). */
static int store_influx_maintain(store *base, int64_t now_us) {
    store_influx *s = (store_influx *)base;
    if (!s->purge && !s->catchup) return 0;
    if (!s->db_ready) return -1;
    if (s->catchup && !stats_influx_catchup_done(s->catchup)) {
        if (s->catchup_busy || s->catchup_wanted) return 1;
        if (s->queue) s->catchup_wanted = 1;   /* after the running batch (influx_job_start) */
        else influx_catchup_start(s);
        return 1;
    }
    return s->purge ? retention_influx_purge_step(s->purge, now_us) : 0;
}

/* ---- reads ------------------------------------------------------------ */

typedef struct influx_read {
    store_influx *s;
    store_rows_cb cb;
    void *arg;
    store_rows rows;
    int dead;
    int merge;           /* two measurements: each answered offset+limit, merged here (influx_page.h) */
    long offset, limit;
    influx_page page;
} influx_read;

static int influx_event_row(const influx_answer_row *row, void *arg) {
    influx_read *rd = arg;
    const char *rec = influx_answer_str(row, "record");
    const char *id = influx_answer_str(row, "event_id");
    const char *at = influx_answer_str(row, "stored_at");
    int64_t at_us = 0;
    if (!rec || !id || !at || event_time_parse(at, &at_us) != 0 || strlen(id) != EVENT_ID_LEN - 1 ||
        strspn(id, "0123456789abcdef") != EVENT_ID_LEN - 1)
        return 0; /* a point not written by us */
    if (store_rows_add_event(&rd->rows, rec, strlen(rec), id, at_us) != 0) return -1;
    return rd->merge ? influx_page_note(&rd->page, influx_answer_time(row)) : 0;
}

static int influx_dead_row(const influx_answer_row *row, void *arg) {
    influx_read *rd = arg;
    int64_t ns = influx_answer_time(row);
    const char *raw = influx_answer_str(row, "raw");
    /* raw was written by us from valid JSON; check anyway, it is embedded as is */
    json_t *check = raw ? json_loads(raw, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    int rc = store_rows_add_dead(&rd->rows, (long long)ns, ns / 1000, influx_answer_str(row, "source"),
                                 influx_answer_str(row, "error"), check ? raw : "null");
    json_decref(check);
    return rc;
}

static void influx_read_done(const httpc_response *r, void *arg) {
    influx_read *rd = arg;
    char why[256];
    int rc = -1;
    if (rd->s->closing) {
        snprintf(why, sizeof why, "shutting down");
    } else if (r->status != 200) {
        influx_error_text(r, why, sizeof why);
        if (r->status == 0) influx_set_down(rd->s, why);
    } else {
        rd->s->up = 1;
        /* nothing written yet ("database not found") is an empty answer (influx_answer.h) */
        rc = influx_answer_walk(r->body, r->body_len, -1, rd->dead ? influx_dead_row : influx_event_row, rd, why,
                                sizeof why);
        if (rc == 0 && rd->merge && influx_page_cut(&rd->page, &rd->rows, rd->offset, rd->limit) != 0) {
            rc = -1;
            snprintf(why, sizeof why, "out of memory");
        }
    }
    rd->cb(&rd->rows, rc, rc ? why : NULL, rd->arg);
    store_rows_free(&rd->rows);
    influx_page_free(&rd->page);
    free(rd);
}

/* merge: the page of a two-measurement FROM list (influx_page.h), else NULL. */
static void influx_read_start(store_influx *s, const char *sql, int dead, const store_filter *merge, store_rows_cb cb,
                              void *arg) {
    influx_read *rd = calloc(1, sizeof *rd);
    if (!rd) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
        return;
    }
    *rd = (influx_read){.s = s, .cb = cb, .arg = arg, .dead = dead, .merge = merge != NULL};
    if (merge) rd->offset = merge->offset, rd->limit = merge->limit;
    if (s->closing || influx_query_send(s, sql, 1, influx_read_done, rd) != 0) {
        store_rows none = {0};
        free(rd);
        cb(&none, -1, "cannot start a request to InfluxDB", arg);
    }
}

static void influx_where_tag(sbuf *q, int *first, const char *key, const char *value) {
    if (!value) return;
    sbuf_adds(q, *first ? " WHERE " : " AND ");
    *first = 0;
    influxql_ident(q, key);
    sbuf_adds(q, " = ");
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, value);
    influxql_string(q, form.data ? form.data : "");
    sbuf_free(&form);
}

static void store_influx_query(store *base, const store_filter *f, store_rows_cb cb, void *arg) {
    store_influx *s = (store_influx *)base;
    const char *from;
    int merge = influx_ha_query_from(s->ha, f, &from) > 1;
    sbuf q;
    int first = 1;
    sbuf_init(&q);
    sbuf_printf(&q, "SELECT record, event_id, stored_at FROM %s", from);
    influx_where_tag(&q, &first, "entity_id", f->entity_id);
    influx_where_tag(&q, &first, "domain", f->domain);
    influx_where_tag(&q, &first, "event_type", f->event_type);
    influx_where_tag(&q, &first, "area_id", f->area);
    influx_where_tag(&q, &first, "floor_id", f->floor);
    influx_where_tag(&q, &first, "device_id", f->device);
    influx_where_tag(&q, &first, "platform", f->platform);
    if (f->home_id) influx_where_tag(&q, &first, INFLUX_HOME_TAG, influx_points_home_value(f->home_id));
    if (f->label) { /* store_filter_set let only [a-z0-9_-] through: nothing to escape in the regex */
        sbuf_printf(&q, "%s \"labels\" =~ /,%s,/", first ? " WHERE" : " AND", f->label);
        first = 0;
    }
    /* bounds past what InfluxDB holds are saturated, never overflowed (finding 7) */
    if (f->has_start) {
        sbuf_printf(&q, "%s time >= %lld", first ? " WHERE" : " AND", (long long)influx_time_ns_sat(f->start_us));
        first = 0;
    }
    if (f->has_end) {
        sbuf_printf(&q, "%s time < %lld", first ? " WHERE" : " AND", (long long)influx_time_ns_sat(f->end_us));
        first = 0;
    }
    /* LIMIT/OFFSET apply to each measurement of a FROM list: the merged page takes each one's first offset+limit */
    if (merge) sbuf_printf(&q, " ORDER BY time DESC LIMIT %ld", f->offset + f->limit);
    else sbuf_printf(&q, " ORDER BY time DESC LIMIT %ld OFFSET %ld", f->limit, f->offset);
    if (sbuf_failed(&q)) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
    } else {
        influx_read_start(s, q.data, 0, merge ? f : NULL, cb, arg);
    }
    sbuf_free(&q);
}

/* influx_query.h's transport: a /query on this store's database. */
int store_influx_sql(store *base, const char *sql, httpc_done_cb cb, void *arg) {
    store_influx *s = (store_influx *)base;
    return s->closing ? -1 : influx_query_send(s, sql, 1, cb, arg);
}

influx_reads *store_influx_reads(store *base) { return ((store_influx *)base)->reads; }

static void store_influx_dead_letters(store *base, long limit, store_rows_cb cb, void *arg) {
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT source, error, raw FROM \"%s\" ORDER BY time DESC LIMIT %ld",
             INFLUX_DEAD_MEASUREMENT, limit);
    influx_read_start((store_influx *)base, sql, 1, NULL, cb, arg);
}

/* Issue 18: one home's dead letters (the home_id tag; none = the default home). */
static void store_influx_dead_letters_home(store *base, const char *home, long limit, store_rows_cb cb, void *arg) {
    sbuf q;
    int first = 1;
    sbuf_init(&q);
    sbuf_printf(&q, "SELECT source, error, raw FROM \"%s\"", INFLUX_DEAD_MEASUREMENT);
    influx_where_tag(&q, &first, INFLUX_HOME_TAG, influx_points_home_value(home));
    sbuf_printf(&q, " ORDER BY time DESC LIMIT %ld", limit);
    if (sbuf_failed(&q)) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
    } else {
        influx_read_start((store_influx *)base, q.data, 1, NULL, cb, arg);
    }
    sbuf_free(&q);
}

/* ---- health: /ping, and CREATE DATABASE (v1) --------------------------- */

static void influx_create_done(int rc, int unreachable, const char *why, void *arg) {
    store_influx *s = arg;
    s->create_inflight = 0;
    if (s->closing) return;
    if (rc == 0) {
        if (!s->db_ready) log_info("influxdb database %s ready", s->db);
        s->db_ready = 1;
        s->up = 1;
        return;
    }
    if (unreachable) influx_set_down(s, why);
    else log_error("preparing database %s failed: %s", s->db, why);
}

static int influx_io_query_server(void *ctx, const char *sql, httpc_done_cb cb, void *arg) {
    return ((store_influx *)ctx)->closing ? -1 : influx_query_send(ctx, sql, 0, cb, arg);
}

/* v1: the database and its retention policies (retention_influx.h). */
static void influx_create_db(store_influx *s) {
    if (s->api_version != 1) {
        s->db_ready = 1; /* v2/v3: buckets (and their retention) are the operator's */
        return;
    }
    if (s->create_inflight) return;
    s->create_inflight = 1;
    retention_influx_ensure(s->retention, influx_create_done, s);
}

static void influx_ping_done(const httpc_response *r, void *arg) {
    store_influx *s = arg;
    char why[256];
    s->ping_inflight = 0;
    if (s->closing) return;
    if (r->status == 204 || r->status == 200) {
        if (!s->up) log_info("influxdb at %s is reachable", s->url);
        s->up = 1;
        if (!s->db_ready) influx_create_db(s);
        return;
    }
    influx_error_text(r, why, sizeof why);
    influx_set_down(s, why);
}

static void influx_ping(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    store_influx *s = arg;
    if (s->ping_inflight || s->closing) return;
    char url[1024];
    snprintf(url, sizeof url, "%s/ping", s->url);
    if (influx_send(s, "GET", url, NULL, NULL, 0, influx_ping_done, s) == 0) s->ping_inflight = 1;
}

static int store_influx_health(store *base, const char **reason) {
    store_influx *s = (store_influx *)base;
    if (!s->up) *reason = "influxdb_unreachable";
    else if (!s->db_ready) *reason = "influxdb_database_missing";
    else return 0;
    return -1;
}

static json_t *store_influx_info(store *base) {
    store_influx *s = (store_influx *)base;
    size_t queued = 0;
    for (influx_job *j = s->queue; j; j = j->next) queued++;
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:b,s:b,s:I}", "backend", "influxdb", "url", s->url, "api_version",
                          s->api_version, s->api_version == 1 ? "database" : "bucket",
                          s->api_version == 1 ? s->db : s->bucket, "reachable", s->up, "database_ready", s->db_ready,
                          "queued_batches", (json_int_t)queued);
    if (o) json_object_set_new(o, "event_fields", json_string(influx_points_fields_name(s->event_fields)));
    if (o) json_object_set_new(o, "write_linger", json_pack("{s:I,s:I}", "ms", (json_int_t)s->linger_ms, "held",
                                                              (json_int_t)s->linger_held));
    if (o) json_object_set_new(o, "writes", json_pack("{s:i,s:I,s:I}", "in_flight_max", s->inflight,
                                                        "batches", (json_int_t)s->started, "started_behind_another",
                                                        (json_int_t)s->started_behind));
    if (o) json_object_set_new(o, "duplicate_check", json_pack("{s:I,s:I,s:I}", "queries", (json_int_t)s->dup_queries,
                                                                 "batches_from_memory", (json_int_t)s->dup_memory,
                                                                 "planned_again", (json_int_t)s->dup_replans));
    if (o && s->reads) json_object_set_new(o, "entity_restore", influx_reads_info(s->reads));
    if (o && !s->up) json_object_set_new(o, "last_error", json_string(s->last_error));
    if (o) json_object_set_new(o, "statistics", stats_influx_info(s->stats));
    if (o && s->retention) {
        json_t *r = retention_influx_info(s->retention);
        if (r && s->catchup) json_object_set_new(r, "statistics_catchup", stats_influx_catchup_info(s->catchup));
        json_object_set_new(o, "retention", r);
    }
    if (o && s->purge) json_object_set_new(o, "retention_overrides", retention_influx_purge_info(s->purge));
    influx_ha_info(s->ha, o);
    return o;
}

/* ---- open / close ----------------------------------------------------- */

static void store_influx_close(store *base) {
    store_influx *s = (store_influx *)base;
    stats_influx_stop(s->stats); /* the queued statistics rows, for a bounded time, while InfluxDB is reachable */
    s->closing = 1;
    if (s->ping_timer) event_free(s->ping_timer);
    if (s->linger_timer) event_free(s->linger_timer);
    httpc_free(s->http); /* in-flight callbacks run now and fail their jobs */
    while (s->queue) influx_job_fail(s->queue, "shutting down");
    free(s->url);
    free(s->db);
    free(s->org);
    free(s->bucket);
    free(s->userpwd);
    free(s->auth_header);
    influx_ha_free(s->ha);
    stats_influx_close(s->stats);
    retention_influx_close(s->retention);
    retention_influx_purge_close(s->purge);   /* after httpc_free: nothing in flight */
    stats_influx_catchup_close(s->catchup);
    influx_reads_free(s->reads); /* after httpc_free: in-flight reads were answered */
    influx_registry_close(s->registry);
    influx_recent_free(s->recent);
    free(s);
}

static const store_ops store_influx_ops = {
    .name = "influxdb",
    .text_batches = 1, /* points, feed, summary, registry read the item's text and record_fields (issue 15) */
    .write_batch = store_influx_write_batch,
    .query = store_influx_query,
    .dead_letters = store_influx_dead_letters,
    /* issue 18: the home_id tag (influx_points.h), statistics, the entity
     * list and the totals per home (stats_influx.h, influx_summary.h) */
    .home_reads = STORE_HOME_FEED | STORE_HOME_SERIES | STORE_HOME_DEAD | STORE_HOME_REGISTRY | STORE_HOME_STATISTICS |
                  STORE_HOME_ENTITIES | STORE_HOME_STATS,
    .homes = store_influx_homes,
    .dead_letters_home = store_influx_dead_letters_home,
    .health = store_influx_health,
    .info = store_influx_info,
    .stats_fetch_home = store_influx_stats_fetch,
    .maintain = store_influx_maintain,
    .feed = store_influx_feed,
    .entities = store_influx_entities,
    .series = store_influx_series,
    .stats = store_influx_stats,
    .registry = store_influx_registry,
    .close = store_influx_close,
};

static const config_var influx_vars[] = {INFLUX_CONFIG_VARS, CONFIG_END};

static char *influx_text(const char *name) {
    const char *v = config_text(influx_vars, name);
    return v ? strdup(v) : NULL;
}

static int influx_config(store_influx *s) {
    long long ver, timeout, chunk, ping, linger, inflight;
    s->url = influx_text("INFLUXDB_URL");
    if (s->url) s->url[url_trim_len(s->url, strlen(s->url))] = '\0';
    s->db = influx_text("INFLUXDB_DATABASE");
    s->org = influx_text("INFLUXDB_ORG");
    s->bucket = influx_text("INFLUXDB_BUCKET");
    char *token = config_secret("INFLUXDB_TOKEN");
    int v2_default = token || s->org || s->bucket;
    if (!s->bucket) s->bucket = strdup(s->db ? s->db : "home_assistant");
    if (config_int(influx_vars, "INFLUXDB_API_VERSION", &ver) ||
        config_int(influx_vars, "INFLUXDB_TIMEOUT_MS", &timeout) ||
        config_int(influx_vars, "INFLUXDB_CHUNK_LINES", &chunk) ||
        config_int(influx_vars, "INFLUXDB_PING_INTERVAL_MS", &ping) ||
        config_int(influx_vars, "INFLUXDB_WRITE_LINGER_MS", &linger) ||
        config_int(influx_vars, "INFLUXDB_WRITES_INFLIGHT", &inflight)) {
        free(token);
        return -1;
    }
    const char *fields = config_text(influx_vars, "INFLUXDB_EVENT_FIELDS");
    if (influx_points_fields_parse(fields, &s->event_fields) != 0) {
        log_error("INFLUXDB_EVENT_FIELDS=%s: expected full or slim", fields ? fields : "");
        free(token);
        return -1;
    }
    s->api_version = ver ? (int)ver : v2_default ? 2 : 1; /* unset (0): from what else is set */
    s->timeout_ms = (long)timeout;
    s->chunk_lines = (long)chunk;
    s->ping_ms = (long)ping;
    s->linger_ms = (long)linger;
    s->inflight = (int)inflight; /* the table's range: 1..INFLUX_WRITES_MAX */
    s->base.pieces = s->inflight; /* storage_post.c: one POST's piece per write in flight */
    if (token) {
        size_t n = strlen(token) + 32;
        s->auth_header = malloc(n);
        if (s->auth_header) snprintf(s->auth_header, n, "Authorization: Token %s", token);
        log_add_secret(s->auth_header);
        free(token);
    }
    const char *user = config_text(influx_vars, "INFLUXDB_USERNAME");
    char *pass = config_secret("INFLUXDB_PASSWORD");
    if (user) {
        size_t n = strlen(user) + (pass ? strlen(pass) : 0) + 2;
        s->userpwd = malloc(n);
        if (s->userpwd) snprintf(s->userpwd, n, "%s:%s", user, pass ? pass : "");
    }
    free(pass);
    if (s->api_version == 1) s->db_ready = 0;
    /* for v2/v3, /query (v1 compatibility API) takes the bucket as db */
    if (s->api_version == 2) {
        free(s->db);
        s->db = strdup(s->bucket);
    }
    return s->url && s->db && s->bucket ? 0 : -1;
}

int store_influx_open(struct event_base *base, store **out) {
    store_influx *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->base.ops = &store_influx_ops;
    s->evb = base;
    stats_influx_io io = {.ctx = s, .query = influx_io_query, .write = influx_io_write, .lost = influx_io_lost,
                          .events_measurement = INFLUX_MEASUREMENT};
    if (influx_config(s) != 0 || influx_ha_open(&s->ha) != 0) {
        store_influx_close(&s->base);
        return -1;
    }
    /* statistics read the stored records: on HA's schema from the identity points (influx_ids.h) */
    if (s->ha) io.events_measurement = INFLUX_IDS_MEASUREMENT;
    if (!(s->recent = influx_recent_new()) || influx_reads_new(base, s->ha != NULL, s->db, &io, &s->reads) != 0 ||
        httpc_new(base, &s->http) != 0 ||
        stats_influx_open(base, &io, s->api_version == 1 ? STATS_INFLUX_RP_5MIN : NULL,
                          s->api_version == 1 ? STATS_INFLUX_RP_HOUR : NULL, &s->stats) != 0 ||
        influx_registry_open(&io, s->ha ? NULL : INFLUX_MEASUREMENT, &s->registry) != 0 ||
        (s->api_version == 1 && retention_influx_open(s->db, influx_io_query_server, s, &s->retention) != 0) ||
        (s->api_version == 1 && retention_influx_purge_open(INFLUX_MEASUREMENT, influx_io_query, s, &s->purge) != 0) ||
        (s->api_version == 1 && s->stats && stats_influx_catchup_open(s->stats, &s->catchup) != 0)) {
        store_influx_close(&s->base);
        return -1;
    }
    s->ping_timer = event_new(base, -1, EV_PERSIST, influx_ping, s);
    s->linger_timer = evtimer_new(base, influx_linger_fire, s);
    struct timeval tv = {s->ping_ms / 1000, (s->ping_ms % 1000) * 1000};
    if (!s->ping_timer || !s->linger_timer || event_add(s->ping_timer, &tv) != 0) {
        store_influx_close(&s->base);
        return -1;
    }
    log_info("influxdb store: %s, API v%d, %s %s", s->url, s->api_version, s->api_version == 1 ? "database" : "bucket",
             s->api_version == 1 ? s->db : s->bucket);
    influx_ping(-1, 0, s);
    influx_create_db(s);
    *out = &s->base;
    return 0;
}

/* stats_influx_flush.c -- see stats_influx_flush.h.
 *
 * A row is one line of homeiq_statistics; its key is the series (the line up
 * to its first unescaped space: measurement and tags, which hold the entity,
 * home and period) and its time, in one of the two policies. Pending rows are
 * an open-addressed table keyed so, the latest line of a key winning. A flush
 * moves the table into "in flight", writes the 5-minute lines, then the hourly
 * lines with the mark in the last hourly request, in chunks of at most
 * chunk_bytes each (one request at a time; influxd refuses a body above its
 * max-body-size), and frees them; a failure merges the lines no chunk wrote
 * back under any newer pending line of the same key and retries after the
 * interval. Only one flush is in flight at a time, so lines of one key reach
 * InfluxDB in the order they were computed; each flush writes a series' rows
 * in time order (sif_order), so a stored row implies the series' earlier
 * queued rows are stored. */
#include "stats_influx_flush.h"
#include "log.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sif_row {
    char *line;        /* one line, with its '\n' */
    size_t len, slen;  /* slen: the series part's length */
    size_t toff;       /* the time's offset in line */
    unsigned hash;
    int hourly;
    int written;       /* in flight: a chunk holding it was stored */
} sif_row;

typedef struct sif_map {
    sif_row *rows;
    size_t n, cap;
    unsigned *slot;    /* index + 1, 0 = empty */
    size_t nslot;      /* a power of two, >= 2 * cap */
} sif_map;

struct stats_influx_flush {
    stats_influx_io io;
    char *rp5, *rph;
    long interval_ms;
    size_t chunk_bytes;         /* the most bytes of lines one request carries (at least one line; the mark may pass it) */
    size_t max_rows;            /* unwritten rows above which live batches wait for the flush (backpressure) */
    struct event_base *evb;
    struct event *timer;
    sif_map pending, inflight;
    int busy;                   /* a flush in flight */
    sbuf body;                  /* the request being written */
    int64_t seq;                /* the mark the next flush writes (rows through it pending or stored) */
    int64_t mark;               /* the mark last stored */
    int64_t flight_seq;         /* the mark of the flush in flight */
    int phase;                  /* the flush in flight writes 0: 5-minute lines, 1: hourly lines (and the mark) */
    size_t pos, chunk_end;      /* the in-flight rows of the request under way: [pos, chunk_end) */
    int drained;                /* the stop's flush (stats_influx_flush_stop) ended */
    int64_t last_start_us;      /* monotonic: the last flush's start */
    stats_influx_waiters waiters;   /* readers waiting for nothing queued (stats_influx_flush_wait) */
    unsigned long long flushes, failures, rows_written, requests, refused, late_skipped, backpressure;
    char last_error[200];
};

/* ---- the table ---------------------------------------------------------- */

static unsigned sif_hash(const char *p, size_t n, unsigned h) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Splits a line into its series and time; 0, or -1 when it has neither. */
static int sif_parse(const char *line, size_t len, size_t *slen, size_t *toff) {
    size_t i = 0;
    while (i < len && line[i] != ' ') i += line[i] == '\\' ? 2 : 1;
    size_t t = len;
    while (t > 0 && (line[t - 1] == '\n' || line[t - 1] == ' ')) t--;
    size_t end = t;
    while (t > 0 && line[t - 1] != ' ') t--;
    if (i >= len || t <= i || t == end) return -1;
    *slen = i;
    *toff = t;
    return 0;
}

static size_t sif_tlen(const sif_row *r) {
    size_t n = r->len - r->toff;
    while (n && r->line[r->toff + n - 1] == '\n') n--;
    return n;
}

static int sif_same(const sif_row *a, const sif_row *b) {
    size_t ta = sif_tlen(a), tb = sif_tlen(b);
    return a->hash == b->hash && a->hourly == b->hourly && a->slen == b->slen && ta == tb &&
           memcmp(a->line, b->line, a->slen) == 0 && memcmp(a->line + a->toff, b->line + b->toff, ta) == 0;
}

/* The slot of r's key: holding its row, or the empty one it would take. */
static size_t sif_find(const sif_map *m, const sif_row *r) {
    size_t mask = m->nslot - 1, k = r->hash & mask;
    while (m->slot[k] && !sif_same(&m->rows[m->slot[k] - 1], r)) k = (k + 1) & mask;
    return k;
}

static int sif_grow(sif_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    sif_row *rows = realloc(m->rows, cap * sizeof *rows);
    if (!rows) return -1;
    m->rows = rows;
    unsigned *slot = calloc(cap * 2, sizeof *slot);
    if (!slot) return -1;
    free(m->slot);
    m->slot = slot;
    m->nslot = cap * 2;
    m->cap = cap;
    for (size_t i = 0; i < m->n; i++) m->slot[sif_find(m, &m->rows[i])] = (unsigned)i + 1;
    return 0;
}

/* Takes r's line: replaces the row of its key when `replace`, else keeps
 * the one there (and frees r's). 0, or -1 (out of memory: r not taken). */
static int sif_put(sif_map *m, sif_row *r, int replace) {
    if (m->n == m->cap && sif_grow(m) != 0) return -1;
    size_t k = sif_find(m, r);
    if (m->slot[k]) {
        sif_row *old = &m->rows[m->slot[k] - 1];
        if (replace) {
            free(old->line);
            *old = *r;
        } else {
            free(r->line);
        }
        return 0;
    }
    m->rows[m->n] = *r;
    m->slot[k] = (unsigned)++m->n;
    return 0;
}

static void sif_map_free(sif_map *m) {
    for (size_t i = 0; i < m->n; i++) free(m->rows[i].line);
    free(m->rows);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* Each line of b into m (the newer line of a key wins). */
static int sif_add_lines(sif_map *m, const sbuf *b, int hourly) {
    size_t off = 0;
    while (off < b->len) {
        const char *nl = memchr(b->data + off, '\n', b->len - off);
        size_t len = nl ? (size_t)(nl - (b->data + off)) + 1 : b->len - off;
        sif_row r = {.len = len, .hourly = hourly};
        if (sif_parse(b->data + off, len, &r.slen, &r.toff) == 0) {
            r.line = malloc(len);
            if (!r.line) return -1;
            memcpy(r.line, b->data + off, len);
            r.hash = sif_hash(r.line + r.toff, sif_tlen(&r), sif_hash(r.line, r.slen, 2166136261u + (unsigned)hourly));
            if (sif_put(m, &r, 1) != 0) {
                free(r.line);
                return -1;
            }
        }
        off += len;
    }
    return 0;
}

/* ---- the flush ---------------------------------------------------------- */

static void sif_start(stats_influx_flush *f);
static void sif_write_done(const httpc_response *r, void *arg);

static void sif_arm(stats_influx_flush *f) {
    if (!f->timer || f->busy || evtimer_pending(f->timer, NULL)) return;
    if (!f->pending.n && f->seq <= f->mark) return;
    int64_t wait = f->last_start_us + (int64_t)f->interval_ms * 1000 - service_mono_us();
    if (wait < 0) wait = 0;
    struct timeval tv = {(time_t)(wait / 1000000), (suseconds_t)(wait % 1000000)};
    evtimer_add(f->timer, &tv);
}

static void sif_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    sif_start(arg);
}

int stats_influx_waiters_add(stats_influx_waiters *ws, stats_influx_done_fn done, void *arg) {
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 4;
        struct stats_influx_waiter *w = realloc(ws->w, cap * sizeof *w);
        if (!w) {
            done(-1, "statistics: out of memory", arg);
            return -1;
        }
        ws->w = w;
        ws->cap = cap;
    }
    ws->w[ws->n++] = (struct stats_influx_waiter){done, arg};
    return 0;
}

void stats_influx_waiters_wake(stats_influx_waiters *ws, int rc, const char *err) {
    stats_influx_waiters now = *ws;
    memset(ws, 0, sizeof *ws);
    for (size_t i = 0; i < now.n; i++) now.w[i].done(rc, rc ? err : NULL, now.w[i].arg);
    free(now.w);
}

/* The next chunk of the phase's lines from f->pos into f->body (at most
 * chunk_bytes, at least one line); the mark after the phase's last hourly
 * line. 1 when the body holds something to write, 0 when the phase is done. */
static int sif_body(stats_influx_flush *f) {
    sbuf_reset(&f->body);
    size_t i = f->pos;
    for (; i < f->inflight.n; i++) {
        const sif_row *r = &f->inflight.rows[i];
        if (r->hourly != f->phase) continue;
        if (f->body.len && f->body.len + r->len > f->chunk_bytes) break;
        sbuf_add(&f->body, r->line, r->len);
    }
    f->chunk_end = i;
    if (f->phase == 1 && i == f->inflight.n) stats_influx_flush_mark_line(&f->body, f->flight_seq);
    return f->body.len > 0;
}

/* The next request of the flush in flight (the 5-minute chunks, then the
 * hourly ones, the last with the mark). 0, or -1 (it could not start). */
static int sif_send(stats_influx_flush *f) {
    while (!sif_body(f)) {   /* only the 5-minute phase can be empty: the hourly one holds the mark */
        f->phase = 1;
        f->pos = 0;
    }
    f->requests++;
    if (sbuf_failed(&f->body) ||
        f->io.write(f->io.ctx, f->phase ? f->rph : f->rp5, f->body.data, f->body.len, sif_write_done,
                    f) != 0)
        return -1;
    return 0;
}

static void sif_end(stats_influx_flush *f, int rc, const char *err) {
    f->busy = 0;
    if (rc == 0) {
        f->flushes++;
        if (f->flight_seq > f->mark) f->mark = f->flight_seq;
        sif_map_free(&f->inflight);
    } else {
        /* kept: what no chunk wrote merged back under the newer lines of the same keys, retried after the
         * interval (the mark did not move: after a stop the recovery recomputes them) */
        f->failures++;
        snprintf(f->last_error, sizeof f->last_error, "%.190s", err);
        log_warn("statistics flush failed (its rows are kept and written again): %s", err);
        for (size_t i = 0; i < f->inflight.n; i++) {
            if (f->inflight.rows[i].written || sif_put(&f->pending, &f->inflight.rows[i], 0) != 0) {
                /* out of memory: what is not kept is recomputed after the next start (the mark did not move) */
                free(f->inflight.rows[i].line);
            }
        }
        free(f->inflight.rows);
        free(f->inflight.slot);
        memset(&f->inflight, 0, sizeof f->inflight);
        if (err && strstr(err, "retention policy not found") && f->io.lost) f->io.lost(f->io.ctx);
    }
    if (f->waiters.n && rc == 0 && f->pending.n) {
        sif_start(f); /* a reader waits: the rows that came meanwhile now */
        return;
    }
    if (f->waiters.n && (rc != 0 || !f->pending.n)) stats_influx_waiters_wake(&f->waiters, rc, err);
    sif_arm(f);
}

/* InfluxDB's answer to one request (chunk) of the flush. */
static void sif_write_done(const httpc_response *r, void *arg) {
    stats_influx_flush *f = arg;
    if (r->status != 204 && r->status != 200) {
        char err[260];
        json_t *doc = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        const char *e = json_string_value(json_object_get(doc, "error"));
        if (r->status == 0) snprintf(err, sizeof err, "statistics flush: influxdb unreachable: %.200s", r->error ? r->error : "");
        else snprintf(err, sizeof err, "statistics flush: HTTP %ld: %.200s", r->status, e ? e : "");
        json_decref(doc);
        if (r->status != 400) {
            sif_end(f, -1, err);
            return;
        }
        /* InfluxDB refused some points themselves (the others are stored): retrying meets them again */
        if (strstr(err, "beyond retention policy")) f->late_skipped++;
        else {
            f->refused++;
            snprintf(f->last_error, sizeof f->last_error, "%.190s", err);
            log_error("statistics rows refused by InfluxDB (events stored, rows missing): %s", err);
        }
    }
    for (size_t i = f->pos; i < f->chunk_end; i++) {
        sif_row *row = &f->inflight.rows[i];
        if (row->hourly != f->phase) continue;
        row->written = 1;
        f->rows_written++;
    }
    f->pos = f->chunk_end;
    if (f->phase == 1 && f->pos >= f->inflight.n) {
        sif_end(f, 0, NULL);
        return;
    }
    if (f->pos >= f->inflight.n) {
        f->phase = 1;
        f->pos = 0;
    }
    if (sif_send(f) != 0) sif_end(f, -1, "statistics flush: cannot start a write to InfluxDB");
}

/* qsort order of the in-flight rows: by series, then by time (numeric: the
 * longer digit string is the later time). */
static int sif_cmp(const void *pa, const void *pb) {
    const sif_row *a = pa, *b = pb;
    size_t n = a->slen < b->slen ? a->slen : b->slen;
    int c = memcmp(a->line, b->line, n);
    if (c || a->slen != b->slen) return c ? c : (a->slen < b->slen ? -1 : 1);
    size_t ta = sif_tlen(a), tb = sif_tlen(b);
    if (ta != tb) return ta < tb ? -1 : 1;
    return memcmp(a->line + a->toff, b->line + b->toff, ta);
}

/* Each series' rows in time order, so the chunks write them so: a failed
 * chunk ends the flush, and its rows and every later one are written again
 * by the next flush (pending rows all go into it), so a stored row implies
 * that every earlier queued row of its series is stored. The recomputation
 * relies on it (si_merge_from in stats_influx.c: the latest hourly row before
 * a batch has every earlier hour's row). The table's slots follow. */
static void sif_order(sif_map *m) {
    if (m->n < 2) return;
    qsort(m->rows, m->n, sizeof *m->rows, sif_cmp);
    memset(m->slot, 0, m->nslot * sizeof *m->slot);
    for (size_t i = 0; i < m->n; i++) m->slot[sif_find(m, &m->rows[i])] = (unsigned)i + 1;
}

static void sif_start(stats_influx_flush *f) {
    if (f->busy || (!f->pending.n && f->seq <= f->mark)) {
        if (!f->busy && f->waiters.n) stats_influx_waiters_wake(&f->waiters, 0, NULL);
        return;
    }
    f->busy = 1;
    f->last_start_us = service_mono_us();
    f->inflight = f->pending;
    memset(&f->pending, 0, sizeof f->pending);
    sif_order(&f->inflight);
    f->flight_seq = f->seq;
    f->phase = 0;
    f->pos = 0;
    if (sif_send(f) != 0) sif_end(f, -1, "statistics flush: cannot start a write to InfluxDB");
}

/* ---- the interface ------------------------------------------------------ */

int stats_influx_flush_new(struct event_base *evb, const stats_influx_io *io, const char *rp5, const char *rph,
                           const stats_influx_flush_opts *o, stats_influx_flush **out) {
    stats_influx_flush *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return -1;
    f->io = *io;
    f->interval_ms = o->flush_ms;
    f->chunk_bytes = o->chunk_bytes ? o->chunk_bytes : 1;
    f->max_rows = o->max_rows;
    f->evb = evb;
    sbuf_init(&f->body);
    f->rp5 = rp5 ? strdup(rp5) : NULL;
    f->rph = rph ? strdup(rph) : NULL;
    f->timer = evtimer_new(evb, sif_timer, f);
    f->last_start_us = service_mono_us();   /* the first flush an interval after the start, as every next one */
    if ((rp5 && !f->rp5) || (rph && !f->rph) || !f->timer) {
        stats_influx_flush_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

void stats_influx_flush_free(stats_influx_flush *f) {
    if (!f) return;
    if (f->timer) event_free(f->timer);
    if (f->waiters.n) stats_influx_waiters_wake(&f->waiters, -1, "shutting down");
    sif_map_free(&f->pending);
    sif_map_free(&f->inflight);
    sbuf_free(&f->body);
    free(f->rp5);
    free(f->rph);
    free(f);
}

int stats_influx_flush_add(stats_influx_flush *f, const sbuf *lines5, const sbuf *linesh, int64_t seq) {
    if (sif_add_lines(&f->pending, lines5, 0) != 0 || sif_add_lines(&f->pending, linesh, 1) != 0) return -1;
    if (seq > f->seq) f->seq = seq;
    sif_arm(f);
    return 0;
}

void stats_influx_flush_written(stats_influx_flush *f, int64_t seq) {
    if (seq > f->seq) f->seq = seq;
    sif_arm(f);
}

void stats_influx_flush_set_mark(stats_influx_flush *f, int64_t seq) {
    f->mark = seq;
    if (seq > f->seq) f->seq = seq;
}

void stats_influx_flush_wait(stats_influx_flush *f, stats_influx_done_fn done, void *arg) {
    if (!f->busy && !f->pending.n) {
        done(0, NULL, arg);
        return;
    }
    if (stats_influx_waiters_add(&f->waiters, done, arg) != 0) return;
    if (!f->busy) {
        if (f->timer) event_del(f->timer);
        sif_start(f);
    }
}

void stats_influx_flush_mark_line(sbuf *b, int64_t seq) {
    sbuf_printf(b, STATS_INFLUX_MARK_MEASUREMENT " seq=%lldi 0\n", (long long)seq);
}

size_t stats_influx_flush_unwritten(const stats_influx_flush *f) {
    return f->pending.n + f->inflight.n;
}

int stats_influx_flush_full(stats_influx_flush *f) {
    if (!f->max_rows || stats_influx_flush_unwritten(f) < f->max_rows) return 0;
    f->backpressure++;
    return 1;
}

static void sif_drained(int rc, const char *err, void *arg) {
    (void)rc, (void)err;
    ((stats_influx_flush *)arg)->drained = 1;
}

static void sif_stop_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    ((stats_influx_flush *)arg)->drained = 1;
}

/* The loop is run here, after the service's loop ended (a signal): only until
 * the flush ended or ms passed -- whatever is still unwritten then is
 * recomputed by the next start's recovery, as after a SIGKILL. */
int stats_influx_flush_stop(stats_influx_flush *f, long ms) {
    if (!f->busy && !f->pending.n && f->seq <= f->mark) return 0;
    size_t rows = stats_influx_flush_unwritten(f);
    unsigned long long written0 = f->rows_written;
    f->drained = 0;
    struct event *deadline = evtimer_new(f->evb, sif_stop_timer, f);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!deadline || evtimer_add(deadline, &tv) != 0) {
        if (deadline) event_free(deadline);
        return -1;
    }
    if (f->busy) {
        if (stats_influx_waiters_add(&f->waiters, sif_drained, f) != 0) f->drained = 1;
    } else {
        if (f->timer) event_del(f->timer);
        if (stats_influx_waiters_add(&f->waiters, sif_drained, f) == 0) sif_start(f);
        else f->drained = 1;
    }
    while (!f->drained && event_base_loop(f->evb, EVLOOP_ONCE) == 0) {
    }
    event_free(deadline);
    size_t left = stats_influx_flush_unwritten(f);
    /* (rows: those unwritten when the stop began; batches already under way may have queued more since) */
    if (left || f->busy)
        log_warn("statistics: %zu rows and the mark unwritten at the stop (%zu rows when it began; the next start "
                 "recomputes them)", left, rows);
    else log_info("statistics: %llu rows written at the stop (mark %lld)", f->rows_written - written0, (long long)f->mark);
    return left || f->busy ? -1 : 0;
}

json_t *stats_influx_flush_info(const stats_influx_flush *f) {
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "interval_ms",
                     (json_int_t)f->interval_ms, "chunk_bytes", (json_int_t)f->chunk_bytes, "max_pending_rows",
                     (json_int_t)f->max_rows, "backpressure", (json_int_t)f->backpressure,
                     "pending_rows", (json_int_t)f->pending.n, "in_flight_rows", (json_int_t)f->inflight.n, "busy",
                     f->busy, "flushes", (json_int_t)f->flushes, "failures", (json_int_t)f->failures, "requests",
                     (json_int_t)f->requests, "rows_written", (json_int_t)f->rows_written, "refused",
                     (json_int_t)f->refused, "late_skipped", (json_int_t)f->late_skipped, "mark", (json_int_t)f->mark,
                     "last_error", f->last_error);
}

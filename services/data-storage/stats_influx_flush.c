/* stats_influx_flush.c -- see stats_influx_flush.h.
 *
 * A row is one line of homeiq_statistics; its key is the series (the line up
 * to its first unescaped space: measurement and tags, which hold the entity,
 * home and period) and its time, in one of the two policies. Pending rows are
 * an open-addressed table keyed so, the latest line of a key winning. A flush
 * moves the table into "in flight", writes the 5-minute lines, then the hourly
 * lines with the mark, and frees them; a failure merges them back under any
 * newer pending line of the same key and retries after the interval. Only
 * one flush is in flight at a time, so lines of one key reach InfluxDB in the
 * order they were computed. */
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
    struct event *timer;
    sif_map pending, inflight;
    int busy;                   /* a flush in flight */
    sbuf body;                  /* the request being written */
    int64_t seq;                /* the mark the next flush writes (rows through it pending or stored) */
    int64_t mark;               /* the mark last stored */
    int64_t flight_seq;         /* the mark of the flush in flight */
    int64_t last_start_us;      /* monotonic: the last flush's start */
    stats_influx_waiters waiters;   /* readers waiting for nothing queued (stats_influx_flush_wait) */
    struct sif_req {            /* the callback's arg of each policy's request */
        struct stats_influx_flush *f;
        int hourly;
    } req[2];
    unsigned long long flushes, failures, rows_written, requests, refused, late_skipped;
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

/* The lines of one policy of the flush in flight into f->body. */
static void sif_body(stats_influx_flush *f, int hourly) {
    sbuf_reset(&f->body);
    for (size_t i = 0; i < f->inflight.n; i++)
        if (f->inflight.rows[i].hourly == hourly) sbuf_add(&f->body, f->inflight.rows[i].line, f->inflight.rows[i].len);
    if (hourly) stats_influx_flush_mark_line(&f->body, f->flight_seq);
}

static int sif_send(stats_influx_flush *f, int hourly) {
    sif_body(f, hourly);
    if (!hourly && f->body.len == 0) return sif_send(f, 1); /* no 5-minute row: the hourly request (and mark) */
    f->requests++;
    if (sbuf_failed(&f->body) ||
        f->io.write(f->io.ctx, hourly ? f->rph : f->rp5, f->body.data, f->body.len, sif_write_done,
                    &f->req[hourly]) != 0)
        return -1;
    return 0;
}

static void sif_end(stats_influx_flush *f, int rc, const char *err) {
    f->busy = 0;
    if (rc == 0) {
        f->flushes++;
        f->rows_written += f->inflight.n;
        if (f->flight_seq > f->mark) f->mark = f->flight_seq;
        sif_map_free(&f->inflight);
    } else {
        /* kept: merged back under the newer lines of the same keys, retried after the interval */
        f->failures++;
        snprintf(f->last_error, sizeof f->last_error, "%.190s", err);
        log_warn("statistics flush failed (its rows are kept and written again): %s", err);
        for (size_t i = 0; i < f->inflight.n; i++) {
            if (sif_put(&f->pending, &f->inflight.rows[i], 0) != 0) {
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

/* InfluxDB's answer to one request of the flush (arg: its sif_req). */
static void sif_write_done(const httpc_response *r, void *arg) {
    stats_influx_flush *f = ((struct sif_req *)arg)->f;
    int hourly = ((struct sif_req *)arg)->hourly;
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
    if (hourly) {
        sif_end(f, 0, NULL);
        return;
    }
    if (sif_send(f, 1) != 0) sif_end(f, -1, "statistics flush: cannot start a write to InfluxDB");
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
    f->flight_seq = f->seq;
    if (sif_send(f, 0) != 0) sif_end(f, -1, "statistics flush: cannot start a write to InfluxDB");
}

/* ---- the interface ------------------------------------------------------ */

int stats_influx_flush_new(struct event_base *evb, const stats_influx_io *io, const char *rp5, const char *rph,
                           long flush_ms, stats_influx_flush **out) {
    stats_influx_flush *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return -1;
    f->io = *io;
    f->interval_ms = flush_ms;
    f->req[0] = (struct sif_req){f, 0};
    f->req[1] = (struct sif_req){f, 1};
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

json_t *stats_influx_flush_info(const stats_influx_flush *f) {
    return json_pack("{s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "interval_ms", (json_int_t)f->interval_ms,
                     "pending_rows", (json_int_t)f->pending.n, "in_flight_rows", (json_int_t)f->inflight.n, "busy",
                     f->busy, "flushes", (json_int_t)f->flushes, "failures", (json_int_t)f->failures, "requests",
                     (json_int_t)f->requests, "rows_written", (json_int_t)f->rows_written, "refused",
                     (json_int_t)f->refused, "late_skipped", (json_int_t)f->late_skipped, "mark", (json_int_t)f->mark,
                     "last_error", f->last_error);
}

/* stats_influx_recover.c -- see stats_influx_recover.h.
 *
 * Steps: (1) one request reads the mark and the feed's latest point; (2) with
 * a mark, the feed entries after it, grouped by entity and home (each one's
 * state times; sir_feed_sql / sir_feed_row, with influx_feed.h: the only place
 * that reads it), then split into runs: an entity's times sorted, a run ending
 * where the next time is more than SIR_GAP_US later or the run holds
 * SIR_REQ_STATES (a late state acked shortly before a stop and the live ones
 * after it are two runs, so the stored states between them -- their rows
 * written -- are not read again); (3) one home at a time, rounds of
 * stats_influx_recompute, each with at most one run per entity (the next in
 * time: a round reads the rows the one before wrote) and at most
 * SIR_REQ_STATES states in all; (4) the mark: set to the feed's latest point
 * when there was none, 0 when the flush is off. The mark itself only moves
 * with a flush that stored the rows. Any split is exact: each run is
 * recomputed as a late batch of its states would be. */
#include "stats_influx_recover.h"
#include "influx_answer.h"
#include "influx_feed.h"
#include "lineproto.h"
#include "log.h"
#include "stats_influx_flush.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sir_ent {
    char *entity, *home;   /* home: the tag's value ("" = the default home) */
    int64_t *t;            /* the times of its feed entries after the mark (us) */
    size_t nt, tcap;
} sir_ent;

/* A run of one entity's states recomputed in one request. */
typedef struct sir_run {
    size_t ent;            /* index into ents */
    int64_t tmin_us, tmax_us;
    size_t states;
    int done;
} sir_run;

#define SIR_GAP_US (15LL * 60 * 1000000)   /* a longer gap between two states after the mark splits a run */
#define SIR_REQ_STATES 2000                  /* states after the mark one recomputation request covers at most */

struct stats_influx_recover {
    stats_influx *s;
    int done, busy;
    int again;                 /* ended without a mark to set: run again with the next caller */
    int64_t mark, feed_last;   /* feed sequences (us) */
    int64_t limit;             /* the caller's batch (its rows go before its ack): a new mark not above it */
    sir_ent *ents;
    size_t n, cap;
    sir_run *rv;              /* the runs, by home, entity and time */
    size_t nruns, next;        /* next: the first run not yet recomputed */
    unsigned *slot;            /* (entity, home) -> ents index + 1, open addressing */
    size_t nslot;
    int64_t read_after;        /* the feed is read after this sequence (a page at a time) */
    int64_t page_last;         /* the highest sequence of the page read */
    size_t page_rows;
    stats_influx_span *spans;
    stats_influx_waiters waiters;
    size_t spans_n;            /* the round under way's runs */
    unsigned long long runs, failures, entities, runs_done, requests;
    char last_error[200];
};

static void sir_clear(stats_influx_recover *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->ents[i].entity);
        free(r->ents[i].home);
        free(r->ents[i].t);
    }
    free(r->ents);
    free(r->rv);
    free(r->spans);
    free(r->slot);
    r->ents = NULL;
    r->rv = NULL;
    r->spans = NULL;
    r->slot = NULL;
    r->n = r->cap = r->next = r->nslot = r->nruns = 0;
}

static void sir_end(stats_influx_recover *r, int rc, const char *err) {
    r->busy = 0;
    if (rc == 0 && !r->again) r->done = 1;
    r->again = 0;
    if (rc != 0) {
        r->failures++;
        snprintf(r->last_error, sizeof r->last_error, "%.190s", err ? err : "failed");
        log_warn("statistics recovery after the start failed (tried again with the next batch): %s", r->last_error);
    }
    sir_clear(r);
    stats_influx_waiters_wake(&r->waiters, rc, r->last_error);
}

/* ---- the feed: which entities have entries after the mark ----------------- */

/* The feed entries in (after, upto], either form (influx_feed.h: the batch
 * point that may reach past `after`, then the points after it), a page of
 * SIR_FEED_PAGE points at a time; per entity and home the earliest and latest
 * state_changed point time. The only place that knows the feed. */
#define SIR_FEED_PAGE 64 /* a batch point holds up to INFLUX_FEED_POINT_BYTES (~60 KB): ~3.8 MB a page, as the feed's scans */

static void sir_feed_sql(sbuf *q, int64_t after, int64_t upto) {
    influx_feed_sql_before(q, NULL, after);
    sbuf_addc(q, ';');
    influx_feed_sql_after(q, NULL, NULL, after, upto, 1, SIR_FEED_PAGE);
}

static int sir_index_grow(stats_influx_recover *r) {
    size_t nslot = r->nslot ? r->nslot * 2 : 256;
    unsigned *slot = calloc(nslot, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < r->n; i++) {
        size_t k = stats_influx_key_hash(r->ents[i].entity, r->ents[i].home) & (nslot - 1);
        while (slot[k]) k = (k + 1) & (nslot - 1);
        slot[k] = (unsigned)i + 1;
    }
    free(r->slot);
    r->slot = slot;
    r->nslot = nslot;
    return 0;
}

static int sir_add_time(sir_ent *e, int64_t t) {
    if (e->nt == e->tcap) {
        size_t cap = e->tcap ? e->tcap * 2 : 8;
        int64_t *p = realloc(e->t, cap * sizeof *p);
        if (!p) return -1;
        e->t = p;
        e->tcap = cap;
    }
    e->t[e->nt++] = t;
    return 0;
}

/* One feed entry: its time added to its entity's (a new entity added). */
static int sir_feed_entry(const influx_feed_entry *fe, void *arg) {
    stats_influx_recover *r = arg;
    if (!fe->entity_id || !*fe->entity_id || !fe->event_type || strcmp(fe->event_type, "state_changed") != 0) return 0;
    const char *home = fe->home ? fe->home : "";
    int64_t t = fe->t_ns / 1000;
    if ((r->n + 1) * 2 > r->nslot && sir_index_grow(r) != 0) return -1;
    size_t k = stats_influx_key_hash(fe->entity_id, home) & (r->nslot - 1);
    for (; r->slot[k]; k = (k + 1) & (r->nslot - 1)) {
        sir_ent *e = &r->ents[r->slot[k] - 1];
        if (strcmp(e->entity, fe->entity_id) != 0 || strcmp(e->home, home) != 0) continue;
        return sir_add_time(e, t);
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        sir_ent *p = realloc(r->ents, cap * sizeof *p);
        if (!p) return -1;
        r->ents = p;
        r->cap = cap;
    }
    sir_ent *e = &r->ents[r->n];
    memset(e, 0, sizeof *e);
    e->entity = strdup(fe->entity_id);
    e->home = strdup(home);
    if (!e->entity || !e->home || sir_add_time(e, t) != 0) {
        free(e->entity);
        free(e->home);
        free(e->t);
        return -1;
    }
    r->slot[k] = (unsigned)++r->n;
    return 0;
}

static int sir_feed_row(const influx_answer_row *row, void *arg) {
    stats_influx_recover *r = arg;
    int64_t last = 0;
    int rc = influx_feed_row(row, r->read_after, 0, sir_feed_entry, r, &last);
    if (row->stmt == 1) {
        r->page_rows++;
        if (last > r->page_last) r->page_last = last;
    }
    return rc;
}

/* ---- the steps ------------------------------------------------------------ */

static int sir_answer(const httpc_response *res, influx_answer_fn fn, void *arg, char *err, size_t errlen) {
    if (res->status != 200) {
        snprintf(err, errlen, "statistics recovery: influxdb %s (HTTP %ld)",
                 res->status ? "refused the query" : "unreachable", res->status);
        return -1;
    }
    return influx_answer_walk(res->body, res->body_len, -1, fn, arg, err, errlen);
}

static void sir_mark_done(const httpc_response *res, void *arg) {
    stats_influx_recover *r = arg;
    stats_influx_flush *f = stats_influx_flush_of(r->s);
    if (res->status == 204 || res->status == 200) {
        if (f) stats_influx_flush_set_mark(f, r->mark);
        sir_end(r, 0, NULL);
        return;
    }
    if (res->status == 400 && f) {
        /* a user's own hourly policy that expires: no mark can be kept, so the rows go before the ack */
        log_warn("statistics: the mark %s cannot be written (HTTP 400: the hourly policy expires?); "
                 "statistics are written before each ack instead", STATS_INFLUX_MARK_MEASUREMENT);
        stats_influx_flush_off(r->s);
        sir_end(r, 0, NULL);
        return;
    }
    char err[120];
    snprintf(err, sizeof err, "statistics recovery: writing the mark: HTTP %ld", res->status);
    sir_end(r, -1, err);
}

/* (4) The mark: moved past the feed entries just recovered (the caller's
 * batch included: its rows go before its ack), or set for want of one; 0 when
 * the flush is off (nothing to recover next time). */
static void sir_finish(stats_influx_recover *r) {
    stats_influx_flush *f = stats_influx_flush_of(r->s);
    if (f && r->mark <= 0 && r->limit <= 0) {
        /* no mark yet, and the caller's batch wrote no feed point: its rows go before its ack (the slow path),
         * but no safe mark is known -- set by the next caller */
        r->again = 1;
        sir_end(r, 0, NULL);
        return;
    }
    int64_t last = r->feed_last < r->limit ? r->feed_last : r->limit;
    int64_t want = !f ? 0 : last > r->mark ? last : r->mark > 0 ? r->mark : 1;
    if (want == r->mark) {
        if (f) stats_influx_flush_set_mark(f, want);
        sir_end(r, 0, NULL);
        return;
    }
    r->mark = want;
    sbuf b;
    sbuf_init(&b);
    stats_influx_flush_mark_line(&b, r->mark);
    const stats_influx_io *io = stats_influx_io_of(r->s);
    int rc = sbuf_failed(&b) ? -1 : io->write(io->ctx, stats_influx_rp(r->s, 1), b.data, b.len, sir_mark_done, r);
    sbuf_free(&b);
    if (rc != 0) sir_end(r, -1, "statistics recovery: cannot start a write to InfluxDB");
}

static int sir_ent_cmp(const void *a, const void *b) {
    const sir_ent *x = a, *y = b;
    int c = strcmp(x->home, y->home);
    return c ? c : strcmp(x->entity, y->entity);
}

static int sir_time_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int sir_run_push(stats_influx_recover *r, size_t *cap, size_t ent, int64_t lo, int64_t hi, size_t n) {
    if (r->nruns == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        sir_run *p = realloc(r->rv, c * sizeof *p);
        if (!p) return -1;
        r->rv = p;
        *cap = c;
    }
    r->rv[r->nruns++] = (sir_run){ent, lo, hi, n, 0};
    return 0;
}

/* Each entity's times sorted and split into runs (by home, entity, time). */
static int sir_make_runs(stats_influx_recover *r) {
    size_t cap = 0;
    qsort(r->ents, r->n, sizeof *r->ents, sir_ent_cmp);
    for (size_t i = 0; i < r->n; i++) {
        sir_ent *e = &r->ents[i];
        qsort(e->t, e->nt, sizeof *e->t, sir_time_cmp);
        size_t a = 0;
        for (size_t k = 1; k <= e->nt; k++) {
            if (k < e->nt && e->t[k] - e->t[k - 1] <= SIR_GAP_US && k - a < SIR_REQ_STATES) continue;
            if (sir_run_push(r, &cap, i, e->t[a], e->t[k - 1], k - a) != 0) return -1;
            a = k;
        }
    }
    return 0;
}

static void sir_round_done(int rc, const char *err, void *arg);

/* (3) The next round of the first home with runs left: its entities' next
 * runs, up to SIR_REQ_STATES states; or (4). */
static void sir_next_round(stats_influx_recover *r) {
    while (r->next < r->nruns && r->rv[r->next].done) r->next++;
    if (r->next >= r->nruns) {
        sir_finish(r);
        return;
    }
    const char *home = r->ents[r->rv[r->next].ent].home;
    size_t n = 0, states = 0, last = (size_t)-1;
    for (size_t k = r->next; k < r->nruns; k++) {
        sir_run *run = &r->rv[k];
        const sir_ent *e = &r->ents[run->ent];
        if (strcmp(e->home, home) != 0) break;
        if (run->done || run->ent == last) continue;   /* an entity's next run only */
        last = run->ent;
        if (n && states + run->states > SIR_REQ_STATES) continue;
        run->done = 1;
        states += run->states;
        r->spans[n++] = (stats_influx_span){e->entity, run->tmin_us, run->tmax_us};
    }
    r->spans_n = n;
    r->requests++;
    stats_influx_recompute(r->s, home, r->spans, n, sir_round_done, r);
}

static void sir_round_done(int rc, const char *err, void *arg) {
    stats_influx_recover *r = arg;
    if (rc != 0) {
        sir_end(r, -1, err);
        return;
    }
    r->runs_done += r->spans_n;
    sir_next_round(r);
}

static void sir_feed_done(const httpc_response *res, void *arg);

/* (2) The next page of the feed after r->read_after. */
static void sir_feed_read(stats_influx_recover *r) {
    sbuf q;
    sbuf_init(&q);
    sir_feed_sql(&q, r->read_after, r->feed_last);
    r->page_rows = 0;
    r->page_last = 0;
    const stats_influx_io *io = stats_influx_io_of(r->s);
    int rc = sbuf_failed(&q) ? -1 : io->query(io->ctx, q.data, sir_feed_done, r);
    sbuf_free(&q);
    if (rc != 0) sir_end(r, -1, "statistics recovery: cannot start a query to InfluxDB");
}

static void sir_feed_done(const httpc_response *res, void *arg) {
    stats_influx_recover *r = arg;
    char err[300];
    if (sir_answer(res, sir_feed_row, r, err, sizeof err) != 0) {
        sir_end(r, -1, err);
        return;
    }
    if (r->page_rows >= SIR_FEED_PAGE && r->page_last > r->read_after) {
        r->read_after = r->page_last;   /* a full page: the rest after its last entry */
        sir_feed_read(r);
        return;
    }
    if (r->n) {
        if (sir_make_runs(r) != 0 || !(r->spans = malloc(r->n * sizeof *r->spans))) {
            sir_end(r, -1, "statistics recovery: out of memory");
            return;
        }
        r->entities += r->n;
        log_info("statistics: %zu entities have states after the last flush (feed sequence %lld): recomputing "
                 "them (%zu runs)", r->n, (long long)r->mark, r->nruns);
    }
    sir_next_round(r);
}

static int sir_mark_row(const influx_answer_row *row, void *arg) {
    stats_influx_recover *r = arg;
    if (row->stmt == 0) {
        json_t *v = influx_answer_get(row, "seq");
        if (json_is_integer(v)) r->mark = (int64_t)json_integer_value(v);
    } else {
        int64_t head = influx_feed_head_row(row);   /* either form's latest point */
        if (head > r->feed_last) r->feed_last = head;
    }
    return 0;
}

static void sir_mark_read(const httpc_response *res, void *arg) {
    stats_influx_recover *r = arg;
    char err[300];
    r->mark = r->feed_last = 0;
    if (sir_answer(res, sir_mark_row, r, err, sizeof err) != 0) {
        sir_end(r, -1, err);
        return;
    }
    if (r->mark <= 0 || r->feed_last <= r->mark) {
        sir_finish(r);   /* no mark, or no feed entry after it */
        return;
    }
    r->read_after = r->mark;
    sir_feed_read(r);
}

/* (1) The mark and the feed's latest point. */
static void sir_start(stats_influx_recover *r) {
    r->busy = 1;
    r->runs++;
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SELECT \"seq\" FROM ");
    stats_influx_from(&q, stats_influx_rp(r->s, 1), STATS_INFLUX_MARK_MEASUREMENT);
    sbuf_addc(&q, ';');
    influx_feed_sql_head(&q, 0); /* every point: the recovery runs before this process's first statistics */
    const stats_influx_io *io = stats_influx_io_of(r->s);
    int rc = sbuf_failed(&q) ? -1 : io->query(io->ctx, q.data, sir_mark_read, r);
    sbuf_free(&q);
    if (rc != 0) sir_end(r, -1, "statistics recovery: cannot start a query to InfluxDB");
}

/* ---- the interface -------------------------------------------------------- */

int stats_influx_recover_new(stats_influx *s, stats_influx_recover **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return -1;
    (*out)->s = s;
    return 0;
}

void stats_influx_recover_free(stats_influx_recover *r) {
    if (!r) return;
    sir_clear(r);
    stats_influx_waiters_wake(&r->waiters, -1, "shutting down");
    free(r);
}

int stats_influx_recover_done(const stats_influx_recover *r) {
    return r->done;
}

void stats_influx_recover_run(stats_influx_recover *r, int64_t limit, stats_influx_done_fn done, void *arg) {
    if (r->done) {
        done(0, NULL, arg);
        return;
    }
    if (stats_influx_waiters_add(&r->waiters, done, arg) != 0) return;
    if (!r->busy) {
        r->limit = limit;
        sir_start(r);
    }
}

json_t *stats_influx_recover_info(const stats_influx_recover *r) {
    return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "done", r->done, "mark", (json_int_t)r->mark, "entities",
                     (json_int_t)r->entities, "spans", (json_int_t)r->runs_done, "requests", (json_int_t)r->requests,
                     "runs", (json_int_t)r->runs, "failures", (json_int_t)r->failures, "last_error", r->last_error);
}

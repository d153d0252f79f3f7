/* stats_influx_catchup.c -- see stats_influx_catchup.h. A step is one of:
 *   list:   SHOW TAG VALUES of home_id, then of entity_id per home (once
 *           per start): the (entity, home) pairs, each home's own series;
 *   decide: the entity's mark, first raw state, first hourly and 5-minute
 *           rows; a catch-up is needed when the first state's hour has no
 *           hourly row (or its 5-minute period no 5-minute row while they
 *           are kept): the first mark (at = that hour) is written;
 *   chunk:  the raw states from `at` (STATISTICS_CATCHUP_CHUNK + 1 of them)
 *           and the latest hourly row before `at` (the carry, as for a late
 *           state; the mark's when there is none) fix the chunk's end hb (the last one's hour; fewer: the entity's
 *           end, the 5-minute period after its latest state); then the
 *           stored 5-minute rows of [at, hb) (those no longer in force get a
 *           break marker, as stats_influx.c's si_emit), the stored hourly row
 *           before hb (convergence) and, when one hour holds more states than
 *           a chunk, that hour's states and whether one follows; rows computed, 5-minute rows
 *           written (those inside the 5-minute policy), then the hourly rows
 *           with the next mark. */
#include "stats_influx_catchup.h"
#include "config.h"
#include "influx_answer.h"
#include "influx_points.h"
#include "influx_time.h"
#include "lineproto.h"
#include "log.h"
#include "service.h"
#include "storage_maint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIC_ROW_TOL 1e-12

enum { SIC_LIST, SIC_DECIDE, SIC_CHUNK };

struct stats_influx_catchup {
    stats_influx *s;
    const stats_influx_io *io;
    char **ents;                /* "entity\0home\0" (home: the home_id tag's value, "" = the default home) */
    size_t nents, next;
    char **homes;               /* list: the home_id tag's values ("" first: the default home) */
    size_t nhomes;
    int listed, done, busy;
    int starting, start_failed;   /* inside stats_influx_catchup_step; its start failed there */
    long long chunk;            /* STATISTICS_CATCHUP_CHUNK */
    /* the entity being caught up (ents[next]) */
    int have_range, has_to;
    int64_t at, to;
    stats_kind kind;
    stats_carry carry;
    /* one step */
    void (*step_done)(void *arg);
    void *step_arg;
    stats_sample *smp;
    stats_kind *kinds;
    size_t ns, scap, nread;
    int64_t t_cut, t_last;      /* time of the (CHUNK+1)-th state read, of the last one */
    int64_t hb;
    int final, reread, later;   /* later: a state after the re-read hour */
    int64_t *old5;
    size_t nold5, old5cap;
    int has_hold, has_before;
    stats_row hold;             /* the stored hourly row before hb */
    stats_row before;           /* the stored hourly row before at */
    int hold_kind;
    stats_row *rows;
    size_t nrows, rcap;
    stats_carry ncarry;
    sbuf l5, lh;
    /* decide's answer */
    int mark_found, mark_done, has_first, has_h, has_5;
    int64_t first, first_h, first_5;
    stats_carry mcarry;
    int64_t mat, mto;
    int mhas_to, mkind;
    unsigned long long checked, caught_up, chunks, states_read, rows_written, failures, refused;
    char last_error[200];
};

int stats_influx_catchup_open(stats_influx *s, stats_influx_catchup **out) {
    stats_influx_catchup *c = calloc(1, sizeof *c);
    if (!c) return -1;
    if (config_int(storage_maint_vars, "STATISTICS_CATCHUP_CHUNK", &c->chunk) != 0) {
        free(c);
        return -1;
    }
    c->s = s;
    c->io = stats_influx_io_of(s);
    sbuf_init(&c->l5);
    sbuf_init(&c->lh);
    *out = c;
    return 0;
}

static void sic_free_list(stats_influx_catchup *c) {
    for (size_t i = 0; i < c->nents; i++) free(c->ents[i]);
    free(c->ents);
    c->ents = NULL;
    c->nents = 0;
    for (size_t i = 0; i < c->nhomes; i++) free(c->homes[i]);
    free(c->homes);
    c->homes = NULL;
    c->nhomes = 0;
}

void stats_influx_catchup_close(stats_influx_catchup *c) {
    if (!c) return;
    sic_free_list(c);
    free(c->smp);
    free(c->kinds);
    free(c->old5);
    free(c->rows);
    sbuf_free(&c->l5);
    sbuf_free(&c->lh);
    free(c);
}

int stats_influx_catchup_done(const stats_influx_catchup *c) {
    return c->done;
}

static const char *sic_entity(const stats_influx_catchup *c) {
    return c->listed && c->next < c->nents ? c->ents[c->next] : NULL;
}

/* The home of the entity being caught up (issue 18): the tag's value, "" = the default home. */
static const char *sic_home(const stats_influx_catchup *c) {
    const char *e = sic_entity(c);
    return e ? e + strlen(e) + 1 : "";
}

json_t *stats_influx_catchup_info(const stats_influx_catchup *c) {
    const char *home = c->done ? NULL : sic_entity(c) ? sic_home(c) : NULL;
    return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s?,s:s?}", "done", c->done, "entities_checked",
                     (json_int_t)c->checked, "entities_caught_up", (json_int_t)c->caught_up, "chunks",
                     (json_int_t)c->chunks, "states_read", (json_int_t)c->states_read, "rows_written",
                     (json_int_t)c->rows_written, "failures", (json_int_t)c->failures, "refused",
                     (json_int_t)c->refused, "last_error", c->last_error, "current", c->done ? NULL : sic_entity(c),
                     "current_home", home && *home ? home : NULL);
}

/* ---- the end of a step ------------------------------------------------- */

static void sic_end(stats_influx_catchup *c, int rc, const char *err) {
    if (rc) {
        c->failures++;
        snprintf(c->last_error, sizeof c->last_error, "%.190s", err ? err : "failed");
        log_warn("statistics catch-up step failed (tried again): %s", c->last_error);
    }
    c->ns = c->nread = c->nold5 = c->nrows = 0;
    c->has_hold = 0;
    if (c->have_range && sic_entity(c)) stats_influx_forget(c->s, sic_entity(c), sic_home(c));   /* rows may have changed */
    sbuf_free(&c->l5);
    sbuf_free(&c->lh);
    sbuf_init(&c->l5);
    sbuf_init(&c->lh);
    c->busy = 0;
    void (*done)(void *) = c->step_done;
    c->step_done = NULL;
    if (done) done(c->step_arg);
}

/* Moves to the next entity; the pass is done after the last. */
static void sic_next_entity(stats_influx_catchup *c) {
    c->have_range = 0;
    c->next++;
    if (c->next >= c->nents) {
        c->done = 1;
        if (c->caught_up)
            log_info("statistics catch-up done: %llu of %llu entities, %llu chunks, %llu states", c->caught_up,
                     c->checked, c->chunks, c->states_read);
        sic_free_list(c);
    }
}

/* ---- requests ---------------------------------------------------------- */

static void sic_sep(sbuf *q) {
    if (q->len) sbuf_addc(q, ';');
}

static void sic_rows_q(stats_influx_catchup *c, sbuf *q, int hourly, int64_t lo, int64_t hi, int limit) {
    stats_influx_select_rows(q, stats_influx_rp(c->s, hourly), sic_entity(c), sic_home(c), hourly, lo, hi, 0, limit);
}

/* raw states in [lo, hi), oldest first */
static void sic_states_q(stats_influx_catchup *c, sbuf *q, int64_t lo, int64_t hi, long long limit) {
    sic_sep(q);
    sbuf_adds(q, "SELECT \"record\" FROM ");
    influxql_ident(q, c->io->events_measurement);
    stats_influx_where_entity(q, sic_entity(c), sic_home(c));
    sbuf_adds(q, " AND \"event_type\" = 'state_changed'");
    if (lo > INT64_MIN) sbuf_printf(q, " AND time >= %lld", (long long)influx_time_ns_sat(lo));
    if (hi < INT64_MAX) sbuf_printf(q, " AND time < %lld", (long long)influx_time_ns_sat(hi));
    sbuf_adds(q, " ORDER BY time ASC");
    if (limit) sbuf_printf(q, " LIMIT %lld", limit);
}

static int sic_query(stats_influx_catchup *c, sbuf *q, httpc_done_cb cb) {
    int rc = sbuf_failed(q) ? -1 : c->io->query(c->io->ctx, q->data, cb, c);
    sbuf_free(q);
    return rc;
}

/* A query's answer walked with fn; 0, or -1 (the step has ended). */
static int sic_answer(stats_influx_catchup *c, const httpc_response *r, influx_answer_fn fn) {
    char err[300];
    if (r->status != 200) {
        snprintf(err, sizeof err, "influxdb: HTTP %ld%s%.200s", r->status, r->error ? ": " : "",
                 r->error ? r->error : "");
        sic_end(c, -1, err);
        return -1;
    }
    if (influx_answer_walk(r->body, r->body_len, -1, fn, c, err, sizeof err) != 0) {
        sic_end(c, -1, err);
        return -1;
    }
    return 0;
}

/* A write's result: 0 (stored, or points refused: beyond their policy --
 * the hourly rows stand for them -- or, counted and logged, anything else
 * InfluxDB refuses in a partial write, e.g. a field type conflict, which a
 * retry would meet again and so block the pass), or -1 (the step has ended:
 * tried again). */
static int sic_written(stats_influx_catchup *c, const httpc_response *r) {
    if (r->status == 204 || r->status == 200) return 0;
    char err[300];
    snprintf(err, sizeof err, "statistics catch-up write: HTTP %ld: %.*s", r->status,
             (int)(r->body_len < 200 ? r->body_len : 200), r->body ? r->body : "");
    if (r->status == 400) {
        if (!r->body_len || !memmem(r->body, r->body_len, "beyond retention policy", 23)) {
            c->refused++;
            snprintf(c->last_error, sizeof c->last_error, "%.190s", err);
            log_error("statistics catch-up rows refused by InfluxDB (rows missing): %s", err);
        }
        return 0;
    }
    sic_end(c, -1, err);
    return -1;
}

/* ---- list -------------------------------------------------------------- */

/* By entity, then home (the default home first). */
static int sic_cmp(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int c = strcmp(x, y);
    return c ? c : strcmp(x + strlen(x) + 1, y + strlen(y) + 1);
}

/* Appends a copy of "a\0b\0" (b NULL: a alone) to *v. 0/-1. */
static int sic_push(char ***v, size_t *n, const char *a, const char *b) {
    char **p = realloc(*v, (*n + 1) * sizeof *p);
    if (!p) return -1;
    *v = p;
    size_t na = strlen(a) + 1, nb = b ? strlen(b) + 1 : 0;
    char *e = malloc(na + nb);
    if (!e) return -1;
    memcpy(e, a, na);
    if (b) memcpy(e + na, b, nb);
    p[(*n)++] = e;
    return 0;
}

static int sic_home_row(const influx_answer_row *row, void *arg) {
    stats_influx_catchup *c = arg;
    const char *v = influx_answer_str(row, "value");
    return v && *v ? sic_push(&c->homes, &c->nhomes, v, NULL) : 0;
}

/* Statement i lists home i's entities. */
static int sic_list_row(const influx_answer_row *row, void *arg) {
    stats_influx_catchup *c = arg;
    const char *v = influx_answer_str(row, "value");
    if (!v || row->stmt < 0 || (size_t)row->stmt >= c->nhomes) return 0;
    return sic_push(&c->ents, &c->nents, v, c->homes[row->stmt]);
}

static void sic_list_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    if (sic_answer(c, r, sic_list_row) != 0) {
        sic_free_list(c);
        return;
    }
    if (c->nents) qsort(c->ents, c->nents, sizeof *c->ents, sic_cmp);
    c->listed = 1;
    c->next = 0;
    if (c->nents == 0) c->done = 1;
    sic_end(c, 0, NULL);
}

/* The homes known: one SHOW TAG VALUES of entity_id per home (issue 18). */
static void sic_homes_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    sic_free_list(c);
    if (sic_push(&c->homes, &c->nhomes, "", NULL) != 0) { /* the default home: points without the tag */
        sic_free_list(c);
        sic_end(c, -1, "statistics catch-up: out of memory");
        return;
    }
    if (sic_answer(c, r, sic_home_row) != 0) {
        sic_free_list(c);
        return;
    }
    sbuf q;
    sbuf_init(&q);
    for (size_t i = 0; i < c->nhomes; i++) {
        sic_sep(&q);
        sbuf_adds(&q, "SHOW TAG VALUES FROM ");
        influxql_ident(&q, c->io->events_measurement);
        sbuf_adds(&q, " WITH KEY = \"entity_id\" WHERE \"" INFLUX_HOME_TAG "\" = ");
        influxql_string(&q, c->homes[i]);
    }
    if (sic_query(c, &q, sic_list_done) != 0) sic_end(c, -1, "statistics catch-up: cannot start a query");
}

static int sic_list(stats_influx_catchup *c) {
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SHOW TAG VALUES FROM ");
    influxql_ident(&q, c->io->events_measurement);
    sbuf_adds(&q, " WITH KEY = \"" INFLUX_HOME_TAG "\"");
    return sic_query(c, &q, sic_homes_done);
}

/* ---- the mark ---------------------------------------------------------- */

static double sic_num(const influx_answer_row *row, const char *name) {
    json_t *v = influx_answer_get(row, name);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static long long sic_int(const influx_answer_row *row, const char *name) {
    json_t *v = influx_answer_get(row, name);
    return json_is_integer(v) ? (long long)json_integer_value(v) : (long long)sic_num(row, name);
}

static void sic_float(sbuf *b, const char *key, double v) {
    sbuf_printf(b, ",%s=", key);
    if (lineproto_field_float(b, v) != 0) sbuf_addc(b, '0');
}

/* The mark after a chunk (or the first one): where the next chunk starts
 * and the carry there. */
static void sic_mark_line(stats_influx_catchup *c, sbuf *b, int64_t at, int done, stats_kind kind,
                          const stats_carry *k) {
    lineproto_measurement(b, STATS_INFLUX_CATCHUP_MEASUREMENT);
    sbuf_adds(b, ",entity_id=");
    lineproto_tag(b, sic_entity(c));
    if (*sic_home(c)) { /* another home's mark carries its home_id tag (issue 18), the default home's none */
        sbuf_adds(b, "," INFLUX_HOME_TAG "=");
        lineproto_tag(b, sic_home(c));
    }
    sbuf_printf(b, " at=%lldi,done=%di,has_to=%di,to=%lldi,kind=%di,in_force=%di,has_prev=%di,has_last_reset=%di,"
                   "last_reset_us=%lldi",
                (long long)at, done, c->has_to, (long long)(c->has_to ? c->to : 0), (int)kind, k->in_force,
                k->has_prev, k->has_last_reset, (long long)(k->has_last_reset ? k->last_reset_us : 0));
    sic_float(b, "value", k->in_force ? k->value : 0);
    sic_float(b, "prev", k->has_prev ? k->prev : 0);
    sic_float(b, "sum", k->sum);
    sbuf_adds(b, " 0\n");
}

/* ---- decide ------------------------------------------------------------ */

static int sic_decide_row(const influx_answer_row *row, void *arg) {
    stats_influx_catchup *c = arg;
    int64_t t_us = influx_answer_time(row) / 1000;
    switch (row->stmt) {
    case 0:
        c->mark_found = 1;
        c->mark_done = sic_int(row, "done") != 0;
        c->mat = (int64_t)sic_int(row, "at");
        c->mhas_to = sic_int(row, "has_to") != 0;
        c->mto = (int64_t)sic_int(row, "to");
        c->mkind = (int)sic_int(row, "kind");
        memset(&c->mcarry, 0, sizeof c->mcarry);
        c->mcarry.in_force = sic_int(row, "in_force") != 0;
        c->mcarry.value = sic_num(row, "value");
        c->mcarry.has_prev = sic_int(row, "has_prev") != 0;
        c->mcarry.prev = sic_num(row, "prev");
        c->mcarry.sum = sic_num(row, "sum");
        c->mcarry.has_last_reset = sic_int(row, "has_last_reset") != 0;
        c->mcarry.last_reset_us = (int64_t)sic_int(row, "last_reset_us");
        break;
    case 1: c->has_first = 1, c->first = t_us; break;
    case 2: c->has_h = 1, c->first_h = t_us; break;
    case 3: c->has_5 = 1, c->first_5 = t_us; break;
    default: break;
    }
    return 0;
}

static void sic_first_mark_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    if (sic_written(c, r) != 0) return;
    c->have_range = 1;
    c->caught_up++;
    log_info("statistics catch-up: %s%s%s has history before its statistics, computing it in steps", sic_entity(c),
             *sic_home(c) ? " of home " : "", sic_home(c));
    sic_end(c, 0, NULL);
}

static void sic_decide_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    c->mark_found = c->has_first = c->has_h = c->has_5 = 0;
    if (sic_answer(c, r, sic_decide_row) != 0) return;
    c->checked++;
    if (c->mark_found) {
        if (c->mark_done) {
            sic_next_entity(c);
        } else {   /* begun before a restart */
            c->have_range = 1;
            c->caught_up++;
            c->at = c->mat;
            c->has_to = c->mhas_to;
            c->to = c->mto;
            c->kind = (stats_kind)c->mkind;
            c->carry = c->mcarry;
        }
        sic_end(c, 0, NULL);
        return;
    }
    int needed = c->has_first && (!c->has_h || stats_floor(c->first, STATS_HOUR_US) < c->first_h ||
                                  (c->has_5 && stats_floor(c->first_5, STATS_HOUR_US) == c->first_h &&
                                   stats_floor(c->first, STATS_5MIN_US) < c->first_5));
    if (!needed) {   /* statistics from its first state on (or no state at all) */
        sic_next_entity(c);
        sic_end(c, 0, NULL);
        return;
    }
    /* the first mark before any row: a restart must not take the rows of
     * the first chunk for statistics kept from the start */
    c->at = stats_floor(c->first, STATS_HOUR_US);
    c->has_to = c->has_h;
    c->to = c->has_h ? c->first_h : 0;
    c->kind = STATS_KIND_MEASUREMENT;
    memset(&c->carry, 0, sizeof c->carry);
    sbuf_free(&c->lh);
    sbuf_init(&c->lh);
    sic_mark_line(c, &c->lh, c->at, 0, c->kind, &c->carry);
    if (sbuf_failed(&c->lh) || c->io->write(c->io->ctx, stats_influx_rp(c->s, 1), c->lh.data, c->lh.len,
                                            sic_first_mark_done, c) != 0)
        sic_end(c, -1, "statistics catch-up: cannot start a write to InfluxDB");
}

static int sic_decide(stats_influx_catchup *c) {
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SELECT * FROM ");
    stats_influx_from(&q, stats_influx_rp(c->s, 1), STATS_INFLUX_CATCHUP_MEASUREMENT);
    stats_influx_where_entity(&q, sic_entity(c), sic_home(c));
    sic_states_q(c, &q, INT64_MIN, INT64_MAX, 1);
    sic_rows_q(c, &q, 1, INT64_MIN, INT64_MAX, 1);
    sic_rows_q(c, &q, 0, INT64_MIN, INT64_MAX, 1);
    return sic_query(c, &q, sic_decide_done);
}

/* ---- chunk ------------------------------------------------------------- */

static int sic_push_state(stats_influx_catchup *c, const influx_answer_row *row) {
    int64_t t_us = influx_answer_time(row) / 1000;
    const char *rec = influx_answer_str(row, "record");
    stats_sample x;
    stats_kind k;
    if (!rec || stats_sample_from_record(rec, strlen(rec), &x, &k) != 1) return 0;
    if (c->ns == c->scap) {
        size_t cap = c->scap ? c->scap * 2 : 512;
        stats_sample *p = realloc(c->smp, cap * sizeof *p);
        if (!p) return -1;
        c->smp = p;
        stats_kind *kp = realloc(c->kinds, cap * sizeof *kp);
        if (!kp) return -1;
        c->kinds = kp;
        c->scap = cap;
    }
    x.t_us = t_us;
    c->kinds[c->ns] = k;
    c->smp[c->ns++] = x;
    return 0;
}

static int sic_first_row(const influx_answer_row *row, void *arg) {
    stats_influx_catchup *c = arg;
    if (row->stmt == 1) {   /* the latest hourly row before the chunk */
        int kind;
        if (stats_influx_row_read(row->columns, row->values, &c->before, &kind) == 0) c->has_before = 1;
        return 0;
    }
    int64_t t_us = influx_answer_time(row) / 1000;
    if ((long long)c->nread == c->chunk) c->t_cut = t_us;
    c->t_last = t_us;
    c->nread++;
    return sic_push_state(c, row);
}

static int sic_second_row(const influx_answer_row *row, void *arg) {
    stats_influx_catchup *c = arg;
    if (row->stmt == 2) return sic_push_state(c, row);
    if (row->stmt == 3) {
        c->later = 1;
        return 0;
    }
    stats_row r;
    int kind;
    if (stats_influx_row_read(row->columns, row->values, &r, &kind) != 0) return 0;
    if (row->stmt == 1) {
        c->has_hold = 1;
        c->hold = r;
        c->hold_kind = kind;
        return 0;
    }
    if (c->nold5 == c->old5cap) {
        size_t cap = c->old5cap ? c->old5cap * 2 : 64;
        int64_t *p = realloc(c->old5, cap * sizeof *p);
        if (!p) return -1;
        c->old5 = p;
        c->old5cap = cap;
    }
    c->old5[c->nold5++] = r.start_us;
    return 0;
}

typedef struct sic_emit_ctx {
    stats_influx_catchup *c;
    size_t old_cursor;
} sic_emit_ctx;

static int sic_push_row(stats_influx_catchup *c, const stats_row *r) {
    if (c->nrows == c->rcap) {
        size_t cap = c->rcap ? c->rcap * 2 : 64;
        stats_row *p = realloc(c->rows, cap * sizeof *p);
        if (!p) return -1;
        c->rows = p;
        c->rcap = cap;
    }
    c->rows[c->nrows++] = *r;
    return 0;
}

/* New rows, and break markers over stored rows that lost their value
 * (c->ncarry is the state at the period's end), as stats_influx.c does. */
static int sic_emit(const stats_row *r, int64_t start, void *arg) {
    sic_emit_ctx *e = arg;
    stats_influx_catchup *c = e->c;
    while (e->old_cursor < c->nold5 && c->old5[e->old_cursor] < start) e->old_cursor++;
    if (r) return sic_push_row(c, r);
    if (e->old_cursor >= c->nold5 || c->old5[e->old_cursor] != start) return 0;
    stats_row m = {.start_us = start, .mean = NAN, .min = NAN, .max = NAN};
    m.has_state = c->ncarry.has_prev;
    m.state = c->ncarry.prev;
    m.sum = c->ncarry.sum;
    m.has_last_reset = c->ncarry.has_last_reset;
    m.last_reset_us = c->ncarry.last_reset_us;
    return sic_push_row(c, &m);
}

static int sic_close(double a, double b) {
    return fabs(a - b) <= SIC_ROW_TOL * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* The stored hourly row before hb hands the same carry to the rows after it
 * as the recomputed one: those rows need nothing. */
static int sic_converged(const stats_influx_catchup *c, const stats_row *h, stats_kind kind) {
    if (!c->has_to || !c->has_hold || c->hold.start_us != h->start_us ||
        h->start_us < stats_floor(c->to, STATS_HOUR_US) || c->hold_kind != (int)kind)
        return 0;
    const stats_row *o = &c->hold;
    if (o->has_last != h->has_last || (h->has_last && !sic_close(o->last, h->last))) return 0;
    if (kind == STATS_KIND_MEASUREMENT) return 1;
    return o->has_state == h->has_state && (!h->has_state || sic_close(o->state, h->state)) &&
           sic_close(o->sum, h->sum) && o->has_last_reset == h->has_last_reset &&
           (!h->has_last_reset || o->last_reset_us / 1000 == h->last_reset_us / 1000);
}

static void sic_chunk_written(const httpc_response *r, void *arg);

static void sic_marked(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    if (sic_written(c, r) != 0) return;
    c->at = c->hb;
    c->carry = c->ncarry;
    c->chunks++;
    c->states_read += c->ns;
    stats_influx_forget(c->s, sic_entity(c), sic_home(c));
    if (c->final) sic_next_entity(c);
    sic_end(c, 0, NULL);
}

static void sic_chunk_written(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    if (r && sic_written(c, r) != 0) return;
    if (c->io->write(c->io->ctx, stats_influx_rp(c->s, 1), c->lh.data, c->lh.len, sic_marked, c) != 0)
        sic_end(c, -1, "statistics catch-up: cannot start a write to InfluxDB");
}

/* The chunk's rows and lines; 0, or -1 (out of memory). */
static int sic_compute(stats_influx_catchup *c) {
    stats_kind kind = c->kind;
    for (size_t i = 0; i < c->ns; i++)
        if (c->smp[i].numeric) kind = c->kinds[i];   /* the latest numeric state's, as a batch */
    c->ncarry = c->carry;
    c->nrows = 0;
    int numeric = c->carry.has_prev || c->carry.in_force;
    for (size_t i = 0; i < c->ns && !numeric; i++) numeric = c->smp[i].numeric;
    sic_emit_ctx e = {c, 0};
    /* no numeric state yet: not an entity with statistics (on/off, text), as stats_influx.c */
    if (numeric && c->hb > c->at &&
        stats_compute(kind, &c->ncarry, c->smp, c->ns, STATS_5MIN_US, c->at, c->hb, sic_emit, &e) != 0)
        return -1;
    int64_t h5 = stats_influx_horizon5(c->s, (int64_t)service_now_us());
    for (size_t i = 0; i < c->nrows; i++)
        if (c->rows[i].start_us >= h5) stats_influx_row_line(&c->l5, sic_entity(c), sic_home(c), 0, kind, &c->rows[i]);
    size_t k = 0;
    stats_row last_hour;
    int have_last_hour = 0;
    while (k < c->nrows) {
        int64_t h = stats_floor(c->rows[k].start_us, STATS_HOUR_US);
        size_t m = k;
        while (m < c->nrows && c->rows[m].start_us < h + STATS_HOUR_US) m++;
        stats_merge(&c->rows[k], m - k, h, &last_hour);
        have_last_hour = 1;
        stats_influx_row_line(&c->lh, sic_entity(c), sic_home(c), 1, kind, &last_hour);
        k = m;
    }
    c->rows_written += c->nrows + (size_t)(c->lh.len ? 1 : 0);
    if (!c->final && have_last_hour && last_hour.start_us == c->hb - STATS_HOUR_US &&
        sic_converged(c, &last_hour, kind))
        c->final = 1;   /* the rows after hb were computed from this very carry */
    c->kind = kind;
    sic_mark_line(c, &c->lh, c->hb, c->final, kind, &c->ncarry);
    return sbuf_failed(&c->l5) || sbuf_failed(&c->lh) ? -1 : 0;
}

static void sic_second_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    if (c->reread) c->ns = 0;
    c->later = 0;
    if (sic_answer(c, r, sic_second_row) != 0) return;
    if (c->reread && !c->later && c->ns) {   /* the entity's last hour: its rows end with its latest state */
        c->final = 1;
        c->hb = stats_floor(c->smp[c->ns - 1].t_us, STATS_5MIN_US) + STATS_5MIN_US;
    }
    if (sic_compute(c) != 0) {
        sic_end(c, -1, "statistics catch-up: out of memory");
        return;
    }
    if (c->l5.len == 0) {
        sic_chunk_written(NULL, c);
        return;
    }
    if (c->io->write(c->io->ctx, stats_influx_rp(c->s, 0), c->l5.data, c->l5.len, sic_chunk_written, c) != 0)
        sic_end(c, -1, "statistics catch-up: cannot start a write to InfluxDB");
}

static void sic_first_done(const httpc_response *r, void *arg) {
    stats_influx_catchup *c = arg;
    c->nread = c->ns = 0;
    c->has_before = 0;
    if (sic_answer(c, r, sic_first_row) != 0) return;
    /* the carry at `at`: what the rows before it hand on, as for a late state
     * (a late batch may have changed them since the mark); the mark's when
     * there is none (nothing numeric before) */
    if (c->has_before) stats_carry_from_row(&c->before, &c->carry);
    c->reread = 0;
    c->final = (long long)c->nread <= c->chunk;
    if (c->nread == 0) {
        c->hb = c->at;   /* nothing from here on: only the mark */
    } else if (c->final) {
        c->hb = stats_floor(c->t_last, STATS_5MIN_US) + STATS_5MIN_US;
    } else {
        c->hb = stats_floor(c->t_cut, STATS_HOUR_US);
        if (c->hb <= c->at) {   /* one hour holds more than a chunk: all of it */
            c->hb = c->at + STATS_HOUR_US;
            c->reread = 1;
        }
        while (c->ns && c->smp[c->ns - 1].t_us >= c->hb) c->ns--;
    }
    sbuf q;
    sbuf_init(&q);
    sic_rows_q(c, &q, 0, c->at, c->hb, 0);
    sic_rows_q(c, &q, 1, c->hb - STATS_HOUR_US, c->hb, 1);
    if (c->reread) {
        sic_states_q(c, &q, c->at, c->hb, 0);
        sic_states_q(c, &q, c->hb, INT64_MAX, 1);
    }
    if (sic_query(c, &q, sic_second_done) != 0) sic_end(c, -1, "statistics catch-up: cannot start a query");
}

static int sic_chunk(stats_influx_catchup *c) {
    sbuf q;
    sbuf_init(&q);
    sic_states_q(c, &q, c->at, INT64_MAX, c->chunk + 1);
    stats_influx_select_rows(&q, stats_influx_rp(c->s, 1), sic_entity(c), sic_home(c), 1, INT64_MIN, c->at, 1, 1);
    return sic_query(c, &q, sic_first_done);
}

/* The step proper, once the live statistics' rows are all stored (the step
 * reads and rewrites rows: none may be queued behind it, stats_influx_flush.h). */
static void sic_settled(int rc, const char *err, void *arg) {
    stats_influx_catchup *c = arg;
    if (rc == 0) rc = !c->listed ? sic_list(c) : !c->have_range ? sic_decide(c) : sic_chunk(c);
    if (rc == 0) return;
    if (c->starting) {   /* within stats_influx_catchup_step: it answers -1, done is not called */
        c->start_failed = 1;
        return;
    }
    sic_end(c, -1, err ? err : "statistics catch-up: cannot start a query");
}

int stats_influx_catchup_step(stats_influx_catchup *c, void (*done)(void *arg), void *arg) {
    if (c->done) return 0;
    if (c->busy) return -1;
    c->step_done = done;
    c->step_arg = arg;
    c->busy = 1;
    c->starting = 1;
    c->start_failed = 0;
    stats_influx_settle(c->s, sic_settled, c);
    c->starting = 0;
    if (c->start_failed) {
        c->busy = 0;
        c->step_done = NULL;
        return -1;
    }
    return 1;
}

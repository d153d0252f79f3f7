/* clickhouse_stats.c -- see clickhouse_stats.h. The rules are
 * docs/STATISTICS.md; the recomputation is stats_influx.c's (same steps,
 * ClickHouse SQL instead of InfluxQL):
 *   A1. the latest 5-minute row before B = bucket(tmin) of each entity;
 *   A2. the raw states after tmax up to the first numeric one (where the
 *       range ends: E);
 *   B1. the raw states in [S, E) (S = B, or the end of the carry row when its
 *       value still held: the hold fills the gap);
 *   B2. the existing 5-minute and hourly rows from S's hour on;
 *   then the 5-minute rows of [S, E) are recomputed (a period that lost its
 *   value gets a break marker over its old row), later rows of a total move
 *   by the change of the sum at E, every hour touched is merged again from
 *   its 5-minute rows, and everything is written in one INSERT with a new
 *   version. Each step is one SELECT for all the batch's entities (a batch is
 *   one home). */
#include "clickhouse_stats.h"
#include "clickhouse_read.h"
#include "clickhouse_sql.h"
#include "store_clickhouse.h"
#include "config.h"
#include "json_text.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CS_NEXT_LIMIT 10000 /* raw states read after a batch to find the next numeric one */

enum { CS_HAS_LAST = 1, CS_HAS_STATE = 2, CS_HAS_LAST_RESET = 4, CS_HAS_MEAN = 8, CS_HAS_MINMAX = 16 };

/* (Int64 columns come quoted in JSONEachRow: cs_int reads both forms) */
#define CS_COLS                                                                                                        \
    "entity_id, period, start_us, kind, flags, mean, min, max, last, state, sum, last_reset_us, count, covered_us"

typedef struct cs_rows {
    stats_row *r;
    int *kind;
    size_t n, cap;
} cs_rows;

typedef struct cs_ent {
    char *entity;
    int64_t tmin, tmax;
    int has_kind;           /* a numeric state in the batch fixed the kind */
    stats_kind kind;
    int active;
    int64_t b, end;         /* the 5-minute periods recomputed */
    stats_carry carry;
    cs_rows prev5, next, old5, oldh;
    stats_sample *samples;
    size_t nsamples, samples_cap;
} cs_ent;

struct ch_stats {
    store *st;
    const char *db;
    int64_t last_version;
    unsigned long long entities_updated, rows_written, batches, late_skipped, update_us, failures;
};

typedef struct cs_job {
    ch_stats *s;
    char home[EVENT_HOME_MAX + 1];
    ch_stats_done_fn done;
    void *arg;
    cs_ent *ents;
    size_t n;
    int step;
    unsigned long long t0;
    cs_ent *cur;
    cs_rows fresh, final;
    size_t old_cursor;
    sbuf out;               /* the INSERT's rows */
    size_t nout;
} cs_job;

/* ---- small helpers -------------------------------------------------------- */

static unsigned long long cs_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static int cs_rows_push(cs_rows *rs, const stats_row *r, int kind) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        stats_row *p = realloc(rs->r, cap * sizeof *p);
        if (!p) return -1;
        rs->r = p;
        int *k = realloc(rs->kind, cap * sizeof *k);
        if (!k) return -1;
        rs->kind = k;
        rs->cap = cap;
    }
    rs->r[rs->n] = *r;
    rs->kind[rs->n++] = kind;
    return 0;
}

static void cs_rows_free(cs_rows *rs) {
    free(rs->r);
    free(rs->kind);
    memset(rs, 0, sizeof *rs);
}

static int64_t cs_int(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) return json_integer_value(v);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : 0;
}

static int cs_row_read(json_t *o, stats_row *r, int *kind) {
    long long flags = cs_int(o, "flags");
    memset(r, 0, sizeof *r);
    r->start_us = cs_int(o, "start_us");
    r->mean = flags & CS_HAS_MEAN ? json_number_value(json_object_get(o, "mean")) : NAN;
    r->min = flags & CS_HAS_MINMAX ? json_number_value(json_object_get(o, "min")) : NAN;
    r->max = flags & CS_HAS_MINMAX ? json_number_value(json_object_get(o, "max")) : NAN;
    r->has_last = (flags & CS_HAS_LAST) != 0;
    r->last = r->has_last ? json_number_value(json_object_get(o, "last")) : 0;
    *kind = (int)cs_int(o, "kind");
    if (*kind != STATS_KIND_MEASUREMENT) {
        r->has_state = (flags & CS_HAS_STATE) != 0;
        r->state = r->has_state ? json_number_value(json_object_get(o, "state")) : 0;
        r->sum = json_number_value(json_object_get(o, "sum"));
        r->has_last_reset = (flags & CS_HAS_LAST_RESET) != 0;
        r->last_reset_us = r->has_last_reset ? cs_int(o, "last_reset_us") : 0;
    }
    r->count = cs_int(o, "count");
    r->covered_us = cs_int(o, "covered_us");
    return 0;
}

/* The rows go as RowBinary (little-endian bytes): a Float64 arrives exactly
 * (18.16's text parser can miss the last bit, and a sum re-read off by one
 * ulp makes a repeated recomputation differ). Columns in table order. */
static void cs_bin_int(sbuf *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) sbuf_addc(b, (char)(unsigned char)(v >> (8 * i)));
}

static void cs_bin_str(sbuf *b, const char *s) {
    size_t n = strlen(s);
    for (uint64_t v = n;; v >>= 7) { /* LEB128 length */
        if (v < 0x80) {
            sbuf_addc(b, (char)v);
            break;
        }
        sbuf_addc(b, (char)((v & 0x7f) | 0x80));
    }
    sbuf_add(b, s, n);
}

static void cs_bin_float(sbuf *b, int ok, double v) {
    uint64_t bits = 0;
    if (ok && isfinite(v)) memcpy(&bits, &v, sizeof bits);
    cs_bin_int(b, bits, 8);
}

static void cs_row_line(cs_job *j, const char *entity, int hourly, stats_kind kind, const stats_row *r) {
    sbuf *b = &j->out;
    int has_mean = isfinite(r->mean), has_mm = isfinite(r->min) && isfinite(r->max);
    int total = kind != STATS_KIND_MEASUREMENT;
    int flags = (r->has_last ? CS_HAS_LAST : 0) | (total && r->has_state ? CS_HAS_STATE : 0) |
                (total && r->has_last_reset ? CS_HAS_LAST_RESET : 0) | (has_mean ? CS_HAS_MEAN : 0) |
                (has_mm ? CS_HAS_MINMAX : 0);
    int64_t secs = r->start_us / 1000000;
    cs_bin_str(b, j->home);
    cs_bin_str(b, entity);
    cs_bin_int(b, (uint64_t)hourly, 1);
    cs_bin_int(b, (uint64_t)r->start_us, 8);
    cs_bin_int(b, (uint64_t)(secs < 0 ? 0 : secs > 4294967295LL ? 4294967295LL : secs), 4); /* DateTime */
    cs_bin_int(b, (uint64_t)j->s->last_version, 8);
    cs_bin_int(b, (uint64_t)kind, 1);
    cs_bin_int(b, (uint64_t)flags, 1);
    cs_bin_float(b, has_mean, r->mean);
    cs_bin_float(b, has_mm, r->min);
    cs_bin_float(b, has_mm, r->max);
    cs_bin_float(b, r->has_last, r->last);
    cs_bin_float(b, total && r->has_state, r->state);
    cs_bin_float(b, total, r->sum);
    cs_bin_int(b, total && r->has_last_reset ? (uint64_t)r->last_reset_us : 0, 8);
    cs_bin_int(b, (uint64_t)r->count, 8);
    cs_bin_int(b, (uint64_t)r->covered_us, 8);
    j->nout++;
}

/* ---- open / close / info -------------------------------------------------------- */

int ch_stats_new(store *st, const char *db, ch_stats **out) {
    long long on;
    *out = NULL;
    static const config_var vars[] = {CLICKHOUSE_CONFIG_VARS, CONFIG_END}; /* the default and range, once */
    if (config_int(vars, "CLICKHOUSE_STATISTICS", &on) != 0) return -1;
    if (!on) return 0;
    ch_stats *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->st = st;
    s->db = db;
    *out = s;
    return 0;
}

void ch_stats_free(ch_stats *s) { free(s); }

json_t *ch_stats_info(const ch_stats *s) {
    if (!s) return json_pack("{s:b}", "enabled", 0);
    return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "entities_updated",
                     (json_int_t)s->entities_updated, "rows_written", (json_int_t)s->rows_written, "batches",
                     (json_int_t)s->batches, "late_skipped", (json_int_t)s->late_skipped, "update_us",
                     (json_int_t)s->update_us, "failures", (json_int_t)s->failures);
}

/* ---- a batch ------------------------------------------------------------------------ */

static void cs_job_free(cs_job *j) {
    for (size_t i = 0; i < j->n; i++) {
        cs_ent *e = &j->ents[i];
        free(e->entity);
        cs_rows_free(&e->prev5);
        cs_rows_free(&e->next);
        cs_rows_free(&e->old5);
        cs_rows_free(&e->oldh);
        free(e->samples);
    }
    free(j->ents);
    cs_rows_free(&j->fresh);
    cs_rows_free(&j->final);
    sbuf_free(&j->out);
    free(j);
}

static void cs_job_end(cs_job *j, int rc, const char *err) {
    ch_stats *s = j->s;
    if (rc == 0) s->batches++, s->update_us += cs_mono_us() - j->t0;
    else s->failures++;
    j->done(rc, err, j->arg);
    cs_job_free(j);
}

static cs_ent *cs_ent_find(cs_job *j, const char *entity) {
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->ents[i].entity, entity) == 0) return &j->ents[i];
    return NULL;
}

/* One entry per entity: the span of its committed states, the kind of its
 * latest numeric one. */
static int cs_collect(cs_job *j, const store_batch *b) {
    size_t cap = 0;
    int64_t *kind_t = NULL;
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if ((it->status != STORE_ITEM_STORED && it->status != STORE_ITEM_DUPLICATE) || !it->entity_id ||
            !it->event_type || strcmp(it->event_type, "state_changed") != 0)
            continue;
        stats_sample x;
        stats_kind k;
        if (stats_sample_from_record(it->json, it->json_len, &x, &k) != 1) continue;
        cs_ent *e = cs_ent_find(j, it->entity_id);
        if (!e) {
            if (j->n == cap) {
                cap = cap ? cap * 2 : 16;
                cs_ent *p = realloc(j->ents, cap * sizeof *p);
                if (p) j->ents = p;
                int64_t *t = realloc(kind_t, cap * sizeof *t);
                if (t) kind_t = t;
                if (!p || !t) goto oom;
            }
            e = &j->ents[j->n];
            memset(e, 0, sizeof *e);
            e->entity = strdup(it->entity_id);
            e->tmin = e->tmax = it->time_us;
            e->active = 1;
            kind_t[j->n++] = INT64_MIN;
            if (!e->entity) goto oom;
        }
        if (it->time_us < e->tmin) e->tmin = it->time_us;
        if (it->time_us > e->tmax) e->tmax = it->time_us;
        size_t ei = (size_t)(e - j->ents);
        if (x.numeric && it->time_us >= kind_t[ei]) {
            kind_t[ei] = it->time_us;
            e->has_kind = 1;
            e->kind = k;
        }
    }
    free(kind_t);
    return 0;
oom:
    free(kind_t);
    return -1;
}

/* " AND (entity_id = 'a' AND <col> <op> N OR ...)" over the active entities;
 * which bound each step uses is `what`. 0 when no entity is active. */
enum { CS_BEFORE_B, CS_AFTER_TMAX, CS_RANGE, CS_FROM_HOUR };

static int cs_entities_cond(cs_job *j, sbuf *q, int what) {
    int n = 0;
    sbuf_adds(q, " AND (");
    for (size_t i = 0; i < j->n; i++) {
        cs_ent *e = &j->ents[i];
        if (!e->active) continue;
        if (n++) sbuf_adds(q, " OR ");
        sbuf_adds(q, "(entity_id = ");
        ch_quote(q, e->entity);
        switch (what) {
        case CS_BEFORE_B:
            sbuf_printf(q, " AND start_us < %lld)", (long long)stats_floor(e->tmin, STATS_5MIN_US));
            break;
        case CS_AFTER_TMAX:
            sbuf_printf(q, " AND time_us > %lld)", (long long)e->tmax);
            break;
        case CS_RANGE:
            sbuf_printf(q, " AND time_us >= %lld AND time_us < %lld)", (long long)e->b, (long long)e->end);
            break;
        default:
            sbuf_printf(q, " AND start_us >= %lld)", (long long)stats_floor(e->b, STATS_HOUR_US));
            break;
        }
    }
    sbuf_addc(q, ')');
    return n;
}

static void cs_step(cs_job *j);

static void cs_write(cs_job *j);

/* A raw state's numeric-ness kept as a row (start = time, count = numeric). */
static int cs_next_line(void *ctx, json_t *o) {
    cs_job *j = ctx;
    const char *ent = json_string_value(json_object_get(o, "entity_id"));
    const char *rec = json_string_value(json_object_get(o, "record"));
    cs_ent *e = ent ? cs_ent_find(j, ent) : NULL;
    stats_sample x;
    stats_kind k;
    if (!e || !rec || stats_sample_from_record(rec, strlen(rec), &x, &k) != 1) return 0;
    stats_row r = {.start_us = cs_int(o, "t"), .count = x.numeric};
    return cs_rows_push(&e->next, &r, (int)k);
}

static int cs_sample_line(void *ctx, json_t *o) {
    cs_job *j = ctx;
    const char *ent = json_string_value(json_object_get(o, "entity_id"));
    const char *rec = json_string_value(json_object_get(o, "record"));
    cs_ent *e = ent ? cs_ent_find(j, ent) : NULL;
    stats_sample x;
    stats_kind k;
    if (!e || !rec || stats_sample_from_record(rec, strlen(rec), &x, &k) != 1) return 0;
    x.t_us = cs_int(o, "t");
    if (e->nsamples == e->samples_cap) {
        size_t cap = e->samples_cap ? e->samples_cap * 2 : 256;
        stats_sample *p = realloc(e->samples, cap * sizeof *p);
        if (!p) return -1;
        e->samples = p;
        e->samples_cap = cap;
    }
    e->samples[e->nsamples++] = x;
    return 0;
}

static int cs_row_line_in(void *ctx, json_t *o) {
    cs_job *j = ctx;
    const char *ent = json_string_value(json_object_get(o, "entity_id"));
    cs_ent *e = ent ? cs_ent_find(j, ent) : NULL;
    if (!e) return 0;
    stats_row r;
    int kind;
    cs_row_read(o, &r, &kind);
    int hourly = cs_int(o, "period") != 0;
    cs_rows *dst = j->step == 0 ? &e->prev5 : hourly ? &e->oldh : &e->old5;
    return cs_rows_push(dst, &r, kind);
}

/* Where an entity's recomputation starts (b) and what it carries in; where it ends. */
static void cs_plan(cs_ent *e) {
    int64_t b0 = stats_floor(e->tmin, STATS_5MIN_US);
    memset(&e->carry, 0, sizeof e->carry);
    e->b = b0;
    int prev_kind = -1;
    if (e->prev5.n) {
        stats_carry_from_row(&e->prev5.r[0], &e->carry);
        if (e->prev5.r[0].has_last) e->b = e->prev5.r[0].start_us + STATS_5MIN_US;
        prev_kind = e->prev5.kind[0];
    }
    if (!e->has_kind) e->kind = prev_kind >= 0 ? (stats_kind)prev_kind : STATS_KIND_MEASUREMENT;
    int64_t last = e->tmax;
    for (size_t i = 0; i < e->next.n; i++) {
        last = e->next.r[i].start_us;
        if (e->next.r[i].count) break; /* the first numeric state after the batch */
    }
    e->end = stats_floor(last, STATS_5MIN_US) + STATS_5MIN_US;
}

/* emit of stats_compute: new rows, and break markers over old rows that lost
 * their value (e->carry is the state at the period's end). */
static int cs_emit(const stats_row *r, int64_t start, void *arg) {
    cs_job *j = arg;
    cs_ent *e = j->cur;
    while (j->old_cursor < e->old5.n && e->old5.r[j->old_cursor].start_us < start) j->old_cursor++;
    int had_old = j->old_cursor < e->old5.n && e->old5.r[j->old_cursor].start_us == start;
    if (r) return cs_rows_push(&j->fresh, r, (int)e->kind);
    if (!had_old) return 0;
    stats_row m = {.start_us = start, .mean = NAN, .min = NAN, .max = NAN};
    m.has_state = e->carry.has_prev;
    m.state = e->carry.prev;
    m.sum = e->carry.sum;
    m.has_last_reset = e->carry.has_last_reset;
    m.last_reset_us = e->carry.last_reset_us;
    return cs_rows_push(&j->fresh, &m, (int)e->kind);
}

/* One entity's rows into j->out. */
static int cs_recompute(cs_job *j, cs_ent *e) {
    const char *entity = e->entity;
    const stats_row *old_end = NULL; /* the sum at `end` before: rows after it move by the difference */
    for (size_t i = 0; i < e->old5.n && e->old5.r[i].start_us < e->end; i++) old_end = &e->old5.r[i];
    if (!old_end && e->prev5.n) old_end = &e->prev5.r[0];
    j->cur = e;
    j->fresh.n = j->final.n = 0;
    j->old_cursor = 0;
    if (stats_compute(e->kind, &e->carry, e->samples, e->nsamples, STATS_5MIN_US, e->b, e->end, cs_emit, j) != 0)
        return -1;
    double delta = old_end && e->kind != STATS_KIND_MEASUREMENT ? e->carry.sum - old_end->sum : 0;
    for (size_t i = 0; i < e->old5.n && e->old5.r[i].start_us < e->b; i++)
        if (cs_rows_push(&j->final, &e->old5.r[i], e->old5.kind[i]) != 0) return -1;
    for (size_t i = 0; i < j->fresh.n; i++) {
        if (cs_rows_push(&j->final, &j->fresh.r[i], (int)e->kind) != 0) return -1;
        cs_row_line(j, entity, 0, e->kind, &j->fresh.r[i]);
    }
    for (size_t i = 0; i < e->old5.n; i++) {
        if (e->old5.r[i].start_us < e->end) continue;
        stats_row r = e->old5.r[i];
        if (delta != 0) {
            r.sum += delta;
            cs_row_line(j, entity, 0, e->kind, &r);
        }
        if (cs_rows_push(&j->final, &r, (int)e->kind) != 0) return -1;
    }
    int64_t h0 = stats_floor(e->b, STATS_HOUR_US), h1 = stats_floor(e->end - 1, STATS_HOUR_US);
    size_t k = 0;
    for (int64_t h = h0; h <= h1; h += STATS_HOUR_US) {
        while (k < j->final.n && j->final.r[k].start_us < h) k++;
        size_t m = k;
        while (m < j->final.n && j->final.r[m].start_us < h + STATS_HOUR_US) m++;
        if (m == k) continue;
        stats_row hr;
        stats_merge(&j->final.r[k], m - k, h, &hr);
        cs_row_line(j, entity, 1, e->kind, &hr);
        k = m;
    }
    if (delta != 0) {
        for (size_t i = 0; i < e->oldh.n; i++) {
            if (e->oldh.r[i].start_us <= h1) continue;
            stats_row r = e->oldh.r[i];
            r.sum += delta;
            cs_row_line(j, entity, 1, e->kind, &r);
        }
    }
    return sbuf_failed(&j->out) ? -1 : 0;
}

static void cs_answer(int rc, const char *body, size_t len, const char *err, void *arg) {
    cs_job *j = arg;
    if (rc != 0) {
        char why[360];
        snprintf(why, sizeof why, "clickhouse statistics: %s", err ? err : "query failed");
        cs_job_end(j, -1, why);
        return;
    }
    static int (*const fns[])(void *, json_t *) = {cs_row_line_in, cs_next_line, cs_sample_line, cs_row_line_in};
    if (j->step < 4 && ch_json_lines(body, len, fns[j->step], j) != 0) {
        cs_job_end(j, -1, "clickhouse statistics: unreadable answer");
        return;
    }
    if (j->step == 1)
        for (size_t i = 0; i < j->n; i++)
            if (j->ents[i].active) cs_plan(&j->ents[i]);
    if (j->step == 4) {
        j->s->rows_written += j->nout;
        cs_job_end(j, 0, NULL);
        return;
    }
    j->step++;
    cs_step(j);
}

static void cs_step(cs_job *j) {
    const char *db = j->s->db;
    sbuf q;
    sbuf_init(&q);
    int n = 0;
    if (j->step == 4) {
        cs_write(j);
        return;
    }
    if (j->step == 0 || j->step == 3) {
        sbuf_printf(&q, "SELECT " CS_COLS " FROM %s.statistics WHERE home_id = ", db);
        ch_quote(&q, j->home);
        if (j->step == 0) {
            sbuf_adds(&q, " AND period = 0");
            n = cs_entities_cond(j, &q, CS_BEFORE_B);
            sbuf_adds(&q, " ORDER BY entity_id, start_us DESC, version DESC LIMIT 1 BY entity_id");
        } else {
            n = cs_entities_cond(j, &q, CS_FROM_HOUR);
            sbuf_adds(&q, " ORDER BY entity_id, period, start_us, version DESC LIMIT 1 BY entity_id, period, start_us");
        }
    } else {
        sbuf_printf(&q, "SELECT entity_id, t, record FROM (SELECT entity_id, toString(time_us) AS t, time_us, "
                        "event_id, record FROM %s.events WHERE home_id = ",
                    db);
        ch_quote(&q, j->home);
        sbuf_adds(&q, " AND event_type = 'state_changed'");
        ch_store_visible(j->s->st, &q);
        n = cs_entities_cond(j, &q, j->step == 1 ? CS_AFTER_TMAX : CS_RANGE);
        sbuf_adds(&q, " ORDER BY entity_id, time_us, event_id LIMIT 1 BY event_id) ORDER BY entity_id, time_us, event_id");
        if (j->step == 1) sbuf_printf(&q, " LIMIT %d BY entity_id", CS_NEXT_LIMIT);
    }
    sbuf_adds(&q, " FORMAT JSONEachRow");
    if (n == 0) { /* nothing to read for this step */
        sbuf_free(&q);
        cs_answer(0, "", 0, NULL, j);
        return;
    }
    ch_store_select(j->s->st, &q, cs_answer, j);
}

static void cs_write(cs_job *j) {
    ch_stats *s = j->s;
    int64_t v = service_now_us();
    s->last_version = v > s->last_version ? v : s->last_version + 1;
    for (size_t i = 0; i < j->n; i++) {
        cs_ent *e = &j->ents[i];
        if (!e->active) continue;
        if (!e->has_kind && !e->prev5.n && !e->old5.n) continue; /* never numeric (on/off, text) */
        if (cs_recompute(j, e) != 0) {
            cs_job_end(j, -1, "clickhouse statistics: out of memory");
            return;
        }
        s->entities_updated++;
    }
    if (j->nout == 0) {
        cs_job_end(j, 0, NULL);
        return;
    }
    char query[200];
    snprintf(query, sizeof query, "INSERT INTO %s.statistics FORMAT RowBinary", s->db);
    ch_store_insert(s->st, query, &j->out, cs_answer, j);
}

void ch_stats_batch(ch_stats *s, const store_batch *b, const char *home, ch_stats_done_fn done, void *arg) {
    cs_job *j = calloc(1, sizeof *j);
    if (!j) {
        done(-1, "clickhouse statistics: out of memory", arg);
        return;
    }
    j->s = s;
    j->done = done;
    j->arg = arg;
    j->t0 = cs_mono_us();
    snprintf(j->home, sizeof j->home, "%s", home);
    sbuf_init(&j->out);
    if (cs_collect(j, b) != 0) {
        cs_job_end(j, -1, "clickhouse statistics: out of memory");
        return;
    }
    /* late states whose raw events retention removed are stored but not counted */
    int64_t cut = ch_store_cutoff_s(s->st);
    for (size_t i = 0; i < j->n; i++)
        if (cut && stats_floor(j->ents[i].tmin, STATS_5MIN_US) < (cut + 3600) * 1000000) {
            j->ents[i].active = 0;
            s->late_skipped++;
        }
    j->step = 0;
    cs_step(j);
}

/* ---- reads for the API ---------------------------------------------------------------- */

typedef struct cs_fetch {
    store_stats_cb cb;
    void *arg;
    int64_t start_us, end_us;
    cs_rows prev, rows;
    int kind;
} cs_fetch;

static int cs_fetch_row(void *ctx, json_t *o) {
    cs_fetch *f = ctx;
    stats_row r;
    int kind;
    cs_row_read(o, &r, &kind);
    f->kind = kind; /* rows are oldest first: the latest row's kind wins */
    if (r.start_us < f->start_us) {
        f->prev.n = 0;
        return cs_rows_push(&f->prev, &r, kind);
    }
    if (r.start_us < f->end_us && !stats_row_is_marker(&r)) return cs_rows_push(&f->rows, &r, kind);
    return 0;
}

static void cs_fetch_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cs_fetch *f = arg;
    if (rc == 0 && ch_json_lines(body, len, cs_fetch_row, f) != 0) rc = -1;
    if (rc != 0) log_warn("clickhouse statistics query failed: %s", err ? err : "unreadable answer");
    f->cb(rc, f->kind, f->prev.n ? &f->prev.r[0] : NULL, f->prev.n > 0, f->rows.r, f->rows.n, f->arg);
    cs_rows_free(&f->prev);
    cs_rows_free(&f->rows);
    free(f);
}

void ch_stats_fetch(ch_stats *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                    int64_t end_us, store_stats_cb cb, void *arg) {
    cs_fetch *f = calloc(1, sizeof *f);
    if (!s || !f) { /* CLICKHOUSE_STATISTICS=0: not kept (501) */
        free(f);
        cb(s ? -1 : STORE_QUERY_UNSUPPORTED, -1, NULL, 0, NULL, 0, arg);
        return;
    }
    *f = (cs_fetch){.cb = cb, .arg = arg, .start_us = start_us, .end_us = end_us, .kind = -1};
    sbuf w, q;
    sbuf_init(&w);
    sbuf_init(&q);
    sbuf_adds(&w, "home_id = ");
    ch_quote(&w, home ? home : EVENT_HOME_DEFAULT);
    sbuf_adds(&w, " AND entity_id = ");
    ch_quote(&w, entity_id);
    sbuf_printf(&w, " AND period = %d", hourly ? 1 : 0);
    /* the rows of the range, the one before it, and the latest (its kind) */
    sbuf_printf(&q,
                "SELECT " CS_COLS " FROM %s.statistics WHERE %s AND ((start_us >= %lld AND start_us < %lld) OR start_us "
                "= (SELECT max(start_us) FROM %s.statistics WHERE %s AND start_us < %lld) OR start_us = (SELECT "
                "max(start_us) FROM %s.statistics WHERE %s)) ORDER BY start_us, version DESC LIMIT 1 BY start_us "
                "FORMAT JSONEachRow",
                s->db, w.data ? w.data : "", (long long)start_us, (long long)end_us, s->db, w.data ? w.data : "",
                (long long)start_us, s->db, w.data ? w.data : "");
    if (sbuf_failed(&w)) q.failed = 1;
    sbuf_free(&w);
    ch_store_select(s->st, &q, cs_fetch_done, f);
}

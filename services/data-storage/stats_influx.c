/* stats_influx.c -- see stats_influx.h. The schema of homeiq_statistics and
 * the rules are in docs/STATISTICS.md ("InfluxDB").
 *
 * The live case -- an entity's states all later than its running state's
 * latest one -- is computed from memory (si_hot, "the fast path" below) and
 * costs only the two writes. Otherwise (the slow path), per entity touched by
 * a committed batch (states in [tmin, tmax]), mirroring
 * stats_sqlite.c (the entities of a batch share each request: two queries and
 * two writes per batch):
 *   A. the latest 5-minute row before B = bucket(tmin), the latest hourly row
 *      before B (the carry when the 5-minute rows expired), and the raw states
 *      after tmax up to the first numeric one (where the range ends: E);
 *   B. the raw states in [S, E) (S = B, or the end of the carry row when its
 *      value still held: the hold fills the gap), the existing 5-minute and
 *      hourly rows from S's hour on;
 *   then the 5-minute rows of [S, E) are recomputed (a period that lost its
 *   value is overwritten by a break marker: InfluxDB merges the fields of a
 *   point written twice, so nothing is deleted), later rows of a total move by
 *   the change of the sum at E, every hour touched is merged again from its
 *   5-minute rows, and both sets are written (two requests sent together).
 * Every field is written every time (flags say which values are real), so an
 * overwrite never leaves a stale field behind. */
#include "stats_influx.h"
#include "config.h"
#include "stats_influx_flush.h"
#include "stats_influx_recover.h"
#include "influx_answer.h"
#include "influx_points.h"
#include "influx_time.h"
#include "lineproto.h"
#include "log.h"
#include "retention_rules.h"
#include "sbuf.h"
#include "service.h"
#include "storage_maint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SI_NEXT_LIMIT 10000   /* raw states read after a batch to find the next numeric one, at most */
#define SI_NEXT_PAGE 64       /* ... a page (one statement per entity) at a time: usually the first is numeric */
#define SI_DAY_US (86400LL * 1000000LL)

enum { SI_HAS_LAST = 1, SI_HAS_STATE = 2, SI_HAS_LAST_RESET = 4, SI_HAS_MEAN = 8, SI_HAS_MINMAX = 16 };

typedef struct si_rows {
    stats_row *r;
    int *kind;
    size_t n, cap;
} si_rows;

/* ---- the running state: in-order states without re-reading InfluxDB ----
 *
 * Per entity, what the slow path (steps A and B) would read back for its
 * latest 5-minute period: the period (bucket), the carry at its start, the
 * raw states in it, the merge of the hour's earlier 5-minute rows, and the
 * time of the latest state. A batch whose states of the entity are all later
 * than that time (the live case) is computed from memory: no query, only the
 * writes -- the cost per event no longer grows with the period. Anything else
 * (late, out of order, a duplicate, a new kind, the first batch after a
 * start) takes the slow path, which recomputes from the stored rows and raw
 * points and leaves a fresh entry behind. An entry changes only when the
 * batch's rows were written; any failure invalidates the entries of the
 * batch, so the state is never ahead of (or behind) the database. */
typedef struct si_hot {
    struct si_hot *next;
    char *entity;           /* "entity\0home\0" (home: the tag's value), one allocation */
    const char *home;       /* points into it */
    int valid;              /* the fields below match the database */
    int untracked;          /* no numeric state and no rows: not an entity with statistics */
    stats_kind kind;
    int64_t bucket, last_t;
    stats_carry carry;      /* at bucket's start */
    stats_sample *samples;  /* the raw states in [bucket, bucket + 5 min) */
    size_t n, cap;
    int has_hour_before;
    stats_row hour_before;  /* merge of the hour's 5-minute rows before bucket */
} si_hot;

#define SI_HOT_BUCKETS 1024

/* What a batch leaves for an entry (applied once its rows are written). */
typedef struct si_next {
    int set;                /* 1: the entry becomes this; 0: invalidated */
    int untracked;
    stats_kind kind;
    int64_t bucket, last_t;
    stats_carry carry;
    stats_sample *samples;  /* owned until applied */
    size_t n;
    int has_hour_before;
    stats_row hour_before;
} si_next;

/* One entity of a batch, and what its update read and decided. */
typedef struct si_ent {
    char *entity;
    si_hot *hot;
    si_next nx;
    int fast;               /* computed from the running state */
    int has_dup;            /* a duplicate among its items: recomputed from the database */
    stats_sample *bs;       /* the batch's states of the entity, by time */
    size_t nbs, bs_cap;
    int64_t tmin, tmax;
    int has_kind;           /* a numeric state in the batch fixed the kind */
    stats_kind kind;
    int active;             /* still to be updated (not skipped) */
    int recover;            /* a recomputation without a batch (stats_influx_recompute): the kind from its states */
    int has_rkind;
    stats_kind rkind;       /* the kind of its latest numeric stored state in [tmin, tmax] */
    size_t next_got;        /* raw states the last page after the batch held */
    size_t next_pages;      /* pages read after the batch */
    int64_t next_last_ns;   /* the time of the last one (ns: events of one µs have distinct ns, store_influx.c) */
    int64_t b, end;         /* the 5-minute periods recomputed */
    int64_t hm;             /* the first hour merged again (<= b's hour: hours a failed hourly write left behind) */
    stats_carry carry;
    si_rows prev5, prevh, next, old5, oldh;
    stats_sample *samples;
    size_t nsamples, samples_cap;
} si_ent;

struct stats_influx {
    stats_influx_io io;
    char *rp5, *rph;
    long long raw_days, s5_days;
    retention_rules rules;          /* RETENTION_OVERRIDES: an entity's raw points may go earlier */
    unsigned long long entities_updated, rows_written, late_skipped, batches, update_us, failures;
    unsigned long long refused;     /* writes InfluxDB refused (400): acknowledged, the rows are missing */
    unsigned long long fast_updates;  /* entity updates served from the running state */
    char last_refusal[200];
    stats_influx_flush *flush;      /* rows written off the ack path (INFLUXDB_STATISTICS_FLUSH_MS), NULL: before it */
    stats_influx_recover *recover;  /* after a start: the rows of acked batches a flush did not write */
    long stop_ms;                   /* INFLUXDB_STATISTICS_STOP_FLUSH_MS: the stop's flush at most */
    si_hot *hot[SI_HOT_BUCKETS];
};

typedef struct si_job {
    stats_influx *s;
    const store_batch *b;       /* the batch (NULL: a recomputation of stats_influx_recompute) */
    int64_t seq;                /* its feed sequence (the flush's mark) */
    int direct;                 /* its rows are written before its ack (not coalesced) */
    char home[EVENT_HOME_MAX + 1]; /* the batch's home as the tag's value ("" = the default home) */
    stats_influx_done_fn done;
    void *arg;
    si_ent *ents;
    size_t n;
    unsigned long long t0;
    int *act;                   /* statement group -> entity index, for the current query */
    size_t nact;
    /* scratch of one entity's recomputation */
    si_ent *cur;
    si_rows fresh, final;
    size_t old_cursor;
    sbuf lines5, linesh;
    struct si_wr {              /* the two writes (5-minute, hourly), sent together */
        struct si_job *j;
        int hourly;
    } wr[2];
    int writes_pending;
    char write_err[300];        /* the first write that must fail the batch, "" if none */
} si_job;

/* ---- small helpers ----------------------------------------------------- */

static unsigned long long si_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static int si_rows_push(si_rows *rs, const stats_row *r, int kind) {
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

static void si_rows_free(si_rows *rs) {
    free(rs->r);
    free(rs->kind);
    memset(rs, 0, sizeof *rs);
}

void stats_influx_from(sbuf *q, const char *rp, const char *measurement) {
    if (rp) {
        influxql_ident(q, rp);
        sbuf_addc(q, '.');
    }
    influxql_ident(q, measurement);
}

/* "rp"."homeiq_statistics", or the bare measurement when rp is NULL. */
static void si_from(sbuf *q, const char *rp) {
    stats_influx_from(q, rp, STATS_INFLUX_MEASUREMENT);
}

/* WHERE entity AND home (issue 18: home as the tag's value, "" for the
 * default home, whose rows carry no home_id tag). */
void stats_influx_where_entity(sbuf *q, const char *entity, const char *home) {
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, entity);
    sbuf_adds(q, " WHERE \"entity_id\" = ");
    influxql_string(q, form.data ? form.data : "");
    sbuf_adds(q, " AND \"" INFLUX_HOME_TAG "\" = ");
    influxql_string(q, home);
    if (form.failed) q->failed = 1;
    sbuf_free(&form);
}

/* SELECT * FROM <rp>.homeiq_statistics WHERE entity and period [and time
 * bounds] ORDER BY time <dir> [LIMIT n] */
void stats_influx_select_rows(sbuf *q, const char *rp, const char *entity, const char *home, int hourly, int64_t lo_us,
                              int64_t hi_us, int desc, int limit) {
    if (q->len) sbuf_addc(q, ';');
    sbuf_adds(q, "SELECT * FROM ");
    si_from(q, rp);
    stats_influx_where_entity(q, entity, home);
    sbuf_printf(q, " AND \"period\" = '%s'", hourly ? "hour" : "5minute");
    if (lo_us > INT64_MIN) sbuf_printf(q, " AND time >= %lld", (long long)influx_time_ns_sat(lo_us));
    if (hi_us < INT64_MAX) sbuf_printf(q, " AND time < %lld", (long long)influx_time_ns_sat(hi_us));
    sbuf_printf(q, " ORDER BY time %s", desc ? "DESC" : "ASC");
    if (limit > 0) sbuf_printf(q, " LIMIT %d", limit);
}

/* SELECT record FROM events WHERE entity, state_changed, time in [lo, hi) */
static void si_select_states(sbuf *q, const stats_influx *s, const char *entity, const char *home, int64_t lo_ns,
                             int64_t hi_ns, int limit) {
    if (q->len) sbuf_addc(q, ';');
    sbuf_adds(q, "SELECT \"record\" FROM ");
    influxql_ident(q, s->io.events_measurement);
    stats_influx_where_entity(q, entity, home);
    sbuf_printf(q, " AND \"event_type\" = 'state_changed' AND time >= %lld", (long long)lo_ns);
    if (hi_ns < INT64_MAX) sbuf_printf(q, " AND time < %lld", (long long)hi_ns);
    sbuf_adds(q, " ORDER BY time ASC");
    if (limit > 0) sbuf_printf(q, " LIMIT %d", limit);
}

/* ---- reading answers --------------------------------------------------- */

typedef int (*si_row_fn)(int stmt, json_t *cols, json_t *vals, void *arg);

typedef struct si_walk {
    si_row_fn fn;
    void *arg;
} si_walk;

static int si_answer_row(const influx_answer_row *row, void *arg) {
    const si_walk *w = arg;
    return w->fn(row->stmt, row->columns, row->values, w->arg);
}

/* Walks a (chunked) /query answer (influx_answer.h); a missing database or
 * measurement is an empty answer. 0, or -1 with err. */
static int si_parse(const httpc_response *r, si_row_fn fn, void *arg, char *err, size_t errlen) {
    if (r->status != 200) {
        json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        const char *e = json_string_value(json_object_get(j, "error"));
        if (r->status == 0) snprintf(err, errlen, "influxdb unreachable: %s", r->error ? r->error : "no response");
        else snprintf(err, errlen, "influxdb: HTTP %ld: %.200s", r->status, e ? e : "");
        json_decref(j);
        return -1;
    }
    si_walk w = {fn, arg};
    return influx_answer_walk(r->body, r->body_len, -1, si_answer_row, &w, err, errlen);
}

static json_t *si_col(json_t *cols, json_t *vals, const char *name) {
    influx_answer_row row = {.columns = cols, .values = vals};
    return influx_answer_get(&row, name);
}

static double si_num(json_t *cols, json_t *vals, const char *name) {
    json_t *v = si_col(cols, vals, name);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static long long si_int(json_t *cols, json_t *vals, const char *name) {
    json_t *v = si_col(cols, vals, name);
    return json_is_integer(v) ? (long long)json_integer_value(v) : json_is_real(v) ? (long long)json_real_value(v) : 0;
}

/* A homeiq_statistics point back into a stats_row; 0, or -1 when it is not one. */
int stats_influx_row_read(json_t *cols, json_t *vals, stats_row *r, int *kind) {
    json_t *t = si_col(cols, vals, "time");
    json_t *f = si_col(cols, vals, "flags");
    if (!json_is_integer(t) || !json_is_integer(f)) return -1;
    long long flags = json_integer_value(f);
    memset(r, 0, sizeof *r);
    r->start_us = (int64_t)(json_integer_value(t) / 1000);
    r->mean = flags & SI_HAS_MEAN ? si_num(cols, vals, "mean") : NAN;
    r->min = flags & SI_HAS_MINMAX ? si_num(cols, vals, "min") : NAN;
    r->max = flags & SI_HAS_MINMAX ? si_num(cols, vals, "max") : NAN;
    r->has_last = (flags & SI_HAS_LAST) != 0;
    r->last = r->has_last ? si_num(cols, vals, "last") : 0;
    *kind = (int)si_int(cols, vals, "kind");
    if (*kind != STATS_KIND_MEASUREMENT) {
        r->has_state = (flags & SI_HAS_STATE) != 0;
        r->state = r->has_state ? si_num(cols, vals, "state") : 0;
        r->sum = si_num(cols, vals, "sum");
        if (!isfinite(r->sum)) r->sum = 0;
        r->has_last_reset = (flags & SI_HAS_LAST_RESET) != 0;
        r->last_reset_us = r->has_last_reset ? (int64_t)si_int(cols, vals, "last_reset_ms") * 1000 : 0;
    }
    r->count = si_int(cols, vals, "count");
    r->covered_us = (int64_t)si_int(cols, vals, "covered_us");
    return 0;
}

/* ---- writing rows ------------------------------------------------------ */

static void si_float(sbuf *b, const char *key, int ok, double v) {
    sbuf_printf(b, ",%s=", key);
    if (!ok || lineproto_field_float(b, v) != 0) sbuf_addc(b, '0');
}

/* home: the tag's value ("" = the default home: no tag, as before homes). */
void stats_influx_row_line(sbuf *b, const char *entity, const char *home, int hourly, stats_kind kind,
                           const stats_row *r) {
    int has_mean = isfinite(r->mean), has_mm = isfinite(r->min) && isfinite(r->max);
    int total = kind != STATS_KIND_MEASUREMENT;
    int flags = (r->has_last ? SI_HAS_LAST : 0) | (total && r->has_state ? SI_HAS_STATE : 0) |
                (total && r->has_last_reset ? SI_HAS_LAST_RESET : 0) | (has_mean ? SI_HAS_MEAN : 0) |
                (has_mm ? SI_HAS_MINMAX : 0);
    lineproto_measurement(b, STATS_INFLUX_MEASUREMENT);
    sbuf_adds(b, ",entity_id=");
    lineproto_tag(b, entity);
    if (*home) {
        sbuf_adds(b, "," INFLUX_HOME_TAG "=");
        lineproto_tag(b, home);
    }
    sbuf_printf(b, ",period=%s count=%lldi,covered_us=%lldi,kind=%di,flags=%di", hourly ? "hour" : "5minute",
                r->count, (long long)r->covered_us, (int)kind, flags);
    si_float(b, "mean", has_mean, r->mean);
    si_float(b, "min", has_mm, r->min);
    si_float(b, "max", has_mm, r->max);
    si_float(b, "last", r->has_last, r->last);
    if (total) {
        si_float(b, "state", r->has_state, r->state);
        si_float(b, "sum", 1, r->sum);
        sbuf_printf(b, ",last_reset_ms=%lldi", r->has_last_reset ? (long long)(r->last_reset_us / 1000) : 0LL);
    }
    sbuf_printf(b, " %lld\n", (long long)r->start_us * 1000);
}

/* ---- open / close / info ---------------------------------------------- */

int stats_influx_open(struct event_base *evb, const stats_influx_io *io, const char *rp5, const char *rph,
                      stats_influx **out) {
    long long on, on_influx, raw, s5, flush_ms, chunk, max_rows, stop_ms;
    *out = NULL;
    if (config_int(storage_maint_vars, "STATISTICS", &on) ||
        config_int(storage_maint_vars, "INFLUXDB_STATISTICS", &on_influx) ||
        config_int(storage_maint_vars, "INFLUXDB_STATISTICS_FLUSH_MS", &flush_ms) ||
        config_int(storage_maint_vars, "INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES", &chunk) ||
        config_int(storage_maint_vars, "INFLUXDB_STATISTICS_MAX_PENDING_ROWS", &max_rows) ||
        config_int(storage_maint_vars, "INFLUXDB_STATISTICS_STOP_FLUSH_MS", &stop_ms) ||
        config_int(storage_maint_vars, "RETENTION_DAYS", &raw) ||
        config_int(storage_maint_vars, "STATISTICS_5MIN_RETENTION_DAYS", &s5))
        return -1;
    if (!on || !on_influx) return 0; /* INFLUXDB_STATISTICS=0: the store writes no statistics */
    stats_influx *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->io = *io;
    s->raw_days = raw;
    s->s5_days = s5;
    s->stop_ms = (long)stop_ms;
    stats_influx_flush_opts fo = {.flush_ms = (long)flush_ms, .chunk_bytes = (size_t)chunk, .max_rows = (size_t)max_rows};
    char err[300];
    if (retention_rules_parse(config_text(storage_maint_vars, "RETENTION_OVERRIDES"), &s->rules, err, sizeof err)) {
        log_error("%s", err);
        stats_influx_close(s);
        return -1;
    }
    s->rp5 = rp5 ? strdup(rp5) : NULL;
    s->rph = rph ? strdup(rph) : NULL;
    if ((rp5 && !s->rp5) || (rph && !s->rph)) {
        stats_influx_close(s);
        return -1;
    }
    /* off the ack path only where the mark has a policy that never expires (1.x); elsewhere before the ack */
    if (rph && ((flush_ms > 0 && stats_influx_flush_new(evb, io, rp5, rph, &fo, &s->flush) != 0) ||
                stats_influx_recover_new(s, &s->recover) != 0)) {
        stats_influx_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- the running state (si_hot) ---------------------------------------- */

unsigned stats_influx_key_hash(const char *entity, const char *home) {
    unsigned h = 2166136261u; /* FNV-1a, a separator between the two */
    for (; *entity; entity++) h = (h ^ (unsigned char)*entity) * 16777619u;
    for (h ^= 0xff; *home; home++) h = (h ^ (unsigned char)*home) * 16777619u;
    return h;
}

static unsigned si_hash(const char *e, const char *home) {
    return stats_influx_key_hash(e, home) & (SI_HOT_BUCKETS - 1);
}

/* The running state of entity in home (issue 18: one per entity and home). */
static si_hot *si_hot_get(stats_influx *s, const char *entity, const char *home) {
    unsigned k = si_hash(entity, home);
    for (si_hot *h = s->hot[k]; h; h = h->next)
        if (strcmp(h->entity, entity) == 0 && strcmp(h->home, home) == 0) return h;
    size_t ne = strlen(entity) + 1, nh = strlen(home) + 1;
    si_hot *h = calloc(1, sizeof *h);
    if (!h || !(h->entity = malloc(ne + nh))) {
        free(h);
        return NULL;
    }
    memcpy(h->entity, entity, ne);
    memcpy(h->entity + ne, home, nh);
    h->home = h->entity + ne;
    h->next = s->hot[k];
    s->hot[k] = h;
    return h;
}

/* A batch's outcome for one entry: rc 0 applies e->nx, anything else
 * invalidates (the database may hold either state). Takes nx's samples. */
static void si_hot_apply(si_hot *h, si_next *nx, int rc) {
    if (!h) return;
    if (rc != 0 || !nx->set) {
        h->valid = 0;
        h->untracked = rc == 0 && nx->untracked;
        return;
    }
    free(h->samples);
    h->samples = nx->samples;
    h->n = h->cap = nx->n;
    nx->samples = NULL;
    h->valid = 1;
    h->untracked = 0;
    h->kind = nx->kind;
    h->bucket = nx->bucket;
    h->last_t = nx->last_t;
    h->carry = nx->carry;
    h->has_hour_before = nx->has_hour_before;
    h->hour_before = nx->hour_before;
}

void stats_influx_close(stats_influx *s) {
    if (!s) return;
    for (int k = 0; k < SI_HOT_BUCKETS; k++) {
        for (si_hot *h = s->hot[k], *n; h; h = n) {
            n = h->next;
            free(h->entity);
            free(h->samples);
            free(h);
        }
    }
    stats_influx_recover_free(s->recover);
    stats_influx_flush_free(s->flush);
    retention_rules_free(&s->rules);
    free(s->rp5);
    free(s->rph);
    free(s);
}

json_t *stats_influx_info(const stats_influx *s) {
    if (!s) return json_pack("{s:b}", "enabled", 0);
    json_t *o = json_pack("{s:b,s:I,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "fast_updates",
                     (json_int_t)s->fast_updates, "refused",
                     (json_int_t)s->refused, "last_refusal", s->last_refusal, "retention_policy_5minute",
                     s->rp5 ? s->rp5 : "(default)", "retention_policy_hour", s->rph ? s->rph : "(default)",
                     "entities_updated", (json_int_t)s->entities_updated, "rows_written", (json_int_t)s->rows_written,
                     "late_skipped", (json_int_t)s->late_skipped, "batches", (json_int_t)s->batches, "update_us",
                     (json_int_t)s->update_us, "failures", (json_int_t)s->failures);
    if (o && s->flush) {
        json_t *f = stats_influx_flush_info(s->flush);
        json_object_set_new(o, "rows_written", json_integer((json_int_t)s->rows_written +
                                                           json_integer_value(json_object_get(f, "rows_written"))));
        json_object_set_new(o, "unwritten_rows", json_integer((json_int_t)stats_influx_flush_unwritten(s->flush)));
        json_object_set_new(o, "flush", f);
    } else if (o) {
        json_object_set_new(o, "unwritten_rows", json_integer(0));
    }
    if (o && s->recover) json_object_set_new(o, "recovery", stats_influx_recover_info(s->recover));
    return o;
}

/* ---- for the catch-up (stats_influx_catchup.h) -------------------------- */

const stats_influx_io *stats_influx_io_of(const stats_influx *s) {
    return &s->io;
}

const char *stats_influx_rp(const stats_influx *s, int hourly) {
    return hourly ? s->rph : s->rp5;
}

/* The first hour whose 5-minute rows the 5-minute policy still takes (with
 * the hour of margin si_too_late keeps). */
int64_t stats_influx_horizon5(const stats_influx *s, int64_t now_us) {
    int64_t x = now_us - s->s5_days * SI_DAY_US + STATS_HOUR_US;
    return stats_floor(x + STATS_HOUR_US - 1, STATS_HOUR_US);
}

void stats_influx_forget(stats_influx *s, const char *entity, const char *home) {
    for (si_hot *h = s->hot[si_hash(entity, home)]; h; h = h->next)
        if (strcmp(h->entity, entity) == 0 && strcmp(h->home, home) == 0) h->valid = h->untracked = 0;
}

/* ---- a batch: the entities it touched ----------------------------------- */
/* All entities of a batch go through each step together: one query request
 * for step A, one for step B (a group of statements per entity), one write
 * of 5-minute rows and one of hourly rows sent together -- three round trips
 * per batch (one on the fast path). */

static void si_job_free(si_job *j) {
    for (size_t i = 0; i < j->n; i++) {
        si_ent *e = &j->ents[i];
        free(e->entity);
        si_rows_free(&e->prev5);
        si_rows_free(&e->prevh);
        si_rows_free(&e->next);
        si_rows_free(&e->old5);
        si_rows_free(&e->oldh);
        free(e->samples);
        free(e->bs);
        free(e->nx.samples);
    }
    free(j->ents);
    free(j->act);
    si_rows_free(&j->fresh);
    si_rows_free(&j->final);
    sbuf_free(&j->lines5);
    sbuf_free(&j->linesh);
    free(j);
}

static void si_job_end(si_job *j, int rc, const char *err) {
    stats_influx *s = j->s;
    s->batches++;
    s->update_us += si_mono_us() - j->t0;
    for (size_t i = 0; i < j->n; i++) si_hot_apply(j->ents[i].hot, &j->ents[i].nx, rc);
    if (rc == 0 && j->b && j->direct && s->flush) stats_influx_flush_written(s->flush, j->seq);
    char why[320];
    if (rc) {
        s->failures++;
        snprintf(why, sizeof why, "%s%.300s", strncmp(err, "statistics", 10) ? "statistics: " : "", err);
        log_warn("statistics update failed (the batch is not acknowledged): %s", why);
        if (strstr(why, "retention policy not found") && s->io.lost) s->io.lost(s->io.ctx);
    }
    stats_influx_done_fn done = j->done;
    void *arg = j->arg;
    si_job_free(j);
    done(rc, rc ? why : NULL, arg);
}

static si_ent *si_ent_find(si_job *j, const char *entity) {
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->ents[i].entity, entity) == 0) return &j->ents[i];
    return NULL;
}

/* One entry per entity: the span of its committed states and the kind of
 * its latest numeric one. */
static int si_collect(si_job *j, const store_batch *b) {
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
        si_ent *e = si_ent_find(j, it->entity_id);
        if (!e) {
            if (j->n == cap) {
                cap = cap ? cap * 2 : 16;
                si_ent *p = realloc(j->ents, cap * sizeof *p);
                int64_t *t = realloc(kind_t, cap * sizeof *t);
                if (p) j->ents = p;
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
            e->hot = si_hot_get(j->s, e->entity, j->home);   /* NULL (out of memory): always the slow path */
        }
        if (e->nbs == e->bs_cap) {
            size_t c = e->bs_cap ? e->bs_cap * 2 : 16;
            stats_sample *p = realloc(e->bs, c * sizeof *p);
            if (!p) goto oom;
            e->bs = p;
            e->bs_cap = c;
        }
        x.t_us = it->time_us;
        e->bs[e->nbs++] = x;
        if (it->status == STORE_ITEM_DUPLICATE) e->has_dup = 1;
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
    j->act = malloc((j->n ? j->n : 1) * sizeof *j->act);
    return j->act ? 0 : -1;
oom:
    free(kind_t);
    return -1;
}

/* ---- the fast path: from the running state ------------------------------ */

/* Late states whose rows (or raw points) the retention policies may have
 * dropped are stored but not counted (docs/STATISTICS.md). */
static int64_t si_horizon(const stats_influx *s, const char *entity, int64_t now);

static int si_too_late(const stats_influx *s, const si_ent *e, int64_t now) {
    return stats_floor(e->tmin, STATS_5MIN_US) < si_horizon(s, e->entity, now);
}

static int si_sample_cmp(const void *a, const void *b) {
    const stats_sample *x = a, *y = b;
    return x->t_us < y->t_us ? -1 : x->t_us > y->t_us;
}

/* 1 when e's states (none a duplicate) all fall in or after its running
 * state's period -- whose states memory holds, so a state arriving out of
 * order inside it is merged there -- in distinct microseconds (equal times
 * go the slow way: InfluxDB orders them by their nanosecond, not by batch
 * order; si_fast checks them against the period's too), of the same kind. */
static int si_fast_ok(si_ent *e) {
    const si_hot *h = e->hot;
    if (!h || !h->valid || e->nbs == 0 || e->has_dup || (e->has_kind && e->kind != h->kind)) return 0;
    qsort(e->bs, e->nbs, sizeof *e->bs, si_sample_cmp);
    if (e->bs[0].t_us < h->bucket) return 0;
    for (size_t i = 1; i < e->nbs; i++)
        if (e->bs[i].t_us <= e->bs[i - 1].t_us) return 0;
    return 1;
}

static int si_emit_fast(const stats_row *r, int64_t start, void *arg) {
    si_job *j = arg;
    (void)start;
    if (!r) return 0;   /* later than the entity's latest row: nothing stored there */
    stats_influx_row_line(&j->lines5, j->cur->entity, j->home, 0, j->cur->hot->kind, r);
    return si_rows_push(&j->fresh, r, (int)j->cur->hot->kind);
}

/* j->fresh rows [from, to), after base (if any), merged as `hour`: 1, 0
 * (nothing to merge), -1 (out of memory). */
static int si_merge_hour(si_job *j, const stats_row *base, size_t from, size_t to, int64_t hour, stats_row *out) {
    size_t n = to - from + (base ? 1 : 0);
    if (n == 0) return 0;
    stats_row *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return -1;
    size_t k = 0;
    if (base) tmp[k++] = *base;
    for (size_t i = from; i < to; i++) tmp[k++] = j->fresh.r[i];
    stats_merge(tmp, n, hour, out);
    free(tmp);
    return 1;
}

/* The live case (stats_sqlite.c's stats_fast, as lines): the 5-minute rows
 * from the entry's bucket to the batch's last one, the hours they touch
 * (the first continues the entry's hour_before), and the next entry. */
static int si_fast(si_job *j, si_ent *e) {
    const si_hot *h = e->hot;
    size_t n = h->n + e->nbs;
    stats_sample *all = malloc(n * sizeof *all);
    if (!all) return -1;
    /* the period's states and the batch's, merged by time */
    size_t a = 0, b = 0, k = 0;
    while (a < h->n || b < e->nbs) {
        if (b == e->nbs || (a < h->n && h->samples[a].t_us < e->bs[b].t_us)) all[k++] = h->samples[a++];
        else if (a == h->n || e->bs[b].t_us < h->samples[a].t_us) all[k++] = e->bs[b++];
        else {   /* the same microsecond as a stored state: the database decides the order */
            free(all);
            return 1;
        }
    }
    int64_t last_t = all[n - 1].t_us;
    int64_t lastb = stats_floor(last_t, STATS_5MIN_US), end = lastb + STATS_5MIN_US;
    size_t split = 0;
    while (split < n && all[split].t_us < lastb) split++;
    si_next *nx = &e->nx;
    memset(nx, 0, sizeof *nx);
    stats_carry carry = h->carry;
    j->cur = e;
    j->fresh.n = 0;
    if (stats_compute(h->kind, &carry, all, split, STATS_5MIN_US, h->bucket, lastb, si_emit_fast, j) != 0)
        goto fail;
    stats_carry at_last = carry;
    size_t nbefore = j->fresh.n;   /* rows before lastb */
    if (stats_compute(h->kind, &carry, all + split, n - split, STATS_5MIN_US, lastb, end, si_emit_fast, j) != 0)
        goto fail;
    int64_t h0 = stats_floor(h->bucket, STATS_HOUR_US), hl = stats_floor(lastb, STATS_HOUR_US);
    size_t i = 0;
    for (int64_t hour = h0; hour <= hl; hour += STATS_HOUR_US) {
        size_t k = i;
        while (k < j->fresh.n && j->fresh.r[k].start_us < hour + STATS_HOUR_US) k++;
        const stats_row *base = hour == h0 && h->has_hour_before ? &h->hour_before : NULL;
        stats_row hr;
        int rc = si_merge_hour(j, base, i, k, hour, &hr);
        if (rc < 0) goto fail;
        if (rc > 0) stats_influx_row_line(&j->linesh, e->entity, j->home, 1, h->kind, &hr);
        if (hour == hl) {   /* the next hour_before: this hour's rows before lastb */
            size_t kb = i;
            while (kb < nbefore && j->fresh.r[kb].start_us < lastb) kb++;
            rc = si_merge_hour(j, base, i, kb, hour, &nx->hour_before);
            if (rc < 0) goto fail;
            nx->has_hour_before = rc > 0;
        }
        i = k;
    }
    memmove(all, all + split, (n - split) * sizeof *all);
    nx->set = 1;
    nx->kind = h->kind;
    nx->bucket = lastb;
    nx->last_t = last_t;
    nx->carry = at_last;
    nx->samples = all;
    nx->n = n - split;
    return sbuf_failed(&j->lines5) || sbuf_failed(&j->linesh) ? -1 : 0;
fail:
    free(all);
    return -1;
}

/* Before any query: drops the entities too late to count and the ones known
 * to have no statistics, computes the live ones from memory; the others
 * (still active) go through steps A and B. 0, or -1 (out of memory). */
static int si_fast_all(si_job *j) {
    stats_influx *s = j->s;
    int64_t now = (int64_t)service_now_us();
    for (size_t i = 0; i < j->n; i++) {
        si_ent *e = &j->ents[i];
        if (si_too_late(s, e, now)) {
            s->late_skipped++;
            e->active = 0;
            continue;
        }
        if (e->hot && e->hot->untracked && !e->has_kind) {
            e->active = 0;
            e->nx.untracked = 1;   /* still text only: stays known as such */
            continue;
        }
        if (!si_fast_ok(e)) continue;
        int rc = si_fast(j, e);
        if (rc < 0) return -1;
        if (rc > 0) continue;   /* the slow path after all */
        e->active = 0;
        e->fast = 1;
        s->entities_updated++;
        s->fast_updates++;
    }
    return 0;
}

static void si_step_a_done(const httpc_response *r, void *arg);
static void si_step_b_done(const httpc_response *r, void *arg);
static void si_write(si_job *j);
static void si_write_done(const httpc_response *r, void *arg);

/* Sends q (statement groups of 3 for the entities in j->act), or ends the
 * job when no entity is left. */
static void si_send(si_job *j, sbuf *q, httpc_done_cb cb) {
    int rc = 0;
    if (j->nact == 0) {
        sbuf_free(q);
        si_write(j);
        return;
    }
    rc = sbuf_failed(q) ? -1 : j->s->io.query(j->s->io.ctx, q->data, cb, j);
    sbuf_free(q);
    if (rc != 0) si_job_end(j, -1, "statistics: cannot start a query to InfluxDB");
}

/* A: the rows before B, and the states after the batch. */
static void si_step_a(si_job *j) {
    stats_influx *s = j->s;
    sbuf q;
    sbuf_init(&q);
    j->nact = 0;
    for (size_t i = 0; i < j->n; i++) {
        si_ent *e = &j->ents[i];
        if (!e->active) continue;   /* too late, not tracked, or done from the running state */
        int64_t b0 = stats_floor(e->tmin, STATS_5MIN_US);
        j->act[j->nact++] = (int)i;
        stats_influx_select_rows(&q, s->rp5, e->entity, j->home, 0, INT64_MIN, b0, 1, 1);
        stats_influx_select_rows(&q, s->rph, e->entity, j->home, 1, INT64_MIN, b0, 1, 1);
        si_select_states(&q, s, e->entity, j->home, influx_time_ns_sat(e->tmax) + 1000, INT64_MAX, SI_NEXT_PAGE);
    }
    si_send(j, &q, si_step_a_done);
}

/* A raw state's numeric-ness kept as a row (start = time, count = numeric),
 * or a statistics row. */
static int si_collect_row(json_t *cols, json_t *vals, si_rows *dst) {
    const char *rec = json_string_value(si_col(cols, vals, "record"));
    json_t *t = si_col(cols, vals, "time");
    if (rec) {
        stats_sample x;
        stats_kind k;
        if (!json_is_integer(t) || stats_sample_from_record(rec, strlen(rec), &x, &k) != 1) return 0;
        stats_row r = {.start_us = (int64_t)(json_integer_value(t) / 1000), .count = x.numeric};
        return si_rows_push(dst, &r, (int)k);
    }
    stats_row r;
    int kind;
    if (stats_influx_row_read(cols, vals, &r, &kind) != 0) return 0;
    return si_rows_push(dst, &r, kind);
}

static si_ent *si_stmt_ent(si_job *j, int stmt, int *part) {
    if (stmt < 0 || (size_t)stmt / 3 >= j->nact) return NULL;
    *part = stmt % 3;
    return &j->ents[j->act[stmt / 3]];
}

/* A raw state after the batch (the page's count and last time kept). */
static int si_next_row(si_ent *e, json_t *cols, json_t *vals) {
    json_t *t = si_col(cols, vals, "time");
    e->next_got++;
    if (json_is_integer(t)) e->next_last_ns = (int64_t)json_integer_value(t);
    return si_collect_row(cols, vals, &e->next);
}

static int si_a_row(int stmt, json_t *cols, json_t *vals, void *arg) {
    int part;
    si_ent *e = si_stmt_ent(arg, stmt, &part);
    if (!e) return 0;
    if (part == 2) return si_next_row(e, cols, vals);
    return si_collect_row(cols, vals, part == 0 ? &e->prev5 : &e->prevh);
}

/* The next page's statements map one to one onto j->act. */
static int si_more_row(int stmt, json_t *cols, json_t *vals, void *arg) {
    si_job *j = arg;
    if (stmt < 0 || (size_t)stmt >= j->nact) return 0;
    return si_next_row(&j->ents[j->act[stmt]], cols, vals);
}

/* 1 when e's states after the batch hold no numeric one yet, the last page was
 * full and fewer than SI_NEXT_LIMIT were read: another page is needed. */
static int si_next_more(const si_ent *e) {
    if (e->next_got < SI_NEXT_PAGE || (e->next_pages + 1) * SI_NEXT_PAGE > SI_NEXT_LIMIT) return 0;
    for (size_t i = 0; i < e->next.n; i++)
        if (e->next.r[i].count) return 0;
    return 1;
}

/* The first hour to merge again: b's, or an earlier one whose 5-minute rows
 * were written while its hourly row was not (the two writes are separate
 * requests: a gap-crossing batch whose 5-minute write landed and whose hourly
 * write failed, then a stop or a retry on the slow path, which starts after
 * the stored 5-minute rows). The latest hourly row before the batch may be
 * stale and the hours after it may have none: when 5-minute rows exist at or
 * after its hour (and that hour is still inside the 5-minute policy, so all
 * its 5-minute rows are there), every hour from it on is merged again from
 * the 5-minute rows (read from there in step B). */
static int64_t si_merge_from(const si_ent *e, int64_t horizon5) {
    int64_t hb = stats_floor(e->b, STATS_HOUR_US);
    if (!e->prevh.n || !e->prev5.n) return hb;
    int64_t hl = e->prevh.r[0].start_us;
    if (hl >= hb || hl < horizon5 || e->prev5.r[0].start_us < hl) return hb;
    return hl;
}

/* Where an entity's recomputation starts (b) and what it carries in;
 * where it ends; the first hour merged again. */
static void si_plan(si_ent *e, int64_t horizon5) {
    int64_t b0 = stats_floor(e->tmin, STATS_5MIN_US);
    memset(&e->carry, 0, sizeof e->carry);
    e->b = b0;
    int prev_kind = -1;
    if (e->prev5.n) {
        stats_carry_from_row(&e->prev5.r[0], &e->carry);
        if (e->prev5.r[0].has_last) e->b = e->prev5.r[0].start_us + STATS_5MIN_US;
        prev_kind = e->prev5.kind[0];
    } else if (e->prevh.n && e->prevh.r[0].start_us + STATS_HOUR_US <= b0) {
        /* the 5-minute rows expired: the hour before stands for them. (An
         * hourly row of B's own hour with no 5-minute row before B means the
         * entity's rows begin at B: B is inside the retention horizon.) */
        const stats_row *h = &e->prevh.r[0];
        stats_carry_from_row(h, &e->carry);
        if (h->has_last) e->b = h->start_us + STATS_HOUR_US;
        prev_kind = e->prevh.kind[0];
    }
    if (!e->has_kind) e->kind = prev_kind >= 0 ? (stats_kind)prev_kind : STATS_KIND_MEASUREMENT;
    int64_t last = e->tmax;
    for (size_t i = 0; i < e->next.n; i++) {
        last = e->next.r[i].start_us;
        if (e->next.r[i].count) break;  /* the first numeric state after the batch */
    }
    e->end = stats_floor(last, STATS_5MIN_US) + STATS_5MIN_US;
    e->hm = si_merge_from(e, horizon5);
}

static void si_step_b(si_job *j);
static void si_step_a_more_done(const httpc_response *r, void *arg);

/* A's states after the batch, a page at a time (a late state's next numeric
 * one is usually the first: no answer of thousands of records per entity),
 * then B. */
static void si_step_a_more(si_job *j) {
    sbuf q;
    sbuf_init(&q);
    j->nact = 0;
    for (size_t i = 0; i < j->n; i++) {
        si_ent *e = &j->ents[i];
        if (!e->active || !si_next_more(e)) continue;
        e->next_got = 0;
        e->next_pages++;
        j->act[j->nact++] = (int)i;
        si_select_states(&q, j->s, e->entity, j->home, e->next_last_ns + 1, INT64_MAX,
                         SI_NEXT_PAGE);
    }
    if (j->nact == 0) {
        sbuf_free(&q);
        si_step_b(j);
        return;
    }
    int rc = sbuf_failed(&q) ? -1 : j->s->io.query(j->s->io.ctx, q.data, si_step_a_more_done, j);
    sbuf_free(&q);
    if (rc != 0) si_job_end(j, -1, "statistics: cannot start a query to InfluxDB");
}

static void si_step_a_more_done(const httpc_response *r, void *arg) {
    si_job *j = arg;
    char err[300];
    if (si_parse(r, si_more_row, j, err, sizeof err) != 0) {
        si_job_end(j, -1, err);
        return;
    }
    si_step_a_more(j);
}

static void si_step_a_done(const httpc_response *r, void *arg) {
    si_job *j = arg;
    char err[300];
    if (si_parse(r, si_a_row, j, err, sizeof err) != 0) {
        si_job_end(j, -1, err);
        return;
    }
    si_step_a_more(j);
}

/* B: raw states of [b, end), existing rows from the first hour merged on, for
 * every entity still active (those step A asked about). */
static void si_step_b(si_job *j) {
    stats_influx *s = j->s;
    sbuf q;
    sbuf_init(&q);
    int64_t horizon5 = stats_influx_horizon5(s, (int64_t)service_now_us());
    j->nact = 0;
    for (size_t i = 0; i < j->n; i++) {
        si_ent *e = &j->ents[i];
        if (!e->active) continue;
        si_plan(e, horizon5);
        j->act[j->nact++] = (int)i;
        int64_t h0 = e->hm;
        si_select_states(&q, s, e->entity, j->home, influx_time_ns_sat(e->b), influx_time_ns_sat(e->end), 0);
        stats_influx_select_rows(&q, s->rp5, e->entity, j->home, 0, h0, INT64_MAX, 0, 0);
        stats_influx_select_rows(&q, s->rph, e->entity, j->home, 1, h0, INT64_MAX, 0, 0);
    }
    si_send(j, &q, si_step_b_done);
}

static int si_b_row(int stmt, json_t *cols, json_t *vals, void *arg) {
    int part;
    si_ent *e = si_stmt_ent(arg, stmt, &part);
    if (!e) return 0;
    if (part != 0) return si_collect_row(cols, vals, part == 1 ? &e->old5 : &e->oldh);
    const char *rec = json_string_value(si_col(cols, vals, "record"));
    json_t *t = si_col(cols, vals, "time");
    stats_sample x;
    stats_kind k;
    if (!rec || !json_is_integer(t) || stats_sample_from_record(rec, strlen(rec), &x, &k) != 1) return 0;
    x.t_us = (int64_t)(json_integer_value(t) / 1000);
    if (e->recover && x.numeric && x.t_us >= e->tmin && x.t_us <= e->tmax) {
        e->has_rkind = 1;   /* in time order: the latest one's kind, as a batch's latest numeric state gives */
        e->rkind = k;
    }
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

/* emit of stats_compute: new rows, and break markers over old rows that
 * lost their value (e->carry is the state at the period's end). */
static int si_emit(const stats_row *r, int64_t start, void *arg) {
    si_job *j = arg;
    si_ent *e = j->cur;
    while (j->old_cursor < e->old5.n && e->old5.r[j->old_cursor].start_us < start) j->old_cursor++;
    int had_old = j->old_cursor < e->old5.n && e->old5.r[j->old_cursor].start_us == start;
    if (r) return si_rows_push(&j->fresh, r, (int)e->kind);
    if (!had_old) return 0;
    stats_row m = {.start_us = start, .mean = NAN, .min = NAN, .max = NAN};
    m.has_state = e->carry.has_prev;
    m.state = e->carry.prev;
    m.sum = e->carry.sum;
    m.has_last_reset = e->carry.has_last_reset;
    m.last_reset_us = e->carry.last_reset_us;
    return si_rows_push(&j->fresh, &m, (int)e->kind);
}

/* After a slow update: when the recomputed range ends with the entity's
 * latest state (no raw state after the batch, no row after the range), the
 * running state is what was just computed -- the carry at the last period's
 * start, its states, the merge of the final rows of its hour before it. */
static int si_seed(si_job *j, si_ent *e, int64_t lastb, const stats_carry *at_last, size_t split) {
    si_next *nx = &e->nx;
    memset(nx, 0, sizeof *nx);
    if (!e->hot || e->next.n || split >= e->nsamples) return 0;
    for (size_t i = 0; i < e->old5.n; i++)
        if (e->old5.r[i].start_us >= e->end) return 0;
    int64_t hour = stats_floor(lastb, STATS_HOUR_US);
    size_t k = 0;
    while (k < j->final.n && j->final.r[k].start_us < hour) k++;
    size_t m = k;
    while (m < j->final.n && j->final.r[m].start_us < lastb) m++;
    if (m > k) stats_merge(&j->final.r[k], m - k, hour, &nx->hour_before);
    nx->has_hour_before = m > k;
    size_t n = e->nsamples - split;
    nx->samples = malloc(n * sizeof *nx->samples);
    if (!nx->samples) return -1;
    memcpy(nx->samples, e->samples + split, n * sizeof *nx->samples);
    nx->n = n;
    nx->set = 1;
    nx->kind = e->kind;
    nx->bucket = lastb;
    nx->last_t = e->samples[e->nsamples - 1].t_us;
    nx->carry = *at_last;
    return 0;
}

/* How far the hourly rows after hour h1 move: the new sum at h1's end (the
 * final 5-minute rows) less the one the hourly rows hold there, not the
 * 5-minute delta -- the two writes go out together, so after a crash that
 * landed only the 5-minute one its rows already carry the new sums (delta 0)
 * while the later hours do not (and after one that landed only the hourly
 * one, the reverse: this gives 0). With no hourly row up to h1, the 5-minute
 * delta. */
static double si_hour_delta(const si_ent *e, const si_rows *final, int64_t h1, double delta) {
    if (e->kind == STATS_KIND_MEASUREMENT) return 0;
    const stats_row *oh = e->prevh.n ? &e->prevh.r[0] : NULL, *nf = NULL;
    for (size_t i = 0; i < e->oldh.n && e->oldh.r[i].start_us <= h1; i++) oh = &e->oldh.r[i];
    for (size_t i = 0; i < final->n && final->r[i].start_us < h1 + STATS_HOUR_US; i++) nf = &final->r[i];
    if (!oh || !nf) return delta;
    return nf->sum - oh->sum;
}

/* One entity's rows into j->lines5 / j->linesh. */
static int si_recompute(si_job *j, si_ent *e) {
    const char *entity = e->entity;
    /* the sum at `end` before: rows after it move by the difference */
    const stats_row *old_end = NULL;
    for (size_t i = 0; i < e->old5.n && e->old5.r[i].start_us < e->end; i++) old_end = &e->old5.r[i];
    if (!old_end && e->prev5.n) old_end = &e->prev5.r[0];
    j->cur = e;
    j->fresh.n = j->final.n = 0;
    j->old_cursor = 0;
    /* in two pieces: the carry at the last period's start seeds the running state */
    int64_t lastb = e->end - STATS_5MIN_US;
    size_t split = 0;
    while (split < e->nsamples && e->samples[split].t_us < lastb) split++;
    if (stats_compute(e->kind, &e->carry, e->samples, split, STATS_5MIN_US, e->b, lastb, si_emit, j) != 0)
        return -1;
    stats_carry at_last = e->carry;
    if (stats_compute(e->kind, &e->carry, e->samples + split, e->nsamples - split, STATS_5MIN_US, lastb, e->end,
                      si_emit, j) != 0)
        return -1;
    double delta = old_end && e->kind != STATS_KIND_MEASUREMENT ? e->carry.sum - old_end->sum : 0;
    /* final 5-minute rows from b's hour on: old before b, fresh, old after end (moved) */
    for (size_t i = 0; i < e->old5.n && e->old5.r[i].start_us < e->b; i++)
        if (si_rows_push(&j->final, &e->old5.r[i], e->old5.kind[i]) != 0) return -1;
    for (size_t i = 0; i < j->fresh.n; i++) {
        if (si_rows_push(&j->final, &j->fresh.r[i], (int)e->kind) != 0) return -1;
        stats_influx_row_line(&j->lines5, entity, j->home, 0, e->kind, &j->fresh.r[i]);
    }
    for (size_t i = 0; i < e->old5.n; i++) {
        if (e->old5.r[i].start_us < e->end) continue;
        stats_row r = e->old5.r[i];
        if (delta != 0) {
            r.sum += delta;
            stats_influx_row_line(&j->lines5, entity, j->home, 0, e->kind, &r);
        }
        if (si_rows_push(&j->final, &r, (int)e->kind) != 0) return -1;
    }
    /* hours: merged again from the final 5-minute rows (from e->hm: see si_merge_from) */
    int64_t h0 = e->hm, h1 = stats_floor(e->end - 1, STATS_HOUR_US);
    size_t k = 0;
    for (int64_t h = h0; h <= h1; h += STATS_HOUR_US) {
        while (k < j->final.n && j->final.r[k].start_us < h) k++;
        size_t m = k;
        while (m < j->final.n && j->final.r[m].start_us < h + STATS_HOUR_US) m++;
        if (m == k) continue;
        stats_row hr;
        stats_merge(&j->final.r[k], m - k, h, &hr);
        stats_influx_row_line(&j->linesh, entity, j->home, 1, e->kind, &hr);
        k = m;
    }
    if (si_seed(j, e, lastb, &at_last, split) != 0) return -1;
    double dh = si_hour_delta(e, &j->final, h1, delta);
    if (dh != 0) {
        for (size_t i = 0; i < e->oldh.n; i++) {
            if (e->oldh.r[i].start_us <= h1) continue;
            stats_row r = e->oldh.r[i];
            r.sum += dh;
            stats_influx_row_line(&j->linesh, entity, j->home, 1, e->kind, &r);
        }
    }
    return sbuf_failed(&j->lines5) || sbuf_failed(&j->linesh) ? -1 : 0;
}

static void si_step_b_done(const httpc_response *r, void *arg) {
    si_job *j = arg;
    char err[300];
    if (si_parse(r, si_b_row, j, err, sizeof err) != 0) {
        si_job_end(j, -1, err);
        return;
    }
    for (size_t k = 0; k < j->nact; k++) {
        si_ent *e = &j->ents[j->act[k]];
        if (e->has_rkind) {
            e->has_kind = 1;
            e->kind = e->rkind;
        }
        if (!e->has_kind && !e->prev5.n && !e->prevh.n && !e->old5.n) {
            e->active = 0;   /* no numeric state ever: not an entity with statistics (on/off, text) */
            e->nx.untracked = 1;
            continue;
        }
        if (si_recompute(j, e) != 0) {
            si_job_end(j, -1, "statistics: out of memory");
            return;
        }
        j->s->entities_updated++;
    }
    si_write(j);
}

static size_t si_count_lines(const sbuf *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

/* The 5-minute rows and the hours merged from them, in two requests sent
 * together (one round trip before the ack, not two; issue 15). Their order
 * does not matter: the slow path compares the sums it writes with the stored
 * rows of each policy (si_hour_delta), so a crash that landed either one
 * alone is recomputed right on the retry. */
static void si_write(si_job *j) {
    stats_influx *s = j->s;
    j->writes_pending = 1; /* held until both are started */
    for (int hourly = 0; hourly < 2; hourly++) {
        sbuf *b = hourly ? &j->linesh : &j->lines5;
        if (b->len == 0) continue;
        j->wr[hourly] = (struct si_wr){j, hourly};
        j->writes_pending++;
        if (s->io.write(s->io.ctx, hourly ? s->rph : s->rp5, b->data, b->len, si_write_done, &j->wr[hourly]) != 0) {
            j->writes_pending--;
            if (!j->write_err[0])
                snprintf(j->write_err, sizeof j->write_err, "statistics: cannot start a write to InfluxDB");
        }
    }
    si_write_done(NULL, j);
}

/* One write's answer (r NULL: the starter's hold, arg the job). */
static void si_write_done(const httpc_response *r, void *arg) {
    si_job *j = r ? ((struct si_wr *)arg)->j : arg;
    int hourly = r ? ((struct si_wr *)arg)->hourly : 0, written = r != NULL;
    if (r && r->status != 204 && r->status != 200) {
        char err[300];
        json_t *doc = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        const char *e = json_string_value(json_object_get(doc, "error"));
        if (r->status == 0)
            snprintf(err, sizeof err, "statistics write: influxdb unreachable: %s", r->error ? r->error : "");
        else
            snprintf(err, sizeof err, "statistics write: HTTP %ld: %.200s", r->status, e ? e : "");
        json_decref(doc);
        if (r->status != 400) {   /* unavailable, or a policy gone: not acknowledged, retried */
            if (!j->write_err[0]) snprintf(j->write_err, sizeof j->write_err, "%s", err);
            written = 0;
        } else if (strstr(err, "beyond retention policy")) {
            /* InfluxDB refused some points themselves (a partial write: the others are stored). Points older
             * than a shorter policy of the user's are simply not kept; anything else (a field type conflict
             * in homeiq_statistics) is reported, and the batch -- whose events are stored -- still
             * acknowledged, so it cannot block the events behind it. */
            j->s->late_skipped++;
        } else {
            j->s->refused++;
            snprintf(j->s->last_refusal, sizeof j->s->last_refusal, "%.190s", err);
            log_error("statistics rows refused by InfluxDB (events stored, rows missing): %s", err);
        }
    }
    if (written) j->s->rows_written += si_count_lines(hourly ? &j->linesh : &j->lines5);
    if (--j->writes_pending > 0) return;
    if (j->write_err[0]) si_job_end(j, -1, j->write_err);
    else si_job_end(j, 0, NULL);
}

static si_job *si_job_new(stats_influx *s, const char *home, stats_influx_done_fn done, void *arg) {
    si_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->s = s;
    snprintf(j->home, sizeof j->home, "%s", home);
    j->done = done;
    j->arg = arg;
    j->t0 = si_mono_us();
    j->direct = 1;
    sbuf_init(&j->lines5);
    sbuf_init(&j->linesh);
    return j;
}

/* The slow path, once no row is pending or in flight (it reads the rows). */
static void si_slow_go(int rc, const char *err, void *arg) {
    si_job *j = arg;
    if (rc != 0) si_job_end(j, -1, err);
    else si_step_a(j);
}

/* A live batch's rows queued for the flush, and the batch done (acknowledged). */
static void si_queue_go(int rc, const char *err, void *arg) {
    si_job *j = arg;
    if (rc != 0) {
        char why[300];
        snprintf(why, sizeof why, "statistics: rows wait for a flush that failed: %.240s", err ? err : "");
        si_job_end(j, -1, why);
        return;
    }
    if (stats_influx_flush_add(j->s->flush, &j->lines5, &j->linesh, j->seq) != 0) {
        si_job_end(j, -1, "statistics: out of memory");
        return;
    }
    si_job_end(j, 0, NULL);
}

/* A batch once the rows of earlier runs are recovered: the live entities from
 * memory -- with INFLUXDB_STATISTICS_FLUSH_MS their rows are queued and the
 * batch is done (acknowledged) at once; the others by the slow path, which
 * first waits for the queued rows (it reads them) and writes the batch's rows
 * before the ack, as without the flush. */
static void si_batch_go(int rc, const char *err, void *arg) {
    si_job *j = arg;
    stats_influx *s = j->s;
    if (rc != 0) {
        si_job_end(j, -1, err);
        return;
    }
    if (si_collect(j, j->b) != 0 || si_fast_all(j) != 0) {
        si_job_end(j, -1, "statistics: out of memory");
        return;
    }
    if (!s->flush) {
        si_step_a(j);
        return;
    }
    size_t slow = 0;
    for (size_t i = 0; i < j->n; i++) slow += j->ents[i].active;
    if (slow) {
        stats_influx_flush_wait(s->flush, si_slow_go, j);
        return;
    }
    j->direct = 0;
    if (stats_influx_flush_full(s->flush)) {
        /* backpressure: too many rows wait for InfluxDB; queue this batch's once they are written, or fail it
         * (503, re-sent by ingestion) when the flush fails -- memory stays bounded whatever the outage */
        stats_influx_flush_wait(s->flush, si_queue_go, j);
        return;
    }
    si_queue_go(0, NULL, j);
}

void stats_influx_batch(stats_influx *s, const store_batch *b, int64_t seq, stats_influx_done_fn done, void *arg) {
    si_job *j = si_job_new(s, influx_points_home_value(b->home_id), done, arg);
    if (!j) {
        done(-1, "statistics: out of memory", arg);
        return;
    }
    j->b = b;
    j->seq = seq;
    if (s->recover && !stats_influx_recover_done(s->recover)) stats_influx_recover_run(s->recover, seq, si_batch_go, j);
    else si_batch_go(0, NULL, j);
}

/* The earliest time whose rows may still be written: the 5-minute policy's
 * horizon (with its hour of margin), or the raw points' (the default policy,
 * or the entity's own shorter RETENTION_OVERRIDES rule) -- si_too_late's. */
static int64_t si_horizon(const stats_influx *s, const char *entity, int64_t now) {
    int64_t h = stats_influx_horizon5(s, now);
    long long raw = s->raw_days;
    if (s->rules.n) {
        char dom[128];
        const char *dot = strchr(entity, '.');
        size_t n = dot && (size_t)(dot - entity) < sizeof dom ? (size_t)(dot - entity) : 0;
        memcpy(dom, entity, n);
        dom[n] = '\0';
        long long own = retention_rules_days(&s->rules, entity, n ? dom : NULL, 0);
        if (own > 0 && (raw == 0 || own < raw)) raw = own;
    }
    if (raw) {
        int64_t r = now - raw * SI_DAY_US + STATS_HOUR_US;
        r = stats_floor(r + STATS_5MIN_US - 1, STATS_5MIN_US);
        if (r > h) h = r;
    }
    return h;
}

void stats_influx_recompute(stats_influx *s, const char *home, const stats_influx_span *sp, size_t n,
                            stats_influx_done_fn done, void *arg) {
    si_job *j = si_job_new(s, home, done, arg);
    if (!j || !(j->ents = calloc(n ? n : 1, sizeof *j->ents)) || !(j->act = malloc((n ? n : 1) * sizeof *j->act))) {
        if (j) si_job_free(j);
        done(-1, "statistics: out of memory", arg);
        return;
    }
    int64_t now = (int64_t)service_now_us();
    for (size_t i = 0; i < n; i++) {
        si_ent *e = &j->ents[j->n];
        int64_t lo = si_horizon(s, sp[i].entity, now);
        if (sp[i].tmax_us < lo) {
            s->late_skipped++;   /* as a live batch would have: too old to count */
            continue;
        }
        e->entity = strdup(sp[i].entity);
        if (!e->entity) {
            si_job_end(j, -1, "statistics: out of memory");
            return;
        }
        j->n++;
        e->tmin = sp[i].tmin_us < lo ? lo : sp[i].tmin_us;
        e->tmax = sp[i].tmax_us;
        e->active = e->recover = 1;
        e->hot = si_hot_get(s, e->entity, j->home);
    }
    si_step_a(j);
}

void stats_influx_settle(stats_influx *s, stats_influx_done_fn done, void *arg) {
    if (s->recover && !stats_influx_recover_done(s->recover)) {
        stats_influx_recover_run(s->recover, INT64_MAX, done, arg);   /* it ends with nothing pending */
        return;
    }
    if (s->flush) stats_influx_flush_wait(s->flush, done, arg);
    else done(0, NULL, arg);
}

void stats_influx_stop(stats_influx *s) {
    if (s && s->flush && s->stop_ms > 0 && (!s->recover || stats_influx_recover_done(s->recover)))
        stats_influx_flush_stop(s->flush, s->stop_ms);
}

stats_influx_flush *stats_influx_flush_of(const stats_influx *s) {
    return s->flush;
}

void stats_influx_flush_off(stats_influx *s) {
    stats_influx_flush_free(s->flush);   /* idle: the recovery runs before any row is queued */
    s->flush = NULL;
}

/* ---- reads for the API ------------------------------------------------- */

typedef struct si_fetch {
    store_stats_cb cb;
    void *arg;
    si_rows prev, rows, latest;
} si_fetch;

static int si_fetch_row(int stmt, json_t *cols, json_t *vals, void *arg) {
    si_fetch *f = arg;
    si_rows *by[3] = {&f->prev, &f->rows, &f->latest};
    if (stmt < 0 || stmt > 2) return 0;
    stats_row r;
    int kind;
    if (stats_influx_row_read(cols, vals, &r, &kind) != 0) return 0;
    if (stmt == 1 && stats_row_is_marker(&r)) return 0;   /* break markers are never shown */
    return si_rows_push(by[stmt], &r, kind);
}

static void si_fetch_done(const httpc_response *r, void *arg) {
    si_fetch *f = arg;
    char err[300];
    int rc = si_parse(r, si_fetch_row, f, err, sizeof err);
    if (rc != 0) log_warn("statistics query failed: %s", err);
    int kind = f->latest.n ? f->latest.kind[0] : -1;
    f->cb(rc, kind, f->prev.n ? &f->prev.r[0] : NULL, f->prev.n > 0, f->rows.r, f->rows.n, f->arg);
    si_rows_free(&f->prev);
    si_rows_free(&f->rows);
    si_rows_free(&f->latest);
    free(f);
}

void stats_influx_fetch(stats_influx *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                        int64_t end_us, store_stats_cb cb, void *arg) {
    const char *hv = influx_points_home_value(home);
    si_fetch *f = calloc(1, sizeof *f);
    if (!s || !f) {
        free(f);
        cb(-1, -1, NULL, 0, NULL, 0, arg);
        return;
    }
    f->cb = cb;
    f->arg = arg;
    const char *rp = hourly ? s->rph : s->rp5;
    sbuf q;
    sbuf_init(&q);
    stats_influx_select_rows(&q, rp, entity_id, hv, hourly, INT64_MIN, start_us, 1, 1);
    stats_influx_select_rows(&q, rp, entity_id, hv, hourly, start_us, end_us, 0, 0);
    stats_influx_select_rows(&q, rp, entity_id, hv, hourly, INT64_MIN, INT64_MAX, 1, 1);
    int rc = sbuf_failed(&q) ? -1 : s->io.query(s->io.ctx, q.data, si_fetch_done, f);
    sbuf_free(&q);
    if (rc != 0) {
        free(f);
        cb(-1, -1, NULL, 0, NULL, 0, arg);
    }
}

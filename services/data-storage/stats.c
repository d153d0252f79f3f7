/* stats.c -- see stats.h. The rules are written out in docs/STATISTICS.md;
 * the comments name the rule each piece implements. */
#include "stats.h"
#include "event.h"
#include "json_scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sum: HA's meter-reset rules --------------------------------------- */

/* Applies one numeric sample to the running sum (sensor/recorder.py
 * compile_statistics): the first value sets the zero point; total_increasing:
 * a drop below 90 % of the previous value is a reset and the new value is
 * growth from 0; total: a new (different, non-null) last_reset starts a new
 * cycle the same way; otherwise the sum follows the value (may go down). */
static void stats_sum_step(stats_kind kind, stats_carry *c, const stats_sample *s) {
    if (kind != STATS_KIND_MEASUREMENT && c->has_prev) {
        int reset = 0;
        if (kind == STATS_KIND_TOTAL)
            reset = s->has_last_reset && (!c->has_last_reset || c->last_reset_us != s->last_reset_us);
        else
            reset = s->v < 0.9 * c->prev;
        c->sum += reset ? s->v : s->v - c->prev;
    }
    if (kind == STATS_KIND_TOTAL && s->has_last_reset) {
        c->has_last_reset = 1;
        c->last_reset_us = s->last_reset_us;
    }
    c->has_prev = 1;
    c->prev = s->v;
}

/* ---- one period -------------------------------------------------------- */

typedef struct stats_acc {
    double wsum;        /* sum of value x seconds held */
    int64_t covered_us;
    double min, max;
    int any;            /* min/max set */
    long long count;
} stats_acc;

static void stats_acc_value(stats_acc *a, double v) {
    if (!a->any || v < a->min) a->min = v;
    if (!a->any || v > a->max) a->max = v;
    a->any = 1;
}

/* The value in force held from t0 to t1. */
static void stats_acc_hold(stats_acc *a, const stats_carry *c, int64_t t0, int64_t t1) {
    if (!c->in_force || t1 <= t0) return;
    a->wsum += c->value * ((double)(t1 - t0) / 1e6);
    a->covered_us += t1 - t0;
    stats_acc_value(a, c->value);
}

static void stats_row_fill(stats_kind kind, const stats_acc *a, const stats_carry *c, int64_t start, stats_row *r) {
    memset(r, 0, sizeof *r);
    r->start_us = start;
    r->mean = a->covered_us > 0 ? a->wsum / ((double)a->covered_us / 1e6) : NAN;
    r->min = a->any ? a->min : NAN;
    r->max = a->any ? a->max : NAN;
    r->has_last = c->in_force;
    r->last = c->in_force ? c->value : 0;
    r->has_state = c->has_prev;
    r->state = c->has_prev ? c->prev : 0;
    r->sum = kind != STATS_KIND_MEASUREMENT ? c->sum : 0;
    r->has_last_reset = c->has_last_reset;
    r->last_reset_us = c->last_reset_us;
    r->count = a->count;
    r->covered_us = a->covered_us;
}

int stats_compute(stats_kind kind, stats_carry *carry, const stats_sample *samples, size_t n, int64_t period_us,
                  int64_t from_us, int64_t to_us, stats_emit_fn emit, void *arg) {
    size_t i = 0;
    for (int64_t b = from_us; b < to_us; b += period_us) {
        int64_t e = b + period_us, t = b;
        stats_acc a = {0};
        int seen = 0;
        for (; i < n && samples[i].t_us < e; i++, seen = 1) {
            const stats_sample *s = &samples[i];
            int64_t st = s->t_us < b ? b : s->t_us;
            stats_acc_hold(&a, carry, t, st);  /* the previous value, up to this change */
            t = st;
            if (s->numeric) {
                stats_sum_step(kind, carry, s);
                stats_acc_value(&a, s->v);      /* recorded values count even if replaced at once */
                a.count++;
                carry->in_force = 1;
                carry->value = s->v;
            } else {
                carry->in_force = 0;            /* unknown/unavailable/text: the series breaks */
            }
        }
        stats_acc_hold(&a, carry, t, e);         /* the last value holds to the period's end */
        int rc;
        if (a.covered_us > 0 || a.count > 0 || seen) {   /* seen alone: a break marker */
            stats_row r;
            stats_row_fill(kind, &a, carry, b, &r);
            rc = emit(&r, b, arg);
        } else {
            rc = emit(NULL, b, arg);
        }
        if (rc) return rc;
    }
    return 0;
}

void stats_carry_from_row(const stats_row *r, stats_carry *c) {
    memset(c, 0, sizeof *c);
    c->in_force = r->has_last;
    c->value = r->last;
    c->has_prev = r->has_state;
    c->prev = r->state;
    c->sum = r->sum;
    c->has_last_reset = r->has_last_reset;
    c->last_reset_us = r->last_reset_us;
}

void stats_merge(const stats_row *rows, size_t n, int64_t start_us, stats_row *out) {
    double wsum = 0;
    *out = rows[n - 1];
    out->start_us = start_us;
    out->count = 0;
    out->covered_us = 0;
    int any = 0;
    out->min = out->max = NAN;
    for (size_t i = 0; i < n; i++) {
        const stats_row *r = &rows[i];
        if (r->covered_us > 0) wsum += r->mean * ((double)r->covered_us / 1e6);
        out->covered_us += r->covered_us;
        out->count += r->count;
        if (stats_row_is_marker(r)) continue;
        if (!any || r->min < out->min) out->min = r->min;
        if (!any || r->max > out->max) out->max = r->max;
        any = 1;
    }
    out->mean = out->covered_us > 0 ? wsum / ((double)out->covered_us / 1e6) : NAN;
}

/* ---- reading a stored record ------------------------------------------- */

typedef struct stats_fields {
    const char *type, *state, *value, *sclass, *attrs, *entity, *last_reset;
    size_t type_len, state_len, value_len, sclass_len, attrs_len, entity_len, last_reset_len;
} stats_fields;

#define STATS_KEY(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), (n)) == 0)

static int stats_attr(const char *k, size_t kn, const char *v, size_t vn, void *arg) {
    stats_fields *f = arg;
    if (!STATS_KEY(k, kn, "last_reset")) return 0;
    f->last_reset = v;
    f->last_reset_len = vn;
    return 1;
}

#define STATS_IS(v, n, lit) ((v) && (n) == sizeof(lit) - 1 && memcmp((v), (lit), (n)) == 0)

/* "value" is enrichment's reading of the state by Python float() rules, or 1/0
 * for on/off-like words: a number counts only when the state starts like one. */
static int stats_numeric(const stats_fields *f, double *out) {
    if (!f->value || f->value_len == 0 || !f->state || f->state_len < 3 || f->state[0] != '"') return 0;
    if (f->value[0] != '-' && (f->value[0] < '0' || f->value[0] > '9')) return 0;
    size_t i = 1;
    while (i < f->state_len - 1 && (f->state[i] == ' ' || f->state[i] == '\t' || f->state[i] == '\n' ||
                                    f->state[i] == '\r' || f->state[i] == '\f' || f->state[i] == '\v' ||
                                    f->state[i] == '\\'))
        i += f->state[i] == '\\' ? 2 : 1;   /* escaped whitespace (\n, \t) */
    char c = f->state[i];
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) return 0;
    char buf[64];
    if (f->value_len >= sizeof buf) return 0;
    memcpy(buf, f->value, f->value_len);
    buf[f->value_len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int stats_sample_from_fields(const char *json, const record_fields *rf, stats_sample *s, stats_kind *kind) {
    stats_fields f = {0};
    memset(s, 0, sizeof *s);
    *kind = STATS_KIND_MEASUREMENT;
    f.type = record_fields_at(rf, json, RF_EVENT_TYPE, &f.type_len);
    f.entity = record_fields_at(rf, json, RF_ENTITY_ID, &f.entity_len);
    f.state = record_fields_at(rf, json, RF_STATE, &f.state_len);
    f.value = record_fields_at(rf, json, RF_VALUE, &f.value_len);
    f.sclass = record_fields_at(rf, json, RF_STATE_CLASS, &f.sclass_len);
    f.attrs = record_fields_at(rf, json, RF_ATTRIBUTES, &f.attrs_len);
    if (!STATS_IS(f.type, f.type_len, "\"state_changed\"") || !f.entity || f.entity[0] != '"') return 0;
    s->numeric = stats_numeric(&f, &s->v);
    if (STATS_IS(f.sclass, f.sclass_len, "\"total_increasing\"")) *kind = STATS_KIND_TOTAL_INCREASING;
    else if (STATS_IS(f.sclass, f.sclass_len, "\"total\"")) *kind = STATS_KIND_TOTAL;
    /* a last_reset key is in the attributes' text as written: most have none, so no walk */
    if (f.attrs && f.attrs_len && f.attrs[0] == '{' && memmem(f.attrs, f.attrs_len, "\"last_reset\"", 12)) {
        jscan_object_trusted(f.attrs, f.attrs_len, stats_attr, &f);
        char buf[64];
        if (f.last_reset && f.last_reset_len > 2 && f.last_reset_len < sizeof buf && f.last_reset[0] == '"') {
            memcpy(buf, f.last_reset + 1, f.last_reset_len - 2);
            buf[f.last_reset_len - 2] = '\0';
            s->has_last_reset = event_time_parse(buf, &s->last_reset_us) == 0;
        }
    }
    return 1;
}

int stats_sample_from_record(const char *json, size_t len, stats_sample *s, stats_kind *kind) {
    record_fields rf;
    if (record_fields_scan(&rf, json, len) != 0) {
        memset(s, 0, sizeof *s);
        *kind = STATS_KIND_MEASUREMENT;
        return -1;
    }
    return stats_sample_from_fields(json, &rf, s, kind);
}

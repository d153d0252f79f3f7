/* retention_influx.c -- see retention_influx.h. Start-up steps, one request
 * each: SHOW DATABASES; CREATE DATABASE (only when missing); SHOW RETENTION
 * POLICIES; CREATE RETENTION POLICY for HomeIQ's missing statistics policies.
 * Every existing policy is only compared, never altered. */
#include "retention_influx.h"
#include "config.h"
#include "lineproto.h"
#include "log.h"
#include "retention_rules.h"
#include "sbuf.h"
#include "storage_maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RI_MAX_WARNINGS 4

struct retention_influx {
    char *db;
    int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg);
    void *ctx;
    long long raw_days, s5_days;
    int step, busy;
    retention_influx_done_fn done;
    void *arg;
    /* what SHOW RETENTION POLICIES said */
    char default_rp[128];
    long long default_s;    /* -1 unknown */
    int have5, haveh;
    retention_rules rules;  /* RETENTION_OVERRIDES: applied by retention_influx_purge.c, checked here */
    char warnings[RI_MAX_WARNINGS][300];
    int nwarnings;
};

enum { RI_SHOW_DB, RI_CREATE_DB, RI_SHOW_RP, RI_CREATE_RP };

int retention_influx_open(const char *db, int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg),
                          void *ctx, retention_influx **out) {
    long long raw, s5;
    if (config_int(storage_maint_vars, "RETENTION_DAYS", &raw) ||
        config_int(storage_maint_vars, "STATISTICS_5MIN_RETENTION_DAYS", &s5))
        return -1;
    retention_influx *r = calloc(1, sizeof *r);
    if (!r || !(r->db = strdup(db))) {
        free(r);
        return -1;
    }
    r->query = query;
    r->ctx = ctx;
    r->raw_days = raw;
    r->s5_days = s5;
    r->default_s = -1;
    char err[300];
    if (retention_rules_parse(config_text(storage_maint_vars, "RETENTION_OVERRIDES"), &r->rules, err, sizeof err)) {
        log_error("%s", err);
        retention_influx_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void retention_influx_close(retention_influx *r) {
    if (!r) return;
    retention_rules_free(&r->rules);
    free(r->db);
    free(r);
}

/* Go duration text as InfluxDB prints it ("240h0m0s", "0s" = INF) in seconds. */
static long long ri_duration_s(const char *d) {
    long long total = 0, n = 0;
    int digits = 0;
    for (const char *p = d; p && *p; p++) {
        if (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p - '0');
            digits = 1;
            continue;
        }
        if (!digits) return -1;
        if (*p == 'h') total += n * 3600;
        else if (*p == 'm') total += n * 60;
        else if (*p == 's') total += n;
        else return -1;
        n = 0;
        digits = 0;
    }
    return digits ? -1 : total;
}

static void ri_warn(retention_influx *r, const char *fmt, const char *rp, long long have_s, long long want_days,
                    const char *var) {
    if (r->nwarnings >= RI_MAX_WARNINGS) return;
    char have[32], want[32];
    if (have_s == 0) snprintf(have, sizeof have, "INF");
    else snprintf(have, sizeof have, "%lldh", have_s / 3600);
    if (want_days == 0) snprintf(want, sizeof want, "INF");
    else snprintf(want, sizeof want, "%lldd", want_days);
    char *w = r->warnings[r->nwarnings++];
    snprintf(w, sizeof r->warnings[0], fmt, rp, r->db, have, var, want);
    log_warn("%s", w);
}

/* A rule can only shorten on InfluxDB: the default policy drops every raw
 * point after its duration, whatever a rule says (0 = forever, or longer). */
static void ri_overrides_check(retention_influx *r) {
    for (size_t i = 0; i < r->rules.n && r->nwarnings < RI_MAX_WARNINGS; i++) {
        const retention_rule *x = &r->rules.r[i];
        if (r->default_s <= 0 || (x->days > 0 && x->days * 86400 <= r->default_s)) continue;
        char *w = r->warnings[r->nwarnings++];
        snprintf(w, sizeof r->warnings[0],
                 "RETENTION_OVERRIDES %s=%lld cannot keep raw events longer than the default policy %s of %s "
                 "(%lldh): they expire with it", x->name, x->days, r->default_rp, r->db, r->default_s / 3600);
        log_warn("%s", w);
    }
}

/* One answer: *vals = the rows of the first series (NULL: none); 0, or -1 with why. */
static int ri_values(const httpc_response *res, json_t **doc, json_t **columns, json_t **vals, char *why, size_t n) {
    *doc = *vals = NULL;
    if (res->status != 200) {
        json_t *j = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(why, n, "%s", res->status == 0 ? (res->error ? res->error : "no response") : e ? e : "HTTP error");
        json_decref(j);
        return -1;
    }
    *doc = json_loadb(res->body, res->body_len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *r0 = json_array_get(json_object_get(*doc, "results"), 0);
    const char *e = json_string_value(json_object_get(*doc, "error"));
    if (!e) e = json_string_value(json_object_get(r0, "error"));
    if (!*doc || e) {
        snprintf(why, n, "%s", e ? e : "unreadable answer");
        return -1;
    }
    json_t *s0 = json_array_get(json_object_get(r0, "series"), 0);
    *columns = json_object_get(s0, "columns");
    *vals = json_object_get(s0, "values");   /* an empty answer has no series */
    return 0;
}

static void ri_next(retention_influx *r);

static void ri_finish(retention_influx *r, int rc, int unreachable, const char *why) {
    r->busy = 0;
    retention_influx_done_fn done = r->done;
    done(rc, unreachable, why, r->arg);
}

static int ri_col(json_t *cols, const char *name) {
    json_t *c;
    size_t i;
    json_array_foreach(cols, i, c) if (json_is_string(c) && strcmp(json_string_value(c), name) == 0) return (int)i;
    return -1;
}

static void ri_policies(retention_influx *r, json_t *cols, json_t *vals) {
    int cn = ri_col(cols, "name"), cd = ri_col(cols, "duration"), cdef = ri_col(cols, "default");
    json_t *row;
    size_t i;
    r->have5 = r->haveh = 0;
    json_array_foreach(vals, i, row) {
        const char *name = json_string_value(json_array_get(row, (size_t)cn));
        long long d = ri_duration_s(json_string_value(json_array_get(row, (size_t)cd)));
        if (!name) continue;
        if (json_is_true(json_array_get(row, (size_t)cdef))) {
            snprintf(r->default_rp, sizeof r->default_rp, "%s", name);
            r->default_s = d;
            if (d != r->raw_days * 86400)
                ri_warn(r, "retention policy \"%s\" (the default of database %s, where raw events go) keeps %s, but "
                           "%s is %s; HomeIQ does not change an existing policy (ALTER RETENTION POLICY to apply it)",
                        name, d, r->raw_days, "RETENTION_DAYS");
        }
        if (strcmp(name, STATS_INFLUX_RP_5MIN) == 0) {
            r->have5 = 1;
            if (d != r->s5_days * 86400)
                ri_warn(r, "retention policy \"%s\" of database %s keeps %s, but %s is %s; left as it is", name, d,
                        r->s5_days, "STATISTICS_5MIN_RETENTION_DAYS");
        }
        if (strcmp(name, STATS_INFLUX_RP_HOUR) == 0) {
            r->haveh = 1;
            if (d != 0)
                ri_warn(r, "retention policy \"%s\" of database %s keeps %s, but hourly statistics are kept "
                           "forever (%s%s); left as it is", name, d, 0, "");
        }
    }
}

static void ri_done(const httpc_response *res, void *arg) {
    retention_influx *r = arg;
    char why[300];
    json_t *doc = NULL, *cols = NULL, *vals = NULL;
    if (ri_values(res, &doc, &cols, &vals, why, sizeof why) != 0) {
        json_decref(doc);
        ri_finish(r, -1, res->status == 0, why);
        return;
    }
    if (r->step == RI_SHOW_DB) {
        json_t *row;
        size_t i;
        int found = 0;
        json_array_foreach(vals, i, row) found |= json_is_string(json_array_get(row, 0)) &&
                                                  strcmp(json_string_value(json_array_get(row, 0)), r->db) == 0;
        r->step = found ? RI_SHOW_RP : RI_CREATE_DB;
    } else if (r->step == RI_CREATE_DB) {
        if (r->raw_days)
            log_info("influxdb database %s created; raw events kept %lld days (policy %s, RETENTION_DAYS)", r->db,
                     r->raw_days, RETENTION_INFLUX_RP_RAW);
        else
            log_info("influxdb database %s created; raw events kept forever (RETENTION_DAYS=0)", r->db);
        r->step = RI_SHOW_RP;
    } else if (r->step == RI_SHOW_RP) {
        r->nwarnings = 0;
        ri_policies(r, cols, vals);
        ri_overrides_check(r);
        r->step = RI_CREATE_RP;
        if (r->have5 && r->haveh) {
            json_decref(doc);
            ri_finish(r, 0, 0, NULL);
            return;
        }
    } else {
        json_decref(doc);
        log_info("influxdb retention policies for statistics ready on %s", r->db);
        ri_finish(r, 0, 0, NULL);
        return;
    }
    json_decref(doc);
    ri_next(r);
}

static void ri_next(retention_influx *r) {
    sbuf q;
    sbuf_init(&q);
    if (r->step == RI_SHOW_DB) {
        sbuf_adds(&q, "SHOW DATABASES");
    } else if (r->step == RI_CREATE_DB) {
        sbuf_adds(&q, "CREATE DATABASE ");
        influxql_ident(&q, r->db);
        if (r->raw_days) {
            sbuf_printf(&q, " WITH DURATION %lldd REPLICATION 1 NAME ", r->raw_days);
            influxql_ident(&q, RETENTION_INFLUX_RP_RAW);
        }
    } else if (r->step == RI_SHOW_RP) {
        sbuf_adds(&q, "SHOW RETENTION POLICIES ON ");
        influxql_ident(&q, r->db);
    } else {
        if (!r->have5) {
            sbuf_adds(&q, "CREATE RETENTION POLICY ");
            influxql_ident(&q, STATS_INFLUX_RP_5MIN);
            sbuf_adds(&q, " ON ");
            influxql_ident(&q, r->db);
            sbuf_printf(&q, " DURATION %lldd REPLICATION 1", r->s5_days);
        }
        if (!r->haveh) {
            sbuf_adds(&q, r->have5 ? "" : ";");
            sbuf_adds(&q, "CREATE RETENTION POLICY ");
            influxql_ident(&q, STATS_INFLUX_RP_HOUR);
            sbuf_adds(&q, " ON ");
            influxql_ident(&q, r->db);
            sbuf_adds(&q, " DURATION INF REPLICATION 1");
        }
    }
    int rc = sbuf_failed(&q) ? -1 : r->query(r->ctx, q.data, ri_done, r);
    sbuf_free(&q);
    if (rc != 0) ri_finish(r, -1, 0, "cannot start a request to InfluxDB");
}

int retention_influx_ensure(retention_influx *r, retention_influx_done_fn done, void *arg) {
    if (r->busy) return 0;
    r->busy = 1;
    r->done = done;
    r->arg = arg;
    r->step = RI_SHOW_DB;
    ri_next(r);
    return 0;
}

json_t *retention_influx_info(const retention_influx *r) {
    json_t *w = json_array();
    for (int i = 0; i < r->nwarnings; i++) json_array_append_new(w, json_string(r->warnings[i]));
    return json_pack("{s:I,s:I,s:s,s:I,s:s,s:s,s:o}", "retention_days", (json_int_t)r->raw_days,
                     "statistics_5min_retention_days", (json_int_t)r->s5_days, "default_policy", r->default_rp,
                     "default_policy_duration_s", (json_int_t)r->default_s, "statistics_5min_policy",
                     STATS_INFLUX_RP_5MIN, "statistics_hour_policy", STATS_INFLUX_RP_HOUR, "warnings", w);
}

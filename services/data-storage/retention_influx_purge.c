/* retention_influx_purge.c -- see retention_influx_purge.h.
 *
 * Per rule i (DAYS > 0), with cut = floor(now - DAYS, 1 h):
 *   done[i] == 0: SELECT first("event_id") ... WHERE <rule> AND time < cut
 *                 -> done[i] = the oldest point's day (or cut when none);
 *   done[i] < cut: DELETE ... WHERE <rule> AND time < min(done[i] + 1 day, cut)
 *                 -> done[i] = that bound (late points older than it go too);
 * then the next rule. When every rule is done the round ends and done[] is
 * forgotten: each round (PURGE_INTERVAL_MS) starts with the oldest point
 * again, so late points older than the last bound go too. Only memory holds
 * done[]: nothing is persisted, a restart simply starts a round. */
#include "retention_influx_purge.h"
#include "config.h"
#include "lineproto.h"
#include "log.h"
#include "retention_rules.h"
#include "sbuf.h"
#include "stats.h"
#include "storage_maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RIP_DAY_US (86400LL * 1000000LL)

struct retention_influx_purge {
    int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg);
    void *ctx;
    char *measurement;
    retention_rules rules;
    int64_t *done;          /* per rule: everything before this is deleted (0: not known yet) */
    int64_t *reached;       /* per rule: the latest bound a DELETE reached (for /health) */
    size_t cur;             /* the rule being worked on */
    int busy, failed;
    int64_t asked_hi;       /* the bound of the request in flight (0: the oldest-point query) */
    unsigned long long deletes, failures;
    char last_error[200];
};

int retention_influx_purge_open(const char *measurement,
                                int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg), void *ctx,
                                retention_influx_purge **out) {
    *out = NULL;
    retention_rules rules;
    char err[300];
    if (retention_rules_parse(config_text(storage_maint_vars, "RETENTION_OVERRIDES"), &rules, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    int any = 0;
    for (size_t i = 0; i < rules.n; i++) any |= rules.r[i].days > 0;
    if (!any) {
        retention_rules_free(&rules);
        return 0;
    }
    retention_influx_purge *p = calloc(1, sizeof *p);
    if (!p || !(p->measurement = strdup(measurement)) || !(p->done = calloc(rules.n, sizeof *p->done)) ||
        !(p->reached = calloc(rules.n, sizeof *p->reached))) {
        if (p) {
            free(p->measurement);
            free(p->done);
        }
        free(p);
        retention_rules_free(&rules);
        return -1;
    }
    p->rules = rules;
    p->query = query;
    p->ctx = ctx;
    for (size_t i = 0; i < rules.n; i++)
        if (rules.r[i].days > 0)
            log_info("retention: raw events of %s %s deleted after %lld days (RETENTION_OVERRIDES, InfluxDB DELETE)",
                     rules.r[i].is_entity ? "entity" : "domain", rules.r[i].name, rules.r[i].days);
    *out = p;
    return 0;
}

void retention_influx_purge_close(retention_influx_purge *p) {
    if (!p) return;
    retention_rules_free(&p->rules);
    free(p->measurement);
    free(p->done);
    free(p->reached);
    free(p);
}

static void rip_tag_eq(sbuf *q, const char *tag, const char *op, const char *value) {
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, value);
    sbuf_printf(q, "\"%s\" %s ", tag, op);
    influxql_string(q, form.data ? form.data : "");
    if (form.failed) q->failed = 1;
    sbuf_free(&form);
}

/* WHERE <rule i>: its entity, or its domain but the entities with a rule. */
static void rip_where(const retention_influx_purge *p, size_t i, sbuf *q) {
    const retention_rule *x = &p->rules.r[i];
    sbuf_adds(q, " WHERE ");
    rip_tag_eq(q, x->is_entity ? "entity_id" : "domain", "=", x->name);
    if (x->is_entity) return;
    size_t n = strlen(x->name);
    for (size_t k = 0; k < p->rules.n; k++) {
        const retention_rule *y = &p->rules.r[k];
        if (!y->is_entity || strncmp(y->name, x->name, n) != 0 || y->name[n] != '.') continue;
        sbuf_adds(q, " AND ");
        rip_tag_eq(q, "entity_id", "!=", y->name);
    }
}

static void rip_done(const httpc_response *r, void *arg) {
    retention_influx_purge *p = arg;
    p->busy = 0;
    json_t *doc = r->status == 200 ? json_loadb(r->body, r->body_len, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    json_t *r0 = json_array_get(json_object_get(doc, "results"), 0);
    const char *e = json_string_value(json_object_get(doc, "error"));
    if (!e) e = json_string_value(json_object_get(r0, "error"));
    if (r->status != 200 || !doc || (e && !strstr(e, "database not found"))) {
        p->failed = 1;
        p->failures++;
        snprintf(p->last_error, sizeof p->last_error, "%s%.180s",
                 r->status == 0 ? "influxdb unreachable: " : "", r->status == 0 ? (r->error ? r->error : "")
                 : e ? e : "unreadable answer");
        log_warn("retention (RETENTION_OVERRIDES %s): %s", p->rules.r[p->cur].name, p->last_error);
        json_decref(doc);
        return;
    }
    p->failed = 0;
    if (p->asked_hi) {   /* a DELETE */
        p->done[p->cur] = p->reached[p->cur] = p->asked_hi;
        p->deletes++;
    } else {             /* the oldest point before the cut-off */
        json_t *t = json_array_get(json_array_get(json_object_get(json_array_get(json_object_get(r0, "series"), 0),
                                                                  "values"), 0), 0);
        p->done[p->cur] = json_is_integer(t) ? stats_floor((int64_t)(json_integer_value(t) / 1000), RIP_DAY_US) : -1;
    }
    json_decref(doc);
}

int retention_influx_purge_step(retention_influx_purge *p, int64_t now_us) {
    if (p->busy) return 1;
    int rc_prev = p->failed ? -1 : 1;
    for (size_t k = 0; k < p->rules.n; k++) {
        size_t i = (p->cur + k) % p->rules.n;
        const retention_rule *x = &p->rules.r[i];
        if (x->days <= 0) continue;
        int64_t cut = stats_floor(now_us - x->days * RIP_DAY_US, STATS_HOUR_US);
        if (p->done[i] == -1) p->done[i] = cut;   /* the oldest-point query found none */
        if (p->done[i] != 0 && p->done[i] >= cut) continue;
        sbuf q;
        sbuf_init(&q);
        if (p->done[i] == 0) {
            sbuf_adds(&q, "SELECT first(\"event_id\") FROM ");
            influxql_ident(&q, p->measurement);
            rip_where(p, i, &q);
            sbuf_printf(&q, " AND time < %lld", (long long)cut * 1000);
            p->asked_hi = 0;
        } else {
            int64_t hi = p->done[i] + RIP_DAY_US < cut ? p->done[i] + RIP_DAY_US : cut;
            sbuf_adds(&q, "DELETE FROM ");
            influxql_ident(&q, p->measurement);
            rip_where(p, i, &q);
            sbuf_printf(&q, " AND time < %lld", (long long)hi * 1000);
            p->asked_hi = hi;
        }
        p->cur = i;
        int rc = sbuf_failed(&q) ? -1 : p->query(p->ctx, q.data, rip_done, p);
        sbuf_free(&q);
        if (rc != 0) return -1;
        p->busy = 1;
        return rc_prev;
    }
    /* every rule is done up to its cut-off: the next round asks for the
     * oldest points again (late points older than the bounds go then) */
    for (size_t i = 0; i < p->rules.n; i++) p->done[i] = 0;
    return p->failed ? -1 : 0;
}

json_t *retention_influx_purge_info(const retention_influx_purge *p) {
    json_t *ov = json_object(), *before = json_object();
    for (size_t i = 0; i < p->rules.n; i++) {
        json_object_set_new(ov, p->rules.r[i].name, json_integer((json_int_t)p->rules.r[i].days));
        if (p->reached[i] > 0)
            json_object_set_new(before, p->rules.r[i].name, json_integer((json_int_t)(p->reached[i] / 1000)));
    }
    return json_pack("{s:o,s:I,s:I,s:s,s:o}", "overrides", ov, "deletes", (json_int_t)p->deletes, "failures",
                     (json_int_t)p->failures, "last_error", p->last_error, "purged_before_ms", before);
}

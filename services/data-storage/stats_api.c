/* stats_api.c -- see stats_api.h. Parameters (each bad one -> 400 naming it):
 *   entity_id  required; one id or several separated by commas
 *   period     5minute | hour (default) | day | week | month
 *   start      required, RFC 3339; end optional (default: no end)
 *   types      comma list of mean,min,max,last,state,sum,change,last_reset,count
 *              (default: all)
 * Answer: {"sensor.x":[{"start":ms,"end":ms,"mean":..,...}],...}; an entity
 * without statistics is left out, as HA does. Day, week (Monday) and month are
 * merged from the hourly rows at query time, in the process' time zone (TZ),
 * like HA's frontend query. */
#include "stats_api.h"
#include "event.h"
#include "json_text.h"
#include "query_api.h"
#include "sbuf.h"

#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { P_5MIN, P_HOUR, P_DAY, P_WEEK, P_MONTH };
static const char *const stats_api_periods[] = {"5minute", "hour", "day", "week", "month"};

enum { T_MEAN = 1, T_MIN = 2, T_MAX = 4, T_LAST = 8, T_STATE = 16, T_SUM = 32, T_CHANGE = 64, T_LAST_RESET = 128,
       T_COUNT = 256 };
static const char *const stats_api_types[] = {"mean", "min", "max", "last", "state", "sum", "change", "last_reset",
                                              "count"};
#define STATS_API_NTYPES 9

typedef struct stats_api_query {
    const char *entities;
    int period, has_start, has_end;
    unsigned types;
    int64_t start_us, end_us;
    char home[EVENT_HOME_MAX + 1]; /* home= (issue 18), "" = not given */
} stats_api_query;

/* ---- parameters -------------------------------------------------------- */

static int stats_api_types_parse(const char *v, unsigned *out, char *err, size_t n) {
    *out = 0;
    const char *p = v;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < STATS_API_NTYPES; i++)
            if (strlen(stats_api_types[i]) == len && strncmp(p, stats_api_types[i], len) == 0) *out |= 1u << i, found = 1;
        if (!found) {
            snprintf(err, n, "types: unknown type \"%.*s\" (known: mean,min,max,last,state,sum,change,last_reset,count)",
                     (int)(len > 40 ? 40 : len), p);
            return -1;
        }
        p += len;
        if (*p == ',') p++;
    }
    if (!*out) {
        snprintf(err, n, "types: empty");
        return -1;
    }
    return 0;
}

static int stats_api_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    stats_api_query *q = ctx;
    if (strcmp(k, "entity_id") == 0) {
        if (!*v) return snprintf(err, n, "entity_id: empty"), -1;
        q->entities = v;
    } else if (strcmp(k, "period") == 0) {
        for (q->period = 0; q->period < 5 && strcmp(v, stats_api_periods[q->period]) != 0; q->period++) {}
        if (q->period == 5) return snprintf(err, n, "period: must be 5minute, hour, day, week or month"), -1;
    } else if (strcmp(k, "start") == 0 || strcmp(k, "end") == 0) {
        int64_t *t = k[0] == 's' ? &q->start_us : &q->end_us;
        if (event_time_parse(v, t) != 0) return snprintf(err, n, "%s: not an RFC 3339 time", k), -1;
        *(k[0] == 's' ? &q->has_start : &q->has_end) = 1;
    } else if (strcmp(k, "types") == 0) {
        return stats_api_types_parse(v, &q->types, err, n);
    } else if (strcmp(k, "home") == 0) {
        char why[160];
        if (event_home_check(v, why, sizeof why) != 0) return snprintf(err, n, "home: %s", why), -1;
        snprintf(q->home, sizeof q->home, "%s", v);
    } else {
        snprintf(err, n, "%.64s: unknown parameter (known: entity_id, period, start, end, types, home)", k);
        return -1;
    }
    return 0;
}

/* The defaults, then every parameter, then the combination (the 400 text in
 * err). q->entities points into params. 0/-1. */
static int stats_api_check(const char *query, struct evkeyvalq *params, stats_api_query *q, char *err, size_t n) {
    memset(q, 0, sizeof *q);
    q->period = P_HOUR;
    q->types = (1u << STATS_API_NTYPES) - 1;
    q->end_us = INT64_MAX;
    if (httpd_query_check_str(query, params, stats_api_param, q, err, n) != 0) return -1;
    if (!q->entities) return snprintf(err, n, "entity_id: required"), -1;
    if (!q->has_start) return snprintf(err, n, "start: required (RFC 3339)"), -1;
    if (q->end_us <= q->start_us) return snprintf(err, n, "end: must be after start"), -1;
    return 0;
}

int stats_api_check_query(const char *query, char *err, size_t n) {
    struct evkeyvalq params;
    stats_api_query q;
    int rc = stats_api_check(query, &params, &q, err, n);
    httpd_query_free(&params);
    return rc;
}

/* Reads the parameters (the shared httpd_query_check_str); answers 400 naming a
 * bad or missing one. 0/-1. */
static int stats_api_parse(struct evhttp_request *req, stats_api_query *q) {
    struct evkeyvalq params;
    char err[256];
    size_t n = sizeof err;
    int rc = stats_api_check(httpd_query_string(req), &params, q, err, n);
    if (rc == 0) {
        q->entities = strdup(q->entities);   /* params are freed below */
        if (!q->entities) rc = -1, snprintf(err, n, "out of memory");
    }
    httpd_query_free(&params);
    if (rc != 0) httpd_reply_error(req, 400, "%s", err);
    return rc;
}

/* ---- periods ----------------------------------------------------------- */

/* Local start of the day/week/month holding t, or of the next one (next = 1). */
static int64_t stats_api_local_period(int64_t t_us, int period, int next) {
    time_t t = (time_t)(t_us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (period == P_WEEK) tm.tm_mday -= (tm.tm_wday + 6) % 7;
    if (period == P_MONTH) tm.tm_mday = 1;
    if (next) {
        if (period == P_DAY) tm.tm_mday += 1;
        else if (period == P_WEEK) tm.tm_mday += 7;
        else tm.tm_mon += 1;
    }
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000000;
}

/* ---- answer ------------------------------------------------------------ */

typedef struct stats_api_out {
    sbuf *b;
    const stats_api_query *q;
    int kind, first;
    int has_prev_sum;       /* "change" of the first period: from the row before it */
    stats_row prev;
    double prev_sum;
    /* day/week/month: rows of the group being merged */
    stats_row *group;
    size_t ngroup, cap;
    int64_t group_start;
} stats_api_out;

static void stats_api_num(sbuf *b, const char *key, int has, double v) {
    if (has && isfinite(v)) sbuf_printf(b, ",\"%s\":%.17g", key, v);
    else sbuf_printf(b, ",\"%s\":null", key);
}

static void stats_api_row(stats_api_out *o, const stats_row *r, int64_t start, int64_t end) {
    unsigned t = o->q->types;
    int total = o->kind == STATS_KIND_TOTAL || o->kind == STATS_KIND_TOTAL_INCREASING;
    sbuf *b = o->b;
    sbuf_printf(b, "%s{\"start\":%lld,\"end\":%lld", o->first ? "" : ",", (long long)(start / 1000),
                (long long)(end / 1000));
    o->first = 0;
    if (t & T_MEAN) stats_api_num(b, "mean", 1, r->mean);
    if (t & T_MIN) stats_api_num(b, "min", 1, r->min);
    if (t & T_MAX) stats_api_num(b, "max", 1, r->max);
    if (t & T_LAST) stats_api_num(b, "last", r->has_last, r->last);
    if (t & T_STATE) stats_api_num(b, "state", total && r->has_state, r->state);
    if (t & T_SUM) stats_api_num(b, "sum", total, r->sum);
    if (t & T_CHANGE) stats_api_num(b, "change", total, o->has_prev_sum ? r->sum - o->prev_sum : r->sum);
    if (t & T_LAST_RESET) {
        if (total && r->has_last_reset) sbuf_printf(b, ",\"last_reset\":%lld", (long long)(r->last_reset_us / 1000));
        else sbuf_adds(b, ",\"last_reset\":null");
    }
    if (t & T_COUNT) sbuf_printf(b, ",\"count\":%lld", r->count);
    sbuf_addc(b, '}');
    o->has_prev_sum = 1;
    o->prev_sum = r->sum;
}

static void stats_api_flush(stats_api_out *o) {
    if (!o->ngroup) return;
    stats_row m;
    stats_merge(o->group, o->ngroup, o->group_start, &m);
    stats_api_row(o, &m, o->group_start, stats_api_local_period(o->group_start, o->q->period, 1));
    o->ngroup = 0;
}

static int stats_api_on_row(const stats_row *r, void *arg) {
    stats_api_out *o = arg;
    if (o->first && !o->ngroup) o->prev_sum = o->prev.sum;
    if (o->q->period == P_5MIN || o->q->period == P_HOUR) {
        stats_api_row(o, r, r->start_us, r->start_us + (o->q->period == P_5MIN ? STATS_5MIN_US : STATS_HOUR_US));
        return 0;
    }
    int64_t ps = stats_api_local_period(r->start_us, o->q->period, 0);
    if (o->ngroup && ps != o->group_start) stats_api_flush(o);
    if (o->ngroup == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        stats_row *g = realloc(o->group, cap * sizeof *g);
        if (!g) return -1;
        o->group = g;
        o->cap = cap;
    }
    o->group_start = ps;
    o->group[o->ngroup++] = *r;
    return 0;
}

/* One entity's rows, from either kind of backend read. */
static int stats_api_entity_rows(const stats_api_query *q, const char *entity, sbuf *b, int *first_entity, int kind,
                                 const stats_row *prev, int has_prev, const stats_row *rows, size_t n) {
    stats_api_out o = {.b = b, .q = q, .first = 1, .kind = kind, .has_prev_sum = has_prev};
    if (kind < 0) return 0;   /* no statistics: left out */
    if (has_prev) o.prev = *prev;
    sbuf_addc(b, *first_entity ? '{' : ',');
    json_text_string(b, entity, strlen(entity));
    sbuf_adds(b, ":[");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = stats_api_on_row(&rows[i], &o);
    if (rc == 0) stats_api_flush(&o);
    free(o.group);
    sbuf_addc(b, ']');
    *first_entity = 0;
    return rc;
}

/* ---- one request: entities answered one after the other ---------------- */

typedef struct stats_api_req {
    struct evhttp_request *req;     /* NULL once the client went away */
    store *st;
    stats_api_query q;
    char *list, *save, *entity;
    int started, first, failed;
    sbuf b;
    stats_row *rows;                /* the synchronous backend's rows */
    size_t nrows, cap;
} stats_api_req;

static void stats_api_client_gone(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    stats_api_req *r = arg;
    httpd_request_abandon(r->req);
    r->req = NULL;
}

static void stats_api_finish(stats_api_req *r) {
    if (r->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
        if (r->failed == STORE_QUERY_UNSUPPORTED) {
            httpd_reply_error(r->req, 501, "statistics: not kept by the %s backend (STATISTICS=0)", r->st->ops->name);
        } else if (r->failed || sbuf_failed(&r->b)) {
            httpd_reply_error(r->req, 503, "storage backend unavailable: statistics query failed");
        } else {
            if (r->first) sbuf_addc(&r->b, '{');
            sbuf_addc(&r->b, '}');
            size_t len;
            char *text = sbuf_take(&r->b, &len);
            if (text) httpd_reply_text(r->req, 200, "application/json", text, len);
            else httpd_reply_error(r->req, 500, "out of memory");
            free(text);
        }
    }
    sbuf_free(&r->b);
    free(r->list);
    free(r->rows);
    free(r);
}

static void stats_api_next(stats_api_req *r);

static void stats_api_fetched(int rc, int kind, const stats_row *prev, int has_prev, const stats_row *rows, size_t n,
                              void *arg) {
    stats_api_req *r = arg;
    if (rc != 0) r->failed = rc;
    else if (stats_api_entity_rows(&r->q, r->entity, &r->b, &r->first, kind, prev, has_prev, rows, n) != 0)
        r->failed = -1;
    if (r->st->ops->stats_fetch_home) stats_api_next(r); /* the synchronous loop goes on by itself */
}

static int stats_api_collect(const stats_row *row, void *arg) {
    stats_api_req *r = arg;
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        stats_row *p = realloc(r->rows, cap * sizeof *p);
        if (!p) return -1;
        r->rows = p;
        r->cap = cap;
    }
    r->rows[r->nrows++] = *row;
    return 0;
}

static int64_t stats_api_start(const stats_api_query *q) {
    return q->period >= P_DAY ? stats_api_local_period(q->start_us, q->period, 0) : q->start_us;
}

/* Asks for the next entity; answers when none is left or one failed. */
static void stats_api_next(stats_api_req *r) {
    store *st = r->st;
    for (;;) {
        r->entity = strtok_r(r->started ? NULL : r->list, ",", &r->save);
        r->started = 1;
        if (!r->entity || r->failed) {
            stats_api_finish(r);
            return;
        }
        int hourly = r->q.period != P_5MIN;
        if (st->ops->stats_fetch_home) { /* issue 18: one home's statistics */
            st->ops->stats_fetch_home(st, r->q.home[0] ? r->q.home : NULL, r->entity, hourly, stats_api_start(&r->q),
                                      r->q.end_us, stats_api_fetched, r);
            return;
        }
        int kind = -1, has_prev = 0;
        stats_row prev;
        r->nrows = 0;
        /* kind and the previous row are filled before the first row arrives */
        int rc = st->ops->stats_rows(st, r->q.home[0] ? r->q.home : NULL, r->entity, hourly, stats_api_start(&r->q),
                                     r->q.end_us, &kind, &prev, &has_prev, stats_api_collect, r);
        stats_api_fetched(rc, kind, &prev, has_prev, r->rows, r->nrows, r);
    }
}

static void stats_api_get(struct evhttp_request *req, void *arg) {
    store *st = arg;
    stats_api_query q;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (stats_api_parse(req, &q) != 0) return;
    if (!st->ops->stats_rows && !st->ops->stats_fetch_home) {
        free((char *)q.entities);
        httpd_reply_error(req, 501, "statistics: not kept by the %s backend", st->ops->name);
        return;
    }
    if (query_home_supported(req, st, q.home[0] ? q.home : NULL, STORE_HOME_STATISTICS, "GET /api/v1/statistics")) {
        free((char *)q.entities);
        return;
    }
    stats_api_req *r = calloc(1, sizeof *r);
    if (!r) {
        free((char *)q.entities);
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    r->req = req;
    r->st = st;
    r->q = q;
    r->list = (char *)q.entities;
    r->first = 1;
    sbuf_init(&r->b);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), stats_api_client_gone, r);
    stats_api_next(r);
}

int stats_api_route(httpd *h, store *st) {
    return httpd_route(h, "/api/v1/statistics", stats_api_get, st);
}

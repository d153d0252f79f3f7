/* query_api.c -- see query_api.h.
 *
 * Why a file of its own: storage_api.c owns the write contract (ack after
 * commit); these are plain reads with their own parameters. Every parameter
 * is checked here, once, for every backend: a bad one gets 400 naming it,
 * an unknown one 400 listing the known ones, and a backend without the read
 * (store_ops member NULL) 501 naming the backend, never a slow fallback.
 * Answers are built as text around the backend's row texts (no jansson tree). */
#include "query_api.h"
#include "json_text.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

struct query_api {
    store *st;
};

/* A request waiting for its rows; detached when the client goes away. */
typedef struct query_wait {
    struct evhttp_request *req;
    const char *key; /* member holding the rows, NULL = none */
} query_wait;

#define QUERY_MAX_SEGMENTS 10000

/* ---- answers ------------------------------------------------------------ */

static void query_client_gone(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    query_wait *w = arg;
    httpd_request_abandon(w->req);
    w->req = NULL;
}

static query_wait *query_wait_new(struct evhttp_request *req, const char *key) {
    query_wait *w = calloc(1, sizeof *w);
    if (!w) {
        httpd_reply_error(req, 500, "out of memory");
        return NULL;
    }
    w->req = req;
    w->key = key;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), query_client_gone, w);
    return w;
}

static void query_reply(const store_rows *rows, const char *meta, int rc, const char *err, void *arg) {
    query_wait *w = arg;
    struct evhttp_request *req = w->req;
    if (req) evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
    if (!req) {
        /* client gone */
    } else if (rc > 0) {
        httpd_reply_error(req, 404, "%s", err ? err : "not found");
    } else if (rc == STORE_QUERY_UNSUPPORTED) {
        httpd_reply_error(req, 501, "%s", err ? err : "not supported by this backend");
    } else if (rc < 0) {
        httpd_reply_error(req, 503, "storage backend unavailable: %s", err ? err : "query failed");
    } else {
        const char *key = w->key;
        /* series: the rows are buckets or segments, as the backend's kind says */
        if (key && strcmp(key, "series") == 0) key = strstr(meta, "\"kind\":\"numeric\"") ? "buckets" : "segments";
        sbuf out;
        sbuf_init(&out);
        sbuf_addc(&out, '{');
        sbuf_adds(&out, meta);
        if (key) {
            sbuf_printf(&out, "%s\"%s\":[", *meta ? "," : "", key);
            for (size_t i = 0; i < rows->n; i++) {
                if (i) sbuf_addc(&out, ',');
                sbuf_adds(&out, rows->json[i]);
            }
            sbuf_printf(&out, "],\"count\":%zu", rows->n);
        }
        sbuf_addc(&out, '}');
        size_t len;
        char *text = sbuf_take(&out, &len);
        if (text) httpd_reply_text(req, 200, "application/json", text, len);
        else httpd_reply_error(req, 500, "out of memory");
        free(text);
    }
    free(w);
}

/* 501 when the backend lacks the read; 0 when it has it. */
static int query_supported(struct evhttp_request *req, store *st, const void *op, const char *what) {
    if (op) return 0;
    httpd_reply_error(req, 501, "%s is not supported by the %s backend (it is served by STORAGE_BACKEND=sqlite)", what,
                      st->ops->name);
    return -1;
}

/* ---- parameters ----------------------------------------------------------- */

static int query_long(const char *k, const char *v, long min, long max, long *out, char *err, size_t n) {
    if (store_parse_long(v, min, max, out) == 0) return 0;
    snprintf(err, n, "%s: must be an integer from %ld to %ld", k, min, max);
    return -1;
}

static int query_string(const char *k, const char *v, const char **out, char *err, size_t n) {
    if (*v && strlen(v) <= 255) {
        *out = v;
        return 0;
    }
    snprintf(err, n, "%s: must be 1 to 255 characters", k);
    return -1;
}

/* home=: the rules of HOMEIQ_HOME_ID (lib/event.c), 400 naming home. */
static int query_home(const char *k, const char *v, const char **out, char *err, size_t n) {
    char why[160];
    if (event_home_check(v, why, sizeof why) == 0) {
        *out = v;
        return 0;
    }
    snprintf(err, n, "%s: %s", k, why);
    return -1;
}

/* 501 naming home= when the backend cannot select a home for this read
 * (store_ops.home_reads); 0 when it can or no home was asked for. */
int query_home_supported(struct evhttp_request *req, store *st, const char *home, unsigned bit, const char *what) {
    if (!home || (st->ops->home_reads & bit)) return 0;
    httpd_reply_error(req, 501, "home: %s cannot select a home on the %s backend (issue 18)", what, st->ops->name);
    return -1;
}

static int query_time(const char *k, const char *v, int64_t *out, char *err, size_t n) {
    if (event_time_parse(v, out) == 0) return 0;
    snprintf(err, n, "%s: must be an RFC 3339 time such as 2025-06-14T08:33:20Z", k);
    return -1;
}

/* ---- GET /api/v1/events/feed --------------------------------------------- */

typedef struct feed_params {
    store_filter f;
    store_feed_query q;
} feed_params;

static int feed_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    feed_params *p = ctx;
    if (strcmp(k, "after") == 0) {
        long after;
        if (query_long(k, v, 0, 4000000000000000000L, &after, err, n) != 0) return -1;
        p->q.after = after;
        p->q.has_after = 1;
        return 0;
    }
    if (strcmp(k, "limit") == 0 || strcmp(k, "entity_id") == 0 || strcmp(k, "domain") == 0 ||
        strcmp(k, "event_type") == 0 || strcmp(k, "home") == 0 || strcmp(k, "area") == 0)
        return store_filter_set(&p->f, k, v, err, n);
    snprintf(err, n, "%.64s: unknown parameter (known: after, limit, entity_id, domain, event_type, area, home)", k);
    return -1;
}

static void query_feed(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->feed, "GET /api/v1/events/feed") != 0) return;
    struct evkeyvalq params;
    feed_params p;
    memset(&p, 0, sizeof p);
    store_filter_init(&p.f);
    p.q.f = &p.f;
    if (httpd_query_check(req, &params, feed_param, &p) == 0 &&
        query_home_supported(req, a->st, p.f.home_id, STORE_HOME_FEED, "GET /api/v1/events/feed") == 0) {
        query_wait *w = query_wait_new(req, "events");
        if (w) a->st->ops->feed(a->st, &p.q, query_reply, w);
    }
    httpd_query_free(&params);
}

/* ---- GET /api/v1/entities -------------------------------------------------- */

static int entity_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    store_entity_query *q = ctx;
    if (strcmp(k, "limit") == 0) return query_long(k, v, 1, STORE_MAX_LIMIT, &q->limit, err, n);
    if (strcmp(k, "search") == 0) return query_string(k, v, &q->search, err, n);
    if (strcmp(k, "domain") == 0) return query_string(k, v, &q->domain, err, n);
    if (strcmp(k, "home") == 0) return query_home(k, v, &q->home_id, err, n);
    snprintf(err, n, "%.64s: unknown parameter (known: search, domain, limit, home)", k);
    return -1;
}

static void query_entities(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->entities, "GET /api/v1/entities") != 0) return;
    struct evkeyvalq params;
    store_entity_query q = {.limit = 1000};
    if (httpd_query_check(req, &params, entity_param, &q) == 0 &&
        query_home_supported(req, a->st, q.home_id, STORE_HOME_ENTITIES, "GET /api/v1/entities") == 0) {
        query_wait *w = query_wait_new(req, "entities");
        if (w) a->st->ops->entities(a->st, &q, query_reply, w);
    }
    httpd_query_free(&params);
}

/* ---- GET /api/v1/series ---------------------------------------------------- */

typedef struct series_params {
    store_series_query q;
    int has_start, has_end;
} series_params;

static int series_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    series_params *p = ctx;
    if (strcmp(k, "entity_id") == 0) return query_string(k, v, &p->q.entity_id, err, n);
    if (strcmp(k, "points") == 0) return query_long(k, v, 1, STORE_MAX_LIMIT, &p->q.points, err, n);
    if (strcmp(k, "start") == 0) return p->has_start = 1, query_time(k, v, &p->q.start_us, err, n);
    if (strcmp(k, "end") == 0) return p->has_end = 1, query_time(k, v, &p->q.end_us, err, n);
    if (strcmp(k, "home") == 0) return query_home(k, v, &p->q.home_id, err, n);
    snprintf(err, n, "%.64s: unknown parameter (known: entity_id, start, end, points, home)", k);
    return -1;
}

/* Defaults (end = now, start = end - 24 h) and the combination. 0/-1. */
static int series_check(series_params *p, char *err, size_t n) {
    if (!p->q.entity_id) {
        snprintf(err, n, "entity_id: required");
        return -1;
    }
    if (!p->has_end) p->q.end_us = service_now_us();
    if (!p->has_start) p->q.start_us = p->q.end_us - 86400LL * 1000000;
    if (p->q.start_us >= p->q.end_us) {
        snprintf(err, n, "start: must be before end");
        return -1;
    }
    return 0;
}

static void query_series(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->series, "GET /api/v1/series") != 0) return;
    struct evkeyvalq params;
    char err[256];
    series_params p = {.q = {.points = 500, .max_segments = QUERY_MAX_SEGMENTS}};
    if (httpd_query_check(req, &params, series_param, &p) == 0) {
        if (series_check(&p, err, sizeof err) != 0) {
            httpd_reply_error(req, 400, "%s", err);
        } else if (query_home_supported(req, a->st, p.q.home_id, STORE_HOME_SERIES, "GET /api/v1/series") == 0) {
            query_wait *w = query_wait_new(req, "series");
            if (w) a->st->ops->series(a->st, &p.q, query_reply, w);
        }
    }
    httpd_query_free(&params);
}

/* ---- GET /api/v1/stats ----------------------------------------------------- */

static int stats_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    store_stats_query *q = ctx;
    if (strcmp(k, "window") == 0) return query_long(k, v, 1, 3600, &q->window_s, err, n);
    if (strcmp(k, "home") == 0) return query_home(k, v, &q->home_id, err, n);
    snprintf(err, n, "%.64s: unknown parameter (known: window, home)", k);
    return -1;
}

static void query_stats(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->stats, "GET /api/v1/stats") != 0) return;
    struct evkeyvalq params;
    store_stats_query q = {.window_s = 60, .now_us = service_now_us()};
    if (httpd_query_check(req, &params, stats_param, &q) == 0 &&
        query_home_supported(req, a->st, q.home_id, STORE_HOME_STATS, "GET /api/v1/stats") == 0) {
        query_wait *w = query_wait_new(req, NULL);
        if (w) a->st->ops->stats(a->st, &q, query_reply, w);
    }
    httpd_query_free(&params);
}

/* ---- GET /api/v1/registry (issue 11) --------------------------------------------- */

typedef struct registry_params {
    const char *entity_id;
    long limit;
    const char *home_id;
} registry_params;

static int registry_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    registry_params *p = ctx;
    if (strcmp(k, "entity_id") == 0) return query_string(k, v, &p->entity_id, err, n);
    if (strcmp(k, "limit") == 0) return query_long(k, v, 1, 100000, &p->limit, err, n);
    if (strcmp(k, "home") == 0) return query_home(k, v, &p->home_id, err, n);
    snprintf(err, n, "%.64s: unknown parameter (known: entity_id, limit, home)", k);
    return -1;
}

static void query_registry_rows(const store_rows *rows, int rc, const char *err, void *arg) {
    query_reply(rows, "", rc, err, arg);
}

static void query_registry(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->registry, "GET /api/v1/registry") != 0) return;
    struct evkeyvalq params;
    registry_params p = {.limit = 10000};
    if (httpd_query_check(req, &params, registry_param, &p) == 0 &&
        query_home_supported(req, a->st, p.home_id, STORE_HOME_REGISTRY, "GET /api/v1/registry") == 0) {
        query_wait *w = query_wait_new(req, "entities");
        if (w) a->st->ops->registry(a->st, p.home_id, p.entity_id, p.limit, query_registry_rows, w);
    }
    httpd_query_free(&params);
}

/* ---- GET /api/v1/homes (issue 18) ------------------------------------------------ */

static int homes_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    (void)ctx, (void)v;
    snprintf(err, n, "%.64s: unknown parameter (none are known)", k);
    return -1;
}

static void query_homes(struct evhttp_request *req, void *arg) {
    query_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (query_supported(req, a->st, (const void *)a->st->ops->homes, "GET /api/v1/homes") != 0) return;
    struct evkeyvalq params;
    if (httpd_query_check(req, &params, homes_param, NULL) == 0) {
        query_wait *w = query_wait_new(req, "homes");
        if (w) a->st->ops->homes(a->st, query_registry_rows, w);
    }
    httpd_query_free(&params);
}

/* ---- the parameters alone (tests/fuzz) -------------------------------------- */

/* Each route's parameters as its handler above checks them (same defaults,
 * same check functions), from a raw query string. */
int query_api_check_query(const char *path, const char *query, char *err, size_t n) {
    struct evkeyvalq params;
    int rc = -1;
    if (strcmp(path, "/api/v1/events/feed") == 0) {
        feed_params p;
        memset(&p, 0, sizeof p);
        store_filter_init(&p.f);
        p.q.f = &p.f;
        rc = httpd_query_check_str(query, &params, feed_param, &p, err, n);
    } else if (strcmp(path, "/api/v1/entities") == 0) {
        store_entity_query q = {.limit = 1000};
        rc = httpd_query_check_str(query, &params, entity_param, &q, err, n);
    } else if (strcmp(path, "/api/v1/series") == 0) {
        series_params p = {.q = {.points = 500, .max_segments = QUERY_MAX_SEGMENTS}};
        rc = httpd_query_check_str(query, &params, series_param, &p, err, n);
        if (rc == 0) rc = series_check(&p, err, n);
    } else if (strcmp(path, "/api/v1/stats") == 0) {
        store_stats_query q = {.window_s = 60, .now_us = service_now_us()};
        rc = httpd_query_check_str(query, &params, stats_param, &q, err, n);
    } else if (strcmp(path, "/api/v1/registry") == 0) {
        registry_params p = {.limit = 10000};
        rc = httpd_query_check_str(query, &params, registry_param, &p, err, n);
    } else {
        snprintf(err, n, "no such route");
        return -1;
    }
    httpd_query_free(&params);
    return rc;
}

/* ---- set-up ----------------------------------------------------------------- */

int query_api_new(httpd *h, store *st, query_api **out) {
    query_api *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->st = st;
    if (httpd_route(h, "/api/v1/events/feed", query_feed, a) || httpd_route(h, "/api/v1/entities", query_entities, a) ||
        httpd_route(h, "/api/v1/series", query_series, a) || httpd_route(h, "/api/v1/stats", query_stats, a) ||
        httpd_route(h, "/api/v1/registry", query_registry, a) || httpd_route(h, "/api/v1/homes", query_homes, a)) {
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void query_api_free(query_api *a) { free(a); }

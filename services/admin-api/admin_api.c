/* admin_api.c -- the dashboard's data endpoints:
 *   GET /api/v1/overview                 totals, events/s over the last minute
 *                                        (overall and per domain), dead letters,
 *                                        store size, spool depth
 *   GET /api/v1/events                   data-storage's /api/v1/events (same filters)
 *   GET /api/v1/dead-letters             data-storage's /api/v1/dead-letters
 *   GET /api/v1/entities                 data-storage's /api/v1/entities
 *   GET /api/v1/entities/{id}/series     data-storage's /api/v1/series?entity_id={id}
 *   GET /api/v1/homes                    data-storage's /api/v1/homes (issue 18)
 * Every relay passes home= through (storage checks it: 400 naming it); the
 * overview takes home= for its storage totals.
 *
 * Why relays: data-storage validates its parameters (400 naming the bad
 * one) and owns the queries; admin-api adds the shape the page wants and
 * one origin for the page, not a second copy of the rules. */
#include "admin.h"
#include "event.h"
#include "log.h"
#include "sbuf.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- relays ------------------------------------------------------------- */

static void api_events(struct evhttp_request *req, void *arg) {
    if (httpd_require_method(req, EVHTTP_REQ_GET) == 0) admin_relay(arg, req, ADMIN_STORAGE, "/api/v1/events");
}

static void api_dead_letters(struct evhttp_request *req, void *arg) {
    if (httpd_require_method(req, EVHTTP_REQ_GET) == 0) admin_relay(arg, req, ADMIN_STORAGE, "/api/v1/dead-letters");
}

static void api_entities(struct evhttp_request *req, void *arg) {
    if (httpd_require_method(req, EVHTTP_REQ_GET) == 0) admin_relay(arg, req, ADMIN_STORAGE, "/api/v1/entities");
}

static void api_homes(struct evhttp_request *req, void *arg) {
    if (httpd_require_method(req, EVHTTP_REQ_GET) == 0) admin_relay(arg, req, ADMIN_STORAGE, "/api/v1/homes");
}

/* HA's valid_entity_id alphabet (the exact rule is enforced upstream). */
static int api_entity_ok(const char *s, size_t n) {
    if (n == 0 || n > EVENT_ENTITY_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.')) return 0;
    return 1;
}

int admin_api_series(admin *a, struct evhttp_request *req, const char *path) {
    static const char prefix[] = "/api/v1/entities/", suffix[] = "/series";
    size_t n = strlen(path), pl = sizeof prefix - 1, sl = sizeof suffix - 1;
    if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0) return -1;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return 0;
    const char *id = path + pl;
    size_t idn = n - pl - sl;
    if (!api_entity_ok(id, idn)) {
        httpd_reply_error(req, 400, "entity_id: must be an entity id such as sensor.kitchen_temperature");
        return 0;
    }
    const char *q = admin_query_string(req);
    if (strstr(q, "entity_id=")) {
        httpd_reply_error(req, 400, "entity_id: given in the path, not as a parameter");
        return 0;
    }
    sbuf pq;
    sbuf_init(&pq);
    sbuf_printf(&pq, "/api/v1/series?entity_id=%.*s%s%s", (int)idn, id, *q ? "&" : "", q);
    if (sbuf_failed(&pq)) {
        httpd_reply_error(req, 500, "out of memory");
        return 0;
    }
    admin_relay_path(a, req, ADMIN_STORAGE, pq.data);
    sbuf_free(&pq);
    return 0;
}

/* ---- overview ------------------------------------------------------------- */

typedef struct overview_req {
    struct evhttp_request *req;
    int waiting;
    httpc_response res[2]; /* 0: storage stats, 1: ingestion health (bodies copied) */
    char *body[2];
    char reason[2][256];
} overview_req;

typedef struct overview_part {
    overview_req *o;
    int i;
} overview_part;

/* A source's answer: 200, or for ingestion's /health also its 503 (i == 1), whose body still
 * carries the spool and counters -- it is waiting on a hop behind it, not unavailable. */
static json_t *overview_json(overview_req *o, int i) {
    if (!o->body[i] || (o->res[i].status != 200 && !(i == 1 && o->res[i].status == 503))) return NULL;
    json_error_t e;
    return json_loads(o->body[i], 0, &e);
}

static void overview_answer(overview_req *o) {
    json_t *stats = overview_json(o, 0), *ing = overview_json(o, 1);
    json_t *out = json_object(), *unavailable = json_array();
    if (stats) {
        const char *keys[] = {"events_total", "dead_letters_total", "entities", "store_bytes", "cursor",
                              "window_s",     "per_second",         "backend"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            json_object_set(out, keys[k], json_object_get(stats, keys[k]));
        double w = (double)json_integer_value(json_object_get(stats, "window_s"));
        if (w <= 0) w = 60;
        json_object_set_new(out, "events_per_s",
                            json_real((double)json_integer_value(json_object_get(stats, "window_events")) / w));
        json_t *per = json_object(), *pd = json_object_get(stats, "per_domain");
        const char *dom;
        json_t *v;
        json_object_foreach(pd, dom, v) json_object_set_new(per, dom, json_real((double)json_integer_value(v) / w));
        json_object_set_new(out, "per_domain_per_s", per);
    } else {
        char why[400];
        snprintf(why, sizeof why, "data-storage /api/v1/stats: %s", o->reason[0]);
        json_array_append_new(unavailable, json_string(why));
    }
    if (ing) {
        json_t *spool = json_object_get(ing, "spool"), *ev = json_object_get(ing, "events");
        json_object_set_new(out, "ingestion",
                            json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}", "spool_depth", json_object_get(spool, "depth"),
                                      "spool_bytes", json_object_get(spool, "bytes"), "received",
                                      json_object_get(ev, "received"), "forwarded", json_object_get(ev, "forwarded"),
                                      "dropped", json_object_get(ev, "dropped")));
    } else {
        char why[400];
        snprintf(why, sizeof why, "websocket-ingestion /health: %s", o->reason[1]);
        json_array_append_new(unavailable, json_string(why));
    }
    json_object_set_new(out, "unavailable", unavailable);
    json_decref(stats);
    json_decref(ing);
    httpd_reply_json(o->req, 200, out);
}

static void overview_gone(struct evhttp_connection *c, void *arg) {
    (void)c;
    overview_req *o = arg;
    httpd_request_abandon(o->req);
    o->req = NULL;
}

static void overview_release(overview_req *o) {
    if (--o->waiting > 0) return;
    if (o->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(o->req), NULL, NULL);
        overview_answer(o);
    }
    free(o->body[0]);
    free(o->body[1]);
    free(o);
}

static void overview_record(overview_req *o, int i, const httpc_response *res) {
    o->res[i].status = res->status;
    o->body[i] = res->status && res->body ? strndup(res->body, res->body_len) : NULL;
    admin_upstream_reason(res, o->reason[i], sizeof o->reason[i]);
}

static void overview_done(const httpc_response *res, void *arg) {
    overview_part *p = arg;
    overview_req *o = p->o;
    overview_record(o, p->i, res);
    free(p);
    overview_release(o);
}

/* home= (issue 18): the rules of HOMEIQ_HOME_ID; the storage path gets it. */
static int overview_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    char why[160];
    if (strcmp(k, "home") != 0) return snprintf(err, n, "%.64s: unknown parameter (known: home)", k), -1;
    if (event_home_check(v, why, sizeof why) != 0) return snprintf(err, n, "home: %s", why), -1;
    snprintf(ctx, 64 + sizeof "/api/v1/stats?window=60&home=", "/api/v1/stats?window=60&home=%s", v);
    return 0;
}

static void api_overview(struct evhttp_request *req, void *arg) {
    admin *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    char stats_path[EVENT_HOME_MAX + sizeof "/api/v1/stats?window=60&home="] = "/api/v1/stats?window=60";
    struct evkeyvalq params;
    int bad = httpd_query_check(req, &params, overview_param, stats_path);
    httpd_query_free(&params);
    if (bad) return;
    overview_req *o = calloc(1, sizeof *o);
    if (!o) {
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    o->req = req;
    o->waiting = 3;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), overview_gone, o);
    const struct {
        admin_peer peer;
        const char *path;
    } parts[2] = {{ADMIN_STORAGE, stats_path}, {ADMIN_INGESTION, "/health"}};
    for (int i = 0; i < 2; i++) {
        overview_part *p = calloc(1, sizeof *p);
        if (p) p->o = o, p->i = i;
        if (p && admin_get(a, parts[i].peer, parts[i].path, overview_done, p) == 0) continue;
        free(p);
        httpc_response fail = {.status = 0, .error = "request could not be started"};
        overview_record(o, i, &fail);
        o->waiting--;
    }
    overview_release(o);
}

int admin_api_routes(admin *a, httpd *h) {
    return httpd_route(h, "/api/v1/overview", api_overview, a) || httpd_route(h, "/api/v1/events", api_events, a) ||
           httpd_route(h, "/api/v1/dead-letters", api_dead_letters, a) ||
           httpd_route(h, "/api/v1/entities", api_entities, a) || httpd_route(h, "/api/v1/homes", api_homes, a);
}

/* admin_health.c -- GET /api/v1/health: every hop's health in one answer.
 *
 * Why here and not in the page: "is the pipeline healthy, and if not, where
 * does it break?" needs each service's /health and a rule for which failure
 * is the cause; the page and scripts should get the same answer. The three
 * /health requests go out in parallel. The hops, in pipeline order:
 * home-assistant (from ingestion's home_assistant block), websocket-ingestion,
 * enrichment-pipeline, data-storage, store (from storage's backend block).
 * Each gets a level: "ok", "degraded" (working, but waiting on something
 * else: a downstream outage, a backlog) or "down" (this hop itself fails),
 * with a reason. `failing` names the first "down" hop in pipeline order (the
 * cause; a service that only reports its downstream as unreachable is
 * "degraded"), else the first "degraded" one. 200 only when every service's
 * /health answered 200. */
#include "admin.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_BACKLOG_DEGRADED 1000 /* spool depth that turns ingestion amber */

typedef struct health_req {
    struct evhttp_request *req; /* NULL once the client is gone */
    admin *a;
    int waiting;
    long status[ADMIN_NPEERS];
    json_t *body[ADMIN_NPEERS];
    char reason[ADMIN_NPEERS][256];
} health_req;

static json_t *hop(const char *name, const char *level, const char *reason) {
    return json_pack("{s:s,s:s,s:s?}", "name", name, "level", level, "reason", reason);
}

static const char *str(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* home-assistant: as seen by ingestion. */
static json_t *hop_ha(health_req *h) {
    json_t *ing = h->body[ADMIN_INGESTION];
    json_t *ha = json_object_get(ing, "home_assistant");
    if (!h->status[ADMIN_INGESTION] || !json_is_object(ha))
        return hop("home-assistant", "unknown", "not known: websocket-ingestion does not answer");
    if (json_is_false(json_object_get(ha, "enabled")))
        return hop("home-assistant", "ok", "not used (ingestion in forward-only mode)");
    const char *state = str(ha, "state");
    json_t *o;
    if (state && strcmp(state, "subscribed") == 0) {
        o = hop("home-assistant", "ok", NULL);
    } else {
        char why[400];
        const char *err = str(ha, "last_error");
        snprintf(why, sizeof why, "%s%s%s", state ? state : "not connected", err && *err ? ": " : "", err ? err : "");
        o = hop("home-assistant", "down", why);
    }
    json_object_set(o, "detail", ha);
    return o;
}

static json_t *hop_peer(health_req *h, admin_peer p) {
    const char *name = admin_peer_name(p);
    json_t *b = h->body[p];
    if (!h->status[p]) {
        char why[300];
        snprintf(why, sizeof why, "unreachable: %s", h->reason[p]);
        return hop(name, "down", why);
    }
    const char *reason = str(b, "reason");
    const char *level = "ok";
    char why[300] = "";
    if (h->status[p] != 200) {
        level = "down";
        snprintf(why, sizeof why, "%s", h->reason[p]);
        /* waiting on the next hop, or on HA / the store (own hops): not the cause */
        if (reason && (!strcmp(reason, "downstream_unreachable") || !strcmp(reason, "storage_unreachable") ||
                       !strcmp(reason, "connecting") || !strcmp(reason, "auth_invalid") ||
                       !strncmp(reason, "influxdb_", 9) || !strncmp(reason, "sqlite_", 7) ||
                       !strncmp(reason, "clickhouse_", 11)))
            level = "degraded";
    }
    if (p == ADMIN_INGESTION && !strcmp(level, "ok")) {
        json_int_t depth = json_integer_value(json_object_get(json_object_get(b, "spool"), "depth"));
        if (depth >= ADMIN_BACKLOG_DEGRADED) {
            level = "degraded";
            snprintf(why, sizeof why, "backlog: %lld events in the spool", (long long)depth);
        }
    }
    json_t *o = hop(name, level, *why ? why : NULL);
    json_object_set_new(o, "url", json_string(h->a->peer_url[p]));
    json_object_set_new(o, "http_status", json_integer(h->status[p]));
    if (b) json_object_set(o, "detail", b);
    return o;
}

/* store: the backend behind data-storage. */
static json_t *hop_store(health_req *h) {
    json_t *b = h->body[ADMIN_STORAGE];
    if (!h->status[ADMIN_STORAGE] || !json_is_object(b))
        return hop("store", "unknown", "not known: data-storage does not answer");
    json_t *backend = json_object_get(b, "backend");
    const char *reason = str(b, "reason");
    json_t *o = h->status[ADMIN_STORAGE] == 200 ? hop("store", "ok", NULL)
                                                : hop("store", "down", reason ? reason : "backend unavailable");
    if (backend) json_object_set(o, "detail", backend);
    return o;
}

static void health_answer(health_req *h) {
    json_t *hops = json_array();
    json_array_append_new(hops, hop_ha(h));
    for (int p = 0; p < ADMIN_NPEERS; p++) json_array_append_new(hops, hop_peer(h, (admin_peer)p));
    json_array_append_new(hops, hop_store(h));
    int healthy = 1;
    for (int p = 0; p < ADMIN_NPEERS; p++) healthy &= h->status[p] == 200;
    json_t *failing = NULL;
    const char *levels[] = {"down", "degraded"};
    for (int l = 0; l < 2 && !failing; l++) {
        size_t i;
        json_t *x;
        json_array_foreach(hops, i, x) if (!failing && !strcmp(str(x, "level"), levels[l])) failing = x;
    }
    json_t *o = json_pack("{s:s,s:s?,s:s?}", "status", healthy ? "healthy" : "unhealthy", "failing",
                          failing && !healthy ? str(failing, "name") : NULL, "reason",
                          failing && !healthy ? str(failing, "reason") : NULL);
    json_object_set_new(o, "hops", hops);
    httpd_reply_json(h->req, healthy ? 200 : 503, o);
}

static void health_gone(struct evhttp_connection *c, void *arg) {
    (void)c;
    health_req *h = arg;
    httpd_request_abandon(h->req);
    h->req = NULL;
}

typedef struct health_part {
    health_req *h;
    admin_peer p;
} health_part;

/* One fewer answer to wait for; the last one answers the client and frees. */
static void health_release(health_req *h) {
    if (--h->waiting > 0) return;
    if (h->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(h->req), NULL, NULL);
        health_answer(h);
    }
    for (int i = 0; i < ADMIN_NPEERS; i++) json_decref(h->body[i]);
    free(h);
}

static void health_record(health_req *h, admin_peer p, const httpc_response *res) {
    h->status[p] = res->status;
    if (res->status) {
        json_error_t e;
        h->body[p] = json_loadb(res->body ? res->body : "", res->body_len, 0, &e);
    }
    admin_upstream_reason(res, h->reason[p], sizeof h->reason[p]);
}

static void health_done(const httpc_response *res, void *arg) {
    health_part *part = arg;
    health_req *h = part->h;
    health_record(h, part->p, res);
    free(part);
    health_release(h);
}

static void admin_health(struct evhttp_request *req, void *arg) {
    admin *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    health_req *h = calloc(1, sizeof *h);
    if (!h) {
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    h->req = req;
    h->a = a;
    h->waiting = ADMIN_NPEERS + 1; /* +1 until every request is started */
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), health_gone, h);
    for (int p = 0; p < ADMIN_NPEERS; p++) {
        health_part *part = calloc(1, sizeof *part);
        if (part) part->h = h, part->p = (admin_peer)p;
        if (part && admin_get(a, (admin_peer)p, "/health", health_done, part) == 0) continue;
        free(part);
        httpc_response fail = {.status = 0, .error = "request could not be started"};
        health_record(h, (admin_peer)p, &fail);
        h->waiting--;
    }
    health_release(h);
}

/* GET /health: admin-api's own health (it is up; the pipeline's is /api/v1/health). */
static void admin_self_health(struct evhttp_request *req, void *arg) {
    admin *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    json_t *peers = json_object();
    for (int p = 0; p < ADMIN_NPEERS; p++)
        json_object_set_new(peers, admin_peer_name((admin_peer)p), json_string(a->peer_url[p]));
    httpd_reply_json(req, 200, json_pack("{s:s,s:s,s:o}", "status", "healthy", "service", "admin-api", "peers", peers));
}

int admin_health_routes(admin *a, httpd *h) {
    return httpd_route(h, "/api/v1/health", admin_health, a) || httpd_route(h, "/health", admin_self_health, a);
}

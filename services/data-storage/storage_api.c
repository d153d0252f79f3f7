/* storage_api.c -- see storage_api.h.
 *
 * Routes, GET rows (events, dead letters), health and set-up; a POST's
 * commit in pieces (the ack contract) is storage_post.c's. A request may
 * outlive its client connection (the backend answers later): a close callback
 * detaches it and the answer is then dropped. */
#include "storage_api.h"
#include "storage_post.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "stats_api.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

static double storage_backend_up(void *arg) {
    storage_api *a = arg;
    const char *reason;
    return a->st->ops->health(a->st, &reason) == 0 ? 1.0 : 0.0;
}

void storage_reply_json_text(struct evhttp_request *req, int status, sbuf *b) {
    size_t len;
    char *text = sbuf_take(b, &len);
    if (!text) {
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    httpd_reply_text(req, status, "application/json", text, len);
    free(text);
}

/* ---- waiting requests ------------------------------------------------- */

static void storage_wait_client_gone(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    storage_wait *w = arg;
    log_warn("client closed the connection before its answer was ready; the answer is dropped");
    httpd_request_abandon(w->req); /* libevent left the unanswered request (and its body) to us */
    w->req = NULL;
}

storage_wait *storage_wait_new(storage_api *a, struct evhttp_request *req) {
    storage_wait *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->api = a;
    w->req = req;
    w->next = a->pending;
    if (a->pending) a->pending->prev = w;
    a->pending = w;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), storage_wait_client_gone, w);
    return w;
}

void storage_wait_free(storage_wait *w) {
    storage_api *a = w->api;
    storage_post_release(w);
    if (w->req) evhttp_connection_set_closecb(evhttp_request_get_connection(w->req), NULL, NULL);
    if (w->prev) w->prev->next = w->next;
    else if (a->pending == w) a->pending = w->next;
    if (w->next) w->next->prev = w->prev;
    free(w);
}

/* ---- GET /api/v1/events ----------------------------------------------- */

static int storage_filter_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    return store_filter_set(ctx, k, v, err, n);
}

static void storage_rows_reply(const store_rows *rows, int rc, const char *err, void *arg) {
    storage_wait *w = arg;
    struct evhttp_request *req = w->req;
    if (!req) {
        /* client gone */
    } else if (rc == STORE_QUERY_UNSUPPORTED) {
        httpd_reply_error(req, 501, "%s", err ? err : "not supported by this storage schema");
    } else if (rc != 0) {
        httpd_reply_error(req, 503, "storage backend unavailable: %s", err ? err : "query failed");
    } else {
        sbuf out;
        sbuf_init(&out);
        sbuf_printf(&out, "{\"%s\":[", w->rows_key);
        for (size_t i = 0; i < rows->n; i++) {
            if (i) sbuf_addc(&out, ',');
            sbuf_adds(&out, rows->json[i]);
        }
        sbuf_printf(&out, "],\"count\":%zu}", rows->n);
        storage_reply_json_text(req, 200, &out);
    }
    storage_wait_free(w);
}

static storage_wait *storage_rows_wait(storage_api *a, struct evhttp_request *req, const char *key) {
    storage_wait *w = storage_wait_new(a, req);
    if (!w) httpd_reply_error(req, 500, "out of memory");
    else w->rows_key = key;
    return w;
}

static void storage_get_events(struct evhttp_request *req, storage_api *a) {
    store_filter f;
    struct evkeyvalq params;
    char err[256];
    store_filter_init(&f);
    if (httpd_query_check(req, &params, storage_filter_param, &f) != 0) goto out;
    if (store_filter_check(&f, err, sizeof err) != 0) {
        httpd_reply_error(req, 400, "%s", err);
        goto out;
    }
    /* Backends copy what they need from the filter before returning; params
     * (which the filter points into) are freed right after. */
    storage_wait *w = storage_rows_wait(a, req, "events");
    if (w) a->st->ops->query(a->st, &f, storage_rows_reply, w);
out:
    httpd_query_free(&params);
}

static void storage_events(struct evhttp_request *req, void *arg) {
    if (httpd_require_method(req, EVHTTP_REQ_GET | EVHTTP_REQ_POST) != 0) return;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) storage_post_events(req, arg);
    else storage_get_events(req, arg);
}

/* ---- GET /api/v1/dead-letters ----------------------------------------- */

typedef struct storage_dead_params {
    long limit;
    const char *home; /* home= (issue 18), NULL = every home */
} storage_dead_params;

static int storage_dead_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    storage_dead_params *p = ctx;
    if (strcmp(k, "home") == 0) {
        char why[160];
        if (event_home_check(v, why, sizeof why) == 0) return p->home = v, 0;
        snprintf(err, n, "home: %s", why);
        return -1;
    }
    if (strcmp(k, "limit") != 0) {
        snprintf(err, n, "%.64s: unknown parameter (known: limit, home)", k);
        return -1;
    }
    if (store_parse_long(v, 1, STORE_MAX_LIMIT, &p->limit) == 0) return 0;
    snprintf(err, n, "limit: must be an integer from 1 to %d", STORE_MAX_LIMIT);
    return -1;
}

static void storage_dead_letters(struct evhttp_request *req, void *arg) {
    storage_api *a = arg;
    struct evkeyvalq params;
    storage_dead_params p = {.limit = 100};
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (httpd_query_check(req, &params, storage_dead_param, &p) == 0 &&
        query_home_supported(req, a->st, p.home, STORE_HOME_DEAD, "GET /api/v1/dead-letters") == 0) {
        storage_wait *w = storage_rows_wait(a, req, "dead_letters");
        if (w && p.home) a->st->ops->dead_letters_home(a->st, p.home, p.limit, storage_rows_reply, w);
        else if (w) a->st->ops->dead_letters(a->st, p.limit, storage_rows_reply, w);
    }
    httpd_query_free(&params);
}

/* ---- GET /health ------------------------------------------------------ */

static void storage_health(struct evhttp_request *req, void *arg) {
    storage_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    const char *reason = NULL;
    int ok = a->st->ops->health(a->st, &reason) == 0;
    json_t *o = json_pack("{s:s,s:s}", "status", ok ? "healthy" : "unhealthy", "service", "data-storage");
    if (storage_maint_health(a->maint, o, &reason) != 0 && ok) {
        ok = 0;
        json_object_set_new(o, "status", json_string("unhealthy"));
    }
    if (!ok) json_object_set_new(o, "reason", json_string(reason ? reason : "backend_unavailable"));
    json_object_set_new(o, "backend", a->st->ops->info(a->st));
    size_t pending = 0;
    for (storage_wait *p = a->pending; p; p = p->next) pending++;
    json_object_set_new(o, "pending_requests", json_integer((json_int_t)pending));
    httpd_reply_json(req, ok ? 200 : 503, o);
}

/* ---- set-up ----------------------------------------------------------- */

static void storage_api_metrics(storage_api *a) {
    storage_post_metrics(a);
    a->m_up = metrics_gauge_fn("homeiq_storage_backend_up", "1 when the storage backend is healthy.", NULL,
                               storage_backend_up, a);
}

/* Two seconds without a write: the backend's caches (SQLite's 16 MiB page
 * cache) and the burst's free heap go back to the kernel. */
static void storage_api_idle(void *arg) {
    storage_api *a = arg;
    if (a->st->ops->release_memory) a->st->ops->release_memory(a->st);
}

int storage_api_new(httpd *h, store *st, const storage_api_opts *opts, storage_api **out) {
    storage_api *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->st = st;
    a->opts = *opts;
    storage_api_metrics(a);
    if ((opts->svc && service_on_idle(opts->svc, 2000, storage_api_idle, a) != 0) ||
        storage_maint_new(opts->svc, st, &a->maint) != 0) {
        free(a);
        return -1;
    }
    if (httpd_route(h, "/api/v1/events", storage_events, a) || httpd_route(h, "/api/v1/dead-letters", storage_dead_letters, a) ||
        httpd_route(h, "/health", storage_health, a) || stats_api_route(h, st) ||
        query_api_new(h, st, &a->reads)) {
        storage_maint_free(a->maint);
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void storage_api_free(storage_api *a) {
    if (!a) return;
    /* store_close() ran first: a POST it called back is still here (its next step needed the loop). */
    if (a->pending) log_warn("requests still pending at shutdown");
    while (a->pending) storage_wait_free(a->pending); /* unanswered: their callers retry */
    storage_maint_free(a->maint);
    query_api_free(a->reads);
    free(a);
}

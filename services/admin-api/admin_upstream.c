/* admin_upstream.c -- GETs to the other services, and relaying their answers.
 *
 * Why one place: every endpoint of admin-api is a read from a peer; the URL
 * building, the timeout and what a failed hop looks like to the client
 * (502 naming the peer and the transport error) are decided here once. */
#include "admin.h"
#include "auth.h"
#include "log.h"
#include "sbuf.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const admin_peer_names[ADMIN_NPEERS] = {"websocket-ingestion", "enrichment-pipeline",
                                                           "data-storage"};

const char *admin_peer_name(admin_peer p) { return admin_peer_names[p]; }

const char *admin_query_string(struct evhttp_request *req) {
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    return q ? q : "";
}

int admin_get(admin *a, admin_peer p, const char *path_and_query, admin_upstream_cb cb, void *arg) {
    sbuf url;
    sbuf_init(&url);
    sbuf_adds(&url, a->peer_url[p]);
    sbuf_adds(&url, path_and_query);
    if (sbuf_failed(&url)) return -1;
    const char *headers[] = {auth_header(), NULL}; /* the deployment's API token, when set */
    httpc_request r = {.method = "GET", .url = url.data, .headers = headers, .timeout_ms = a->upstream_timeout_ms};
    int rc = httpc_send(a->http, &r, cb, arg);
    sbuf_free(&url);
    return rc;
}

void admin_upstream_reason(const httpc_response *res, char *out, size_t n) {
    if (res->status == 0) {
        snprintf(out, n, "%s", res->error ? res->error : "no answer");
        return;
    }
    json_error_t e;
    json_t *j = res->body ? json_loadb(res->body, res->body_len, 0, &e) : NULL;
    const char *why = NULL;
    if (json_is_object(j)) {
        const char *keys[] = {"reason", "error", "status"};
        for (size_t i = 0; i < 3 && !why; i++) why = json_string_value(json_object_get(j, keys[i]));
    }
    snprintf(out, n, "HTTP %ld%s%s", res->status, why ? ": " : "", why ? why : "");
    json_decref(j);
}

/* ---- relay ---------------------------------------------------------------- */

typedef struct admin_relay_ctx {
    struct evhttp_request *req; /* NULL once the client is gone */
    admin_peer peer;
} admin_relay_ctx;

static void admin_relay_gone(struct evhttp_connection *c, void *arg) {
    (void)c;
    admin_relay_ctx *r = arg;
    httpd_request_abandon(r->req);
    r->req = NULL;
}

static void admin_relay_done(const httpc_response *res, void *arg) {
    admin_relay_ctx *r = arg;
    if (r->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
        if (res->status == 0) {
            httpd_reply_error(r->req, 502, "%s unreachable: %s", admin_peer_name(r->peer),
                              res->error ? res->error : "no answer");
        } else {
            /* the peer's own answer, status and body, e.g. 400 naming the parameter */
            httpd_reply_text(r->req, (int)res->status, "application/json", res->body ? res->body : "",
                             res->body_len);
        }
    }
    free(r);
}

void admin_relay_path(admin *a, struct evhttp_request *req, admin_peer p, const char *path_and_query) {
    admin_relay_ctx *r = calloc(1, sizeof *r);
    if (!r) {
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    r->req = req;
    r->peer = p;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), admin_relay_gone, r);
    if (admin_get(a, p, path_and_query, admin_relay_done, r) != 0) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
        free(r);
        httpd_reply_error(req, 502, "%s: request could not be started", admin_peer_name(p));
    }
}

void admin_relay(admin *a, struct evhttp_request *req, admin_peer p, const char *path) {
    const char *q = admin_query_string(req);
    sbuf pq;
    sbuf_init(&pq);
    sbuf_adds(&pq, path);
    if (*q) {
        sbuf_addc(&pq, '?');
        sbuf_adds(&pq, q);
    }
    if (sbuf_failed(&pq)) httpd_reply_error(req, 500, "out of memory");
    else admin_relay_path(a, req, p, pq.data);
    sbuf_free(&pq);
}

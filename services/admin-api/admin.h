/* admin.h -- what the parts of homeiq-admin-api share.
 *
 * Why this service exists: people would rather look than read. admin-api is
 * the dashboard's back end: it gathers every service's /health, serves the
 * house's events, entities and series, and a live tail -- reading only over
 * HTTP from the other services (data-storage stays the only database client),
 * so it can be restarted, scaled or left out without touching the pipeline.
 *
 * Files: main.c (config, wiring), admin_upstream.c (GET to a peer, relay),
 * admin_health.c (/api/v1/health), admin_api.c (overview, events, dead
 * letters, entities, series), admin_stream.c (SSE tail), admin_static.c (the
 * page: files, ETag, gzip). The admin struct is owned by main.c; each part
 * keeps its own state behind its own pointer. */
#ifndef HOMEIQ_ADMIN_H
#define HOMEIQ_ADMIN_H

#include "httpc.h"
#include "httpd.h"

#include <event2/event.h>

/* The services admin-api reads from, in pipeline order. */
typedef enum { ADMIN_INGESTION = 0, ADMIN_ENRICHMENT, ADMIN_STORAGE, ADMIN_NPEERS } admin_peer;

typedef struct admin_stream admin_stream;
typedef struct admin_static admin_static;

typedef struct admin {
    struct event_base *base;
    httpc *http;
    const char *peer_url[ADMIN_NPEERS]; /* base URLs, no trailing '/' (owned by main.c) */
    long upstream_timeout_ms;           /* one GET to a peer */
    long stream_poll_ms;                /* SSE: how often data-storage's feed is read */
    long stream_max_clients;
    admin_stream *stream;
    admin_static *files;
} admin;

const char *admin_peer_name(admin_peer p);

/* ---- admin_upstream.c ---- */
typedef void (*admin_upstream_cb)(const httpc_response *res, void *arg);
/* GET peer + path_and_query; cb is called exactly once. 0/-1 (-1: cb not called). */
int admin_get(admin *a, admin_peer p, const char *path_and_query, admin_upstream_cb cb, void *arg);
/* Relays GET peer + path + the request's own query string; answers the
 * client with the peer's status and JSON body, or 502 naming the peer. */
void admin_relay(admin *a, struct evhttp_request *req, admin_peer p, const char *path);
/* Same, with the peer path and query given whole. */
void admin_relay_path(admin *a, struct evhttp_request *req, admin_peer p, const char *path_and_query);
/* "connection refused" / "HTTP 503: <error>" style text for an answer that is not 200. */
void admin_upstream_reason(const httpc_response *res, char *out, size_t n);
/* The request's query string ("" when none). */
const char *admin_query_string(struct evhttp_request *req);

/* ---- admin_health.c, admin_api.c ---- */
int admin_health_routes(admin *a, httpd *h);
int admin_api_routes(admin *a, httpd *h);
/* /api/v1/entities/{entity_id}/series; 0 when `path` was that route (answered). */
int admin_api_series(admin *a, struct evhttp_request *req, const char *path);

/* ---- admin_stream.c ---- */
int admin_stream_new(admin *a, httpd *h);
void admin_stream_end(admin *a);    /* ends every open stream; before httpc_free() */
void admin_stream_free(admin *a);   /* after httpc_free() */
/* GET /api/v1/stream's parameters, from the raw query string (NULL = none)
 * and the Last-Event-ID header (NULL = none; it wins over last_event_id=).
 * Also what tests/fuzz/fuzz_query_params calls. 0, or -1 with the 400 text in
 * err; p->filters is malloc'd either way (NULL only when out of memory). */
typedef struct admin_stream_params {
    char *filters;        /* "&entity_id=..&domain=.." for data-storage's feed (URL-encoded) */
    long backlog;         /* 0..1000 */
    long long cursor;     /* from Last-Event-ID */
    int has_cursor;
} admin_stream_params;
int admin_stream_parse(const char *query, const char *last_event_id, admin_stream_params *p, char *err, size_t n);

/* ---- admin_static.c ---- */
/* Serves files from `www_dir` at /, and the chart library file at /vendor/chart.min.js. */
int admin_static_new(admin *a, const char *www_dir, const char *chart_js);
void admin_static_free(admin *a);
/* 0 when it answered `path` (a file, a 304, or a 404 for an unknown file). */
void admin_static_serve(admin *a, struct evhttp_request *req, const char *path);

#endif

/* httpd.h -- the HTTP server every HomeIQ service runs: evhttp on the process'
 * one libevent loop, with the limits and conventions the services must share:
 * a body limit (413), header/read timeouts, a request id on every answer, JSON
 * bodies in and out, 400 with the byte position for malformed JSON, 405 for a
 * wrong method, and GET /metrics served from the metrics registry. */
#ifndef HOMEIQ_HTTPD_H
#define HOMEIQ_HTTPD_H

#include "config.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>

typedef struct httpd httpd;
typedef void (*httpd_handler)(struct evhttp_request *req, void *arg);

typedef struct httpd_opts {
    const char *bind;        /* default "127.0.0.1" */
    int port;
    size_t max_body;         /* bytes; larger bodies get 413 */
    int timeout_s;           /* header/body read timeout, default 30; also closes idle keep-alive connections */
    int max_connections;     /* 0 = HTTP_MAX_CONNECTIONS (HTTPD_CONFIG_VARS) */
} httpd_opts;

/* The variables every HTTP server documents in its --help table. */
#define HTTPD_CONFIG_VARS                                                                                     \
    {.name = "HTTP_MAX_CONNECTIONS", .def = "4096", .type = CONFIG_INT, .min = 1, .max = 1000000, .shared = 1, \
     .help = "most open client connections per server; at the cap new clients wait in the kernel's backlog "   \
             "until idle ones time out (always leaves 128 descriptors for the service's own files)"}

/* Binds and starts serving on `base`. GET /metrics is routed automatically.
 * Refuses a non-loopback `bind` without an API token (auth_bind_allowed), and
 * asks every request but GET /health (and /metrics with METRICS_AUTH=0) for
 * the token before its handler runs (auth_check). */
int httpd_new(struct event_base *base, const httpd_opts *opts, httpd **out);
/* Exact-path route; the handler checks the method (see httpd_require_method). */
int httpd_route(httpd *h, const char *path, httpd_handler handler, void *arg);
/* Handler for every path without an exact route (default: JSON 404); for
 * prefix routes and static files. The request id is set as for routes; the
 * token is NOT checked: the handler calls auth_check() for what it protects. */
void httpd_fallback(httpd *h, httpd_handler handler, void *arg);
/* The port actually bound (useful with port 0). */
int httpd_port(const httpd *h);
/* Stops serving before the service's own shutdown work (which may still run
 * the loop): the listening socket is closed, and a request on a connection
 * already open is answered 503 "shutting down" with Connection: close. */
void httpd_stop(httpd *h);
void httpd_free(httpd *h);

/* Answers 405 (with Allow) and returns -1 unless the method is one of `methods`
 * (a mask of EVHTTP_REQ_*). */
int httpd_require_method(struct evhttp_request *req, int methods);

/* Sends `body` (reference stolen, may be NULL for an empty object) as
 * application/json with `status`. */
void httpd_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Sends {"error":"<message>"} with `status`. */
void httpd_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends a text/plain body (Prometheus exposition etc.). */
void httpd_reply_text(struct evhttp_request *req, int status, const char *content_type, const char *text, size_t len);

/* Parses the request body as JSON. On failure it has already answered:
 * 400 {"error":"malformed JSON at byte N (line L, column C): <text>","position":N}
 * or 400 for an empty body, and returns -1. On success *out is a new reference. */
int httpd_read_json(struct evhttp_request *req, json_t **out);

/* Query-string parameter of the request URI, or NULL. `params` must be
 * initialised by httpd_query_parse() and released with httpd_query_free(). */
int httpd_query_parse(struct evhttp_request *req, struct evkeyvalq *params);
const char *httpd_query_get(struct evkeyvalq *params, const char *key);
/* Parses the query string into `params` and passes every parameter to `check`,
 * which fills `err` (naming the parameter) and returns non-zero for a bad one.
 * On a bad or unparsable query it has already answered 400 and returns -1.
 * `params` is freed by the caller either way (httpd_query_free). */
int httpd_query_check(struct evhttp_request *req, struct evkeyvalq *params,
                      int (*check)(void *ctx, const char *k, const char *v, char *err, size_t n), void *ctx);
void httpd_query_free(struct evkeyvalq *params);
/* The request URI's query string (after '?', still percent-encoded), or NULL. */
const char *httpd_query_string(struct evhttp_request *req);
/* httpd_query_check without a request (what it runs; tests/fuzz call it
 * directly): parses `query` (NULL = none) into `params` and passes every
 * parameter to `check`. 0, or -1 with the 400 text in err. `params` is freed
 * by the caller either way. */
int httpd_query_check_str(const char *query, struct evkeyvalq *params,
                          int (*check)(void *ctx, const char *k, const char *v, char *err, size_t n), void *ctx,
                          char *err, size_t n);
/* A parameter that must be a plain decimal (digits only, no sign or spaces) in
 * [min, max], min >= 0. 0, or -1 when it is not. */
int httpd_param_long(const char *v, long long min, long long max, long long *out);

/* For a connection close callback (evhttp_connection_set_closecb) of a request
 * that will now never be answered: when the client went away first, libevent
 * detached the request from the connection and leaves freeing it to us (it
 * would be freed by the reply we no longer send); this frees it then. Never
 * use `req` afterwards. */
void httpd_request_abandon(struct evhttp_request *req);

/* The request id (X-Request-Id from the client, or generated). */
const char *httpd_request_id(struct evhttp_request *req);

#endif

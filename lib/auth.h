/* auth.h -- the API token every HomeIQ server asks for and every client sends.
 *
 * Why one module: the rule "every endpoint but GET /health needs
 * `Authorization: Bearer <token>` once HOMEIQ_API_TOKEN is set" must mean the
 * same thing in every service, and so must the refusal to listen on a
 * non-loopback address without a token. httpd asks auth_check() before any
 * handler runs, so a new route cannot forget it; services and tools add
 * auth_header() to the requests they send to other HomeIQ services.
 *
 * State is per process (one token per process), loaded once by auth_load();
 * the token string is owned here and registered with the log scrubber. */
#ifndef HOMEIQ_AUTH_H
#define HOMEIQ_AUTH_H

#include "config.h"

#include <event2/http.h>

/* The variables every server documents in its --help table. */
#define AUTH_CONFIG_VARS                                                                                          \
    {.name = "HOMEIQ_API_TOKEN", .shared = 1,                                                                     \
     .help = "API token: every endpoint but GET /health needs 'Authorization: Bearer <token>'"},                  \
    {.name = "HOMEIQ_API_TOKEN_FILE", .shared = 1,                                                                \
     .help = "file holding the API token (preferred: it stays out of ps and shell history; warned about if "      \
             "group/world-readable)"},                                                                            \
    {.name = "METRICS_AUTH", .def = "1", .type = CONFIG_BOOL, .max = 1, .shared = 1,                              \
     .help = "1: /metrics needs the token too (when one is set; Prometheus: authorization: {credentials_file: ...}); 0: /metrics is open"},                           \
    {.name = "HOMEIQ_ALLOW_UNAUTHENTICATED", .def = "0", .type = CONFIG_BOOL, .max = 1, .shared = 1,              \
     .help = "1: allow a non-loopback bind address without a token (warns at every start)"}

/* Reads HOMEIQ_API_TOKEN / HOMEIQ_API_TOKEN_FILE and METRICS_AUTH once (later
 * calls return the first result). A token file that is set but unreadable or
 * empty is an error, never "no token". 0, or -1 after logging why. */
int auth_load(void);

/* 0 when a server may listen on `bind`: a token is set, or the address is
 * loopback, or HOMEIQ_ALLOW_UNAUTHENTICATED=1 (logged as a warning). -1 with
 * a clear error naming the variable otherwise. */
int auth_bind_allowed(const char *bind);

/* 1 when a token is configured. */
int auth_enabled(void);

/* 1 when requests to `path` need no token (GET /health; /metrics with METRICS_AUTH=0). */
int auth_path_open(const char *path);

/* 0 when the request may go on (no token configured, or the right bearer
 * token, compared in constant time). Otherwise answers 401 with
 * WWW-Authenticate: Bearer and returns -1. */
int auth_check(struct evhttp_request *req);

/* 1 when `authorization` (the value of an Authorization header, or NULL) is
 * "Bearer <the token>", or when no token is set. For servers that do not use
 * httpd (the HA simulator's control endpoints). */
int auth_value_ok(const char *authorization);

/* "Authorization: Bearer <token>" for outgoing requests to other HomeIQ
 * services, or NULL when no token is set. Owned here. */
const char *auth_header(void);

/* Frees the token (at exit). */
void auth_shutdown(void);

#endif

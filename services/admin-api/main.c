/* main.c -- homeiq-admin-api: configuration, wiring, clean shutdown.
 *
 * The dashboard's service (admin.h says why it exists): the pipeline's
 * health, the house's events, entities and series, a live tail, and the page
 * itself -- read only over HTTP from websocket-ingestion, enrichment-pipeline
 * and data-storage, found through the same *_URL variables as homeiqctl. */
#include "admin.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "url.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HOMEIQ_ADMIN_WWW_DIR
#define HOMEIQ_ADMIN_WWW_DIR "services/admin-api/www"
#endif

static const config_var admin_vars[] = {
    CONFIG_INT("ADMIN_API_PORT", "8003", 0, 65535, "HTTP port (the dashboard and /api/v1/...)"),
    CONFIG_TEXT("ADMIN_API_BIND", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)"),
    URL_INGESTION_VAR,
    URL_ENRICHMENT_VAR,
    URL_STORAGE_VAR,
    CONFIG_TEXT("ADMIN_API_STATIC_DIR", HOMEIQ_ADMIN_WWW_DIR, "directory of the dashboard's files (index.html, app.js, app.css)"),
    CONFIG_TEXT("ADMIN_API_CHART_JS", "/usr/share/javascript/chart.js/chart.min.js", "the chart library served at vendor/chart.min.js (Debian libjs-chart.js)"),
    CONFIG_INT("ADMIN_API_UPSTREAM_TIMEOUT_MS", "5000", 100, 600000, "timeout of one request to another service"),
    CONFIG_INT("ADMIN_STREAM_POLL_MS", "500", 20, 60000, "live tail: how often data-storage's feed is read per open stream"),
    CONFIG_INT("ADMIN_STREAM_MAX_CLIENTS", "64", 1, 10000, "live tail: most open streams; more get 503"),
    AUTH_CONFIG_VARS,
    HTTPD_CONFIG_VARS,
    CONFIG_END,
};

typedef struct admin_main {
    service *svc;
    httpd *http;
    admin a;
    char *urls[ADMIN_NPEERS];
} admin_main;


/* Paths without an exact route: the series route, unknown API paths, files. */
static void admin_fallback(struct evhttp_request *req, void *arg) {
    admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) path = "/";
    if (strncmp(path, "/api/", 5) == 0 && auth_check(req) != 0) return; /* the page's files are public */
    if (admin_api_series(a, req, path) == 0) return;
    if (strncmp(path, "/api/", 5) == 0) {
        httpd_reply_error(req, 404, "no such endpoint: %s", path);
        return;
    }
    admin_static_serve(a, req, path);
}

static int admin_main_start(admin_main *m) {
    long long port, timeout, poll, maxc;
    if (config_int(admin_vars, "ADMIN_API_PORT", &port) ||
        config_int(admin_vars, "ADMIN_API_UPSTREAM_TIMEOUT_MS", &timeout) ||
        config_int(admin_vars, "ADMIN_STREAM_POLL_MS", &poll) ||
        config_int(admin_vars, "ADMIN_STREAM_MAX_CLIENTS", &maxc))
        return -1;
    _Static_assert((int)ADMIN_NPEERS == (int)URL_NSERVICES && (int)ADMIN_STORAGE == (int)URL_STORAGE,
                   "admin_peer is url_service's order");
    for (int p = 0; p < ADMIN_NPEERS; p++) { /* base URLs without a trailing '/' */
        if (!(m->urls[p] = url_join(config_text(admin_vars, url_service_env((url_service)p)), ""))) return -1;
        m->a.peer_url[p] = m->urls[p];
    }
    m->a.upstream_timeout_ms = (long)timeout;
    m->a.stream_poll_ms = (long)poll;
    m->a.stream_max_clients = (long)maxc;
    if (service_new("admin-api", &m->svc) != 0) return -1;
    m->a.base = service_base(m->svc);
    if (httpc_new(m->a.base, &m->a.http) != 0) return -1;
    httpd_opts ho = {.bind = config_text(admin_vars, "ADMIN_API_BIND"), .port = (int)port, .max_body = 64 * 1024,
                     .timeout_s = 30};
    if (httpd_new(m->a.base, &ho, &m->http) != 0) return -1;
    if (admin_static_new(&m->a, config_text(admin_vars, "ADMIN_API_STATIC_DIR"),
                         config_text(admin_vars, "ADMIN_API_CHART_JS")) != 0)
        return -1;
    if (admin_health_routes(&m->a, m->http) || admin_api_routes(&m->a, m->http) || admin_stream_new(&m->a, m->http))
        return -1;
    httpd_fallback(m->http, admin_fallback, &m->a);
    log_info("dashboard at http://%s:%d/ (reading %s, %s, %s)", ho.bind, httpd_port(m->http), m->urls[0], m->urls[1],
             m->urls[2]);
    return 0;
}

static void admin_main_free(admin_main *m) {
    admin_stream_end(&m->a);
    if (m->a.http) httpc_free(m->a.http); /* answers (cancels) what is in flight */
    admin_stream_free(&m->a);
    admin_static_free(&m->a);
    if (m->http) httpd_free(m->http);
    for (int p = 0; p < ADMIN_NPEERS; p++) free(m->urls[p]);
    metrics_free_all();
    if (m->svc) service_free(m->svc);
}

int main(int argc, char **argv) {
    int rc = config_parse_args(argc, argv,
                               "homeiq-admin-api: the HomeIQ dashboard and its API (pipeline health, events,\n"
                               "entities, series, live tail), read over HTTP from the other services.\n"
                               "GET /, /api/v1/health, /api/v1/overview, /api/v1/events, /api/v1/events/stream,\n"
                               "/api/v1/dead-letters, /api/v1/entities, /api/v1/entities/{id}/series, /health, /metrics.",
                               admin_vars);
    if (rc != 0) return rc > 0 ? 0 : 2;
    admin_main m;
    memset(&m, 0, sizeof m);
    if (admin_main_start(&m) != 0) {
        log_error("admin-api failed to start");
        admin_main_free(&m);
        return 1;
    }
    service_run(m.svc);
    log_info("admin-api stopped");
    admin_main_free(&m);
    return 0;
}

/* main.c -- homeiq-enrichment-pipeline: configuration, wiring and shutdown.
 *
 * HA events come in on POST /api/v1/events (from websocket-ingestion or any
 * client), are validated once and enriched into flat records, and go to
 * data-storage in one request per batch; the caller gets 200 only after
 * storage committed. The service keeps no state, so copies can run side by
 * side behind a load balancer. */
#include "enrich_api.h"
#include "event.h"
#include "auth.h"
#include "config.h"
#include "storage_probe.h"
#include "httpc.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "url.h"

#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static const config_var enrichment_vars[] = {
    CONFIG_INT("ENRICHMENT_PIPELINE_PORT", URL_ENRICHMENT_PORT, 0, 65535, "TCP port for the HTTP API"),
    CONFIG_TEXT("ENRICHMENT_PIPELINE_BIND", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)"),
    URL_STORAGE_VAR,
    CONFIG_INT("MAX_BODY_BYTES", EVENT_STR(EVENT_BODY_MAX), 1024, 1LL << 30, "largest request body; larger gets 413"),
    CONFIG_INT("MAX_BATCH", "10000", 1, 1000000, "most events per request; more gets 413"),
    CONFIG_INT("STORAGE_TIMEOUT_MS", "10000", 100, 600000, "how long one batch may wait for data-storage before 503"),
    CONFIG_INT("STORAGE_PROBE_INTERVAL_MS", "2000", 100, 600000, "how often GET /health of data-storage is probed"),
    CONFIG_INT("STORAGE_PROBE_TIMEOUT_MS", "2000", 100, 600000, "timeout of that probe"),
    CONFIG_INT("HTTP_READ_TIMEOUT_S", "30", 1, 3600, "timeout for reading a request's headers and body"),
    CONFIG_INT("ENRICHMENT_FAST_PATH", "1", 0, 1, "1: enrich plain HA events straight from the request text (identical output, about 4x less CPU); 0: always through the jansson tree"),
    CONFIG_TEXT("TZ", NULL, "IANA time zone for time_of_day/weekday, e.g. Europe/Amsterdam (default: the system zone)"),
    AUTH_CONFIG_VARS,
    HTTPD_CONFIG_VARS,
    CONFIG_END,
};

typedef struct enrichment_config {
    long long fast_path, port, max_body, max_batch, storage_timeout_ms, probe_interval_ms, probe_timeout_ms, read_timeout_s;
    const char *bind, *storage_url;
} enrichment_config;

static int enrichment_read_config(enrichment_config *c) {
    c->bind = config_text(enrichment_vars, "ENRICHMENT_PIPELINE_BIND");
    c->storage_url = config_text(enrichment_vars, URL_STORAGE_ENV);
    if (config_int(enrichment_vars, "ENRICHMENT_PIPELINE_PORT", &c->port) ||
        config_int(enrichment_vars, "MAX_BODY_BYTES", &c->max_body) ||
        config_int(enrichment_vars, "MAX_BATCH", &c->max_batch) ||
        config_int(enrichment_vars, "STORAGE_TIMEOUT_MS", &c->storage_timeout_ms) ||
        config_int(enrichment_vars, "STORAGE_PROBE_INTERVAL_MS", &c->probe_interval_ms) ||
        config_int(enrichment_vars, "STORAGE_PROBE_TIMEOUT_MS", &c->probe_timeout_ms) ||
        config_int(enrichment_vars, "HTTP_READ_TIMEOUT_S", &c->read_timeout_s) ||
        config_int(enrichment_vars, "ENRICHMENT_FAST_PATH", &c->fast_path))
        return -1;
    return 0;
}

/* glibc silently falls back to UTC for an unknown zone name; say so. */
static void enrichment_check_tz(void) {
    tzset();
    const char *tz = getenv("TZ");
    if (!tz || !*tz) {
        log_info("TZ unset: time_of_day/weekday use the system time zone");
        return;
    }
    const char *name = tz[0] == ':' ? tz + 1 : tz;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    if (name[0] != '/' && stat(path, &st) != 0)
        log_warn("TZ=%s is not a zone in /usr/share/zoneinfo; glibc treats it as a POSIX TZ string or UTC", tz);
    else
        log_info("time_of_day/weekday in TZ=%s", tz);
}

int main(int argc, char **argv) {
    int rc = config_parse_args(argc, argv,
                               "homeiq-enrichment-pipeline: validates and enriches Home Assistant events and "
                               "forwards them to data-storage.\n"
                               "POST /api/v1/events, GET /health, GET /metrics.",
                               enrichment_vars);
    if (rc != 0) return rc > 0 ? 0 : 2;
    /* Every batch builds and frees jansson trees of tens of thousands of small
     * nodes. glibc's fastbins defer their coalescing to malloc_consolidate(),
     * which took 13-20% of this process' CPU in bench/enrichment.sh; without
     * fastbins (tcache still serves hot sizes) the same run costs ~20% less
     * CPU per event. */
    mallopt(M_MXFAST, 0);

    service *svc = NULL;
    httpc *client = NULL;
    httpd *server = NULL;
    storage_probe *hl = NULL;
    enrich_api *a = NULL;
    enrichment_config cfg;
    int exit_code = 1;
    if (service_new("enrichment-pipeline", &svc) != 0) return 1;
    if (enrichment_read_config(&cfg) != 0) goto out;
    enrichment_check_tz();

    httpd_opts opts = {.bind = cfg.bind, .port = (int)cfg.port, .max_body = (size_t)cfg.max_body,
                       .timeout_s = (int)cfg.read_timeout_s};
    enrich_api_config acfg = {.storage_url = cfg.storage_url, .storage_timeout_ms = (long)cfg.storage_timeout_ms,
                       .max_batch = (size_t)cfg.max_batch, .fast_path = cfg.fast_path != 0};
    if (httpc_new(service_base(svc), &client) != 0 || httpd_new(service_base(svc), &opts, &server) != 0 ||
        storage_probe_new(service_base(svc), client, cfg.storage_url, (long)cfg.probe_interval_ms,
                   (long)cfg.probe_timeout_ms, &hl) != 0 ||
        enrich_api_new(server, client, hl, &acfg, &a) != 0)
        goto out;
    log_info("forwarding to data-storage at %s", cfg.storage_url);
    service_run(svc);
    exit_code = 0;
out:
    /* Order: stop probing, then cancel in-flight storage requests (their
     * callbacks answer 503 and free the pending batches), then the server. */
    storage_probe_stop(hl);
    httpc_free(client);
    enrich_api_free(a);
    storage_probe_free(hl);
    httpd_free(server);
    metrics_free_all();
    service_free(svc);
    return exit_code;
}

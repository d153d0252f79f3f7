/* main.c -- homeiq-data-storage: configuration, wiring, clean shutdown.
 *
 * The only HomeIQ service that touches a database. Everything it does is in
 * storage_api.c (HTTP) and the store_* backends; this file reads the
 * environment, connects them on the one event loop, and frees everything on
 * SIGTERM in the order that lets in-flight requests be answered. */
#include "auth.h"
#include "event.h"
#include "config.h"
#include "ha_config.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "storage_api.h"
#include "storage_maint.h"
#include "store.h"
#include "store_clickhouse.h"
#include "store_influx.h"
#include "url.h"

#include <stdio.h>

static const config_var storage_vars[] = {
    CONFIG_TEXT("DATA_STORAGE_BIND", "127.0.0.1", "address to listen on"),
    CONFIG_INT("DATA_STORAGE_PORT", URL_STORAGE_PORT, 0, 65535, "HTTP port"),
    CONFIG_TEXT("STORAGE_BACKEND", STORE_BACKEND_DEFAULT, "sqlite | influxdb | clickhouse"),
    CONFIG_INT("MAX_BATCH", "10000", 1, 1000000, "most events accepted in one POST"),
    CONFIG_INT("MAX_BODY_BYTES", EVENT_STR(EVENT_BODY_MAX), 1024, 1LL << 31, "largest request body; larger gets 413"),
    CONFIG_INT("STORAGE_PIECE_BYTES", "2097152", 1, 1LL << 31, "a POST's events are prepared and committed in pieces of at most this much of their text, one transaction each, answered after the last: memory stays bounded whatever the batch size"),
    CONFIG_TEXT("DATA_DIR", "./data", "sqlite: directory of events.db (created)"),
    CONFIG_INT("SQLITE_BUSY_TIMEOUT_MS", "5000", 0, 600000, "sqlite: wait this long for a lock before answering 503"),
    CONFIG_INT("SQLITE_WRITER_STALL_MS", "10000", 1, 3600000, "sqlite: /health answers 503 sqlite_writer_stalled while one transaction (a commit hung in the disk) has run this long; it never waits for one"),
    INFLUX_CONFIG_VARS, /* STORAGE_BACKEND=influxdb (store_influx.c, docs/INFLUXDB.md) */
    STORAGE_MAINT_CONFIG_VARS,
    CLICKHOUSE_CONFIG_VARS, /* STORAGE_BACKEND=clickhouse (store_clickhouse.c, docs/CLICKHOUSE.md) */
    /* INFLUXDB_SCHEMA=homeassistant: HA's own points (ha_point.c, ha_config.c, docs/INFLUXDB.md) */
    CONFIG_TEXT("INFLUXDB_SCHEMA", HA_CONFIG_SCHEMA_DEFAULT, "influxdb: homeiq (HomeIQ's measurement) | homeassistant (the points HA's InfluxDB integration writes)"),
    CONFIG_TEXT("INFLUXDB_HA_CONFIG", NULL, "homeassistant: HA's configuration.yaml; its influxdb: block (and !secret from secrets.yaml) sets the defaults of everything here, and implies STORAGE_BACKEND=influxdb, INFLUXDB_SCHEMA=homeassistant"),
    CONFIG_TEXT("INFLUXDB_MEASUREMENT_ATTR", "unit_of_measurement", "homeassistant: unit_of_measurement | domain__device_class | entity_id"),
    CONFIG_TEXT("INFLUXDB_DEFAULT_MEASUREMENT", NULL, "homeassistant: measurement when measurement_attr gives none (default: the entity id)"),
    CONFIG_TEXT("INFLUXDB_OVERRIDE_MEASUREMENT", NULL, "homeassistant: one measurement for every point (per-entity overrides: component_config in YAML)"),
    CONFIG_TEXT("INFLUXDB_TAGS", NULL, "homeassistant: static tags, key=value,key=value"),
    CONFIG_TEXT("INFLUXDB_TAGS_ATTRIBUTES", NULL, "homeassistant: attributes written as tags, comma-separated"),
    CONFIG_TEXT("INFLUXDB_REGISTRY_TAGS", NULL, "homeassistant: registry fields written as tags, e.g. area_id,floor_id,labels (opt-in)"),
    CONFIG_TEXT("INFLUXDB_IGNORE_ATTRIBUTES", NULL, "homeassistant: attributes never written, comma-separated"),
    CONFIG_TEXT("INFLUXDB_PRECISION", "ns", "homeassistant: time precision ns | us | ms | s"),
    CONFIG_TEXT("INFLUXDB_INCLUDE_ENTITIES", NULL, "homeassistant filter: entity ids, comma-separated (HA's include/exclude rules)"),
    CONFIG_TEXT("INFLUXDB_INCLUDE_DOMAINS", NULL, "homeassistant filter: domains"),
    CONFIG_TEXT("INFLUXDB_INCLUDE_ENTITY_GLOBS", NULL, "homeassistant filter: entity id globs (* ?)"),
    CONFIG_TEXT("INFLUXDB_EXCLUDE_ENTITIES", NULL, "homeassistant filter: entity ids"),
    CONFIG_TEXT("INFLUXDB_EXCLUDE_DOMAINS", NULL, "homeassistant filter: domains"),
    CONFIG_TEXT("INFLUXDB_EXCLUDE_ENTITY_GLOBS", NULL, "homeassistant filter: entity id globs"),
    AUTH_CONFIG_VARS,
    HTTPD_CONFIG_VARS,
    CONFIG_END,
};

typedef struct storage_main {
    service *svc;
    httpd *http;
    store *st;
    storage_api *api;
} storage_main;

static int storage_main_start(storage_main *m) {
    long long port, max_batch, max_body, piece;
    if (config_int(storage_vars, "DATA_STORAGE_PORT", &port) || config_int(storage_vars, "MAX_BATCH", &max_batch) ||
        config_int(storage_vars, "MAX_BODY_BYTES", &max_body) || config_int(storage_vars, "STORAGE_PIECE_BYTES", &piece))
        return -1;
    if (service_new("data-storage", &m->svc) != 0) return -1;
    if (ha_config_env_defaults() != 0) return -1; /* INFLUXDB_HA_CONFIG: before the backend is chosen */
    if (store_open(service_base(m->svc), &m->st) != 0) return -1;
    httpd_opts ho = {.bind = config_text(storage_vars, "DATA_STORAGE_BIND"), .port = (int)port,
                     .max_body = (size_t)max_body, .timeout_s = 30};
    if (httpd_new(service_base(m->svc), &ho, &m->http) != 0) return -1;
    storage_api_opts ao = {.max_batch = (long)max_batch, .piece_bytes = (size_t)piece, .svc = m->svc};
    return storage_api_new(m->http, m->st, &ao, &m->api);
}

static void storage_main_free(storage_main *m) {
    store_close(m->st); /* calls back writes still with the backend */
    storage_api_free(m->api);
    httpd_free(m->http);
    metrics_free_all();
    service_free(m->svc);
}

int main(int argc, char **argv) {
    int rc = config_parse_args(argc, argv,
                               "homeiq-data-storage: stores enriched Home Assistant events (SQLite or InfluxDB)\n"
                               "and serves them over HTTP (POST/GET /api/v1/events, /api/v1/dead-letters,\n"
                               "/health, /metrics).",
                               storage_vars);
    if (rc != 0) return rc > 0 ? 0 : 2;
    storage_main m = {0};
    if (storage_main_start(&m) != 0) {
        log_error("data-storage failed to start");
        storage_main_free(&m);
        return 1;
    }
    service_run(m.svc);
    /* no batch is taken (and acknowledged) after the signal: store_close may
     * still run the loop, for the statistics' stop flush */
    httpd_stop(m.http);
    log_info("data-storage stopped");
    storage_main_free(&m);
    return 0;
}

/* enrich_api.h -- enrichment-pipeline's HTTP endpoints: POST /api/v1/events (the
 * pipeline parse -> enrich -> forward, answered when storage answered) and
 * GET /health; GET /metrics is served by lib/httpd. Also owns the metrics. */
#ifndef HOMEIQ_ENRICH_API_H
#define HOMEIQ_ENRICH_API_H

#include "storage_probe.h"
#include "httpc.h"
#include "httpd.h"

#include <stddef.h>

typedef struct enrich_api_config {
    const char *storage_url;   /* DATA_STORAGE_URL */
    long storage_timeout_ms;   /* per forward */
    size_t max_batch;          /* events per request */
    int fast_path;             /* ENRICHMENT_FAST_PATH: try fastpath.c before jansson */
} enrich_api_config;

typedef struct enrich_api enrich_api;

int enrich_api_new(httpd *server, httpc *client, storage_probe *h, const enrich_api_config *cfg, enrich_api **out);
/* Requests still waiting for storage are answered by httpc_free (503), which
 * must run before enrich_api_free. */
void enrich_api_free(enrich_api *a);

#endif

/* url.h -- splitting "scheme://host[:port][/path][?query][#fragment]" URLs,
 * joining a base URL with a path, and where the HomeIQ services are.
 *
 * Why one module: the HTTP client (http/https) and the WebSocket client
 * (ws/wss) need the same split, with IPv6 literals in brackets and the
 * default ports; every program that calls another service needs the same
 * "<base>/<path>" join however many slashes the user wrote; and the services'
 * URL variables (name and default) are declared once here for every table
 * that lists them (ingestion, enrichment, admin-api, homeiqctl). */
#ifndef HOMEIQ_URL_H
#define HOMEIQ_URL_H

#include "config.h"

#include <stddef.h>

/* The services' base URLs, for the programs' configuration tables. */
/* Each service's default port, also its own *_PORT default (services/<name>/main.c). */
#define URL_INGESTION_PORT "8001"
#define URL_ENRICHMENT_PORT "8002"
#define URL_STORAGE_PORT "8004"
#define URL_INGESTION_ENV "WEBSOCKET_INGESTION_URL"
#define URL_ENRICHMENT_ENV "ENRICHMENT_PIPELINE_URL"
#define URL_STORAGE_ENV "DATA_STORAGE_URL"
#define URL_INGESTION_VAR CONFIG_TEXT(URL_INGESTION_ENV, "http://127.0.0.1:" URL_INGESTION_PORT, "base URL of websocket-ingestion")
#define URL_ENRICHMENT_VAR CONFIG_TEXT(URL_ENRICHMENT_ENV, "http://127.0.0.1:" URL_ENRICHMENT_PORT, "base URL of enrichment-pipeline")
#define URL_STORAGE_VAR CONFIG_TEXT(URL_STORAGE_ENV, "http://127.0.0.1:" URL_STORAGE_PORT, "base URL of data-storage")

/* The three services, in pipeline order, for the programs that list them all
 * (admin-api's peers, homeiqctl): the service's name and its URL variable. */
typedef enum { URL_INGESTION = 0, URL_ENRICHMENT, URL_STORAGE, URL_NSERVICES } url_service;
const char *url_service_name(url_service s); /* "websocket-ingestion", "enrichment-pipeline", "data-storage" */
const char *url_service_env(url_service s);  /* URL_INGESTION_ENV... */

/* "<base>/<path>" with exactly one '/' between them, whatever trailing '/' the
 * base has and leading '/' the path has; an empty path gives the base without
 * its trailing '/'. malloc'd (caller frees), NULL when out of memory. */
char *url_join(const char *base, const char *path);

/* The length of `s` without its trailing '/' characters. */
size_t url_trim_len(const char *s, size_t len);

typedef struct url_parts {
    int tls;             /* the URL used the secure scheme */
    int ipv6;            /* the host was a bracketed literal */
    int port;            /* explicit, or 80 / 443 */
    char host[256];
    const char *target;  /* points into the URL: "/path?query" (may be "" or start with '?') */
    size_t target_len;   /* without the fragment */
} url_parts;

/* Splits `url` whose scheme is `plain` or `secure` (e.g. "http", "https";
 * case-insensitive). The target has no spaces or control characters.
 * 0, or -1 when the URL is malformed. */
int url_split(const char *url, const char *plain, const char *secure, url_parts *out);

/* 1 when the target must be prefixed with "/" to be a request target. */
int url_target_needs_slash(const url_parts *u);

#endif

/* query_api.h -- data-storage's read endpoints for the admin-api and its
 * dashboard: GET /api/v1/events/feed, /api/v1/entities, /api/v1/series,
 * /api/v1/stats (store_read.h). Registered by storage_api_new(). */
#ifndef HOMEIQ_QUERY_API_H
#define HOMEIQ_QUERY_API_H

#include "httpd.h"
#include "store.h"

typedef struct query_api query_api;

/* Registers the routes on `h`; `st` must outlive the api. 0/-1. */
int query_api_new(httpd *h, store *st, query_api **out);
void query_api_free(query_api *q);

/* The parameters of one of these routes ("/api/v1/series", ...) checked as its
 * handler checks them, from a raw query string (NULL = none), without a
 * request (tests/fuzz/fuzz_query_params). 0, or -1 with the 400 text in err. */
int query_api_check_query(const char *path, const char *query, char *err, size_t n);

#endif

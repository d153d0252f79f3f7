/* stats_api.h -- GET /api/v1/statistics: long-term statistics over HTTP, in
 * the shape of HA's recorder/statistics_during_period.
 *
 * Why its own file: the statistics query has its own parameters, periods and
 * answer shape; storage_api.c only registers it (one line in its route table). */
#ifndef HOMEIQ_STATS_API_H
#define HOMEIQ_STATS_API_H

#include "httpd.h"
#include "store.h"

/* Registers the route; `st` must outlive the server. 0/-1. */
int stats_api_route(httpd *h, store *st);

/* The parameters checked as the handler checks them, from a raw query string
 * (NULL = none), without a request (tests/fuzz). 0, or -1 with the 400 text. */
int stats_api_check_query(const char *query, char *err, size_t n);

#endif

/* storage_api.h -- the HTTP face of data-storage: POST/GET /api/v1/events,
 * GET /api/v1/dead-letters, GET /health, and the storage metrics.
 *
 * Why separate from the backends: the API decides what a request means
 * (parsing, limits, validation, answer shapes, metrics) the same way for every
 * backend; store.h is all it knows about the database. */
#ifndef HOMEIQ_STORAGE_API_H
#define HOMEIQ_STORAGE_API_H

#include "httpd.h"
#include "service.h"
#include "store.h"

typedef struct storage_api storage_api;

typedef struct storage_api_opts {
    long max_batch;     /* events per POST */
    size_t piece_bytes; /* STORAGE_PIECE_BYTES: a POST's events are committed in pieces of this much text */
    service *svc;       /* optional: told about each write so caches are released when idle */
} storage_api_opts;

/* Registers the routes on `h`; `st` must outlive the api. 0/-1. */
int storage_api_new(httpd *h, store *st, const storage_api_opts *opts, storage_api **out);
/* Call after store_close() (which calls back every write still with the
 * backend) and before httpd_free(). The loop has exited by then, so a request
 * still pending -- a POST between two pieces or waiting for a slot, a GET --
 * is freed unanswered: its connection closes and the caller retries (the
 * pieces already committed come back as duplicates). */
void storage_api_free(storage_api *a);

#endif

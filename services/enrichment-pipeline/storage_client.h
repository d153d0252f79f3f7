/* storage_client.h -- the forward stage: one POST of one batch to data-storage, and
 * what its answer means for our caller.
 *
 * Why: the ack contract ("200 only when storage answered 200 for this batch")
 * is decided by lib/delivery (delivery_classify), the same rules ingestion
 * uses for us:
 *   200                       -> STORED: map storage's per-record results, answer 200
 *   no answer, 5xx, 3xx, 408  -> UNAVAILABLE: answer 503, the caller keeps and retries
 *   4xx                       -> REFUSED: answer 422 (DELIVERY_REFUSED_STATUS) with
 *                                storage's message: the caller splits the batch
 *                                and dead-letters what is refused alone
 *   the connection cut after a large body
 *                             -> CUT: api.c counts a strike for the body
 *                                (delivery_cut): UNAVAILABLE until the
 *                                DELIVERY_SUSPECT_TRIES-th cut while storage
 *                                was healthy, then REFUSED
 *   a 200 breaking the contract -> 502 (retried by the caller)
 * The request goes through httpc, whose connection pool keeps the connection
 * to storage alive across batches. */
#ifndef HOMEIQ_STORAGE_CLIENT_H
#define HOMEIQ_STORAGE_CLIENT_H

#include "httpc.h"

#include <stddef.h>

typedef enum forward_outcome { FORWARD_STORED, FORWARD_UNAVAILABLE, FORWARD_REFUSED, FORWARD_CUT } forward_outcome;

forward_outcome forward_classify(const httpc_response *res, size_t body_len);

typedef struct forward_target {
    char *events_url;   /* <DATA_STORAGE_URL>/api/v1/events, owned */
    long timeout_ms;
} forward_target;

/* Builds the target from the base URL (a trailing '/' is fine). 0 or -1. */
int forward_target_init(forward_target *t, const char *base_url, long timeout_ms);
void forward_target_free(forward_target *t);

/* POSTs `body` (malloc'd, handed over: httpc sends it without a copy and
 * frees it, also when this fails) with the caller's request id and home (a
 * checked home id, NULL = the default home); `cb` gets storage's answer
 * exactly once (see httpc_send). 0, or -1 when it could not start. */
int forward_send(httpc *c, const forward_target *t, const char *request_id, const char *home, char *body,
                 size_t len, httpc_done_cb cb, void *arg);

/* storage's {"error":"..."} text from a non-200 answer, else a generic text;
 * writes at most n bytes into out. */
void forward_error_text(const httpc_response *res, char *out, size_t n);

#endif

/* storage_post.h -- POST /api/v1/events: a request's events committed in
 * pieces of STORAGE_PIECE_BYTES, at most storage_pieces_out() pieces with the
 * backend at once, answered once after the last commit.
 *
 * Ownership: a POST's storage_wait is created here and freed (storage_wait_free)
 * when it is answered or its client is gone; its POST fields (body, batch, piece,
 * text scan, step timer, rejects) belong to this file and are released by
 * storage_post_release(). */
#ifndef HOMEIQ_STORAGE_POST_H
#define HOMEIQ_STORAGE_POST_H

#include "storage_wait.h"

/* Registers the write metrics (homeiq_storage_events_stored_total...) in a. */
void storage_post_metrics(storage_api *a);
/* Handles a POST: answers it now or later (from the backend's write callback). */
void storage_post_events(struct evhttp_request *req, storage_api *a);
/* Leaves the piece-slot queue and frees w's POST parts (from storage_wait_free). */
void storage_post_release(storage_wait *w);

#endif

/* storage_wait.h -- internal to data-storage's HTTP face: the api's state and
 * a request waiting for the backend, shared by storage_api.c (routes, GET rows,
 * health, set-up) and storage_post.c (POST /api/v1/events).
 *
 * Why a header of its own: both files hold requests in the one `pending` list
 * (health counts them, shutdown frees them) and the client-gone callback is the
 * same for a POST and a GET; the rest of the service sees only storage_api.h.
 *
 * Ownership: storage_api.c creates and frees a storage_wait (storage_wait_new /
 * storage_wait_free); the POST fields below are storage_post.c's, released by
 * storage_post_release() from storage_wait_free(). */
#ifndef HOMEIQ_STORAGE_WAIT_H
#define HOMEIQ_STORAGE_WAIT_H

#include "storage_api.h"
#include "metrics.h"
#include "sbuf.h"
#include "store_text.h"
#include "storage_maint.h"
#include "query_api.h"

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

/* A request waiting for the backend (a POST's commit, a GET's rows). */
typedef struct storage_wait storage_wait;

struct storage_api {
    store *st;
    storage_api_opts opts;
    int pieces_out;                /* piece slots taken: POSTs under way, each with at most one piece at the backend */
    storage_wait *gate;            /* POSTs waiting for a piece slot, in order (storage_post_admit) */
    storage_wait *pending;
    storage_maint *maint;          /* retention timer, disk guard */
    query_api *reads;              /* the dashboard's reads (query_api.c) */
    metric *m_stored, *m_dups, *m_rejected, *m_dead, *m_batch_ok, *m_batch_fail, *m_latency; /* storage_post.c */
    metric *m_up;
};

struct storage_wait {
    storage_api *api;
    struct evhttp_request *req;    /* NULL once the client is gone */
    const char *rows_key;          /* GET: "events" or "dead_letters" */
    long long t0_us;
    /* POST (storage_post.c) */
    json_t *body;                  /* the request body (items borrow from it) */
    store_batch batch;             /* the piece being committed */
    store_text_body tb;            /* where the body's events are (its text: req's input buffer) */
    size_t next_ev;                /* first event not yet in a piece */
    int whole;                     /* the general path: one piece from the jansson tree `body` */
    json_t *dead;                  /* the general path: body's dead_letters (borrowed), NULL if none */
    int last;                      /* the piece being committed is the last */
    json_t *piece;                 /* the piece's events read by jansson (items borrow from it); the
                                    * general path: the body's events array (its values are body's) */
    int in_write, wrote;           /* write_batch running / it called back before returning */
    struct event *step;            /* the next piece, started from the loop (not from the backend's callback) */
    int gated;                     /* in api->gate */
    int slot;                      /* holds a piece slot (from its first piece to its answer) */
    storage_wait *gate_next;
    int failed;
    char error[256];
    size_t stored, duplicates, dead_lettered, skipped;
    sbuf rejected;                 /* the answer's "rejected" entries so far */
    char home[EVENT_HOME_MAX + 1]; /* "" = the default home */
    storage_wait *prev, *next;
};

/* A new waiting request in a->pending, detached when its client leaves; NULL
 * when out of memory. */
storage_wait *storage_wait_new(storage_api *a, struct evhttp_request *req);
/* Unlinks and frees w (and its POST parts); its request, if any, is not answered. */
void storage_wait_free(storage_wait *w);
/* Answers `status` with b's text as JSON; b is emptied. */
void storage_reply_json_text(struct evhttp_request *req, int status, sbuf *b);

#endif

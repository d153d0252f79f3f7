/* httpc.h -- outbound HTTP on the process' libevent loop (libevent's evhttp
 * client, TLS via bufferevent_openssl; see httpc.c).
 *
 * Services forward batches downstream (ingestion -> enrichment -> storage ->
 * InfluxDB) through this one client so that keep-alive, timeouts, TLS
 * verification and the "answer only after the peer answered" contract are
 * handled in one place. Requests complete asynchronously via a callback. */
#ifndef HOMEIQ_HTTPC_H
#define HOMEIQ_HTTPC_H

#include <event2/event.h>
#include <stddef.h>

typedef struct httpc httpc;

typedef struct httpc_response {
    long status;            /* HTTP status, or 0 when no response (connect error, timeout) */
    const char *body;       /* response body, NUL-terminated, owned by httpc (valid in the callback) */
    size_t body_len;
    const char *error;      /* why there is no response when status == 0, else NULL */
    double total_s;         /* request duration */
} httpc_response;

typedef void (*httpc_done_cb)(const httpc_response *res, void *arg);

/* A request body shared by reference between its owner and the requests
 * sending it (issue 15: a batch kept for retries is not copied into each
 * request). Whoever lets go last frees it; a peer may answer before the whole
 * body left, so a connection can outlive the call that sent it. */
typedef struct httpc_shared httpc_shared;
/* Takes `data` (malloc'd): one reference, the caller's. NULL on OOM (data is still the caller's). */
httpc_shared *httpc_shared_new(char *data);
/* The caller lets go. When nobody else holds it any more, the buffer is
 * handed back (the caller may write into it again), else NULL: it is freed
 * by the last request done with it. */
char *httpc_shared_release(httpc_shared *s);

typedef struct httpc_request {
    const char *method;             /* "GET", "POST" ... */
    const char *url;
    const char *const *headers;     /* NULL-terminated "Name: value" list, may be NULL */
    const char *body;               /* copied; may be NULL */
    char *body_take;                /* or: a malloc'd body handed over (not copied); httpc frees it,
                                       also when httpc_send fails. body_len is its length */
    httpc_shared *body_shared;      /* or: a shared body (not copied; a reference is taken); body_len bytes of it */
    size_t body_len;
    long timeout_ms;                /* whole request; 0 = 30 s */
    const char *userpwd;            /* "user:password" for basic auth, or NULL */
} httpc_request;

/* Also sets SIGPIPE to ignored if it still has its default action. */
int httpc_new(struct event_base *base, httpc **out);
/* Starts a request; `cb` is always called exactly once (also on httpc_free,
 * with status 0 and error "cancelled"). Returns -1 only when the request
 * could not even be started (cb is then not called). */
int httpc_send(httpc *c, const httpc_request *req, httpc_done_cb cb, void *arg);
/* Requests in flight. */
int httpc_inflight(const httpc *c);
void httpc_free(httpc *c);

/* Blocking helper for tools (homeiqctl, tests): performs one request, fills
 * *status and a malloc'd NUL-terminated *body (caller frees). 0, or -1 with
 * *body holding an error message. */
int httpc_fetch(const httpc_request *req, long *status, char **body);

#endif

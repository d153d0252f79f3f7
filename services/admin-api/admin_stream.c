/* admin_stream.c -- GET /api/v1/events/stream: the live tail as Server-Sent
 * Events.
 *
 * Why it polls data-storage's feed per client: the feed's cursor (storage's
 * commit order, store_read.h) is the one thing that makes "no gap, no
 * repeat" simple. Each event goes out as `id: <seq>`; a reconnecting
 * browser sends Last-Event-ID (or the page passes last_event_id=) and the
 * stream continues with the feed after that cursor, whatever happened in
 * between. Filters (entity_id, domain, event_type, area, home) are applied by storage;
 * a bad one is answered 400 (naming it) before the stream starts. Without a
 * cursor the stream starts at the head, after `backlog` (0..1000) recent
 * events.
 *
 * One poll per client is in flight at a time; while a client's socket has
 * more than ADMIN_STREAM_MAX_QUEUED bytes unsent, its polls wait, so a slow
 * reader costs memory bounded by that, not by the event rate. */
#include "admin.h"
#include "json_scan.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define ADMIN_STREAM_MAX_QUEUED (1u << 20)
#define ADMIN_STREAM_HEARTBEAT_US (15LL * 1000000)
#define ADMIN_STREAM_BATCH 1000

typedef struct stream_client stream_client;

struct admin_stream {
    admin *a;
    stream_client *clients;
    long nclients;
};

struct stream_client {
    admin_stream *s;
    struct evhttp_request *req;  /* NULL once the client is gone */
    struct event *timer;
    char *filters;               /* "&entity_id=..&domain=.." as received (URL-encoded) */
    long long cursor;            /* last seq sent (or the head at start) */
    int has_cursor;
    long backlog;
    int started;                 /* 200 + headers sent */
    int polling;                 /* a feed request is in flight */
    long long last_write_us;
    stream_client *prev, *next;
};

/* ---- lifecycle ---------------------------------------------------------- */

static void stream_client_free(stream_client *c) {
    admin_stream *s = c->s;
    if (c->prev) c->prev->next = c->next;
    else s->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nclients--;
    if (c->timer) event_free(c->timer);
    free(c->filters);
    free(c);
}

static void stream_client_gone(struct evhttp_connection *conn, void *arg) {
    (void)conn;
    stream_client *c = arg;
    httpd_request_abandon(c->req);
    c->req = NULL;
    if (!c->polling) stream_client_free(c); /* else freed when the poll answers */
}

static void stream_schedule(stream_client *c, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

/* ---- writing ------------------------------------------------------------ */

static size_t stream_queued(stream_client *c) {
    struct evhttp_connection *conn = evhttp_request_get_connection(c->req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void stream_send(stream_client *c, const char *text, size_t len) {
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    evbuffer_add(b, text, len);
    evhttp_send_reply_chunk(c->req, b);
    evbuffer_free(b);
    c->last_write_us = service_mono_us();
}

static void stream_start(stream_client *c) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(c->req, 200, "OK");
    c->started = 1;
    static const char hello[] = "retry: 1000\n: homeiq live tail\n\n";
    stream_send(c, hello, sizeof hello - 1);
}

/* The members of a feed answer, as spans of its text (lib/json_scan: the
 * events go out exactly as storage wrote them, never re-printed). */
typedef struct feed_spans {
    const char *events, *cursor, *more;
    size_t events_len, cursor_len, more_len;
} feed_spans;

static int feed_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    feed_spans *f = arg;
    if (kl == 6 && !memcmp(k, "events", 6)) f->events = v, f->events_len = vl;
    else if (kl == 6 && !memcmp(k, "cursor", 6)) f->cursor = v, f->cursor_len = vl;
    else if (kl == 4 && !memcmp(k, "more", 4)) f->more = v, f->more_len = vl;
    return 0;
}

typedef struct event_out {
    sbuf *out;
    int skip;
} event_out;

static int event_seq(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    if (kl == 3 && !memcmp(k, "seq", 3)) {
        sbuf_add(arg, v, vl);
        return 1;
    }
    return 0;
}

static int event_elem(const char *v, size_t vl, void *arg) {
    event_out *e = arg;
    if (e->skip) return 0;
    sbuf_adds(e->out, "id: ");
    jscan_object_trusted(v, vl, event_seq, e->out);
    sbuf_adds(e->out, "\nevent: event\ndata: ");
    sbuf_add(e->out, v, vl); /* compact JSON: no raw newline inside */
    sbuf_adds(e->out, "\n\n");
    return 0;
}

/* Writes each event of a feed answer as one SSE message and moves the
 * cursor. -1 when the text is not a feed answer. */
static int stream_write_events(stream_client *c, const char *body, size_t len, int *more) {
    feed_spans f = {0};
    if (jscan_object(body, len, feed_member, &f) != 0 || !f.events || !f.cursor || f.cursor_len > 19) return -1;
    char num[24];
    memcpy(num, f.cursor, f.cursor_len);
    num[f.cursor_len] = '\0';
    sbuf out;
    sbuf_init(&out);
    event_out e = {.out = &out, .skip = !c->has_cursor && c->backlog == 0}; /* at the head, no backlog */
    if (jscan_array(f.events, f.events_len, event_elem, &e) != 0) {
        sbuf_free(&out);
        return -1;
    }
    if (out.len) stream_send(c, out.data, out.len);
    sbuf_free(&out);
    c->cursor = strtoll(num, NULL, 10);
    c->has_cursor = 1;
    *more = f.more && f.more_len == 4 && !memcmp(f.more, "true", 4);
    return 0;
}

/* ---- polling ------------------------------------------------------------- */

static void stream_poll(evutil_socket_t fd, short what, void *arg);

static void stream_fail(stream_client *c, int status, const char *why) {
    if (!c->started) {
        /* before the stream started: a plain error answer (e.g. 400 naming the parameter) */
        evhttp_connection_set_closecb(evhttp_request_get_connection(c->req), NULL, NULL);
        httpd_reply_error(c->req, status, "%s", why);
        stream_client_free(c);
        return;
    }
    sbuf out;
    sbuf_init(&out);
    sbuf_printf(&out, "event: upstream-error\ndata: {\"error\":");
    json_t *s = json_string(why);
    char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    sbuf_adds(&out, q ? q : "\"?\"");
    free(q);
    json_decref(s);
    sbuf_adds(&out, "}\n\n");
    stream_send(c, out.data, out.len);
    sbuf_free(&out);
    stream_schedule(c, 1000 < c->s->a->stream_poll_ms * 4 ? c->s->a->stream_poll_ms * 4 : 1000);
}

static void stream_poll_done(const httpc_response *res, void *arg) {
    stream_client *c = arg;
    c->polling = 0;
    if (!c->req) {
        stream_client_free(c);
        return;
    }
    if (res->status != 200) {
        char why[400], reason[300];
        admin_upstream_reason(res, reason, sizeof reason);
        snprintf(why, sizeof why, "data-storage: %s", reason);
        if (!c->started && res->status >= 400 && res->status < 500) {
            /* storage's own message names the parameter */
            evhttp_connection_set_closecb(evhttp_request_get_connection(c->req), NULL, NULL);
            httpd_reply_text(c->req, (int)res->status, "application/json", res->body ? res->body : "",
                             res->body_len);
            stream_client_free(c);
            return;
        }
        stream_fail(c, res->status ? (int)res->status : 502, why);
        return;
    }
    int more = 0;
    if (!c->started) stream_start(c);
    if (!res->body || stream_write_events(c, res->body, res->body_len, &more) != 0) {
        stream_fail(c, 502, "data-storage: unexpected feed answer");
        return;
    }
    if (service_mono_us() - c->last_write_us > ADMIN_STREAM_HEARTBEAT_US) stream_send(c, ": keep-alive\n\n", 14);
    stream_schedule(c, more ? 0 : c->s->a->stream_poll_ms);
}

static void stream_poll(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    stream_client *c = arg;
    if (!c->req) return;
    if (c->started && stream_queued(c) > ADMIN_STREAM_MAX_QUEUED) { /* slow reader: wait */
        stream_schedule(c, c->s->a->stream_poll_ms);
        return;
    }
    char path[4096]; /* the filters: 3 strings of up to 255 characters, URL-encoded, plus area and home */
    if (c->has_cursor)
        snprintf(path, sizeof path, "/api/v1/events/feed?after=%lld&limit=%d%s", c->cursor, ADMIN_STREAM_BATCH,
                 c->filters);
    else
        snprintf(path, sizeof path, "/api/v1/events/feed?limit=%ld%s", c->backlog ? c->backlog : 1, c->filters);
    c->polling = 1;
    if (admin_get(c->s->a, ADMIN_STORAGE, path, stream_poll_done, c) != 0) {
        c->polling = 0;
        stream_fail(c, 502, "data-storage: request could not be started");
    }
}

/* ---- the request ---------------------------------------------------------- */

typedef struct stream_query {
    admin_stream_params *p;
    sbuf filters;     /* "&entity_id=...&domain=..." for data-storage's feed */
    const char *id;   /* Last-Event-ID (the header wins over the parameter) */
} stream_query;

static int stream_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    stream_query *q = ctx;
    if (!strcmp(k, "entity_id") || !strcmp(k, "domain") || !strcmp(k, "event_type") || !strcmp(k, "area") ||
        !strcmp(k, "home")) {
        char *enc = evhttp_encode_uri(v);
        sbuf_printf(&q->filters, "&%s=%s", k, enc ? enc : "");
        free(enc);
    } else if (!strcmp(k, "last_event_id")) {
        if (!q->id) q->id = v;
    } else if (!strcmp(k, "backlog")) {
        long long b;
        if (httpd_param_long(v, 0, 1000, &b) != 0) return snprintf(err, n, "backlog: must be an integer from 0 to 1000"), -1;
        q->p->backlog = (long)b;
    } else {
        snprintf(err, n, "%.64s: unknown parameter (known: entity_id, domain, event_type, area, home, backlog, last_event_id)",
                 k);
        return -1;
    }
    return 0;
}

int admin_stream_parse(const char *query, const char *last_event_id, admin_stream_params *p, char *err, size_t n) {
    struct evkeyvalq params;
    memset(p, 0, sizeof *p);
    stream_query q = {.p = p, .id = last_event_id};
    sbuf_init(&q.filters);
    int rc = httpd_query_check_str(query, &params, stream_param, &q, err, n);
    const char *id = q.id;
    if (rc == 0 && id) {
        if (httpd_param_long(id, 0, 4000000000000000000LL, &p->cursor) != 0) {
            snprintf(err, n, "Last-Event-ID: must be an event seq (an integer >= 0)");
            rc = -1;
        } else {
            p->has_cursor = 1;
        }
    }
    httpd_query_free(&params);
    p->filters = sbuf_take(&q.filters, NULL);
    if (!p->filters) p->filters = strdup("");
    if (rc == 0 && !p->filters) rc = -1, snprintf(err, n, "out of memory");
    return rc;
}

/* Reads the parameters (admin_stream_parse); answers 400 naming a bad one. 0/-1. */
static int stream_params(stream_client *c, struct evhttp_request *req) {
    admin_stream_params p;
    char err[256];
    int rc = admin_stream_parse(httpd_query_string(req),
                                evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID"), &p, err,
                                sizeof err);
    c->filters = p.filters;
    c->backlog = p.backlog;
    c->cursor = p.cursor;
    c->has_cursor = p.has_cursor;
    if (rc != 0) httpd_reply_error(req, p.filters ? 400 : 500, "%s", err);
    return rc;
}

static void admin_stream_request(struct evhttp_request *req, void *arg) {
    admin_stream *s = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET) != 0) return;
    if (s->nclients >= s->a->stream_max_clients) {
        httpd_reply_error(req, 503, "too many live streams (ADMIN_STREAM_MAX_CLIENTS=%ld)", s->a->stream_max_clients);
        return;
    }
    stream_client *c = calloc(1, sizeof *c);
    if (!c) {
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    c->s = s;
    c->req = req;
    c->next = s->clients;
    if (s->clients) s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    if (stream_params(c, req) != 0 || !(c->timer = evtimer_new(s->a->base, stream_poll, c))) {
        stream_client_free(c);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_client_gone, c);
    stream_poll(-1, 0, c); /* the first poll decides: 400 or the stream */
}

int admin_stream_new(admin *a, httpd *h) {
    admin_stream *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->a = a;
    a->stream = s;
    return httpd_route(h, "/api/v1/events/stream", admin_stream_request, s);
}

/* Ends every stream; clients with a poll in flight are freed by its
 * (cancelled) callback during httpc_free(). */
void admin_stream_end(admin *a) {
    admin_stream *s = a->stream;
    if (!s) return;
    stream_client *c = s->clients;
    while (c) {
        stream_client *next = c->next;
        if (c->req) {
            evhttp_connection_set_closecb(evhttp_request_get_connection(c->req), NULL, NULL);
            if (c->started) evhttp_send_reply_end(c->req);
            else httpd_reply_error(c->req, 503, "shutting down");
            c->req = NULL;
        }
        if (!c->polling) stream_client_free(c);
        c = next;
    }
}

void admin_stream_free(admin *a) {
    admin_stream *s = a->stream;
    if (!s) return;
    while (s->clients) stream_client_free(s->clients);
    free(s);
    a->stream = NULL;
}

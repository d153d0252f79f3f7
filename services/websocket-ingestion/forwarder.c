/* forwarder.c -- see forwarder.h.
 *
 * Batches live in a ring in spool order. A batch's body is built once
 * ("[" rec "," rec ... "]": records are raw event objects) and kept until the
 * batch is acknowledged, so a retry re-sends exactly the same events. */
#include "forwarder.h"
#include "auth.h"

#include "log.h"
#include "metrics.h"
#include "service.h"

#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FWD_SENDING, FWD_DONE, FWD_RETRY_WAIT } fwd_state;

typedef struct fwd_batch {
    forwarder *f;
    uint64_t first_seq, end_seq; /* [first, end) */
    size_t count;
    char *body;
    size_t len, cap;
    fwd_state state;
    int attempts;
    struct event *retry_ev;
} fwd_batch;

struct forwarder {
    struct event_base *base;
    httpc *hc;
    spool *sp;
    forwarder_opts o;
    char *url;

    fwd_batch ring[FORWARDER_MAX_INFLIGHT];
    int head, count;            /* ring[head] is the oldest */
    int retrying;
    int stopped;

    struct event *linger_ev;
    int linger_armed, linger_expired;
    int failures;               /* consecutive */

    forwarder_stats st;
    metric *m_events, *m_rejected, *m_batches_ok, *m_batches_failed, *m_latency, *m_batch_size;
};

/* ---- batch building ------------------------------------------------------ */

static int fwd_body_add(fwd_batch *b, const char *data, size_t len) {
    size_t need = b->len + len + 2;
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 64 * 1024;
        while (ncap < need) ncap *= 2;
        char *nb = realloc(b->body, ncap);
        if (!nb) return -1;
        b->body = nb;
        b->cap = ncap;
    }
    memcpy(b->body + b->len, data, len);
    b->len += len;
    return 0;
}

typedef struct fwd_fill {
    fwd_batch *b;
    int oom;
} fwd_fill;

static void fwd_record_cb(uint64_t seq, const char *data, size_t len, void *arg) {
    fwd_fill *fl = arg;
    fwd_batch *b = fl->b;
    if (b->count == 0) b->first_seq = seq;
    if (fwd_body_add(b, b->count ? "," : "[", 1) != 0 || fwd_body_add(b, data, len) != 0) fl->oom = 1;
    b->count++;
    b->end_seq = seq + 1;
}

/* ---- sending ------------------------------------------------------------ */

static void fwd_response_cb(const httpc_response *res, void *arg);
static void fwd_pump(forwarder *f);

static void fwd_send(fwd_batch *b) {
    forwarder *f = b->f;
    const char *headers[] = {"Content-Type: application/json", auth_header(), NULL};
    httpc_request req = {
        .method = "POST", .url = f->url, .headers = headers,
        .body = b->body, .body_len = b->len, .timeout_ms = f->o.timeout_ms,
    };
    b->state = FWD_SENDING;
    b->attempts++;
    f->st.inflight++;
    if (httpc_send(f->hc, &req, fwd_response_cb, b) != 0) {
        /* Could not even start: treat as a connection error. */
        httpc_response res = {.status = 0, .body = "", .error = "cannot start request"};
        fwd_response_cb(&res, b);
    }
}

static long fwd_backoff_ms(forwarder *f) {
    long d = f->o.retry_min_ms;
    for (int i = 1; i < f->failures && d < f->o.retry_max_ms; i++) d *= 2;
    if (d > f->o.retry_max_ms) d = f->o.retry_max_ms;
    /* +-20 % jitter so that several ingestion instances do not retry in step */
    long j = d / 5;
    if (j > 0) d += (long)(random() % (2 * j + 1)) - j;
    return d > 0 ? d : 1;
}

static void fwd_retry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    fwd_batch *b = arg;
    if (b->f->stopped) return;
    fwd_send(b);
}

/* Acknowledges the finished batches at the head of the ring, in order. */
static void fwd_ack_head(forwarder *f) {
    uint64_t upto = 0;
    int acked = 0;
    while (f->count > 0 && f->ring[f->head].state == FWD_DONE) {
        fwd_batch *b = &f->ring[f->head];
        upto = b->end_seq;
        f->st.events_acked += b->count;
        metrics_add(f->m_events, (double)b->count);
        b->len = 0;
        b->count = 0;
        b->attempts = 0;
        if (b->cap > (2u << 20)) { /* an unusually big batch: do not keep its buffer */
            free(b->body);
            b->body = NULL;
            b->cap = 0;
        }
        f->head = (f->head + 1) % f->o.max_inflight;
        f->count--;
        acked = 1;
    }
    if (acked && spool_ack(f->sp, upto) != 0) log_error("forwarder: cannot move the spool's ack cursor");
}

/* 200 body: {"success":true,"processed":N,"rejected":[{"index":i,"error":...}],...}. */
static void fwd_count_rejected(forwarder *f, fwd_batch *b, const httpc_response *res) {
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    json_t *rej = j ? json_object_get(j, "rejected") : NULL;
    size_t n = json_is_array(rej) ? json_array_size(rej) : 0;
    if (n > 0) {
        f->st.events_rejected += n;
        metrics_add(f->m_rejected, (double)n);
        json_t *first = json_array_get(rej, 0);
        const char *err = json_string_value(json_object_get(first, "error"));
        log_warn("forwarder: downstream rejected %zu of %zu event(s) (dead-lettered there), first: %s", n, b->count,
                 err ? err : "?");
    }
    json_decref(j);
}

static void fwd_note_failure(forwarder *f, fwd_batch *b, const httpc_response *res) {
    f->failures++;
    f->st.batches_failed++;
    metrics_add(f->m_batches_failed, 1);
    f->st.last_status = res->status;
    if (!f->st.failing_since_us) f->st.failing_since_us = service_mono_us();
    if (res->status == 0)
        snprintf(f->st.last_error, sizeof f->st.last_error, "%s", res->error ? res->error : "connection error");
    else
        snprintf(f->st.last_error, sizeof f->st.last_error, "HTTP %ld: %.120s", res->status, res->body);
    long delay = fwd_backoff_ms(f);
    /* The first failure of a streak and every 10th after it are logged. */
    if (f->failures == 1 || f->failures % 10 == 0)
        log_warn("forwarder: batch of %zu event(s) (seq %" PRIu64 "..) failed (%s), attempt %d; retrying in %ld ms",
                 b->count, b->first_seq, f->st.last_error, b->attempts, delay);
    b->state = FWD_RETRY_WAIT;
    f->retrying++;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(b->retry_ev, &tv);
}

static void fwd_response_cb(const httpc_response *res, void *arg) {
    fwd_batch *b = arg;
    forwarder *f = b->f;
    f->st.inflight--;
    if (f->stopped) return;
    metrics_observe(f->m_latency, res->total_s);
    if (res->status == 200) {
        if (f->failures) log_info("forwarder: downstream answers again (after %d failed attempt(s))", f->failures);
        f->failures = 0;
        f->st.failing_since_us = 0;
        f->st.last_ok_us = service_now_us();
        f->st.last_status = 200;
        f->st.batches_ok++;
        metrics_add(f->m_batches_ok, 1);
        fwd_count_rejected(f, b, res);
        b->state = FWD_DONE;
        fwd_ack_head(f);
    } else {
        fwd_note_failure(f, b, res);
    }
    fwd_pump(f);
}

/* ---- the pump ------------------------------------------------------------ */

static void fwd_linger_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    forwarder *f = arg;
    f->linger_armed = 0;
    f->linger_expired = 1;
    fwd_pump(f);
}

static int fwd_inflight_slots(const forwarder *f) {
    return f->count < f->o.max_inflight;
}

/* Starts as many batches as allowed: full ones at once, a partial one when
 * nothing is in flight or the linger time since it became pending has passed. */
static void fwd_pump(forwarder *f) {
    if (f->stopped) return;
    /* A batch being retried holds the line: no new requests until it got through. */
    f->retrying = 0;
    for (int i = 0; i < f->count; i++) {
        const fwd_batch *b = &f->ring[(f->head + i) % f->o.max_inflight];
        if (b->state == FWD_RETRY_WAIT || (b->state == FWD_SENDING && b->attempts > 1)) f->retrying++;
    }
    f->st.retrying = f->retrying > 0;
    while (!f->retrying && fwd_inflight_slots(f)) {
        uint64_t readable = spool_readable(f->sp);
        if (readable == 0) break;
        /* Linger only while a request is in flight (like Nagle): an idle
         * pipeline sends at once, so a quiet home sees no added latency,
         * and a busy one still gets full batches. */
        if (readable < f->o.batch_max && !f->linger_expired && f->count > 0) {
            if (!f->linger_armed) {
                struct timeval tv = {f->o.linger_ms / 1000, (f->o.linger_ms % 1000) * 1000};
                evtimer_add(f->linger_ev, &tv);
                f->linger_armed = 1;
            }
            break;
        }
        int idx = (f->head + f->count) % f->o.max_inflight;
        fwd_batch *b = &f->ring[idx];
        b->len = 0;
        b->count = 0;
        b->attempts = 0;
        fwd_fill fl = {b, 0};
        size_t n = 0;
        if (spool_read(f->sp, f->o.batch_max, f->o.batch_max_bytes, fwd_record_cb, &fl, &n) != 0 || n == 0) break;
        if (fl.oom || fwd_body_add(b, "]", 1) != 0) {
            log_error("forwarder: out of memory building a batch");
            break;
        }
        f->count++;
        metrics_observe(f->m_batch_size, (double)n);
        fwd_send(b);
        if (f->stopped) return;
    }
    if (spool_readable(f->sp) == 0 || f->retrying) {
        /* nothing pending: the next record starts a new linger period */
        f->linger_expired = 0;
        if (f->linger_armed) {
            evtimer_del(f->linger_ev);
            f->linger_armed = 0;
        }
    }
}

void forwarder_kick(forwarder *f) { fwd_pump(f); }

/* ---- life cycle ---------------------------------------------------------- */

int forwarder_new(struct event_base *base, httpc *hc, spool *sp, const forwarder_opts *o, forwarder **out) {
    forwarder *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->base = base;
    f->hc = hc;
    f->sp = sp;
    f->o = *o;
    if (f->o.batch_max < 1) f->o.batch_max = 1;
    if (f->o.batch_max_bytes < 1) f->o.batch_max_bytes = 8u << 20;
    if (f->o.max_inflight < 1) f->o.max_inflight = 1;
    if (f->o.max_inflight > FORWARDER_MAX_INFLIGHT) f->o.max_inflight = FORWARDER_MAX_INFLIGHT;
    if (f->o.retry_min_ms < 1) f->o.retry_min_ms = 100;
    if (f->o.retry_max_ms < f->o.retry_min_ms) f->o.retry_max_ms = f->o.retry_min_ms;
    f->o.url = NULL;
    f->url = strdup(o->url);
    f->linger_ev = evtimer_new(base, fwd_linger_cb, f);
    if (!f->url || !f->linger_ev) {
        forwarder_free(f);
        return -1;
    }
    for (int i = 0; i < FORWARDER_MAX_INFLIGHT; i++) {
        f->ring[i].f = f;
        f->ring[i].retry_ev = evtimer_new(base, fwd_retry_cb, &f->ring[i]);
        if (!f->ring[i].retry_ev) {
            forwarder_free(f);
            return -1;
        }
    }
    f->m_events = metrics_counter("homeiq_ingestion_events_forwarded_total",
                                  "Events acknowledged by downstream (spool trimmed past them)", NULL);
    f->m_rejected = metrics_counter("homeiq_ingestion_events_rejected_total",
                                    "Events downstream rejected (dead-lettered there, acked here)", NULL);
    f->m_batches_ok = metrics_counter("homeiq_ingestion_forward_batches_total", "Forward requests by outcome",
                                      "result=\"ok\"");
    f->m_batches_failed = metrics_counter("homeiq_ingestion_forward_batches_total", "Forward requests by outcome",
                                          "result=\"failed\"");
    f->m_latency = metrics_histogram("homeiq_ingestion_forward_seconds", "Forward request duration", NULL,
                                     metrics_latency_bounds, metrics_latency_nbounds);
    static const double size_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 5000};
    f->m_batch_size = metrics_histogram("homeiq_ingestion_forward_batch_events", "Events per forward request", NULL,
                                        size_bounds, sizeof size_bounds / sizeof size_bounds[0]);
    *out = f;
    return 0;
}

void forwarder_get_stats(const forwarder *f, forwarder_stats *st) { *st = f->st; }

void forwarder_stop(forwarder *f) {
    if (!f) return;
    f->stopped = 1;
    if (f->linger_ev) evtimer_del(f->linger_ev);
    for (int i = 0; i < FORWARDER_MAX_INFLIGHT; i++)
        if (f->ring[i].retry_ev) evtimer_del(f->ring[i].retry_ev);
}

void forwarder_free(forwarder *f) {
    if (!f) return;
    for (int i = 0; i < FORWARDER_MAX_INFLIGHT; i++) {
        if (f->ring[i].retry_ev) event_free(f->ring[i].retry_ev);
        free(f->ring[i].body);
    }
    if (f->linger_ev) event_free(f->linger_ev);
    free(f->url);
    free(f);
}
